"""The explicit outlier group (cluster -1): texts that fit none of the clusters, on request.

Typicality (tools/novelty.py) proposes them: a text far from every other text of the corpus, or a new text
far from every text a run clustered. The chat model decides those nearest the line, choosing among the
clusters with "None of these" as one more choice, so the line is the model's where the budget reaches.

    in_corpus:  a run's own texts (`run --outliers`): the least typical, below a robust fence
    in_new:     new texts against a finished run (`assign --outliers`)
    new_clusters: groups among the outliers that hang together as tightly as the run's texts do, named
                like any cluster, under new ids (`assign --update`)
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from clusteragent.labelling import label_rows
from clusteragent.tools import taxonomy as tx
from clusteragent.tools.index import VectorIndex
from clusteragent.tools.novelty import outlier_line, typicality

NONE_OF_THESE = "None of these"  # the extra choice that makes a text the model checks an outlier
OUTLIER_NAME = "Outliers"
MIN_NEW_SIZE = 3  # the fewest outliers that make a new cluster
FENCE = 3.0  # Tukey's "far out" fence: this many interquartile ranges below the lower quartile is isolated


def outlier_cluster(size: int, **extra) -> dict:
    """The outlier group as a clusters.json entry."""
    return {"cluster": tx.OUTLIER, "name": OUTLIER_NAME, "size": int(size), **extra,
            "description": "Texts unlike the others: they fit none of the clusters.",
            "representative_ids": [], "representative_texts": []}


def model_check(ctx, instruction: str, tax: tx.Taxonomy, rows: np.ndarray, step: str) -> dict[int, int]:
    """The model's choice for each of `rows` (ctx rows) it answered: a cluster id, or OUTLIER for
    "None of these"; within ctx's budget."""
    if ctx.llm is None or len(rows) == 0:
        return {}
    with_none, none_id = tax.added(NONE_OF_THESE, "The text fits none of the clusters above.")
    ctx.progress(f"asking the model about the {len(rows)} texts nearest the outlier line")
    answers, _ = label_rows(ctx, instruction, rows, with_none, step)
    return {int(row): (tx.OUTLIER if cid == none_id else cid) for row, cid in answers.items()}


def in_corpus(ctx, instruction: str, tax: tx.Taxonomy, assignment: np.ndarray, share: float,
              calls: int) -> tuple[np.ndarray, dict]:
    """A run's outliers: among the `share` of its texts least typical of the others, those below Tukey's
    fence on typicality are outliers, and the model checks up to `calls` of the rest, nearest the fence
    first. A group of unusual texts that are alike is typical of itself, so it stays a cluster.

    Returns the new assignment (outliers at -1, checked texts where the model put them) and a record."""
    vectors = ctx.vectors
    own = typicality(VectorIndex(vectors), vectors, indexed=True)
    q1, q3 = np.quantile(own, [0.25, 0.75])
    fence = float(q1 - FENCE * (q3 - q1))
    candidates = np.argsort(own, kind="stable")[:int(np.floor(share * len(own)))]
    out = assignment.copy()
    below = candidates[own[candidates] < fence]
    out[below] = tx.OUTLIER
    near = candidates[own[candidates] >= fence]
    near = near[np.argsort(own[near] - fence, kind="stable")][:max(0, calls)]
    checked = model_check(ctx, instruction, tax, near, "outlier_check")
    for row, cid in checked.items():
        out[row] = cid
    record = {"fence": round(fence, 4), "below_fence": len(below), "checked_by_model": len(checked),
              "outliers": int((out == tx.OUTLIER).sum())}
    return out, record


def in_new(ctx, instruction: str, tax: tx.Taxonomy, old_vectors: np.ndarray, new_vectors: np.ndarray,
           share: float, calls: int) -> tuple[np.ndarray, dict[int, int], float]:
    """Which new texts are outliers (ctx holds the run's texts, then the new ones), the clusters the
    model gave those near the line that it kept in (ctx row -> cluster id), and the line."""
    index = VectorIndex(old_vectors)
    line = outlier_line(index, old_vectors, share)
    typical = typicality(index, new_vectors)
    is_outlier = typical < line
    n_old = len(old_vectors)
    near = np.argsort(np.abs(typical - line), kind="stable")[:max(0, calls)]
    checked = model_check(ctx, instruction, tax, n_old + near, "outlier_check")
    kept = {}
    for row, cid in checked.items():
        is_outlier[row - n_old] = cid == tx.OUTLIER
        if cid != tx.OUTLIER:
            kept[row] = cid
    return is_outlier, kept, line


def new_clusters(ctx, instruction: str, facet: str, tax: tx.Taxonomy, rows: np.ndarray, outlier: np.ndarray,
                 line: float, min_size: int = MIN_NEW_SIZE,
                 top_names: Sequence[str] = ()) -> tuple[tx.Taxonomy, dict[int, int]]:
    """New clusters for the texts `rows` (ctx rows: outliers, where `outlier` is true, and texts placed with
    low confidence) that hang together: average-linkage groups whose texts are on average at least as
    similar as a typical run text is to its neighbours (`line`), with `min_size` texts or more.

    A group is new when the model, shown its most central text with the run's clusters and "None of
    these", picks none of them; where the budget is spent, when most of its texts are outliers. Each new
    group is named by the model (a name no cluster has, nor a top cluster of `top_names`; under a top level
    the model's narrower name, as the run's clusters there are) within the budget, else by its distinctive
    words, and gets the next free id, so no old cluster is renumbered.

    Returns the taxonomy with the new clusters and the rows they took (ctx row -> new cluster id)."""
    from sklearn.cluster import AgglomerativeClustering

    from clusteragent.naming import name_members, statistical_name
    from clusteragent.tools.features import distinctive_words

    rows = np.asarray(rows, dtype=np.int64)
    if len(rows) < max(2, min_size):
        return tax, {}
    groups = AgglomerativeClustering(n_clusters=None, metric="cosine", linkage="average",
                                     distance_threshold=max(1e-6, 1 - line)).fit_predict(ctx.vectors[rows])
    sizes = np.bincount(groups)
    kept = [g for g in np.argsort(-sizes, kind="stable") if sizes[g] >= min_size]
    if not kept:
        return tax, {}
    texts = [ctx.texts[r] for r in rows]
    words = distinctive_words(texts, groups)
    placed: dict[int, int] = {}
    listed = tax  # the run's clusters, which a group must differ from
    for g in kept:
        members = rows[groups == g]
        central = tx.central_members(ctx.vectors, members, 1)
        asked = ctx.llm is not None and ctx.calls_left() > 0
        verdict = model_check(ctx, instruction, listed, central, "new_cluster_check") if asked else {}
        if not (verdict.get(int(central[0])) == tx.OUTLIER if verdict else outlier[groups == g].mean() > 0.5):
            continue
        spec, taken = None, [*tax.names, *top_names]
        if ctx.llm is not None and ctx.calls_left() > 0:
            spec = name_members(ctx.llm, instruction, facet, ctx.texts, ctx.vectors, members, taken,
                                step="name_new_cluster", narrower=bool(top_names))
        if spec is None:
            spec = statistical_name(words.get(int(g), []), [ctx.texts[r] for r in members], taken)
        tax, cid = tax.added(spec.name, spec.description, getattr(spec, "named_by", "model"))
        placed.update({int(r): cid for r in members})
    ctx.progress(f"{tax.next_id - listed.next_id} new cluster(s) from {len(placed)} of {len(rows)} outlying or "
                 "unsure new texts")
    return tax, placed
