"""The clustering as data: a taxonomy of named clusters and an assignment of rows to cluster ids.

Pure functions: each returns a new assignment/taxonomy and an audit entry, and leaves its inputs
alone. Cluster ids are stable integers, never reused, so a merge or split is traceable; -1 marks a row
in the explicit outlier group.
"""

from __future__ import annotations

import unicodedata
from dataclasses import asdict, dataclass, field

import numpy as np

OUTLIER = -1


def printable(text: str) -> str:
    """`text` without control and format characters (C0/C1 controls, bidi overrides and isolates, zero-width
    characters), whitespace runs made one space: what a name or description may hold, since names are
    printed to terminals and pages and a model (or a document it quotes) may write escape sequences."""
    kept = "".join(" " if unicodedata.category(ch) in ("Cc", "Cf") else ch for ch in str(text))
    return " ".join(kept.split())


@dataclass(frozen=True)
class Cluster:
    """A named cluster; name and description are kept printable whoever wrote them."""

    id: int
    name: str
    description: str = ""
    merged_ids: tuple[int, ...] = ()  # ids of clusters merged into this one, so an old id can be looked up
    named_by: str = "model"  # "statistics" where the model gave no valid name and distinctive words did

    def __post_init__(self) -> None:
        object.__setattr__(self, "name", printable(self.name))
        object.__setattr__(self, "description", printable(self.description))
        object.__setattr__(self, "merged_ids", tuple(sorted(int(i) for i in self.merged_ids)))

    def as_dict(self) -> dict:
        return asdict(self)


@dataclass
class Taxonomy:
    clusters: list[Cluster] = field(default_factory=list)
    next_id: int = 0

    @classmethod
    def from_specs(cls, specs) -> Taxonomy:
        """From (name, description) pairs or objects with .name/.description."""
        tax = cls()
        for s in specs:
            name, desc = (s if isinstance(s, tuple) else (s.name, s.description))
            tax = tax.added(name, desc)[0]
        return tax

    def added(self, name: str, description: str = "", named_by: str = "model") -> tuple[Taxonomy, int]:
        cid = self.next_id
        return Taxonomy(self.clusters + [Cluster(cid, name.strip(), description.strip(), (), named_by)], cid + 1), cid

    def by_id(self, cid: int) -> Cluster:
        for c in self.clusters:
            if c.id == cid:
                return c
        raise KeyError(f"no cluster with id {cid}")

    def find(self, name: str) -> Cluster | None:
        """The cluster whose name matches (case and surrounding space ignored)."""
        key = name.strip().lower()
        return next((c for c in self.clusters if c.name.lower() == key), None)

    @property
    def ids(self) -> list[int]:
        return [c.id for c in self.clusters]

    @property
    def names(self) -> list[str]:
        return [c.name for c in self.clusters]

    def without(self, ids) -> Taxonomy:
        drop = set(ids)
        return Taxonomy([c for c in self.clusters if c.id not in drop], self.next_id)

    def as_list(self) -> list[dict]:
        return [c.as_dict() for c in self.clusters]

    @classmethod
    def from_list(cls, items: list[dict], next_id: int | None = None) -> Taxonomy:
        clusters = [Cluster(int(d["id"]), d["name"], d.get("description", ""), tuple(d.get("merged_ids", ())),
                            d.get("named_by", "model")) for d in items]
        return cls(clusters, next_id if next_id is not None else max([c.id for c in clusters], default=-1) + 1)

    @classmethod
    def from_state(cls, state) -> Taxonomy:
        """The taxonomy a graph state holds in its `taxonomy` and `next_id` fields."""
        return cls.from_list(state.get("taxonomy", []), state.get("next_id"))

    def as_state(self) -> dict:
        """The state fields that hold this taxonomy (the inverse of `from_state`)."""
        return {"taxonomy": self.as_list(), "next_id": self.next_id}


def sizes(assignment: np.ndarray, taxonomy: Taxonomy) -> dict[int, int]:
    counts = np.bincount(assignment[assignment >= 0], minlength=max(taxonomy.next_id, 1))
    return {c.id: int(counts[c.id]) if c.id < len(counts) else 0 for c in taxonomy.clusters}


def by_size(assignment: np.ndarray, taxonomy: Taxonomy) -> list[tuple[Cluster, int]]:
    """(cluster, size), largest first, ties by id: the numbering of clusters.json and of chat references."""
    counts = sizes(assignment, taxonomy)
    return [(c, counts[c.id]) for c in sorted(taxonomy.clusters, key=lambda c: (-counts[c.id], c.id))]


def merge(assignment: np.ndarray, taxonomy: Taxonomy, ids: list[int], name: str | None = None,
          description: str | None = None, named_by: str | None = None) -> tuple[np.ndarray, Taxonomy, dict]:
    """Merge clusters `ids` into one (k drops by len(ids) - 1); name/description optional (default: the
    first's), and who named it (default: "model" for a name given, else the first's). The merged cluster
    keeps the id of the largest (ties: the first given) and remembers the ids merged away."""
    ids = list(dict.fromkeys(ids))
    if len(ids) < 2:
        raise ValueError("a merge needs at least two different clusters")
    for cid in ids:
        taxonomy.by_id(cid)
    counts = sizes(assignment, taxonomy)
    keep = max(ids, key=lambda cid: (counts[cid], -ids.index(cid)))
    gone = [cid for cid in ids if cid != keep]
    out = assignment.copy()
    moved = int(np.isin(out, gone).sum())
    out[np.isin(out, gone)] = keep
    first = taxonomy.by_id(ids[0])
    history = [i for cid in ids for i in taxonomy.by_id(cid).merged_ids] + gone
    new = Cluster(keep, (name or first.name).strip(),
                  (description if description is not None else first.description).strip(), tuple(history),
                  named_by or (first.named_by if name is None else "model"))
    clusters = [new if c.id == keep else c for c in taxonomy.clusters if c.id not in gone]
    audit = {"op": "merge", "into": keep, "merged": ids, "names": [taxonomy.by_id(i).name for i in ids],
             "moved": moved, "name": new.name}
    return out, Taxonomy(clusters, taxonomy.next_id), audit


def split(assignment: np.ndarray, taxonomy: Taxonomy, cluster_id: int, member_rows: np.ndarray,
          member_parts: np.ndarray, parts: list[tuple[str, ...]]) -> tuple[np.ndarray, Taxonomy, dict]:
    """Split one cluster into len(parts) clusters, each (name, description) or (name, description, named_by);
    `member_parts[i]` is the part of `member_rows[i]`.

    The largest part keeps the cluster's id (and its history of merged ids); each other part gets a new
    id. Every member must be given a part.
    """
    old = taxonomy.by_id(cluster_id)
    members = np.flatnonzero(assignment == cluster_id)
    if len(parts) < 2:
        raise ValueError("a split needs at least two parts")
    if set(np.asarray(member_rows).tolist()) != set(members.tolist()):
        raise ValueError("a split must place every member of the cluster, and only those")
    member_parts = np.asarray(member_parts)
    largest = int(np.argmax(np.bincount(member_parts, minlength=len(parts))))
    tax = Taxonomy([c for c in taxonomy.clusters if c.id != cluster_id], taxonomy.next_id)
    new_ids = []
    for p, (name, desc, *by) in enumerate(parts):
        named_by = by[0] if by else "model"
        if p == largest:
            tax = Taxonomy(tax.clusters + [Cluster(cluster_id, name.strip(), desc.strip(), old.merged_ids, named_by)],
                           tax.next_id)
            new_ids.append(cluster_id)
        else:
            tax, cid = tax.added(name, desc, named_by)
            new_ids.append(cid)
    out = assignment.copy()
    out[np.asarray(member_rows)] = np.asarray(new_ids)[member_parts]
    audit = {"op": "split", "from": cluster_id, "name": old.name, "into": new_ids, "names": [p[0] for p in parts],
             "sizes": [int((out == i).sum()) for i in new_ids]}
    return out, tax, audit


def rename(taxonomy: Taxonomy, cluster_id: int, name: str, description: str | None = None,
           named_by: str | None = None) -> tuple[Taxonomy, dict]:
    """A new name (and description) for one cluster; who named it stays as it was unless `named_by` says."""
    old = taxonomy.by_id(cluster_id)
    new = Cluster(cluster_id, name.strip(), (description if description is not None else old.description).strip(),
                  old.merged_ids, named_by or old.named_by)
    tax = Taxonomy([new if c.id == cluster_id else c for c in taxonomy.clusters], taxonomy.next_id)
    return tax, {"op": "rename", "cluster": cluster_id, "from": old.name, "to": new.name}


def reassign(assignment: np.ndarray, taxonomy: Taxonomy, rows, cluster_id: int) -> tuple[np.ndarray, dict]:
    if cluster_id != OUTLIER:
        taxonomy.by_id(cluster_id)
    rows = np.asarray(rows, dtype=np.int64)
    out = assignment.copy()
    moved = int((out[rows] != cluster_id).sum())
    out[rows] = cluster_id
    return out, {"op": "reassign", "to": cluster_id, "rows": len(rows), "moved": moved}


def remap_labels(labels: dict[str, int], entry: dict, part_labels: dict[str, int] | None = None) -> dict[str, int]:
    """The model's labels (row -> cluster id) after the merge or split that `entry` records.

    A merge sends labels of the merged clusters to the kept one. A split drops the labels of its cluster,
    and `part_labels` (row -> part number) become labels of the parts (one of which kept the id).
    """
    if entry["op"] == "merge":
        merged = set(entry["merged"])
        return {r: (entry["into"] if c in merged else c) for r, c in labels.items()}
    if entry["op"] == "split":
        out = {r: c for r, c in labels.items() if c != entry["from"]}
        out.update({r: entry["into"][p] for r, p in (part_labels or {}).items()})
        return out
    return dict(labels)


def central_members(vectors: np.ndarray, rows: np.ndarray, n: int) -> np.ndarray:
    """The `n` of `rows` closest to their mean direction (all of them when there are `n` or fewer), closest
    first."""
    rows = np.asarray(rows, dtype=np.int64)
    if len(rows) == 0:
        return rows
    centre = vectors[rows].mean(axis=0)
    return rows[np.argsort(-(vectors[rows] @ centre), kind="stable")[:n]]


def drop_empty(assignment: np.ndarray, taxonomy: Taxonomy) -> tuple[Taxonomy, list[str]]:
    """Remove clusters with no members; returns the new taxonomy and the names removed."""
    counts = sizes(assignment, taxonomy)
    empty = [cid for cid, n in counts.items() if n == 0]
    return taxonomy.without(empty), [taxonomy.by_id(c).name for c in empty]


def validate(assignment: np.ndarray, taxonomy: Taxonomy, n_texts: int, k_min: int = 1,
             k_max: int | None = None) -> list[str]:
    """Why this result cannot be submitted (empty when it can): the submit tool's checks."""
    problems = []
    if len(assignment) != n_texts:
        problems.append(f"{len(assignment)} assignments for {n_texts} texts; every text needs exactly one")
    known = set(taxonomy.ids) | {OUTLIER}
    unknown = sorted(set(np.unique(assignment).tolist()) - known)
    if unknown:
        problems.append(f"texts are assigned to cluster ids {unknown} that the taxonomy does not have")
    k = len(taxonomy.clusters)
    if k < k_min or (k_max is not None and k > k_max):
        problems.append(f"{k} clusters, outside the allowed range {k_min}..{k_max if k_max is not None else 'any'}")
    names = [c.name.strip().lower() for c in taxonomy.clusters]
    if any(not n for n in names):
        problems.append("a cluster has an empty name")
    dups = sorted({n for n in names if names.count(n) > 1})
    if dups:
        problems.append(f"cluster names are not unique: {dups}")
    empty = [c.name for c in taxonomy.clusters if not (assignment == c.id).any()]
    if empty:
        problems.append(f"clusters with no texts: {empty}")
    return problems


def centroids(vectors: np.ndarray, assignment: np.ndarray, ids: list[int]) -> np.ndarray:
    """The unit-length mean vector of each cluster in `ids` (each must have members)."""
    cents = np.stack([vectors[assignment == cid].mean(axis=0) for cid in ids])
    return cents / np.maximum(np.linalg.norm(cents, axis=1, keepdims=True), 1e-12)


def most_similar_pairs(vectors: np.ndarray, assignment: np.ndarray, taxonomy: Taxonomy,
                       top: int = 3) -> list[tuple[int, int, float]]:
    """The `top` pairs of non-empty clusters with the most similar centroids, as (id, id, cosine)."""
    ids = [c.id for c in taxonomy.clusters if (assignment == c.id).any()]
    if len(ids) < 2:
        return []
    cents = centroids(vectors, assignment, ids)
    sims = cents @ cents.T
    pairs = [(ids[a], ids[b], float(sims[a, b])) for a in range(len(ids)) for b in range(a + 1, len(ids))]
    return sorted(pairs, key=lambda p: -p[2])[:top]


def merge_closest(vectors: np.ndarray, assignment: np.ndarray, taxonomy: Taxonomy, k: int,
                  name=None, each_once: bool = False) -> tuple[np.ndarray, Taxonomy, list[dict]]:
    """Merge the two non-empty clusters with the most similar centroids until at most `k` clusters remain
    (or no two non-empty ones are left).

    With `each_once`, the closest pairs that share no cluster merge in one pass (the centroids are compared
    again only when a pass leaves more than `k`): a merged cluster's centroid sits between its parts, near
    their neighbours too, so merging one pair at a time lets one cluster absorb its neighbours in turn.
    `name(taxonomy, assignment, a, b)` may give the merged cluster's (name, description) or (name,
    description, named_by); without it the merge keeps the first cluster's. Returns the new assignment,
    taxonomy and one audit entry per merge.
    """
    entries = []
    while len(taxonomy.clusters) > k:
        pairs = most_similar_pairs(vectors, assignment, taxonomy, top=len(taxonomy.clusters) ** 2 if each_once else 1)
        if not pairs:
            break
        merged: set[int] = set()
        for a, b, _ in pairs:
            if len(taxonomy.clusters) <= k:
                break
            if merged & {a, b}:
                continue
            merged |= {a, b}
            named = name(taxonomy, assignment, a, b) if name else (None, None)
            assignment, taxonomy, entry = merge(assignment, taxonomy, [a, b], *named)
            entries.append(entry)
    return assignment, taxonomy, entries
