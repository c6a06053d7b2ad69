"""Do the model's names say the facet's value? Gold groups named as a run names its clusters.

    python -m clusteragent.evals.bench_value_names [--task CORPUS:FACET:INSTRUCTION ...] [--values 5] [--texts 8]

For each task, the `--values` commonest gold values of a 600-text sample each give a group of `--texts`
of their texts (seeded), named one after another by the naming step (naming.name_group: the instruction,
the facet, the names already given). A name says its value when, of the task's gold values, the one whose
words embed nearest it is its own (the run's sentence embedder; no valid name is a miss). Prints one JSON line per task: the names
by gold value and that share. Facets other than subject matter are where names drift to what the texts are
about ("Financial performance" for a group of positive sentences); a topic task is the control.
"""

from __future__ import annotations

import argparse
import json
import random
import sys

import numpy as np

# (task, the facet as the model reads it from the instruction)
DEFAULT_TASKS = {"dailydialog_utterances:dialog_act": "dialog act", "dailydialog_utterances:emotion": "emotion",
                 "goemotions:ekman": "basic emotion", "financial_phrasebank:sentiment": "sentiment",
                 "goalex_syn:style": "writing style", "agnews_test:topic": "topic"}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--task", action="append", help="CORPUS:FACET (its dev-suite instruction; the facet's own "
                                                        "words as the facet) (repeatable)")
    parser.add_argument("--values", type=int, default=5)
    parser.add_argument("--texts", type=int, default=8)
    parser.add_argument("--seed", type=int, default=0)
    options = parser.parse_args(argv)

    from clusteragent import ClusterAgent
    from clusteragent.evals.tasks import default_data_dir, load_task, parse_task
    from clusteragent.naming import name_group
    from clusteragent.structured import StructuredLLM

    agent = ClusterAgent(seed=options.seed, progress=False)
    llm = StructuredLLM(agent.chat_model(), max_calls=100_000)
    embedder = agent.embedder()
    tasks = {t: t.split(":")[1].replace("_", " ") for t in options.task} if options.task else DEFAULT_TASKS
    for spec, facet in tasks.items():
        task = parse_task(spec)
        data = load_task(task, default_data_dir(), max_docs=600, seed=options.seed)
        rng = random.Random(options.seed)
        by_value = data.texts_by_value()
        values = sorted(by_value, key=lambda v: -len(by_value[v]))[:options.values]
        taken, names = [], {}
        for value in values:
            shown = rng.sample(by_value[value], min(options.texts, len(by_value[value])))
            spec_ = name_group(llm, task.instruction, facet, shown, taken, step="bench")
            names[value] = spec_.name if spec_ else None
            taken += [spec_.name] if spec_ else []
        gold = embedder.embed([v.replace("_", " ") for v in values])[0]
        given = embedder.embed([names[v] or "" for v in values])[0]
        own = ((given @ gold.T).argmax(axis=1) == np.arange(len(values))) & np.array([names[v] is not None for v in values])
        print(json.dumps({"task": spec, "facet": facet, "names": names,
                          "says_its_value": round(float(own.mean()), 2)}), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
