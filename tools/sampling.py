"""Diverse samples of a corpus: what the model reads must cover it, never be its first N rows."""

from __future__ import annotations

from typing import Literal

import numpy as np


def diverse_sample(vectors: np.ndarray, n: int, seed: int = 0, method: Literal["kmeans++", "stratified"] = "kmeans++",
                   exclude: np.ndarray | None = None) -> tuple[np.ndarray, dict]:
    """Pick `n` row indices that spread over the embedding space.

    Args:
        vectors: (N, d) unit rows.
        n: how many rows to pick (capped at the rows available).
        seed: random seed; the same seed gives the same sample.
        method: "kmeans++" (each next pick is drawn with probability proportional to its squared distance
            from the picks so far) or "stratified" (k-means micro-clusters, picks spread over them by size).
        exclude: row indices that must not be picked (e.g. already labelled).

    Returns:
        (indices, stats): sorted unique indices, and {"method", "n", "mean_min_distance"}.
    """
    rng = np.random.default_rng(seed)
    x = np.asarray(vectors, dtype=np.float32)
    pool = np.arange(len(x))
    if exclude is not None and len(exclude):
        pool = np.setdiff1d(pool, exclude)
    n = int(min(n, len(pool)))
    if n <= 0:
        return np.array([], dtype=np.int64), {"method": method, "n": 0, "mean_min_distance": 0.0}
    if method == "kmeans++":
        picks = _kmeanspp(x[pool], n, rng)
    elif method == "stratified":
        picks = _stratified(x[pool], n, rng, seed)
    else:
        raise ValueError(f"unknown method {method!r}")
    chosen = np.sort(pool[picks])
    return chosen, {"method": method, "n": int(n), "mean_min_distance": round(_mean_min_distance(x, chosen), 4)}


def _kmeanspp(x: np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray:
    first = int(rng.integers(len(x)))
    picks = [first]
    d2 = np.maximum(0.0, 2.0 - 2.0 * (x @ x[first]))  # squared distance between unit vectors
    for _ in range(n - 1):
        total = float(d2.sum())
        if total <= 1e-12:  # every remaining row duplicates a pick: fill at random
            rest = np.setdiff1d(np.arange(len(x)), picks)
            picks.extend(rng.choice(rest, size=n - len(picks), replace=False).tolist())
            break
        nxt = int(rng.choice(len(x), p=d2 / total))
        picks.append(nxt)
        d2 = np.minimum(d2, np.maximum(0.0, 2.0 - 2.0 * (x @ x[nxt])))
    return np.array(picks, dtype=np.int64)


def _stratified(x: np.ndarray, n: int, rng: np.random.Generator, seed: int) -> np.ndarray:
    from sklearn.cluster import MiniBatchKMeans

    strata = int(min(len(x), max(2, n // 2)))
    assign = MiniBatchKMeans(strata, n_init=1, max_iter=30, batch_size=2048, random_state=seed).fit_predict(x)
    members = [np.flatnonzero(assign == s) for s in range(strata)]
    members = [m for m in members if len(m)]
    # One pick per stratum first (coverage), then the rest in proportion to stratum size.
    picks = [int(rng.choice(m)) for m in members][:n]
    remaining = n - len(picks)
    if remaining > 0:
        rest = np.setdiff1d(np.arange(len(x)), picks)
        picks.extend(rng.choice(rest, size=remaining, replace=False).tolist())
    return np.array(picks, dtype=np.int64)


def _mean_min_distance(x: np.ndarray, chosen: np.ndarray) -> float:
    if len(chosen) < 2:
        return 0.0
    sims = x[chosen] @ x[chosen].T
    np.fill_diagonal(sims, -np.inf)
    return float(np.mean(np.sqrt(np.maximum(0.0, 2.0 - 2.0 * sims.max(axis=1)))))
