"""Read from the instruction's own words what kind of facet it asks for, and so which view of the
texts can follow it.

The small default model misjudges this (it can call "the language they are written in" a
subject-matter facet, which sends the run down the embedding path that cannot follow language). The
facet an instruction names usually follows its first "by": "by the language they are written in",
"by their writing style", "by the domain of life they are about". When that phrase names a known
kind of facet, it decides; otherwise the model's judgement stands.

Each view is a representation in which texts that share a value of the facet lie close together:
the meaning embeddings follow subject matter, character n-grams follow language, layout follows form
(docs/benchmarks.md measures each). Facets like sentiment, emotion or dialog act have none of these;
the model's own reading of each text under the instruction (reading.py, views.reading_view) is their
view where the corpus is small enough to read whole, and the model's labels carry them otherwise.
"""

from __future__ import annotations

import re
from typing import Literal

View = Literal["meaning", "characters", "layout", "reading"]

CHARACTER_WORDS = ("language", "script", "alphabet")
LAYOUT_WORDS = ("style", "form", "format", "layout", "length")
NOT_TOPICAL = CHARACTER_WORDS + LAYOUT_WORDS + (
    "tone", "register", "formality", "sentiment", "emotion", "mood", "feeling", "dialog act", "dialogue act",
    "speech act", "polarity", "politeness")
# Where a post was posted (a site, forum, subreddit or newsgroup) is a community gathered around a
# subject; a small model reads "by the Stack Exchange site" as another property.
TOPICAL = ("topic", "subject", "theme", "domain", "scenario", "intent", "category", "field", "area", "purpose",
           "content", "product", "issue", "site", "forum", "subreddit", "newsgroup")

# A word may hold an apostrophe: "by the user's specific intent" names the intent, not the user.
_BY = re.compile(r"\bby\s+(?:the\s+|their\s+|its\s+|a\s+|what\s+)?((?:[\w'’-]+\s+){0,2}[\w'’-]+)", re.IGNORECASE)


def _facet_phrase(instruction: str) -> str | None:
    match = _BY.search(instruction)
    return None if match is None else " " + match.group(1).lower() + " "


def _names(phrase: str, words: tuple[str, ...]) -> bool:
    return any(re.search(rf"\b{word}s?\b", phrase) for word in words)


def facet_is_topical(instruction: str) -> bool | None:
    """True for subject matter, False for another property, None when the words do not say."""
    phrase = _facet_phrase(instruction)
    if phrase is None:
        return None
    if _names(phrase, NOT_TOPICAL):
        return False
    if _names(phrase, TOPICAL):
        return True
    return None


def facet_view(instruction: str, about_topic: bool | None) -> View | None:
    """The view whose clusters follow the facet the instruction names, or None when none of these does
    (sentiment, emotion, speech act, ...: the model's reading or its labels). `about_topic` is the
    judgement to use when the instruction's words do not say whether it asks for subject matter."""
    phrase = _facet_phrase(instruction) or ""
    if _names(phrase, CHARACTER_WORDS):
        return "characters"
    if _names(phrase, LAYOUT_WORDS):
        return "layout"
    topical = facet_is_topical(instruction)
    return "meaning" if (about_topic if topical is None else topical) else None
