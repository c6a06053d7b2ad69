"""Leave-one-corpus-out: does the instruction-conditioned head follow a corpus's facet it never saw?

For each held-out corpus a head is trained on every other corpus, then each of the held-out corpus's
dev-suite tasks (with the dev suite's own instruction, worded unlike the training templates) is
clustered by k-means with the gold k on three representations: the plain sentence embedding, the
embedding of the instruction and text together ("prefixed"), and the head's conditioned embedding.
Prints one line per task and the means; --jsonl keeps the lines.

    python -m clusteragent.evals.bench_instruct --holdout goemotions financial_phrasebank ...
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import tempfile
from pathlib import Path

import numpy as np


def kmeans_v(vectors: np.ndarray, gold: list[str], seed: int) -> float:
    from sklearn.cluster import KMeans

    from clusteragent.evals.metrics import v_measure

    k = len(set(gold))
    return v_measure(gold, KMeans(k, n_init=3, random_state=seed).fit_predict(vectors))


def evaluate(head, corpus: str, embedder, data_dir: Path, eval_docs: int, seed: int) -> list[dict]:
    """V of k-means with the gold k on each dev-suite task of `corpus`, on the three representations."""
    from clusteragent.evals.tasks import load_suite, load_task

    rows = []
    for task in [t for t in load_suite("dev") if t.corpus == corpus]:
        data = load_task(task, data_dir, eval_docs, seed=seed + 1)
        x = embedder.embed(data.texts)[0]
        prefixed = embedder.embed([f"{task.instruction} {t}" for t in data.texts])[0]
        rows.append({"task": task.name, "n": len(data.texts), "k": len(set(data.gold)),
                     "minilm": kmeans_v(x, data.gold, seed), "prefixed": kmeans_v(prefixed, data.gold, seed),
                     "head": kmeans_v(head.condition(x, task.instruction, embedder), data.gold, seed)})
    return rows


def main(argv: list[str] | None = None) -> int:
    from clusteragent.evals.tasks import default_data_dir
    from clusteragent.settings import Settings
    from clusteragent.tools.embeddings import Embedder
    from clusteragent.tools.instruct import InstructHead
    from clusteragent.training.embedder import TrainConfig, train
    from clusteragent.training.tasks import corpora

    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data-dir", type=Path)
    p.add_argument("--holdout", nargs="*", help="corpora to hold out one at a time (default: every corpus)")
    p.add_argument("--head", help="evaluate this trained head on every held-out corpus instead of training")
    p.add_argument("--steps", type=int, default=TrainConfig.steps)
    p.add_argument("--max-texts", type=int, default=TrainConfig.max_texts)
    p.add_argument("--lr", type=float, default=TrainConfig.lr)
    p.add_argument("--hidden", type=int, default=TrainConfig.hidden, help="0: the gate and linear map only")
    p.add_argument("--fixed-linear", action="store_true", help="keep the linear map the identity")
    p.add_argument("--preserve", type=float, default=TrainConfig.preserve,
                   help="weight of the penalty on changing the plain embedding's similarities")
    p.add_argument("--eval-docs", type=int, default=1000)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--heads-dir", type=Path, help="keep each fold's head here (default: a temporary folder)")
    p.add_argument("--jsonl", type=Path, help="append one line per task here")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    data_dir = args.data_dir or default_data_dir()
    settings = Settings.resolve()
    embedder = Embedder.from_settings(settings)
    embedder.progress = False
    holdout = args.holdout or corpora(data_dir)
    all_rows = []
    given = InstructHead.load(args.head) if args.head else None
    with tempfile.TemporaryDirectory() as tmp:
        for corpus in holdout:
            if given is not None:
                head = given
            else:
                folder = (args.heads_dir or Path(tmp)) / f"without-{corpus}"
                config = TrainConfig(str(data_dir), exclude=[corpus], steps=args.steps, max_texts=args.max_texts,
                                     lr=args.lr, hidden=args.hidden, free_linear=not args.fixed_linear,
                                     preserve=args.preserve, seed=args.seed)
                head = InstructHead.load(Path(train(config, folder, embedder, progress=False)).parent)
            for row in evaluate(head, corpus, embedder, data_dir, args.eval_docs, args.seed):
                row.update(held_out=corpus, steps=args.steps, lr=args.lr, hidden=args.hidden,
                           fixed_linear=args.fixed_linear, preserve=args.preserve, seed=args.seed,
                           trained=not args.head)
                all_rows.append(row)
                print(f"{row['task']:36s} k={row['k']:3d}  minilm {row['minilm']:.3f}  prefixed "
                      f"{row['prefixed']:.3f}  head {row['head']:.3f}  ({row['head'] - row['minilm']:+.3f})",
                      flush=True)
                if args.jsonl:
                    with open(args.jsonl, "a", encoding="utf-8") as f:
                        f.write(json.dumps(row) + "\n")
    if all_rows:
        mean = {k: float(np.mean([r[k] for r in all_rows])) for k in ("minilm", "prefixed", "head")}
        worst = min(r["head"] - r["minilm"] for r in all_rows)
        print(f"mean over {len(all_rows)} tasks: minilm {mean['minilm']:.3f}  prefixed {mean['prefixed']:.3f}  "
              f"head {mean['head']:.3f}  (gain {mean['head'] - mean['minilm']:+.3f}, worst task {worst:+.3f})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
