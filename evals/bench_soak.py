"""Soak: many short runs and chat turns against a model server that fails at random, with kills and resumes.

    python -m clusteragent.evals.bench_soak [--runs 50] [--fault-rate 0.1] [--kill-every 5] [--seed 0]

Each run clusters a different sample (40 to 80 texts) of the bundled CLINC150 queries through
`clusteragent run` against the loopback fault server (clusteragent.evals.fault_server), which fails
`--fault-rate` of its requests with a 500, a reset connection, an answer slower than `--timeout`, or
invalid JSON. Which requests fail depends only on their content (a request fails the first time it is
asked, not when asked again), so a run can be repeated with the same faults. Every `--kill-every`-th run is also started in a
child process, killed with SIGKILL half-way, and resumed with `--resume` (again after any stop) until it
finishes. Then one chat turn runs on the result under the same faults.

Checked for every run (the counts are printed as one JSON line at the end):
  ids_once        assignments.jsonl holds every input id exactly once, in input order
  budget_kept     the server saw at most --max-model-calls requests (plus, after a kill, the requests that
                  were in flight when it came: at most 8 each), and run.json counts at most the budget
  resume_same     a killed and resumed run wrote the same assignments as the uninterrupted one
  refine_ok       the chat turn ended with exit 0 or one error line, and every id is still there once
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

PARALLEL = 8  # the openai backend's requests in flight: what a kill can leave unanswered


class Faults:
    """Faults chosen by a request's content: `rate` of the distinct requests fail the first time they are
    asked, and are answered when asked again. The same contents fail in every repeat of a run, however it
    was interrupted, which is what lets a killed and resumed run be compared with an uninterrupted one."""

    def __init__(self, rate: float, timeout: float, seed: int):
        self.rate, self.timeout, self.seed = rate, timeout, seed
        self.server = None
        self.seen: dict[str, int] = {}
        self.injected: dict[str, int] = {}
        self._lock = threading.Lock()
        self._open = threading.Event()
        self._open.set()
        self.epoch = 0
        self.slow_until = 0.0  # when the latest slow answer will have timed out at its client

    def hold(self) -> None:
        """Keep requests that arrive from now on waiting, undecided, until `release`."""
        self._open.clear()

    def release(self, killed: bool) -> None:
        """Let held requests go on; after a kill they are dropped unanswered and uncounted (their client
        is gone), so the resumed run meets each request's fault as the uninterrupted run did."""
        self.epoch += int(killed)
        self._open.set()

    def __call__(self, number: int):
        epoch = self.epoch
        self._open.wait()
        if self.epoch != epoch:
            return "reset"
        body = self.server.bodies[number - 1]
        content = json.dumps(body.get("messages"), sort_keys=True)
        with self._lock:
            occurrence = self.seen.get(content, 0)
            self.seen[content] = occurrence + 1
        digest = hashlib.sha256(f"{self.seed}\0{content}".encode()).digest()
        if occurrence > 0 or int.from_bytes(digest[:4], "big") / 2 ** 32 >= self.rate:
            return None
        fault = [500, "reset", ("slow", self.timeout + 0.5), "invalid_json"][digest[4] % 4]
        name = fault[0] if isinstance(fault, tuple) else str(fault)
        with self._lock:
            self.injected[name] = self.injected.get(name, 0) + 1
            if name == "slow":
                self.slow_until = max(self.slow_until, time.time() + self.timeout + 0.3)
        return fault


def serve(faults: Faults):
    from clusteragent.evals.fault_server import FakeOpenAIServer

    server = FakeOpenAIServer(faults)
    faults.server = server
    return server


def write_corpus(path: Path, records: list[dict]) -> None:
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records), encoding="utf-8")


def cli(args: list[str], url: str, background: bool = False):
    env = dict(os.environ, OPENAI_BASE_URL=url, HF_HUB_OFFLINE="1")
    command = [sys.executable, "-m", "clusteragent.cli", *args]
    if background:
        return subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    return subprocess.run(command, env=env, capture_output=True, text=True, timeout=600)


def ids_once(out: Path, records: list[dict]) -> bool:
    path = out / "assignments.jsonl"
    if not path.exists():
        return False
    ids = [json.loads(line)["id"] for line in path.read_text(encoding="utf-8").splitlines()]
    return ids == [r["id"] for r in records]


def one_line_error(stderr: str) -> bool:
    lines = [line for line in stderr.splitlines() if line.startswith("clusteragent: error:")]
    return "Traceback" not in stderr and len(lines) == 1


def killed_and_resumed(args: list[str], out: Path, faults: Faults, half: int) -> tuple[int, int]:
    """Run in a child, SIGKILL it after `half` requests, resume until done; (requests sent, kills)."""
    with serve(faults) as server:
        proc = cli(args, server.url, background=True)
        deadline = time.time() + 300
        while (server.requests < half or time.time() < faults.slow_until) and proc.poll() is None \
                and time.time() < deadline:
            time.sleep(0.01)
        # Hold new requests, let those already answered reach the client (no slow answer is pending), then
        # kill: what was in flight dies undecided, instead of with a fault the journal never saw.
        faults.hold()
        time.sleep(0.3)
        kills = int(proc.poll() is None)
        if kills:
            proc.send_signal(signal.SIGKILL)
        proc.wait()
        faults.release(killed=bool(kills))
        for _ in range(6):  # a stop (three failed calls in a row) is resumed too, as a user would
            done = cli(args + ["--resume"], server.url)
            if done.returncode == 0:
                break
            if not one_line_error(done.stderr):
                raise RuntimeError(f"resume failed without one error line: {done.stderr[-2000:]}")
        return server.requests, kills


def soak_one(i: int, texts: list[str], folder: Path, options: argparse.Namespace) -> dict:
    rng = random.Random(options.seed * 1000 + i)
    rows = rng.sample(range(len(texts)), rng.randint(40, 80))
    records = [{"id": f"q{r}", "text": texts[r]} for r in rows]
    path = folder / f"corpus-{i}.jsonl"
    write_corpus(path, records)
    budget = rng.choice([12, 20, 30])
    out = folder / f"run-{i}"
    args = ["run", str(path), "--id-field", "id", "--instruction", "Group these assistant queries by what the user wants.",
            "--model", "openai:soak", "--max-model-calls", str(budget), "--timeout", str(options.timeout),
            "--seed", str(i), "--quiet", "--out", str(out)]
    faults = Faults(options.fault_rate, options.timeout, options.seed * 1000 + i)
    with serve(faults) as server:
        first = cli(args, server.url)
        stops = 0
        while first.returncode == 2 and "--resume" in first.stderr and stops < 6:  # a stop, resumed
            stops += 1
            first = cli(args + ["--resume"], server.url)
        sent = server.requests
    record = {"run": i, "texts": len(records), "budget": budget, "requests": sent, "stops": stops,
              "exit": first.returncode, "faults": dict(faults.injected)}
    if first.returncode != 0:
        record["error"] = first.stderr.strip().splitlines()[-1:] if first.stderr else []
    run = json.loads((out / "run.json").read_text()) if (out / "run.json").exists() else {}
    record["ids_once"] = first.returncode == 0 and ids_once(out, records)
    record["budget_kept"] = sent <= budget and run.get("model_calls", 0) <= budget
    if options.kill_every and i % options.kill_every == 0:
        again = folder / f"run-{i}-killed"
        resumed_args = args[:-1] + [str(again)]
        sent_killed, kills = killed_and_resumed(resumed_args, again, Faults(options.fault_rate, options.timeout,
                                                                            options.seed * 1000 + i), max(2, sent // 2))
        record.update(killed=bool(kills), requests_killed=sent_killed)
        record["budget_kept"] = record["budget_kept"] and sent_killed <= budget + PARALLEL * kills
        record["resume_same"] = ids_once(again, records) and \
            (again / "assignments.jsonl").read_text() == (out / "assignments.jsonl").read_text()
    if first.returncode == 0:
        with serve(Faults(options.fault_rate, options.timeout, options.seed * 1000 + i + 500)) as server:
            turn = cli(["refine", str(out), "Merge the two smallest clusters into one.", "--timeout",
                        str(options.timeout)], server.url)
        record["refine_ok"] = (turn.returncode == 0 or (turn.returncode == 2 and one_line_error(turn.stderr))) \
            and ids_once(out, records)
        if not record["refine_ok"]:
            record["refine_error"] = turn.stderr.strip().splitlines()[-3:]
    return record


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=50)
    parser.add_argument("--fault-rate", type=float, default=0.1)
    parser.add_argument("--kill-every", type=int, default=5, help="kill and resume every n-th run (0: never)")
    parser.add_argument("--timeout", type=float, default=1.0, help="the runs' --timeout; slow answers take longer")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--only", type=int, nargs="*", help="run only these run numbers (to look at one again)")
    parser.add_argument("--keep", help="keep the run folders here instead of a temporary folder")
    options = parser.parse_args(argv)

    from clusteragent.tools.corpus import load_corpus, sample_corpus_path

    texts = load_corpus(sample_corpus_path(), quiet=True).texts
    started = time.perf_counter()
    records = []
    with tempfile.TemporaryDirectory(prefix="soak-") as tmp:
        folder = Path(options.keep or tmp)
        folder.mkdir(parents=True, exist_ok=True)
        for i in options.only if options.only else range(options.runs):
            record = soak_one(i, texts, folder, options)
            records.append(record)
            print(json.dumps(record), flush=True)
    checks = ("ids_once", "budget_kept", "resume_same", "refine_ok")
    summary = {"runs": len(records), "wall_s": round(time.perf_counter() - started, 1),
               "fault_rate": options.fault_rate, "requests": sum(r["requests"] for r in records),
               "faults": {k: sum(r["faults"].get(k, 0) for r in records) for k in ("500", "reset", "slow", "invalid_json")},
               "stops_resumed": sum(r["stops"] for r in records), "killed": sum(bool(r.get("killed")) for r in records)}
    for check in checks:
        relevant = [r[check] for r in records if check in r]
        summary[check] = f"{sum(relevant)}/{len(relevant)}"
    print(json.dumps(summary))
    return 0 if all(all(r.get(c, True) for c in checks) for r in records) else 1


if __name__ == "__main__":
    sys.exit(main())
