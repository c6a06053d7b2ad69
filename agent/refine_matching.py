"""The operations of a chat message that find texts by a description in words (move, add_cluster), listed
in BY_DESCRIPTION, and the ranking and checking they share."""

from __future__ import annotations

import re
from collections.abc import Callable

import numpy as np

from clusteragent.errors import counted
from clusteragent.fits import Match, group_fits_request
from clusteragent.hierarchy import with_tops
from clusteragent.name_rules import capitalised_words, plain_case
from clusteragent.prompts import load_prompt
from clusteragent.refine_names import as_written, described_in
from clusteragent.refine_turn import CannotDo, Change, RefineDecision, Turn, rows_for_ids
from clusteragent.tools import taxonomy as tx
from clusteragent.wording import rule_of_value

MATCH_CANDIDATES = 200  # texts nearest a description whose cut the model's checks of single texts find
MATCH_CHECKS = 12  # single texts a move or add_cluster by description checks, after half as many clusters
CLUSTER_CHECKS = 12  # clusters nearest a description that a merge by description checks


def similarities(turn: Turn, description: str) -> np.ndarray:
    """Each text's cosine similarity to a description in words (the embeddings are unit length)."""
    return turn.ctx.vectors @ turn.ctx.embed([description])[0]


def matching_rows(turn: Turn, description: str, exclude: set[int]) -> tuple[np.ndarray, str]:
    """The texts that fit a description, clusters in `exclude` left out: every text of the clusters nearest it
    that the model says fit as a group, then the texts nearest it outside those, their cut found by the
    model's checks of single texts.

    Ranking single texts alone reached few of them: the texts nearest a description in words are often not
    the ones that fit it, and a cluster's texts that fit may be more than the candidates.
    """
    if turn.budget < 1:
        raise CannotDo("the model budget for this turn is spent; nothing was moved.")
    sims = similarities(turn, description)
    found, how = described_clusters(turn, description, exclude, min(MATCH_CHECKS // 2, turn.budget // 2), sims,
                                     least_like=True)
    in_found = np.isin(turn.assignment, [c.id for c in found])
    sims[in_found | np.isin(turn.assignment, sorted(exclude))] = -np.inf
    rows, verdict = cut_by_checks(turn, description, sims, MATCH_CHECKS)
    if not verdict and not found:
        raise CannotDo("the model could not check which texts fit; nothing was moved.")
    how = f"{how} ({len(found)} fit) and {counted(len(verdict), 'text')} nearest it outside those ({sum(verdict.values())} fit)"
    return np.concatenate([np.flatnonzero(in_found), rows]), how


def cut_by_checks(turn: Turn, description: str, sims: np.ndarray, checks: int) -> tuple[np.ndarray, dict[int, bool]]:
    """Of the texts ranked by `sims` (-inf: not considered), those that fit a description, and the model's
    answers by rank: it checks (yes/no) `checks` candidates spread over the MATCH_CANDIDATES nearest and the
    cut falls where its answers agree best with "everything above fits"; the texts it checked keep its
    answer on either side of the cut."""
    ctx = turn.ctx
    ranked = np.argsort(-sims, kind="stable")[:min(MATCH_CANDIDATES, int(np.isfinite(sims).sum()))]
    checks = min(checks, turn.budget, len(ranked))
    if checks < 1:
        return ranked[:0], {}
    positions = np.unique(np.round(np.geomspace(1, len(ranked), checks)).astype(int) - 1)
    requests = [load_prompt("match").messages(description=description, text=ctx.texts[ranked[p]]) for p in positions]
    answers = ctx.llm.decide_many(requests, Match, step="refine", return_exceptions=True)
    turn.budget -= len(requests)
    verdict = {int(p): (a.fits == "yes") for p, a in zip(positions, answers) if not isinstance(a, Exception)}
    best_cut, best_score = 0, -1
    for cut in [0] + [p + 1 for p in sorted(verdict)]:
        score = sum(1 for p, yes in verdict.items() if (p < cut) == yes)
        if score > best_score:
            best_cut, best_score = cut, score
    fits = np.zeros(len(ranked), dtype=bool)
    fits[:best_cut] = True
    for p, yes in verdict.items():
        fits[p] = yes
    return ranked[fits], verdict


def described_clusters(turn: Turn, description: str, exclude: set[int], checks: int,
                       sims: np.ndarray | None = None, least_like: bool = False) -> tuple[list[tx.Cluster], str]:
    """The clusters (other than `exclude`) that fit a description: the `checks` whose texts lie nearest it
    (`sims`: each text's similarity to it, when already worked out), each checked by the model on its name
    and most typical texts (with `least_like`, half of them its texts least like the description, so that
    a cluster only part of which fits shows that part: fits.group_fits_request); and how they were found."""
    ctx, features = turn.ctx, turn.features
    candidates = [c for c in turn.tax.clusters if c.id not in exclude]
    members = {c.id: np.flatnonzero(turn.assignment == c.id) for c in candidates}
    candidates = [c for c in candidates if len(members[c.id])]
    likeness = similarities(turn, description) if sims is None else sims
    candidates.sort(key=lambda c: -float(likeness[members[c.id]].mean()))
    candidates = candidates[:max(0, checks)]
    shown_likeness = likeness if least_like else None
    requests = [group_fits_request(description, c.name, ctx.texts, features, members[c.id], shown_likeness)
                for c in candidates]
    answers = ctx.llm.decide_many(requests, Match, step="refine", return_exceptions=True) if requests else []
    turn.budget -= len(requests)
    fits = [c for c, a in zip(candidates, answers) if not isinstance(a, Exception) and a.fits == "yes"]
    return fits, f"the model checked the {counted(len(candidates), 'cluster')} nearest it"


def rows_asked(turn: Turn, d: RefineDecision, exclude: set[int]) -> tuple[np.ndarray, str]:
    """The texts a message gives by id, else those that fit its description (matching_rows, the clusters of
    `exclude` left out), and how they were found. An "id" that is a cluster's name and no text's id is the
    model's copy of the cluster into the wrong field ("into Cookbook" read as ten ids "Cookbook"): dropped."""
    text_ids = {str(i) for i in turn.ctx.ids}
    ids = [i for i in d.ids if str(i).strip() in text_ids or turn.tax.find(str(i)) is None]
    if ids:
        return rows_for_ids(turn.ctx, ids), "by id"
    if d.description.strip():
        return matching_rows(turn, d.description, exclude)
    raise CannotDo("Say which texts to move: their ids, or a description of them.")  # add_cluster needs a description


def move(turn: Turn, d: RefineDecision) -> Change:
    """Move texts, given by id or described in words, into one cluster; the user's word becomes a label. A
    move to a top cluster puts the clusters the message names under it (Turn.put_under); one out of a top
    cluster, or to the top level, puts them there on their own (Turn.take_out)."""
    if len(d.clusters) != 1:
        raise CannotDo("A move needs the one cluster the texts should go to.")
    top = turn.top(d.clusters[0])
    if top is not None and turn.tax.find(d.clusters[0]) is None and (leaves := turn.leaves_named()):
        return turn.put_under(top, leaves)  # 'Put "Oil change" under "Car care"'
    if turn.taken_out() and (leaves := turn.leaves_named()):
        return turn.take_out(leaves)  # 'Take "Gas type" out of "Car care"'
    target = turn.cluster(d.clusters[0])  # a top cluster with no cluster named: the reply lists its clusters
    rows, how = rows_asked(turn, d, {target.id})
    rows = rows[turn.assignment[rows] != target.id]
    if len(rows) == 0:
        return Change(f'No texts needed moving into "{target.name}" ({how}).')
    fields, note = turn.placed(turn.tax, rows, target.id)
    return Change(f'Moved {counted(len(rows), "text")} into "{target.name}" ({how}).{note}', fields)


def add_cluster(turn: Turn, d: RefineDecision) -> Change:
    """Add a cluster by name and description; the texts given by id ("put texts 14 and 20 in a new cluster"),
    else those that fit the description, move into it."""
    name, message = d.new_name.strip(), turn.state.get("message", "")
    if name:  # as the message writes it, else the model's in plain case as a run's names are
        name = as_written(name, message) or plain_case(name, capitalised_words([message]))
    if not name or not d.description.strip():
        raise CannotDo("A new cluster needs a name and a description of the texts that belong to it.")
    rule = d.description
    if copies_a_rule(rule, message, [c.description for c in with_tops(turn.tax, turn.tops).clusters]):
        # its rule is made of its name, and the texts are matched to what the message calls them
        rule = rule_of_value(name, turn.state.get("facet", ""), turn.state.get("about_topic"))
        d = d.model_copy(update={"description": described_in(message, names=turn.names()) or rule})
    if turn.tax.find(name) is not None:
        raise CannotDo(f'There is already a cluster "{name}"; use move to put texts into it.')
    rows, how = rows_asked(turn, d, set())
    if len(rows) == 0:
        raise CannotDo(f'No texts fit "{d.description.strip()}" ({how}); no cluster was added.')
    tax, cid = turn.tax.added(name, rule)
    fields, note = turn.placed(tax, rows, cid)
    return Change(f'Added "{name}" with {counted(len(rows), "text")} ({how}).{note}', fields)


def copies_a_rule(rule: str, message: str, listed: list[str]) -> bool:
    """Whether `rule` takes two or more words that the message does not write from one of the `listed` rules:
    for "Move the WordPress questions into their own cluster." the model gave the new cluster the rule "Texts
    about WordPress, Drupal, Magento, and more.", after the top cluster over them all, and the texts matched
    to it were those of Drupal and Magento too."""
    from sklearn.feature_extraction.text import ENGLISH_STOP_WORDS

    def words(text: str) -> set[str]:
        return set(re.findall(r"\w+", text.lower())) - ENGLISH_STOP_WORDS

    extra = words(rule) - words(message) - {"texts", "text"}
    return len(extra) >= 2 and any(len(extra & words(r)) >= 0.75 * len(extra) for r in listed)


BY_DESCRIPTION: dict[str, Callable[[Turn, RefineDecision], Change]] = {"move": move, "add_cluster": add_cluster}
