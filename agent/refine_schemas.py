"""The schemas of the two decisions that read a chat message: which operation (ActionChoice), then that
operation's arguments (argument_schema)."""

from __future__ import annotations

import functools
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, create_model

from clusteragent.choices import one_of
from clusteragent.refine_matching import BY_DESCRIPTION
from clusteragent.refine_names import NOT_LISTED
from clusteragent.refine_ops import CHANGES
from clusteragent.refine_questions import QUESTIONS

OPERATIONS = {**CHANGES, **BY_DESCRIPTION, **QUESTIONS}
# The model is not offered "remove": the message's own words ask for it (refine_names.operation_asked).
ACTIONS = tuple(a for a in OPERATIONS if a != "remove") + ("none",)


class ActionChoice(BaseModel):
    # Only the action: with a `reason` field before it, the small model wrote the operation's name as
    # the reason and "none" as the action.
    action: Literal[ACTIONS] = Field(description="the operation the message asks for")  # type: ignore[valid-type]


_NAME = (str, Field(max_length=40, description="a short cluster name, 1-3 words"))
_RULE = (str, Field(max_length=160, description="one sentence that says which texts belong"))
_IDS = (list[str], Field(max_length=50, description="the text ids written in the message (empty if none)"))


@functools.lru_cache(maxsize=128)
def argument_schema(action: str, names: tuple[str, ...]) -> type[BaseModel] | None:
    """The arguments one action takes, and nothing else: a small model fills every field it is shown.

    A cluster is chosen from the listed names, or NOT_LISTED when the user named one that does not exist.
    """
    cluster = one_of(names + (NOT_LISTED,))
    one = (cluster, Field(description="the cluster the message names"))
    fields = {
        "merge": {"clusters": (list[cluster], Field(min_length=2, max_length=2, description="the two clusters")),
                  "new_name": (str, Field(max_length=40, description="a name for the merged cluster, or empty")),
                  "description": (str, Field("", max_length=160, description="what the clusters to merge are "
                                                                               "about, where the message says so"))},
        "split": {"cluster": one, "n": (int, Field(ge=2, le=8, description="how many parts (2 unless the user says)"))},
        "rename": {"cluster": one, "new_name": _NAME,
                   "description": (str, Field(max_length=160, description="its new rule, or empty"))},
        "move": {"cluster": (cluster, Field(description="the cluster the texts should go to")), "ids": _IDS,
                 "description": (str, Field(max_length=160, description="the texts the user describes, if no ids"))},
        "add_cluster": {"new_name": _NAME, "description": _RULE, "ids": _IDS},
        "reinstruct": {"instruction": (str, Field(min_length=3, max_length=400, description="the new instruction"))},
        "granularity": {"direction": (Literal["fewer", "more"], Field(description="fewer, broader or more, finer"))},
        "explain": {"ids": _IDS},
        "describe": {"cluster": one},
        "remove": {"cluster": one},
        "find": {"description": (str, Field(min_length=2, max_length=160,
                                            description="what the texts the user looks for are about"))},
    }.get(action)
    if not fields:
        return None
    # Every field is asked for, defaults included: a small model leaves out a field it may (a merge's description).
    return create_model(f"{action.title().replace('_', '')}Arguments", **fields,
                        __config__=ConfigDict(json_schema_extra={"required": list(fields)}))
