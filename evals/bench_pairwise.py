"""Can the chat model tell whether two groups share a value of the instructed facet?

    python -m clusteragent.evals.bench_pairwise [--task CORPUS:FACET ...] [--max-docs 300] [--pairs 16]
        [--model PROVIDER:NAME] [--seed 0]

A cheap "same or different?" judgement on two groups' central texts could set the number of clusters:
cut a hierarchy of fine k-means groups where the model starts to say "different". This measures whether
the judgement carries that signal. For each task (default: four tasks on two corpora, where the same
texts have a coarse and a fine facet), the texts are cut into min(50, N/5) k-means groups; `--pairs`
merges of their average-linkage tree, spread over its heights, are shown to the model (three central
texts a side), and so are pairs of halves of one group (which share a value). Prints one JSON line per
task: the model's probability of "same" (from its token log-probabilities, else its answer) for pairs
whose central texts share a gold value and for those that do not, and the AUC between them (0.5: no
signal), with the within-group pairs' mean as a reference.
"""

from __future__ import annotations

import argparse
import json
from typing import Literal

import numpy as np
from pydantic import BaseModel, Field

DEFAULT_TASKS = ["clinc150:domain", "clinc150:intent", "massive_en:scenario", "massive_en:intent"]
SIDE = 3  # central texts shown for each group


class SameValue(BaseModel):
    answer: Literal["same", "different"] = Field(description="one value of the property, or two")


def p_same(llm, instruction: str, first: list[str], second: list[str]) -> float:
    from clusteragent.prompts import load_prompt

    messages = load_prompt("same_value").messages(instruction=instruction, first=first, second=second)
    decision = llm.decide(messages, SameValue, step="same_value", choice_field="answer")
    scores = decision.choice_scores
    if not scores:
        return float(decision.answer == "same")
    same, different = np.exp(scores.get("same", -30.0)), np.exp(scores.get("different", -30.0))
    return float(same / (same + different))


def auc(positive: list[float], negative: list[float]) -> float | None:
    """P(a positive scores above a negative), ties counted half."""
    if not positive or not negative:
        return None
    pos, neg = np.asarray(positive)[:, None], np.asarray(negative)[None, :]
    return round(float((pos > neg).mean() + 0.5 * (pos == neg).mean()), 3)


def one_task(task, data_dir, llm, embedder, options) -> dict:
    from scipy.cluster.hierarchy import linkage
    from sklearn.cluster import KMeans

    from clusteragent.evals.tasks import load_task
    from clusteragent.state import AgentConfig
    from clusteragent.tools import taxonomy as tx

    data = load_task(task, data_dir, max_docs=options.max_docs, seed=options.seed)
    vectors, _ = embedder.embed(data.texts)
    gold = np.asarray(data.gold)
    n_groups = AgentConfig().structure_k_max(len(vectors), 2)  # as fine as the agent may cut
    groups = KMeans(n_groups, n_init=3, random_state=options.seed).fit_predict(vectors)
    centres = tx.centroids(vectors, groups, list(range(n_groups)))
    tree = linkage(centres, "average", metric="cosine")
    members = {g: [g] for g in range(n_groups)}
    merges = []
    for i, (a, b, height, _) in enumerate(tree):
        members[n_groups + i] = members[int(a)] + members[int(b)]
        merges.append((members[int(a)], members[int(b)], float(height)))

    def central(group_ids, m=SIDE):
        return tx.central_members(vectors, np.flatnonzero(np.isin(groups, group_ids)), m)

    same, different, rows = [], [], []
    for i in np.unique(np.linspace(0, n_groups - 2, options.pairs).round().astype(int)):
        a, b, height = merges[i]
        ra, rb = central(a), central(b)
        p = p_same(llm, task.instruction, [data.texts[r] for r in ra], [data.texts[r] for r in rb])
        shares = bool(gold[ra[0]] == gold[rb[0]])
        (same if shares else different).append(p)
        rows.append({"height": round(height, 3), "p_same": round(p, 3), "gold_same": shares})
    within = []
    for g in np.argsort(-np.bincount(groups))[:4]:
        rows_g = central([g], 2 * SIDE)
        within.append(p_same(llm, task.instruction, [data.texts[r] for r in rows_g[0::2]],
                             [data.texts[r] for r in rows_g[1::2]]))
    mean = lambda xs: round(float(np.mean(xs)), 3) if xs else None  # noqa: E731
    return {"task": task.name, "n": len(data.texts), "groups": n_groups, "k_gold": len(set(data.gold)),
            "pairs_gold_same": len(same), "pairs_gold_different": len(different),
            "p_same_gold_same": mean(same), "p_same_gold_different": mean(different), "auc": auc(same, different),
            "p_same_within_group": mean(within), "pairs": rows}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--task", action="append", help="CORPUS:FACET of the dev suite (repeatable)")
    parser.add_argument("--data-dir")
    parser.add_argument("--max-docs", type=int, default=300)
    parser.add_argument("--pairs", type=int, default=16)
    parser.add_argument("--model", help="chat model, provider:name (default: the embedded model)")
    parser.add_argument("--seed", type=int, default=0)
    options = parser.parse_args(argv)

    from pathlib import Path

    from clusteragent.evals.tasks import default_data_dir, parse_task
    from clusteragent.models import load_chat_model
    from clusteragent.structured import StructuredLLM
    from clusteragent.tools.embeddings import Embedder

    data_dir = Path(options.data_dir) if options.data_dir else default_data_dir()
    llm = StructuredLLM(load_chat_model(options.model, seed=options.seed))
    embedder = Embedder()
    for spec in options.task or DEFAULT_TASKS:
        print(json.dumps(one_task(parse_task(spec), data_dir, llm, embedder, options)), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
