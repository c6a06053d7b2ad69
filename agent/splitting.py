"""Split one cluster into n more specific ones: the model names the parts, the texts' vectors place them.

Used by the agent's review step and by chat refinement, with the vectors that placed the run's texts
(views.assignment_features: the embeddings, or the view the run clustered on, such as the model's
reading). The model reads a diverse sample of the cluster, proposes n sub-clusters, and labels a few
members; a classifier over the vectors places the rest. When the model's labels all land in one part (a
small model often does that), the members are split by k-means on the vectors instead and each part is
named by the model from its texts, so a split that was asked for is made. Where the vectors follow the
facet (a chat split on a run that clustered them) that is the split from the start; a part the model
gives no valid name gets a statistical one, marked as such.
"""

from __future__ import annotations

import functools
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from pydantic import BaseModel, Field, create_model

from clusteragent.errors import ModelError, counted
from clusteragent.labelling import label_messages, label_schema
from clusteragent.name_rules import capitalised_words, plain_case, sentence_case, telling_words
from clusteragent.naming import name_members, statistical_name
from clusteragent.prompts import load_prompt
from clusteragent.schemas import ClusterSpec
from clusteragent.tools import taxonomy as tx
from clusteragent.tools.features import distinctive_words
from clusteragent.tools.propagate import propagate
from clusteragent.tools.sampling import diverse_sample
from clusteragent.wording import rule_of_value

SPLIT_READ = 12  # member texts the model reads to propose a split
SPLIT_LABELS = 8  # member texts the model labels to place the rest of a split
# ... where the user named the parts: the model's labels are then all that says where each part lies (8 gave
# 7 "Anger" and 1 "Sadness" on 1,006 comments, and a part of one text).
NAMED_SPLIT_LABELS = 16
MIN_SPLIT = 4  # fewest members a cluster needs to be split
SPLIT_PARTS = 8  # the most parts one split makes


@functools.lru_cache(maxsize=16)
def split_schema(low: int, high: int) -> type[BaseModel]:
    count = str(low) if low == high else f"{low} to {high}"
    return create_model("SplitProposal", clusters=(list[ClusterSpec], Field(min_length=low, max_length=high,
                                                                            description=f"{count} sub-clusters")))


@dataclass
class SplitPlan:
    """Where each member goes: parts[i] in 0..n-1 for members[i], with the parts' names and descriptions."""

    members: np.ndarray
    parts: np.ndarray
    specs: list[tuple[str, ...]]  # (name, description), with named_by "statistics" where the model named none
    labels: dict[str, int]  # row -> part, for the members the model labelled


def plan_split(llm, instruction: str, facet: str, target, texts: list[str], vectors: np.ndarray,
               members: np.ndarray, n: int = 2, taken: list[str] = (), calls_left: int = 10 ** 9,
               seed: int = 0, always: bool = False, by_structure: bool = False,
               named: Sequence[str] = (), about_topic: bool | None = None, narrower: bool = False,
               by: str = "") -> SplitPlan | str:
    """Plan the split of `target` (a taxonomy Cluster with these `members`) into n parts, or say why not.

    With `always`, a split the model cannot plan (no budget left, no valid proposal) is made by k-means
    on `vectors`, its parts named by statistics where the model cannot name them. With `by_structure` the split is
    k-means on `vectors` from the start, each part named from its own texts: where they follow the facet (the
    run made its clusters on them) the texts' own structure divides a cluster, as it made the clusters.
    Parts the user `named` ("into anger and sadness") are those names, one of them the whole's own where the
    user says so ("Split Positive into positive and neutral"): the model sorts members into them, and the rest
    follow; where its labels do not separate them, the split is made as without names. Their rules
    are made of their names: "Texts whose emotion is anger." where the facet is not subject matter
    (`about_topic` False or unknown), else "Texts about anger.". With `narrower` a part named from its texts
    takes the model's narrower name, as a cluster under a top level does in a run. A split `by` what the user
    says ("the platform they target") is the model's: it proposes the parts by that, n of them, or with n 0 as
    many as the texts show values (a part named as the whole, as another cluster or as another part, or one it
    then sorts fewer than two of its texts into, is dropped), and sorts members into them, as into named parts.
    """
    members = np.asarray(members, dtype=np.int64)
    if len(members) < max(MIN_SPLIT, n):
        held = counted(len(members), "text")
        return f'"{target.name}" has {held}; a split into {n} needs at least {max(MIN_SPLIT, n)}.'
    if calls_left < 1 and not always:
        return "the model budget is spent; no split was made."
    # Counted from the model's usage, so retries and refused names are counted too.
    spent_before = llm.usage.calls

    def left() -> int:
        return calls_left - (llm.usage.calls - spent_before)

    def by_kmeans(parts: int) -> SplitPlan | str:  # the split by the vectors, each part named from its texts
        return _kmeans_plan(llm, instruction, facet, target, texts, vectors, members, parts, taken, left, seed,
                            narrower)

    sub_vectors = vectors[members]
    free = not n and not named  # as many parts as the model proposes, less those it sorts nothing into
    if named:
        specs = [(sentence_case(name), rule_of_value(name, facet, about_topic), "user") for name in named]
    elif calls_left < 1 or (by_structure and not by):
        return by_kmeans(n or 2)
    else:
        read, _ = diverse_sample(sub_vectors, SPLIT_READ, seed=seed)
        low, high = (n, n) if n else (2, min(SPLIT_PARTS, len(members)))
        messages = load_prompt("split").messages(instruction=instruction, facet=facet, name=target.name,
                                                 description=target.description, by=by,
                                                 count=str(n) if n else f"{low} to {high}",
                                                 texts=[texts[members[i]] for i in read])
        try:
            proposal = llm.decide(messages, split_schema(low, high), step="split")
        except ModelError as e:
            if always:
                return by_kmeans(n or 2)
            return f"the split failed: {e}"
        # In plain case, as every name the model gives ("Food and Dining" -> "Food and dining"); a word the
        # texts themselves capitalise stays.
        proper = frozenset(capitalised_words(texts[members[i]] for i in read))
        specs = [(sentence_case(plain_case(c.name, proper)), c.description) for c in proposal.clusters]
    taken_lower = {t.lower() for t in taken if t.lower() != target.name.lower()}
    if free:  # a part named as the whole, as another cluster, or as an earlier part in more or fewer words is no
        # value of its own: the model listed "Web development tools" beside Drupal, Magento and SharePoint when
        # asked to split it, and "Drupal newbie" beside "Drupal newbie question"
        kept = []
        for spec in specs:
            words = telling_words(spec[0])
            if words and spec[0].lower() not in taken_lower | {target.name.lower()} and not any(
                    words <= telling_words(k[0]) or telling_words(k[0]) <= words for k in kept):
                kept.append(spec)
        specs = kept if len(kept) >= 2 else specs
    n = len(specs)
    names = [s[0] for s in specs]
    whole = set() if named else {target.name.lower()}  # the user may name a part as the whole
    usable = len({x.lower() for x in names}) == n and not any(x.lower() in taken_lower | whole for x in names)
    labels: dict[str, int] = {}
    wanted = NAMED_SPLIT_LABELS if named or by else SPLIT_LABELS
    chosen, _ = diverse_sample(sub_vectors, min(wanted, max(0, left() - n)), seed=seed + 7)
    if not usable:  # names that repeat or are taken cannot label anything: go to the k-means split
        chosen = chosen[:0]
    if len(chosen):
        schema = label_schema(tuple(names))
        shown = [{"name": a, "description": b} for a, b, *_ in specs]
        sorting = f'{instruction} Split "{target.name}" by {by}.' if by else instruction
        answers = llm.decide_many([label_messages(sorting, shown, texts[members[i]]) for i in chosen], schema,
                                  step="split", return_exceptions=True)
        for i, answer in zip(chosen, answers):
            if not isinstance(answer, Exception):
                labels[str(int(members[i]))] = names.index(answer.cluster)
    if free and len(set(labels.values())) >= 2:
        # A part the model sorted one text into is no value the texts show: asked to split a cluster of 22
        # by "what the case is about", it made six parts, three of one text each.
        counts = Counter(labels.values())
        used = sorted(p for p, c in counts.items() if c >= 2)
        used = used if len(used) >= 2 else sorted(counts)
        specs, n = [specs[p] for p in used], len(used)
        labels = {row: used.index(p) for row, p in labels.items() if p in used}
    if len(set(labels.values())) >= 2:
        rows = np.array([int(r) for r in labels], dtype=np.int64)
        # The labelled texts are a diverse sample: how many went to each part says nothing of its size (5 of
        # 16 "good news" sentences, weighed by count, placed no other of 195 there).
        parts, _, _, _ = propagate(sub_vectors, np.searchsorted(members, rows), np.array(list(labels.values())),
                                   seed=seed, balanced=True)
        if len(np.unique(parts)) == n:
            return SplitPlan(members, parts.astype(np.int64), specs, labels)
    # The labels did not separate the parts: split by the vectors and name each part from its texts (in two
    # where the model was to find how many: its count went with its parts).
    return by_kmeans(2 if free else n)


def _kmeans_plan(llm, instruction: str, facet: str, target, texts: list[str], vectors: np.ndarray,
                 members: np.ndarray, n: int, taken, left, seed: int, narrower: bool = False) -> SplitPlan | str:
    import warnings

    from sklearn.cluster import KMeans
    from sklearn.exceptions import ConvergenceWarning

    with warnings.catch_warnings():  # identical texts: fewer distinct points than parts, said below instead
        warnings.simplefilter("ignore", ConvergenceWarning)
        parts = KMeans(n, n_init=3, random_state=seed).fit_predict(vectors[members]).astype(np.int64)
    if len(np.unique(parts)) < n:
        return f'the texts of "{target.name}" are too alike to split into {n}.'
    specs: list[tuple[str, ...]] = []
    words = None  # the parts' distinctive words, found only where a part needs a statistical name
    for p in range(n):
        refused = [*taken, target.name, *(s[0] for s in specs)]
        spec = None
        if left() > 0:
            spec = name_members(llm, instruction, facet, texts, vectors, members[parts == p], refused, step="split",
                                whole=target.name, narrower=narrower)
        if spec is None:  # named as a run names a group the model gave nothing valid for, and marked so
            words = distinctive_words([texts[r] for r in members], parts) if words is None else words
            fallback = statistical_name(words.get(p, []), [texts[r] for r in members[parts == p]], refused)
            specs.append((fallback.name, fallback.description, fallback.named_by))
        else:
            specs.append((spec.name, spec.description))
    return SplitPlan(members, parts, specs, {})


def apply_split(assignment: np.ndarray, tax: tx.Taxonomy, labels: dict[str, int], plan: SplitPlan, target_id: int
                ) -> tuple[np.ndarray, tx.Taxonomy, dict[str, int], dict]:
    """Carry out a planned split: the new assignment, taxonomy and model labels, and the audit entry."""
    assignment, tax, entry = tx.split(assignment, tax, target_id, plan.members, plan.parts, plan.specs)
    if plan.labels:  # how many texts the model sorted into each part, which placed the rest
        entry["labelled"] = np.bincount(list(plan.labels.values()), minlength=len(plan.specs)).tolist()
    return assignment, tax, tx.remap_labels(labels, entry, plan.labels), entry


def split_until(llm, instruction: str, facet: str, texts: list[str], vectors: np.ndarray, assignment: np.ndarray,
                tax: tx.Taxonomy, labels: dict[str, int], k: int, calls_left: int, seed: int = 0):
    """Split the largest cluster in two until there are `k` (a k the user asked for is kept), with the model
    while `calls_left` allows and by k-means after; stops early only where no cluster can be split.
    Returns (assignment, taxonomy, labels, audit entries)."""
    audit = []
    spent_before = llm.usage.calls
    while len(tax.clusters) < k:
        splittable = [(c, size) for c, size in tx.by_size(assignment, tax) if size >= MIN_SPLIT]
        if not splittable:
            break
        target = splittable[0][0]
        plan = plan_split(llm, instruction, facet, target, texts, vectors, np.flatnonzero(assignment == target.id),
                          2, tax.names, calls_left - (llm.usage.calls - spent_before), seed, always=True)
        if isinstance(plan, str):
            break
        assignment, tax, labels, entry = apply_split(assignment, tax, labels, plan, target.id)
        audit.append(entry)
    return assignment, tax, labels, audit
