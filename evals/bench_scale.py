"""Scale: `clusteragent run` against `clusteragent embed` on the same texts, at growing sizes.

    python -m clusteragent.evals.bench_scale [--sizes 1000 10000 40000] [--repeats 3] [--task goemotions:ekman]

For each size, a stratified sample of the task's corpus (fixed seed) is written as JSONL; then, in fresh
processes and without the embedding cache, `clusteragent embed` and `clusteragent run` are timed. Prints
one JSON line per size with the medians over repeats: n, embed_wall_s, run_wall_s, ratio (run / embed),
model_calls, calls_per_text, peak_rss_mb (the run process's maximum resident set) and v_measure of the
run against the task's gold facet, plus the per-repeat figures.
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


def timed(command: list[str], env: dict) -> tuple[float, float]:
    """(wall seconds, peak RSS in MB) of a child process."""
    started = time.perf_counter()
    proc = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - started
    stderr = proc.stderr.read().decode(errors="replace")
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(command[:4])} ... failed ({proc.returncode}): {stderr[-2000:]}")
    return wall, usage.ru_maxrss / 1024  # ru_maxrss is in KiB on Linux


def budget_for(n: int, cap: int) -> int:
    """Model calls for n texts: at most 0.02 per text, and at most `cap`."""
    return max(4, min(cap, int(0.02 * n)))


def main(argv: list[str] | None = None) -> None:
    from sklearn.metrics import v_measure_score

    from clusteragent.evals.tasks import default_data_dir, load_task, parse_task

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[1000, 10000, 40000])
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--task", default="goemotions:ekman:Cluster the comments by the basic emotion they express.")
    ap.add_argument("--data-dir", default=None)
    ap.add_argument("--max-model-calls", type=int, default=40, help="cap on the run's budget (default 40)")
    ap.add_argument("--model", default=None, help="chat model spec (default: the embedded default)")
    ap.add_argument("--embedding-model", default=None)
    ap.add_argument("--work-dir", default=None, help="where samples and runs go (default: a temp folder)")
    args = ap.parse_args(argv)

    task = parse_task(args.task)
    data_dir = Path(args.data_dir) if args.data_dir else default_data_dir()
    work = Path(args.work_dir or tempfile.mkdtemp(prefix="bench-scale-"))
    work.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ, HF_HUB_OFFLINE="1")
    for n in args.sizes:
        data = load_task(task, data_dir, max_docs=n, seed=0)
        corpus = work / f"n{len(data.texts)}.jsonl"
        corpus.write_text("".join(json.dumps({"id": i, "text": t}, ensure_ascii=False) + "\n"
                                  for i, t in zip(data.ids, data.texts)), encoding="utf-8")
        common = ["--id-field", "id", "--no-cache", "--quiet"]
        if args.embedding_model:
            common += ["--embedding-model", args.embedding_model]
        budget = budget_for(len(data.texts), args.max_model_calls)
        runs = []
        for r in range(args.repeats):
            embed_wall, embed_rss = timed([sys.executable, "-m", "clusteragent.cli", "embed", str(corpus),
                                           "--out", str(work / "vectors.npy"), *common], env)
            out = work / f"run-n{len(data.texts)}-{r}"
            run_cmd = [sys.executable, "-m", "clusteragent.cli", "run", str(corpus), "--instruction",
                       task.instruction, "--max-model-calls", str(budget), "--out", str(out), *common]
            if args.model:
                run_cmd += ["--model", args.model]
            run_wall, run_rss = timed(run_cmd, env)
            record = json.loads((out / "run.json").read_text())
            by_id = {json.loads(line)["id"]: json.loads(line)["cluster"]
                     for line in (out / "assignments.jsonl").read_text().splitlines()}
            v = v_measure_score(data.gold, [by_id[i] for i in data.ids])
            runs.append({"embed_wall_s": round(embed_wall, 1), "run_wall_s": round(run_wall, 1),
                         "ratio": round(run_wall / embed_wall, 2), "model_calls": record["model_calls"],
                         "peak_rss_mb": round(run_rss), "embed_peak_rss_mb": round(embed_rss),
                         "v_measure": round(v, 3), "k": record["k"], "timings_s": record.get("timings_s")})
        med = {key: statistics.median(r[key] for r in runs)
               for key in ("embed_wall_s", "run_wall_s", "ratio", "model_calls", "peak_rss_mb", "v_measure")}
        print(json.dumps({"n": len(data.texts), "task": task.name, **med,
                          "calls_per_text": round(med["model_calls"] / len(data.texts), 4),
                          "budget": budget, "repeats": runs}), flush=True)


if __name__ == "__main__":
    main()
