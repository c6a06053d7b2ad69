"""Clustering methods with one interface, so the agent and the baselines run on the same texts.

Each method is `fn(texts, vectors, instruction, k_gold, ctx) -> (labels, info)`: `vectors` are the
MiniLM embeddings every method shares, `ctx` carries the embedder, seed and agent options; `info`
reports model calls and tokens (zero for the baselines).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np


@dataclass
class MethodContext:
    embedder: Any
    seed: int = 0
    agent_options: dict = field(default_factory=dict)
    chat_model: Any = None  # shared across tasks so the embedded model loads once
    name_checks: int = 100  # texts the model puts back into the agent's named clusters (evals/fidelity.py)


def _kmeans(vectors: np.ndarray, k: int, seed: int) -> np.ndarray:
    from sklearn.cluster import KMeans

    k = max(1, min(int(k), len(vectors)))
    return KMeans(k, n_init=10, random_state=seed).fit_predict(vectors)


def kmeans_oracle(texts, vectors, instruction, k_gold, ctx):
    """k-means on the embeddings with the gold number of clusters."""
    return _kmeans(vectors, k_gold, ctx.seed), {}


def kmeans_estimated(texts, vectors, instruction, k_gold, ctx):
    """k-means with k from estimate_k (silhouette over 2..min(50, N/5))."""
    from clusteragent.tools.kestimate import estimate_k

    k, _ = estimate_k(vectors, 2, max(2, min(50, len(vectors) // 5)), seed=ctx.seed, max_points=1000)
    return _kmeans(vectors, k, ctx.seed), {"k_estimated": k}


def hdbscan_umap(texts, vectors, instruction, k_gold, ctx):
    """HDBSCAN after UMAP to 5 dimensions; noise points form one extra cluster."""
    import warnings

    from sklearn.cluster import HDBSCAN

    from clusteragent.tools.semantic_map import umap_reducer

    with warnings.catch_warnings():  # UMAP's notes on n_jobs under a seed, HDBSCAN's on a future default
        warnings.simplefilter("ignore", (UserWarning, FutureWarning))
        reduced = umap_reducer(ctx.seed).fit_transform(vectors)
        labels = HDBSCAN(min_cluster_size=max(5, len(texts) // 100)).fit_predict(reduced)
    return labels, {"noise_share": round(float((labels == -1).mean()), 4)}


def bertopic(texts, vectors, instruction, k_gold, ctx):
    """BERTopic with its defaults (UMAP to 5 dimensions, HDBSCAN, c-TF-IDF) on the same embeddings;
    its outlier topic (-1) is one extra cluster. The instruction is not used: BERTopic has no input for it."""
    try:
        from bertopic import BERTopic
    except ImportError:
        raise RuntimeError("needs bertopic: pip install 'clusteragent[eval]'") from None
    import warnings

    from clusteragent.tools.semantic_map import umap_reducer

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", (UserWarning, FutureWarning))
        # BERTopic's own UMAP settings, with a seed so that a run repeats.
        topics, _ = BERTopic(umap_model=umap_reducer(ctx.seed), verbose=False).fit_transform(list(texts),
                                                                                            embeddings=vectors)
    labels = np.asarray(topics, dtype=np.int64)
    return labels, {"noise_share": round(float((labels == -1).mean()), 4)}


def instruct_kmeans(texts, vectors, instruction, k_gold, ctx):
    """k-means (gold k) on embeddings of 'instruction + text': the instruction-embedding baseline."""
    prefixed, _ = ctx.embedder.embed([f"{instruction} {t}" for t in texts])
    return _kmeans(prefixed, k_gold, ctx.seed), {}


def reading_kmeans(texts, vectors, instruction, k_gold, ctx):
    """k-means (gold k) on the chat model's reading of each text under the instruction (reading.py)."""
    from clusteragent.reading import reader_for

    reader = reader_for(ctx.chat_model, ctx.embedder)
    if reader is None:
        raise RuntimeError("the chat model's backend cannot read texts (it gives no embeddings)")
    reading = reader(instruction, texts)
    return _kmeans(reading, k_gold, ctx.seed), {}


def agent(texts, vectors, instruction, k_gold, ctx):
    """The clustering agent; k chosen by the agent."""
    from clusteragent import ClusterAgent

    options = dict(ctx.agent_options)
    a = ClusterAgent(model=ctx.chat_model or options.pop("model", None), seed=ctx.seed, progress=False,
                     **{k: v for k, v in options.items() if k != "model"})
    a.fit(texts, instruction=instruction)
    run = a.result_.run
    info = {"model_calls": run["model_calls"], "prompt_tokens": run["prompt_tokens"],
            "completion_tokens": run["completion_tokens"], "names": a.result_.names, "levels": a.result_.levels}
    if a.result_.levels == 2:  # the runner scores the broad level as well
        info["top_labels"] = a.result_.top_cluster
    if ctx.name_checks:
        from clusteragent.evals.fidelity import name_fidelity
        from clusteragent.structured import StructuredLLM

        info.update(name_fidelity(StructuredLLM(a.chat_model()), instruction, texts, a.labels_, a.result_.clusters,
                                  n=ctx.name_checks, seed=ctx.seed))
    return a.labels_, info


METHODS: dict[str, Callable] = {
    "kmeans_oracle": kmeans_oracle,
    "kmeans_estimated": kmeans_estimated,
    "hdbscan_umap": hdbscan_umap,
    "bertopic": bertopic,
    "instruct_kmeans": instruct_kmeans,
    "reading_kmeans": reading_kmeans,
    "agent": agent,
}
