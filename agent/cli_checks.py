"""The CLI's commands that check the tool itself: eval (benchmarks on labelled corpora) and doctor."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path


def cmd_eval(args: argparse.Namespace) -> int:
    from clusteragent.cli import timeout_options
    from clusteragent.errors import ConfigError
    from clusteragent.evals.runner import DEFAULT_METHODS, run_eval
    from clusteragent.evals.tasks import default_data_dir, load_suite, parse_task

    if not args.suite and not args.task:
        raise ConfigError("give --suite NAME or at least one --task CORPUS:FACET[:INSTRUCTION].")
    tasks = (load_suite(args.suite) if args.suite else []) + [parse_task(t) for t in args.task or []]
    data_dir = Path(args.data_dir) if args.data_dir else default_data_dir()
    options = {"max_model_calls": args.max_model_calls}
    if args.model:
        options["model"] = args.model
    if args.timeout:
        options["model_options"] = timeout_options(args.timeout)
    results = run_eval(tasks, data_dir, Path(args.out), methods=args.methods or DEFAULT_METHODS,
                       max_docs=args.max_docs, seed=args.seed, agent_options=options, progress=not args.quiet,
                       name_checks=args.name_checks)
    print((Path(args.out) / "table.md").read_text())
    failed = [r for r in results if "error" in r]
    for r in failed:
        print(f"clusteragent: warning: {r['task']} {r['method']}: {r['error']}", file=sys.stderr)
    return 0


def cmd_doctor(args: argparse.Namespace) -> int:
    from clusteragent.cli import settings_of
    from clusteragent.doctor import doctor

    return doctor(args.model, args.timeout, settings_of(args))


def add_check_commands(sub, add_timeout_option: Callable, add_embedding_options: Callable) -> None:
    """The eval and doctor subcommands, with the option groups the main parser shares."""
    p = sub.add_parser("eval", help="benchmark the agent against baselines on labelled corpora")
    p.add_argument("--suite", help="a task suite: dev (every corpus and facet) or agent")
    add_timeout_option(p)
    p.add_argument("--name-checks", type=int, default=100, help="texts the model puts back into the agent's named "
                   "clusters to score name fidelity (0: none; these calls are outside the agent's budget)")
    p.add_argument("--task", action="append", help="CORPUS:FACET[:INSTRUCTION], repeatable")
    p.add_argument("--data-dir", help="folder of CORPUS/data.jsonl (default: ../shared/data)")
    p.add_argument("--max-docs", type=int, default=300, help="stratified sample per task (default 300)")
    p.add_argument("--methods", nargs="+", help="methods to run (default: all)")
    p.add_argument("--model", help="chat model for the agent, provider:name")
    p.add_argument("--max-model-calls", type=int, default=40, help="agent's model budget per task (default 40)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.add_argument("--out", required=True, help="output folder")
    p.set_defaults(func=cmd_eval)

    p = sub.add_parser("doctor", help="list backends, load the default models offline and run one structured request")
    p.add_argument("--model", help="chat model to check, provider:name (default: the embedded default)")
    p.add_argument("--timeout", type=float, default=120.0, help="seconds to wait for the model's answer")
    add_embedding_options(p)
    p.set_defaults(func=cmd_doctor)
