"""The result of a run: every text once with its cluster, the clusters, and the run record."""

from __future__ import annotations

import json
import platform
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from clusteragent.outliers import outlier_cluster
from clusteragent.run_folder import atomic_write
from clusteragent.tools import taxonomy as tx
from clusteragent.tools.corpus import Corpus

REPRESENTATIVES = 3
VERSIONED = ("clusteragent", "langgraph", "langchain-core", "langchain-openai", "sentence-transformers", "faiss-cpu",
             "torch", "numpy", "scikit-learn", "xllamacpp", "pydantic")


@dataclass
class ClusterResult:
    """One text per row, every input exactly once, with its cluster; plus the clusters and the run record.

    Attributes:
        ids, texts: the input, in input order.
        cluster: each text's cluster id. Ids are stable: a cluster keeps its id through chat turns (a merge
            keeps the larger's, a split gives it to the largest part, new clusters get new ids) and
            assignments of new texts; -1 is the outlier group where outliers were asked for.
        confidence: how sure the assignment of each text is, 0..1.
        clusters: {cluster, name, description, size, representative_ids, representative_texts, and
            merged_ids where others were merged into it} per cluster, largest first.
        run: the run record written to run.json (instruction, facet, model, budget, notes, audit, ...).
        trace: the model's decisions, one dict per answer.
    """

    ids: list[Any]
    texts: list[str]
    cluster: np.ndarray
    confidence: np.ndarray
    clusters: list[dict]
    run: dict = field(default_factory=dict)
    trace: list[dict] = field(default_factory=list)

    @property
    def k(self) -> int:
        """The number of clusters, the outlier group not counted."""
        return sum(c["cluster"] != tx.OUTLIER for c in self.clusters)

    @property
    def names(self) -> list[str]:
        return [c["name"] for c in self.clusters]

    def cluster_names(self) -> list[str]:
        """The cluster name of each text, in input order."""
        names = {c["cluster"]: c["name"] for c in self.clusters}
        return [names[int(c)] for c in self.cluster]

    def records(self) -> list[dict]:
        names = self.cluster_names()
        return [{"id": i, "cluster": int(c), "cluster_name": n, "confidence": round(float(p), 4)}
                for i, c, n, p in zip(self.ids, self.cluster, names, self.confidence)]

    def to_pandas(self, with_text: bool = True):
        import pandas as pd

        df = pd.DataFrame(self.records())
        if with_text:
            df.insert(1, "text", self.texts)
        return df

    def write(self, out_dir: str | Path, with_trace: bool = True) -> Path:
        """Write assignments.jsonl, clusters.json, run.json and (with_trace) trace.jsonl into `out_dir`."""
        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        lines = "".join(json.dumps(rec, ensure_ascii=False) + "\n" for rec in self.records())
        atomic_write(out / "assignments.jsonl", lines.encode("utf-8"))
        atomic_write(out / "clusters.json", json.dumps(self.clusters, ensure_ascii=False, indent=2).encode("utf-8"))
        if with_trace:
            trace = "".join(json.dumps(e, ensure_ascii=False, default=str) + "\n" for e in self.trace)
            atomic_write(out / "trace.jsonl", trace.encode("utf-8"))
        run = dict(self.run, trace_path=str((out / "trace.jsonl").resolve()))
        atomic_write(out / "run.json", json.dumps(run, ensure_ascii=False, indent=2, default=str).encode("utf-8"))
        return out


def build_result(corpus: Corpus, vectors: np.ndarray, tax: tx.Taxonomy, assignment: np.ndarray,
                 confidence: np.ndarray, run: dict, trace: list | None = None) -> ClusterResult:
    """The result object for an assignment: the clusters largest first, each under its stable id, with
    representatives and the ids merged into it; the outlier group (-1) last, where it has texts."""
    clusters = []
    for c, size in tx.by_size(assignment, tax):
        reps = tx.central_members(vectors, np.flatnonzero(assignment == c.id), REPRESENTATIVES)
        clusters.append({"cluster": c.id, "name": c.name, "description": c.description,
                         "size": size, "representative_ids": [corpus.ids[r] for r in reps],
                         "representative_texts": [corpus.texts[r] for r in reps],
                         **({"merged_ids": list(c.merged_ids)} if c.merged_ids else {})})
    outliers = int((np.asarray(assignment) == tx.OUTLIER).sum())
    if outliers:
        clusters.append(outlier_cluster(outliers))
    return ClusterResult(ids=list(corpus.ids), texts=list(corpus.texts),
                         cluster=np.asarray(assignment, dtype=np.int64).copy(),
                         confidence=np.asarray(confidence, dtype=np.float32), clusters=clusters,
                         run={**run, "k": len(clusters) - bool(outliers)}, trace=list(trace or []))


def package_version(dist: str) -> str | None:
    """The installed version of a distribution, or None."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(dist)
    except PackageNotFoundError:
        return None


def versions() -> dict:
    """Python's and the main packages' versions, for run records and benchmark results."""
    found = {dist: package_version(dist) for dist in VERSIONED}
    return {"python": platform.python_version(), **{k: v for k, v in found.items() if v is not None}}
