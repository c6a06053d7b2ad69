"""The static (model2vec, distilled from MiniLM) embedding model against MiniLM: speed and clustering quality.

    python -m clusteragent.evals.bench_static [--tasks clinc150:domain ...] [--max-docs 2000] [--repeats 3]

Prints one JSON line per model with its throughput on the bundled sample (median of repeats, no cache),
then one per task with k-means (oracle k, seed 0) V-measure on each model's embeddings of the same
stratified sample, and the difference.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

DEFAULT_TASKS = ["clinc150:domain", "massive_en:scenario", "agnews_test:topic", "banking77:intent",
                 "twenty_newsgroups:subject", "goemotions:sentiment"]


def main(argv: list[str] | None = None) -> None:
    from sklearn.cluster import KMeans
    from sklearn.metrics import v_measure_score

    from clusteragent.evals.tasks import default_data_dir, load_task, parse_task
    from clusteragent.tools.corpus import load_corpus, sample_corpus_path
    from clusteragent.tools.embeddings import Embedder

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--tasks", nargs="+", default=DEFAULT_TASKS)
    ap.add_argument("--max-docs", type=int, default=2000)
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args(argv)
    models = {"minilm": Embedder(progress=False), "static": Embedder("static", progress=False)}
    sample = load_corpus(sample_corpus_path()).texts
    for name, embedder in models.items():
        _ = embedder.model  # load (and for static, distill once) before timing
        runs = []
        for _ in range(args.repeats):
            started = time.perf_counter()
            embedder.embed(sample)
            runs.append(len(sample) / (time.perf_counter() - started))
        print(json.dumps({"model": name, "precision": embedder.precision if name == "minilm" else "-",
                          "texts_per_s": round(statistics.median(runs)), "runs": [round(r) for r in runs]}),
              flush=True)
    for spec in args.tasks:
        data = load_task(parse_task(spec), default_data_dir(), max_docs=args.max_docs, seed=0)
        k = len(set(data.gold))
        scores = {}
        for name, embedder in models.items():
            vectors, _ = embedder.embed(data.texts)
            labels = KMeans(k, n_init=3, random_state=0).fit_predict(vectors)
            scores[name] = round(v_measure_score(data.gold, labels), 3)
        print(json.dumps({"task": spec, "n": len(data.texts), "k": k, **scores,
                          "static_minus_minilm": round(scores["static"] - scores["minilm"], 3)}), flush=True)


if __name__ == "__main__":
    main()
