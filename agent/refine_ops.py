"""The operations of a chat message that change the clustering, one function each, listed in CHANGES
(those that find texts by a description are in refine_matching, the questions, which change nothing, in
refine_questions), and the turn they work on (refine_turn).

Every operation takes the turn (the stored clustering it works on and the turn's model budget) and the
decision (the message read as arguments), and returns a Change: the state fields that change and the
reply. A request that cannot be done raises CannotDo, whose message says why; nothing changes then.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable

import numpy as np

from clusteragent.errors import counted
from clusteragent.hierarchy import broad, group_by_size, merge_tops, rename_top
from clusteragent.hierarchy import split_top as hierarchy_split
from clusteragent.name_rules import sentence_case
from clusteragent.refine_matching import CLUSTER_CHECKS, described_clusters
from clusteragent.refine_names import NOT_LISTED
from clusteragent.refine_parts import clusters_counted
from clusteragent.refine_turn import CannotDo, Change, RefineDecision, Turn
from clusteragent.splitting import SPLIT_PARTS, apply_split, plan_split
from clusteragent.tools import taxonomy as tx
from clusteragent.wording import in_words, quoted_list, rule_of_value

SPLIT_COST = 12  # model calls a split may take (proposal, labels, names)


def _split_one(turn: Turn, target: tx.Cluster, n: int, tax, assignment, labels, budget: int, parts: list[str] = (),
               by: str = ""):
    # The texts are placed on what placed them in the run: by sentiment, the model's reading, not the embeddings.
    # Where that is a view that follows the facet (the clusters were made on it), or the run says its facet is
    # subject matter, the texts' structure there divides the cluster, as it made the clusters; otherwise the
    # model proposes the parts (so does a run folder made before the routing decision was kept), as it does
    # where the message says what to split by ("by the platform they target").
    features, clustered = turn.ctx.features(turn.state)
    plan = plan_split(turn.ctx.llm, turn.state["instruction"], turn.state.get("facet", ""), target, turn.ctx.texts,
                      features, np.flatnonzero(assignment == target.id), n=n, taken=turn.names(tax), calls_left=budget,
                      seed=turn.ctx.seed, by_structure=clustered is not None or turn.state.get("about_topic") is True,
                      named=parts, about_topic=turn.state.get("about_topic"), narrower=bool(turn.tops), by=by)
    if isinstance(plan, str):
        raise CannotDo(plan[0].upper() + plan[1:])
    return apply_split(assignment, tax, labels, plan, target.id)


# ---------------------------------------------------------------- the operations

# Words that ask for every cluster of a top cluster: "all the clusters of Sports", "everything under Sports".
_ALL_OF = re.compile(r"\b(?:all|every|everything|each)\b|\b(?:clusters|groups)\b", re.IGNORECASE)


def merge(turn: Turn, d: RefineDecision) -> Change:
    """Merge two or more clusters (or top clusters) into one, named by the model as a run names a top cluster:
    shown texts of each and their names, it gives a broader name than any (by a facet other than subject
    matter, the values' names are joined: Turn.merged_name). The name the user gives wins, and the model's
    inclusion rule then covers the texts of all. Where the message names fewer than two clusters and
    describes them ("everything about sports"), the clusters the description fits merge. Clusters merged with
    a top cluster are put under it (Turn.put_under); named with it, every cluster it holds makes it one."""
    if len(d.clusters) < 2 and d.description.strip():
        return merge_described(turn, d)
    refs = list(dict.fromkeys(d.clusters))
    listed = [r for r in refs if r != NOT_LISTED]
    if len(listed) == 1 and _ALL_OF.search(turn.state.get("message", "")) and (top := turn.top(listed[0])):
        # "Merge all the clusters of Sports into one": the model found no cluster to name beside the top
        return merged_leaves(turn, [turn.tax.by_id(c) for c in top["children"]], d.new_name.strip())
    if len(refs) < 2:
        raise CannotDo("A merge needs two clusters; name both.")
    tops = [turn.top(r) for r in refs]
    ids = list(dict.fromkeys(t["id"] for t in tops if t))
    if ids and not all(tops):  # clusters merged with a top cluster join it
        if len(ids) > 1:
            raise CannotDo("Name clusters to merge, or top clusters, not both at once.")
        top, leaves = next(t for t in tops if t), [r for r, t in zip(refs, tops) if not t]
        if {turn.cluster(r).id for r in leaves} == set(top["children"]):  # the top and all it holds
            return merged_leaves(turn, [turn.tax.by_id(c) for c in top["children"]], d.new_name.strip())
        return turn.put_under(top, leaves)
    if not ids:
        return merged_leaves(turn, [turn.cluster(r) for r in refs], d.new_name.strip())
    if len(ids) < 2:
        raise CannotDo(f'Both names are the top cluster "{tops[0]["name"]}"; name two.')
    chosen = [next(t for t in tops if t["id"] == i) for i in ids]
    named = merged_naming(turn, d.new_name.strip(), set(ids),
                          lambda: turn.name_top(sorted(c for t in chosen for c in t["children"]), turn.names()))
    merged, text = merge_tops(turn.tops, ids, turn.assignment, named)
    return turn.with_tops(merged, text=text)


def merged_naming(turn: Turn, given: str, own: set[int], model_named: Callable[[], dict]) -> dict:
    """The merged cluster's name and rule from the model (`model_named`), the name the user `given` winning
    over the model's; a given name another cluster than those of `own` has is refused first."""
    if given:
        turn.refuse_taken(given, own)
    named = model_named()
    return {**named, "name": tx.printable(given), "named_by": "user"} if given else named


def merged_leaves(turn: Turn, parts: list[tx.Cluster], given: str, how: str = "") -> Change:
    """`parts` merged into one cluster, named `given` or by the model (Turn.merged_name); where they are every
    cluster of a top cluster, the merged cluster is that top and takes its name and rule, with no model call
    (the model's name for it was refused as the top's, and "Qt Widget" and "Qt development" under "Qt"
    became "image / qwidget")."""
    ids = {c.id for c in parts}
    if len(ids) < 2:
        raise CannotDo("A merge needs two different clusters.")
    whole = next((t for t in broad(turn.tops) if set(t["children"]) == ids), None)
    if whole is not None:
        named = merged_naming(turn, given, ids | {whole["id"]}, lambda: {k: whole[k] for k in ("name", "description")}
                              | {"named_by": whole.get("named_by") or "model"})
    else:
        named = merged_naming(turn, given, ids, lambda: turn.merged_name([c.id for c in parts]))
    assignment, tax, entry = tx.merge(turn.assignment, turn.tax, [c.id for c in parts], named["name"],
                                      named["description"], named["named_by"])
    listed = quoted_list(c.name for c in parts)
    return Change(f'Merged {listed} into "{entry["name"]}" ({counted(entry["moved"], "text")} moved{how}).',
                  turn.fields(tax, assignment, tx.remap_labels(turn.labels, entry)))


def merge_described(turn: Turn, d: RefineDecision) -> Change:
    """Merge the clusters a description fits ("everything about sports"), with any the message names."""
    what = d.description.strip()
    named = [turn.cluster(r) for r in d.clusters]
    checks = min(CLUSTER_CHECKS, turn.budget - 1)  # a call kept for the merged cluster's name
    if checks < 1:
        raise CannotDo("the model budget for this turn is spent; nothing was merged.")
    found, how = described_clusters(turn, what, {c.id for c in named}, checks)
    asked = clusters_counted(turn.asked_as)
    if asked and len(named) + len(found) > asked:  # "the two clusters about cars": those nearest it
        how += f"; of the {len(found)} that fit, the {asked - len(named)} nearest it"
        found = found[:max(0, asked - len(named))]
    parts = named + found
    if len(parts) < 2:
        fits = f'only "{parts[0].name}" fits it' if parts else "none fits it"
        raise CannotDo(f'Of the clusters nearest "{what}", {fits} ({how}); name the clusters to merge.')
    return merged_leaves(turn, parts, d.new_name.strip(), f"; {how}")


def split(turn: Turn, d: RefineDecision) -> Change:
    """Split one cluster into n parts (2 unless the message says), named by the model, or as the message
    names them ("into anger and sadness"); split by what the message says ("by the platform"), into as
    many parts as the model finds values of it unless the message gives a number."""
    if len(d.clusters) != 1:
        raise CannotDo("A split needs exactly one cluster; name it.")
    top = turn.top(d.clusters[0])
    if top is not None:
        return split_top(turn, top, max(2, d.n))
    target = turn.cluster(d.clusters[0])
    n = d.n if d.by and not d.parts else max(2, d.n)
    assignment, tax, labels, entry = _split_one(turn, target, n, turn.tax, turn.assignment, turn.labels,
                                                turn.budget, d.parts, d.by)
    parts = in_words([f'"{m}" ({s})' for m, s in zip(entry["names"], entry["sizes"])])
    sorted_by_model = ""
    if entry.get("labelled"):
        counts = ", ".join(f'{c} into "{m}"' for m, c in zip(entry["names"], entry["labelled"]))
        sorted_by_model = f" The model sorted {sum(entry['labelled'])} of its texts ({counts}); the rest follow them."
    by = f" by {d.by}" if d.by else ""
    return Change(f'Split "{target.name}"{by} into {parts}.{sorted_by_model}', turn.fields(tax, assignment, labels))


_RENAME = re.compile(r"^\W*(?:please\s+)?rename\s+(?:the\s+)?(?:cluster\s+)?(?P<old>.+?)\s+(?:to|as|into)\s+"
                     r"(?P<new>.+?)[\s.!]*$", re.IGNORECASE)


# A new name that asks the model for one: "Rename Sports to something clearer", "... to a better name".
_ASKS_FOR_A_NAME = re.compile(r"(?:some|any)thing\b|(?:.*\s)?(?:name|one)$", re.IGNORECASE)


def renamed_as_written(message: str) -> tuple[str, str] | None:
    """The old and the new name of a message of the form "Rename X to Y" (quotes left out), else None."""
    found = _RENAME.match(message)
    if not found:
        return None
    return tuple(found.group(g).strip().strip("\"'“”‘’") for g in ("old", "new"))


def name_given(written: tuple[str, str] | None, current: str) -> str:
    """The new name that "Rename <current> to Y" gives (up to a colon, after which a rule may follow), where Y
    does not ask the model for one ("to something clearer"); else ""."""
    new = written[1].partition(":")[0].strip().strip("\"'“”‘’") if written else ""  # after a colon: its rule
    if not new or written[0].lower() != current.lower() or _ASKS_FOR_A_NAME.match(new):
        return ""
    return sentence_case(new) if new.lower() != current.lower() else ""


def rename(turn: Turn, d: RefineDecision) -> Change:
    """Give one cluster (or top cluster) a new name and, optionally, a new inclusion rule; with no name in
    the message, the model names it again, unlike its present name."""
    if len(d.clusters) != 1:
        raise CannotDo("A rename needs the one cluster to rename; name it.")
    top = turn.top(d.clusters[0])
    target = turn.cluster(d.clusters[0]) if top is None else None
    name, description, named_by = d.new_name.strip(), d.description.strip(), "user"
    current = top["name"] if top is not None else target.name
    written = renamed_as_written(turn.state.get("message", ""))
    if name and written and written[1].lower() == current.lower() != written[0].lower():
        # "Rename Mixed to Other" where no cluster is "Mixed": the cluster written second was read as the one meant
        raise CannotDo(f'No cluster is named "{written[0]}"; "{current}" is a cluster\'s name already.')
    if name.lower() == current.lower():
        name = ""  # 'Give "X" a better name': the model read X as the new name
    name = name_given(written, current) or name  # the model may give its own, or none: "Rename Technology to ..."
    if not name:
        if top is not None:
            named = turn.name_top(top["children"], turn.names(), current=top["name"])
            spec = named if named["named_by"] == "model" else None
        elif turn.state.get("about_topic", True) is False:  # a value of the facet: the model names a topic
            raise CannotDo(f'Say the name you want for "{target.name}".')
        else:
            spec = turn.name_rows(np.flatnonzero(turn.assignment == target.id), turn.names(), current=target.name)
            spec = spec and {"name": spec.name, "description": spec.description}
        if spec is None:
            raise CannotDo("The model gave no new name that sets the cluster apart; say the name you want.")
        name, description, named_by = spec["name"], description or spec["description"], "model"
    turn.refuse_taken(name, {top["id"], *top["children"]} if top is not None else {target.id})  # see Turn.with_tops
    ruled = ""
    if not description and (top.get("named_by") if top is not None else target.named_by) == "statistics":
        # a statistical rule lists words the texts use ("Messages that often use the words abroad, saturday"),
        # which says nothing the user's name says: the rule the name makes stands in
        description = rule_of_value(name, turn.state.get("facet", ""), turn.state.get("about_topic"))
        ruled = f' Its rule now says what the name says: "{turn.rule(description)}"; give another after a colon.'
    if top is not None:
        renamed, text = rename_top(turn.tops, top["id"], name, description, named_by=named_by)
        return turn.with_tops(renamed, text=text + ruled)
    tax, entry = tx.rename(turn.tax, target.id, tx.printable(name), tx.printable(description) or None,
                           named_by=named_by)
    kept = ruled or (f' Its rule is unchanged: "{turn.rule(target.description)}"; give a new one after a colon.'
                     if not description else "")
    return Change(f'Renamed "{entry["from"]}" to "{entry["to"]}".{kept}', turn.fields(tax, turn.assignment, turn.labels))


def split_top(turn: Turn, top: dict, n: int) -> Change:
    """Split a top cluster in `n` (hierarchy.split_top)."""
    others = [t["name"] for t in turn.tops if t["id"] != top["id"]]
    try:
        tops, tax, text = hierarchy_split(turn.tops, top, n, turn.tax, turn.assignment, turn.ctx.vectors, turn.ctx.texts,
                                          turn.ctx.llm, turn.ctx.llm.usage.calls + turn.budget, turn.state["instruction"],
                                          turn.state.get("facet", ""), list(turn.tax.names) + others)
    except ValueError as e:
        raise CannotDo(str(e)) from None
    return turn.with_tops(tops, tax, text)


def _merged(turn: Turn, groups: list[list[int]], name_of) -> tuple[np.ndarray, tx.Taxonomy, dict, list[str]]:
    """Each group of several clusters merged into one under the name, rule and namer `name_of(i, group, tax,
    assignment)` gives the i-th group; what was done, in words."""
    assignment, tax, labels, done = turn.assignment, turn.tax, turn.labels, []
    for i, group in enumerate(groups):
        if len(group) < 2:
            continue
        named = name_of(i, group, tax, assignment)
        assignment, tax, entry = tx.merge(assignment, tax, list(group), named["name"], named["description"],
                                          named.get("named_by") or "model")
        labels = tx.remap_labels(labels, entry)
        done.append(f'"{named["name"]}" ({len(group)} clusters)')
    return assignment, tax, labels, done


def to_top_level(turn: Turn) -> Change:
    """The clusters of each top cluster merged into one, under the top cluster's name and rule: fewer, broader
    clusters where the run already found them, with no model call; one level is left."""
    tops = broad(turn.tops)
    assignment, tax, labels, done = _merged(turn, [top["children"] for top in tops], lambda i, *_: tops[i])
    return Change("Fewer, broader clusters: the clusters of each top cluster merged into one: " + ", ".join(done)
                  + ".", {**turn.fields(tax, assignment, labels), "tops": []})


def to_count(turn: Turn, count: int) -> Change:
    """`count` clusters, fewer than now: the clusters grouped by their centroids on what placed the texts
    (hierarchy.group_by_size), each group of several merged into one and named as a merge the user asks for
    is; one level is left."""
    if count < 2:
        raise CannotDo("Ask for at least 2 clusters: one would leave nothing to tell apart.")
    groups = group_by_size(turn.features, turn.assignment, list(turn.tax.ids), count, turn.ctx.seed)
    assignment, tax, labels, done = _merged(
        turn, groups, lambda i, group, tax, assignment: turn.merged_name(list(group), tax, assignment))
    return Change(f"{counted(len(tax.clusters), 'cluster')}, as asked: merged " + ", ".join(done) + ".",
                  {**turn.fields(tax, assignment, labels), "tops": []})


def finer(turn: Turn, extra: int) -> Change:
    """`extra` more clusters: the largest clusters split, each more part going to the cluster with the most texts
    a part (at most SPLIT_PARTS parts each), while the turn's model calls last."""
    tax, assignment, labels, budget = turn.tax, turn.assignment, turn.labels, turn.budget
    counts = tx.sizes(assignment, tax)
    largest = sorted(tax.clusters, key=lambda c: -counts[c.id])
    parts = {c.id: 1 for c in largest}
    room = len(largest) * (SPLIT_PARTS - 1)  # the most clusters splits can add
    for _ in range(min(extra, room)):
        open_ = [c for c in largest if parts[c.id] < SPLIT_PARTS]
        parts[max(open_, key=lambda c: counts[c.id] / parts[c.id]).id] += 1
    done, refused = [], []
    for target in [c for c in largest if parts[c.id] > 1]:
        try:
            assignment, tax, labels, entry = _split_one(turn, target, parts[target.id], tax, assignment, labels, budget)
            budget -= SPLIT_COST
            done.append(f'"{target.name}" -> ' + " + ".join(f'"{m}"' for m in entry["names"]))
        except CannotDo as e:
            refused.append(str(e))
    refused = list(dict.fromkeys(refused))  # once the budget is spent every later split is refused alike
    if not done:
        raise CannotDo(" ".join(["No cluster could be split.", *refused]))
    short = len(tax.clusters) < len(turn.tax.clusters) + extra
    why = refused or ([f"A cluster is split into at most {SPLIT_PARTS} parts."] if room < extra else [])
    note = " ".join(["", f"{counted(len(tax.clusters), 'cluster')}, fewer than asked.", *why]) if short else ""
    return Change("More, finer clusters: " + "; ".join(done) + "." + note, turn.fields(tax, assignment, labels))


def granularity(turn: Turn, d: RefineDecision) -> Change:
    """The number of clusters the message asks for (`d.n`, from its words: "make it 5 clusters"), or without one
    fewer, broader clusters (on a run of two levels, its top level; else the closest merged and named as a
    merge is) or more, finer ones (the largest split)."""
    tax, assignment, labels = turn.tax, turn.assignment, turn.labels
    k = len(tax.clusters)
    if d.n:
        if d.n == k:
            raise CannotDo(f"There {'is' if k == 1 else 'are'} {counted(k, 'cluster')} already.")
        return to_count(turn, d.n) if d.n < k else finer(turn, d.n - k)
    if d.direction == "fewer" and broad(turn.tops):
        return to_top_level(turn)
    if d.direction == "fewer":
        if k <= 2:
            raise CannotDo(f"There {'is' if k == 1 else 'are'} {counted(k, 'cluster')}; fewer would leave nothing to tell apart.")

        def merged_name(tax, assignment, a, b):  # as a merge the user asks for is named
            named = turn.merged_name([a, b], tax, assignment)
            return named["name"], named["description"], named["named_by"]

        assignment, tax, entries = tx.merge_closest(turn.features, assignment, tax,
                                                    max(2, min(k - 1, int(np.ceil(k * 2 / 3)))), merged_name,
                                                    each_once=True)
        for entry in entries:
            labels = tx.remap_labels(labels, entry)
        merged = [f'"{e["names"][0]}" + "{e["names"][1]}" -> "{e["name"]}"' for e in entries]
        return Change("Fewer, broader clusters: " + "; ".join(merged) + ".", turn.fields(tax, assignment, labels))
    if d.direction == "more":
        return finer(turn, int(np.ceil(k / 3)))
    raise CannotDo('Say whether you want "fewer, broader" or "more, finer" clusters.')


def reinstruct(turn: Turn, d: RefineDecision) -> Change:
    """Cluster the whole corpus again by a new instruction."""
    if not d.instruction.strip():
        raise CannotDo("Say the new instruction, e.g. 'cluster by sentiment instead'.")
    return Change(f"Clustered again by: {d.instruction.strip()}", turn.ctx.rerun(d.instruction.strip()))


def undo(turn: Turn, d: RefineDecision) -> Change:
    """Restore the clustering as it was before the last change."""
    if not turn.state.get("undo"):
        raise CannotDo("There is nothing to undo.")
    return Change("Undid the last change.", dict(turn.state["undo"][-1]))


def remove(turn: Turn, d: RefineDecision) -> Change:
    """Remove one cluster: each of its texts goes to the cluster nearest it on what placed the texts
    (Turn.next_closest, which explain names), and the model's labels of them are dropped."""
    if len(d.clusters) != 1 or turn.top(d.clusters[0]) is not None:
        raise CannotDo("Name the one cluster to remove (a top cluster's clusters are removed one by one).")
    target = turn.cluster(d.clusters[0])
    others = [c.id for c in turn.tax.clusters if c.id != target.id]
    if not others:
        raise CannotDo(f'"{target.name}" is the only cluster; its texts have nowhere to go.')
    rows = np.flatnonzero(turn.assignment == target.id)
    nearest = turn.next_closest(rows)
    assignment = turn.assignment.copy()
    assignment[rows] = nearest
    tax = turn.tax.without([target.id])
    labels = {r: c for r, c in turn.labels.items() if c != target.id}
    went = ", ".join(f'"{tax.by_id(c).name}" ({n})' for c, n in Counter(nearest.tolist()).most_common())
    return Change(f'Removed "{target.name}"; its {counted(len(rows), "text")} went to the clusters nearest them: {went}.',
                  turn.fields(tax, assignment, labels))


CHANGES: dict[str, Callable[[Turn, RefineDecision], Change]] = {
    "merge": merge, "split": split, "rename": rename, "reinstruct": reinstruct, "granularity": granularity,
    "undo": undo, "remove": remove,
}
