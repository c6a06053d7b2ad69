"""Name fidelity: do a run's names and descriptions say which texts are in which cluster?

The chat model is shown one text at a time with every cluster's name and description (the prompt the
agent labels with) and picks a cluster; name fidelity is how often it picks the text's own cluster.
A name that only the clustering understands ("group 7", "customer issues" beside "customer complaints")
scores low, whatever the partition's V-measure.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def name_fidelity(llm, instruction: str, texts: Sequence[str], labels: Sequence[int], clusters: Sequence[dict],
                  n: int = 100, seed: int = 0) -> dict:
    """{"name_fidelity": share of `n` seeded texts the model puts back in their own cluster, "name_checks":
    texts checked}. `clusters` are {cluster, name, description} (a run's leaves); `llm` a StructuredLLM.
    A text the model gives no valid answer for counts as a miss; outliers (-1) are not checked."""
    from clusteragent.errors import ModelError
    from clusteragent.labelling import label_messages, label_schema

    labels = np.asarray(labels)
    named = [c for c in clusters if c["cluster"] != -1]
    rows = np.flatnonzero(np.isin(labels, [c["cluster"] for c in named]))
    rows = np.random.default_rng(seed).permutation(rows)[:n]
    if len(named) < 2 or len(rows) == 0:
        return {"name_fidelity": None, "name_checks": 0}
    schema = label_schema(tuple(c["name"] for c in named))
    id_of = {c["name"]: c["cluster"] for c in named}
    shown = [{"name": c["name"], "description": c["description"]} for c in named]
    hits = 0
    for row in rows:
        try:
            answer = llm.decide(label_messages(instruction, shown, texts[row]), schema, step="name_fidelity")
        except ModelError:
            continue
        hits += int(id_of[answer.cluster] == labels[row])
    return {"name_fidelity": round(hits / len(rows), 4), "name_checks": int(len(rows))}
