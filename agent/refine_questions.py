"""The operations of a chat message that ask a question and change nothing, listed in QUESTIONS."""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable

import numpy as np

from clusteragent.errors import counted
from clusteragent.hierarchy import held_under, with_tops
from clusteragent.prompts import as_data
from clusteragent.refine_matching import similarities
from clusteragent.refine_names import described_in, found_in, named_clusters, quoted, sizes_asked, written_clusters
from clusteragent.refine_turn import CannotDo, Change, RefineDecision, Turn, rows_for_ids
from clusteragent.tools import taxonomy as tx
from clusteragent.top_naming import spread_members

EXPLAIN_MAX = 3
FIND_NEAREST = 20  # texts nearest a description whose clusters a find reports
FIND_SHOWN = 3  # and of those, the texts it shows


def quoted_rows(turn: Turn) -> tuple[list[int], str]:
    """The rows of the texts the message quotes ('Why is "That is hilarious" in Negative?'): those that hold a
    quoted string that is no cluster's name, and where more than EXPLAIN_MAX do, a line that says how many;
    CannotDo where a quote is in no text."""
    names = {n.lower() for n in turn.names()}
    quotes = [(q, " ".join(q.lower().split())) for q in quoted(turn.state["message"])]  # case and spacing ignored
    quotes = [(q, words) for q, words in quotes if len(words) >= 3 and words not in names]
    if not quotes:
        return [], ""
    flat = [" ".join(t.lower().split()) for t in turn.ctx.texts]
    found: dict[int, None] = {}  # rows in order, each once
    for quote, words in quotes:
        rows = [r for r, t in enumerate(flat) if words in t]
        if not rows:
            raise CannotDo(f'No text holds "{quote}"; give the id of the text to explain.')
        found.update(dict.fromkeys(rows))
    many = f"{len(found)} texts hold what the message quotes; the first {EXPLAIN_MAX}: " if len(found) > EXPLAIN_MAX else ""
    return list(found)[:EXPLAIN_MAX], many


def explain(turn: Turn, d: RefineDecision) -> Change:
    """Say why a text (by id, or quoted) is in its cluster (and its top cluster), and which cluster comes next."""
    ctx, tax, assignment = turn.ctx, turn.tax, turn.assignment
    if d.ids:
        text_ids, many = d.ids[:EXPLAIN_MAX], ""
        rows = rows_for_ids(ctx, text_ids)
    else:
        rows, many = quoted_rows(turn)
        text_ids = [ctx.ids[r] for r in rows]
    if not text_ids:
        message, named_in = turn.state["message"], with_tops(turn.tax, turn.tops)
        named = named_clusters(message, named_in, assignment) or written_clusters(message, named_in.names)
        if named:  # "Show me some examples from Negative.": no text to explain, a cluster to describe
            return describe(turn, d.model_copy(update={"clusters": named[:1]}))
        if answer := overview_for(turn.asked_as):  # "What are the clusters?"
            return answer(turn, d)
        raise CannotDo("Give the id of the text to explain, or quote it.")
    lines = []
    for text_id, r, closest in zip(text_ids, rows, turn.next_closest(np.asarray(rows, dtype=np.int64))):
        cluster = tax.by_id(int(assignment[r]))
        runner_up = tax.by_id(int(closest)) if closest >= 0 else None
        # Only labelled texts had their cluster chosen for them: a view's clusters (the embeddings, the model's
        # reading) and the classifier that spreads labels place every other text with the texts most like it.
        how = ("the model (or a move in this chat) chose it for this text" if str(int(r)) in turn.labels
               else "it was placed with the texts most like it, not chosen for it by the model")
        line = (f'Text {text_id} ({as_data(ctx.texts[r], 120)}) is in "{cluster.name}" ({turn.rule(cluster.description)})'
                f"{turn.under(cluster.id)}: {how}.")
        if runner_up is not None:
            line += f' The next closest cluster is "{runner_up.name}".'
        lines.append(line)
    return Change(many + " ".join(lines))


def nearest_texts(turn: Turn, what: str) -> np.ndarray:
    """The rows of the FIND_NEAREST texts most similar to `what`, most similar first."""
    return np.argsort(-similarities(turn, what), kind="stable")[:FIND_NEAREST]


def describe(turn: Turn, d: RefineDecision) -> Change:
    """Describe one cluster, or one top cluster: its rule, its size and its most typical texts (for a top
    cluster, also its clusters, and a typical text of each of the largest). A cluster the message gives only by
    what it is about ("the cluster about dogs") is the one that holds most of the texts nearest that, as find
    reads it: asked twice on one run, the model chose "Pet care" once and "Personal interests hobbyist" once."""
    message = turn.state.get("message", "")
    about = described_in(message)
    if about and not named_clusters(message, with_tops(turn.tax, turn.tops), turn.assignment) \
            and not any(found_in(c, message) for c in d.clusters):
        holder = Counter(int(turn.assignment[r]) for r in nearest_texts(turn, about)).most_common(1)[0][0]
        if holder != tx.OUTLIER:
            d = d.model_copy(update={"clusters": [turn.tax.by_id(holder).name]})
    if len(d.clusters) != 1:
        raise CannotDo("Name the one cluster to describe.")
    vectors, assignment = turn.features, turn.assignment
    top = turn.top(d.clusters[0])
    if top is not None:
        name, description, children = top["name"], top["description"], list(top["children"])
        members = np.flatnonzero(np.isin(assignment, children))
        reps = spread_members(vectors, assignment, children, 5)
        sizes = sorted(((int((assignment == c).sum()), turn.tax.by_id(c).name) for c in children), reverse=True)
        parts = " Its clusters: " + ", ".join(f'"{n}" ({size})' for size, n in sizes) + "."
    else:
        target = turn.cluster(d.clusters[0])
        name, description, parts = target.name, target.description, ""
        members = np.flatnonzero(assignment == target.id)
        reps = tx.central_members(vectors, members, 5)
    examples = "; ".join(f"[{turn.ctx.ids[r]}] {as_data(turn.ctx.texts[r], 100)}" for r in reps)
    return Change(f'"{name}" ({turn.rule(description)}) holds {len(members)} of {len(assignment)} texts.{parts} '
                  f"Typical texts: {examples}")


def find(turn: Turn, d: RefineDecision) -> Change:
    """Say which clusters hold the texts nearest a description ("Which cluster is about alarms?"): the
    clusters of the FIND_NEAREST most similar texts, most first, each with its top cluster, and the FIND_SHOWN
    nearest texts with their clusters ("Show me posts about cats" asks for the posts)."""
    what = d.description.strip()
    if not what:
        raise CannotDo("Say what the texts you are looking for are about.")
    nearest = nearest_texts(turn, what)
    counts = Counter(int(turn.assignment[r]) for r in nearest)
    listed = []
    for cid, n in counts.most_common():
        listed.append(f"{in_cluster(turn, cid)} ({n}{turn.under(cid)})")
    shown = "; ".join(f"[{turn.ctx.ids[r]}] {as_data(turn.ctx.texts[r], 100)} (in {in_cluster(turn, int(turn.assignment[r]))})"
                      for r in nearest[:FIND_SHOWN])
    return Change(f'Of the {counted(len(nearest), "text")} nearest "{as_data(what, 80)}": {", ".join(listed)}. '
                  f"The nearest: {shown}")


def in_cluster(turn: Turn, cid: int) -> str:
    """A cluster as a reply names it ("the outliers" for the outlier group)."""
    return "the outliers" if cid == tx.OUTLIER else f'"{turn.tax.by_id(cid).name}"'


CAN_DO = ("I can merge, split, rename, remove, move texts, add a cluster, re-cluster by a new instruction, make "
          "clusters fewer or finer, undo, explain a text, describe a cluster or find where texts are.")
OVERVIEW_EACH = 3  # the largest and the smallest clusters an overview names, where it does not name them all
OVERVIEW_ALL = 10  # up to this many, all of them
_QUESTION = re.compile(r"\?\s*$|^\W*(?:how|what|which)\b", re.IGNORECASE)
# A message that asks for the clustering as a whole, or for help: "help", "Show me the clusters.", "Summarise".
_WHOLE = re.compile(r"^\W*(?:please\s+)?(?:help(?:\s+me)?|overview|(?:show|list|display|give|summari[sz]e)(?:\s+me)?"
                    r"(?:\s+all)?(?:\s+(?:the|my|your))?(?:\s+(?:current|final))?(?:\s+(?:clusters|groups|categories|"
                    r"results?|clustering))?)(?:\W+please)?\W*$", re.IGNORECASE)


def overview(turn: Turn, d: RefineDecision) -> Change:
    """How many clusters (and top clusters) there are, and their sizes (all of them, largest first, up to
    OVERVIEW_ALL; else the largest and the smallest): the answer to a question no operation takes ("How many
    clusters are there?", "Which clusters are the smallest?"; the model read both as none). What the chat can
    do follows, unless the message asked only that."""
    sizes = sorted(((int((turn.assignment == c.id).sum()), c.name) for c in turn.tax.clusters), key=lambda s: -s[0])

    def listed(part: list[tuple[int, str]]) -> str:
        return ", ".join(f'"{name}" ({size})' for size, name in part)

    if len(sizes) <= OVERVIEW_ALL:
        which = f": {listed(sizes)}"
    else:
        which = f"; the largest: {listed(sizes[:OVERVIEW_EACH])}; the smallest: {listed(sizes[::-1][:OVERVIEW_EACH])}"
    more = "" if sizes_asked(turn.asked_as) else f" {CAN_DO}"
    hold = "holds" if len(sizes) == 1 else "hold"
    under_tops = held_under(turn.tops, len(sizes))
    held = f"{counted(len(sizes), 'cluster')} {hold} the {counted(len(turn.assignment), 'text')}{under_tops}"
    return Change(f"{held}{which}.{more}")


def overview_for(message: str) -> Callable[[Turn, RefineDecision], Change] | None:
    """The overview for a message that asks a question (ends with "?", or opens how, what or which), asks for
    the clusters' sizes ("Find the smallest cluster.", the model's English for "Welche Cluster sind am
    kleinsten?"), for the clusters as a whole or for help ("Show me the clusters.", "help": the model read both
    as explaining a text), else None."""
    return overview if _QUESTION.search(message) or sizes_asked(message) or _WHOLE.search(message) else None


QUESTIONS: dict[str, Callable[[Turn, RefineDecision], Change]] = {"explain": explain, "describe": describe,
                                                                  "find": find}
