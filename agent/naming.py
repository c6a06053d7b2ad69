"""Naming one group of texts through the model, with a name no other group has."""

from __future__ import annotations

from typing import Sequence

from clusteragent.errors import ModelError
from clusteragent.prompts import load_prompt
from clusteragent.schemas import ClusterSpec, distinct_spec_schema, requested_words


def name_group(llm, instruction: str, facet: str, texts: Sequence[str], taken: Sequence[str],
               step: str, shared: Sequence[str] = ()) -> ClusterSpec | None:
    """The model's name and inclusion rule for a group shown by `texts`, or None when it gives no valid one.

    `shared` lists, in words, what statistics found the group's texts have more of than the others
    (for a group of the layout view: "many lines", "whole lines in capitals"); the model sees it.

    A name already in `taken` is refused with the reason, which the model sees on its retry (a small
    model otherwise calls every group of "domain of life" queries "Life").
    """
    messages = load_prompt("name_cluster").messages(instruction=instruction, facet=facet, taken=list(taken),
                                                    texts=list(texts), shared=list(shared))
    try:
        return llm.decide(messages, distinct_spec_schema(tuple(taken), requested_words(texts)), step=step)
    except ModelError:
        return None
