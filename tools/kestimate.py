"""Statistical evidence about the number of clusters. It reports; the agent decides."""

from __future__ import annotations

import numpy as np


def distinct_rows(vectors: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(first, copies): the row of each distinct row's first copy, in the order of the rows, and for every
    row the position of its own in `first`, so that `vectors[first][copies]` equals `vectors`. Copies of a
    text embed alike; they weigh on a neighbour graph and on a density estimate as no real group does."""
    x = np.ascontiguousarray(vectors)
    if len(x) == 0:
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
    keys = x.reshape(len(x), -1).view(np.dtype((np.void, x.dtype.itemsize * int(np.prod(x.shape[1:])))))
    _, first, copies = np.unique(keys.ravel(), return_index=True, return_inverse=True)
    order = np.argsort(first, kind="stable")  # number the distinct rows as they first appear
    rank = np.empty_like(order)
    rank[order] = np.arange(len(order))
    return first[order].astype(np.int64), rank[copies.ravel()].astype(np.int64)


def estimate_k(vectors: np.ndarray, k_min: int = 2, k_max: int = 20, seed: int = 0,
               max_points: int = 2000, metric: str = "cosine") -> tuple[int, dict]:
    """Score each k in [k_min, k_max] on (a subsample of) the embeddings.

    Silhouette of k-means for each k, and the eigengap of a kNN affinity graph's normalized Laplacian,
    both under `metric`: "cosine" for unit-length embeddings, "euclidean" for a map of them (UMAP
    coordinates). Copies of a row count once (distinct_rows). Cost is bounded by `max_points` (a seeded
    subsample), never O(N^2) in the corpus size.

    Returns:
        (suggested_k, stats): the k with the best silhouette, and
        {"silhouette": {k: s}, "eigengap_k": k, "eigengaps": {k: gap}, "points": n}.
    """
    from sklearn.cluster import KMeans
    from sklearn.metrics import silhouette_score

    rng = np.random.default_rng(seed)
    x = np.asarray(vectors, dtype=np.float32)
    x = x[distinct_rows(x)[0]]
    if len(x) > max_points:
        x = x[rng.choice(len(x), max_points, replace=False)]
    n = len(x)
    k_min = max(2, int(k_min))
    k_max = int(min(k_max, n - 1))
    if k_max < k_min:
        return max(1, min(k_min, n)), {"silhouette": {}, "eigengap_k": None, "eigengaps": {}, "points": n}
    x = np.ascontiguousarray(x)
    silhouette = {}
    for k in range(k_min, k_max + 1):
        labels = KMeans(k, n_init=2, max_iter=50, random_state=seed).fit_predict(x)
        silhouette[k] = float(silhouette_score(x, labels, metric=metric)) if len(set(labels)) > 1 else -1.0
    gaps = _eigengaps(x, k_max + 1, seed, metric=metric)
    gaps = {k: g for k, g in gaps.items() if k_min <= k <= k_max}
    eigengap_k = max(gaps, key=gaps.get) if gaps else None
    best = max(silhouette, key=silhouette.get)
    return best, {"silhouette": {k: round(v, 4) for k, v in silhouette.items()}, "eigengap_k": eigengap_k,
                  "eigengaps": {k: round(v, 4) for k, v in gaps.items()}, "points": n}


def _eigengaps(x: np.ndarray, top: int, seed: int, neighbours: int = 15, metric: str = "cosine") -> dict[int, float]:
    """gap_k = lambda_{k+1} - lambda_k of the symmetric normalized Laplacian of a kNN graph (edge weights:
    the cosine, or a Gaussian of the euclidean distance scaled by its median)."""
    import faiss
    from scipy.sparse import csr_matrix, identity
    from scipy.sparse.linalg import eigsh

    n = len(x)
    m = min(neighbours + 1, n)
    index = faiss.IndexFlatIP(x.shape[1]) if metric == "cosine" else faiss.IndexFlatL2(x.shape[1])
    index.add(x)
    sims, ids = index.search(x, m)
    rows = np.repeat(np.arange(n), m - 1)
    if metric == "cosine":
        w = np.clip(sims[:, 1:].ravel(), 0, None)
    else:  # squared distances
        d2 = sims[:, 1:].ravel()
        w = np.exp(-d2 / max(float(np.median(d2)), 1e-12))
    a = csr_matrix((w, (rows, ids[:, 1:].ravel())), shape=(n, n))
    a = a.maximum(a.T)
    deg = np.asarray(a.sum(axis=1)).ravel()
    d = 1.0 / np.sqrt(np.maximum(deg, 1e-12))
    lap = identity(n) - a.multiply(d[:, None]).multiply(d[None, :])
    count = int(min(top + 1, n - 1))
    try:
        vals = np.sort(eigsh(lap.tocsc(), k=count, which="SM", tol=1e-4, maxiter=5000,
                             v0=np.random.default_rng(seed).random(n))[0])
    except Exception:  # ARPACK may not converge on degenerate graphs; the silhouette still stands
        return {}
    return {k: float(vals[k] - vals[k - 1]) for k in range(1, len(vals))}


def density_k(points: np.ndarray, seed: int = 0, max_points: int = 2000) -> int:
    """How many dense groups HDBSCAN finds on (a seeded subsample of) a low-dimensional map of the texts, with
    at least max(5, n/100) points a group (the HDBSCAN+UMAP baseline's setting): another reading of the data's
    own structure, one that does not share k-means' preference for round, equal groups. Copies of a point count
    once (five copies of one text are no dense group). 0 when it finds none."""
    import warnings

    from sklearn.cluster import HDBSCAN

    x = np.asarray(points, dtype=np.float32)
    x = x[distinct_rows(x)[0]]
    if len(x) > max_points:
        x = x[np.random.default_rng(seed).choice(len(x), max_points, replace=False)]
    if len(x) < 10:
        return 0
    with warnings.catch_warnings():  # a future default of HDBSCAN's, announced on every call
        warnings.simplefilter("ignore", FutureWarning)
        labels = HDBSCAN(min_cluster_size=max(5, len(x) // 100)).fit_predict(x)
    return int(len(set(labels.tolist()) - {-1}))
