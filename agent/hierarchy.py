"""A top level over many clusters: when a run ends with more than MAX_FLAT clusters, they are grouped
bottom-up into broader top clusters, each named by the model.

The leaves' centroids are merged by average linkage; the number of top clusters, between 2 and half the
leaves, is the cut whose grouping of the texts has the best silhouette, measured where the leaves were
grouped (on the meaning map when the run made one, else on the embeddings), among the cuts where no top
cluster holds more than half the texts; where every cut has one, the run keeps one level. A top of more
than MAX_FLAT clusters is cut again the same way on its own. A cluster mostly in other languages than the
rest of the corpus stands alone (other_languages.apart_by_language). (The largest jump in merge distances,
tried first, often cut at the very top: one broad cluster and one small one; the best silhouette over all
cuts did the same on three of twelve dev tasks and on the README's main job.)

The model names each top (top_naming). A top that the model names after each of its clusters ("Radio and
Lego enthusiasts", "VBA MATLAB"), or a top of two clusters it gives no valid name, is undone: they stand at
the top level on their own.

Tops live beside the taxonomy as `tops` in the state: each has an id from the taxonomy's id space (so
no leaf and top share one), a name, an inclusion rule and its children's ids. After any change to the
leaves, `reconcile` keeps the tops consistent: leaves that are gone leave their top, empty tops go, and
a new leaf joins the top its texts came from, else the nearest top that it is no farther from than the
top's own clusters are from each other, else stands alone.
"""

from __future__ import annotations

import hashlib

import numpy as np

from clusteragent.errors import counted
from clusteragent.naming import NAMING_ATTEMPTS
from clusteragent.other_languages import apart_by_language
from clusteragent.tools import taxonomy as tx
from clusteragent.top_naming import children_renamed, name_tops, without_paired_parts
from clusteragent.wording import in_words, quoted_list

MAX_FLAT = 12  # more clusters than this get a top level


def under_top_level(config, clusters: int) -> bool:
    """Whether a run's `clusters` will stand under a top level (its AgentConfig's `hierarchy` on, more than
    MAX_FLAT of them): the top clusters then name the facet's values, and a cluster its narrower name."""
    return config.hierarchy and clusters > MAX_FLAT


def broad(tops: list[dict]) -> list[dict]:
    """The tops that hold more than one cluster. A top of one cluster is that cluster, one level up: it is
    kept (so the cluster stays at the top level when others change) but shown as the cluster itself."""
    return [t for t in tops if len(t["children"]) > 1]


def held_under(tops: list[dict], k: int) -> str:
    """", 28 of them under 8 top clusters" for the tops of more than one cluster among `tops` ("" for none), ",
    all under 6 top clusters" where none of the `k` clusters stands alone: what a count of clusters adds where
    the run has two levels."""
    tops = broad(tops)
    held = sum(len(t["children"]) for t in tops)
    return f", {'all' if held == k else f'{held} of them'} under {counted(len(tops), 'top cluster')}" if tops else ""


def parents(tops: list[dict]) -> dict[int, int]:
    """Leaf id -> its top's id (clusters that are a top level of their own have none)."""
    return {int(child): int(top["id"]) for top in broad(tops) for child in top["children"]}


def silhouette_count(tree: np.ndarray, points: np.ndarray, assignment: np.ndarray, ids: list[int],
                     max_points: int = 2000, seed: int = 0, metric: str = "cosine") -> int | None:
    """The number of top clusters, between 2 and half the leaves, whose grouping of the texts has the best
    silhouette (under `metric`, on a seeded sample of at most `max_points` texts in clusters) among the
    groupings where no top cluster holds more than half the texts; None where every grouping has one. A
    clump of near-identical texts far from the rest gives "the clump and everything else" the best
    silhouette (2 top clusters over 49 clusters of the README's main job, one of them 99% of the texts),
    and leaves with no broader structure chain into one top of most of them at every count (12 of 14
    clusters, 82% of 40,000 comments grouped by topic), which tells a reader nothing about those texts."""
    from scipy.cluster.hierarchy import fcluster
    from sklearn.metrics import silhouette_score

    rows = np.flatnonzero(np.isin(assignment, ids))
    if len(rows) > max_points:
        rows = np.sort(np.random.default_rng(seed).choice(rows, max_points, replace=False))
    position = {c: i for i, c in enumerate(ids)}
    leaf_of_row = np.array([position[int(c)] for c in assignment[rows]])
    scores, balanced = {}, set()
    for t in range(2, max(2, len(ids) // 2) + 1):
        tops = fcluster(tree, t=t, criterion="maxclust")[leaf_of_row]
        if len(np.unique(tops)) < 2:
            continue
        scores[t] = silhouette_score(points[rows], tops, metric=metric)
        if 2 * np.bincount(tops).max() <= len(tops):
            balanced.add(t)
    candidates = [t for t in scores if t in balanced]
    return max(candidates, key=lambda t: (scores[t], -t)) if candidates else None


def group_leaves(vectors: np.ndarray, assignment: np.ndarray, ids: list[int], count: int | None = None,
                 grouped_on: np.ndarray | None = None) -> list[list[int]]:
    """The leaves `ids` grouped by average linkage of their centroids into `count` groups (default: the
    count whose grouping of the texts has the best silhouette, euclidean on `grouped_on`, the map the
    leaves were grouped on, where given, else cosine on `vectors`; each leaf on its own where no count
    leaves every group at most half the texts; a group of more than MAX_FLAT leaves grouped again the same
    way), largest group first."""
    from scipy.cluster.hierarchy import fcluster, linkage

    ids = [c for c in ids if (assignment == c).any()]
    tree = linkage(tx.centroids(vectors, assignment, ids), method="average", metric="cosine")
    if count is None:
        count = (silhouette_count(tree, vectors, assignment, ids) if grouped_on is None else
                 silhouette_count(tree, grouped_on, assignment, ids, metric="euclidean"))
        if count is None:
            return _largest_first(ids, np.arange(len(ids)), assignment)
        # A top of more than MAX_FLAT clusters is as long a list as the one level a top level shortens (3
        # tops over 50 clusters in the README's main job, 21 clusters in one): it is grouped again alone.
        return _by_texts([part for group in _largest_first(ids, fcluster(tree, t=count, criterion="maxclust"), assignment)
                          for part in (group_leaves(vectors, assignment, group, grouped_on=grouped_on)
                                       if len(group) > MAX_FLAT else [group])], assignment)
    return _largest_first(ids, fcluster(tree, t=count, criterion="maxclust"), assignment)


def _largest_first(ids: list[int], groups: np.ndarray, assignment: np.ndarray) -> list[list[int]]:
    """The leaves `ids` gathered by their group labels `groups`, the group of most texts first."""
    return _by_texts([[ids[i] for i in np.flatnonzero(groups == g)] for g in np.unique(groups)], assignment)


def _by_texts(groups: list[list[int]], assignment: np.ndarray) -> list[list[int]]:
    """Groups of leaves, the group of most texts first (in their order where equal)."""
    return sorted(groups, key=lambda g: -int(np.isin(assignment, g).sum()))


def group_by_size(vectors: np.ndarray, assignment: np.ndarray, ids: list[int], count: int, seed: int = 0) -> list[list[int]]:
    """The leaves `ids` in `count` groups by k-means on their centroids, each weighted by its texts: a small
    cluster far from the rest joins the nearest group instead of standing alone as one of few groups, as it
    would by linkage, where a few far, small clusters each made a group beside one of nearly every text.
    Largest group first."""
    from sklearn.cluster import KMeans

    ids = [c for c in ids if (assignment == c).any()]
    weights = [int((assignment == c).sum()) for c in ids]
    groups = KMeans(min(count, len(ids)), n_init=10, random_state=seed).fit_predict(
        tx.centroids(vectors, assignment, ids), sample_weight=weights)
    return _largest_first(ids, groups, assignment)


def run_leaf_groups(ctx, assignment: np.ndarray, ids: list[int]) -> list[list[int]]:
    """group_leaves over the run's embeddings (the count judged on its meaning map where it made one),
    computed once per partition of its texts: the same partition under other ids (the k-means groups before
    they are named, the named clusters at the end) is looked up in the run's context instead of being
    grouped again."""
    ids = [c for c in ids if (assignment == c).any()]
    first_row = {c: int(np.argmax(assignment == c)) for c in ids}  # a name for each part that ids do not change
    canonical = np.full(len(assignment), -1, dtype=np.int64)
    for c, row in first_row.items():
        canonical[assignment == c] = row
    key = hashlib.sha1(canonical.tobytes()).hexdigest()
    if key not in ctx.leaf_groups:
        ctx.leaf_groups[key] = group_leaves(ctx.vectors, canonical, sorted(first_row.values()),
                                            grouped_on=ctx.views.meaning_map)
    leaf_at = {row: c for c, row in first_row.items()}
    return [[leaf_at[row] for row in group] for group in ctx.leaf_groups[key]]


def top_calls(ctx, assignment: np.ndarray, ids: list[int]) -> int:
    """The model calls naming a top level over the leaves `ids` may take: NAMING_ATTEMPTS per top of two or
    more leaves (none for MAX_FLAT leaves or fewer). Naming the leaves keeps them back: a reader meets the top
    names first, and with one call kept per top the refused first answers took the calls later tops needed.
    What the top level leaves unused names clusters that got no call (views.name_skipped)."""
    if len([c for c in ids if (assignment == c).any()]) <= MAX_FLAT:
        return 0
    return NAMING_ATTEMPTS * sum(len(group) > 1 for group in run_leaf_groups(ctx, assignment, ids))


def build_tops(ctx, instruction: str, facet: str, tax: tx.Taxonomy,
               assignment: np.ndarray) -> tuple[list[dict], tx.Taxonomy, dict]:
    """The top level of a run with more than MAX_FLAT clusters (none otherwise): the tops, the taxonomy
    with their ids reserved, and a record for the trace."""
    live = [c.id for c in tax.clusters if (assignment == c.id).any()]
    if len(live) <= MAX_FLAT:
        return [], tax, {"levels": 1, "why": f"{len(live)} clusters: one level (a top level from {MAX_FLAT + 1})"}
    groups = apart_by_language(run_leaf_groups(ctx, assignment, live), ctx.texts, assignment)
    if all(len(group) == 1 for group in groups):
        return [], tax, {"levels": 1, "why": f"{len(live)} clusters: one level, every grouping of them into "
                                              "broader ones put more than half the texts in one top cluster"}
    alone = sum(len(group) == 1 for group in groups)
    ctx.progress(f"naming {len(groups) - alone} top clusters over {len(live)} clusters"
                 + (f" ({alone} stand alone at the top level)" if alone else ""))
    calls = ctx.llm.usage.calls + ctx.calls_left(with_top_names=True) if ctx.llm is not None else 0
    names = name_tops(ctx.llm, calls, instruction, facet, ctx.texts, ctx.vectors, assignment, groups, tax,
                      list(tax.names), show_bar=ctx.show_bars)
    groups, names, undone = without_paired_parts(groups, names, tax, ctx.texts, assignment)
    if all(len(group) == 1 for group in groups):
        return [], tax, {"levels": 1, "undone": undone, "why": f"{len(live)} clusters: one level, the model "
                                                               "named every top cluster after each of its parts, "
                                                               "or gave it no name"}
    tops = [{"id": tax.next_id + n, **named, "children": sorted(group)}
            for n, (group, named) in enumerate(zip(groups, names))]
    record = {"levels": 2, "tops": len(tops), "leaves": len(live),
              "why": f"{len(live)} clusters: grouped into {len(tops)} top clusters, the count with the best silhouette"}
    if undone:
        record["undone"] = undone
        record["why"] += (f"; {counted(len(undone), 'top cluster')} that the model named after each of its clusters, or "
                          f"of two that it gave no name ({', '.join(repr(n) for n in undone)}), left as clusters "
                          "on their own")
    tax, renamed = children_renamed(ctx.llm, calls, instruction, facet, ctx.texts, ctx.vectors, assignment, tops, tax)
    if renamed:
        record["renamed"] = renamed
    return tops, tx.Taxonomy(tax.clusters, tax.next_id + len(tops)), record


def reconcile(tops: list[dict], tax: tx.Taxonomy, assignment: np.ndarray, vectors: np.ndarray,
              before: np.ndarray | None = None) -> list[dict]:
    """The tops after the leaves changed: children that are gone are dropped, tops left without children go,
    and each leaf in no top finds one (`joining_top`), else stands alone at the top level. `before` is the
    assignment before the change (shorter where texts joined the run since)."""
    if not tops:
        return []
    live = {c.id for c in tax.clusters if (assignment == c.id).any()}
    kept = [{**t, "children": sorted(c for c in t["children"] if c in live)} for t in tops]
    kept = [t for t in kept if t["children"]]
    orphans = sorted(live - {c for t in kept for c in t["children"]})  # a top of one cluster holds its cluster too
    if orphans and broad(kept):
        came_from, spans = parents(kept), top_spans(kept, assignment, vectors)
        joined = {leaf: joining_top(leaf, came_from, spans, assignment, vectors, before) for leaf in orphans}
        kept = [{**t, "children": sorted([*t["children"], *(leaf for leaf, top in joined.items() if top == t["id"])])}
                for t in kept]
    return kept


def top_spans(tops: list[dict], assignment: np.ndarray, vectors: np.ndarray) -> dict[int, tuple[np.ndarray, float]]:
    """Each top of several clusters: its clusters' centroids, and the cosine distance of its two farthest."""
    spans = {}
    for top in broad(tops):
        cents = tx.centroids(vectors, assignment, top["children"])
        spans[int(top["id"])] = cents, float((1 - cents @ cents.T).max())
    return spans


def joining_top(leaf: int, came_from: dict[int, int], spans: dict[int, tuple[np.ndarray, float]],
                assignment: np.ndarray, vectors: np.ndarray, before: np.ndarray | None) -> int | None:
    """The top a new leaf (one in no top) joins, None where it stands alone. A leaf most of whose texts were
    in one top's clusters (`came_from`: leaf -> its top; a part of a split) stays in that top. Any other (new
    texts, or texts gathered from across the run) joins the top whose clusters' centroids are nearest it on
    average, if that average is no more than the distance between the top's two farthest clusters (`spans`,
    top_spans): a kind of text no top covers (gardening questions among assistant queries) stands alone,
    where joining the nearest top gave it a name that does not cover it ("Vacation")."""
    rows = np.flatnonzero(assignment == leaf)
    if before is not None:
        earlier = before[rows[rows < len(before)]]
        origin = np.array([came_from.get(int(c), -1) for c in earlier], dtype=np.int64)
        if len(origin):
            values, counts = np.unique(origin, return_counts=True)
            if values[np.argmax(counts)] >= 0 and 2 * counts.max() > len(rows):
                return int(values[np.argmax(counts)])
    centre = tx.centroids(vectors, assignment, [leaf])[0]
    best, best_distance = None, np.inf
    for top_id, (cents, widest) in spans.items():
        distance = float((1 - cents @ centre).mean())
        if distance <= widest and distance < best_distance:
            best, best_distance = top_id, distance
    return best


# ---------------------------------------------------------------- the top level in a chat

def with_tops(tax: tx.Taxonomy, tops: list[dict]) -> tx.Taxonomy:
    """The taxonomy with the (broad) tops as clusters too: what a chat message may name."""
    return tx.Taxonomy(tax.clusters + [tx.Cluster(t["id"], t["name"], t["description"]) for t in broad(tops)],
                       tax.next_id)


def top_count_change(before: list[dict], after: list[dict]) -> str:
    """" top clusters: 8 -> 7;" where a change altered how many top clusters there are (of more than one
    cluster), else "": a turn at the top level moves no text and keeps k, and said only that."""
    counts = len(broad(before)), len(broad(after))
    return f" top clusters: {counts[0]} -> {counts[1]};" if counts[0] != counts[1] else ""


def top_listing(tops: list[dict], assignment: np.ndarray, tax: tx.Taxonomy) -> list[dict]:
    """The tops as a chat prompt lists clusters: number, name, size, and what they are made of."""
    return [{"cluster": t["id"], "id": t["id"], "name": t["name"], "size": int(np.isin(assignment, t["children"]).sum()),
             "description": f"top cluster of {', '.join(tax.by_id(c).name for c in t['children'])}. {t['description']}"}
            for t in broad(tops)]


def merge_tops(tops: list[dict], ids: list[int], assignment: np.ndarray, named: dict) -> tuple[list[dict], str]:
    """Tops `ids` as one: the largest keeps its id, their children lists join; `named` gives its name, inclusion
    rule and who named it (see named_top)."""
    chosen = [next(t for t in tops if t["id"] == i) for i in ids]
    size = {t["id"]: int(np.isin(assignment, t["children"]).sum()) for t in chosen}
    keep = max(chosen, key=lambda t: (size[t["id"]], -ids.index(t["id"])))
    merged = {**keep, **named, "children": sorted(c for t in chosen for c in t["children"]),
              "merged_ids": sorted({*keep.get("merged_ids", []), *(t["id"] for t in chosen if t is not keep)})}
    out = [merged if t["id"] == keep["id"] else t for t in tops if t["id"] == keep["id"] or t["id"] not in ids]
    return out, f'Merged the top clusters {quoted_list(t["name"] for t in chosen)} into "{merged["name"]}".'


def moved_under(tops: list[dict], leaves: set[int], top_id: int) -> list[dict]:
    """The tops with the clusters `leaves` taken from wherever they stood and put under the top `top_id`; a
    top left without clusters goes."""
    moved = [{**t, "children": sorted({c for c in t["children"] if c not in leaves} | (leaves if t["id"] == top_id
                                                                                       else set()))} for t in tops]
    return [t for t in moved if t["children"]]


def rename_top(tops: list[dict], top_id: int, name: str, description: str = "",
               named_by: str = "user") -> tuple[list[dict], str]:
    old = next(t for t in tops if t["id"] == top_id)
    new = {**old, "name": tx.printable(name), "description": tx.printable(description) or old["description"],
           "named_by": named_by}
    return [new if t["id"] == top_id else t for t in tops], f'Renamed the top cluster "{old["name"]}" to "{new["name"]}".'


def split_top(tops: list[dict], top: dict, n: int, tax: tx.Taxonomy, assignment: np.ndarray, vectors: np.ndarray,
              texts: list[str], llm, calls: int, instruction: str, facet: str,
              taken: list[str]) -> tuple[list[dict], tx.Taxonomy, str]:
    """A top cluster split in `n` by grouping its clusters: the largest part keeps the id, the others get
    new ones, each part named like any top cluster. ValueError when it holds fewer than `n` clusters."""
    if len(top["children"]) < n:
        held = counted(len(top["children"]), "cluster")
        raise ValueError(f'The top cluster "{top["name"]}" holds {held}; it cannot be split in {n}. Split one of its '
                         "clusters instead.")
    groups = group_leaves(vectors, assignment, top["children"], count=n)
    names = name_tops(llm, calls, instruction, facet, texts, vectors, assignment, groups, tax, taken)
    parts = [{**top, **names[0], "children": sorted(groups[0])}]
    for group, named in zip(groups[1:], names[1:]):
        parts.append({"id": tax.next_id, **named, "children": sorted(group)})
        tax = tx.Taxonomy(tax.clusters, tax.next_id + 1)
    sizes = {len(p["children"]) for p in parts}
    listed = f'{quoted_list(p["name"] for p in parts)}, {counted(sizes.pop(), "cluster")} each' if len(sizes) == 1 \
        else in_words([f'"{p["name"]}" ({counted(len(p["children"]), "cluster")})' for p in parts])
    return ([t for t in tops if t["id"] != top["id"]] + parts, tax,
            f'Split the top cluster "{top["name"]}" into {listed}.')
