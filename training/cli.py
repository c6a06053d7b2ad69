"""The `clusteragent train-embedder` command."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def cmd_train_embedder(args: argparse.Namespace) -> int:
    from clusteragent.evals.tasks import default_data_dir
    from clusteragent.settings import Settings
    from clusteragent.tools.embeddings import Embedder
    from clusteragent.training.embedder import TrainConfig, train

    given = {"steps": args.steps, "max_texts": args.max_texts}
    config = TrainConfig(str(Path(args.data_dir) if args.data_dir else default_data_dir()), exclude=args.exclude,
                         seed=args.seed, **{k: v for k, v in given.items() if v is not None})
    embedder = Embedder.from_settings(Settings.resolve())
    embedder.progress = False  # one bar, the training's
    path = train(config, args.out, embedder, progress=not args.quiet)
    print(f"wrote {path} and its card", file=sys.stderr)
    return 0


def add_train_command(sub) -> None:
    p = sub.add_parser("train-embedder", help="train the instruction-conditioned head on labelled corpora (CPU)")
    p.add_argument("--out", required=True, help="folder for the head, its card and the resumable checkpoint")
    p.add_argument("--data-dir", help="folder of CORPUS/data.jsonl files (default: the shared data folder)")
    p.add_argument("--exclude", nargs="*", default=[], help="corpora to leave out")
    p.add_argument("--steps", type=int, help="optimisation steps")
    p.add_argument("--max-texts", type=int, help="texts sampled per corpus")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=cmd_train_embedder)
