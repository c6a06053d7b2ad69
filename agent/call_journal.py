"""The call journal (calls.jsonl in a run folder): every model answer of a run, keyed by its request, so that
a resumed run replays finished calls instead of asking again; and every decision made of them (the trace), so
that a resumed run's trace.jsonl holds the decisions made before the stop."""

from __future__ import annotations

import hashlib
import json
import threading
from collections import defaultdict, deque
from pathlib import Path


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
    """Every model answer of a run, and every request that failed, appended to a JSONL file as it happens.

    A resumed run asks the same questions in the same order (samples and prompts are seeded), so an
    answer recorded for a request is replayed instead of asking the model again, and the failed attempts
    that led to it (or that were under way when the process died) are counted again: the resumed run
    spends the budget as the uninterrupted one did, so it makes the same decisions. Attempts at a request
    the run gave up on (the outage that stopped it) are not charged again: it is simply asked again.
    Identical requests are replayed in the order they were first answered.
    """

    FAILED, GAVE_UP = "failed", "gave_up"

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self._entries: dict[str, deque] = defaultdict(deque)
        self._decisions: dict[str, list] = defaultdict(list)
        self._lock = threading.Lock()
        self.replayed = 0
        if self.path.exists():
            for line in self.path.read_text(encoding="utf-8").splitlines():
                try:
                    entry = json.loads(line)
                    if "decision" in entry:
                        self._decisions[entry["thread"]].append(entry["decision"])
                        continue
                    mark = next((m for m in (self.FAILED, self.GAVE_UP) if entry.get(m)), None)
                    self._entries[entry["key"]].append(mark or entry["reply"])
                except (json.JSONDecodeError, KeyError, TypeError):  # a line cut short by a kill: asked again
                    continue

    key = staticmethod(_request_key)

    def replay(self, key: str) -> tuple[dict | None, int]:
        """(the recorded reply for `key` or None, the failed attempts recorded before it)."""
        failures = 0
        with self._lock:
            queue = self._entries.get(key)
            while queue and queue[0] == self.FAILED:
                queue.popleft()
                failures += 1
            if queue and queue[0] == self.GAVE_UP:
                queue.popleft()
                return None, 0
            if queue:
                self.replayed += 1
                return queue.popleft(), failures
        return None, failures

    def record(self, key: str, reply: dict) -> None:
        self._append({"key": key, "reply": reply})

    def record_failure(self, key: str, gave_up: bool = False) -> None:
        """A failed attempt at `key`'s request, and with `gave_up` the run's giving up on it after."""
        self._append({"key": key, self.FAILED: True})
        if gave_up:
            self._append({"key": key, self.GAVE_UP: True})

    def trace(self, thread: str, resume: bool = False) -> JournaledTrace:
        """A trace for StructuredLLM that records each decision of graph thread `thread` as it is made; with
        `resume` it starts with those recorded before."""
        return JournaledTrace(self, thread, self._decisions[thread] if resume else [])

    def _append(self, entry: dict) -> None:
        line = json.dumps(entry, ensure_ascii=False, default=str) + "\n"
        with self._lock:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with open(self.path, "a", encoding="utf-8") as f:
                f.write(line)
                f.flush()


class JournaledTrace(list):
    """A thread's model decisions, each recorded in the journal as it is added. A resumed run's starts with those
    an earlier process recorded, and then an answer replayed from the journal is not logged again
    (`holds_replayed`): its decision is among them."""

    def __init__(self, journal: CallJournal, thread: str, earlier: list):
        super().__init__(earlier)
        self._journal, self._thread = journal, thread
        self.holds_replayed = bool(self)

    def append(self, decision: dict) -> None:
        super().append(decision)
        self._journal._append({"thread": self._thread, "decision": decision})
