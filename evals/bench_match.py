"""Does a text fit a description? The chat model's yes/no, as a chat message that describes texts uses it
("Put the articles about court trials in their own cluster", "Merge everything about sports").

    python -m clusteragent.evals.bench_match [--task agnews_test:topic] [--values 4] [--texts 6]

For each task, `--values` of its gold values (seeded) serve as descriptions in their own words ("Sports",
"kitchen and dining"), and `--texts` texts of each value are asked against every description, one text
per call under the packaged `match` prompt; each cluster of `--texts` texts is asked too, under the
`match_cluster` prompt. Prints one JSON line per task: the share of right answers on texts that fit (yes
asked) and on texts that do not (no asked), their mean (balanced accuracy), and the same for clusters.
"""

from __future__ import annotations

import argparse
import json
import random
import sys

DEFAULT_TASKS = ("agnews_test:topic", "clinc150:domain")


def balanced(answers: list[tuple[bool, bool]]) -> dict:
    """Right answers where the truth is yes, where it is no, and their mean."""
    yes = [said for said, truth in answers if truth]
    no = [not said for said, truth in answers if not truth]
    found = {"yes_right": round(sum(yes) / max(len(yes), 1), 3), "no_right": round(sum(no) / max(len(no), 1), 3)}
    return {**found, "balanced": round((found["yes_right"] + found["no_right"]) / 2, 3), "asked": len(answers)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--task", action="append", help="CORPUS:FACET (repeatable)")
    parser.add_argument("--values", type=int, default=4)
    parser.add_argument("--texts", type=int, default=6)
    parser.add_argument("--seed", type=int, default=0)
    options = parser.parse_args(argv)

    from clusteragent import ClusterAgent
    from clusteragent.evals.tasks import default_data_dir, load_task, parse_task
    from clusteragent.fits import Match
    from clusteragent.prompts import load_prompt
    from clusteragent.structured import StructuredLLM

    agent = ClusterAgent(seed=options.seed, progress=False)
    llm = StructuredLLM(agent.chat_model(), max_calls=100_000)

    def fits(prompt: str, **variables) -> bool | None:
        try:
            return llm.decide(load_prompt(prompt).messages(**variables), Match, step="bench").fits == "yes"
        except Exception:  # an invalid answer counts as neither
            return None

    for spec in options.task or DEFAULT_TASKS:
        data = load_task(parse_task(spec), default_data_dir())
        rng = random.Random(options.seed)
        by_value = data.texts_by_value()
        values = rng.sample(sorted(by_value), min(options.values, len(by_value)))
        shown = {v: rng.sample(by_value[v], min(options.texts, len(by_value[v]))) for v in values}
        texts, groups = [], []
        for described in values:
            words = described.replace("_", " ").replace("-", " ")
            for value in values:
                group = fits("match_cluster", description=words, name=f"Group {values.index(value) + 1}",
                             texts=shown[value])
                groups.append((group, value == described))
                texts += [(fits("match", description=words, text=t), value == described) for t in shown[value]]
        print(json.dumps({"task": spec, "values": values, "texts": balanced([a for a in texts if a[0] is not None]),
                          "clusters": balanced([a for a in groups if a[0] is not None]),
                          "invalid": sum(a[0] is None for a in texts + groups), "calls": llm.usage.calls}), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
