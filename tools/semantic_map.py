"""A map of the sentence embeddings for grouping texts by what they are about.

k-means on the raw 384-dimensional embeddings cuts dense subjects apart and lumps sparse ones
together; on a 5-dimensional UMAP map of them (the reduction BERTopic uses) the same k-means finds
subjects better. `python -m clusteragent.evals.bench_meaning_map` measures both on the topical dev tasks.
"""

from __future__ import annotations

import functools

import numpy as np

from clusteragent.tools.kestimate import distinct_rows

# Below this many distinct texts the map is the embeddings themselves (UMAP's neighbour graph has 15
# neighbours a text). From 40 texts up the map reads a small corpus's groups better than the embeddings do
# (docs/benchmarks.md, "A small corpus").
MIN_TEXTS = 40

# Texts this close say the same thing in nearly the same words ("i need to know where my phone is", "i would
# like to know where my phone is": 0.978). UMAP scales each text's neighbourhood to its nearest neighbours,
# so a text with a few near-copies is tied to them alone and the map shows clumps of copies instead of
# subjects (120 texts made of 24 sentences in five numbered variants each were grouped by clump); a
# near-copy is placed where the text it copies is mapped.
NEAR_COPY = 0.97


@functools.cache
def keep_umap_compilation() -> int:
    """Have numba keep UMAP's compiled functions on disk (numba's cache: beside UMAP's sources, or under
    NUMBA_CACHE_DIR), as pynndescent already does for its own; returns how many it now keeps. UMAP compiles
    them again in every process otherwise: about 10 s of a 2,000-text map on a 2-core machine."""
    import umap.distances
    import umap.layouts
    import umap.sparse
    import umap.umap_
    import umap.utils
    from numba.core.registry import CPUDispatcher

    kept = 0
    for module in (umap.umap_, umap.layouts, umap.utils, umap.distances, umap.sparse):
        for function in vars(module).values():
            if isinstance(function, CPUDispatcher) and function.__module__ == module.__name__:
                function.enable_caching()
                kept += 1
    return kept


def umap_reducer(seed: int, dims: int = 5, neighbours: int = 15, min_dist: float = 0.0, knn=None):
    """A seeded UMAP with BERTopic's settings (cosine, min_dist 0): what the map and the benchmark's
    UMAP baselines reduce the embeddings with. `knn`: the fitted rows' neighbours, found beforehand."""
    import umap

    keep_umap_compilation()
    return umap.UMAP(n_components=dims, n_neighbors=neighbours, min_dist=min_dist, metric="cosine", random_state=seed,
                     **({"precomputed_knn": knn} if knn is not None else {}))


# From this many rows UMAP finds their neighbours with pynndescent, whose search functions numba compiles
# afresh in every process (about 30 s on 2 cores, not kept by numba's cache); FAISS finds them exactly and
# compiles nothing. Below it UMAP's own search is exact too, so smaller maps are as they were.
EXACT_NEIGHBOURS_FROM = 4096


def _nearest(points: np.ndarray, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Cosine similarities and rows of each query's `k` nearest `points`, exactly (the run's flat index)."""
    from clusteragent.tools.index import VectorIndex

    def unit(x):
        return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)

    found = VectorIndex(unit(points), kind="flat").search(unit(queries), k)
    return found.scores, found.ids


def _placed(fitted: np.ndarray, coords: np.ndarray, rest: np.ndarray, neighbours: int) -> np.ndarray:
    """Map coordinates for `rest`: the mean of their nearest fitted rows' coordinates, nearer ones weighing
    more (UMAP's transform starts from such a mean; its search index costs the compilation above)."""
    sims, rows = _nearest(fitted, rest, neighbours)
    weights = np.exp((sims - sims[:, :1]) / 0.05)
    weights /= weights.sum(axis=1, keepdims=True)
    return (coords[rows] * weights[:, :, None]).sum(axis=1).astype(np.float32)


def near_copies(vectors: np.ndarray, neighbours: int = 15, found=None) -> tuple[np.ndarray, np.ndarray]:
    """(kept, at): the rows a map is fitted on, and for every row the position in `kept` of the row it is
    placed at: its own, or that of the nearest earlier kept row among its `neighbours` nearest whose cosine
    with it is NEAR_COPY or more. `found`: those neighbours (_nearest's answer), if already searched."""
    sims, rows = found if found is not None else _nearest(vectors, vectors, min(neighbours, len(vectors)))
    placed_at = np.arange(len(vectors))
    for i in range(len(vectors)):
        close = rows[i][(sims[i] >= NEAR_COPY) & (rows[i] >= 0) & (rows[i] < i)]  # nearest first
        close = close[placed_at[close] == close]
        if len(close):
            placed_at[i] = close[0]
    kept = np.flatnonzero(placed_at == np.arange(len(vectors)))
    return kept, np.searchsorted(kept, placed_at)


def semantic_map(vectors: np.ndarray, seed: int = 0, dims: int = 5, neighbours: int = 15,
                 fit_rows: int = 10_000, min_dist: float = 0.0) -> np.ndarray | None:
    """float32 coordinates (N x dims) of a seeded UMAP (cosine, min_dist 0) of `vectors`; compare them
    with euclidean distance. Fitted on a seeded sample of at most `fit_rows` rows, the rest placed among
    their nearest fitted rows (_placed), so the cost stays bounded at any N. Copies and near-copies of a
    row (near_copies) take its coordinates. None, no map, for fewer than MIN_TEXTS distinct rows or too
    few apart from near-copies for a neighbour graph: such a corpus is read on its embeddings."""
    import warnings

    vectors = np.asarray(vectors, dtype=np.float32)
    first, copies = distinct_rows(vectors)
    if len(first) < MIN_TEXTS:
        return None
    if len(first) < len(vectors):
        mapped = semantic_map(vectors[first], seed, dims, neighbours, fit_rows, min_dist)
        return None if mapped is None else mapped[copies]
    rng = np.random.default_rng(seed)
    fit = np.sort(rng.choice(len(vectors), fit_rows, replace=False)) if len(vectors) > fit_rows else None
    fitted = vectors if fit is None else vectors[fit]
    found = _nearest(fitted, fitted, min(neighbours, len(fitted)))
    kept, at = near_copies(fitted, neighbours, found)
    if len(kept) <= neighbours:
        return None
    knn = None
    if len(kept) >= EXACT_NEIGHBOURS_FROM:
        sims, rows = found if len(kept) == len(fitted) else _nearest(fitted[kept], fitted[kept], neighbours)
        knn = (rows.astype(np.int32), np.maximum(0.0, 1.0 - sims).astype(np.float32))  # UMAP's cosine distance
    reducer = umap_reducer(seed, dims, neighbours, min_dist, knn=knn)
    with warnings.catch_warnings():  # UMAP notes that a seed turns off its parallelism
        warnings.simplefilter("ignore", UserWarning)
        coords = reducer.fit_transform(fitted[kept]).astype(np.float32)[at]
    if fit is None:
        return coords
    out = np.empty((len(vectors), dims), dtype=np.float32)
    out[fit] = coords
    rest = np.setdiff1d(np.arange(len(vectors)), fit)
    out[rest] = _placed(fitted, coords, vectors[rest], neighbours)
    return out


# Above this a picture of the corpus is PCA's: UMAP of 40,000 texts takes minutes on a laptop CPU.
PLANE_UMAP_MAX = 10_000


def plane(vectors: np.ndarray, seed: int = 0) -> np.ndarray:
    """float32 (N x 2) coordinates to draw the corpus on: a seeded 2-D UMAP (min_dist 0.1) of `vectors` up to
    PLANE_UMAP_MAX texts where semantic_map makes one, else PCA's two first axes."""
    from sklearn.decomposition import PCA

    vectors = np.asarray(vectors, dtype=np.float32)
    if len(vectors) < 3:
        return np.column_stack([np.arange(len(vectors), dtype=np.float32), np.zeros(len(vectors), np.float32)])
    mapped = semantic_map(vectors, seed=seed, dims=2, min_dist=0.1) if len(vectors) <= PLANE_UMAP_MAX else None
    if mapped is not None:
        return mapped
    return PCA(n_components=2, random_state=seed).fit_transform(vectors).astype(np.float32)
