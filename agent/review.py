"""The review step: the model reads cluster statistics and calls one tool (merge, split, rename,
retrieve) or stops; stopping is refused, with the reason, while the result is invalid."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
from langgraph.types import Command

from clusteragent.errors import ModelError
from clusteragent.prompts import load_prompt
from clusteragent.review_tools import REVIEW_TOOLS, Workspace, call_tool, describe_tools
from clusteragent.schemas import requested_words, review_schema
from clusteragent.splitting import SPLIT_LABELS, plan_split
from clusteragent.tools import taxonomy as tx
from clusteragent.views import assignment_features

if TYPE_CHECKING:
    from clusteragent.state import AgentConfig, AgentState, RunContext

REVIEW_EXAMPLES = 2  # central texts shown per cluster


def review_reserve(cfg: AgentConfig) -> int:
    """Model calls that labelling leaves for the review: one a step, and one split's worth."""
    return cfg.review_rounds + (SPLIT_LABELS + 1 if cfg.review_rounds else 0)


def review_step(ctx: RunContext, state: AgentState) -> Command:
    """One review step; goes to "review" again or to "finalize"."""
    round_ = state.get("review_round", 0)
    if round_ >= ctx.config.review_rounds:  # the embedded model reviews nothing: it never had a round to use up
        done = "review rounds used up" if ctx.config.review_rounds else "finished; this model makes no review step"
        return Command(update={"stop_reason": done}, goto="finalize")
    if ctx.calls_left() < 1:
        return Command(update={"stop_reason": "model budget exhausted"}, goto="finalize")
    tax = tx.Taxonomy.from_state(state)
    assignment, confidence = ctx.assignment(state)
    counts = tx.sizes(assignment, tax)
    problems = tx.validate(assignment, tax, len(ctx.texts), state["k_min"], state["k_max"])
    table = [{"name": c.name, "description": c.description, "size": counts[c.id],
              "examples": [ctx.texts[r] for r in tx.central_members(ctx.vectors, np.flatnonzero(assignment == c.id),
                                                                     REVIEW_EXAMPLES)]}
             for c in tax.clusters]
    pairs = tx.most_similar_pairs(ctx.vectors, assignment, tax)
    confusable = [f'"{tax.by_id(a).name}" and "{tax.by_id(b).name}"' for a, b, _ in pairs]
    k_note = "; ".join(filter(None, [state.get("review_feedback", ""),
                                     f"The result cannot be submitted yet: {'; '.join(problems)}." if problems else ""]))
    can_split = ctx.calls_left() >= 3 and len(tax.clusters) < state["k_max"]
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
        return Command(update={**update, "stop_reason": f"review ended: {e}"}, goto="finalize")
    trace = list(state.get("trace", [])) + [{"step": "review", "action": decision.action,
                                             "clusters": decision.clusters, "reason": decision.reason}]
    update["trace"] = trace
    if decision.action == "stop":
        if not problems:
            return Command(update={**update, "stop_reason": "the model stopped the review"}, goto="finalize")
        return Command(update={**update, "review_feedback": "You chose stop, but the result is not valid yet."},
                       goto="review")

    def plan(target: tx.Cluster):
        # placed on what placed the run's texts (the view it clustered, or what its labels spread on)
        return plan_split(ctx.llm, state["instruction"], state.get("facet", ""), target, ctx.texts,
                          assignment_features(ctx, state, len(ctx.texts)),
                          members=np.flatnonzero(ws.assignment == target.id), n=2, taken=ws.taxonomy.names,
                          calls_left=ctx.calls_left(), seed=ctx.config.seed)

    ws = Workspace(assignment=assignment, taxonomy=tax, labels=dict(state.get("labels", {})), texts=ctx.texts,
                   vectors=ctx.vectors, index=ctx.index, audit=list(state.get("audit", [])), plan_split=plan)
    _, observation = call_tool(ws, decision.action, decision.model_dump())
    trace[-1]["observation"] = observation
    if ws.changed:
        update.update(labels=ws.labels, audit=ws.audit, **ws.taxonomy.as_state(),
                      assignment_ref=ctx.store_assignment(ws.assignment, confidence))
    update["review_feedback"] = f"Your last step: {observation}"
    return Command(update=update, goto="review")
