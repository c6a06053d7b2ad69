"""Name fidelity of the gold answer: the check's own ceiling on a task.

    python -m clusteragent.evals.bench_gold_fidelity [--task CORPUS:FACET ...] [--checks 100] [--max-docs 300]
        [--seed 0] [--data-dir DIR] [--model SPEC]

Each task's sample (the dev suite's: `--max-docs` texts, `--seed`) is grouped by its gold labels, each
group named by its gold value in words ("kitchen_and_dining" -> "Kitchen and dining") with a rule made of
that name ("Texts whose domain is kitchen and dining."), and checked by name fidelity (evals.fidelity) on
`--checks` texts: how often the chat model, shown those names and rules, puts a text back in its own gold
group. A run's clusters are scored by the same check; where the gold answer itself scores low, the check
measures the model that sorts as much as the names. Prints one JSON line per task.
"""

from __future__ import annotations

import argparse
import json
import sys

DEFAULT_TASKS = ("clinc150:domain", "massive_en:scenario", "agnews_test:topic", "clinc150:intent")


def gold_clusters(values: list[str], facet: str) -> list[dict]:
    """A cluster per gold value: its name the value in words, its rule made of that name."""
    from clusteragent.name_rules import sentence_case
    from clusteragent.wording import rule_of_value

    named = [sentence_case(" ".join(v.replace("_", " ").split())) for v in values]
    return [{"cluster": i, "name": name, "description": rule_of_value(name, facet.replace("_", " "), None)}
            for i, name in enumerate(named)]


def gold_fidelity(llm, instruction: str, facet: str, texts: list[str], gold: list[str], checks: int,
                  seed: int = 0) -> dict:
    """{"k", "name_fidelity", "name_checks", "names"} of the gold partition under its gold names."""
    from clusteragent.evals.fidelity import name_fidelity

    values = sorted(set(gold))
    clusters = gold_clusters(values, facet)
    found = name_fidelity(llm, instruction, texts, [values.index(g) for g in gold], clusters, n=checks, seed=seed)
    return {"k": len(values), **found, "names": [c["name"] for c in clusters]}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--task", action="append", help="CORPUS:FACET (its dev-suite instruction) (repeatable)")
    parser.add_argument("--checks", type=int, default=100, help="texts checked per task")
    parser.add_argument("--max-docs", type=int, default=300)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--data-dir", default=None, help="a folder of CORPUS/data.jsonl files")
    parser.add_argument("--model", default=None, help="chat model spec (default: the embedded default)")
    options = parser.parse_args(argv)

    from pathlib import Path

    from clusteragent.evals.tasks import default_data_dir, load_task, parse_task
    from clusteragent.models import load_chat_model
    from clusteragent.structured import StructuredLLM

    llm = StructuredLLM(load_chat_model(options.model), max_calls=10 ** 6)
    data_dir = Path(options.data_dir) if options.data_dir else default_data_dir()
    for spec in options.task or DEFAULT_TASKS:
        task = parse_task(spec)
        data = load_task(task, data_dir, max_docs=options.max_docs, seed=options.seed)
        found = gold_fidelity(llm, task.instruction, task.facet, data.texts, data.gold, options.checks, options.seed)
        print(json.dumps({"task": task.name, **found}, ensure_ascii=False), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
