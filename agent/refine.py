"""Refine a clustering by chat: merge, split, rename, move, add, re-instruct, change granularity, undo, ask.

Each message is one turn of a LangGraph thread (`<run thread>/chat`) on the run's checkpointer, so
the conversation and every state it produced persist (SQLite beside the CLI's output; in memory for
the Python API unless a folder is given) and a second process continues where the first stopped.

    interpret: the model turns the message into one operation (a schema-constrained decision)
    apply:     the operation runs on the stored taxonomy and assignment; only what it touches changes

The assignment is stored by name in the run's array store; an undo entry keeps the names of the
arrays before the change, so undo restores the earlier state exactly. A request that cannot be done
(an unknown cluster, a split of a one-text cluster) gets a reply that says why and changes nothing.
"""

from __future__ import annotations

import difflib
import functools
import re
import time
from dataclasses import dataclass
from typing import Any, Callable, Literal, TypedDict

import numpy as np
from langgraph.graph import END, START, StateGraph
from langgraph.runtime import Runtime
from pydantic import BaseModel, Field, create_model

from clusteragent.errors import ModelError
from clusteragent.prompts import as_data, load_prompt
from clusteragent.naming import name_group
from clusteragent.store import content_name
from clusteragent.tools import registry as review_tools
from clusteragent.tools import taxonomy as tx
from clusteragent.tools.registry import ToolError, Workspace

ACTIONS = ("merge", "split", "rename", "move", "add_cluster", "reinstruct", "granularity", "undo", "explain",
           "describe", "none")
CHANGES = ("merge", "split", "rename", "move", "add_cluster", "reinstruct", "granularity", "undo")
MATCH_CANDIDATES = 200  # texts nearest a description that a move or add_cluster considers
MATCH_CHECKS = 12  # of those, how many the model checks to find where matches end
MAX_UNDO = 20
EXPLAIN_MAX = 3


class RefineDecision(BaseModel):
    """One message read as an operation and its arguments (unused fields stay empty)."""

    action: Literal[ACTIONS]  # type: ignore[valid-type]
    clusters: list[str] = []
    new_name: str = ""
    description: str = ""
    ids: list[str] = []
    n: int = 0
    instruction: str = ""
    direction: str = ""
    reason: str = ""


class ActionChoice(BaseModel):
    # Only the action: measured with the 1.5B model, a `reason` field before it made the model write the
    # operation's name as the reason and "none" as the action (3 of 4 questions); alone, 13 of 13 right.
    action: Literal[ACTIONS] = Field(description="the operation the message asks for")  # type: ignore[valid-type]


NOT_LISTED = "(not in the list)"
_NAME = (str, Field(max_length=40, description="a short cluster name, 1-3 words"))
_RULE = (str, Field(max_length=160, description="one sentence that says which texts belong"))
_IDS = (list[str], Field(max_length=50, description="the text ids written in the message (empty if none)"))


@functools.lru_cache(maxsize=128)
def argument_schema(action: str, names: tuple[str, ...]) -> type[BaseModel] | None:
    """The arguments one action takes, and nothing else: a small model fills every field it is shown.

    A cluster is chosen from the listed names, or NOT_LISTED when the user named one that does not exist.
    """
    cluster = Literal[names + (NOT_LISTED,)]  # type: ignore[valid-type]
    one = (cluster, Field(description="the cluster the message names"))
    fields = {
        "merge": {"clusters": (list[cluster], Field(min_length=2, max_length=2, description="the two clusters")),
                  "new_name": (str, Field(max_length=40, description="a name for the merged cluster, or empty"))},
        "split": {"cluster": one, "n": (int, Field(ge=2, le=8, description="how many parts (2 unless the user says)"))},
        "rename": {"cluster": one, "new_name": _NAME,
                   "description": (str, Field(max_length=160, description="its new rule, or empty"))},
        "move": {"cluster": (cluster, Field(description="the cluster the texts should go to")), "ids": _IDS,
                 "description": (str, Field(max_length=160, description="the texts the user describes, if no ids"))},
        "add_cluster": {"new_name": _NAME, "description": _RULE},
        "reinstruct": {"instruction": (str, Field(min_length=3, max_length=400, description="the new instruction"))},
        "granularity": {"direction": (Literal["fewer", "more"], Field(description="fewer, broader or more, finer"))},
        "explain": {"ids": _IDS},
        "describe": {"cluster": one},
    }.get(action)
    return create_model(f"{action.title().replace('_', '')}Arguments", **fields) if fields else None


class Match(BaseModel):
    fits: Literal["yes", "no"] = Field(description="yes when the text fits the description")


class RefineState(TypedDict, total=False):
    instruction: str
    facet: str
    taxonomy: list[dict]
    next_id: int
    assignment_ref: str
    labels: dict[str, int]  # row -> cluster id, for texts the model labelled itself
    undo: list[dict]  # snapshots of the fields above, most recent last
    turns: list[dict]  # {message, action, reply, changed, k_before, k_after, moved}
    message: str
    decision: dict
    reply: str


SNAPSHOT_KEYS = ("instruction", "facet", "taxonomy", "next_id", "assignment_ref", "labels")


@dataclass
class RefineContext:
    texts: list[str]
    ids: list[Any]
    vectors: np.ndarray
    llm: Any  # StructuredLLM
    arrays: Any  # ArrayStore
    embed: Callable[[list[str]], np.ndarray]
    rerun: Callable[[str], dict]  # new instruction -> the state fields of a fresh clustering
    seed: int = 0
    max_calls_per_turn: int = 40

    def calls_left(self, started_at: int) -> int:
        return self.max_calls_per_turn - (self.llm.usage.calls - started_at)


# A request that cannot be done: the message says why. The review tools' error, so that their
# refusals (a taken name, a merge of one cluster) reach the user the same way.
CannotDo = ToolError


def _workspace(ctx: "RefineContext", tax: tx.Taxonomy, assignment: np.ndarray, labels: dict) -> Workspace:
    return Workspace(assignment=assignment, taxonomy=tax, labels=dict(labels), texts=ctx.texts, vectors=ctx.vectors,
                     index=None)


# ---------------------------------------------------------------- views of the state

def numbered(tax: tx.Taxonomy, assignment: np.ndarray) -> list[dict]:
    """Clusters numbered as in clusters.json: largest first, ties by id."""
    return [{"cluster": i, "id": c.id, "name": c.name, "description": c.description, "size": size}
            for i, (c, size) in enumerate(tx.by_size(assignment, tax))]


def resolve(ref: str, tax: tx.Taxonomy, assignment: np.ndarray) -> tx.Cluster:
    """A cluster by name (case ignored, near misses accepted) or by its number in clusters.json."""
    ref = str(ref).strip().strip("\"'“”")
    table = numbered(tax, assignment)
    listing = ", ".join(f'"{c["name"]}"' for c in table[:12]) + (" ..." if len(table) > 12 else "")
    if ref == NOT_LISTED:
        raise CannotDo(f"A cluster you named is not in the list. The clusters are: {listing}.")
    number = re.fullmatch(r"(?:cluster\s*)?#?(\d+)", ref, flags=re.IGNORECASE)
    if number and int(number.group(1)) < len(table):
        return tax.by_id(table[int(number.group(1))]["id"])
    found = tax.find(ref)
    if found is None:
        close = difflib.get_close_matches(ref.lower(), [c.name.lower() for c in tax.clusters], n=1, cutoff=0.85)
        found = tax.find(close[0]) if close else None
    if found is None:
        raise CannotDo(f'There is no cluster "{ref}". The clusters are: {listing}.')
    return found


_QUOTED = re.compile(r'"([^"]+)"|“([^”]+)”|(?<!\w)\'([^\']+)\'(?!\w)')


def quoted(message: str) -> list[str]:
    """The strings a message puts in quotes (straight, curly or single), in order."""
    return [next(g for g in m.groups() if g is not None) for m in _QUOTED.finditer(message)]


# ---------------------------------------------------------------- the operations

@dataclass
class Change:
    """The outcome of one operation: the new fields and what to tell the user."""

    text: str
    update: dict | None = None  # state fields that change (None: nothing changed)


def _stored(ctx: RefineContext, assignment: np.ndarray) -> str:
    ref = content_name("assignment", assignment)
    ctx.arrays[ref] = assignment
    return ref


def _fields(ctx: RefineContext, tax: tx.Taxonomy, assignment: np.ndarray, labels: dict[str, int]) -> dict:
    live = set(tax.ids)
    return {"taxonomy": tax.as_list(), "next_id": tax.next_id, "assignment_ref": _stored(ctx, assignment),
            "labels": {r: c for r, c in labels.items() if c in live}}


def _name_group(ctx: RefineContext, state: RefineState, rows: np.ndarray, taken: list[str], fallback: str,
                budget: int) -> tuple[str, str]:
    if budget < 1:
        return fallback, ""
    cent = ctx.vectors[rows].mean(axis=0)
    sample = rows[np.argsort(-(ctx.vectors[rows] @ cent))[:8]]
    spec = name_group(ctx.llm, state["instruction"], state.get("facet", ""), [ctx.texts[r] for r in sample], taken,
                      step="refine")
    return (spec.name, spec.description) if spec else (fallback, "")


def matching_rows(ctx: RefineContext, description: str, exclude: np.ndarray, budget: int) -> tuple[np.ndarray, str]:
    """The texts that fit a description: FAISS-style ranking by similarity, the cut found by the model.

    The nearest candidates are ranked by cosine similarity; the model checks a spread of them
    (yes/no) and the cut falls where its answers agree best with "everything above fits".
    """
    query = ctx.embed([description])[0]
    sims = ctx.vectors @ query
    sims[exclude] = -np.inf
    ranked = np.argsort(-sims, kind="stable")[:min(MATCH_CANDIDATES, int(np.isfinite(sims).sum()))]
    if len(ranked) == 0:
        return ranked, "no texts to consider"
    checks = min(MATCH_CHECKS, budget, len(ranked))
    if checks < 1:
        raise CannotDo("the model budget for this turn is spent; nothing was moved.")
    positions = np.unique(np.round(np.geomspace(1, len(ranked), checks)).astype(int) - 1)
    schema_msgs = [load_prompt("match").messages(description=description, text=ctx.texts[ranked[p]]) for p in positions]
    answers = ctx.llm.decide_many(schema_msgs, Match, step="refine", return_exceptions=True)
    verdict = {int(p): (a.fits == "yes") for p, a in zip(positions, answers) if not isinstance(a, Exception)}
    if not verdict:
        raise CannotDo("the model could not check which texts fit; nothing was moved.")
    best_cut, best_score = 0, -1
    for cut in [0] + [p + 1 for p in sorted(verdict)]:
        score = sum(1 for p, yes in verdict.items() if (p < cut) == yes)
        if score > best_score:
            best_cut, best_score = cut, score
    yes = sum(verdict.values())
    return ranked[:best_cut], f"the model checked {len(verdict)} candidate texts ({yes} fit)"


def op_merge(ctx, state, d: RefineDecision, tax, assignment, labels) -> Change:
    if len(d.clusters) < 2:
        raise CannotDo("A merge needs two clusters; name both.")
    ws = _workspace(ctx, tax, assignment, labels)
    text = review_tools.merge(ws, [resolve(r, tax, assignment).name for r in d.clusters[:2]], d.new_name)
    return Change(text, _fields(ctx, ws.taxonomy, ws.assignment, ws.labels))


def _split_one(ctx, state, target, n, tax, assignment, labels, budget):
    from clusteragent.splitting import plan_split

    plan = plan_split(ctx.llm, state["instruction"], state.get("facet", ""), target, ctx.texts, ctx.vectors,
                      np.flatnonzero(assignment == target.id), n=n, taken=tax.names, calls_left=budget,
                      seed=ctx.seed)
    if isinstance(plan, str):
        raise CannotDo(plan[0].upper() + plan[1:])
    assignment, tax, entry = tx.split(assignment, tax, target.id, plan.members, plan.parts, plan.specs)
    labels = {r: c for r, c in labels.items() if c != target.id}
    labels.update({r: entry["into"][p] for r, p in plan.labels.items()})
    return tax, assignment, labels, entry


def op_split(ctx, state, d, tax, assignment, labels, budget) -> Change:
    if len(d.clusters) != 1:
        raise CannotDo("A split needs exactly one cluster; name it.")
    target = resolve(d.clusters[0], tax, assignment)
    n = d.n if d.n >= 2 else 2
    tax, assignment, labels, entry = _split_one(ctx, state, target, n, tax, assignment, labels, budget)
    parts = " and ".join(f'"{m}" ({s})' for m, s in zip(entry["names"], entry["sizes"]))
    return Change(f'Split "{target.name}" into {parts}.', _fields(ctx, tax, assignment, labels))


def op_rename(ctx, state, d, tax, assignment, labels) -> Change:
    if len(d.clusters) != 1 or not d.new_name.strip():
        raise CannotDo("A rename needs one cluster and its new name.")
    ws = _workspace(ctx, tax, assignment, labels)
    text = review_tools.rename(ws, [resolve(d.clusters[0], tax, assignment).name], d.new_name, d.description)
    return Change(text, _fields(ctx, ws.taxonomy, ws.assignment, ws.labels))


def _rows_for_ids(ctx: RefineContext, ids: list[str]) -> np.ndarray:
    by_id = {str(i): r for r, i in enumerate(ctx.ids)}
    unknown = [i for i in ids if str(i).strip() not in by_id]
    if unknown:
        raise CannotDo(f"No text has the id(s) {', '.join(map(str, unknown[:10]))}.")
    return np.array([by_id[str(i).strip()] for i in ids], dtype=np.int64)


def op_move(ctx, state, d, tax, assignment, labels, budget) -> Change:
    if len(d.clusters) != 1:
        raise CannotDo("A move needs the one cluster the texts should go to.")
    target = resolve(d.clusters[0], tax, assignment)
    if d.ids:
        rows, how = _rows_for_ids(ctx, d.ids), "by id"
    elif d.description.strip():
        rows, how = matching_rows(ctx, d.description, np.flatnonzero(assignment == target.id), budget)
    else:
        raise CannotDo("Say which texts to move: their ids, or a description of them.")
    rows = rows[assignment[rows] != target.id]
    if len(rows) == 0:
        return Change(f'No texts needed moving into "{target.name}" ({how}).')
    new = assignment.copy()
    new[rows] = target.id
    labels = dict(labels, **{str(int(r)): target.id for r in rows})  # the user's word is a label
    tax, empty = tx.drop_empty(new, tax)
    note = f" Emptied and removed: {', '.join(empty)}." if empty else ""
    return Change(f'Moved {len(rows)} text(s) into "{target.name}" ({how}).{note}', _fields(ctx, tax, new, labels))


def op_add_cluster(ctx, state, d, tax, assignment, labels, budget) -> Change:
    name = d.new_name.strip()
    if not name or not d.description.strip():
        raise CannotDo("A new cluster needs a name and a description of the texts that belong to it.")
    if tax.find(name) is not None:
        raise CannotDo(f'There is already a cluster "{name}"; use move to put texts into it.')
    rows, how = matching_rows(ctx, d.description, np.array([], dtype=np.int64), budget)
    if len(rows) == 0:
        raise CannotDo(f'No texts fit "{d.description.strip()}" ({how}); no cluster was added.')
    tax, cid = tax.added(name, d.description)
    new = assignment.copy()
    new[rows] = cid
    labels = dict(labels, **{str(int(r)): cid for r in rows})
    tax, empty = tx.drop_empty(new, tax)
    note = f" Emptied and removed: {', '.join(empty)}." if empty else ""
    return Change(f'Added "{name}" with {len(rows)} text(s) ({how}).{note}', _fields(ctx, tax, new, labels))


def op_granularity(ctx, state, d, tax, assignment, labels, budget) -> Change:
    k = len(tax.clusters)
    if d.direction == "fewer":
        if k <= 2:
            raise CannotDo(f"There are {k} clusters; fewer would leave nothing to tell apart.")

        def merged_name(tax, assignment, a, b):
            nonlocal budget
            rows = np.flatnonzero((assignment == a) | (assignment == b))
            taken = [c.name for c in tax.clusters if c.id not in (a, b)]
            fallback = f"{tax.by_id(a).name} / {tax.by_id(b).name}"
            name, description = _name_group(ctx, state, rows, taken, fallback, budget)
            budget -= 1
            return name, description or None

        assignment, tax, entries = tx.merge_closest(ctx.vectors, assignment, tax,
                                                    max(2, min(k - 1, int(np.ceil(k * 2 / 3)))), merged_name)
        for entry in entries:
            a, b = entry["merged"]
            labels = {r: (a if c == b else c) for r, c in labels.items()}
        merged = [f'"{e["names"][0]}" + "{e["names"][1]}" -> "{e["name"]}"' for e in entries]
        return Change("Fewer, broader clusters: " + "; ".join(merged) + ".", _fields(ctx, tax, assignment, labels))
    if d.direction == "more":
        counts = tx.sizes(assignment, tax)
        largest = sorted(tax.clusters, key=lambda c: -counts[c.id])[:max(1, int(np.ceil(k / 3)))]
        done, refused = [], []
        for target in largest:
            try:
                tax, assignment, labels, entry = _split_one(ctx, state, target, 2, tax, assignment, labels, budget)
                budget -= 12
                done.append(f'"{target.name}" -> ' + " + ".join(f'"{m}"' for m in entry["names"]))
            except CannotDo as e:
                refused.append(str(e))
        if not done:
            raise CannotDo("No cluster could be split: " + " ".join(refused))
        return Change("More, finer clusters: " + "; ".join(done) + ".", _fields(ctx, tax, assignment, labels))
    raise CannotDo('Say whether you want "fewer, broader" or "more, finer" clusters.')


def op_explain(ctx, state, d, tax, assignment, labels) -> Change:
    if not d.ids:
        raise CannotDo("Give the id of the text to explain.")
    rows = _rows_for_ids(ctx, d.ids[:EXPLAIN_MAX])
    ids = [c.id for c in tax.clusters]
    cents = tx.centroids(ctx.vectors, assignment, ids)
    lines = []
    for text_id, r in zip(d.ids, rows):
        cluster = tax.by_id(int(assignment[r]))
        sims = cents @ ctx.vectors[r]
        order = np.argsort(-sims)
        runner_up = next(tax.by_id(ids[j]) for j in order if ids[j] != cluster.id) if len(ids) > 1 else None
        how = ("the model chose it for this text" if str(int(r)) in labels
               else "the classifier placed it from texts the model labelled")
        line = (f'Text {text_id} ({as_data(ctx.texts[r], 120)}) is in "{cluster.name}" ({cluster.description}): '
                f"{how}.")
        if runner_up is not None:
            line += f' The next closest cluster is "{runner_up.name}".'
        lines.append(line)
    return Change(" ".join(lines))


def op_describe(ctx, state, d, tax, assignment, labels) -> Change:
    if len(d.clusters) != 1:
        raise CannotDo("Name the one cluster to describe.")
    target = resolve(d.clusters[0], tax, assignment)
    members = np.flatnonzero(assignment == target.id)
    cent = ctx.vectors[members].mean(axis=0)
    reps = members[np.argsort(-(ctx.vectors[members] @ cent))[:5]]
    examples = "; ".join(f"[{ctx.ids[r]}] {as_data(ctx.texts[r], 100)}" for r in reps)
    return Change(f'"{target.name}" ({target.description}) holds {len(members)} of {len(assignment)} texts. '
                  f"Typical texts: {examples}")


# ---------------------------------------------------------------- the graph

def interpret(state: RefineState, runtime: Runtime[RefineContext]) -> dict:
    """Two small decisions: which operation, then that operation's arguments."""
    ctx = runtime.context
    tax = tx.Taxonomy.from_list(state["taxonomy"], state.get("next_id"))
    assignment = ctx.arrays[state["assignment_ref"]]
    variables = {"instruction": state["instruction"], "message": state["message"],
                 "clusters": numbered(tax, assignment)}
    try:
        choice = ctx.llm.decide(load_prompt("refine").messages(**variables, action=""), ActionChoice, step="refine")
        decision = {"action": choice.action}
        schema = argument_schema(choice.action, tuple(tax.names))
        if schema is not None:
            messages = load_prompt("refine").messages(**variables, action=choice.action)
            arguments = ctx.llm.decide(messages, schema, step="refine").model_dump()
            if "cluster" in arguments:
                arguments["clusters"] = [arguments.pop("cluster")]
            decision.update(arguments)
    except ModelError as e:
        return {"decision": {"action": "none", "reason": f"the model gave no usable answer ({e})"}}
    message = state["message"]
    known = {str(i) for i in ctx.ids}
    # An id is something the message spells out: a known id, or one word the user may have mistyped.
    decision["ids"] = [i for i in decision.get("ids", [])
                       if _written_in(i, message) and (i.strip() in known or len(i.split()) == 1)]
    fresh = [q for q in quoted(message) if tax.find(q) is None]
    named = named_clusters(message, tax, assignment)
    wants_name = {"rename": 1, "add_cluster": 0, "merge": 2}.get(decision["action"])
    if fresh and wants_name is not None and len(named) >= wants_name:
        decision["new_name"] = fresh[0]  # a quoted name beside the named clusters is the new name
    if decision["action"] == "reinstruct" and not _written_in(decision.get("instruction", ""), message):
        decision["instruction"] = message  # the model's paraphrase strayed from the message: use its words
    if decision["action"] == "move" and not decision["ids"] and not decision.get("description", "").strip():
        decision["description"] = message
    decision["clusters"] = [_typed_name(c, state["message"], tax.names) for c in decision.get("clusters", [])]
    if named and decision.get("clusters"):
        # Clusters the user named exactly ("A", cluster 3) outrank the model's choice, which a small model
        # gets wrong even when the names are quoted in front of it.
        decision["clusters"] = named[:max(len(decision["clusters"]), 2 if decision["action"] == "merge" else 1)]
    return {"decision": decision}


def named_clusters(message: str, tax: tx.Taxonomy, assignment: np.ndarray) -> list[str]:
    """The clusters a message names exactly, in order: quoted names and "cluster N" numbers."""
    table = numbered(tax, assignment)
    found: list[tuple[int, str]] = []
    for m in _QUOTED.finditer(message):
        cluster = tax.find(next(g for g in m.groups() if g is not None))
        if cluster is not None:
            found.append((m.start(), cluster.name))
    for m in re.finditer(r"\bcluster\s*#?(\d+)\b", message, flags=re.IGNORECASE):
        if int(m.group(1)) < len(table):
            found.append((m.start(), table[int(m.group(1))]["name"]))
    return list(dict.fromkeys(name for _, name in sorted(found)))


def _written_in(text_id: str, message: str) -> bool:
    """Ids must appear in the message: a small model fills an id list with ids nobody asked about."""
    return bool(text_id.strip()) and re.search(r"(?<![\w-])" + re.escape(text_id.strip()) + r"(?![\w-])", message,
                                              flags=re.IGNORECASE) is not None


def _typed_name(choice: str, message: str, names: list[str]) -> str:
    """For NOT_LISTED, the name the user typed (a quoted one that is not a cluster), to say it in the reply."""
    if choice != NOT_LISTED:
        return choice
    typed = [q for q in quoted(message) if q.strip().lower() not in {n.lower() for n in names}]
    return typed[0] if typed else NOT_LISTED


def apply(state: RefineState, runtime: Runtime[RefineContext]) -> dict:
    ctx = runtime.context
    started_calls = ctx.llm.usage.calls
    d = RefineDecision.model_validate(state["decision"])
    tax = tx.Taxonomy.from_list(state["taxonomy"], state.get("next_id"))
    assignment = ctx.arrays[state["assignment_ref"]]
    labels = dict(state.get("labels", {}))
    budget = ctx.calls_left(started_calls)
    k_before = len(tax.clusters)
    change = None
    try:
        unknown = [q for q in quoted(state["message"]) if q.strip().lower() not in
                   {d.new_name.strip().lower(), d.instruction.strip().lower(), d.description.strip().lower()}
                   and d.action in ("merge", "split", "rename", "move", "describe")]
        for q in unknown:  # a quoted name the user typed must be a cluster, or nothing is done
            if not any(q.strip().lower() == c.name.lower() for c in tax.clusters):
                resolve(q, tax, assignment)
        if d.action == "merge":
            change = op_merge(ctx, state, d, tax, assignment, labels)
        elif d.action == "split":
            change = op_split(ctx, state, d, tax, assignment, labels, budget)
        elif d.action == "rename":
            change = op_rename(ctx, state, d, tax, assignment, labels)
        elif d.action == "move":
            change = op_move(ctx, state, d, tax, assignment, labels, budget)
        elif d.action == "add_cluster":
            change = op_add_cluster(ctx, state, d, tax, assignment, labels, budget)
        elif d.action == "granularity":
            change = op_granularity(ctx, state, d, tax, assignment, labels, budget)
        elif d.action == "explain":
            change = op_explain(ctx, state, d, tax, assignment, labels)
        elif d.action == "describe":
            change = op_describe(ctx, state, d, tax, assignment, labels)
        elif d.action == "reinstruct":
            if not d.instruction.strip():
                raise CannotDo("Say the new instruction, e.g. 'cluster by sentiment instead'.")
            fields = ctx.rerun(d.instruction.strip())
            change = Change(f"Clustered again by: {d.instruction.strip()}", fields)
        elif d.action == "undo":
            if not state.get("undo"):
                raise CannotDo("There is nothing to undo.")
            change = Change("Undid the last change.", dict(state["undo"][-1]))
        else:
            raise CannotDo("I can merge, split, rename, move texts, add a cluster, re-cluster by a new instruction, "
                           "make clusters fewer or finer, undo, explain a text or describe a cluster."
                           + (f" ({d.reason})" if d.reason else ""))
    except CannotDo as e:
        change = Change(f"Nothing changed: {e}")
    update: dict = {}
    moved = 0
    k_after = k_before
    if change.update is not None:
        new_assignment = ctx.arrays[change.update["assignment_ref"]]
        moved = int((new_assignment != assignment).sum())
        k_after = len(change.update["taxonomy"])
        snapshot = {k: state.get(k) for k in SNAPSHOT_KEYS}
        undo = list(state.get("undo", []))
        undo = undo[:-1] if d.action == "undo" else (undo + [snapshot])[-MAX_UNDO:]
        update.update(change.update, undo=undo)
    text = change.text
    if change.update is not None:
        text += f" k: {k_before} -> {k_after}; {moved} text(s) changed cluster."
    turn = {"message": state["message"], "action": d.action, "reply": text, "changed": change.update is not None,
            "k_before": k_before, "k_after": k_after, "moved": moved,
            "model_calls": ctx.llm.usage.calls - started_calls + 1, "at": time.strftime("%Y-%m-%dT%H:%M:%S")}
    return {**update, "reply": text, "turns": list(state.get("turns", [])) + [turn]}


def build_refine_graph():
    builder = StateGraph(RefineState, context_schema=RefineContext)
    builder.add_node("interpret", interpret)
    builder.add_node("apply", apply)
    builder.add_edge(START, "interpret")
    builder.add_edge("interpret", "apply")
    builder.add_edge("apply", END)
    return builder


@dataclass
class Reply:
    text: str
    action: str
    changed: bool
    k_before: int
    k_after: int
    moved: int


class RefineSession:
    """A chat over one fitted run: `chat(message)` applies one turn and returns the reply.

    Create it with `RefineSession.from_agent(agent)` after `agent.fit(...)`, or `RefineSession.open(out_dir)`
    for a run folder written by `clusteragent run` (any process, any time later).
    """

    def __init__(self, agent, base_state: dict, thread_id: str):
        self.agent = agent
        self.corpus = agent._corpus
        self.thread_id = thread_id
        self.chat_thread = f"{thread_id}/chat"
        self.base_state = base_state
        self.graph = build_refine_graph().compile(checkpointer=agent._store.checkpointer)
        self._config = {"configurable": {"thread_id": self.chat_thread}}
        self._reinstructs = 0
        from clusteragent.structured import StructuredLLM

        self.llm = StructuredLLM(agent.chat_model(), journal=None)

    @classmethod
    def from_agent(cls, agent) -> "RefineSession":
        state = agent.state_
        return cls(agent, {k: state.get(k) for k in SNAPSHOT_KEYS}, agent._thread_id)

    @classmethod
    def open(cls, out_dir, model: str | None = None, progress: bool = False) -> "RefineSession":
        """The chat over the run in `out_dir` (see ClusterAgent.load)."""
        from clusteragent.api import ClusterAgent

        return cls.from_agent(ClusterAgent.load(out_dir, model=model, progress=progress))

    @property
    def vectors(self) -> np.ndarray:
        ctx = getattr(self.agent, "_ctx", None)
        if ctx is not None and ctx.vectors is not None:
            return ctx.vectors
        if getattr(self, "_vectors", None) is None:
            from clusteragent.tools.embeddings import Embedder

            self._vectors, _ = Embedder.from_settings(self.agent.settings).embed(self.corpus.texts)
        return self._vectors

    def _embed(self, texts: list[str]) -> np.ndarray:
        from clusteragent.tools.embeddings import Embedder

        if getattr(self, "_embedder", None) is None:
            self._embedder = Embedder.from_settings(self.agent.settings.model_copy(update={"embedding_cache": False,
                                                                                        "progress": False}))
        return self._embedder.embed(texts)[0]

    def _rerun(self, instruction: str) -> dict:
        self._reinstructs += 1
        thread = f"{self.thread_id}/reinstruct-{len(self.state.get('turns', []))}-{self._reinstructs}"
        state, _, _, _ = self.agent._run_graph(self.corpus, instruction, thread, vectors=self.vectors)
        return {k: state.get(k) for k in SNAPSHOT_KEYS}

    @property
    def state(self) -> dict:
        return self.graph.get_state(self._config).values

    def chat(self, message: str) -> Reply:
        from clusteragent.errors import ConfigError

        if not message or not message.strip():
            raise ConfigError("say what to change, e.g. 'merge \"A\" and \"B\"'.")
        ctx = RefineContext(texts=self.corpus.texts, ids=list(self.corpus.ids), vectors=self.vectors, llm=self.llm,
                            arrays=self.agent._store.arrays, embed=self._embed, rerun=self._rerun,
                            seed=self.agent.config.seed)
        start = {"message": message}
        if not self.state:  # the first turn starts from the run's result
            start = {**self.base_state, "undo": [], "turns": [], "message": message}
        state = self.graph.invoke(start, context=ctx, config=self._config)
        turn = state["turns"][-1]
        return Reply(text=state["reply"], action=turn["action"], changed=turn["changed"], k_before=turn["k_before"],
                     k_after=turn["k_after"], moved=turn["moved"])

    def result(self, run: dict | None = None):
        """The current clustering as a ClusterResult (`run` is the run record to extend)."""
        from clusteragent.api import build_result

        state = self.state or {**self.base_state, "turns": []}
        tax = tx.Taxonomy.from_list(state["taxonomy"], state.get("next_id"))
        assignment = self.agent._store.arrays[state["assignment_ref"]]
        base = run if run is not None else (self.agent.result_.run if self.agent.result_ is not None else {})
        confidence = _confidence(self.agent._store.arrays, state, self.base_state, assignment)
        record = {**base, "instruction": state["instruction"], "facet": state.get("facet"),
                  "refinements": state.get("turns", []), "chat_thread_id": self.chat_thread}
        return build_result(self.corpus, self.vectors, tax, assignment, confidence, record)


def _confidence(arrays, state: dict, base: dict, assignment: np.ndarray) -> np.ndarray:
    """The classifier's confidence where it still applies; 1.0 for texts a person or operation placed since."""
    ref = state["assignment_ref"] + ".confidence"
    if ref in arrays:
        return arrays[ref]
    original = arrays[base["assignment_ref"]]
    conf = np.array(arrays[base["assignment_ref"] + ".confidence"], dtype=np.float32)
    conf[original != assignment] = 1.0
    return conf
