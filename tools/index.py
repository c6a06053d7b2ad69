"""A FAISS index over unit vectors: inner product equals cosine similarity.

Exact search below `approximate_from` vectors; above it HNSW (or IVF when asked). On a machine with
faiss-gpu and a visible GPU, flat and IVF indexes move to the GPU.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Literal

import numpy as np

log = logging.getLogger(__name__)

IndexKind = Literal["auto", "flat", "hnsw", "ivf"]


def gpu_count() -> int:
    import faiss

    try:
        return faiss.get_num_gpus() if hasattr(faiss, "StandardGpuResources") else 0
    except Exception:
        return 0


@dataclass
class SearchResult:
    scores: np.ndarray  # (q, k) float32, cosine similarity, best first
    ids: np.ndarray  # (q, k) int64 row numbers into the indexed matrix; -1 where fewer than k exist


class VectorIndex:
    """Build once over an (N, d) float32 matrix; `search(queries, k)` returns the k best rows per query.

    Args:
        vectors: (N, d) matrix of unit rows (as `Embedder.embed` gives).
        kind: "flat" (exact), "hnsw", "ivf", or "auto": flat below `approximate_from`, else hnsw.
        approximate_from: the size from which "auto" switches to an approximate index.
        use_gpu: move the index to a GPU when faiss-gpu sees one (None: whenever possible).
        seed: seed for IVF training.
    """

    def __init__(self, vectors: np.ndarray, kind: IndexKind = "auto", approximate_from: int = 200_000,
                 use_gpu: bool | None = None, seed: int = 0):
        import faiss

        x = np.ascontiguousarray(vectors, dtype=np.float32)
        if x.ndim != 2 or x.shape[0] == 0:
            raise ValueError(f"need a non-empty (N, d) matrix, got shape {x.shape}")
        self.n, self.dim = x.shape
        if kind == "auto":
            kind = "flat" if self.n < approximate_from else "hnsw"
        self.kind = kind
        if kind == "flat":
            index = faiss.IndexFlatIP(self.dim)
        elif kind == "hnsw":
            index = faiss.IndexHNSWFlat(self.dim, 32, faiss.METRIC_INNER_PRODUCT)
            index.hnsw.efConstruction = 80
            index.hnsw.efSearch = 128
        elif kind == "ivf":
            nlist = max(1, min(int(4 * np.sqrt(self.n)), self.n // 39 or 1))
            quantizer = faiss.IndexFlatIP(self.dim)
            index = faiss.IndexIVFFlat(quantizer, self.dim, nlist, faiss.METRIC_INNER_PRODUCT)
            index.cp.seed = seed
            index.train(x)
            index.nprobe = min(nlist, 16)
        else:
            raise ValueError(f"unknown index kind {kind!r}; use auto, flat, hnsw or ivf")
        self.on_gpu = False
        if kind != "hnsw" and (use_gpu or use_gpu is None) and gpu_count() > 0:
            index = faiss.index_cpu_to_all_gpus(index)
            self.on_gpu = True
        index.add(x)
        self._index = index

    def __len__(self) -> int:
        return self.n

    def search(self, queries: np.ndarray, k: int) -> SearchResult:
        """The k most similar indexed rows for each query row (a single vector is a 1-row query)."""
        q = np.ascontiguousarray(np.atleast_2d(queries), dtype=np.float32)
        if q.shape[1] != self.dim:
            raise ValueError(f"queries have dimension {q.shape[1]}, the index {self.dim}")
        k = max(1, min(int(k), self.n))
        scores, ids = self._index.search(q, k)
        return SearchResult(scores=scores, ids=ids)
