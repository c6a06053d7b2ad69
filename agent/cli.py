"""The `clusteragent` command. A user error prints one line and exits with code 2, never a traceback."""

from __future__ import annotations

import argparse
import logging
import shlex
import sys
import time
import warnings
from pathlib import Path

from clusteragent.errors import ClusterAgentError, counted

VIEWS = ("meaning", "characters", "layout", "reading")  # facets.View, not imported so that --help stays fast


def _add_corpus_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("input", help="corpus file: .jsonl/.json, .csv, .tsv, .parquet, .xlsx or .txt (one text per line), "
                   "also compressed (.gz, .bz2, .xz); or a folder of .txt/.md files, one text per file")
    p.add_argument("--text-field", action="append", help="field that holds the text (default: 'text', 'body', "
                   "'message', 'review', ... in any case, else the one field of words); give it again to join "
                   "several fields' values into each text, e.g. --text-field title --text-field abstract")
    p.add_argument("--id-field", help="field that holds each record's id (default: 'id' in any case, else the one "
                   "field named as an id with unique values, 'tweet_id', else the 1-based line number)")
    p.add_argument("--encoding", help="the file's text encoding, e.g. cp1252 (default: UTF-8; a line that is not "
                   "UTF-8 is read as Windows-1252, with a warning)")


def _add_embedding_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--embedding-model", help="sentence-transformers name or local path (default: packaged MiniLM)")
    p.add_argument("--precision", choices=["auto", "fp32", "bf16"], help="embedding precision (default: auto)")
    p.add_argument("--batch-size", type=int, help="texts per embedding batch")
    p.add_argument("--no-cache", action="store_true", help="do not read or write the embedding cache")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    p.add_argument("--executor", choices=["local", "ray"], default="local",
                   help="run embedding (and a served model's labelling) here or on a Ray cluster")
    p.add_argument("--ray-address", help="Ray cluster address for --executor ray (default: start a local instance)")


def _add_timeout_option(p: argparse.ArgumentParser) -> None:
    p.add_argument("--timeout", type=float, help="seconds to wait for one model answer before asking again (default 120)")


def _add_outlier_options(p: argparse.ArgumentParser, bound: str) -> None:
    p.add_argument("--outliers", action="store_true",
                   help="texts that fit no cluster go to cluster -1, 'Outliers', not to the nearest cluster")
    p.add_argument("--max-outliers", type=float, default=0.05, help=f"with --outliers: {bound} (default 0.05)")


def timeout_options(timeout: float | None) -> dict | None:
    return {"timeout": timeout} if timeout else None


def _print_notes(notes: list[str]) -> None:
    from clusteragent.tools.taxonomy import printable

    for note in notes:
        print(f"note: {printable(note)}", file=sys.stderr)


def settings_of(args: argparse.Namespace):
    """The settings a command's embedding and progress options give, over the environment's and the defaults."""
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
    if args.head and not args.instruction:
        raise ConfigError("--head conditions the vectors on an instruction: give --instruction too.")
    corpus = load_corpus(args.input, text_field=args.text_field, id_field=args.id_field, encoding=args.encoding)
    from clusteragent.executors import make_executor

    settings = settings_of(args)
    embedder = Embedder.from_settings(settings, make_executor(args.executor, args.ray_address))
    t0 = time.perf_counter()
    vectors, stats = embedder.embed(corpus.texts)
    if args.instruction:
        from clusteragent.tools.instruct import conditioned

        vectors = conditioned(vectors, args.instruction, embedder, args.head)
    out.parent.mkdir(parents=True, exist_ok=True)
    np.save(out, vectors)
    source = "cache" if stats.computed == 0 else f"{stats.texts_per_second:.0f} texts/s, {stats.precision}"
    print(f"wrote {out}: {vectors.shape[0]} x {vectors.shape[1]} float32 ({source}; "
          f"{time.perf_counter() - t0:.1f}s)", file=sys.stderr)
    return 0


def cmd_run(args: argparse.Namespace) -> int:
    from clusteragent import ClusterAgent, load_corpus

    corpus = load_corpus(args.input, text_field=args.text_field, id_field=args.id_field, encoding=args.encoding)
    settings = settings_of(args)
    agent = ClusterAgent(model=args.model, k=args.k, k_min=args.k_min, k_max=args.k_max,
                         max_model_calls=args.max_model_calls, seed=args.seed, settings=settings,
                         outliers=args.outliers, max_outliers=args.max_outliers,
                         progress=not args.quiet, executor=args.executor, ray_address=args.ray_address,
                         model_options=timeout_options(getattr(args, "timeout", None)), view=args.view,
                         **({} if args.reading_max_texts is None else {"reading_max_texts": args.reading_max_texts}))
    agent.source_options = {"source": str(Path(args.input).resolve())}
    from clusteragent.errors import ModelUnavailable
    from clusteragent.hierarchy import held_under
    from clusteragent.run_folder import make_run_folder
    from clusteragent.run_lock import RunLock

    agent.config.k_range(len(corpus))  # a k larger than the corpus fails before the folder is made
    out = make_run_folder(Path(args.out), (args.input,), force=args.force)
    with RunLock(out):  # held from the run's first write to its last
        try:
            result = agent.fit(corpus, instruction=args.instruction, out_dir=out, resume=args.resume,
                               force=args.force).result_
        except ModelUnavailable as e:
            raise ModelUnavailable(f"{e} {_kept_for_resume(args, out, 'when the server is back')}") from None
        except KeyboardInterrupt:
            raise KeyboardInterrupt(_kept_for_resume(args, out, "to go on")) from None
        result.write(out)
    run = result.run
    replayed = f", {run['replayed_calls']} replayed from the journal" if run.get("replayed_calls") else ""
    held = held_under(result.top_clusters, result.k)  # ", 28 of them under 8 top clusters"
    print(f"{counted(result.k, 'cluster')}{held}{',' if held else ''} for {counted(len(result.ids), 'text')} ("
          f"{counted(run['model_calls'], 'model call')}{replayed}, "
          f"{run['wall_s']}s); wrote {out}/assignments.jsonl, clusters.json, run.json")
    _print_clusters(result)
    _print_notes(run["notes"])
    return 0


def _kept_for_resume(args: argparse.Namespace, out: Path, when: str) -> str:
    """What an unfinished run keeps, and the command that goes on with it."""
    if args.command == "run":
        again = "run the same command with --resume"
    else:  # chat clustered the corpus first: its own command has no --resume
        again = (f"run `clusteragent run {shlex.quote(str(args.input))} --instruction "
                 f"{shlex.quote(args.instruction)} --out {shlex.quote(str(out))} --resume`, then chat on {out}")
    return f"Finished steps and answers are kept in {out}; {when}, {again}."


def _print_clusters(result) -> None:
    """The clusters, one a line; under each top cluster its own, indented, where the run has two levels."""
    def line(c: dict, indent: str = "") -> str:
        return f"  {indent}{c['cluster']:>3}  {c['size']:>6}  {c['name']}: {c['description']}"

    lines = []
    for top in result.top_clusters:
        lines += [line(top)] + [line(c, "    ") for c in result.clusters if c.get("parent") == top["cluster"]]
    lines += [line(c) for c in result.clusters if c.get("parent") is None]
    print("\n".join(lines))


def _refine_turn(session, out: Path, message: str) -> None:
    """One chat turn on the folder (see RefineSession.turn_and_write), then its reply."""
    print(session.turn_and_write(message, out).text)


def _open_session(out: Path, model: str | None, timeout: float | None = None, progress: bool = True):
    from clusteragent import ClusterAgent
    from clusteragent.run_lock import RunLock

    with RunLock(out, "refine"):  # progress: a turn that clusters again ("by tone instead") runs for minutes
        return ClusterAgent.load(out, model=model, progress=progress,
                                 model_options=timeout_options(timeout)).refine_session()


def cmd_refine(args: argparse.Namespace) -> int:
    out = Path(args.out_dir)
    session = _open_session(out, args.model, args.timeout, progress=not args.quiet)
    _refine_turn(session, out, args.message)
    return 0


def cmd_chat(args: argparse.Namespace) -> int:
    from clusteragent.errors import ConfigError
    from clusteragent.prompt_state import reading_ahead

    target = Path(args.target)
    if target.is_dir():
        out = target
    else:
        if not args.instruction or not args.out:
            raise ConfigError(f"{target} is a corpus file: give --instruction and --out to cluster it first "
                              "(or give the folder of an earlier run).")
        defaults = build_parser().parse_args(["run", args.target, "--instruction", args.instruction, "--out", args.out])
        args = argparse.Namespace(**{**vars(defaults), **vars(args), "input": args.target, "resume": False})
        cmd_run(args)  # with the run's defaults for the options chat does not take (--k, --outliers, ...)
        out = Path(args.out)
    session = _open_session(out, args.model, args.timeout, progress=not args.quiet)
    with reading_ahead(session):  # the model reads the cluster listing while the user types
        print('Refine the clustering: "merge A and B", "split C", "why is text 17 in D?", "undo". '
              "An empty line or 'exit' ends.", file=sys.stderr)
        while True:
            try:
                message = input("> ").strip()
            except EOFError:
                break
            if not message or message.lower() in ("exit", "quit"):
                break
            try:
                _refine_turn(session, out, message)
            except ClusterAgentError as e:
                from clusteragent.redact import redact

                print(f"clusteragent: error: {redact(str(e))}", file=sys.stderr)
    return 0


def cmd_assign(args: argparse.Namespace) -> int:
    from clusteragent import ClusterAgent, load_corpus
    from clusteragent.cli_outputs import output_path
    from clusteragent.errors import ConfigError
    from clusteragent.result import TABLE_FORMATS, write_table
    from clusteragent.run_lock import RunLock

    run_dir = Path(args.out_dir)
    target = output_path(run_dir, args.out, keep=(args.input,))
    if target.suffix.lstrip(".") not in TABLE_FORMATS:
        raise ConfigError(f"--out {target}: give a file ending in .{', .'.join(TABLE_FORMATS)}.")
    corpus = load_corpus(args.input, text_field=args.text_field, id_field=args.id_field, encoding=args.encoding)
    with RunLock(run_dir, "assign"):
        agent = ClusterAgent.load(run_dir, model=args.model, progress=not args.quiet,
                                  model_options=timeout_options(args.timeout))
        result = agent.predict(corpus, max_model_calls=args.max_model_calls, outliers=args.outliers,
                               max_outliers=args.max_outliers, update=args.update)
    write_table(result.to_pandas(with_text=False), target)
    run = result.run
    print(f"{counted(len(result.ids), 'text')} into {counted(result.k, 'cluster')} of {run_dir} ("
          f"{counted(run['model_calls'], 'model call')}, {counted(run['labelled_by_model'], 'text')} placed by the "
          f"model, {run['wall_s']}s); wrote {target}")
    _print_clusters(result)
    _print_notes(run["notes"])
    return 0


def build_parser() -> argparse.ArgumentParser:
    from clusteragent import __version__
    from clusteragent.cli_checks import add_check_commands
    from clusteragent.cli_outputs import add_output_commands
    from clusteragent.training.cli import add_train_command

    parser = argparse.ArgumentParser(prog="clusteragent",
                                     description="Cluster a corpus the way an instruction asks.")
    parser.add_argument("--version", action="version", version=f"clusteragent {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="log details to stderr")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    p = sub.add_parser("embed", help="embed a corpus into an (N, d) .npy array (rows in input order)")
    _add_corpus_options(p)
    _add_embedding_options(p)
    p.add_argument("--instruction", help="give the instruction-conditioned vectors for this instruction "
                   "(the trained head over the sentence embedding)")
    p.add_argument("--head", help="with --instruction: a head folder written by train-embedder (default: packaged)")
    p.add_argument("--out", required=True, help="output .npy file")
    p.set_defaults(func=cmd_embed)

    p = sub.add_parser("run", help="cluster a corpus by an instruction and write the result to --out")
    _add_corpus_options(p)
    p.add_argument("--instruction", required=True, help="how to cluster, e.g. 'by the customer\'s intent'")
    k = p.add_mutually_exclusive_group()
    k.add_argument("--k", type=int, help="exact number of clusters (default: the agent decides); where the model's "
                   "labels use fewer, the largest clusters are split until there are k")
    k.add_argument("--k-min", type=int, help="fewest clusters allowed (default 2)")
    p.add_argument("--k-max", type=int, help="most clusters allowed (default 20; by subject matter up to 50, "
                   "at least 5 texts a cluster)")
    p.add_argument("--model", help="chat model, provider:name (default: the embedded llama.cpp model)")
    p.add_argument("--max-model-calls", type=int, default=150,
                   help="hard cap on requests to the chat model, retries included (default 150)")
    _add_timeout_option(p)
    p.add_argument("--reading-max-texts", type=int,
                   help="for a facet no view follows (sentiment, tone, dialog act), the model reads every text of a "
                        "corpus of at most this many (default 1000; about a second a short text on two cores); "
                        "0 never reads: the model labels a sample instead, faster on long texts")
    p.add_argument("--view", choices=VIEWS, help="cluster on this view whatever the instruction reads like: reading "
                   "(the model reads each text) for a facet such as urgency or tone that the run took for subject matter")
    p.add_argument("--seed", type=int, default=0, help="seed for samples and classifiers (default 0)")
    _add_outlier_options(p, "the largest share of the texts that may be outliers")
    p.add_argument("--out", required=True, help="output folder (also holds the run's checkpoints)")
    p.add_argument("--resume", action="store_true",
                   help="continue the run in --out from its last checkpoint, replaying finished model calls")
    p.add_argument("--force", action="store_true",
                   help="write into an --out folder that holds other files (only the run's own files are replaced)")
    _add_embedding_options(p)
    p.set_defaults(func=cmd_run)

    p = sub.add_parser("refine", help="one chat turn on a finished run: apply the message, rewrite its files")
    p.add_argument("out_dir", help="the --out folder of a `clusteragent run`")
    p.add_argument("message", help='what to change or ask, e.g. \'Merge the clusters "A" and "B" into one.\'')
    p.add_argument("--model", help="chat model, provider:name (default: the run's model)")
    _add_timeout_option(p)
    p.add_argument("--quiet", action="store_true", help="no progress messages (a turn that clusters again shows them)")
    p.set_defaults(func=cmd_refine)

    p = sub.add_parser("chat", help="refine a run interactively (or cluster a corpus first, then refine)")
    p.add_argument("target", help="the --out folder of a run, or a corpus file (then give --instruction and --out)")
    p.add_argument("--instruction", help="how to cluster, when target is a corpus file")
    p.add_argument("--out", help="output folder, when target is a corpus file")
    p.add_argument("--view", choices=VIEWS, help="as run's, for a corpus file")
    p.add_argument("--text-field", action="append", help="as run's")
    p.add_argument("--id-field")
    p.add_argument("--encoding")
    p.add_argument("--model", help="chat model, provider:name (default: the run's model)")
    p.add_argument("--max-model-calls", type=int, default=150)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--force", action="store_true", help="write into an --out folder that holds other files")
    _add_timeout_option(p)
    _add_embedding_options(p)
    p.set_defaults(func=cmd_chat)

    p = sub.add_parser("assign", help="put new texts into the clusters of a finished run")
    p.add_argument("out_dir", help="the --out folder of a `clusteragent run`")
    _add_corpus_options(p)
    p.add_argument("--out", required=True, help="where to write each new text's cluster: .jsonl, .csv or .parquet")
    p.add_argument("--max-model-calls", type=int,
                   help="requests to the chat model for the least certain texts (default: 0.05 per new text, "
                        "at most 10)")
    _add_outlier_options(p, "the share of texts like the run's that may be called outliers")
    p.add_argument("--update", action="store_true",
                   help="the new texts join the run, and outliers that hang together become new clusters (new ids; "
                        "implies --outliers; `refine OUT undo` takes it back)")
    p.add_argument("--model", help="chat model, provider:name (default: the run's model)")
    p.add_argument("--quiet", action="store_true", help="no progress messages")
    _add_timeout_option(p)
    p.set_defaults(func=cmd_assign)

    add_output_commands(sub, _add_timeout_option)
    add_train_command(sub)

    add_check_commands(sub, _add_timeout_option, _add_embedding_options)
    return parser


def _show_warning(message, category, filename, lineno, file=None, line=None):
    from clusteragent.redact import redact

    print(f"clusteragent: warning: {redact(message)}", file=sys.stderr)


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    from clusteragent.redact import RedactingFormatter, redact

    handler = logging.StreamHandler()
    handler.setFormatter(RedactingFormatter("clusteragent: %(levelname)s: %(message)s"))
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING, handlers=[handler])
    warnings.showwarning = _show_warning
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        return args.func(args)
    except ClusterAgentError as e:
        print(f"clusteragent: error: {redact(str(e))}", file=sys.stderr)
        return 2
    except KeyboardInterrupt as e:  # a run says what it kept and how to go on
        print(f"clusteragent: interrupted. {redact(str(e))}" if str(e) else "clusteragent: interrupted",
              file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
