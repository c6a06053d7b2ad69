"""Grouping by subject matter: k-means on the MiniLM embeddings or on their UMAP map (tools/semantic_map.py).

    python -m clusteragent.evals.bench_meaning_map [--max-docs 300] [--seeds 3]
    python -m clusteragent.evals.bench_meaning_map --timing 2000 10000 40000

For each topical task of the dev suite, k-means with the gold k and with k=8 (the model's usual first
list) on the raw embeddings and on the 5-dimensional map, and the k that silhouette picks on each
(the agent's estimate_k, k in 2..20). Prints the V-measure against the gold facet, mean over seeds.
With --timing, instead the seconds and peak memory of the map itself on N synthetic 384-d unit vectors
(50 Gaussian groups), in one process, the first size paying UMAP's one-off compilation.
"""

from __future__ import annotations

import argparse

import numpy as np

TOPICAL = ["goalex_syn:topic", "agnews_test:topic", "clinc150:domain", "massive_en:scenario", "arxiv_titles:group",
           "arxiv_titles:archive", "twenty_newsgroups:subject", "twenty_newsgroups:newsgroup", "searchsnippets:domain",
           "biomedical_stc:mesh_topic", "stackoverflow_stc:tag", "reddit_titles:subreddit",
           "stackexchange_titles:site", "banking77:intent", "clinc150:intent"]


def main(argv: list[str] | None = None) -> None:
    from sklearn.cluster import KMeans
    from sklearn.metrics import v_measure_score

    from clusteragent.evals.tasks import default_data_dir, load_suite, load_task
    from clusteragent.tools.embeddings import Embedder
    from clusteragent.tools.kestimate import estimate_k
    from clusteragent.tools.semantic_map import semantic_map

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--max-docs", type=int, default=300)
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--timing", type=int, nargs="+", metavar="N", help="time the map at these corpus sizes")
    args = ap.parse_args(argv)
    if args.timing:
        return _timing(args.timing)

    def v(x, k, gold, seed):
        return v_measure_score(gold, KMeans(k, n_init=3, random_state=seed).fit_predict(x))

    embedder = Embedder(progress=False)
    tasks = {t.name: t for t in load_suite("dev")}
    print("| task | gold k | raw, gold k | map, gold k | raw, k=8 | map, k=8 | raw, silhouette k | map, silhouette k |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    means = []
    for name in TOPICAL:
        rows = []
        for seed in range(args.seeds):
            data = load_task(tasks[name], default_data_dir(), max_docs=args.max_docs, seed=seed)
            gold = np.array(data.gold)
            raw, _ = embedder.embed(data.texts)
            mapped = semantic_map(raw, seed=seed)
            mapped = raw if mapped is None else mapped  # too few distinct texts for a map
            kg = len(set(gold))
            k_raw = estimate_k(raw, 2, 20, seed=seed)[0]
            k_map = estimate_k(mapped, 2, 20, seed=seed, metric="euclidean")[0]
            rows.append([v(raw, kg, gold, seed), v(mapped, kg, gold, seed), v(raw, 8, gold, seed),
                         v(mapped, 8, gold, seed), v(raw, k_raw, gold, seed), v(mapped, k_map, gold, seed), k_raw, k_map])
        m = np.mean(rows, axis=0)
        means.append(m[:6])
        print(f"| {name} | {kg} | " + " | ".join(f"{x:.3f}" for x in m[:4])
              + f" | {m[4]:.3f} (k {m[6]:.1f}) | {m[5]:.3f} (k {m[7]:.1f}) |", flush=True)
    print("| mean | | " + " | ".join(f"{x:.3f}" for x in np.mean(means, axis=0)) + " |")


def _timing(sizes: list[int]) -> None:
    import resource
    import time

    from clusteragent.tools.semantic_map import semantic_map

    rng = np.random.default_rng(0)
    for n in sizes:
        centres = rng.normal(size=(50, 384))
        x = centres[rng.integers(0, 50, n)] + rng.normal(0, 1.5, (n, 384))
        x = (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)
        started = time.perf_counter()
        semantic_map(x, seed=0)
        print(f"n {n}: map {time.perf_counter() - started:.1f} s, peak RSS so far "
              f"{resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024} MB", flush=True)


if __name__ == "__main__":
    main()
