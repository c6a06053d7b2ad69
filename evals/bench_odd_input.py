"""Odd input: what one enormous text and many identical texts cost a whole `clusteragent run`.

    python -m clusteragent.evals.bench_odd_input [--repeats 3] [--huge-mb 50] [--identical 50000]

Three corpora, each run in a fresh process against the loopback fault server (clusteragent.evals.
fault_server, no faults; the server answers at once, so the figures are the run's own work), with the
embedding cache off and a budget of 10 model calls:
  short       29 short texts (the bundled CLINC150 sample's first 29)
  huge        the same 29 and one text of --huge-mb megabytes
  identical   --identical copies of one text
Prints one JSON line per corpus with the medians over repeats: wall seconds and peak resident memory
(MB) of the run process.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def measure(path: Path, out: Path, url: str) -> tuple[float, float]:
    """(wall seconds, peak RSS in MB) of one `clusteragent run` process."""
    env = dict(os.environ, OPENAI_BASE_URL=url, HF_HUB_OFFLINE="1")
    command = [sys.executable, "-m", "clusteragent.cli", "run", str(path), "--instruction",
               "Group these queries by what the user wants.", "--model", "openai:bench", "--max-model-calls", "10",
               "--no-cache", "--quiet", "--force", "--out", str(out)]
    started = time.perf_counter()
    proc = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - started
    if os.waitstatus_to_exitcode(status) != 0:
        raise RuntimeError(proc.stderr.read().decode(errors="replace")[-2000:])
    return wall, usage.ru_maxrss / 1024  # KiB on Linux


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--huge-mb", type=float, default=50)
    parser.add_argument("--identical", type=int, default=50_000)
    options = parser.parse_args(argv)

    from clusteragent.evals.fault_server import FakeOpenAIServer
    from clusteragent.tools.corpus import load_corpus, sample_corpus_path

    texts = load_corpus(sample_corpus_path(), quiet=True).texts[:29]
    short = [{"id": i, "text": t} for i, t in enumerate(texts)]
    corpora = {
        "short": short,
        "huge": short + [{"id": "huge", "text": "word " * int(options.huge_mb * 1e6 / 5)}],
        "identical": [{"id": i, "text": texts[0]} for i in range(options.identical)],
    }
    with tempfile.TemporaryDirectory(prefix="odd-") as tmp, FakeOpenAIServer() as server:
        for name, records in corpora.items():
            path = Path(tmp) / f"{name}.jsonl"
            path.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
            runs = [measure(path, Path(tmp) / f"out-{name}", server.url) for _ in range(options.repeats)]
            print(json.dumps({"corpus": name, "texts": len(records), "mb": round(path.stat().st_size / 1e6, 1),
                              "wall_s": round(statistics.median(r[0] for r in runs), 1),
                              "peak_rss_mb": round(statistics.median(r[1] for r in runs)),
                              "repeats": [[round(w, 1), round(m)] for w, m in runs]}), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
