"""Read from the instruction's own words whether it asks for subject matter or another property.

The small default model misjudges this (it called "the language they are written in" a
subject-matter facet, which sends the run down the embedding path that cannot follow language). The
facet an instruction names usually follows its first "by": "by the language they are written in",
"by their writing style", "by the domain of life they are about". When that phrase names a known
kind of facet, it decides; otherwise the model's judgement stands.
"""

from __future__ import annotations

import re

NOT_TOPICAL = ("language", "style", "tone", "register", "formality", "sentiment", "emotion", "mood", "feeling",
               "dialog act", "dialogue act", "speech act", "polarity", "politeness", "length", "format", "form")
TOPICAL = ("topic", "subject", "theme", "domain", "scenario", "intent", "category", "field", "area", "purpose",
           "content", "product", "issue")

_BY = re.compile(r"\bby\s+(?:the\s+|their\s+|its\s+|a\s+|what\s+)?((?:[\w-]+\s+){0,2}[\w-]+)", re.IGNORECASE)


def facet_is_topical(instruction: str) -> bool | None:
    """True for subject matter, False for another property, None when the words do not say."""
    match = _BY.search(instruction)
    if match is None:
        return None
    phrase = " " + match.group(1).lower() + " "
    for word in NOT_TOPICAL:
        if re.search(rf"\b{word}s?\b", phrase):
            return False
    for word in TOPICAL:
        if re.search(rf"\b{word}s?\b", phrase):
            return True
    return None
