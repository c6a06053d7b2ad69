"""How typical a text is of a corpus: the mean cosine similarity to its nearest neighbours there.

A new text far from every text a run clustered fits none of its clusters, however its classifier votes
(a classifier always picks one). The line between typical and not is set by the corpus itself, from the
typicality its own texts reach among the others.
"""

from __future__ import annotations

import numpy as np

from clusteragent.tools.index import VectorIndex

NEIGHBOURS = 10


def typicality(index: VectorIndex, queries: np.ndarray, k: int = NEIGHBOURS, indexed: bool = False) -> np.ndarray:
    """Mean cosine similarity of each query to its k nearest indexed rows; with `indexed` (the queries are
    the indexed rows themselves), each row's own match is left out."""
    hits = index.search(queries, k + int(indexed))
    scores = np.where(hits.ids >= 0, hits.scores, np.nan)
    if indexed:
        scores = scores[:, 1:]
    return np.nanmean(scores, axis=1).astype(np.float32)


def outlier_line(index: VectorIndex, vectors: np.ndarray, share: float, k: int = NEIGHBOURS) -> float:
    """The typicality below which a text is an outlier, for at most `share` of texts like the indexed ones
    to fall below it: the level that half that share of the corpus's own texts fall below (leave-one-out),
    leaving the other half of the bound to sampling (a new batch is a sample too)."""
    own = typicality(index, vectors, k, indexed=True)
    return float(np.quantile(own, share / 2))


NEW_SHARE = 0.9  # a region is new where at least this share of the texts in it are new
SHUFFLES = 20  # chance's largest such region: the largest over this many shufflings of which texts are new
MAX_TREE = 4000  # texts in the joint tree; past this a seeded sample, the others following their nearest in it


def new_regions(vectors: np.ndarray, is_new: np.ndarray, seed: int = 0, share: float = NEW_SHARE,
                shuffles: int = SHUFFLES, max_texts: int = MAX_TREE) -> list[np.ndarray]:
    """Groups of new texts where the old ones hardly reach: in a Ward tree over old and new texts together,
    the largest nodes in which at least `share` of the texts are new and which are larger than any such
    node is when which texts are new is shuffled `shuffles` times (so chance makes one about once in
    shuffles + 1 batches). A new kind of text the old texts' neighbours crowd out of every outlier test
    still fills a branch of the tree of its own.

    Returns the regions, disjoint and largest first, each as the rows of `vectors` of its new texts."""
    from scipy.cluster.hierarchy import linkage

    is_new = np.asarray(is_new, dtype=bool)
    n = len(vectors)
    if n < 3 or is_new.all() or not is_new.any():
        return []
    rng = np.random.default_rng(seed)
    sample = np.sort(rng.choice(n, max_texts, replace=False)) if n > max_texts else np.arange(n)
    merges = linkage(np.asarray(vectors[sample], dtype=np.float64), method="ward")
    m = len(sample)
    labels = np.column_stack([is_new[sample], *(rng.permutation(is_new[sample]) for _ in range(shuffles))])
    size = np.concatenate([np.ones(m, np.int64), np.zeros(m - 1, np.int64)])
    new = np.concatenate([labels.astype(np.int64), np.zeros((m - 1, labels.shape[1]), np.int64)])
    for i, (a, b) in enumerate(merges[:, :2].astype(np.int64)):
        size[m + i], new[m + i] = size[a] + size[b], new[a] + new[b]
    mostly_new = new >= share * size[:, None]
    chance = max(int(size[mostly_new[:, j]].max()) for j in range(1, labels.shape[1]))
    flagged = mostly_new[:, 0] & (size > chance)
    region = np.full(m, -1)  # sampled row -> region number
    regions = 0
    for node in np.flatnonzero(flagged)[::-1]:  # later merges first: a region's own branches are skipped
        first = int(node)
        while first >= m:
            first = int(merges[first - m, 0])
        if region[first] < 0:  # nodes are nested or apart: one leaf tells whether a larger region holds this one
            region[_leaves(merges, m, int(node))], regions = regions, regions + 1
    if regions == 0:
        return []
    row_region = np.full(n, -1)
    row_region[sample] = region
    rest = np.setdiff1d(np.flatnonzero(is_new), sample)
    if len(rest):
        nearest = VectorIndex(vectors[sample]).search(vectors[rest], 1).ids[:, 0]
        row_region[rest] = region[nearest]
    found = [np.flatnonzero((row_region == r) & is_new) for r in range(regions)]
    return sorted(found, key=len, reverse=True)


def _leaves(merges: np.ndarray, m: int, node: int) -> np.ndarray:
    """The leaves (sampled rows) under `node` of a scipy linkage of m rows."""
    out, stack = [], [node]
    while stack:
        x = stack.pop()
        if x < m:
            out.append(x)
        else:
            stack.extend(merges[x - m, :2].astype(np.int64).tolist())
    return np.array(out, dtype=np.int64)
