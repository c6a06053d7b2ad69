"""Grouping by language: the language identifier's probabilities against character n-grams.

    python -m clusteragent.evals.bench_language_view [--max-docs 300] [--seeds 3]

On GoalEx's texts by language, two samples per seed: stratified (the four languages about equal), and
mostly English (90% English, then 5%, 3% and 2% of the others, as a real mixed corpus is). On each view
the agent's grouping without a model: k from estimate_k (2..20), k-means, a group of one text folded
into the nearest (structure.fold_strays). Prints the V-measure against the gold language and the k
found, per sample and seed, then the means, and the seconds each view takes on the texts.
"""

from __future__ import annotations

import argparse
import time

import numpy as np

SHARES = {"English": 0.90, "Deutsch": 0.05, "French": 0.03, "Spanish": 0.02}  # the mostly-English sample


def mostly_english(gold: list[str], n: int, seed: int) -> list[int]:
    """Row indices of a sample of `n` where each language takes its share in SHARES."""
    rng = np.random.default_rng(seed)
    rows = []
    for language, share in SHARES.items():
        members = np.flatnonzero(np.array(gold) == language)
        rows += rng.choice(members, min(len(members), max(1, round(share * n))), replace=False).tolist()
    return sorted(rows)


def grouped(x: np.ndarray, seed: int) -> np.ndarray:
    from clusteragent.structure import fold_strays, kmeans
    from clusteragent.tools.kestimate import estimate_k

    k, _ = estimate_k(x, 2, 20, seed=seed)
    return fold_strays(x, kmeans(x, k, seed), 2, [])


def main(argv: list[str] | None = None) -> None:
    from sklearn.metrics import v_measure_score

    from clusteragent.evals.tasks import Task, default_data_dir, load_task
    from clusteragent.tools.features import language_features, surface_features

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--max-docs", type=int, default=300)
    ap.add_argument("--seeds", type=int, default=3)
    args = ap.parse_args(argv)

    task = Task(corpus="goalex_syn", facet="language", instruction="Cluster the texts by language.")
    whole = load_task(task, default_data_dir())
    views = {"character n-grams": lambda texts, seed: surface_features(texts, seed=seed),
             "language identifier": lambda texts, seed: language_features(texts)}
    print("| sample | seed | " + " | ".join(f"{v}: V (k)" for v in views) + " |")
    print("|---|---:|" + "---:|" * len(views))
    scores: dict[tuple[str, str], list[float]] = {}
    seconds: dict[str, list[float]] = {v: [] for v in views}
    for seed in range(args.seeds):
        stratified = load_task(task, default_data_dir(), max_docs=args.max_docs, seed=seed)
        samples = {"stratified": (stratified.texts, stratified.gold)}
        rows = mostly_english(whole.gold, args.max_docs, seed)
        samples["mostly English"] = ([whole.texts[i] for i in rows], [whole.gold[i] for i in rows])
        for sample, (texts, gold) in samples.items():
            cells = []
            for view, features in views.items():
                started = time.perf_counter()
                x = features(texts, seed)
                seconds[view].append(time.perf_counter() - started)
                groups = grouped(x, seed)
                v = float(v_measure_score(gold, groups))
                scores.setdefault((sample, view), []).append(v)
                cells.append(f"{v:.3f} ({groups.max() + 1})")
            print(f"| {sample} | {seed} | " + " | ".join(cells) + " |", flush=True)
    for sample in ("stratified", "mostly English"):
        print(f"| {sample} | mean | " + " | ".join(f"{np.mean(scores[sample, v]):.3f}" for v in views) + " |")
    print("seconds per sample, median: " + ", ".join(f"{v} {np.median(s):.2f}" for v, s in seconds.items()))


if __name__ == "__main__":
    main()
