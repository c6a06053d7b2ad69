"""The number of groups a view's structure reads, and the shape of the k-means groups cut at it.

cluster_on_view (views.py) cuts a view into k-means groups; the k comes from the structure of the texts on
the view (silhouette, and on the meaning map also HDBSCAN's dense groups), a group of most of the corpus is
read again on its own, and a group of one text joins its nearest neighbour.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from clusteragent.tools.kestimate import density_k, estimate_k

if TYPE_CHECKING:
    from clusteragent.state import RunContext


def estimate_k_traced(ctx: RunContext, vectors: np.ndarray, k_min: int, k_max: int, trace: list,
                      metric: str = "cosine") -> tuple[int, dict]:
    """estimate_k over [k_min, k_max] on (a subsample of) `vectors`, recorded in the trace."""
    best, stats = estimate_k(vectors, k_min, k_max, seed=ctx.config.seed, max_points=2000, metric=metric)
    trace.append({"step": "estimate_k", "metric": metric, "k_range": [k_min, k_max], "silhouette_k": best,
                  "eigengap_k": stats["eigengap_k"]})
    return best, stats


def structure_k(ctx: RunContext, vectors: np.ndarray, grouping: np.ndarray, mapped: bool, k_min: int, k_max: int,
                trace: list) -> int:
    """The number of groups the texts' structure reads in [k_min, k_max]: silhouette on `vectors`, and where
    they have a map (`grouping`), also silhouette on the map and the number of dense groups HDBSCAN finds
    there; the finest reading is kept."""
    k = estimate_k_traced(ctx, vectors, k_min, k_max, trace)[0]
    if mapped:
        # Silhouette is flat on sentence embeddings and peaks at few or at many groups, on the
        # embeddings and on their map alike; the finest of the structure's readings is kept (the
        # hierarchy above gives the broad level).
        on_map = estimate_k_traced(ctx, grouping, k_min, k_max, trace, metric="euclidean")[0]
        dense = density_k(grouping, seed=ctx.config.seed)
        trace.append({"step": "density_k", "hdbscan_groups": dense})
        k = max(k, on_map, dense)
    return min(k_max, k)


def kmeans(points: np.ndarray, k: int, seed: int) -> np.ndarray:
    """Seeded k-means groups (0..k-1) of `points`; mini-batch above 20,000 points."""
    from sklearn.cluster import KMeans, MiniBatchKMeans

    model = (KMeans(k, n_init=3, random_state=seed) if len(points) <= 20_000
             else MiniBatchKMeans(k, n_init=3, batch_size=4096, random_state=seed))
    return model.fit_predict(points).astype(np.int64)


def split_majority(ctx: RunContext, vectors: np.ndarray, grouping: np.ndarray, groups: np.ndarray, k_max: int,
                   trace: list) -> np.ndarray:
    """`groups` with a group that holds more than half the texts read again on its own: its structure's k
    (structure_k on its rows), its parts new groups. A group of most of the corpus tells a reader nothing
    about most of it: on 20 Newsgroups by area the structure read baseball and all the rest (92%)."""
    k = int(groups.max()) + 1
    largest = int(np.argmax(np.bincount(groups)))
    rows = np.flatnonzero(groups == largest)
    if 2 * len(rows) <= len(groups) or k >= k_max:
        return groups
    sub_k = structure_k(ctx, vectors[rows], grouping[rows], True, 2, k_max - k + 1, trace)
    parts = kmeans(grouping[rows], sub_k, ctx.config.seed)
    out = groups.copy()
    out[rows] = np.where(parts == 0, largest, k + parts - 1)
    trace.append({"step": "split_majority", "share": round(len(rows) / len(groups), 3), "parts": sub_k})
    return out


# A group of one text is a stray on the map, not a value the corpus shares. Folding pairs too cost the dev
# suite's fine facets 0.002-0.009 V at 300 texts, where a value has as few as two texts.
MIN_GROUP_SIZE = 2


def fold_strays(grouping: np.ndarray, groups: np.ndarray, k_min: int, trace: list) -> np.ndarray:
    """`groups` with each group of fewer than MIN_GROUP_SIZE texts joined to the group whose centre is nearest
    its own (smallest first, never below `k_min` groups), numbered 0.. again. k-means with a k of dozens
    gives a text far from the rest a group of its own (1 of 46 groups of 600 Banking77 messages)."""
    groups = groups.copy()
    folded = 0
    while True:
        ids, sizes = np.unique(groups, return_counts=True)
        if len(ids) <= k_min or sizes.min() >= MIN_GROUP_SIZE:
            break
        small = ids[np.argmin(sizes)]
        centres = np.stack([grouping[groups == g].mean(axis=0) for g in ids])
        gaps = np.linalg.norm(centres - centres[ids == small], axis=1)
        gaps[ids == small] = np.inf
        groups[groups == small] = ids[np.argmin(gaps)]
        folded += 1
    if folded:
        trace.append({"step": "fold_strays", "groups_folded": folded, "min_size": MIN_GROUP_SIZE})
    return np.unique(groups, return_inverse=True)[1].astype(np.int64)
