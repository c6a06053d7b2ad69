"""What a chat message asks of a split, or of a count of clusters: how many parts ("into three"), along what
("by the platform they target"), under which names ("into anger and sadness"); how many clusters it counts
("the two clusters about cars"). Quoted cluster names are never read as any of these."""

from __future__ import annotations

import re
from collections.abc import Iterable

from clusteragent.refine_names import blanked
from clusteragent.stated import NUMBER_WORDS

_COUNTS = {word: n for word, n in NUMBER_WORDS.items() if 2 <= n <= 8}  # a split's parts: two to eight
_INTO = re.compile(r"\b(?:into|in)\s+(" + "|".join(_COUNTS) + r"|[2-8])\b", re.I)


def parts_asked(message: str, default: int = 2) -> int:
    """How many parts a split message asks for ("into three", "in 4"), outside quoted names; `default` where it
    says no number ("in half", or nothing: a small model answered 6 to "Split X into two.")."""
    found = _INTO.search(blanked(message))
    return int(_COUNTS.get(found.group(1).lower(), found.group(1))) if found else default


_COUNTED = re.compile(r"\b(both|" + "|".join(_COUNTS) + r"|[2-8])\s+(?:\w+\s+)?(?:clusters|groups|categories|ones)\b", re.I)


def clusters_counted(message: str) -> int:
    """How many clusters a message counts ("the two clusters about cars", "both car groups"), outside quoted
    names; 0 where it counts none."""
    found = _COUNTED.search(blanked(message))
    if not found:
        return 0
    word = found.group(1).lower()
    return 2 if word == "both" else int(_COUNTS.get(word, word))


_ALONG = re.compile(r"\b(?:by|according\s+to|based\s+on)\s+(?!whether\b)(?P<by>[^.?!;:]+)", re.I)
_ALONG_END = re.compile(r"\s+(?:into|in\s+(?:" + "|".join(_COUNTS) + r"|[2-8])\b)|[\s,]+(?:please|thanks|thank you)\b.*",
                        re.I)


def split_criterion(message: str, clusters: Iterable[str] = ()) -> str:
    """What a split message says to split along ("by the platform they target", "according to price"), or ""
    where it says nothing; "by whether it is about jobs or money" names the parts instead (parts_named). A
    quoted name of one of `clusters` is not read ('Split "Made by hand"')."""
    found = _ALONG.search(blanked(message, clusters))
    if not found:
        return ""
    return _ALONG_END.split(found.group("by"))[0].strip(" ,\"'“”‘’")


_PARTS_AFTER = re.compile(r"(?:\b(?:into|in)\s+(?:(?:" + "|".join(_COUNTS) + r"|[2-8])(?:\s+\w+)?\s*:\s*)?"
                          r"|\bby\s+whether\s+(?:it|they|the\s+\w+)\s+(?:is|are)\s+(?:about\s+)?)(?P<parts>[^.?!;:]+)", re.I)
_LISTED = re.compile(r"\s*(?:,\s*(?:and|or)\s+|,|\band\b|\bor\b|&)\s*", re.I)


def parts_named(message: str, clusters: Iterable[str] = ()) -> list[str]:
    """The names a split message gives its parts ("into anger and sadness", 'into "Flights", "Hotels" and
    "Car rentals"', "into two groups: praise and complaints", "by whether it is about jobs or money"), or []
    where it gives a count, a half or one thing ("into three", "in half", "into more specific groups"). A
    quoted name of one of `clusters` is not read ("Living in Italy")."""
    found = _PARTS_AFTER.search(blanked(message, clusters))
    if not found:
        return []
    parts = [re.sub(r"^(?:the|a|an)\s+", "", p.strip().strip("\"'“”‘’").strip(), flags=re.I)
             for p in _LISTED.split(found.group("parts"))]
    parts = [re.sub(r"\s+(?:please|thanks|thank you)$", "", p, flags=re.I) for p in parts if p]  # "... and golf please"
    if not 2 <= len(parts) <= 8 or any(len(p.split()) > 4 or p.lower() in _COUNTS or p.isdigit() for p in parts):
        return []
    return parts
