"""The run folder: what must outlive a run's process.

A run folder (the CLI's --out) holds
  session.json        the thread, the options and the corpus's digest: what resume and refine read
  corpus.jsonl        the texts and ids the run clustered
  checkpoints.sqlite  the graph's state after every node, per thread (LangGraph's SqliteSaver)
  arrays/NAME.npy     assignments, confidences and margins the state refers to by name; the texts'
                      embeddings, the model's reading and the report's map, kept once computed (kept)
  calls.jsonl         every model answer, keyed by its request, so a resumed run replays finished calls,
                      and every decision made of them, so its trace keeps them (call_journal.py)
  assignments.jsonl, clusters.json, run.json, trace.jsonl: the result (see result.py)
The Python API keeps the same things in memory unless it is given a folder.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import sqlite3
import tempfile
from collections.abc import Callable, Iterator, MutableMapping, Sequence
from pathlib import Path

import numpy as np

from clusteragent.call_journal import CallJournal
from clusteragent.errors import ClusterAgentError, ConfigError
from clusteragent.tools.corpus import Corpus

CHECKPOINTS = "checkpoints.sqlite"
ARRAYS = "arrays"
CALLS = "calls.jsonl"


def _default_mode() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return 0o666 & ~mask


# Every file of a run folder gets the mode any new file of the user gets (0644 under the usual umask 022),
# as the SQLite and JSONL files do; mkstemp alone would make some 0600 and others not. A run folder holds
# no secret of the tool's (keys are never written); texts that must stay private want a private folder or
# a umask of 077, which every file here then follows.
FILE_MODE = _default_mode()


def jsonl_bytes(records) -> bytes:
    """One JSON object per line, UTF-8: the run's .jsonl files and the jsonl export."""
    return "".join(json.dumps(r, ensure_ascii=False, default=str) + "\n" for r in records).encode("utf-8")


def atomic_write(path: Path, data: bytes) -> None:
    """Write `data` to `path` through a temporary file and a rename: readers never see half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.chmod(tmp, FILE_MODE)
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def content_name(prefix: str, *arrays: np.ndarray) -> str:
    """A name that depends only on the arrays' contents: equal contents, equal names, no clashes on resume."""
    h = hashlib.sha1()
    for a in arrays:
        a = np.ascontiguousarray(a)
        h.update(str((a.dtype.str, a.shape)).encode())
        h.update(a.tobytes())
    return f"{prefix}-{h.hexdigest()[:16]}"


def text_name(prefix: str, *parts: str) -> str:
    """content_name for what strings decide (an instruction, a model, the texts), in the same pattern."""
    digest = hashlib.sha256("\0".join(parts).encode("utf-8", "surrogatepass")).hexdigest()[:16]
    return f"{prefix}-{digest}"


def kept(arrays: MutableMapping[str, np.ndarray], name: str, compute: Callable[[], np.ndarray]) -> np.ndarray:
    """`arrays[name]`, computed and kept there first where it is not: in a run folder's arrays it outlives the
    process, so a chat, a report or an assignment in another one finds it whatever the caches hold. Name it
    with content_name or text_name, so that a fresh run in the folder removes it with the rest. A kept file that
    cannot be read (cut short, overwritten) is computed again and replaced: it holds nothing that is not."""
    try:
        return arrays[name]
    except (KeyError, ValueError, OSError, EOFError):
        pass
    arrays[name] = value = compute()
    return value


def embeddings_name(model_id: str, texts: Sequence[str]) -> str:
    """The name a run keeps its texts' embeddings under (by `model_id`, the embedder's)."""
    return text_name("embeddings", model_id, *texts)


class ArrayStore(MutableMapping[str, np.ndarray]):
    """Named arrays, in memory, and written to `folder` as .npy files when one is given."""

    def __init__(self, folder: str | Path | None = None):
        self.folder = Path(folder) if folder is not None else None
        self._memory: dict[str, np.ndarray] = {}

    def _path(self, name: str) -> Path:
        return self.folder / f"{name}.npy"

    def __setitem__(self, name: str, value: np.ndarray) -> None:
        value = np.asarray(value)
        self._memory[name] = value
        if self.folder is not None:
            import io

            buffer = io.BytesIO()
            np.save(buffer, value, allow_pickle=False)
            atomic_write(self._path(name), buffer.getvalue())

    def __getitem__(self, name: str) -> np.ndarray:
        if name not in self._memory:
            if self.folder is None or not self._path(name).exists():
                raise KeyError(name)
            self._memory[name] = np.load(self._path(name), allow_pickle=False)
        return self._memory[name]

    def __delitem__(self, name: str) -> None:
        self._memory.pop(name, None)

    def __iter__(self) -> Iterator[str]:
        names = set(self._memory)
        if self.folder is not None and self.folder.exists():
            names |= {p.stem for p in self.folder.glob("*.npy")}
        return iter(sorted(names))

    def __len__(self) -> int:
        return sum(1 for _ in self)


def open_checkpointer(path: str | Path | None):
    """A LangGraph checkpointer: SQLite at `path` (durable, shared between processes), else in memory."""
    if path is None:
        from langgraph.checkpoint.memory import InMemorySaver

        return InMemorySaver()
    from langgraph.checkpoint.sqlite import SqliteSaver

    Path(path).parent.mkdir(parents=True, exist_ok=True)
    conn = sqlite3.connect(str(path), check_same_thread=False, timeout=30)
    try:
        conn.execute("PRAGMA journal_mode=WAL")
        saver = SqliteSaver(conn)
        saver.setup()
    except sqlite3.DatabaseError as e:
        conn.close()
        raise damaged(Path(path).parent, f"{Path(path).name}: {e}") from None
    return saver


class RunStore:
    """The arrays, checkpointer and call journal of one run, in `folder` or in memory."""

    def __init__(self, folder: str | Path | None = None):
        self.folder = Path(folder) if folder is not None else None
        self.arrays = ArrayStore(self.folder / ARRAYS if self.folder else None)
        # Only a durable run records answers; in memory there is nothing to resume, so no journal.
        self.journal = CallJournal(self.folder / CALLS) if self.folder else None
        self.checkpointer = open_checkpointer(self.folder / CHECKPOINTS if self.folder else None)

    def has_thread(self, thread_id: str) -> bool:
        return self.checkpointer.get_tuple({"configurable": {"thread_id": thread_id}}) is not None


SESSION = "session.json"
CORPUS_COPY = "corpus.jsonl"


def corpus_digest(corpus: Corpus) -> str:
    """SHA-256 of the ids and texts, in order: what tells a run's corpus from another."""
    h = hashlib.sha256()
    for i, t in zip(corpus.ids, corpus.texts):
        h.update(repr(i).encode())
        h.update(b"\0")
        h.update(t.encode("utf-8", "surrogatepass"))
        h.update(b"\0")
    return h.hexdigest()


def write_session(out: Path, corpus: Corpus, **session) -> None:
    """What a later process needs to resume or refine this run: the thread, the corpus, the options."""
    # The texts themselves, so that resume and refine work whatever happens to the source file.
    atomic_write(out / CORPUS_COPY, jsonl_bytes({"id": i, "text": t} for i, t in zip(corpus.ids, corpus.texts)))
    session = {"corpus_sha256": corpus_digest(corpus), "n_texts": len(corpus), "source": corpus.source,
               "text_field": corpus.text_field, "id_field": corpus.id_field, **session}
    atomic_write(out / SESSION, json.dumps(session, ensure_ascii=False, indent=2, default=str).encode())


def grow_session(out: Path, grown: Corpus) -> None:
    """Record that the run in `out` now holds `grown` (its corpus and texts added since): the corpus copy
    and its digest follow; the fitted corpus's digest and size stay, for `run --resume` to check its input."""
    session = read_session(out)
    fitted = {"fitted_sha256": session.get("fitted_sha256", session["corpus_sha256"]),
              "fitted_texts": session.get("fitted_texts", session["n_texts"])}
    rest = {k: v for k, v in session.items() if k not in ("corpus_sha256", "n_texts")}
    write_session(out, grown, **{**rest, **fitted})


def fitted_texts(session: dict) -> int:
    """How many texts the run in a folder was fitted on (texts may have joined since)."""
    return session.get("fitted_texts", session["n_texts"])


def damaged(out: Path, what: str) -> ConfigError:
    return ConfigError(f"{out}: the run folder is damaged ({what}); run the job again into a new folder, or "
                       "restore this one from a copy.")


def _read_json(out: Path, name: str) -> dict:
    try:
        value = json.loads((Path(out) / name).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as e:
        raise damaged(out, f"{name} cannot be read: {type(e).__name__}") from None
    if not isinstance(value, dict):
        raise damaged(out, f"{name} is not a JSON object")
    return value


def read_session(out: Path) -> dict:
    path = Path(out) / SESSION
    if not Path(out).is_dir():
        raise ConfigError(f"{out}: no such folder; give the --out folder of a `clusteragent run`.")
    if not path.exists():
        raise ConfigError(f"{out}: no {SESSION} here; give the --out folder of a `clusteragent run`.")
    session = _read_json(out, SESSION)
    missing = [k for k in ("thread_id", "corpus_sha256", "config") if k not in session]
    if missing:
        raise damaged(out, f"{SESSION} lacks {', '.join(missing)}")
    return session


def read_run_record(out: Path) -> dict:
    """The run.json of a finished run (an empty record where there is none yet)."""
    return _read_json(out, "run.json") if (Path(out) / "run.json").exists() else {}


def read_corpus(out: Path, session: dict) -> Corpus:
    """The corpus a run folder holds, checked against the digest its session recorded."""
    from clusteragent.tools.corpus import load_corpus

    try:
        corpus = load_corpus(Path(out) / CORPUS_COPY, id_field="id", quiet=True)
    except ClusterAgentError as e:
        raise damaged(out, str(e)) from None
    if corpus_digest(corpus) != session["corpus_sha256"]:
        raise ConfigError(f"{Path(out) / CORPUS_COPY} does not hold the texts of the run in {out}; was it edited?")
    return corpus


def resume_thread(out_dir, corpus: Corpus, instruction: str) -> str | None:
    """The thread to continue in out_dir, after checking that it was run on the same texts and instruction."""
    if not (Path(out_dir) / SESSION).exists():
        return None  # nothing to resume: start the run, in this folder
    session = read_session(Path(out_dir))
    if session.get("fitted_sha256", session["corpus_sha256"]) != corpus_digest(corpus):
        raise ConfigError(f"{out_dir}: the run there used other texts ({fitted_texts(session)} from "
                          f"{session['source']}); resume with the same input or choose another --out.")
    if session["instruction"] != instruction:
        raise ConfigError(f"{out_dir}: the run there has the instruction {session['instruction']!r}; resume with "
                          "the same instruction (or refine it afterwards with `clusteragent refine`).")
    return session["thread_id"]


RESULT_FILES = ("assignments.jsonl", "clusters.json", "run.json", "trace.jsonl")
STATE_FILES = (SESSION, CORPUS_COPY, CALLS, CHECKPOINTS, CHECKPOINTS + "-wal", CHECKPOINTS + "-shm")
_ARRAY_NAME = re.compile(r"^[a-z_]+-[0-9a-f]{16}(\.[a-z_]+)?\.npy$")  # content_name's pattern
_TEMP_NAME = re.compile(r"^\..+\.[a-z0-9_]+\.tmp$")  # atomic_write's pattern


def is_run_folder(out: Path) -> bool:
    """True for a folder this tool made: its session.json parses and names a thread and a corpus digest."""
    try:
        session = _read_json(out, SESSION)
    except ConfigError:
        return False
    return "thread_id" in session and "corpus_sha256" in session


def run_file_paths(out: Path) -> set[Path]:
    """The files a run writes in `out`, resolved: what an input or another output must not be."""
    return {(out / name).resolve() for name in (*RESULT_FILES, *STATE_FILES)}


def _only_ours(out: Path) -> bool:
    """True for an empty folder, or one holding only what a run leaves before its session.json exists."""
    from clusteragent.run_lock import LOCK_FILE

    return all(p.name == LOCK_FILE or _TEMP_NAME.match(p.name) for p in out.iterdir())


def check_run_folder(out: Path, inputs: tuple[str, ...] = (), force: bool = False) -> None:
    """Refuse a folder a run must not write to: a file, a non-empty folder that is not a run folder
    (unless `force`), or one of whose files would overwrite the input."""
    if out.exists() and not out.is_dir():
        raise ConfigError(f"--out {out} is a file; give a folder for the run's files.")
    written = run_file_paths(out)
    for source in inputs:
        if Path(source).resolve() in written:
            raise ConfigError(f"--out {out} would overwrite the input {source} with the run's own files; "
                              "choose another --out.")
    if out.is_dir() and not force and not is_run_folder(out) and not _only_ours(out):
        raise ConfigError(f"--out {out} holds files that are not a clusteragent run; choose an empty or new folder "
                          "(or pass --force to write the run's files there, leaving the others alone).")


def make_run_folder(out: Path, inputs: tuple[str, ...] = (), force: bool = False) -> Path:
    """Check `out` (see check_run_folder) and create it; a folder that cannot be made is a one-line error."""
    check_run_folder(out, inputs, force)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise ConfigError(f"--out {out}: cannot create the folder ({e.strerror}); choose one you can write to.") from None
    if not os.access(out, os.W_OK | os.X_OK):
        raise ConfigError(f"--out {out}: the folder is not writable; choose one you can write to.")
    return out


def clean_stale_temps(out: Path) -> None:
    """Remove half-written files a killed process left (only call with the folder's lock held)."""
    for folder in (out, out / ARRAYS):
        if folder.is_dir():
            for p in folder.iterdir():
                if _TEMP_NAME.match(p.name):
                    p.unlink(missing_ok=True)


def clear_run_files(out: Path) -> None:
    """A fresh run in a folder starts from nothing: remove an earlier run's checkpoints, arrays and answers,
    and only those (a file of another name, in the folder or in arrays/, is never touched)."""
    for name in STATE_FILES:
        (out / name).unlink(missing_ok=True)
    arrays = out / ARRAYS
    if arrays.is_dir():
        for p in arrays.iterdir():
            if _ARRAY_NAME.match(p.name):
                p.unlink(missing_ok=True)
        if not any(arrays.iterdir()):
            arrays.rmdir()
