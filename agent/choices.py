"""A field that takes one of a list of names: a cluster to label a text with, to review or to refine."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BeforeValidator


def one_of(names: tuple[str, ...]):
    """A field type that takes one of `names`: the JSON schema lists them as they are written (a grammar holds
    the model to them), and an answer that differs only in case or spacing ("positive" for "Positive") is
    read as the name it matches; a server without a grammar writes names as it likes."""
    canonical = {" ".join(n.split()).lower(): n for n in names}

    def matched(v):
        if not isinstance(v, str) or v in names:
            return v
        return canonical.get(" ".join(v.split()).lower(), v)

    return Annotated[Literal[names], BeforeValidator(matched)]  # type: ignore[valid-type]
