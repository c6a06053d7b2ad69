"""Embedding throughput on a corpus, fp32 against bf16 autocast, median of repeated runs.

    python -m clusteragent.evals.bench_embed [CORPUS] [--repeats 3]

Prints one JSON line per precision (texts/s median and each run) and the cosine agreement of bf16
with fp32 (minimum and mean over rows). No cache is used, so every run computes.
"""

from __future__ import annotations

import argparse
import json
import statistics

import numpy as np

from clusteragent.tools.corpus import load_corpus, sample_corpus_path
from clusteragent.tools.embeddings import Embedder, bf16_supported


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("corpus", nargs="?", default=str(sample_corpus_path()))
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--batch-size", type=int, default=64)
    args = ap.parse_args(argv)
    texts = load_corpus(args.corpus).texts
    results = {}
    precisions = ["fp32"] + (["bf16"] if bf16_supported() else [])
    for precision in precisions:
        embedder = Embedder(precision=precision, batch_size=args.batch_size, cache_dir=None, progress=False)
        embedder.embed(texts[:64])  # warm-up: first-call allocations are not throughput
        runs = []
        for _ in range(args.repeats):
            vectors, stats = embedder.embed(texts)
            runs.append(stats.texts_per_second)
        results[precision] = vectors
        print(json.dumps({"precision": precision, "n": len(texts), "texts_per_s_median": round(statistics.median(runs), 1),
                          "runs": [round(r, 1) for r in runs]}), flush=True)
    if "bf16" in results:
        cos = np.sum(results["fp32"] * results["bf16"], axis=1)
        print(json.dumps({"bf16_vs_fp32_cosine_min": round(float(cos.min()), 5),
                          "bf16_vs_fp32_cosine_mean": round(float(cos.mean()), 5)}))


if __name__ == "__main__":
    main()
