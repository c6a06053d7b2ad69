"""Names for the top level: each top cluster named by the model from texts of each of its clusters, and the
cluster whose name already said what the top holds named again as a part of it.

A small model names clusters under a top level in two ways, a broad first name and a narrower second one;
where the second is another cluster's, the first stands, and the cluster then holds the name of what it
shares with its neighbours ("Sports" beside "Sports teams" and "Sports team coverage"). Asked for the name
of the top over them, the model gave that name again, and refusing it as a cluster's left the top a
statistical name ("games / sports"). The top takes it, and the cluster a narrower name
(children_renamed); so it does the name of the largest of three or more clusters, which the model gives
a top that is mostly that ("Neurophysiology" over it, "Muscle physiology" and two more).
"""

from __future__ import annotations

import re
from collections.abc import Iterable

import numpy as np

from clusteragent.name_rules import joined_parts, name_words, side_by_side
from clusteragent.naming import NAMING_TEXTS, name_group, name_members, statistical_name, unrequested
from clusteragent.tools import taxonomy as tx


def spread_members(vectors: np.ndarray, assignment: np.ndarray, children: list[int], n: int) -> np.ndarray:
    """`n` texts that show every part of a top cluster: the most central text of each of its clusters, largest
    first, then the second most central of each, and so on. (The top's own most central texts all came
    from its largest cluster, whose name the model then gave the top.)"""
    members = [np.flatnonzero(assignment == c) for c in children]
    ranked = [tx.central_members(vectors, m, n) for m in sorted(members, key=len, reverse=True)]
    rounds = [r[i] for i in range(n) for r in ranked if i < len(r)]
    return np.asarray(rounds[:n], dtype=np.int64)


def name_tops(llm, calls: int, instruction: str, facet: str, texts: list[str], vectors: np.ndarray,
              assignment: np.ndarray, groups: list[list[int]], tax: tx.Taxonomy, taken: list[str],
              current: str = "", show_bar: bool = False) -> list[dict]:
    """A name, an inclusion rule and who named it for each group of leaves: the model, shown texts of each of
    its clusters (spread_members) and their names, largest first (whose name the top may take), within
    `calls`, and where that answer is refused shown the names alone (asked again with the same texts, it gave
    the same answer at temperature 0); its only cluster's name for a group of one; the distinctive words
    (marked "statistics") where the model gives nothing valid. `current` is the name a group renamed has now
    (naming.name_group). With `show_bar`, a progress bar counts the groups of several clusters."""
    from tqdm.auto import tqdm

    from clusteragent.tools.features import distinctive_words

    top_of = {leaf: n for n, group in enumerate(groups) for leaf in group}
    rows_top = np.array([top_of.get(int(c), -1) for c in assignment])
    words = distinctive_words(texts, rows_top)
    taken, named = list(taken), []
    with tqdm(total=sum(len(g) > 1 for g in groups), desc="naming top clusters", unit="cluster",
              disable=not show_bar, leave=False) as bar:
        for n, group in enumerate(groups):
            rows = np.flatnonzero(rows_top == n)
            spec, named_by = None, "statistics"
            if len(group) == 1:  # a top of one cluster is that cluster, one level up
                spec, named_by = tax.by_id(group[0]), "its only cluster"
            elif llm is not None and calls - llm.usage.calls > 0:
                shown = [texts[r] for r in spread_members(vectors, assignment, group, NAMING_TEXTS)]
                sizes = np.bincount(assignment[rows], minlength=max(group) + 1)
                largest_first = sorted(group, key=lambda c: -sizes[c])  # the largest may give the top its name
                spec = _model_top_name(llm, calls, instruction, facet, shown, taken,
                                       [tax.by_id(c).name for c in largest_first], current)
                named_by = "model" if spec is not None else named_by
            if spec is None:
                spec = statistical_name(words.get(n, []), [texts[r] for r in rows], taken)
            named.append(named_top(spec, named_by))
            taken.append(spec.name)
            bar.update(len(group) > 1)
    return named


def _model_top_name(llm, calls: int, instruction: str, facet: str, shown: list[str], taken: list[str],
                    parts: list[str], current: str):
    """The model's name for a top over clusters `parts`, shown texts of each; where that answer is refused and
    `calls` allow, asked again with the names alone. None where neither gives a valid name."""
    spec = name_group(llm, instruction, facet, shown, taken, step="name_top_cluster", parts=parts, attempts=1,
                      current=current)
    if spec is None and calls - llm.usage.calls > 0:
        spec = name_group(llm, instruction, facet, shown, taken, step="name_top_cluster", parts=parts,
                          attempts=1, show_texts=False, current=current)
    return spec


def named_top(spec, named_by: str) -> dict:
    """A top's name, inclusion rule and who named it, from a ClusterSpec or a cluster (a top of one cluster)."""
    return {"name": tx.printable(spec.name), "description": tx.printable(spec.description), "named_by": named_by}


def names_each_part(name: str, parts: list[str], texts: Iterable[str] = ()) -> bool:
    """Whether `name` names each of the clusters `parts` rather than what they share: two names' own words
    joined with "and" ("Radio and Lego enthusiasts" over "Radio enthusiasts" and "Lego enthusiast"; a word
    both parts have, "Health and wellness" over "Health and medicine" and "Nutrition and health", is something
    they share), or every part's name set side by side ("VBA MATLAB", "Spring hibernate LINQ": see
    name_rules.side_by_side, which reads the top's `texts`). Asked for one name that covers them, the model
    found nothing they share."""
    if len(parts) == 2 and len(re.split(r"\s+(?:and|&)\s+", name)) == 2:
        return joined_parts(name, parts) is not None
    return side_by_side(name, parts, texts)


def without_paired_parts(groups: list[list[int]], names: list[dict], tax: tx.Taxonomy, texts: list[str],
                         assignment: np.ndarray) -> tuple[list, list, list]:
    """The groups and names with each top that the model named after each of its clusters (names_each_part),
    and each top of two clusters the model gave no valid name, made tops of one cluster, and the names of the
    tops undone: a reader of "Radio and Lego enthusiasts" learns that two unrelated communities sit side by
    side, not what they have in common, and a statistical name over two clusters ("god / israel" over
    "Christian morality" and "Israel terrorism") says less than their own names."""
    kept_groups, kept_names, undone = [], [], []
    for group, named in zip(groups, names):
        parts = [tax.by_id(c).name for c in group]
        members = (texts[r] for r in np.flatnonzero(np.isin(assignment, group)))
        unnamed = named["named_by"] == "statistics" and len(group) == 2
        if unnamed or named["named_by"] == "model" and names_each_part(named["name"], parts, members):
            undone.append(named["name"])
            kept_groups += [[c] for c in group]
            kept_names += [named_top(tax.by_id(c), "its only cluster") for c in group]
        else:
            kept_groups.append(group)
            kept_names.append(named)
    return kept_groups, kept_names, undone


def children_renamed(llm, calls: int, instruction: str, facet: str, texts: list[str], vectors: np.ndarray,
                     assignment: np.ndarray, tops: list[dict], tax: tx.Taxonomy) -> tuple[tx.Taxonomy, list[dict]]:
    """Each cluster whose name is its top cluster's, in the same words in any order (the top took the name that
    cluster gave what its neighbours share: see schemas.distinct_spec_schema), named again as a part of the top, unlike
    every other name, by the model within `calls` (shown the words that set it apart from the top's other
    clusters), else by its distinctive words. A name merely alike the top's ("Car care questions" under "Car
    care") stays: asked for another, the model gave "Checking". Returns the taxonomy and an audit entry per
    name, with who gave it and whether the model was asked."""
    from clusteragent.hierarchy import broad  # hierarchy imports this module
    from clusteragent.tools.features import distinctive_words

    audit, words = [], None  # every cluster's distinctive words, found once where one needs them
    for top in broad(tops):
        for c in top["children"]:
            name = tax.by_id(c).name
            if sorted(name_words(name)) != sorted(name_words(top["name"])):  # "Weapon hoarding", "Hoarding weapons"
                continue
            rows = np.flatnonzero(assignment == c)
            own = [texts[r] for r in rows]
            taken = [n for n in tax.names if n != name] + [t["name"] for t in tops]
            spec, named_by, asked = None, "model", llm is not None and calls - llm.usage.calls > 0
            if asked:  # shown what sets it apart from the top's other clusters: asked for a part's name without
                # it, the model gave the top's name and then its neighbour's
                in_top = np.flatnonzero(np.isin(assignment, top["children"]))
                apart = distinctive_words([texts[r] for r in in_top], assignment[in_top]).get(c, [])
                spec = name_members(llm, instruction, facet, texts, vectors, rows, taken, step="name_cluster",
                                    shared=unrequested(apart, own), within=top["name"], nested=True, narrower=True)
            if spec is None:
                words = distinctive_words(texts, assignment) if words is None else words
                spec = statistical_name(words.get(c, []), own, taken)
                named_by = "statistics"
            tax, entry = tx.rename(tax, c, tx.printable(spec.name), tx.printable(spec.description), named_by=named_by)
            audit.append({**entry, "by": f'finalize: the top cluster "{top["name"]}" took its name',
                          "named_by": named_by, "asked": asked})
    return tax, audit
