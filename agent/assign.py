"""New texts into a finished run's clusters: the classifier that the run's clustering trains, and the chat
model for the least certain few.

The classifier reads what produced the run's assignment (the view its k-means ran on, or what its
labelling classifier read: the embeddings, and for a facet other than subject matter the character and
layout views too), computed over the fitted and the new texts together, and learns the run's current
assignment (after any chat turn) from the fitted texts.
The chat model then labels the new texts with the smallest margins, within a budget, with the same
prompt, schema and validation as the run's labelling, choosing for each between the classifier's two
likeliest clusters. Every new text comes back once, with the cluster number it has in the run's
clusters.json.
"""

from __future__ import annotations

import math
import time
from typing import Any

import numpy as np

from clusteragent.errors import ConfigError, counted
from clusteragent.hierarchy import broad, reconcile
from clusteragent.labelling import label_rows
from clusteragent.outliers import in_new, new_clusters, new_typicality, outlier_cluster
from clusteragent.result import ClusterResult, build_result
from clusteragent.run_update import grow_run, new_ids
from clusteragent.state import RunContext
from clusteragent.tools import taxonomy as tx
from clusteragent.tools.corpus import Corpus, work_texts
from clusteragent.tools.novelty import new_regions
from clusteragent.tools.propagate import least_certain, propagate
from clusteragent.views import assignment_features, clustered_view

LOW_CONFIDENCE, UNSURE_SHARE = 0.5, 0.3  # more than this share placed with less confidence: said in a note
CALLS_PER_TEXT = 0.05  # the default model budget of an assignment, per new text,
# and at most this many: a large batch is placed by the classifier, where more calls change few texts
# and cost many times the embedding (docs/benchmarks.md, "Assigning new texts")
MAX_DEFAULT_CALLS = 10
MIN_UPDATE_CALLS = 4  # an update's default budget is at least this: a new group needs the model's check and name
# The model breaks the classifier's tie for a text it is unsure of: it chooses between the classifier's two
# likeliest clusters. The text's own short list costs fewer tokens than the run's whole list, which
# llama.cpp would first have to read; each listed cluster adds about 0.5 s a call on two CPU cores
# (docs/benchmarks.md, "Assigning new texts").
CHOICES = 2


def current_clustering(agent) -> tuple[dict, np.ndarray]:
    """The run's clustering as it stands after any chat turn: (its state, its assignment of the fitted texts)."""
    from clusteragent.refine import chat_state

    chat = chat_state(agent.store_.checkpointer, agent.thread_id_)
    state = {**agent.state_, **chat} if chat.get("assignment_ref") else agent.state_
    return state, agent.store_.arrays[state["assignment_ref"]]


def assign(agent, corpus: Corpus, max_model_calls: int | None = None, outliers: bool = False,
           max_outliers: float = 0.05, update: bool = False, progress=lambda message: None,
           show_bars: bool = False) -> ClusterResult:
    """Put the texts of `corpus` into the clusters of `agent`'s finished run (see the module's docstring).

    `max_model_calls` caps the requests to the chat model, retries included (default: 0.05 per new text,
    rounded down, at most 10; with `update` at least 4). With `outliers`, a text less typical of the
    fitted texts than at most `max_outliers` of texts like them would be (see tools/novelty.py) goes to
    the outlier group (cluster -1) instead; the model decides those nearest the line, with "None of
    these" among its choices, with half the budget. With `update` (outliers implied), new texts of a kind
    the run has not seen become new clusters under new ids (outliers.new_clusters), checked and named
    first, the texts nearest the outlier line getting half of what they leave; and the texts join the run
    (see run_update.py). The result's `cluster` numbers and `clusters` are the run's; its `run` record
    says how many texts the model placed, what was spent, and notes on novelty.
    """
    from clusteragent.reading import reader_for
    from clusteragent.structured import StructuredLLM

    started = time.perf_counter()
    outliers = outliers or update
    if update:
        corpus = new_ids(agent, corpus)
    state, fitted = current_clustering(agent)
    tax = tx.Taxonomy.from_state(state)
    budget = min(math.floor(CALLS_PER_TEXT * len(corpus)), MAX_DEFAULT_CALLS) if max_model_calls is None \
        else max_model_calls
    if update and max_model_calls is None:
        budget = max(budget, MIN_UPDATE_CALLS)
    if budget < 0:
        raise ConfigError(f"max_model_calls={budget}: give 0 or more.")
    if outliers and not 0 < max_outliers < 1:
        raise ConfigError(f"max_outliers={max_outliers}: give a share between 0 and 1, e.g. 0.05.")
    embedder = agent.embedder()
    progress(f"embedding {len(corpus)} new texts with {embedder.model_id}")
    new_vectors, _ = embedder.embed(corpus.texts)
    old_vectors = agent.vectors_
    n_old = len(old_vectors)
    trace: list[dict] = []
    reads = clustered_view(state) == "reading"
    chat = agent.chat_model() if budget > 0 or reads else None  # a run without calls needs no model server
    llm = StructuredLLM(chat, trace=trace, max_calls=budget) if budget > 0 else None
    config = agent.config.model_copy(update={"max_model_calls": budget})
    ctx = RunContext(texts=work_texts(agent.corpus_.texts + corpus.texts), llm=llm, embedder=embedder, config=config,
                     progress=progress, show_bars=show_bars, vectors=np.vstack([old_vectors, new_vectors]),
                     arrays=agent.store_.arrays, reader=reader_for(chat, embedder) if reads else None)
    features = assignment_features(ctx, state, n_old)
    progress(f"placing the new texts with a classifier trained on the run's {n_old} texts")
    clustered = np.flatnonzero(fitted != tx.OUTLIER)  # the run's own outliers teach no cluster
    predicted, confidence, margin, classified = propagate(features, clustered, fitted[clustered],
                                                          seed=agent.config.seed, top=CHOICES)
    is_outlier = np.zeros(len(corpus), dtype=bool)
    labels: dict[str, int] = {}
    if outliers:
        typical, line = new_typicality(old_vectors, new_vectors, max_outliers)
        is_outlier = typical < line
    unplaced = np.where(is_outlier, tx.OUTLIER, predicted[n_old:])  # where a new group's texts go on an undo
    grown_tax, grouped = tax, {}
    if update:  # its new groups come first: the texts nearest the outlier line get half of what they leave
        grown_tax, grouped = _new_groups(ctx, agent, state, tax, is_outlier, line, predicted, confidence)
    taken = np.array(sorted(grouped), dtype=np.int64) - n_old
    if outliers:
        left = ctx.calls_left() if llm is not None else 0
        is_outlier, checked = in_new(ctx, state["instruction"], tax, typical, line, left // 2, settled=taken)
        is_outlier[taken] = False
        for row, cid in checked.items():
            predicted[row] = cid
    before = np.where(is_outlier, tx.OUTLIER, predicted[n_old:])
    before[taken] = unplaced[taken]
    if llm is not None and ctx.calls_left() > 0:
        settled = np.flatnonzero(is_outlier | np.isin(np.arange(len(corpus)), taken))
        asked = n_old + least_certain(margin[n_old:], ctx.calls_left(), exclude=settled)
        progress(f"asking the model about the {len(asked)} least certain new texts")
        labels, _ = label_rows(ctx, state["instruction"], asked, tax, "assign",
                               choices={int(row): classified["top"][row].tolist() for row in asked})
        for row, cid in labels.items():
            predicted[int(row)], confidence[int(row)] = cid, max(confidence[int(row)], 0.5)
    assigned = predicted[n_old:].copy()
    assigned[is_outlier] = tx.OUTLIER
    usage = llm.usage.as_dict() if llm is not None else {"model_calls": 0}
    run = {"assigned_to": str(agent.store_.folder), "instruction": state["instruction"], "n_texts": len(corpus),
           "source": corpus.source, "labelled_by_model": len(labels), "model_budget": budget, **usage,
           "outliers": int(is_outlier.sum()) if outliers else None,
           "new_clusters": [c.id for c in grown_tax.clusters[len(tax.clusters):]] if update else None,
           "notes": novelty_notes(is_outlier, confidence[n_old:], max_outliers if outliers else None, update),
           "embedding_model": embedder.model_id, "wall_s": round(time.perf_counter() - started, 2)}
    if update:
        grown = np.concatenate([fitted, assigned])
        tops = reconcile(state.get("tops") or [], grown_tax, grown, ctx.vectors, fitted)
        reply = _update_reply(grown_tax, tax, grouped, is_outlier, tops)
        run["notes"].append(reply + f" The run now holds {n_old + len(corpus)} texts; an 'undo' in its chat takes "
                                    "the update back.")
        before[[int(r) - n_old for r in labels]] = list(labels.values())  # the model's labels stand either way
        grow_run(agent, corpus, ctx.vectors, state, before, grown, grown_tax, tops, confidence[n_old:].copy(),
                 labels, {"message": f"update: {len(corpus)} new texts from {corpus.source}",
                          "reply": reply,
                          "model_calls": usage["model_calls"]})
        state, fitted = current_clustering(agent)  # the grown run's: its sizes and representatives count the new texts
    return _as_run_result(agent, corpus, grown_tax, fitted, assigned, confidence[n_old:], run, trace, outliers,
                          state.get("tops"), state.get("texts_are", ""))


def _new_groups(ctx, agent, state: dict, tax: tx.Taxonomy, is_outlier: np.ndarray, line: float,
                predicted: np.ndarray, confidence: np.ndarray) -> tuple[tx.Taxonomy, dict[int, int]]:
    """An update's new clusters (outliers.new_clusters) among the new texts that are outliers or placed with
    low confidence, and in new regions where a model call is left; `predicted` and `confidence` (ctx rows)
    are set for the texts they take."""
    n_old = len(ctx.texts) - len(is_outlier)
    unsure = is_outlier | (confidence[n_old:] < LOW_CONFIDENCE)
    # regions only where a call is left: at budget 0 one region of the update test's input took two kinds
    # at once (texts written as Python dicts and hotel refunds) and became one cluster
    checkable = ctx.llm is not None and ctx.calls_left() > 0
    regions = new_regions(ctx.vectors, np.arange(len(ctx.vectors)) >= n_old, seed=agent.config.seed) \
        if checkable else []
    grown_tax, grouped = new_clusters(ctx, state["instruction"], state.get("facet", ""), tax,
                                      n_old + np.flatnonzero(unsure), is_outlier[unsure], line, predicted,
                                      top_names=[t["name"] for t in broad(state.get("tops") or [])], regions=regions)
    for cid in set(grouped.values()):
        rows = np.array([r for r, c in grouped.items() if c == cid])
        centre = ctx.vectors[rows].mean(axis=0)
        predicted[rows] = cid
        confidence[rows] = np.clip(ctx.vectors[rows] @ (centre / np.linalg.norm(centre)), 0, 1)
    return grown_tax, grouped


def _update_reply(grown: tx.Taxonomy, tax: tx.Taxonomy, grouped: dict, is_outlier: np.ndarray,
                  tops: list[dict]) -> str:
    """What an update did, in words: its new clusters, where each stands in a run with a top level (`tops`,
    after the update), and the outliers left."""
    added = grown.clusters[len(tax.clusters):]
    if not added:
        return f"No new cluster: {left(is_outlier)}."
    top_of = {c: t["name"] for t in broad(tops) for c in t["children"]}  # empty where the run has one level

    def where(cid: int) -> str:
        if not top_of:
            return ""
        return f' (under "{top_of[cid]}")' if cid in top_of else " (at the top level)"

    listed = ", ".join(f'{c.id} "{c.name}"{where(c.id)}' for c in added)
    return f"New {'cluster' if len(added) == 1 else 'clusters'} {listed} from {counted(len(grouped), 'new text')}; " \
           f"{left(is_outlier)}."


def left(is_outlier: np.ndarray) -> str:
    """How many new texts an update leaves outliers, in words ("1 new text stays an outlier")."""
    n = int(is_outlier.sum())
    return "1 new text stays an outlier" if n == 1 else f"{n} new texts stay outliers"


def novelty_notes(is_outlier: np.ndarray, confidence: np.ndarray, max_outliers: float | None,
                  update: bool = False) -> list[str]:
    """What to tell the user when the new texts look unlike the run's: many outliers or unsure placements."""
    notes = []
    n = max(1, len(confidence))
    if max_outliers is not None and is_outlier.sum() > 2 * max_outliers * n:
        notes.append(f"{is_outlier.sum()} of {n} new texts ({is_outlier.sum() / n:.0%}) fit no cluster of the run: "
                     "they may hold a group it did not see" + ("." if update else "; `assign --update` makes clusters "
                                                                "of those that hang together."))
    unsure = int((confidence[~is_outlier] < LOW_CONFIDENCE).sum())
    if unsure > UNSURE_SHARE * n:
        notes.append(f"{unsure} of {n} new texts ({unsure / n:.0%}) were placed with confidence under "
                     f"{LOW_CONFIDENCE}: the run's clusters may not cover them well.")
    return notes


def _as_run_result(agent, corpus: Corpus, tax: tx.Taxonomy, fitted: np.ndarray, assigned: np.ndarray,
                    confidence: np.ndarray, run: dict, trace: list, outliers: bool = False,
                    tops: list[dict] | None = None, texts_are: str = "") -> ClusterResult:
    """The assignment as a ClusterResult whose clusters are the run's, as clusters.json lists them (their
    representatives are the fitted texts', their descriptions in the corpus's noun), with the new texts'
    sizes; with `outliers`, the outlier group last, as cluster -1; the run's top clusters, where it has two
    levels."""
    fitted_result = build_result(agent.corpus_, agent.vectors_, tax, fitted, np.ones(len(fitted)), {}, tops=tops,
                                 texts_are=texts_are)
    fitted_clusters = [c for c in fitted_result.clusters if c["cluster"] != tx.OUTLIER]
    assigned = np.asarray(assigned, dtype=np.int64)
    clusters: list[dict[str, Any]] = [{**c, "size": int((assigned == c["cluster"]).sum()), "fitted_size": c["size"]}
                                      for c in fitted_clusters]
    top_clusters = [{**t, "size": int(np.isin(assigned, t["children"]).sum()), "fitted_size": t["size"]}
                    for t in fitted_result.top_clusters]
    if outliers:
        clusters.append(outlier_cluster((assigned < 0).sum(), fitted_size=int((fitted < 0).sum()),
                                        level=1, parent=None))
    return ClusterResult(ids=list(corpus.ids), texts=list(corpus.texts), cluster=assigned,
                         confidence=np.asarray(confidence, dtype=np.float32), clusters=clusters,
                         run={**run, "k": len(fitted_clusters), "levels": fitted_result.levels}, trace=trace,
                         top_clusters=top_clusters)
