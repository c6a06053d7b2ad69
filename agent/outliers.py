"""The explicit outlier group (cluster -1): texts that fit none of the clusters, on request.

Typicality (tools/novelty.py) proposes them: a text far from every other text of the corpus, or a new text
far from every text a run clustered. The chat model decides those nearest the line, choosing among the
clusters with "None of these" as one more choice, so the line is the model's where the budget reaches.

    in_corpus:  a run's own texts (`run --outliers`): the least typical, below a robust fence
    in_new:     new texts against a finished run (`assign --outliers`), by new_typicality's line
    new_clusters: groups of new texts of a kind the run has not seen (in a region of their own, or among the
                outliers, as tight as the run's texts), named like any cluster, under new ids (`assign --update`)
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from clusteragent.errors import ModelError, counted
from clusteragent.fits import Match, group_fits_request
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
    ctx.progress(f"asking the model about the {counted(len(rows), 'text')} nearest the outlier line")
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


def new_typicality(old_vectors: np.ndarray, new_vectors: np.ndarray, share: float) -> tuple[np.ndarray, float]:
    """Each new text's typicality of the run's texts, and the line below which a new text is an outlier:
    at most `share` of texts like the run's fall below it."""
    index = VectorIndex(old_vectors)
    return typicality(index, new_vectors), outlier_line(index, old_vectors, share)


def in_new(ctx, instruction: str, tax: tx.Taxonomy, typical: np.ndarray, line: float, calls: int,
           settled: np.ndarray = ()) -> tuple[np.ndarray, dict[int, int]]:
    """Which new texts are outliers (ctx holds the run's texts, then the new ones; `typical` and `line`
    from new_typicality), and the clusters the model gave those near the line that it kept in (ctx row ->
    cluster id). The model checks up to `calls` texts nearest the line, none of `settled` (indices of new
    texts)."""
    is_outlier = typical < line
    n_old = len(ctx.texts) - len(typical)
    near = np.argsort(np.abs(typical - line), kind="stable")
    near = near[~np.isin(near, np.asarray(settled, dtype=np.int64))][:max(0, calls)]
    checked = model_check(ctx, instruction, tax, n_old + near, "outlier_check")
    kept = {}
    for row, cid in checked.items():
        is_outlier[row - n_old] = cid == tx.OUTLIER
        if cid != tx.OUTLIER:
            kept[row] = cid
    return is_outlier, kept


def new_clusters(ctx, instruction: str, facet: str, tax: tx.Taxonomy, rows: np.ndarray, outlier: np.ndarray,
                 line: float, placed_in: np.ndarray, min_size: int = MIN_NEW_SIZE, top_names: Sequence[str] = (),
                 regions: Sequence[np.ndarray] = ()) -> tuple[tx.Taxonomy, dict[int, int]]:
    """New clusters for new texts of a kind the run has not seen. Two kinds of group are candidates, each
    of `min_size` texts or more: `regions` (ctx rows: new texts in a part of the space the run's texts
    hardly reach, novelty.new_regions), and among the other `rows` (ctx rows: outliers, where `outlier` is
    true, and texts placed with low confidence) average-linkage groups whose texts are on average at least
    as similar as a typical run text is to its neighbours (`line`).

    A group most of whose texts are outliers is new: texts far from every text of the run that hang
    together are a kind it has not seen, whatever the model says of them (asked, it said gardening
    questions fit "Todo list management"). Any other group is new when the model, shown its most typical
    texts and the cluster most of them were placed in (`placed_in`: ctx row -> the classifier's cluster),
    says they do not fit it: a yes/no on one cluster, which the embedded model answers far better than it
    picks "None of these" from a run's whole list (it almost never does); where the budget is spent, it is
    not (old kinds in new wording fill a region too; the model tells them apart). Regions come first; the
    groups are made of the texts they did not take. Each new group is
    named by the model (a name no cluster has, nor a top cluster of `top_names`; under a top level the
    model's narrower name, as the run's clusters there are) within the budget, else by its distinctive
    words, and gets the next free id, so no old cluster is renumbered.

    Returns the taxonomy with the new clusters and the rows they took (ctx row -> new cluster id)."""
    rows = np.asarray(rows, dtype=np.int64)
    outliers = set(rows[np.asarray(outlier, dtype=bool)].tolist())
    listed = tax  # the run's clusters, which a group must differ from
    found = [np.asarray(r, dtype=np.int64) for r in regions if len(r) >= min_size]
    tax, placed = _kept_groups(ctx, instruction, facet, listed, tax, found, placed_in, outliers, top_names)
    left = rows[~np.isin(rows, np.array(list(placed), dtype=np.int64))]
    tax, grouped = _kept_groups(ctx, instruction, facet, listed, tax, _tight_groups(ctx.vectors, left, line, min_size),
                                placed_in, outliers, top_names)
    placed.update(grouped)
    ctx.progress(f"{counted(tax.next_id - listed.next_id, 'new cluster')} from {counted(len(placed), 'new text')} "
                 "that look unlike the run's")
    return tax, placed


def _kept_groups(ctx, instruction: str, facet: str, listed: tx.Taxonomy, tax: tx.Taxonomy,
                 groups: list[np.ndarray], placed_in: np.ndarray, outliers: set[int],
                 top_names: Sequence[str]) -> tuple[tx.Taxonomy, dict[int, int]]:
    """`tax` with a new cluster for each of `groups` (ctx rows) that is new (see new_clusters: mostly
    `outliers`, or said by the model not to fit where it was placed), and the rows those took."""
    from clusteragent.naming import name_members, statistical_name
    from clusteragent.tools.features import distinctive_words

    if not groups:
        return tax, {}
    words = distinctive_words([ctx.texts[r] for g in groups for r in g],
                              np.repeat(np.arange(len(groups)), [len(g) for g in groups]))
    placed: dict[int, int] = {}
    for g, members in enumerate(groups):
        if np.mean([int(r) in outliers for r in members]) <= 0.5 and \
                fits_where_placed(ctx, listed, members, placed_in) is not False:
            continue
        spec, taken = None, [*tax.names, *top_names]
        if ctx.llm is not None and ctx.calls_left() > 0:
            spec = name_members(ctx.llm, instruction, facet, ctx.texts, ctx.vectors, members, taken,
                                step="name_new_cluster", narrower=bool(top_names))
        if spec is None:
            spec = statistical_name(words.get(g, []), [ctx.texts[r] for r in members], taken)
        tax, cid = tax.added(spec.name, spec.description, getattr(spec, "named_by", "model"))
        placed.update({int(r): cid for r in members})
    return tax, placed


def fits_where_placed(ctx, tax: tx.Taxonomy, members: np.ndarray, placed_in: np.ndarray) -> bool | None:
    """The model's yes/no: do a group's most typical texts fit the cluster most of `members` (ctx rows) were
    placed in? None where the budget is spent or the model gave no valid answer."""
    if ctx.llm is None or ctx.calls_left() < 1:
        return None
    cluster = tax.by_id(int(np.bincount(placed_in[members]).argmax()))
    request = group_fits_request(f"{cluster.name}: {cluster.description}", "new texts", ctx.texts, ctx.vectors, members)
    try:
        return ctx.llm.decide(request, Match, step="new_cluster_check").fits == "yes"
    except ModelError:
        return None


def _tight_groups(vectors: np.ndarray, rows: np.ndarray, line: float, min_size: int) -> list[np.ndarray]:
    """Average-linkage groups of `rows` at least as tight as `line`, with `min_size` texts or more, largest
    first."""
    from sklearn.cluster import AgglomerativeClustering

    if len(rows) < max(2, min_size):
        return []
    groups = AgglomerativeClustering(n_clusters=None, metric="cosine", linkage="average",
                                     distance_threshold=max(1e-6, 1 - line)).fit_predict(vectors[rows])
    sizes = np.bincount(groups)
    return [rows[groups == g] for g in np.argsort(-sizes, kind="stable") if sizes[g] >= min_size]
