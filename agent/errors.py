"""Errors a user can fix. The CLI prints them as one line and exits with code 2."""

import sys
import warnings
from collections.abc import Sequence

MAX_LISTED = 10  # how many offending items (ids, lines) a message lists before it says "and N more"


def listing(items: Sequence) -> str:
    """Items for a message: the first MAX_LISTED (strings quoted), then how many more."""
    shown = ", ".join(repr(i) if isinstance(i, str) else str(i) for i in items[:MAX_LISTED])
    more = len(items) - MAX_LISTED
    return shown + (f" and {more} more" if more > 0 else "")


def plural(noun: str, n: int) -> str:
    """The noun, plural unless `n` is 1: "line" for one, "lines" for 0 or 2."""
    return noun if n == 1 else f"{noun}s"


def counted(n: int, noun: str) -> str:
    """`n` and the noun, plural unless `n` is 1: "1 cluster", "40 texts", "2,000 texts"."""
    return f"{n:,} {plural(noun, n)}"


def warn(message: str, category: type[Warning]) -> None:
    """warnings.warn shown at the first caller outside this package: the line of the user's code that read the
    corpus, not the library's own line several calls below it."""
    frame, level = sys._getframe(1), 2
    while frame is not None and frame.f_globals.get("__name__", "").partition(".")[0] == "clusteragent":
        frame, level = frame.f_back, level + 1
    warnings.warn(message, category, stacklevel=level)


class ClusterAgentError(Exception):
    """Base class: the message says what is wrong and what to do about it."""


class CorpusError(ClusterAgentError, ValueError):
    """The input corpus cannot be read or fails validation."""


class ConfigError(ClusterAgentError, ValueError):
    """An option or setting has a value that cannot work."""

    @classmethod
    def from_validation(cls, error) -> "ConfigError":
        """One line from a pydantic ValidationError: the first field, what is wrong, what was given."""
        first = error.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        message = error_message(first)
        if where:
            return cls(f"setting {where!r}: {message} (got {first.get('input')!r}).")
        return cls(message)


def error_message(error: dict) -> str:
    """One pydantic error's message without the "Value error, " its own validators' messages get (shown it, the
    model once named a group "Value error")."""
    return error["msg"].removeprefix("Value error, ")


class ModelError(ClusterAgentError, RuntimeError):
    """A model could not be loaded or did not answer usefully after the allowed retries. `answers` holds the
    refused answers, as the model wrote them."""

    def __init__(self, *args, answers: tuple[str, ...] = ()):
        super().__init__(*args)
        self.answers = answers


class ModelUnavailable(ClusterAgentError, RuntimeError):
    """The model server failed several calls in a row: the run stops (its finished work is kept) rather
    than spend the rest of its budget on retries against a server that is down. Not a ModelError, so
    that the steps that carry on past one failed answer do not carry on past this."""


class BudgetSpent(ModelError):
    """The run's model budget is spent: no request was sent. The steps that carry on past one failed answer
    carry on past this one too, with what they have."""
