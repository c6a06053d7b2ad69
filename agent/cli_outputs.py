"""The CLI's commands that show or hand on a finished run: report, export and serve."""

from __future__ import annotations

import argparse
from pathlib import Path

from clusteragent.errors import counted


def output_path(run_dir: Path, given: str | None, default: str | None = None, keep: tuple[str, ...] = ()) -> Path:
    """Where report, export and assign write: `given`, or `default` inside the run folder (assign has none:
    its --out is required); never one of the run's own files, nor a file in `keep` (assign's input)."""
    from clusteragent.errors import ConfigError
    from clusteragent.run_folder import run_file_paths

    if not given and not default:
        raise ConfigError("give an output file.")
    target = Path(given) if given else run_dir / default
    if target.resolve() in run_file_paths(run_dir):
        raise ConfigError(f"{target} is one of the run's own files; choose another file.")
    if target.resolve() in {Path(k).resolve() for k in keep}:
        raise ConfigError(f"{target} is the input; choose another file.")
    return target


def cmd_report(args: argparse.Namespace) -> int:
    run_dir = Path(args.out_dir)
    target = output_path(run_dir, args.html, "report.html")
    if target.suffix.lower() not in (".html", ".htm"):
        from clusteragent.errors import ConfigError

        raise ConfigError(f"--html {target}: give a file ending in .html.")
    from clusteragent import ClusterAgent
    from clusteragent.run_lock import RunLock

    with RunLock(run_dir, "report"):  # the texts' map is kept in the run's arrays
        agent = ClusterAgent.load(run_dir)
        path = agent.report(target)
    result = agent.result_
    print(f"wrote {path} ({path.stat().st_size / 1e6:.1f} MB): {counted(result.k, 'cluster')} of "
          f"{counted(len(result.ids), 'text')}")
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    from clusteragent.result import write_table

    run_dir = Path(args.out_dir)
    target = output_path(run_dir, args.out, f"export.{args.format}")
    from clusteragent import ClusterAgent
    from clusteragent.run_lock import RunLock

    with RunLock(run_dir, "export"):
        result = ClusterAgent.load(run_dir).result_
    write_table(result.to_pandas(with_text=not args.no_text), target, args.format)
    print(f"wrote {target}: {counted(len(result.ids), 'text')} in {counted(result.k, 'cluster')}")
    return 0


def cmd_serve(args: argparse.Namespace) -> int:
    from clusteragent.cli import timeout_options
    from clusteragent.serve import serve

    serve(Path(args.out_dir), host=args.host, port=args.port, model=args.model,
          model_options=timeout_options(args.timeout))
    return 0


def add_output_commands(sub, add_timeout_option) -> None:
    p = sub.add_parser("report", help="write a finished run as one HTML page that opens offline (map, sizes, clusters)")
    p.add_argument("out_dir", help="the --out folder of a `clusteragent run`")
    p.add_argument("--html", help="the file to write (default: OUT/report.html)")
    p.set_defaults(func=cmd_report)

    p = sub.add_parser("export", help="write a run's texts with their clusters as CSV, Parquet or JSONL")
    p.add_argument("out_dir", help="the --out folder of a `clusteragent run`")
    p.add_argument("--format", choices=("csv", "parquet", "jsonl"), default="csv", help="(default csv)")
    p.add_argument("--out", help="the file to write (default: OUT/export.FORMAT)")
    p.add_argument("--no-text", action="store_true", help="ids and clusters only, not the texts")
    p.set_defaults(func=cmd_export)

    p = sub.add_parser("serve", help="a local web page to look at a run and refine it by chat")
    p.add_argument("out_dir", help="the --out folder of a `clusteragent run`")
    p.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1: this machine only)")
    p.add_argument("--port", type=int, default=8765, help="(default 8765)")
    p.add_argument("--model", help="chat model for the turns, provider:name (default: the run's model)")
    add_timeout_option(p)
    p.set_defaults(func=cmd_serve)
