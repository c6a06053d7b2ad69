"""FAISS neighbours of a text or of a cluster: evidence for review, candidates for reassignment."""

from __future__ import annotations

import numpy as np

from clusteragent.tools.index import VectorIndex


def centroid(vectors: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """The unit mean direction of some rows."""
    c = vectors[np.asarray(rows)].mean(axis=0)
    return (c / max(float(np.linalg.norm(c)), 1e-12)).astype(np.float32)


def retrieve(index: VectorIndex, query: np.ndarray, k: int = 10, exclude: np.ndarray | None = None
             ) -> tuple[np.ndarray, np.ndarray]:
    """The k indexed rows most similar to `query` (one vector), skipping `exclude`.

    Returns (rows, cosine scores), best first; fewer than k when the index runs out.
    """
    excluded = set(np.asarray(exclude if exclude is not None else [], dtype=np.int64).tolist())
    want = min(len(index), k + len(excluded))
    hits = index.search(query, want)
    keep = [(r, s) for r, s in zip(hits.ids[0].tolist(), hits.scores[0].tolist()) if r >= 0 and r not in excluded]
    keep = keep[:k]
    return np.array([r for r, _ in keep], dtype=np.int64), np.array([s for _, s in keep], dtype=np.float32)


def cluster_neighbours(index: VectorIndex, vectors: np.ndarray, assignment: np.ndarray, cluster_id: int,
                       k: int = 5) -> tuple[np.ndarray, np.ndarray]:
    """Texts outside a cluster that lie closest to its centre: candidates that may belong to it."""
    members = np.flatnonzero(assignment == cluster_id)
    if len(members) == 0:
        return np.array([], dtype=np.int64), np.array([], dtype=np.float32)
    return retrieve(index, centroid(vectors, members), k, exclude=members)
