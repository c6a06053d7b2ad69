"""What the label classifier should read: embeddings, character n-grams, layout, or them side by side.

    python -m clusteragent.evals.bench_label_features [--max-docs 300] [--labels 40] [--noise 0.3]

For each task of the agent suite, gold labels on a random subset stand in for the model's labels
(a share of them replaced at random, as a small model errs), the propagation classifier spreads them
to every text, and the V-measure against the gold facet is printed for each feature set: the MiniLM
embeddings, the character n-gram and layout views (`tools/features.py`), embeddings with character
n-grams, and all three side by side (what the agent uses for facets other than topic). Mean over
three seeds.

With --heads-dir (a folder of `without-CORPUS` heads, as `bench_instruct --heads-dir` keeps them), the
embeddings conditioned on the task's instruction by the head trained without the task's corpus are
measured too, alone and in place of the embeddings among all three.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np


def main(argv: list[str] | None = None) -> None:
    from sklearn.metrics import v_measure_score

    from clusteragent.evals.tasks import default_data_dir, load_suite, load_task
    from clusteragent.tools.embeddings import Embedder
    from clusteragent.tools.features import layout_features, surface_features
    from clusteragent.tools.propagate import propagate

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--max-docs", type=int, default=300)
    ap.add_argument("--labels", type=int, default=40)
    ap.add_argument("--noise", type=float, default=0.3, help="share of labels replaced by a random class")
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--heads-dir", help="folder of without-CORPUS instruction heads (leave-one-corpus-out)")
    args = ap.parse_args(argv)

    embedder = Embedder(progress=False)
    for task in load_suite("agent"):
        data = load_task(task, default_data_dir(), max_docs=args.max_docs, seed=0)
        gold = np.array(data.gold)
        vectors, _ = embedder.embed(data.texts)
        characters, layout = surface_features(data.texts), layout_features(data.texts)
        views = {"embeddings": vectors, "characters": characters, "layout": layout,
                 "embeddings+characters": np.hstack([vectors, characters]),
                 "all": np.hstack([vectors, characters, layout])}
        if args.heads_dir:
            from clusteragent.tools.instruct import conditioned

            instructed = conditioned(vectors, task.instruction, embedder, Path(args.heads_dir) / f"without-{task.corpus}")
            views.update({"conditioned": instructed, "all, conditioned": np.hstack([instructed, characters, layout])})
        scores = {name: [] for name in views}
        for seed in range(args.seeds):
            rng = np.random.default_rng(seed)
            rows = rng.choice(len(gold), min(args.labels, len(gold)), replace=False)
            labels = gold[rows].copy()
            flip = rng.random(len(rows)) < args.noise
            labels[flip] = rng.choice(np.unique(gold), int(flip.sum()))
            for name, features in views.items():
                predicted, *_ = propagate(features, rows, labels, seed=seed)
                scores[name].append(v_measure_score(gold, predicted))
        print(json.dumps({"task": task.name, "labels": len(rows), "noise": args.noise,
                          **{name: round(float(np.mean(v)), 3) for name, v in scores.items()}}), flush=True)


if __name__ == "__main__":
    main()
