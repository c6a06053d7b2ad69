"""The result of a run: every text once with its cluster, the clusters, and the run record."""

from __future__ import annotations

import json
import platform
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from clusteragent.hierarchy import broad, parents
from clusteragent.naming import in_corpus_words
from clusteragent.outliers import outlier_cluster
from clusteragent.run_folder import atomic_write, jsonl_bytes
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
        clusters: {cluster, name, description, size, representative_ids, representative_texts, named_by
            ("model", or "statistics" where the model gave no valid name or the name is the languages of a
            group mostly in other languages than the corpus), level,
            parent, and merged_ids where others were merged into it} per cluster, largest first: the leaves.
        top_clusters: where the run has two levels, the broader clusters over the leaves (level 1, each
            with its `children`); a leaf's `parent` is its top's id (level 2). A cluster that no other
            joined at the top is a top-level cluster itself (level 1, no parent). Empty for a one-level
            run, whose clusters are all level 1 with no parent.
        run: the run record written to run.json (instruction, facet, model, budget, notes, audit, ...).
        trace: the model's decisions, one dict per answer.
        vectors: the texts' embeddings where the result was built with them (what `report` draws); not written.
    """

    ids: list[Any]
    texts: list[str]
    cluster: np.ndarray
    confidence: np.ndarray
    clusters: list[dict]
    run: dict = field(default_factory=dict)
    trace: list[dict] = field(default_factory=list)
    top_clusters: list[dict] = field(default_factory=list)
    vectors: np.ndarray | None = field(default=None, repr=False)

    @property
    def k(self) -> int:
        """The number of clusters, the outlier group not counted."""
        return sum(c["cluster"] != tx.OUTLIER for c in self.clusters)

    @property
    def names(self) -> list[str]:
        return [c["name"] for c in self.clusters]

    @property
    def levels(self) -> int:
        return 2 if self.top_clusters else 1

    @property
    def top_cluster(self) -> np.ndarray:
        """Each text's top cluster id: its cluster's parent where there are two levels, else its cluster."""
        parent = {c["cluster"]: c.get("parent") for c in self.clusters}
        return np.array([c if parent.get(int(c)) is None else parent[int(c)] for c in self.cluster], dtype=np.int64)

    def cluster_names(self, top: bool = False) -> list[str]:
        """The cluster name of each text, in input order (`top`: its top cluster's)."""
        names = {c["cluster"]: c["name"] for c in self.clusters + self.top_clusters}
        return [names[int(c)] for c in (self.top_cluster if top else self.cluster)]

    def records(self) -> list[dict]:
        """One dict per text: id, cluster, cluster_name, (with two levels) top_cluster, top_cluster_name,
        and confidence."""
        names = self.cluster_names()
        records = [{"id": i, "cluster": int(c), "cluster_name": n} for i, c, n in zip(self.ids, self.cluster, names)]
        if self.top_clusters:
            for record, t, tn in zip(records, self.top_cluster, self.cluster_names(top=True)):
                record.update(top_cluster=int(t), top_cluster_name=tn)
        for record, p in zip(records, self.confidence):
            record["confidence"] = round(float(p), 4)
        return records

    def to_pandas(self, with_text: bool = True):
        import pandas as pd

        df = pd.DataFrame(self.records())
        if with_text:
            df.insert(1, "text", self.texts)
        return df

    def to_jsonl(self, path: str | Path, with_text: bool = False) -> Path:
        """One JSON object per text: `records()`, with the text if `with_text`."""
        return write_table(self.to_pandas(with_text=with_text), path, "jsonl")

    def to_csv(self, path: str | Path, with_text: bool = False) -> Path:
        """One row per text; a cell that a spreadsheet would run as a formula starts with a quote instead."""
        return write_table(self.to_pandas(with_text=with_text), path, "csv")

    def to_parquet(self, path: str | Path, with_text: bool = False) -> Path:
        return write_table(self.to_pandas(with_text=with_text), path, "parquet")

    def report(self, path: str | Path, coordinates: np.ndarray | None = None, seed: int = 0) -> Path:
        """Write a self-contained HTML report (map, sizes, hierarchy, every cluster, the run's facts).

        `coordinates` (N x 2) places the texts on the map; by default a seeded 2-D projection of `vectors`."""
        from clusteragent.report import write_report
        from clusteragent.tools.semantic_map import plane

        if coordinates is None:
            if self.vectors is None:
                raise ValueError("this result carries no embeddings: pass coordinates (N x 2) to place the texts.")
            coordinates = plane(self.vectors, seed=seed)
        coordinates = np.asarray(coordinates, dtype=np.float32)
        if coordinates.shape != (len(self.ids), 2):
            raise ValueError(f"coordinates must be {len(self.ids)} x 2, one row per text; got {coordinates.shape}.")
        return write_report(self, path, coordinates)

    def write(self, out_dir: str | Path, with_trace: bool = True) -> Path:
        """Write assignments.jsonl, clusters.json, run.json and (with_trace) trace.jsonl into `out_dir`."""
        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        atomic_write(out / "assignments.jsonl", jsonl_bytes(self.records()))
        listed = self.clusters + self.top_clusters
        atomic_write(out / "clusters.json", json.dumps(listed, ensure_ascii=False, indent=2).encode("utf-8"))
        if with_trace:
            atomic_write(out / "trace.jsonl", jsonl_bytes(self.trace))
        run = dict(self.run, trace_path=str((out / "trace.jsonl").resolve()))
        atomic_write(out / "run.json", json.dumps(run, ensure_ascii=False, indent=2, default=str).encode("utf-8"))
        return out


# A spreadsheet runs a cell that starts with one of these as a formula (OWASP's CSV injection).
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
TABLE_FORMATS = ("jsonl", "csv", "parquet")


def neutralised(frame):
    """`frame` with every text cell that starts like a formula prefixed by a quote, so that it shows as text."""
    from pandas.api.types import is_numeric_dtype

    frame = frame.copy()
    for column in frame.columns:
        if not is_numeric_dtype(frame[column]):
            frame[column] = frame[column].map(
                lambda v: "'" + v if isinstance(v, str) and v.startswith(FORMULA_STARTS) else v)
    return frame


def write_table(frame, path: str | Path, format: str | None = None) -> Path:
    """Write a DataFrame as jsonl, csv (formula cells neutralised) or parquet; `format` defaults to the suffix."""
    path = Path(path)
    format = format or path.suffix.lstrip(".")
    if format not in TABLE_FORMATS:
        raise ValueError(f"{path}: give a file ending in .{', .'.join(TABLE_FORMATS)}.")
    if format == "csv":
        data = neutralised(frame).to_csv(index=False).encode("utf-8")
    elif format == "parquet":
        import io

        buffer = io.BytesIO()
        frame.to_parquet(buffer, index=False)
        data = buffer.getvalue()
    else:
        data = jsonl_bytes(frame.to_dict("records"))
    atomic_write(path, data)
    return path


def standing_notes(notes: list[str], names: list[str]) -> list[str]:
    """The run's `notes` that still hold: a note about a cluster ('"austin / night" is named by statistics ...')
    only while a cluster of that name is left (clustered again by another instruction, a chat kept the run's
    notes about clusters it no longer had)."""
    about = re.compile(r'^"([^"]+)"')
    return [n for n in notes if not (m := about.match(n)) or m.group(1) in names]


def build_result(corpus: Corpus, vectors: np.ndarray, tax: tx.Taxonomy, assignment: np.ndarray,
                 confidence: np.ndarray, run: dict, trace: list | None = None,
                 tops: list[dict] | None = None, texts_are: str = "") -> ClusterResult:
    """The result object for an assignment: the clusters largest first, each under its stable id, with
    representatives and the ids merged into it; the outlier group (-1) last, where it has texts, with its first
    texts as representatives; and
    the top clusters `tops` ({id, name, description, children}) where the run has two levels. Descriptions
    open with `texts_are`, what the instruction calls the texts, where the model wrote "Texts"."""
    tax, tops = in_corpus_words(tax, tops or [], texts_are)
    parent = parents(tops)
    shown_tops = broad(tops)

    def entry(cid: int, name: str, description: str, rows: np.ndarray) -> dict:
        reps = tx.central_members(vectors, rows, REPRESENTATIVES)
        return {"cluster": cid, "name": name, "description": description, "size": len(rows),
                "representative_ids": [corpus.ids[r] for r in reps],
                "representative_texts": [corpus.texts[r] for r in reps]}

    clusters = []
    for c, _ in tx.by_size(assignment, tax):
        clusters.append({**entry(c.id, c.name, c.description, np.flatnonzero(assignment == c.id)),
                         "level": 2 if c.id in parent else 1, "parent": parent.get(c.id), "named_by": c.named_by,
                         **({"merged_ids": list(c.merged_ids)} if c.merged_ids else {})})
    top_clusters = [{**entry(t["id"], t["name"], t["description"], np.flatnonzero(np.isin(assignment, t["children"]))),
                     "level": 1, "parent": None, "children": list(t["children"]),
                     **({"named_by": t["named_by"]} if t.get("named_by") else {})} for t in shown_tops]
    top_clusters.sort(key=lambda t: (-t["size"], t["cluster"]))
    outliers = np.flatnonzero(np.asarray(assignment) == tx.OUTLIER)
    if len(outliers):  # shown by its first texts: no text is central to texts that fit nowhere
        clusters.append({**outlier_cluster(len(outliers), level=1, parent=None),
                         "representative_ids": [corpus.ids[r] for r in outliers[:REPRESENTATIVES]],
                         "representative_texts": [corpus.texts[r] for r in outliers[:REPRESENTATIVES]]})
    return ClusterResult(ids=list(corpus.ids), texts=list(corpus.texts),
                         cluster=np.asarray(assignment, dtype=np.int64).copy(),
                         confidence=np.asarray(confidence, dtype=np.float32), clusters=clusters,
                         run={**run, "k": len(clusters) - bool(len(outliers)), "levels": 2 if top_clusters else 1,
                              **({"k_top": len(top_clusters) + sum(c["parent"] is None and c["cluster"] != tx.OUTLIER
                                                                   for c in clusters)} if top_clusters else {})},
                         trace=list(trace or []), top_clusters=top_clusters, vectors=vectors)


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


def current_confidence(arrays, state: dict, base: dict, assignment: np.ndarray) -> np.ndarray:
    """The classifier's confidence where it still applies; 1.0 for texts a person or operation placed since
    the base: the run's result, or the last update that added texts (`base_ref`)."""
    ref = state["assignment_ref"] + ".confidence"
    if ref in arrays:
        return arrays[ref]
    base_ref = state.get("base_ref") or base["assignment_ref"]
    original = arrays[base_ref]
    conf = np.array(arrays[base_ref + ".confidence"], dtype=np.float32)
    conf[original != assignment] = 1.0
    return conf
