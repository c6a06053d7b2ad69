"""Refine a clustering by chat: each message is one turn of a LangGraph thread on the run's checkpointer.

    interpret: the model turns the message into one operation and its arguments (refine_schemas)
    apply:     the operation (OPERATIONS: refine_ops, refine_matching, refine_questions) runs on the stored
               taxonomy and assignment

The thread is `<run thread>/chat`, so the conversation and every state it produced persist (SQLite in
the run folder; in memory for the Python API unless a folder is given) and a second process continues
where the first stopped. The assignment is stored by name in the run's array store; an undo entry keeps
the names of the arrays before the change, so undo restores the earlier state exactly.
"""

from __future__ import annotations

import contextlib
import functools
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, TypedDict

import numpy as np
from langgraph.graph import END, START, StateGraph
from langgraph.runtime import Runtime

from clusteragent.errors import ConfigError, ModelError, counted
from clusteragent.hierarchy import reconcile, top_count_change, top_listing, with_tops
from clusteragent.instruction_language import in_english
from clusteragent.prompt_state import kept_prompt_state
from clusteragent.prompts import load_prompt
from clusteragent.refine_names import (
    as_written,
    described_in,
    destination,
    found_in,
    merged_into,
    mostly_written_in,
    named_clusters,
    numbered,
    operation_read,
    resolve,
    typed_name,
    unknown_quoted,
    with_written,
    written_ids,
    written_in,
)
from clusteragent.refine_parts import parts_asked, parts_named, split_criterion
from clusteragent.refine_questions import CAN_DO, overview_for
from clusteragent.refine_schemas import OPERATIONS, ActionChoice, argument_schema
from clusteragent.refine_turn import NAMING_ACTIONS, CannotDo, Change, RefineContext, RefineDecision, Turn, snapshot
from clusteragent.result import ClusterResult, build_result, current_confidence, standing_notes
from clusteragent.run_lock import RunLock
from clusteragent.stated import stated_count, stated_values
from clusteragent.structured import Usage
from clusteragent.tools import taxonomy as tx
from clusteragent.tools.corpus import work_texts
from clusteragent.views import assignment_features, clustered_view

MAX_UNDO = 20
UNDO_MESSAGES = ("undo", "undo that", "undo the last change")


class RefineState(TypedDict, total=False):
    instruction: str
    facet: str
    about_topic: bool  # whether the facet is subject matter (the run's routing decision)
    clustered_view: str | None  # the view the clusters were made on (views.clustered_view), None for labels
    taxonomy: list[dict]
    next_id: int
    assignment_ref: str
    labels: dict[str, int]  # row -> cluster id, for texts the model labelled itself
    tops: list[dict]  # the top level, where the run has two (hierarchy.py)
    notes: list[str]  # the run's notes on this clustering (a new instruction's run has its own)
    undo: list[dict]  # snapshots of the fields above, most recent last
    turns: list[dict]  # {message, action, reply, changed, k_before, k_after, moved}
    base_ref: str  # the assignment whose confidences still hold, where texts were added since the run
    message: str
    asked_as: str  # the message in English, for the checks that read English words (instruction_language)
    decision: dict
    reply: str


# ---------------------------------------------------------------- the graph

def cluster_listing(state: RefineState, assignment: np.ndarray) -> list[dict]:
    """The clusters, then the top clusters, as the refine prompt lists them to the model."""
    leaves, tops = tx.Taxonomy.from_state(state), state.get("tops") or []
    return numbered(leaves, assignment) + top_listing(tops, assignment, leaves)


def interpret(state: RefineState, runtime: Runtime[RefineContext]) -> dict:
    """Two small decisions: which operation, then that operation's arguments; then what the message
    spells out itself (cluster names, ids, a quoted new name) outranks the model's reading."""
    ctx = runtime.context
    leaves, tops = tx.Taxonomy.from_state(state), state.get("tops") or []
    tax = with_tops(leaves, tops)  # what a message may name: the clusters, and the top clusters over them
    assignment = ctx.arrays[state["assignment_ref"]]
    variables = {"instruction": state["instruction"], "message": state["message"],
                 "clusters": cluster_listing(state, assignment)}
    try:
        choice = ctx.llm.decide(load_prompt("refine").messages(**variables, action=""), ActionChoice, step="refine")
        action, asked_as = operation_read(ctx.llm, state["message"], state["asked_as"], choice.action, tax.names)
        decision = {"action": action}
        schema = argument_schema(action, tuple(tax.names))
        if schema is not None:
            messages = load_prompt("refine").messages(**variables, action=action)
            arguments = ctx.llm.decide(messages, schema, step="refine").model_dump()
            if "cluster" in arguments:
                arguments["clusters"] = [arguments.pop("cluster")]
            decision.update(arguments)
    except ModelError as e:
        return {"decision": {"action": "none", "reason": f"the model gave no usable answer ({e})"}}
    message = state["message"]
    known = {str(i) for i in ctx.ids}
    # An id is something the message spells out: a known id, or one word the user may have mistyped (not the
    # full stop the model copied from 'Put "Oil change" under "Car care".').
    decision["ids"] = [i for i in decision.get("ids", []) if written_in(i, message) and any(ch.isalnum() for ch in i)
                       and (i.strip() in known or len(i.split()) == 1)]
    if decision["action"] == "explain" and not known.intersection(decision["ids"]):  # a name given as the id
        decision["ids"] = written_ids(message, known) or decision["ids"]
    fresh = unknown_quoted(message, tax)
    named = named_clusters(message, tax, assignment)
    wants_name = {"rename": 1, "add_cluster": 0, "merge": 2}.get(decision["action"])
    given = decision.get("new_name", "")  # a quoted name beside the named clusters is the new name, unless it is
    if fresh and wants_name is not None and len(named) >= wants_name and not (fresh[0] in given and found_in(given, message)):
        decision["new_name"] = fresh[0]  # part of the model's, which the message writes ('to rain / "storms" 2')
    if decision["action"] in ("merge", "rename"):
        # A name or rule the message does not give is the model's own ("Travel and Car Maintenance" for a
        # merge the user named nothing for, a rule copied from the cluster list): dropped, so the operation
        # has the model name the cluster as a run does, under the naming rules, or keeps its rule.
        decision["new_name"] = as_written(decision.get("new_name", ""), message, tax.names)
        if not mostly_written_in(decision.get("description", ""), message):
            decision["description"] = ""
    if decision["action"] == "reinstruct" and not written_in(decision.get("instruction", ""), message):
        decision["instruction"] = message  # the model's paraphrase strayed from the message: use its words
    if decision["action"] == "find" and (fresh or not mostly_written_in(decision.get("description", ""), message)):
        decision["description"] = fresh[0] if fresh else described_in(message) or message  # a quote, what it is about
    stated = stated_count(asked_as)
    if decision["action"] == "granularity" and stated is not None and not named:
        # "make it 5 clusters", "at most 10": the message's own number, the clusters now kept where within it
        decision["n"] = min(max(k := len(leaves.clusters), stated.k_min or 1), stated.k_max or k)
    if decision["action"] == "reinstruct":  # what the model's instruction dropped of the values or number asked
        values = stated_values(asked_as)
        if values and not stated_values(decision["instruction"]):
            decision["instruction"] += f" ({', '.join(values)})"
        elif stated is not None and stated_count(decision["instruction"]) is None:
            decision["instruction"] += f" ({stated.words})"
    if decision["action"] == "split":
        # The model's count is its own (6 for "into two"); split "by the platform", the model finds how many.
        decision["by"] = split_criterion(message, tax.names)
        decision["parts"] = parts_named(message, tax.names)  # "into anger and sadness": the parts' own names
        decision["n"] = len(decision["parts"]) or parts_asked(asked_as, 0 if decision["by"] else 2)
    if decision["action"] == "move" and not decision["ids"]:  # the texts as the message describes them: the
        # model copied the target's rule from the list ("Texts about cooking, meals, and recipes.")
        decision["description"] = described_in(message, decision.get("description", ""), tax.names) or message
    decision["clusters"] = [typed_name(c, message, tax.names) for c in decision.get("clusters", [])]
    if decision["action"] in NAMING_ACTIONS:
        decision["clusters"] = with_written(decision["clusters"], message, tax.names, decision["action"])
    if named and decision.get("clusters"):
        # Clusters the user named exactly ("A", cluster 3) outrank the model's choice, which a small model
        # gets wrong even when the names are in front of it.
        decision["clusters"] = named if decision["action"] == "merge" else named[:max(len(decision["clusters"]), 1)]
    if decision["action"] == "move" and (to := destination(message, tax, assignment)):
        decision["clusters"] = [to]  # 'Move "Travel alerts" into "Travel"': the model chose the first it read
    if decision["action"] == "merge":  # 'merge "A" into "B"' keeps B's name
        decision["new_name"] = merged_into(message, decision["clusters"], tax, assignment, decision["new_name"])
        written = [c for c in decision["clusters"] if c in named or found_in(c, message)]
        decision["description"] = described_in(message, decision["description"], tax.names)
        if len(written) < 2 and decision["description"] and not fresh:  # "Merge everything about sports"
            decision["clusters"] = written  # with the clusters the description fits, each checked by the model
    return {"decision": decision, "asked_as": asked_as}


def apply(state: RefineState, runtime: Runtime[RefineContext]) -> dict:
    """Run the decided operation; a reply either way, and an undo entry when something changed."""
    ctx = runtime.context
    d = RefineDecision.model_validate(state["decision"])
    turn = Turn(ctx, state, tx.Taxonomy.from_state(state), ctx.arrays[state["assignment_ref"]],
                dict(state.get("labels", {})), ctx.max_calls_per_turn)
    k_before = len(turn.tax.clusters)
    try:
        if d.action in NAMING_ACTIONS:
            ignored = {d.new_name.strip().lower(), d.instruction.strip().lower(), d.description.strip().lower(),
                       *(p.lower() for p in d.parts)}
            named = with_tops(turn.tax, turn.tops)
            for q in unknown_quoted(state["message"], named):  # a quoted name must be a cluster, or nothing is done
                turn.refuse_hidden_top(q)
                if not any(q.strip().lower() in given for given in ignored):  # a word quoted in the new name
                    resolve(q, named, turn.assignment)
        operation = OPERATIONS.get(d.action) or (None if d.reason else overview_for(state["asked_as"]))
        if operation is None:
            raise CannotDo(CAN_DO + (f" ({d.reason})" if d.reason else ""))
        change = operation(turn, d)
    except CannotDo as e:
        change = Change(f"Nothing changed: {e}")
    update: dict = {}
    moved, k_after, text = 0, k_before, change.text
    if change.update is not None:
        moved = int((ctx.arrays[change.update["assignment_ref"]] != turn.assignment).sum())
        k_after = len(change.update["taxonomy"])
        undo = list(state.get("undo", []))
        undo = undo[:-1] if d.action == "undo" else (undo + [snapshot(state)])[-MAX_UNDO:]
        update.update(change.update, undo=undo)
        if "tops" not in change.update:  # leaves changed: the top level follows (hierarchy.reconcile)
            update["tops"] = reconcile(state.get("tops") or [], tx.Taxonomy.from_state(change.update),
                                       ctx.arrays[change.update["assignment_ref"]], ctx.vectors, turn.assignment)
        top_change = top_count_change(state.get("tops") or [], update["tops"])
        text += f" k: {k_before} -> {k_after};{top_change} {counted(moved, 'text')} changed cluster."
    record = {"message": state["message"], "action": d.action, "reply": text, "changed": change.update is not None,
              "k_before": k_before, "k_after": k_after, "moved": moved,
              "model_calls": ctx.llm.usage.calls - ctx.calls_at_start, "at": time.strftime("%Y-%m-%dT%H:%M:%S")}
    return {**update, "reply": text, "turns": list(state.get("turns", [])) + [record]}


def build_refine_graph() -> StateGraph:
    builder = StateGraph(RefineState, context_schema=RefineContext)
    builder.add_node("interpret", interpret)
    builder.add_node("apply", apply)
    builder.add_edge(START, "interpret")
    builder.add_edge("interpret", "apply")
    builder.add_edge("apply", END)
    return builder


# ---------------------------------------------------------------- the session

class FittedRun(Protocol):
    """What a chat needs of a fitted run (a fitted or loaded ClusterAgent is one)."""

    corpus_: Any  # the Corpus
    store_: Any  # the RunStore: arrays and checkpointer
    state_: dict  # the run's final graph state
    thread_id_: str
    config: Any  # AgentConfig (its seed)
    progress: bool  # whether long work shows progress bars

    @property
    def vectors_(self) -> np.ndarray: ...
    def chat_model(self) -> Any: ...
    def embedder(self, **overrides: Any) -> Any: ...
    def recluster(self, instruction: str, thread_id: str) -> tuple[dict, list[dict]]: ...


@dataclass
class Reply:
    text: str
    action: str
    changed: bool
    k_before: int
    k_after: int
    moved: int


def chat_thread(thread_id: str) -> str:
    """The LangGraph thread that holds the chat over the run on `thread_id`."""
    return f"{thread_id}/chat"


def chat_state(checkpointer, thread_id: str) -> dict:
    """The latest state of the chat over the run on `thread_id` (empty before its first turn)."""
    return build_refine_graph().compile(checkpointer=checkpointer).get_state(
        {"configurable": {"thread_id": chat_thread(thread_id)}}).values


class RefineSession:
    """A chat over one fitted run: `chat(message)` applies one turn and returns the reply.

    Get one with `agent.refine_session()` after `agent.fit(...)`, or
    `ClusterAgent.load(out_dir).refine_session()` for a run folder (any process, any time later).
    """

    def __init__(self, run: FittedRun):
        self.run = run
        self.chat_thread = chat_thread(run.thread_id_)
        self.base_state = snapshot(run.state_)
        self.graph = build_refine_graph().compile(checkpointer=run.store_.checkpointer)
        self._config = {"configurable": {"thread_id": self.chat_thread}}
        self._reinstructs = 0
        self._embedder = None
        self._features: dict[tuple, np.ndarray] = {}

    @property
    def state(self) -> dict:
        return self.graph.get_state(self._config).values

    @functools.cached_property
    def llm(self):
        """The chat model, loaded at the first turn (reading the result needs none)."""
        from clusteragent.structured import StructuredLLM

        return StructuredLLM(self.run.chat_model(), journal=None)

    def _embed(self, texts: list[str]) -> np.ndarray:
        if self._embedder is None:
            self._embedder = self.run.embedder(embedding_cache=False, progress=False)
        return self._embedder.embed(texts)[0]

    def _placing_features(self, state: dict) -> tuple[np.ndarray, str | None]:
        """What placed the texts of the clustering `state` (views.assignment_features), computed once per
        clustering, and the view it was made on (None for labels): a split places a cluster's texts on it.
        The model's reading comes from the run folder's arrays (reading.kept_reading), else from the reading
        cache, else is read again."""
        from clusteragent.reading import reader_for
        from clusteragent.state import RunContext

        state = {**self.run.state_, **state}  # a chat begun before its state kept the view: the run's trace says it
        key = (clustered_view(state), state.get("about_topic"), state["instruction"])
        if key not in self._features:
            reads = key[0] == "reading"
            embedder = self.run.embedder(progress=False) if reads else None  # where the readings are kept
            ctx = RunContext(texts=work_texts(self.run.corpus_.texts), llm=None, embedder=embedder,
                             config=self.run.config, vectors=self.run.vectors_, show_bars=self.run.progress,
                             arrays=self.run.store_.arrays,
                             reader=reader_for(self.run.chat_model(), embedder) if reads else None)
            self._features[key] = assignment_features(ctx, state, len(ctx.texts))
        return self._features[key], key[0]

    def _rerun(self, instruction: str) -> dict:
        self._reinstructs += 1
        thread = f"{self.run.thread_id_}/reinstruct-{len(self.state.get('turns', []))}-{self._reinstructs}"
        state, decisions = self.run.recluster(instruction, thread)
        # The run's own model decisions and calls are the turn's: trace.jsonl and the turn's count show them.
        self.llm.trace.extend(decisions)
        used = Usage.from_dict(state.get("usage", {}))
        self.llm.usage.record(used.prompt_tokens, used.completion_tokens, used.seconds, used.failed_calls, used.calls)
        return snapshot(state)

    def chat(self, message: str) -> Reply:
        """One turn: the model reads the message as one operation, which is applied. "undo" on its own needs no
        model: the last change is taken back."""
        if not message or not message.strip():
            raise ConfigError("say what to change, e.g. 'merge \"A\" and \"B\"'.")
        return self._turn(message, {"action": "undo"} if message.strip().lower().rstrip(".!") in UNDO_MESSAGES else None)

    def undo(self) -> Reply:
        """Take back the last change (a turn of its own in the history, as "undo" typed in the chat)."""
        return self._turn("undo", {"action": "undo"})

    def _turn(self, message: str, decision: dict | None) -> Reply:
        corpus = self.run.corpus_
        ctx = RefineContext(texts=work_texts(corpus.texts), ids=list(corpus.ids), vectors=self.run.vectors_, llm=self.llm,
                            arrays=self.run.store_.arrays, embed=self._embed, rerun=self._rerun,
                            features=self._placing_features,
                            seed=self.run.config.seed, texts_are=self.run.state_.get("texts_are", ""),
                            calls_at_start=self.llm.usage.calls)
        # A hard cap per turn: the message's English, the two interpreting decisions with their retries, the operation's.
        self.llm.max_calls = self.llm.usage.calls + 2 * self.llm.max_attempts + ctx.max_calls_per_turn + 1
        start = {"message": message, "asked_as": message if decision else in_english(self.llm, message, attempts=1)[0]}
        if not self.state:  # the first turn starts from the run's result
            start = {**self.base_state, "undo": [], "turns": [], **start}
        folder = self.run.store_.folder
        with RunLock(folder, "refine") if folder is not None else contextlib.nullcontext(), \
                kept_prompt_state(self.llm.chat, folder):  # the next process need not read the listing again
            if decision is None:
                state = self.graph.invoke(start, context=ctx, config=self._config)
            else:  # the decision is known: record it as interpret's answer and run only apply
                self.graph.update_state(self._config, {**start, "decision": decision}, as_node="interpret")
                state = self.graph.invoke(None, context=ctx, config=self._config)
        turn = state["turns"][-1]
        return Reply(text=state["reply"], action=turn["action"], changed=turn["changed"], k_before=turn["k_before"],
                     k_after=turn["k_after"], moved=turn["moved"])

    def turn_and_write(self, message: str | None, out: Path, undo: bool = False) -> Reply:
        """One turn on a run folder under its lock, as `clusteragent refine` and the served page take it: the
        folder's run.json is read first (a damaged one stops the turn before anything changes), then the
        result files are rewritten, and the turn's model decisions are added to the run's trace.jsonl, each
        with the number of its turn."""
        from clusteragent.run_folder import atomic_write, jsonl_bytes, read_run_record

        llm = self.__dict__.get("llm")  # loaded only by a turn that needs the model
        seen = len(llm.trace) if llm is not None else 0
        with RunLock(out, "refine"):
            run = read_run_record(out)
            reply = self.undo() if undo else self.chat(message or "")
            self.result(run=run).write(out, with_trace=False)
            llm = self.__dict__.get("llm")
            if llm is not None and len(llm.trace) > seen:
                turn = len(self.state.get("turns", []))
                trace = out / "trace.jsonl"
                atomic_write(trace, (trace.read_bytes() if trace.exists() else b"")
                             + jsonl_bytes({"turn": turn, **row} for row in llm.trace[seen:]))
        return reply

    def result(self, run: dict | None = None) -> ClusterResult:
        """The current clustering as a ClusterResult (`run` is the run record to extend)."""
        state = self.state or {**self.base_state, "turns": []}
        arrays = self.run.store_.arrays
        assignment = arrays[state["assignment_ref"]]
        taxonomy = tx.Taxonomy.from_state(state)
        notes = state.get("notes") if state.get("notes") is not None else (run or {}).get("notes", [])
        record = {**(run or {}), "instruction": state["instruction"], "facet": state.get("facet"),
                  "notes": standing_notes(notes, taxonomy.names + [t["name"] for t in state.get("tops") or []]),
                  "refinements": state.get("turns", []), "chat_thread_id": self.chat_thread}
        return build_result(self.run.corpus_, self.run.vectors_, taxonomy, assignment,
                            current_confidence(arrays, state, self.base_state, assignment), record,
                            tops=state.get("tops"), texts_are=self.run.state_.get("texts_are", ""))
