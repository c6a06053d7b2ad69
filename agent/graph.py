"""The clustering agent as a LangGraph graph: the nodes and their wiring.

ingest -> understand -> propose -> label -> propagate -> (label_uncertain -> propagate) -> review* -> finalize
                      `-> cluster_view (facets a view of the texts follows, small models) -> review* -> finalize

The model states the facet and builds the taxonomy from diverse samples, labels a budgeted sample
(one text per call, choosing among named clusters), a classifier over the embeddings carries those
labels to every text, low-margin texts go back to the model, and a review loop lets the model merge,
split or rename. Budgets are counted in code and checked by each node's routing; when a budget runs
out the run still ends with a valid result and says so in `notes`.
"""

from __future__ import annotations

import dataclasses
import functools
import time
from typing import Literal

import numpy as np
from langgraph.graph import END, START, StateGraph
from langgraph.runtime import Runtime
from langgraph.types import Command

from clusteragent.errors import ModelError, counted
from clusteragent.facets import Route, facet_reading_schema, route_instruction
from clusteragent.finished_rules import finished_rules
from clusteragent.hierarchy import build_tops
from clusteragent.labelling import calibrated_labels, description_vectors, labels_added
from clusteragent.naming import corpus_noun, given_values, listed_as_rules, without_shared_words
from clusteragent.outliers import in_corpus
from clusteragent.prompts import load_prompt
from clusteragent.result import standing_notes
from clusteragent.review import review_reserve, review_step
from clusteragent.run_folder import content_name, embeddings_name, kept
from clusteragent.schemas import requested_words, taxonomy_schema, understanding_schema
from clusteragent.splitting import split_until
from clusteragent.state import AgentState, RunContext
from clusteragent.structure import estimate_k_traced
from clusteragent.tools import taxonomy as tx
from clusteragent.tools.index import VectorIndex
from clusteragent.tools.propagate import least_certain, propagate
from clusteragent.tools.sampling import diverse_sample
from clusteragent.views import (
    NO_CALL_NOTE,
    REFUSED_NOTE,
    cluster_on_view,
    label_features,
    name_skipped,
    reading_view,
    renamed_broader,
)


def ensure_ingested(ctx: RunContext) -> None:
    """Embeddings and index in the context (kept in the run's arrays: a resumed run finds them there)."""
    if ctx.vectors is None:
        def embed() -> np.ndarray:
            ctx.progress(f"embedding {counted(len(ctx.texts), 'text')}")
            vectors, _ = ctx.embedder.embed(ctx.texts)
            ctx.embedder.release()  # peak memory: the embedding model need not sit beside the chat model
            return vectors

        ctx.vectors = kept(ctx.arrays, embeddings_name(ctx.embedder.model_id, ctx.texts), embed)
    if ctx.index is None:
        ctx.index = VectorIndex(ctx.vectors, seed=ctx.config.seed)


def node(step: str):
    """What every node shares: the texts embedded first; its time and the model usage so far stamped
    into its update (a dict, or a Command's update)."""
    def wrap(fn):
        @functools.wraps(fn)
        def run(state: AgentState, runtime: Runtime[RunContext]):
            ctx = runtime.context
            started = time.perf_counter()
            ensure_ingested(ctx)
            out = fn(state, runtime)
            stamp = ctx.stamp(state, step, started)
            if isinstance(out, Command):
                return Command(update={**(out.update or {}), **stamp}, goto=out.goto)
            return {**out, **stamp}
        return run
    return wrap


def is_combination(name: str, names: list[str]) -> bool:
    """True when `name` strings together two other cluster names ("Formal and Informal")."""
    lowered = name.lower()
    return sum(1 for other in names if other.lower() != lowered and other.lower() in lowered) >= 2


def update_from_specs(tax: tx.Taxonomy, specs) -> tx.Taxonomy:
    """Adopt the model's complete cluster list: same name keeps its id, new names get new ids.

    Small models pad a list with combinations of earlier names; those are not categories of the
    facet, so they are left out.
    """
    out = tx.Taxonomy([], tax.next_id)
    proposed = [s.name for s in specs]
    for spec in specs:
        if out.find(spec.name) is not None or is_combination(spec.name, proposed):
            continue
        old = tax.find(spec.name)
        if old is not None:
            out = tx.Taxonomy(out.clusters + [tx.Cluster(old.id, old.name, spec.description)], out.next_id)
        else:
            out = out.added(spec.name, spec.description)[0]
    return out


# ---------------------------------------------------------------- nodes

@node("ingest")
def ingest(state: AgentState, runtime: Runtime[RunContext]) -> dict:
    ctx = runtime.context
    k_min, k_max = ctx.config.k_range(len(ctx.texts))
    notes = []
    if ctx.config.k_stated:
        asked = str(k_min) if k_min == k_max else f"{k_min} to {k_max}"
        notes.append(f"{asked} clusters, as the instruction asks ({ctx.config.k_stated!r})")
        ctx.progress(notes[-1])
    return {"k_min": k_min, "k_max": k_max, "labels": {}, "seen": [], "audit": [], "notes": notes, "trace": [],
            "review_round": 0, "active_learning_done": False, "review_feedback": ""}


@node("understand")
def understand(state: AgentState, runtime: Runtime[RunContext]) -> dict:
    ctx = runtime.context
    ctx.progress("understanding the instruction")
    read_as = state.get("read_as") or {}  # the model's English for an instruction in another language (api.py)
    english = read_as.get("routed_as", state["instruction"])
    route = dataclasses.replace(route_instruction(english, ctx.embedder), read_as=read_as)
    if ctx.config.view:  # the user's view outranks the router's (the reading is what follows other facets)
        route = dataclasses.replace(route, view=None if ctx.config.view == "reading" else ctx.config.view,
                                    other_path=None)
    elif route.doubtful:  # said at once, so that a user can stop a long run and choose the path
        ctx.progress(route.doubt())
    about_topic, view = route.about_topic, route.view
    if view == "meaning" and ctx.config.strategy != "labels" or ctx.config.categories:
        return read_facet(ctx, state, route)
    rows, _ = diverse_sample(ctx.vectors, ctx.config.understand_texts, seed=ctx.config.seed)
    # The first ask proposes at most `first_proposal_max` clusters (small models pad a long list with
    # combinations of earlier names); propose can still grow the list to k_max.
    k_min, k_max = state["k_min"], state["k_max"]
    if k_min != k_max:
        k_max = max(k_min, min(k_max, ctx.config.first_proposal_max))
    shown = [ctx.texts[r] for r in rows]
    messages = load_prompt("understand").messages(instruction=state["instruction"], texts=shown, k_min=k_min, k_max=k_max)
    answer = ctx.llm.decide(messages, understanding_schema(k_min, k_max, requested_words(shown)), step="understand")
    facet, read_by = route.facet_read(answer.facet, f'{state["instruction"]} {english}', load_prompt("understand").template_text)
    specs, mended = listed_as_rules(answer.clusters, facet, about_topic, shown)
    tax = update_from_specs(tx.Taxonomy(), specs)
    texts_are = corpus_noun(answer.texts_are, english, facet)
    trace = state.get("trace", []) + [{"step": "understand", "facet": facet, "facet_read_by": read_by,
                                       "texts_are": texts_are, "about_topic": about_topic,
                                       "model_about_topic": answer.about_topic, "view": view,
                                       "route": route.evidence(), "clusters": tax.names,
                                       **({"rules_retelling_a_text": mended} if mended else {})}]
    view = followed_view(ctx, state["instruction"], view, trace)
    return {"facet": facet, "texts_are": texts_are, "about_topic": about_topic, "view": view,
            "seen": rows.tolist(), "trace": trace, "notes": with_doubt(state, route), **tax.as_state()}


def read_facet(ctx: RunContext, state: AgentState, route: Route) -> dict:
    """Understanding on the meaning view, or where the user named the clusters (AgentConfig.categories): the
    model states the facet from the instruction alone. Its first list of values is not asked for: on the
    meaning view k comes from the texts' structure and each group is named from its own texts (writing the
    list from a sample was a run's longest call); the user's categories are the values otherwise. Where the
    model gives no valid facet, or one that says only what a facet is, the kind of facet the instruction was
    routed by stands in for it (Route.facet_read). What the texts are called is read from the instruction's English
    where it is in another language: the descriptions are English ("extraits de recherche web" gave "Web about")."""
    try:
        reading = ctx.llm.decide(load_prompt("facet").messages(instruction=state["instruction"]), facet_reading_schema(
            f'{state["instruction"]} {route.read_as.get("routed_as", "")}'), step="understand")
        facet, read_by = route.facet_read(reading.facet)
        texts_are = corpus_noun(reading.texts_are, route.read_as.get("routed_as", state["instruction"]), facet)
    except ModelError:  # an invalid answer, a timeout or no budget: the facet only words the names
        facet, read_by, texts_are = route.facet, "route", ""
    trace = state.get("trace", []) + [{"step": "understand", "facet": facet, "facet_read_by": read_by,
                                       "texts_are": texts_are,
                                       "about_topic": route.about_topic, "view": route.view,
                                       "route": route.evidence()}]
    view = followed_view(ctx, state["instruction"], route.view, trace)
    values = given_values(ctx.config.categories or [], facet, route.about_topic)
    return {"facet": facet, "texts_are": texts_are, "about_topic": route.about_topic, "view": view,
            "seen": [], "trace": trace, "notes": with_doubt(state, route), **values.as_state()}


def with_doubt(state: AgentState, route: Route) -> list[str]:
    """The run's notes, with the route's doubt where it has one (Route.doubt)."""
    return state.get("notes", []) + ([route.doubt()] if route.doubtful else [])


def followed_view(ctx: RunContext, instruction: str, view: str | None, trace: list) -> str | None:
    """The routed `view`, or where none follows the facet the model's reading (views.reading_view), unless the
    run keeps to the labels path."""
    if view is None and ctx.config.strategy != "labels":
        return reading_view(ctx, instruction, trace)
    return view


def route_after_understand(state: AgentState, runtime: Runtime[RunContext]) -> Literal["propose", "cluster_view"]:
    strategy = runtime.context.config.strategy
    if strategy == "kmeans" or (strategy == "auto" and state.get("view")):
        return "cluster_view"
    return "propose"


@node("cluster_view")
def cluster_view(state: AgentState, runtime: Runtime[RunContext]) -> dict:
    """Facets with a view that follows them: k-means on that view, each group named (views.cluster_on_view)."""
    return cluster_on_view(runtime.context, state)


@node("propose")
def propose(state: AgentState, runtime: Runtime[RunContext]) -> dict:
    ctx = runtime.context
    cfg = ctx.config
    tax = tx.Taxonomy.from_state(state)
    seen = list(state.get("seen", []))
    trace = list(state.get("trace", []))
    evidence = ""
    # Raw-embedding statistics describe the texts' dominant (usually topical) structure, so they are
    # evidence only when the instruction is about topic; a small model anchors on any number it is
    # shown, so they are computed and shown only with show_k_evidence.
    if state["k_min"] != state["k_max"] and cfg.show_k_evidence and cfg.propose_batches:
        best, stats = estimate_k_traced(ctx, ctx.vectors, state["k_min"], state["k_max"], trace)
        evidence = f"k-means silhouette is best at k={best}; the eigengap suggests k={stats['eigengap_k']}"
    for batch in range(cfg.propose_batches):
        if ctx.calls_left() < 2:
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
        specs, mended = listed_as_rules(answer.clusters, state["facet"], state.get("about_topic"), shown)
        tax = update_from_specs(tax, specs)
        seen += rows.tolist()
        trace.append({"step": "propose", "clusters": tax.names, **({"rules_retelling_a_text": mended} if mended else {})})
    return {"seen": seen, "trace": trace, **tax.as_state()}


def route_after_propose(state: AgentState, runtime: Runtime[RunContext]) -> Literal["label", "propagate"]:
    return "label" if runtime.context.calls_left() > 0 else "propagate"


@node("label")
def label(state: AgentState, runtime: Runtime[RunContext]) -> dict:
    ctx = runtime.context
    tax = tx.Taxonomy.from_state(state)
    budget = max(0, ctx.calls_left() - review_reserve(ctx.config))
    first = int(round(budget * (1 - ctx.config.uncertain_share)))
    rows, _ = diverse_sample(ctx.vectors, first, seed=ctx.config.seed, method="stratified")
    ctx.progress(f"labelling {counted(len(rows), 'text')} with {counted(len(tax.clusters), 'cluster')}")
    return labels_added(ctx, state, rows, tax, "label")


@node("propagate")
def propagate_labels(state: AgentState, runtime: Runtime[RunContext]) -> Command[Literal["label_uncertain", "review"]]:
    ctx = runtime.context
    tax = tx.Taxonomy.from_state(state)
    labels = calibrated_labels(state.get("labels", {}), state.get("label_scores", {}), tax, ctx.config.calibration)
    notes = list(state.get("notes", []))
    # Labels given before an earlier propagate dropped their cluster must not bring it back.
    labels = {r: c for r, c in labels.items() if c in set(tax.ids)}
    support = {c.id: sum(1 for v in labels.values() if v == c.id) for c in tax.clusters}
    floor = max(1, int(np.ceil(ctx.config.min_label_share * len(labels))))
    weak = [c for c in tax.clusters if support[c.id] < floor] if not ctx.config.categories else []
    if labels and weak and len(weak) < len(tax.clusters):
        tax = tax.without([c.id for c in weak])
        labels = {r: c for r, c in labels.items() if support[c] >= floor}
        notes.append(f"dropped {counted(len(weak), 'cluster')} chosen for fewer than {counted(floor, 'labelled text')}: "
                     f"{[c.name for c in weak]}")
    if labels:
        rows = np.array([int(r) for r in labels], dtype=np.int64)
        assignment, confidence, margin, _ = propagate(label_features(ctx, state.get("about_topic")), rows,
                                                      np.array(list(labels.values())), seed=ctx.config.seed)
    else:  # no model labels at all (budget spent): nearest cluster description
        notes.append("no texts were labelled by the model; texts were placed by similarity to cluster descriptions")
        sims = ctx.vectors @ description_vectors(ctx.embedder, tax).T
        order = np.sort(sims, axis=1)
        assignment = np.array(tax.ids)[sims.argmax(axis=1)]
        confidence = order[:, -1].astype(np.float32)
        margin = (order[:, -1] - order[:, -2]) if sims.shape[1] > 1 else np.ones(len(sims), np.float32)
    margin_ref = content_name("margin", margin)
    ctx.arrays[margin_ref] = margin
    update = {"assignment_ref": ctx.store_assignment(assignment.astype(np.int64), confidence),
              "margin_ref": margin_ref, "notes": notes, **tax.as_state()}
    uncertain_budget = ctx.calls_left() - review_reserve(ctx.config)
    if not state.get("active_learning_done") and labels and uncertain_budget > 0 and len(labels) < len(ctx.texts):
        return Command(update=update, goto="label_uncertain")
    return Command(update=update, goto="review")


@node("label_uncertain")
def label_uncertain(state: AgentState, runtime: Runtime[RunContext]) -> dict:
    ctx = runtime.context
    budget = max(0, ctx.calls_left() - review_reserve(ctx.config))
    done = np.array([int(r) for r in state.get("labels", {})], dtype=np.int64)
    rows = least_certain(ctx.arrays[state["margin_ref"]], budget, exclude=done)
    ctx.progress(f"asking the model about {len(rows)} low-margin texts")
    return {**labels_added(ctx, state, rows, tx.Taxonomy.from_state(state), "label_uncertain"),
            "active_learning_done": True}


@node("review")
def review(state: AgentState, runtime: Runtime[RunContext]) -> Command[Literal["review", "finalize"]]:
    """One review step (see review.py)."""
    return review_step(runtime.context, state)


@node("finalize")
def finalize(state: AgentState, runtime: Runtime[RunContext]) -> dict:
    """Make the result valid whatever happened: no empty clusters, k inside the range, every text once."""
    ctx = runtime.context
    tax = tx.Taxonomy.from_state(state)
    assignment, confidence = ctx.assignment(state)
    notes = list(state.get("notes", []))
    audit = list(state.get("audit", []))
    tax, empty = tx.drop_empty(assignment, tax)
    if empty:
        notes.append(f"dropped {counted(len(empty), 'empty cluster')}: {empty}")
    assignment, tax, merges = tx.merge_closest(ctx.vectors, assignment, tax, state["k_max"])
    audit += [{**entry, "by": "finalize: k above the allowed maximum"} for entry in merges]
    if len(tax.clusters) < state["k_min"] and not ctx.config.categories:  # fewer than asked: split the largest
        assignment, tax, _, splits = split_until(ctx.llm, state["instruction"], state.get("facet", ""), ctx.texts,
                                                 ctx.vectors, assignment, tax, dict(state.get("labels", {})),
                                                 state["k_min"], ctx.calls_left(), ctx.config.seed)
        audit += [{**entry, "by": "finalize: k below the allowed minimum"} for entry in splits]
        if len(tax.clusters) < state["k_min"]:
            notes.append(f"{counted(len(tax.clusters), 'cluster')}, fewer than the {state['k_min']} asked: the texts are too "
                         f"few or too alike to split further")
    if state.get("stop_reason") == "model budget exhausted":
        notes.append("the model budget ran out; the result is valid but the review was cut short")
    if ctx.config.outliers:
        assignment, found = in_corpus(ctx, state["instruction"], tax, assignment, ctx.config.max_outliers,
                                      ctx.calls_left())
        notes.append(f"{counted(found['outliers'], 'text')} {'fits' if found['outliers'] == 1 else 'fit'} no cluster: the "
                     "outlier group (cluster -1) "
                     f"({found['below_fence']} far from every other text, {found['checked_by_model']} checked by "
                     "the model)")
        tax, emptied = tx.drop_empty(assignment, tax)
        if emptied:
            notes.append(f"{counted(len(emptied), 'cluster')} held only outliers and {'was' if len(emptied) == 1 else 'were'} "
                         f"dropped: {emptied}")
    if not ctx.config.categories:  # the user's own names stay as written
        tax, renamed = without_shared_words(tax)
        tax, sharpened = renamed_broader(ctx, state, tax, assignment)
        audit += renamed + sharpened
    tops, levels = [], {"levels": 1}
    if ctx.config.hierarchy:
        tops, tax, levels = build_tops(ctx, state["instruction"], state.get("facet", ""), tax, assignment)
        audit += levels.get("renamed", [])
        notes += [(REFUSED_NOTE if e["asked"] else NO_CALL_NOTE).format(name=e["to"])
                  for e in levels.get("renamed", []) if e["named_by"] == "statistics"]
    tax, named_late, notes = name_skipped(ctx, state, tax, assignment, [t["name"] for t in tops], notes)
    audit += named_late
    if not ctx.config.categories:  # the user's own rules stay as written
        tax, tops, described = finished_rules(tax, tops, assignment, ctx.texts, state["instruction"],
                                              state.get("facet", ""), state.get("about_topic"))
        audit += described
    trace = list(state.get("trace", [])) + [{"step": "hierarchy", **levels}]
    problems = tx.validate(assignment, tax, len(ctx.texts))  # no k range: fewer than k_min is noted above
    if problems:  # a bug, not a user error: never hand out an invalid result
        raise RuntimeError(f"finalize produced an invalid result: {problems}")
    notes = standing_notes(notes, tax.names + [t["name"] for t in tops])  # none about a name renamed since
    return {"assignment_ref": ctx.store_assignment(assignment, confidence), "notes": notes, "audit": audit,
            "tops": tops, "trace": trace, **tax.as_state()}


def build_graph() -> StateGraph:
    builder = StateGraph(AgentState, context_schema=RunContext)
    for name, fn in (("ingest", ingest), ("understand", understand), ("cluster_view", cluster_view),
                     ("propose", propose), ("label", label), ("propagate", propagate_labels),
                     ("label_uncertain", label_uncertain), ("review", review), ("finalize", finalize)):
        builder.add_node(name, fn)
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
