"""New texts into a finished run's clusters: the classifier that the run's clustering trains, and the chat
model for the least certain few.

The classifier reads what the run's own labelling classifier read (the embeddings, and for a facet
other than subject matter the character and layout views too), computed over the fitted and the new
texts together, and learns the run's current assignment (after any chat turn) from the fitted texts.
The chat model then labels the new texts with the smallest margins, within a budget, with the same
prompt, schema and validation as the run's labelling. Every new text comes back once, with the cluster
number it has in the run's clusters.json.
"""

from __future__ import annotations

import math
import time
from typing import Any

import numpy as np

from clusteragent.errors import ConfigError
from clusteragent.labelling import label_rows
from clusteragent.result import ClusterResult, build_result
from clusteragent.state import RunContext
from clusteragent.tools import taxonomy as tx
from clusteragent.tools.corpus import Corpus, work_texts
from clusteragent.tools.propagate import least_certain, propagate
from clusteragent.views import label_features

CALLS_PER_TEXT = 0.05  # the default model budget of an assignment, per new text


def current_clustering(agent) -> tuple[dict, np.ndarray]:
    """The run's clustering as it stands after any chat turn: (its state, its assignment of the fitted texts)."""
    from clusteragent.refine import build_refine_graph

    chat = build_refine_graph().compile(checkpointer=agent.store_.checkpointer).get_state(
        {"configurable": {"thread_id": f"{agent.thread_id_}/chat"}}).values
    state = {**agent.state_, **chat} if chat.get("assignment_ref") else agent.state_
    return state, agent.store_.arrays[state["assignment_ref"]]


def assign(agent, corpus: Corpus, max_model_calls: int | None = None, progress=lambda message: None,
           show_bars: bool = False) -> ClusterResult:
    """Put the texts of `corpus` into the clusters of `agent`'s finished run (see the module's docstring).

    `max_model_calls` caps the requests to the chat model, retries included (default: 0.05 per new text,
    rounded down). The result's `cluster` numbers and `clusters` are the run's; its `run` record says
    how many texts the model placed and what was spent.
    """
    from clusteragent.structured import StructuredLLM

    started = time.perf_counter()
    state, fitted = current_clustering(agent)
    tax = tx.Taxonomy.from_state(state)
    budget = math.floor(CALLS_PER_TEXT * len(corpus)) if max_model_calls is None else max_model_calls
    if budget < 0:
        raise ConfigError(f"max_model_calls={budget}: give 0 or more.")
    embedder = agent.embedder()
    progress(f"embedding {len(corpus)} new texts with {embedder.model_id}")
    new_vectors, _ = embedder.embed(work_texts(corpus.texts))
    old_vectors = agent.vectors_
    n_old = len(old_vectors)
    trace: list[dict] = []
    llm = StructuredLLM(agent.chat_model(), trace=trace, max_calls=budget) if budget > 0 else None
    config = agent.config.model_copy(update={"max_model_calls": budget})
    ctx = RunContext(texts=work_texts(agent.corpus_.texts + corpus.texts), llm=llm, embedder=embedder, config=config,
                     progress=progress, show_bars=show_bars, vectors=np.vstack([old_vectors, new_vectors]))
    features = label_features(ctx, agent.state_.get("about_topic"))
    progress(f"placing the new texts with a classifier trained on the run's {n_old} texts")
    predicted, confidence, margin, _ = propagate(features, np.arange(n_old), fitted, seed=agent.config.seed)
    labels: dict[str, int] = {}
    if llm is not None:
        asked = n_old + least_certain(margin[n_old:], budget)
        progress(f"asking the model about the {len(asked)} least certain new texts")
        labels, _ = label_rows(ctx, state["instruction"], asked, tax, "assign")
        for row, cid in labels.items():
            predicted[int(row)], confidence[int(row)] = cid, max(confidence[int(row)], 0.5)
    usage = llm.usage.as_dict() if llm is not None else {"model_calls": 0}
    run = {"assigned_to": str(agent.store_.folder), "instruction": state["instruction"], "n_texts": len(corpus),
           "source": corpus.source, "labelled_by_model": len(labels), "model_budget": budget, **usage,
           "embedding_model": embedder.model_id, "wall_s": round(time.perf_counter() - started, 2)}
    return _in_run_numbers(agent, corpus, tax, fitted, predicted[n_old:], confidence[n_old:], run, trace)


def _in_run_numbers(agent, corpus: Corpus, tax: tx.Taxonomy, fitted: np.ndarray,
                    assigned: np.ndarray, confidence: np.ndarray, run: dict, trace: list) -> ClusterResult:
    """The assignment as a ClusterResult whose cluster numbers and clusters are the run's (numbered by the
    fitted texts' cluster sizes, as clusters.json is), not renumbered by the new texts' sizes."""
    order = [c.id for c, _ in tx.by_size(fitted, tax)]
    number = {cid: i for i, cid in enumerate(order)}
    fitted_clusters = build_result(agent.corpus_, agent.vectors_, tax, fitted, np.ones(len(fitted)), {}).clusters
    sizes = np.bincount([number[c] for c in assigned], minlength=len(order))
    clusters: list[dict[str, Any]] = [{**c, "size": int(sizes[i]), "fitted_size": c["size"]}
                                      for i, c in enumerate(fitted_clusters)]
    return ClusterResult(ids=list(corpus.ids), texts=list(corpus.texts),
                         cluster=np.array([number[c] for c in assigned], dtype=np.int64),
                         confidence=np.asarray(confidence, dtype=np.float32), clusters=clusters,
                         run={**run, "k": len(clusters)}, trace=trace)
