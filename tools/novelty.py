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
