"""Views of the texts, and clustering on the view that follows the instructed facet.

A view is a representation in which texts that share a value of a facet lie close together (see
facets.py): the meaning embeddings (and their UMAP map) follow subject matter, the characters (the
languages a language identifier reads in them) follow language, layout measures follow form. Each is
computed once per run, on first use.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from clusteragent.errors import ModelError, counted
from clusteragent.facets import View
from clusteragent.hierarchy import top_calls, under_top_level
from clusteragent.labelling import calibrated_labels, description_vectors, label_rows
from clusteragent.name_rules import nested_names
from clusteragent.naming import (
    fallback_name,
    given_most,
    matched_names,
    name_members,
    nearest_values,
    unrequested,
    voted_name,
)
from clusteragent.other_languages import main_language, named_by_language
from clusteragent.reading import kept_reading
from clusteragent.structure import fold_strays, kmeans, split_majority, structure_k
from clusteragent.tools import taxonomy as tx
from clusteragent.tools.features import (
    distinctive_layout,
    distinctive_words,
    language_features,
    languages_read,
    layout_statistics,
    layout_vectors,
    surface_features,
)
from clusteragent.tools.semantic_map import semantic_map

if TYPE_CHECKING:
    from clusteragent.state import AgentState, RunContext

# Outside the meaning view the model names a k-means group by labelling this many of its most central
# texts with the values of the facet it listed itself (choosing among named values is what the small
# model does well; asked for a name, it named a German group "animation").
VOTERS = 5


@dataclass
class ViewCache:
    """Features of a run's texts, computed on first use (None until then)."""

    meaning_map: np.ndarray | None = None  # None also where the corpus gets no map (semantic_map)
    meaning_map_tried: bool = False
    characters: np.ndarray | None = None
    surface: np.ndarray | None = None
    layout_statistics: np.ndarray | None = None
    layout: np.ndarray | None = None
    label_features: np.ndarray | None = None
    reading: np.ndarray | None = None


def _cached(ctx: RunContext, name: str, compute) -> np.ndarray:
    if getattr(ctx.views, name) is None:
        ctx.progress(f"{name.replace('_', ' ')} features of the texts")
        setattr(ctx.views, name, compute())
    return getattr(ctx.views, name)


def meaning_map(ctx: RunContext) -> np.ndarray | None:
    """The run's meaning map, or None where semantic_map makes none (too few distinct texts)."""
    if not ctx.views.meaning_map_tried:
        ctx.views.meaning_map = _cached(ctx, "meaning_map", lambda: semantic_map(ctx.vectors, seed=ctx.config.seed))
        ctx.views.meaning_map_tried = True
    return ctx.views.meaning_map


def layout_measures(ctx: RunContext) -> np.ndarray:
    return _cached(ctx, "layout_statistics", lambda: layout_statistics(ctx.texts))


def view(ctx: RunContext, name: str, instruction: str = "") -> np.ndarray:
    """The texts in one view: "meaning" (the embeddings), "characters", "layout" or "reading" (the model's
    reading of each text under `instruction`)."""
    if name == "meaning":
        return ctx.vectors
    if name == "reading":
        return _cached(ctx, "reading", lambda: kept_reading(ctx.arrays, ctx.reader, instruction, ctx.texts,
                                                            ctx.show_bars))
    if name == "characters":
        return _cached(ctx, "characters", lambda: language_features(ctx.texts))
    if name == "layout":
        return _cached(ctx, "layout", lambda: layout_vectors(layout_measures(ctx)))
    raise ValueError(f"unknown view {name!r}")


def reading_view(ctx: RunContext, instruction: str, trace: list) -> View | None:
    """"reading" where the model's reading of the texts can follow a facet no other view follows: the corpus
    has at most `reading_max_texts` texts and the backend reads (the reading is done here, so that a server
    without an embeddings endpoint sends the run down the labels path); None otherwise, and why in `trace`."""
    import time

    limit = ctx.config.reading_max_texts
    if len(ctx.texts) > limit or ctx.reader is None:
        why = f"more than {limit} texts" if len(ctx.texts) > limit else "the backend does not read"
        trace.append({"step": "read", "skipped": why})
        return None
    ctx.progress(f"reading {counted(len(ctx.texts), 'text')} with the model")
    started = time.perf_counter()
    try:
        view(ctx, "reading", instruction)
    except ModelError as e:
        trace.append({"step": "read", "skipped": str(e)})
        return None
    trace.append({"step": "read", "texts": len(ctx.texts), "seconds": round(time.perf_counter() - started, 1)})
    return "reading"


def label_features(ctx: RunContext, about_topic: bool | None) -> np.ndarray:
    """What the classifier that spreads the model's labels reads: the embeddings, and for a facet other
    than subject matter also character n-grams and the layout view (a meaning embedding drops language,
    form and punctuation). `python -m clusteragent.evals.bench_label_features` measures each choice."""
    if about_topic:
        return ctx.vectors
    if ctx.views.label_features is None:
        surface = _cached(ctx, "surface", lambda: surface_features(ctx.texts, seed=ctx.config.seed))
        ctx.views.label_features = np.hstack([ctx.vectors, surface, view(ctx, "layout")])
    return ctx.views.label_features


def cluster_on_view(ctx: RunContext, state: AgentState) -> dict:
    """k-means on the view that follows the facet (for subject matter, on a UMAP map of the embeddings),
    with k from estimate_k; each group named. Returns the state update.

    In the meaning view, without a user's k or k_max, k is searched up to AgentConfig.structure_k_max
    (fine facets have dozens of values): the silhouette's choice on the embeddings and on their map and
    the number of dense groups HDBSCAN finds on the map, the largest kept; the model's first list does
    not set it. Where the texts have a map (semantic_map makes none for a few), a group that then holds more
    than half the texts is read again on its own (structure.split_majority). Unless the user fixed k, a
    group of fewer than MIN_GROUP_SIZE texts joins the nearest group (structure.fold_strays).

    Outside the meaning view a group takes the value of the facet that the model, in calibrated labels of its
    central texts, gives most of them (see naming.voted_name; on the reading, where there are as many groups as
    listed values, groups and values are matched one to one: naming.matched_names), if the model itself gave it
    more of them than any other value (naming.given_most); every other group is named by the model from its
    central texts, with a name no earlier group has (in the layout view also shown what sets the group's layout
    apart). What statistics find sets a group apart (its distinctive words in the meaning view, its layout in the
    layout view) names the group if the model cannot. Outside the meaning view k is searched only up to
    `first_proposal_max`, the cap of the model's own first list: on layout features silhouette plateaus over a
    wide range of k. On the model's reading k is the number of values the model listed for the facet (silhouette
    there chose 2 groups on five of the dev suite's six such facets, docs/benchmarks.md).
    """
    from tqdm.auto import tqdm

    cfg = ctx.config
    trace = list(state.get("trace", []))
    notes = list(state.get("notes", []))
    view_name = state.get("view") or "meaning"
    vectors = view(ctx, view_name, state["instruction"])  # unit rows: which texts are central to a group, and how sure
    grouping = meaning_map(ctx) if view_name == "meaning" else None
    mapped = grouping is not None
    grouping = grouping if mapped else vectors
    listed = tx.Taxonomy.from_state(state)
    k_min, k_max = state["k_min"], state["k_max"]
    if view_name == "meaning":
        k_max = cfg.structure_k_max(len(ctx.texts), k_max)
    elif k_min != k_max:
        k_max = max(k_min, min(k_max, cfg.first_proposal_max))
    if k_min == k_max:
        k = k_min
    elif view_name == "reading" and len(listed.clusters) >= 2:
        k = min(k_max, max(k_min, len(listed.clusters)))
        trace.append({"step": "listed_k", "k": k, "listed": listed.names})
    else:
        k = structure_k(ctx, vectors, grouping, mapped, k_min, k_max, trace)
    ctx.progress(f"k-means with k={k} on the {view_name} view")
    groups = kmeans(grouping, k, cfg.seed)
    if k_min != k_max:
        if mapped:
            groups = split_majority(ctx, vectors, grouping, groups, k_max, trace)
        groups = fold_strays(grouping, groups, k_min, trace)
    k = int(groups.max()) + 1
    sims = vectors @ tx.centroids(vectors, groups, list(range(k))).T
    soft = np.exp((sims - sims.max(axis=1, keepdims=True)) / 0.05)
    confidence = (soft.max(axis=1) / soft.sum(axis=1)).astype(np.float32)
    order = np.argsort(-np.bincount(groups, minlength=k), kind="stable")

    def members(g) -> np.ndarray:
        return np.flatnonzero(groups == g)

    # The votes leave one call per group for naming the groups without a clear majority.
    # As many groups as values listed (by the model on the reading, or by the user): each group takes one.
    one_each = k == len(listed.clusters) and (view_name == "reading" or bool(cfg.categories))
    voters = min(VOTERS, (ctx.calls_left() - k) // k) if (view_name != "meaning" or one_each) and listed.clusters else 0
    shown = {int(g): tx.central_members(vectors, members(g), voters) for g in order} if voters > 0 else {}
    votes = answered = {}
    if shown:
        answered, scores = label_rows(ctx, state["instruction"], np.concatenate(list(shown.values())), listed,
                                      "vote_name")
        votes = calibrated_labels(answered, scores, listed, cfg.calibration)
    traits = _traits(ctx, view_name, groups, order)
    if cfg.hierarchy and ctx.llm is not None:
        ctx.top_names = min(max(0, ctx.calls_left()), top_calls(ctx, groups, list(range(k))))
    matched = matched_names(shown, votes, listed) if shown and one_each else {}
    if one_each and cfg.categories and not matched:  # no call left to vote: the value whose words lie nearest
        matched = nearest_values(tx.centroids(ctx.vectors, groups, [int(g) for g in order]),
                                 description_vectors(ctx.embedder, listed), [int(g) for g in order], listed)
    under_tops = under_top_level(cfg, k)
    def stands(g: int, value: tx.Cluster) -> bool:
        """The user's values stand; a value of the model's own list needs most of the model's answers."""
        return bool(cfg.categories) or given_most(shown[g], answered, listed, value)

    # The values matched groups will take: a group the model names first must not take a name alike one of them.
    reserved = [v.name for g, v in matched.items() if stands(g, v)]
    tax = tx.Taxonomy()
    assignment = np.full(len(ctx.texts), -1, dtype=np.int64)
    main = main_language(ctx.texts) if view_name == "meaning" else None  # the others the embeddings read poorly
    for g in tqdm(order, desc="naming", unit="cluster", disable=not ctx.show_bars, leave=False):
        spec = matched.get(int(g)) or (voted_name(shown[int(g)], votes, listed, tax.names) if shown else None)
        if spec is not None and not stands(int(g), spec):
            spec = None
        if spec is None and main is not None:
            spec, note = named_by_language([ctx.texts[r] for r in members(g)], main, tax.names + reserved)
            if spec is not None:
                notes.append(note)
                trace.append({"step": "named_by_language", "cluster": spec.name, "corpus_language": main})
        if spec is None and ctx.calls_left() > 0:
            spec = _named_by_model(ctx, state, view_name, vectors, members(g), list(dict.fromkeys(tax.names + reserved)),
                                   traits.get(int(g), []), narrower=under_tops)
        if spec is None:
            texts = [ctx.texts[r] for r in members(g)]
            languages = view_name == "characters"  # what a group of the language view is written in, read only here
            spec = fallback_name(languages_read(texts) if languages else traits.get(int(g), []), tax.names,
                                 layout=view_name == "layout", languages=languages, texts=texts)
            notes.append((REFUSED_NOTE if ctx.calls_left() > 0 else NO_CALL_NOTE).format(name=spec.name))
        tax, cid = tax.added(spec.name, spec.description, getattr(spec, "named_by", "model"))
        assignment[groups == g] = cid
    trace.append({"step": "cluster_view", "view": view_name, "k": k, "clusters": tax.names,
                  "calls_kept_for_top_names": ctx.top_names})
    return {"trace": trace, "notes": notes, **tax.as_state(),
            **({"k_max": k_max} if view_name == "meaning" else {}),
            "assignment_ref": ctx.store_assignment(assignment, confidence)}


# A cluster named by statistics says why in the run's notes; one that got no call is named later if the top
# level leaves calls (name_skipped), and its note then brought up to date.
NO_CALL_NOTE = '"{name}" is named by statistics: no model calls were left to name it'
REFUSED_NOTE = '"{name}" is named by statistics: the model gave no valid name'


def _named_by_model(ctx: RunContext, state: AgentState, view_name: str, vectors: np.ndarray, rows: np.ndarray,
                    taken: list[str], traits: list[str], nested: bool = False, narrower: bool = False):
    """The model's name for the group of `rows`, from its central texts on the view (`vectors`); in the layout
    view it is also shown what sets the group's layout apart (`traits`). A meaning group's distinctive words
    are not shown: the model built its names and rules from them ("weather related", "These texts use the
    words ...") instead of from the texts. `nested` and `narrower` as in naming.name_group."""
    return name_members(ctx.llm, state["instruction"], state.get("facet", ""), ctx.texts, vectors, rows, taken,
                        step="name_cluster", shared=traits if view_name == "layout" else [], nested=nested,
                        narrower=narrower)


def _named_again(ctx: RunContext, state: AgentState, view_name: str, tax: tx.Taxonomy, assignment: np.ndarray,
                 clusters: list[tx.Cluster], taken_for, by: str, with_top_names: bool = False,
                 nested: bool = False) -> tuple[tx.Taxonomy, list[dict], list[tx.Cluster]]:
    """`clusters` named by the model in turn, as the view names its groups, while the budget allows (with the
    calls kept for the top level when `with_top_names`), refusing the names `taken_for(tax, cluster)` lists
    (`nested` as in naming.name_group). Returns the taxonomy, an audit entry per new name (`by` says why) and
    the clusters the model gave no valid name."""
    vectors = view(ctx, view_name, state["instruction"])
    traits = _traits(ctx, view_name, assignment, np.array([c.id for c in clusters])) if view_name == "layout" else {}
    audit, refused = [], []
    narrower = under_top_level(ctx.config, len(tax.clusters))  # renames leave the count as it is
    for c in clusters:
        if ctx.calls_left(with_top_names=with_top_names) <= 0:
            break
        spec = _named_by_model(ctx, state, view_name, vectors, np.flatnonzero(assignment == c.id), taken_for(tax, c),
                               traits.get(c.id, []), nested, narrower)
        if spec is None:
            refused.append(c)
            continue
        tax, entry = tx.rename(tax, c.id, spec.name, spec.description, named_by="model")
        audit.append({**entry, "by": by})
    return tax, audit, refused


def name_skipped(ctx: RunContext, state: AgentState, tax: tx.Taxonomy, assignment: np.ndarray, taken: list[str],
                 notes: list[str]) -> tuple[tx.Taxonomy, list[dict], list[str]]:
    """The clusters that got no naming call (their NO_CALL_NOTE is in `notes`: the budget was kept for the top
    level) named as the view names its groups, with the calls the run has left, largest first; names in
    `taken` (the tops') are refused too. Returns the taxonomy, an audit entry per name given, and `notes`
    with those that said a cluster had no call brought up to date."""
    skipped = [c for c in tax.clusters if c.named_by == "statistics" and NO_CALL_NOTE.format(name=c.name) in notes]
    if not skipped or ctx.llm is None or ctx.calls_left(with_top_names=True) <= 0:
        return tax, [], notes
    skipped.sort(key=lambda c: -int((assignment == c.id).sum()))
    tax, audit, refused = _named_again(ctx, state, state.get("view") or "meaning", tax, assignment, skipped,
                                       lambda now, c: now.names + taken, "finalize: a call the top level left",
                                       with_top_names=True, nested=True)  # named after renamed_broader's check
    # a note that no longer holds -> what holds now ("" when nothing is left to say)
    now = {NO_CALL_NOTE.format(name=e["from"]): "" for e in audit}
    now.update({NO_CALL_NOTE.format(name=c.name): REFUSED_NOTE.format(name=c.name) for c in refused})
    return tax, audit, [now.get(n, n) for n in notes if now.get(n, n)]


def clustered_view(state: dict) -> str | None:
    """The view the run's k-means ran on (cluster_on_view), or None where its labels made the clusters. A chat's
    state keeps it as `clustered_view` (a re-clustering by a new instruction changes it); a run's trace says it."""
    if "clustered_view" in state:
        return state["clustered_view"]
    return next((t.get("view") for t in state.get("trace", []) if t.get("step") == "cluster_view"), None)


def assignment_features(ctx: RunContext, state: dict, fitted: int) -> np.ndarray:
    """What produced the run's assignment, for the `fitted` texts (the first ones) and any new texts after them:
    the view k-means ran on where the run clustered a view (cluster_on_view), else what its labelling
    classifier read. New texts are placed on it, and a split (the review's, a chat's) places a cluster's texts."""
    clustered = clustered_view(state)
    if clustered == "reading" and ctx.reader is not None and fitted < len(ctx.texts):
        # read apart, so that the fitted texts' reading is the one the run kept and only the new ones are read
        ctx.views.reading = np.vstack([kept_reading(ctx.arrays, ctx.reader, state["instruction"], ctx.texts[:fitted]),
                                       ctx.reader(state["instruction"], ctx.texts[fitted:], ctx.show_bars)])
    return view(ctx, clustered, state["instruction"]) if clustered else label_features(ctx, state.get("about_topic"))


def renamed_broader(ctx: RunContext, state: AgentState, tax: tx.Taxonomy,
                    assignment: np.ndarray) -> tuple[tx.Taxonomy, list[dict]]:
    """Clusters the model named in fewer of another's words ("Travel" beside "Travel alerts": a reader sorts
    every travel alert into "Travel") named again as the view names its groups, nested names refused; where
    one keeps its name, those in more of its words ("Voice control commands" beside "Voice control"). A call
    each (two if refused) while the budget, less the top level's, allows. (Refused when first named, such
    names went to statistics.) Only where a view made the clusters: a label the model gave each text
    ("Positive" beside "Very positive") is that text's value. Returns the taxonomy and an audit per name."""
    def nested(tax: tx.Taxonomy, broader: bool) -> list[tx.Cluster]:
        return [tax.clusters[i] for i in nested_names(tax.names, broader) if tax.clusters[i].named_by == "model"]

    view_name = clustered_view(state)
    if not nested(tax, True) or ctx.llm is None or view_name is None:
        return tax, []
    audit = []
    for broader, by in ((True, "fewer"), (False, "more")):
        tax, named, _ = _named_again(ctx, state, view_name, tax, assignment, nested(tax, broader),
                                     lambda now, c: [n for n in now.names if n != c.name],
                                     f"finalize: a name in {by} of another's words", nested=True)
        audit += named
    return tax, audit


def _traits(ctx: RunContext, view_name: str, groups: np.ndarray, order: np.ndarray) -> dict[int, list[str]]:
    """What statistics find sets each group apart: its distinctive words (meaning, reading) or layout (layout)."""
    if view_name in ("meaning", "reading"):
        return {g: unrequested(ws, [ctx.texts[r] for r in np.flatnonzero(groups == g)])
                for g, ws in distinctive_words(ctx.texts, groups).items()}
    if view_name == "layout":
        measures = layout_measures(ctx)
        return {int(g): distinctive_layout(measures[groups == g], measures) for g in order}
    return {}
