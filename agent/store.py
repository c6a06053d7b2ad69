"""Where a run keeps what must outlive its process: arrays, the LangGraph checkpoints, the model's answers.

A run folder (the CLI's --out) holds
  checkpoints.sqlite  the graph's state after every node, per thread (LangGraph's SqliteSaver)
  arrays/NAME.npy     assignments, confidences and margins the state refers to by name
  calls.jsonl         every model answer, keyed by its request, so a resumed run replays finished calls
The Python API keeps the same things in memory unless it is given a folder.
"""

from __future__ import annotations

import hashlib
import json
import os
import sqlite3
import tempfile
import threading
from collections import defaultdict, deque
from pathlib import Path
from typing import Iterator, MutableMapping

import numpy as np

CHECKPOINTS = "checkpoints.sqlite"
ARRAYS = "arrays"
CALLS = "calls.jsonl"


def atomic_write(path: Path, data: bytes) -> None:
    """Write `data` to `path` through a temporary file and a rename: readers never see half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
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


def _request_key(messages: list, schema: dict, bind: dict) -> str:
    parts = []
    for m in messages:
        if isinstance(m, tuple):
            parts.append([m[0], m[1]])
        else:
            parts.append([getattr(m, "type", type(m).__name__), m.content])
    payload = json.dumps([parts, schema, bind], sort_keys=True, ensure_ascii=False, default=str)
    return hashlib.sha256(payload.encode()).hexdigest()


class CallJournal:
    """Every model answer of a run, appended to a JSONL file as it arrives.

    A resumed run asks the same questions in the same order (samples and prompts are seeded), so an
    answer recorded for a request is replayed instead of asking the model again. Identical requests
    are replayed in the order they were first answered.
    """

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self._answers: dict[str, deque] = defaultdict(deque)
        self._lock = threading.Lock()
        self.replayed = 0
        if self.path.exists():
            for line in self.path.read_text(encoding="utf-8").splitlines():
                try:
                    entry = json.loads(line)
                except json.JSONDecodeError:  # a line cut short by a kill: that answer is asked again
                    continue
                self._answers[entry["key"]].append(entry["reply"])

    key = staticmethod(_request_key)

    def replay(self, key: str) -> dict | None:
        with self._lock:
            queue = self._answers.get(key)
            if queue:
                self.replayed += 1
                return queue.popleft()
        return None

    def record(self, key: str, reply: dict) -> None:
        line = json.dumps({"key": key, "reply": reply}, ensure_ascii=False, default=str) + "\n"
        with self._lock:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with open(self.path, "a", encoding="utf-8") as f:
                f.write(line)
                f.flush()


def open_checkpointer(path: str | Path | None):
    """A LangGraph checkpointer: SQLite at `path` (durable, shared between processes), else in memory."""
    if path is None:
        from langgraph.checkpoint.memory import InMemorySaver

        return InMemorySaver()
    from langgraph.checkpoint.sqlite import SqliteSaver

    Path(path).parent.mkdir(parents=True, exist_ok=True)
    conn = sqlite3.connect(str(path), check_same_thread=False, timeout=30)
    conn.execute("PRAGMA journal_mode=WAL")
    saver = SqliteSaver(conn)
    saver.setup()
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

    def close(self) -> None:
        conn = getattr(self.checkpointer, "conn", None)
        if conn is not None:
            conn.close()
