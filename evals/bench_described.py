"""How much of what a chat message describes does its move reach? ("Put the articles about trials in their
own cluster", "texts about refunds belong to Billing".)

    python -m clusteragent.evals.bench_described [--task clinc150:domain] [--values 6] [--max-docs 1000] [--k 40]
        [--answers model|gold]

For each task, `--max-docs` stratified texts (seed 0) are cut into `--k` k-means clusters of their
embeddings, each named by its distinctive words as a run names a cluster the model gave no name. `--values`
gold values (seeded) serve as descriptions ("Texts about kitchen and dining."), and the chat's own matching
(`refine_matching.matching_rows`, with its budget of checks) finds the texts each fits. The answers come from
the embedded model, or with `--answers gold` from the gold labels (a text fits when its value is the
described one; a group when most of the texts it is shown do): what the matching reaches with a model that
never errs. Prints one JSON line per description: precision, recall and F1 of the matched texts against
the value's texts, the model calls, and how the reply says they were found.
"""

from __future__ import annotations

import argparse
import json
import random
import re
import sys
from types import SimpleNamespace

import numpy as np

DEFAULT_TASKS = ("clinc150:domain", "agnews_test:topic", "massive_en:scenario")


def scored(rows: np.ndarray, truth: np.ndarray) -> dict:
    """Precision, recall and F1 of the matched `rows` against the texts where `truth` holds."""
    hit = int(truth[rows].sum())
    precision, recall = hit / max(len(rows), 1), hit / max(int(truth.sum()), 1)
    f1 = 2 * precision * recall / (precision + recall) if hit else 0.0
    return {"matched": len(rows), "precision": round(precision, 3), "recall": round(recall, 3), "f1": round(f1, 3)}


class GoldAnswers:
    """Answers to the `match` and `match_cluster` prompts from the gold labels of the texts they show."""

    def __init__(self, texts: list[str], truth: np.ndarray) -> None:
        from clusteragent.prompts import as_data

        # each text as either prompt shows it (match_cluster cuts it at 160 characters)
        self.fits = {shown: bool(f) for t, f in zip(texts, truth) for shown in (as_data(t), as_data(t, 160))}
        self.calls = 0

    def decide_many(self, requests, schema, **kw):
        self.calls += len(requests)
        answers = []
        for messages in requests:
            shown = [self.fits.get(t, False) for t in re.findall(r"<text>(.*?)</text>", messages[-1][1])]
            answers.append(schema(fits="yes" if 2 * sum(shown) > len(shown) else "no"))
        return answers


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--task", action="append", help="CORPUS:FACET (repeatable)")
    parser.add_argument("--values", type=int, default=6)
    parser.add_argument("--max-docs", type=int, default=1000)
    parser.add_argument("--k", type=int, default=40)
    parser.add_argument("--answers", choices=("model", "gold"), default="model")
    parser.add_argument("--seed", type=int, default=0)
    options = parser.parse_args(argv)

    from sklearn.cluster import KMeans

    from clusteragent.evals.tasks import default_data_dir, load_task, parse_task
    from clusteragent.refine_matching import matching_rows
    from clusteragent.tools import taxonomy as tx
    from clusteragent.tools.embeddings import Embedder
    from clusteragent.tools.features import distinctive_words

    embedder = Embedder(progress=False)
    model = None
    if options.answers == "model":
        from clusteragent import ClusterAgent
        from clusteragent.structured import StructuredLLM

        model = StructuredLLM(ClusterAgent(seed=options.seed, progress=False).chat_model(), max_calls=1_000_000)

    for spec in options.task or DEFAULT_TASKS:
        data = load_task(parse_task(spec), default_data_dir(), max_docs=options.max_docs, seed=options.seed)
        vectors = embedder.embed(data.texts)[0]
        assignment = KMeans(options.k, n_init=3, random_state=options.seed).fit_predict(vectors)
        words = distinctive_words(data.texts, assignment)
        tax = tx.Taxonomy.from_specs([(" / ".join(words.get(c, [])[:2]) or f"group {c}", "") for c in range(options.k)])
        values = random.Random(options.seed).sample(sorted(set(data.gold)), min(options.values, len(set(data.gold))))
        for value in values:
            truth = np.array([g == value for g in data.gold])
            llm = model or GoldAnswers(data.texts, truth)
            before = llm.usage.calls if model else 0
            ctx = SimpleNamespace(vectors=vectors, texts=data.texts, llm=llm,
                                  embed=lambda texts: embedder.embed(list(texts))[0])
            turn = SimpleNamespace(ctx=ctx, tax=tax, assignment=assignment, features=vectors, budget=40)
            description = f"Texts about {value.replace('_', ' ').replace('-', ' ')}."
            rows, how = matching_rows(turn, description, set())
            calls = (llm.usage.calls - before) if model else llm.calls
            print(json.dumps({"task": spec, "value": value, "texts": int(truth.sum()), **scored(rows, truth),
                              "calls": calls, "how": how}), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
