"""The `clusteragent` command. A user error prints one line and exits with code 2, never a traceback."""

from __future__ import annotations

import argparse
import logging
import sys
import time
import warnings
from pathlib import Path

from clusteragent.errors import ClusterAgentError


def _add_corpus_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("input", help="corpus file: .jsonl/.json, .csv, .tsv, .parquet or .txt (one text per line)")
    p.add_argument("--text-field", help="field that holds the text (default: 'text' or the first known name)")
    p.add_argument("--id-field", help="field that holds each record's id (default: the 1-based line number)")


def _add_embedding_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--embedding-model", help="sentence-transformers name or local path (default: packaged MiniLM)")
    p.add_argument("--precision", choices=["auto", "fp32", "bf16"], help="embedding precision (default: auto)")
    p.add_argument("--batch-size", type=int, help="texts per embedding batch")
    p.add_argument("--no-cache", action="store_true", help="do not read or write the embedding cache")
    p.add_argument("--quiet", action="store_true", help="no progress bars")


def _settings(args: argparse.Namespace):
    from clusteragent.settings import Settings

    return Settings.resolve(
        embedding_model=getattr(args, "embedding_model", None),
        embedding_precision=getattr(args, "precision", None),
        embedding_batch_size=getattr(args, "batch_size", None),
        embedding_cache=False if getattr(args, "no_cache", False) else None,
        progress=False if getattr(args, "quiet", False) else None,
    )


def cmd_embed(args: argparse.Namespace) -> int:
    import numpy as np

    from clusteragent.errors import ConfigError
    from clusteragent.tools.corpus import load_corpus
    from clusteragent.tools.embeddings import Embedder

    out = Path(args.out)
    if out.suffix != ".npy":
        raise ConfigError(f"--out {out}: give a .npy file name.")
    corpus = load_corpus(args.input, text_field=args.text_field, id_field=args.id_field)
    settings = _settings(args)
    embedder = Embedder.from_settings(settings)
    t0 = time.perf_counter()
    vectors, stats = embedder.embed(corpus.texts)
    out.parent.mkdir(parents=True, exist_ok=True)
    np.save(out, vectors)
    source = "cache" if stats.computed == 0 else f"{stats.texts_per_second:.0f} texts/s, {stats.precision}"
    print(f"wrote {out}: {vectors.shape[0]} x {vectors.shape[1]} float32 ({source}; "
          f"{time.perf_counter() - t0:.1f}s)", file=sys.stderr)
    return 0


def build_parser() -> argparse.ArgumentParser:
    from clusteragent import __version__

    parser = argparse.ArgumentParser(prog="clusteragent",
                                     description="Cluster a corpus the way an instruction asks.")
    parser.add_argument("--version", action="version", version=f"clusteragent {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="log details to stderr")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    p = sub.add_parser("embed", help="embed a corpus into an (N, d) .npy array (rows in input order)")
    _add_corpus_options(p)
    _add_embedding_options(p)
    p.add_argument("--out", required=True, help="output .npy file")
    p.set_defaults(func=cmd_embed)
    return parser


def _show_warning(message, category, filename, lineno, file=None, line=None):
    print(f"clusteragent: warning: {message}", file=sys.stderr)


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING,
                        format="clusteragent: %(levelname)s: %(message)s")
    warnings.showwarning = _show_warning
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        return args.func(args)
    except ClusterAgentError as e:
        print(f"clusteragent: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("clusteragent: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
