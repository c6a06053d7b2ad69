"""Does a group of texts fit a description? The yes/no the embedded model answers far better than it picks
one cluster from a long list: a chat's merge by description asks it of each cluster near the description,
and an update asks it of a group of new texts against the cluster most of them were placed in."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import numpy as np
from pydantic import BaseModel, Field

from clusteragent.prompts import load_prompt
from clusteragent.tools import taxonomy as tx

GROUP_TEXTS = 4  # the typical texts of a group the model sees when checking it


class Match(BaseModel):
    fits: Literal["yes", "no"] = Field(description="yes when the text fits the description")


def group_fits_request(description: str, name: str, texts: Sequence[str], vectors: np.ndarray,
                       members: np.ndarray, likeness: np.ndarray | None = None) -> list:
    """The messages asking whether the group `members` (rows of `texts`/`vectors`), called `name`, fits
    `description`, shown its GROUP_TEXTS most typical texts; given `likeness` (each text's similarity to the
    description), half of them are the group's texts least like it instead, so that a group only part of
    which fits (angry and glad texts about cooking, asked about "angry texts") shows that part too."""
    shown = tx.central_members(vectors, members, GROUP_TEXTS)
    if likeness is not None:
        shown = shown[:GROUP_TEXTS // 2]
        rest = members[~np.isin(members, shown)]
        shown = np.concatenate([shown, rest[np.argsort(likeness[rest], kind="stable")[:GROUP_TEXTS - len(shown)]]])
    return load_prompt("match_cluster").messages(description=description, name=name,
                                                 texts=[texts[r] for r in shown])
