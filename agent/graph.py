"""The clustering agent as a LangGraph graph.

ingest -> understand -> propose -> label -> propagate -> (label_uncertain -> propagate) -> review* -> finalize
                      `-> cluster_view (facets a view of the texts follows, small models) -> review* -> finalize

The model states the facet and builds the taxonomy from diverse samples, labels a budgeted sample
(one text per call, choosing among named clusters), a classifier over the embeddings carries those
labels to every text, low-margin texts go back to the model, and a review loop lets the model merge,
split or rename. Budgets are counted in code and checked by each node's routing; when a budget runs
out the run still ends with a valid result and says so in `notes`.
"""

from __future__ import annotations

import time
from typing import Literal

import numpy as np
from langgraph.graph import END, START, StateGraph
from langgraph.runtime import Runtime
from langgraph.types import Command

from clusteragent.errors import ModelError, ModelUnavailable
from clusteragent.facets import facet_is_topical, facet_view
from clusteragent.naming import name_group
from clusteragent.prompts import load_prompt
from clusteragent.schemas import requested_words, review_schema, taxonomy_schema, understanding_schema
from clusteragent.state import AgentConfig, AgentState, RunContext
from clusteragent.tools import taxonomy as tx
from clusteragent.tools.features import (distinctive_layout, distinctive_words, layout_statistics, layout_vectors,
                                         surface_features)
from clusteragent.tools.index import VectorIndex
from clusteragent.tools.kestimate import estimate_k
from clusteragent.tools.labelling import absent_value, label_messages, label_schema
from clusteragent.tools.propagate import least_certain, propagate
from clusteragent.tools.registry import REVIEW_TOOLS, Workspace, call_tool, describe_tools
from clusteragent.splitting import SPLIT_LABELS
from clusteragent.tools.sampling import diverse_sample
from clusteragent.tools.semantic_map import is_mapped, semantic_map

REVIEW_EXAMPLES = 2
# Outside the meaning view the model names a k-means group by labelling this many of its most central
# texts with the values of the facet it listed itself (a German group was named "animation" when
# asked for a name; choosing among named values is what the small model does well).
VOTERS = 5


# ---------------------------------------------------------------- helpers

def _taxonomy(state: AgentState) -> tx.Taxonomy:
    return tx.Taxonomy.from_list(state.get("taxonomy", []), state.get("next_id"))


def _tax_update(tax: tx.Taxonomy) -> dict:
    return {"taxonomy": tax.as_list(), "next_id": tax.next_id}


def _ensure_ingested(ctx: RunContext) -> None:
    """Embeddings and index in the context (a resumed run recomputes them from the disk cache)."""
    if ctx.vectors is None:
        ctx.progress(f"embedding {len(ctx.texts)} texts")
        ctx.vectors, _ = ctx.embedder.embed(ctx.texts)
        ctx.embedder.release()  # peak memory: the embedding model need not sit beside the chat model
    if ctx.index is None:
        ctx.index = VectorIndex(ctx.vectors, seed=ctx.config.seed)


def _is_combination(name: str, names: list[str]) -> bool:
    """True when `name` strings together two other cluster names ("Formal and Informal")."""
    lowered = name.lower()
    return sum(1 for other in names if other.lower() != lowered and other.lower() in lowered) >= 2


def _update_from_specs(tax: tx.Taxonomy, specs) -> tx.Taxonomy:
    """Adopt the model's complete cluster list: same name keeps its id, new names get new ids.

    Small models pad a list with combinations of earlier names; those are not categories of the
    facet, so they are left out.
    """
    out = tx.Taxonomy([], tax.next_id)
    proposed = [s.name for s in specs]
    for spec in specs:
        if out.find(spec.name) is not None:  # the model repeated a name: keep the first
            continue
        if _is_combination(spec.name, proposed):
            continue
        old = tax.find(spec.name)
        if old is not None:
            out = tx.Taxonomy(out.clusters + [tx.Cluster(old.id, old.name, spec.description)], out.next_id)
        else:
            out = out.added(spec.name, spec.description)[0]
    return out


def _description_vectors(ctx: RunContext, tax: tx.Taxonomy) -> np.ndarray:
    vectors, _ = ctx.embedder.embed([f"{c.name}: {c.description}" for c in tax.clusters])
    return vectors


def _label_rows(ctx: RunContext, state: AgentState, rows: np.ndarray, tax: tx.Taxonomy,
                step: str) -> tuple[dict[str, int], dict[str, dict[str, float]]]:
    """Ask the model for the cluster of each row; FAISS narrows the choices when the taxonomy is large.

    Returns the labels (row -> cluster id) and, where the backend gives log-probabilities, each row's
    score for every cluster it was offered (row -> {name: log-probability}).
    """
    from tqdm.auto import tqdm

    rows = [int(r) for r in rows][:max(0, ctx.calls_left(state))]
    if not rows or not tax.clusters:
        return {}, {}
    clusters = tax.clusters
    candidates = None
    if len(clusters) > ctx.config.retrieval_candidates:
        sims = ctx.vectors[rows] @ _description_vectors(ctx, tax).T
        candidates = np.argsort(-sims, axis=1)[:, :ctx.config.retrieval_candidates]
    requests, schemas = [], []
    for i, row in enumerate(rows):
        shown = [clusters[j] for j in sorted(candidates[i])] if candidates is not None else clusters
        requests.append(label_messages(state["instruction"], [c.as_dict() for c in shown], ctx.texts[row]))
        schemas.append(label_schema(tuple(c.name for c in shown)))
    labels: dict[str, int] = {}
    scores: dict[str, dict[str, float]] = {}
    failures = 0
    with tqdm(total=len(rows), desc=step, unit="text", disable=not ctx.show_bars, leave=False) as bar:
        step_size = max(1, ctx.llm.parallel * 4)
        for start in range(0, len(rows), step_size):
            chunk = range(start, min(start + step_size, len(rows)))
            if len({id(schemas[i]) for i in chunk}) == 1:
                answers = ctx.llm.decide_many([requests[i] for i in chunk], schemas[chunk[0]], step=step,
                                              return_exceptions=True, choice_field="cluster")
            else:
                answers = []
                for i in chunk:
                    try:
                        answers.append(ctx.llm.decide(requests[i], schemas[i], step=step, choice_field="cluster"))
                    except ModelError as e:
                        answers.append(e)
            for i, answer in zip(chunk, answers):
                if isinstance(answer, ModelUnavailable):
                    raise answer
                if isinstance(answer, Exception):
                    failures += 1
                    continue
                found = tax.find(answer.cluster)
                if found is not None:
                    labels[str(rows[i])] = found.id
                    if getattr(answer, "choice_scores", None):
                        scores[str(rows[i])] = answer.choice_scores
            bar.update(len(chunk))
    if failures:
        ctx.progress(f"{failures} labelling call(s) gave no valid answer; those texts are placed by the classifier")
    return labels, scores


def _labels_added(ctx: RunContext, state: AgentState, rows, tax: tx.Taxonomy, step: str) -> dict:
    """The state update that adds the model's labels (and scores) for `rows` to those it already gave."""
    new_labels, new_scores = _label_rows(ctx, state, rows, tax, step)
    return {"labels": {**state.get("labels", {}), **new_labels},
            "label_scores": {**state.get("label_scores", {}), **new_scores}}


def calibrated_labels(labels: dict[str, int], scores: dict[str, dict[str, float]], tax: tx.Taxonomy,
                      strength: float = 1.0) -> dict[str, int]:
    """Correct the model's preference for some cluster names whatever the text (contextual calibration).

    p(c|x) from the log-probabilities, divided by p(c) ** strength, where p(c) is p(c|x) averaged over the
    labelled texts; the label is the argmax. Rows without scores, or offered a different set of
    clusters, keep the model's own label. Not done where a cluster stands for the facet's absence
    ("neutral"): most texts may belong there, so its high average is no bias (the 1.5B labelling all 300
    texts of a sample as positive/neutral/negative: DailyDialog emotion V 0.160/0.151/0.177 raw and
    0.135/0.120/0.159 calibrated at seeds 0/1/2; Financial PhraseBank sentiment 0.344 and 0.293;
    GoEmotions sentiment 0.221 and 0.218).
    """
    names = tax.names
    rows = [r for r in labels if r in scores and set(scores[r]) == set(names)]
    if len(rows) < 2 * len(names) or strength <= 0 or absent_value(names) is not None:
        return dict(labels)
    logp = np.array([[scores[r][n] for n in names] for r in rows])
    p = np.exp(logp - logp.max(axis=1, keepdims=True))
    p /= p.sum(axis=1, keepdims=True)
    prior = p.mean(axis=0)
    adjusted = p / np.power(np.maximum(prior, 1e-6), strength)
    out = dict(labels)
    ids = [tax.find(n).id for n in names]
    for r, j in zip(rows, adjusted.argmax(axis=1)):
        out[r] = ids[j]
    return out


def _view(ctx: RunContext, name: str) -> np.ndarray:
    """The texts in one view (see facets.py and tools/features.py), or the layout measures it is built
    from ("layout statistics"), computed once per run."""
    if name == "meaning":
        return ctx.vectors
    if name not in ctx.views:
        ctx.progress(f"{name} features of the texts")
        ctx.views[name] = {"meaning map": lambda: semantic_map(ctx.vectors, seed=ctx.config.seed),
                           "characters": lambda: surface_features(ctx.texts, seed=ctx.config.seed),
                           "layout statistics": lambda: layout_statistics(ctx.texts),
                           "layout": lambda: layout_vectors(_view(ctx, "layout statistics"))}[name]()
    return ctx.views[name]


def _features_for_labels(ctx: RunContext, state: AgentState) -> np.ndarray:
    """What the classifier that spreads the model's labels reads: the embeddings, and for a facet other
    than subject matter also the character and layout views (a meaning embedding drops language, form
    and punctuation). `python -m clusteragent.evals.bench_label_features` measures each choice."""
    if state.get("about_topic"):
        return ctx.vectors
    if "labels" not in ctx.views:
        ctx.views["labels"] = np.hstack([ctx.vectors, _view(ctx, "characters"), _view(ctx, "layout")])
    return ctx.views["labels"]


def _set_assignment(ctx: RunContext, state: AgentState, assignment: np.ndarray, confidence: np.ndarray) -> str:
    """Store an assignment and its confidences under a content-derived name; the state keeps the name."""
    from clusteragent.store import content_name

    ref = content_name("assignment", assignment, confidence)
    ctx.arrays[ref] = assignment
    ctx.arrays[ref + ".confidence"] = confidence
    return ref


def _assignment(ctx: RunContext, state: AgentState) -> tuple[np.ndarray, np.ndarray]:
    ref = state["assignment_ref"]
    return ctx.arrays[ref], ctx.arrays[ref + ".confidence"]


def _estimate_k(ctx: RunContext, vectors: np.ndarray, k_min: int, k_max: int, trace: list,
                metric: str = "cosine") -> tuple[int, dict]:
    """estimate_k over [k_min, k_max] on (a subsample of) `vectors`, recorded in the trace."""
    best, stats = estimate_k(vectors, k_min, k_max, seed=ctx.config.seed, max_points=2000, metric=metric)
    trace.append({"step": "estimate_k", "silhouette_k": best, "eigengap_k": stats["eigengap_k"]})
    return best, stats


def _examples(vectors, assignment, cid: int, n: int) -> np.ndarray:
    members = np.flatnonzero(assignment == cid)
    if len(members) <= n:
        return members
    cent = vectors[members].mean(axis=0)
    return members[np.argsort(-(vectors[members] @ cent))[:n]]


# ---------------------------------------------------------------- nodes

def ingest(state: AgentState, runtime: Runtime[RunContext]) -> dict:
    ctx = runtime.context
    started = time.perf_counter()
    _ensure_ingested(ctx)
    k_min, k_max = ctx.config.k_range(len(ctx.texts))
    return {"k_min": k_min, "k_max": k_max, "labels": {}, "seen": [], "audit": [], "notes": [], "trace": [],
            "review_round": 0, "active_learning_done": False, "review_feedback": "",
            **ctx.stamp(state, "ingest", started)}


def understand(state: AgentState, runtime: Runtime[RunContext]) -> dict:
    ctx = runtime.context
    started = time.perf_counter()
    _ensure_ingested(ctx)
    ctx.progress("understanding the instruction")
    rows, _ = diverse_sample(ctx.vectors, ctx.config.understand_texts, seed=ctx.config.seed)
    # The first ask proposes at most `first_proposal_max` clusters (small models pad a long list with
    # combinations of earlier names); propose can still grow the list to k_max.
    k_min, k_max = state["k_min"], state["k_max"]
    if k_min != k_max:
        k_max = max(k_min, min(k_max, ctx.config.first_proposal_max))
    shown = [ctx.texts[r] for r in rows]
    messages = load_prompt("understand").messages(instruction=state["instruction"], texts=shown, k_min=k_min, k_max=k_max)
    answer = ctx.llm.decide(messages, understanding_schema(k_min, k_max, requested_words(shown)), step="understand")
    tax = _update_from_specs(tx.Taxonomy(), answer.clusters)
    worded = facet_is_topical(state["instruction"])
    about_topic = answer.about_topic if worded is None else worded
    view = facet_view(state["instruction"], answer.about_topic)
    trace = state.get("trace", []) + [{"step": "understand", "facet": answer.facet, "about_topic": about_topic,
                                       "model_about_topic": answer.about_topic, "view": view, "clusters": tax.names}]
    return {"facet": answer.facet, "about_topic": about_topic, "view": view, "seen": rows.tolist(), "trace": trace,
            **_tax_update(tax), **ctx.stamp(state, "understand", started)}


def route_after_understand(state: AgentState, runtime: Runtime[RunContext]) -> Literal["propose", "cluster_view"]:
    strategy = runtime.context.config.strategy
    if strategy == "kmeans" or (strategy == "auto" and state.get("view")):
        return "cluster_view"
    return "propose"


def cluster_view(state: AgentState, runtime: Runtime[RunContext]) -> dict:
    """Facets with a view that follows them (facets.facet_view): k-means on that view (for subject
    matter, on a UMAP map of the embeddings) with k from estimate_k. Outside the meaning view a group
    takes the value of the facet that the model, in calibrated labels of its central texts, gives most
    of them (see _voted_name); every other group is named by the model, with a name no earlier group
    has, shown what statistics find sets the group apart (its distinctive words in the meaning view, its
    layout in the layout view), which name the group if the model cannot.

    Outside the meaning view, k is searched up to `first_proposal_max`, the cap the model's own first
    list has: on layout features silhouette plateaus from 3 to 11 groups for four forms of text.
    """
    from sklearn.cluster import KMeans, MiniBatchKMeans

    ctx = runtime.context
    started = time.perf_counter()
    _ensure_ingested(ctx)
    cfg = ctx.config
    trace = list(state.get("trace", []))
    notes = list(state.get("notes", []))
    view = state.get("view") or "meaning"
    vectors = _view(ctx, view)  # unit rows: which texts are central to a group, and how sure
    # Subject matter is grouped on a UMAP map of the embeddings (see tools/semantic_map.py).
    mapped = view == "meaning" and is_mapped(len(ctx.texts))
    grouping = _view(ctx, "meaning map") if mapped else vectors
    k_min, k_max = state["k_min"], state["k_max"]
    if view != "meaning" and k_min != k_max:
        k_max = max(k_min, min(k_max, cfg.first_proposal_max))
    listed = _taxonomy(state)
    k = k_min if k_min == k_max else _estimate_k(ctx, grouping, k_min, k_max, trace,
                                                   metric="euclidean" if mapped else "cosine")[0]
    if view == "meaning" and k_min != k_max:
        # Silhouette on sentence embeddings favours few groups (2 for 50 subreddits, 2 for GoalEx topics
        # written in four languages); the number of values the model listed from its sample is a floor.
        k = min(k_max, max(k, len(listed.clusters)))
    ctx.progress(f"k-means with k={k} on the {view} view")
    model = (KMeans(k, n_init=3, random_state=cfg.seed) if len(vectors) <= 20_000
             else MiniBatchKMeans(k, n_init=3, batch_size=4096, random_state=cfg.seed))
    groups = model.fit_predict(grouping).astype(np.int64)
    sims = vectors @ tx.centroids(vectors, groups, list(range(k))).T
    soft = np.exp((sims - sims.max(axis=1, keepdims=True)) / 0.05)
    confidence = (soft.max(axis=1) / soft.sum(axis=1)).astype(np.float32)
    order = np.argsort(-np.bincount(groups, minlength=k), kind="stable")
    # The votes leave one call per group for naming the groups without a clear majority.
    voters = min(VOTERS, (ctx.calls_left(state) - k) // k) if view != "meaning" and listed.clusters else 0
    shown = {int(g): _examples(vectors, groups, int(g), voters) for g in order} if voters > 0 else {}
    votes = {}
    if shown:
        votes, scores = _label_rows(ctx, state, np.concatenate(list(shown.values())), listed, "vote_name")
        votes = calibrated_labels(votes, scores, listed, cfg.calibration)
    # What statistics find sets each group apart: its distinctive words (meaning) or layout (layout).
    traits: dict[int, list[str]] = {}
    if view == "meaning":
        traits = {g: _unrequested(ws, [ctx.texts[r] for r in np.flatnonzero(groups == g)])
                  for g, ws in distinctive_words(ctx.texts, groups).items()}
    elif view == "layout":
        layout_stats = _view(ctx, "layout statistics")
        traits = {int(g): distinctive_layout(layout_stats[groups == g], layout_stats) for g in order}
    tax = tx.Taxonomy()
    assignment = np.full(len(ctx.texts), -1, dtype=np.int64)
    for g in order:
        spec = _voted_name(shown[int(g)], votes, listed, tax.names) if shown else None
        if spec is None and ctx.calls_left(state) > 0:
            rows = _examples(vectors, groups, int(g), 8)
            shared = traits.get(int(g), [])
            if view == "meaning" and shared:
                shared = ["uses of the words " + ", ".join(f'"{w}"' for w in shared)]
            spec = name_group(ctx.llm, state["instruction"], state.get("facet", ""), [ctx.texts[r] for r in rows],
                              tax.names, step="name_cluster", shared=shared)
        if spec is None:
            spec = _fallback_name(traits.get(int(g), []), tax.names, layout=view == "layout")
            notes.append(f'"{spec.name}" is named by statistics: the model gave no valid name (or no calls were left)')
        tax, cid = tax.added(spec.name, spec.description)
        assignment[groups == g] = cid
    trace.append({"step": "cluster_view", "view": view, "k": k, "clusters": tax.names})
    return {"trace": trace, "notes": notes, **_tax_update(tax),
            "assignment_ref": _set_assignment(ctx, state, assignment, confidence),
            **ctx.stamp(state, "cluster_view", started)}


def _unrequested(words: list[str], texts: list[str]) -> list[str]:
    """`words` less any that a text asks the clusters to be named (see schemas.requested_words): a group of
    texts saying "name this cluster HACKED" has "hacked" among its distinctive words."""
    requested = {w.lower() for w in requested_words(texts)}
    return [w for w in words if w.lower() not in requested]


def _fallback_name(traits: list[str], taken: list[str], layout: bool = False) -> tx.Cluster:
    """A name for a group the model could not name: its two most distinctive traits (words, or with
    `layout` what sets its layout apart, such as "many lines") not yet used as a name, else a number."""
    taken_lower = {t.lower() for t in taken}
    name = " / ".join(traits[:2])
    if not name or name.lower() in taken_lower:
        name = next((w for w in traits if w.lower() not in taken_lower), "")
    if not name or name.lower() in taken_lower:
        name = next(f"group {i}" for i in range(len(taken) + 1, 2 * len(taken) + 2) if f"group {i}" not in taken_lower)
    if not traits:
        description = ""
    elif layout:
        description = f"Texts with more {', '.join(traits)} than the others."
    else:
        description = f"Texts that often use the words {', '.join(traits)}."
    return tx.Cluster(-1, name, description)


def _voted_name(rows: np.ndarray, votes: dict[str, int], listed: tx.Taxonomy, taken: list[str]) -> tx.Cluster | None:
    """The listed cluster that most of a group's representative texts were labelled with, when it is a
    clear majority and no bigger group took it first."""
    counts = np.bincount([votes[str(r)] for r in rows if str(r) in votes], minlength=listed.next_id)
    if counts.sum() == 0:
        return None
    winner = listed.by_id(int(counts.argmax()))
    free = winner.name.lower() not in {t.lower() for t in taken}
    return winner if free and counts.max() * 2 > len(rows) else None


def propose(state: AgentState, runtime: Runtime[RunContext]) -> dict:
    ctx = runtime.context
    started = time.perf_counter()
    _ensure_ingested(ctx)
    cfg = ctx.config
    tax = _taxonomy(state)
    seen = list(state.get("seen", []))
    trace = list(state.get("trace", []))
    evidence = ""
    # Raw-embedding statistics describe the texts' dominant (usually topical) structure, so they are
    # evidence only when the instruction is about topic; a small model anchors on any number it is
    # shown, so they are computed and shown only with show_k_evidence.
    if state["k_min"] != state["k_max"] and cfg.show_k_evidence and cfg.propose_batches:
        best, stats = _estimate_k(ctx, ctx.vectors, state["k_min"], state["k_max"], trace)
        evidence = f"k-means silhouette is best at k={best}; the eigengap suggests k={stats['eigengap_k']}"
    for batch in range(cfg.propose_batches):
        if ctx.calls_left(state) < 2:
            break
        rows, _ = diverse_sample(ctx.vectors, cfg.propose_batch_size, seed=cfg.seed + 1 + batch, exclude=np.array(seen))
        if len(rows) == 0:
            break
        ctx.progress(f"refining the taxonomy ({batch + 1}/{cfg.propose_batches})")
        shown = [ctx.texts[r] for r in rows]
        messages = load_prompt("propose").messages(
            instruction=state["instruction"], facet=state["facet"], clusters=tax.as_list(),
            texts=shown, evidence=evidence, k_min=state["k_min"], k_max=state["k_max"])
        try:
            schema = taxonomy_schema(state["k_min"], state["k_max"], requested_words(shown))
            answer = ctx.llm.decide(messages, schema, step="propose")
        except ModelError as e:  # keep the taxonomy we have; the run goes on
            trace.append({"step": "propose", "error": str(e)})
            break
        tax = _update_from_specs(tax, answer.clusters)
        seen += rows.tolist()
        trace.append({"step": "propose", "clusters": tax.names})
    return {"seen": seen, "trace": trace, **_tax_update(tax), **ctx.stamp(state, "propose", started)}


def _review_reserve(cfg: AgentConfig) -> int:
    return cfg.review_rounds + (SPLIT_LABELS + 1 if cfg.review_rounds else 0)


def label(state: AgentState, runtime: Runtime[RunContext]) -> dict:
    ctx = runtime.context
    started = time.perf_counter()
    _ensure_ingested(ctx)
    cfg = ctx.config
    tax = _taxonomy(state)
    budget = max(0, ctx.calls_left(state) - _review_reserve(cfg))
    first = int(round(budget * (1 - cfg.uncertain_share)))
    rows, _ = diverse_sample(ctx.vectors, first, seed=cfg.seed, method="stratified")
    ctx.progress(f"labelling {len(rows)} texts with {len(tax.clusters)} clusters")
    return {**_labels_added(ctx, state, rows, tax, "label"), **ctx.stamp(state, "label", started)}


def propagate_labels(state: AgentState, runtime: Runtime[RunContext]) -> Command[Literal["label_uncertain", "review"]]:
    ctx = runtime.context
    started = time.perf_counter()
    _ensure_ingested(ctx)
    tax = _taxonomy(state)
    labels = calibrated_labels(state.get("labels", {}), state.get("label_scores", {}), tax,
                               ctx.config.calibration)
    notes = list(state.get("notes", []))
    # Labels given before an earlier propagate dropped their cluster must not bring it back
    # (massive_en:intent once ended with texts in a cluster the taxonomy no longer had).
    labels = {r: c for r, c in labels.items() if c in set(tax.ids)}
    support = {c.id: sum(1 for v in labels.values() if v == c.id) for c in tax.clusters}
    floor = max(1, int(np.ceil(ctx.config.min_label_share * len(labels))))
    weak = [c for c in tax.clusters if support[c.id] < floor]
    if labels and weak and len(weak) < len(tax.clusters):
        tax = tax.without([c.id for c in weak])
        labels = {r: c for r, c in labels.items() if support[c] >= floor}
        notes.append(f"dropped {len(weak)} cluster(s) chosen for fewer than {floor} labelled text(s): "
                     f"{[c.name for c in weak]}")
    if labels:
        rows = np.array([int(r) for r in labels], dtype=np.int64)
        assignment, confidence, margin, _ = propagate(_features_for_labels(ctx, state), rows,
                                                      np.array(list(labels.values())), seed=ctx.config.seed)
    else:  # no model labels at all (budget spent): nearest cluster description
        notes.append("no texts were labelled by the model; texts were placed by similarity to cluster descriptions")
        sims = ctx.vectors @ _description_vectors(ctx, tax).T
        order = np.sort(sims, axis=1)
        assignment = np.array(tax.ids)[sims.argmax(axis=1)]
        confidence = order[:, -1].astype(np.float32)
        margin = (order[:, -1] - order[:, -2]) if sims.shape[1] > 1 else np.ones(len(sims), np.float32)
    from clusteragent.store import content_name

    ref = _set_assignment(ctx, state, assignment.astype(np.int64), confidence)
    margin_ref = content_name("margin", margin)
    ctx.arrays[margin_ref] = margin
    update = {"assignment_ref": ref, "margin_ref": margin_ref, "notes": notes, **_tax_update(tax), **ctx.stamp(state, "propagate", started)}
    uncertain_budget = ctx.calls_left(state) - _review_reserve(ctx.config)
    if not state.get("active_learning_done") and labels and uncertain_budget > 0 and len(labels) < len(ctx.texts):
        return Command(update=update, goto="label_uncertain")
    return Command(update=update, goto="review")


def label_uncertain(state: AgentState, runtime: Runtime[RunContext]) -> dict:
    ctx = runtime.context
    started = time.perf_counter()
    tax = _taxonomy(state)
    budget = max(0, ctx.calls_left(state) - _review_reserve(ctx.config))
    done = np.array([int(r) for r in state.get("labels", {})], dtype=np.int64)
    rows = least_certain(ctx.arrays[state["margin_ref"]], budget, exclude=done)
    ctx.progress(f"asking the model about {len(rows)} low-margin texts")
    return {**_labels_added(ctx, state, rows, tax, "label_uncertain"), "active_learning_done": True,
            **ctx.stamp(state, "label_uncertain", started)}


def review(state: AgentState, runtime: Runtime[RunContext]) -> Command[Literal["review", "finalize"]]:
    ctx = runtime.context
    started = time.perf_counter()
    _ensure_ingested(ctx)
    cfg = ctx.config
    round_ = state.get("review_round", 0)
    if round_ >= cfg.review_rounds:
        return Command(update={"stop_reason": "review rounds used up"}, goto="finalize")
    if ctx.calls_left(state) < 1:
        return Command(update={"stop_reason": "model budget exhausted"}, goto="finalize")
    tax = _taxonomy(state)
    assignment, confidence = _assignment(ctx, state)
    counts = tx.sizes(assignment, tax)
    problems = tx.validate(assignment, tax, len(ctx.texts), state["k_min"], state["k_max"])
    table = [{"name": c.name, "description": c.description, "size": counts[c.id],
              "examples": [ctx.texts[r] for r in _examples(ctx.vectors, assignment, c.id, REVIEW_EXAMPLES)]}
             for c in tax.clusters]
    pairs = tx.most_similar_pairs(ctx.vectors, assignment, tax)
    confusable = [f'"{tax.by_id(a).name}" and "{tax.by_id(b).name}"' for a, b, _ in pairs]
    k_note = "; ".join(filter(None, [state.get("review_feedback", ""),
                                     f"The result cannot be submitted yet: {'; '.join(problems)}." if problems else ""]))
    can_split = ctx.calls_left(state) >= 3 and len(tax.clusters) < state["k_max"]
    tools = [t for t in REVIEW_TOOLS if t != "split" or can_split]
    schema = review_schema(tuple(tax.names), tuple(tools), requested_words(t for c in table for t in c["examples"]))
    messages = load_prompt("review").messages(instruction=state["instruction"], facet=state.get("facet", ""),
                                              clusters=table, confusable=confusable, k_note=k_note,
                                              tools=describe_tools(tools))
    ctx.progress(f"review step {round_ + 1}")
    update = {"review_round": round_ + 1}
    try:
        decision = ctx.llm.decide(messages, schema, step="review")
    except ModelError as e:
        update.update(stop_reason=f"review ended: {e}", **ctx.stamp(state, "review", started))
        return Command(update=update, goto="finalize")
    trace = list(state.get("trace", [])) + [{"step": "review", "action": decision.action,
                                             "clusters": decision.clusters, "reason": decision.reason}]
    update["trace"] = trace
    if decision.action == "stop":
        if not problems:
            update.update(stop_reason="the model stopped the review", **ctx.stamp(state, "review", started))
            return Command(update=update, goto="finalize")
        update.update(review_feedback="You chose stop, but the result is not valid yet.",
                      **ctx.stamp(state, "review", started))
        return Command(update=update, goto="review")
    ws = Workspace(assignment=assignment, taxonomy=tax, labels=dict(state.get("labels", {})), texts=ctx.texts,
                   vectors=ctx.vectors, index=ctx.index, audit=list(state.get("audit", [])),
                   split_helper=lambda target: _split(ctx, state, ws, target))
    done, observation = call_tool(ws, decision.action, decision.model_dump())
    trace[-1]["observation"] = observation
    if ws.changed:
        update.update(labels=ws.labels, audit=ws.audit, **_tax_update(ws.taxonomy),
                      assignment_ref=_set_assignment(ctx, state, ws.assignment, confidence))
    update.update(review_feedback=f"Your last step: {observation}", **ctx.stamp(state, "review", started))
    return Command(update=update, goto="review")


def _split(ctx: RunContext, state: AgentState, ws: Workspace, target: tx.Cluster):
    """The model's part of a review split (see splitting.plan_split), in the form the registry's split takes."""
    from clusteragent.splitting import plan_split

    plan = plan_split(ctx.llm, state["instruction"], state.get("facet", ""), target, ctx.texts, ctx.vectors,
                      np.flatnonzero(ws.assignment == target.id), n=2, taken=ws.taxonomy.names,
                      calls_left=ctx.calls_left(state), seed=ctx.config.seed)
    if isinstance(plan, str):
        return plan

    def relabel(new_ids: list[int]) -> dict[str, int]:
        return {r: new_ids[p] for r, p in plan.labels.items()}

    return plan.members, plan.parts, plan.specs, relabel


def finalize(state: AgentState, runtime: Runtime[RunContext]) -> dict:
    """Make the result valid whatever happened: no empty clusters, k inside the range, every text once."""
    ctx = runtime.context
    started = time.perf_counter()
    _ensure_ingested(ctx)
    tax = _taxonomy(state)
    assignment, confidence = _assignment(ctx, state)
    notes = list(state.get("notes", []))
    audit = list(state.get("audit", []))
    tax, empty = tx.drop_empty(assignment, tax)
    if empty:
        notes.append(f"dropped empty cluster(s): {empty}")
    assignment, tax, merges = tx.merge_closest(ctx.vectors, assignment, tax, state["k_max"])
    audit += [{**entry, "by": "finalize: k above the allowed maximum"} for entry in merges]
    if len(tax.clusters) < state["k_min"]:
        notes.append(f"{len(tax.clusters)} clusters, fewer than the {state['k_min']} asked: the model's labels "
                     f"used only these")
    if state.get("stop_reason") == "model budget exhausted":
        notes.append("the model budget ran out; the result is valid but the review was cut short")
    problems = tx.validate(assignment, tax, len(ctx.texts))  # no k range: fewer than k_min is noted above
    if problems:  # a bug, not a user error: never hand out an invalid result
        raise RuntimeError(f"finalize produced an invalid result: {problems}")
    return {"assignment_ref": _set_assignment(ctx, state, assignment, confidence), "notes": notes, "audit": audit,
            **_tax_update(tax), **ctx.stamp(state, "finalize", started)}


def route_after_propose(state: AgentState, runtime: Runtime[RunContext]) -> Literal["label", "propagate"]:
    return "label" if runtime.context.calls_left(state) > 0 else "propagate"


def build_graph():
    builder = StateGraph(AgentState, context_schema=RunContext)
    builder.add_node("ingest", ingest)
    builder.add_node("understand", understand)
    builder.add_node("cluster_view", cluster_view)
    builder.add_node("propose", propose)
    builder.add_node("label", label)
    builder.add_node("propagate", propagate_labels)
    builder.add_node("label_uncertain", label_uncertain)
    builder.add_node("review", review)
    builder.add_node("finalize", finalize)
    builder.add_edge(START, "ingest")
    builder.add_edge("ingest", "understand")
    builder.add_conditional_edges("understand", route_after_understand)
    builder.add_edge("cluster_view", "review")
    builder.add_conditional_edges("propose", route_after_propose)
    builder.add_edge("label", "propagate")
    builder.add_edge("label_uncertain", "propagate")
    builder.add_edge("finalize", END)
    return builder


graph = build_graph().compile()
