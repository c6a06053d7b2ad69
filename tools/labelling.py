"""Label texts with cluster names: the model's part of assigning texts.

A small model is good at choosing one of a few named clusters for one text and poor at labelling many
texts in one answer (measured: with 20 texts per request the 0.5B model gave one cluster to all of
them), so each request carries one delimited text; the cluster list sits in the system prompt, which
is identical across requests, so a llama.cpp server reuses its cached prefix.
"""

from __future__ import annotations

import functools
import re
from typing import Literal, Sequence

from pydantic import BaseModel, Field, create_model


@functools.lru_cache(maxsize=256)
def label_schema(cluster_names: tuple[str, ...]) -> type[BaseModel]:
    """A schema whose only field, `cluster`, must be one of the cluster names."""
    if not cluster_names:
        raise ValueError("need at least one cluster name")
    return create_model("ClusterChoice",
                        cluster=(Literal[cluster_names], Field(description="the name of the chosen cluster")))


# A cluster with one of these names stands for texts that show no value of the facet.
# Not "other": a catch-all is for texts of values nobody listed, not for texts without a value.
_ABSENT = re.compile(r"(neutral|none|nothing|no [a-z]+( [a-z]+)?|not applicable|n/a)")


def absent_value(names: Sequence[str]) -> str | None:
    """The cluster name that stands for the facet's absence ("neutral", "no emotion", "none"), if one does."""
    return next((n for n in names if _ABSENT.fullmatch(n.strip().lower())), None)


def label_messages(instruction: str, clusters: Sequence[dict], text: str):
    """The label_text prompt for these clusters ({name, description}) and one text."""
    from clusteragent.prompts import load_prompt

    return load_prompt("label_text").messages(instruction=instruction, clusters=list(clusters), text=text)
