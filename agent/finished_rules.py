"""Rules mended when a run ends, each change in its audit: the examples a rule lists that no text of its cluster
mentions are left out (wording.with_examples_found), and a rule that says nothing the instruction does not say
of every text is made of its cluster's name instead (wording.says_only_the_instruction)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from clusteragent.name_rules import capitalised_words
from clusteragent.tools import taxonomy as tx
from clusteragent.wording import rule_of_value, says_only_the_instruction, with_examples_found


def top_mentions(top: dict, tax: tx.Taxonomy, assignment: np.ndarray, texts: Sequence[str]) -> list[str]:
    """What a top cluster's rule may take examples from: the texts of its clusters, and their names."""
    return [texts[r] for r in np.flatnonzero(np.isin(assignment, top["children"]))] + \
        [tax.by_id(c).name for c in top["children"]]


def finished_rules(tax: tx.Taxonomy, tops: list[dict], assignment: np.ndarray, texts: Sequence[str],
                   instruction: str, facet: str = "", about_topic: bool | None = None,
                   ) -> tuple[tx.Taxonomy, list[dict], list[dict]]:
    """Every cluster's and top cluster's rule mended as the module says (the rule made of a name worded for
    `facet` and `about_topic`, wording.rule_of_value). Returns the taxonomy, the tops and an audit entry per
    rule changed."""
    def mended(name: str, rule: str, mentions: list[str], what: str) -> tuple[str, str]:
        found = with_examples_found(rule, mentions)
        if says_only_the_instruction(found, name, instruction):
            return (rule_of_value(name, facet, about_topic, capitalised_words(mentions)),
                    "finalize: a rule that says only what the instruction says of every text")
        return found, f"finalize: examples no text of the {what} mentions"

    audit = []
    for c in tax.clusters:
        rule, why = mended(c.name, c.description, [texts[r] for r in np.flatnonzero(assignment == c.id)], "cluster")
        if rule != c.description:
            audit.append({"op": "describe", "cluster": c.id, "from": c.description, "to": rule, "by": why})
            tax, _ = tx.rename(tax, c.id, c.name, rule)
    kept = []
    for top in tops:
        rule, why = mended(top["name"], top["description"], top_mentions(top, tax, assignment, texts), "top cluster")
        if rule != top["description"] and len(top["children"]) > 1:  # a top of one cluster is that cluster
            audit.append({"op": "describe", "cluster": top["id"], "from": top["description"], "to": rule, "by": why})
        kept.append({**top, "description": rule})
    return tax, kept, audit
