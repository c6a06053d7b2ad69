"""What every chat operation works on: the turn (the stored clustering and the model calls it may still
make), the message read as arguments (RefineDecision), the outcome (Change), and CannotDo for a request
that cannot be done. The operations are in refine_ops, refine_matching and refine_questions."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
from pydantic import BaseModel

from clusteragent.errors import plural
from clusteragent.finished_rules import top_mentions
from clusteragent.hierarchy import moved_under, parents, with_tops
from clusteragent.naming import in_corpus_noun, name_members
from clusteragent.refine_names import mostly_written_in, named_clusters, resolve, written_clusters
from clusteragent.review_tools import ToolError
from clusteragent.run_folder import content_name
from clusteragent.schemas import ClusterSpec
from clusteragent.tools import taxonomy as tx
from clusteragent.top_naming import children_renamed, name_tops
from clusteragent.views import clustered_view
from clusteragent.wording import in_running_text, in_words, quoted_list, with_examples_found

# The operations on clusters the message names: names it writes outrank the model's choice, and a name it quotes
# must be a cluster's.
NAMING_ACTIONS = ("merge", "split", "rename", "describe", "move", "remove")
SNAPSHOT_KEYS = ("instruction", "facet", "about_topic", "clustered_view", "taxonomy", "next_id", "assignment_ref",
                 "labels", "tops", "notes")


def snapshot(state: dict) -> dict:
    """The fields of a clustering that a chat keeps and undo restores, from a run's state or a chat's."""
    return {**{k: state.get(k) for k in SNAPSHOT_KEYS}, "clustered_view": clustered_view(state)}


# A request that cannot be done: the message says why. The review tools' error, so that their
# refusals (a taken name, a merge of one cluster) reach the user the same way.
CannotDo = ToolError


class RefineDecision(BaseModel):
    """One message read as an operation and its arguments (unused fields stay empty)."""

    action: str
    clusters: list[str] = []
    new_name: str = ""
    description: str = ""
    ids: list[str] = []
    n: int = 0
    parts: list[str] = []  # the names a split message gives its parts
    by: str = ""  # what a split message says to split by ("the platform they target")
    instruction: str = ""
    direction: str = ""
    reason: str = ""


@dataclass
class RefineContext:
    texts: list[str]
    ids: list[Any]
    vectors: np.ndarray
    llm: Any  # StructuredLLM
    arrays: Any  # ArrayStore
    embed: Callable[[list[str]], np.ndarray]
    rerun: Callable[[str], dict]  # new instruction -> the state fields of a fresh clustering
    # a clustering's state -> what placed its texts (views.assignment_features), and the view it was made on
    features: Callable[[dict], tuple[np.ndarray, str | None]]
    seed: int = 0
    max_calls_per_turn: int = 40
    texts_are: str = ""  # what the run calls the texts ("queries"): replies word descriptions as clusters.json does
    calls_at_start: int = 0  # the model's calls before the turn: the turn's record counts those it made


@dataclass
class Turn:
    """The clustering one operation works on, and the model calls it may still make."""

    ctx: RefineContext
    state: dict  # the chat's RefineState
    tax: tx.Taxonomy
    assignment: np.ndarray
    labels: dict[str, int]
    budget: int

    def fields(self, tax: tx.Taxonomy, assignment: np.ndarray, labels: dict[str, int]) -> dict:
        """The state fields of a changed clustering (labels of clusters that are gone are dropped); a rule the
        model wrote in this turn keeps only the examples its cluster's texts mention, as a run's do
        (wording.with_examples_found)."""
        before = {c.id: c.description for c in self.tax.clusters}
        for c in tax.clusters:
            if c.named_by == "model" and before.get(c.id) != c.description:
                rule = self.read_rule(c.description, [self.ctx.texts[r] for r in np.flatnonzero(assignment == c.id)])
                tax = tx.rename(tax, c.id, c.name, rule)[0] if rule != c.description else tax
        ref = content_name("assignment", assignment)
        self.ctx.arrays[ref] = assignment
        live = set(tax.ids)
        return {**tax.as_state(), "assignment_ref": ref, "labels": {r: c for r, c in labels.items() if c in live}}

    def read_rule(self, rule: str, mentions: list[str]) -> str:
        """A rule the model wrote less the examples none of `mentions` (its texts, and for a top its clusters'
        names) mentions; a rule the message gives stays as written."""
        if mostly_written_in(rule, self.state.get("message", "")):
            return rule
        return with_examples_found(rule, mentions)

    def placed(self, tax: tx.Taxonomy, rows: np.ndarray, cluster_id: int) -> tuple[dict, str]:
        """The fields after putting `rows` into one cluster (the user's word becomes their label; clusters
        left empty are removed), and a note naming those removed."""
        assignment, _ = tx.reassign(self.assignment, tax, rows, cluster_id)
        labels = dict(self.labels, **{str(int(r)): cluster_id for r in rows})
        tax, empty = tx.drop_empty(assignment, tax)
        note = f" Emptied and removed: {', '.join(empty)}." if empty else ""
        return self.fields(tax, assignment, labels), note

    def cluster(self, ref: str) -> tx.Cluster:
        """The cluster `ref` names; a top cluster's name is refused (resolving it among the clusters would pick
        the one whose name comes nearest: "Credit card points management" for "Credit card management")."""
        top = self.top(ref)
        if top is not None and self.tax.find(ref) is None:
            listed = ", ".join(f'"{self.tax.by_id(c).name}"' for c in top["children"])
            raise CannotDo(f'"{top["name"]}" is a top cluster of {listed}; name one of its clusters.')
        return resolve(ref, self.tax, self.assignment)

    @property
    def tops(self) -> list[dict]:
        return self.state.get("tops") or []

    @property
    def asked_as(self) -> str:
        """The turn's message in English (RefineState.asked_as), for the checks that read English words."""
        return self.state.get("asked_as") or self.state.get("message", "")

    def top(self, ref: str) -> dict | None:
        """The top cluster `ref` names (by name or number), or None when it names none."""
        if not self.tops:
            return None
        try:
            found = resolve(ref, with_tops(self.tax, self.tops), self.assignment)
        except CannotDo:
            return None
        return next((t for t in self.tops if t["id"] == found.id), None)

    def next_closest(self, rows: np.ndarray) -> np.ndarray:
        """For each of `rows`, the cluster other than its own whose texts lie nearest it on what placed them
        (features), by the centroids' similarity; -1 where the clustering has no other cluster."""
        ids = np.array([c.id for c in self.tax.clusters])
        features = self.features
        sims = features[rows] @ tx.centroids(features, self.assignment, ids.tolist()).T
        sims[ids[None, :] == self.assignment[rows][:, None]] = -np.inf
        return ids[np.argmax(sims, axis=1)] if len(ids) > 1 else np.full(len(rows), -1)

    @property
    def features(self) -> np.ndarray:
        """What placed the texts of the turn's clustering (views.assignment_features): which clusters lie close,
        and which texts are typical of one, as the run read them (by sentiment, on the model's reading)."""
        return self.ctx.features(self.state)[0]

    def rule(self, description: str) -> str:
        """A description as a reply shows it: in the corpus's own noun, as the run's outputs write it."""
        return in_corpus_noun(description, self.ctx.texts_are)

    def under(self, cluster_id: int) -> str:
        """', under "<top cluster>"' for a cluster inside a top cluster, else nothing: for a reply."""
        top = parents(self.tops).get(cluster_id)
        return "" if top is None else f', under "{next(t["name"] for t in self.tops if t["id"] == top)}"'

    def refuse_taken(self, name: str, own: set[int]) -> None:
        """CannotDo where another cluster or top cluster than those of `own` already has `name`."""
        clash = with_tops(self.tax, self.tops).find(name)
        if clash is not None and clash.id not in own:
            top = next((t for t in self.tops if t["id"] == clash.id and len(t["children"]) > 1), None)
            if top is not None:  # the top over them, as often as not: "the sports clusters into one called Sports"
                raise CannotDo(f'There is already a cluster "{name}", the top cluster over '
                               f'{quoted_list(self.tax.by_id(c).name for c in top["children"])}; choose another name, '
                               f'or merge all of them: "Merge all the clusters of {top["name"]} into one."')
            raise CannotDo(f'There is already a cluster "{name}"; choose another name.')

    def names(self, tax: tx.Taxonomy | None = None) -> list[str]:
        """Every cluster's (of `tax`, default the turn's) and top cluster's name: what a new one must differ from."""
        return list(with_tops(tax or self.tax, self.tops).names)

    def name_rows(self, rows: np.ndarray, taken: list[str], current: str = "") -> ClusterSpec | None:
        """The model's name and inclusion rule for the texts `rows`, found as a run names a cluster (plain case,
        unlike every name in `taken` and the `current` one; under a top level its narrower name, as in a run),
        or None when it gives none or the turn's calls are spent."""
        if self.budget < 1:
            return None
        before = self.ctx.llm.usage.calls
        spec = name_members(self.ctx.llm, self.state["instruction"], self.state.get("facet", ""), self.ctx.texts,
                            self.features, rows, taken, step="refine", current=current, narrower=bool(self.tops))
        self.budget -= self.ctx.llm.usage.calls - before
        return spec

    def name_top(self, children: list[int], taken: list[str], tax: tx.Taxonomy | None = None,
                 assignment: np.ndarray | None = None, current: str = "") -> dict:
        """A top cluster over `children` (of `tax` and `assignment`, default the turn's) named as a run names
        one (top_naming.name_tops: by the model within the turn's calls, else by statistics), unlike `taken`
        and, for a rename, its `current` name."""
        before = self.ctx.llm.usage.calls
        named = name_tops(self.ctx.llm, before + self.budget, self.state["instruction"], self.state.get("facet", ""),
                          self.ctx.texts, self.ctx.vectors, self.assignment if assignment is None else assignment,
                          [children], tax or self.tax, taken, current)[0]
        self.budget -= self.ctx.llm.usage.calls - before
        return named

    def merged_name(self, parts: list[int], tax: tx.Taxonomy | None = None,
                    assignment: np.ndarray | None = None) -> dict:
        """The name of clusters `parts` merged: on a run by subject matter, a top cluster's name over them
        (broader than either); by another facet, their names joined ("Positive and neutral"): its clusters are
        values of the facet, and asked for one name over two values the model names their topic instead."""
        tax = tax or self.tax
        if self.state.get("about_topic", True) is not False:
            return self.name_top(parts, self.names(tax), tax, assignment)
        first, *rest = [tax.by_id(c) for c in parts]
        name = in_words([first.name] + [in_running_text(c.name) for c in rest])
        rules = "; or ".join([first.description.rstrip(". ")] + [in_running_text(c.description).rstrip(". ")
                                                                 for c in rest])
        return {"name": name, "description": rules + ".", "named_by": first.named_by}

    def put_under(self, top: dict, refs: list[str]) -> Change:
        """The clusters `refs` put under the top cluster `top`, out of the top they stood under or from the top
        level: a change of the top level, no text moves."""
        leaves = [self.cluster(r) for r in refs]
        moving = [c for c in leaves if c.id not in top["children"]]
        if not moving:
            raise CannotDo(f'{quoted_list(c.name for c in leaves)} {"is" if len(leaves) == 1 else "are"} already under '
                           f'"{top["name"]}".')
        stood = "; ".join(f'"{c.name}" stood {self.under(c.id)[2:] or "on its own at the top level"}' for c in moving)
        text = f'Put {quoted_list(c.name for c in moving)} under the top cluster "{top["name"]}" ({stood}; no text moved).'
        return self.with_tops(moved_under(self.tops, {c.id for c in moving}, top["id"]), text=text)

    def take_out(self, refs: list[str]) -> Change:
        """The clusters `refs` out of the top clusters they stand under, each on its own at the top level (as a
        top of one cluster, with a new id): a change of the top level, no text moves."""
        under = parents(self.tops)
        moving = [c for c in (self.cluster(r) for r in refs) if c.id in under]
        if not moving:
            raise CannotDo(f'{quoted_list(self.cluster(r).name for r in refs)} {"is" if len(refs) == 1 else "are"} at '
                           "the top level already.")
        tops, tax = self.tops, self.tax
        stood = "; ".join(f'"{c.name}" stood {self.under(c.id)[2:]}' for c in moving)
        for c in moving:
            alone = {"id": tax.next_id, "name": c.name, "description": c.description, "named_by": "its only cluster",
                     "children": []}
            tops, tax = moved_under(tops + [alone], {c.id}, alone["id"]), tx.Taxonomy(tax.clusters, tax.next_id + 1)
        listed, own = quoted_list(c.name for c in moving), "its own" if len(moving) == 1 else "their own"
        left = "".join(f" {self.holds_only(t)}." for t in tops if len(t["children"]) == 1 and t["id"] in under.values())
        return self.with_tops(tops, tax, text=f"Put {listed} at the top level on {own} ({stood}; no text moved).{left}")

    def refuse_hidden_top(self, ref: str) -> None:
        """CannotDo where `ref` names a top cluster left with one cluster, which stands at the top level as that
        cluster: the message means a top cluster that is no longer one (a move to it went by its words)."""
        for t in self.tops:
            if len(t["children"]) == 1 and t["name"].lower() == ref.strip().lower():
                raise CannotDo(f'{self.holds_only(t)}; name "{self.tax.by_id(t["children"][0]).name}" or another cluster.')

    def holds_only(self, top: dict) -> str:
        """What a reply says of a top cluster left with one cluster."""
        return f'"{top["name"]}" holds only "{self.tax.by_id(top["children"][0]).name}" now, which stands at the top level itself'

    def taken_out(self) -> bool:
        """Whether the message takes clusters out of a top cluster: "out of" a top cluster it names ('Take "Gas
        type" out of "Car care"'), or "to the top level"."""
        message = self.state.get("message", "")
        out_of = re.search(r"\bout of\b", message, flags=re.IGNORECASE)
        after = named_clusters(message[out_of.end():], with_tops(self.tax, self.tops), self.assignment) if out_of else []
        return bool(re.search(r"\b(?:to|at) the top level\b", message, flags=re.IGNORECASE)) or bool(
            after and self.top(after[0]) is not None and self.tax.find(after[0]) is None)

    def leaves_named(self) -> list[str]:
        """The clusters (not top clusters) the turn's message names, in order."""
        return written_clusters(self.state.get("message", ""), with_tops(self.tax, self.tops).names, self.tax.names)

    def with_tops(self, tops: list[dict], tax: tx.Taxonomy | None = None, text: str = "") -> Change:
        """A change of the top level; a cluster whose name a top took is named again (top_naming.children_renamed,
        within the turn's calls), the other leaves stay as they are; a top's new rule by the model is read as
        `fields` reads a cluster's."""
        before = self.ctx.llm.usage.calls
        tax, renamed = children_renamed(self.ctx.llm, before + self.budget, self.state["instruction"],
                                        self.state.get("facet", ""), self.ctx.texts, self.ctx.vectors,
                                        self.assignment, tops, tax or self.tax)
        self.budget -= self.ctx.llm.usage.calls - before
        text += "".join(f' The cluster "{e["from"]}" is now "{e["to"]}": its top cluster took its name.' for e in renamed)
        was = {t["id"]: t["description"] for t in self.tops}
        tops = [{**t, "description": self.read_rule(t["description"], top_mentions(t, tax, self.assignment, self.ctx.texts))}
                if t.get("named_by") == "model" and was.get(t["id"]) != t["description"] else t for t in tops]
        return Change(text, {**self.fields(tax, self.assignment, self.labels), "tops": tops})


@dataclass
class Change:
    """The outcome of one operation: the new fields and what to tell the user."""

    text: str
    update: dict | None = None  # state fields that change (None: nothing changed)


def rows_for_ids(ctx: RefineContext, ids: list[str]) -> np.ndarray:
    by_id = {str(i): r for r, i in enumerate(ctx.ids)}
    unknown = [i for i in ids if str(i).strip() not in by_id]
    if unknown:
        raise CannotDo(f"No text has the {plural('id', len(unknown))} {', '.join(map(str, unknown[:10]))}.")
    return np.array([by_id[str(i).strip()] for i in ids], dtype=np.int64)
