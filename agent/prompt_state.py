"""The embedded model's prompt state, kept on disk from one chat turn to the next process's.

A chat turn's first call reads the run's whole cluster listing (some 1,900 tokens for the README's main job):
in a new process, as every `clusteragent refine` is, that took 34 s here, against 1.8 s once llama.cpp holds
the listing (docs/benchmarks.md, "A chat turn in a new process"). llama.cpp's server saves a slot's tokens
and their state to a file and restores them; a turn on a run folder restores what the folder's last turn
left before its first call and saves the slot after its last, so the next process reads only what changed.
Only the embedded backend with one slot keeps states; with any other model this does nothing.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import threading
from collections.abc import Iterator
from pathlib import Path

log = logging.getLogger(__name__)

# State files kept in the cache (56 MB for the main job's listing); the least recently written go first.
KEPT = 4


def state_file_name(folder: Path, model_path: Path, n_ctx: int) -> str:
    """The state file of a run folder's chat on one model (a file name llama.cpp accepts: no path in it)."""
    key = f"{Path(folder).resolve()}\n{model_path}\n{n_ctx}"
    return f"chat-{hashlib.sha256(key.encode()).hexdigest()[:24]}.bin"


def prune(directory: Path, kept: int = KEPT) -> list[Path]:
    """Deletes all but the `kept` most recently written state files; returns those deleted."""
    files = sorted(Path(directory).glob("chat-*.bin"), key=lambda f: f.stat().st_mtime, reverse=True)
    for old in files[kept:]:
        old.unlink(missing_ok=True)
    return files[kept:]


@contextlib.contextmanager
def kept_prompt_state(chat, folder: Path | None) -> Iterator[bool]:
    """Around a chat turn on `folder`: restores the state the folder's last turn saved, then saves the slot
    when the turn ends (also when it fails: what the model read stays read). Yields whether a state was
    restored."""
    from clusteragent.models import EmbeddedServer

    server = EmbeddedServer.serving(chat) if folder is not None else None
    if server is None or server.states_dir is None or server.parallel != 1:
        yield False
        return
    name = state_file_name(folder, server.model_path, server.n_ctx)
    restored = (server.states_dir / name).exists() and server.slot_action("restore", name) is not None
    try:
        yield restored
    finally:
        if server.slot_action("save", name) is not None:
            prune(server.states_dir)
        else:
            log.debug("the prompt state of %s was not saved", folder)


def read_ahead(session) -> threading.Thread | None:
    """Has the embedded model read a chat session's cluster listing in the background, before the first
    message (`clusteragent chat` while the user types, `serve` while the page is looked at): the state of the
    folder's last turn where there is one, else the first call's prompt up to the message. None where the
    model is not the embedded one or the run has no folder."""
    from clusteragent.models import EmbeddedServer
    from clusteragent.prompts import load_prompt
    from clusteragent.refine import cluster_listing

    folder = session.run.store_.folder
    if folder is None or not (session.run.model is None or str(session.run.model).startswith("llamacpp:")):
        return None
    state = session.state or session.base_state  # read here: the checkpointer stays in this thread
    messages = load_prompt("refine").messages(instruction=state["instruction"], message="", action="",
                                              clusters=cluster_listing(state, session.run.store_.arrays[state["assignment_ref"]]))

    def read() -> None:
        try:
            chat = session.run.chat_model()
            if EmbeddedServer.serving(chat) is None:
                return
            with kept_prompt_state(chat, folder) as restored:
                if not restored:
                    chat.bind(max_tokens=1).invoke(messages)
        except Exception as e:  # the first turn reads the listing itself, as it would have anyway
            log.debug("reading the listing ahead failed: %s", e)

    thread = threading.Thread(target=read, name="clusteragent-read-ahead", daemon=True)
    thread.start()
    return thread


@contextlib.contextmanager
def reading_ahead(session) -> Iterator[threading.Thread | None]:
    """read_ahead for the life of a `chat` or `serve`; on the way out it waits for the reading to end (the
    process crashed when it ended with llama.cpp still reading: the embedded server went away under it)."""
    thread = read_ahead(session)
    try:
        yield thread
    finally:
        if thread is not None and thread.is_alive():
            import sys

            print("clusteragent: waiting for the model to finish reading the cluster listing", file=sys.stderr)
            thread.join()
