"""What an instruction asks for in so many words: how many clusters ("into 5 groups", "between four and
eight topics", "at most 10 categories") and which ("by sentiment: positive, negative or neutral", "into
billing, shipping and returns").

A user who writes these into the instruction means them as much as `--k` or `--k-min/--k-max`, so the run
takes them as theirs (AgentConfig.for_instruction); the options, where given, win. The reading is
deterministic: a number counts only next to a word for groups, or after "into", so "these 2,000 queries",
"posts from 2021" or "the top 10 airlines" set nothing; values count only as a list of two or more short
ones after "into", "as", a colon or a bracket that ends the sentence, or after a question's subject ("Is
each review positive or negative?"), none of them a word for groups or a clause ("into clusters by aspect
and sentiment" lists nothing).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

NUMBER_WORDS = {"one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7, "eight": 8, "nine": 9,
                "ten": 10, "eleven": 11, "twelve": 12, "thirteen": 13, "fourteen": 14, "fifteen": 15, "sixteen": 16,
                "seventeen": 17, "eighteen": 18, "nineteen": 19, "twenty": 20, "a dozen": 12, "dozen": 12}

_NUM = r"(?<![\d,.])(?:\d{1,4}|" + "|".join(sorted(NUMBER_WORDS, key=len, reverse=True)) + r")(?![\d,.]\d)"
_GROUP_WORDS = (r"groups?|clusters?|categor(?:y|ies)|buckets?|class(?:es)?|types?|kinds?|themes?|topics?|segments?"
                r"|bins?|piles?|tiers?|sections?|families|family|partitions?")
_GROUPS = rf"(?:{_GROUP_WORDS})"
# At most one word between a number and its noun ("5 broad topics"), never a joining word: "300 tweets into
# topics" and "one of two categories" set no count from their first number.
_BETWEEN = r"(?:\s+(?!(?:of|the|a|an|into|in|by|and|or|for|per|each|from|to|with|about)\b)[a-z-]+)?\s+"
_NOUN = _BETWEEN + _GROUPS + r"\b"


def _num(text: str) -> int:
    return NUMBER_WORDS.get(" ".join(text.lower().split()), None) or int(text)


# Each form: its pattern (named groups a, b) and how it turns the numbers into (k_min, k_max).
_FORMS = [
    (rf"\b(?:between|from)\s+(?P<a>{_NUM})\s+(?:and|to)\s+(?P<b>{_NUM}){_NOUN}", lambda a, b: (a, b)),
    (rf"\b(?P<a>{_NUM})\s*(?:-|–|to|or)\s*(?P<b>{_NUM}){_NOUN}", lambda a, b: (a, b)),
    (rf"\b(?:at most|no more than|not more than|up to|a maximum of|maximum of|max)\s+(?P<a>{_NUM}){_NOUN}",
     lambda a, b: (None, a)),
    (rf"\b(?:fewer|less) than\s+(?P<a>{_NUM}){_NOUN}", lambda a, b: (None, a - 1)),
    (rf"\b(?P<a>{_NUM}){_NOUN}\s+or (?:fewer|less)\b", lambda a, b: (None, a)),
    (rf"\b(?:at least|no fewer than|no less than|a minimum of|minimum of)\s+(?P<a>{_NUM}){_NOUN}",
     lambda a, b: (a, None)),
    (rf"\bmore than\s+(?P<a>{_NUM}){_NOUN}", lambda a, b: (a + 1, None)),
    (rf"\b(?P<a>{_NUM}){_NOUN}\s+or more\b", lambda a, b: (a, None)),
    (rf"\b(?P<a>{_NUM}){_NOUN}", lambda a, b: (a, a)),
    (rf"\binto\s+(?:about|around|roughly|approximately|exactly|some|~)?\s*(?P<a>{_NUM})\b", lambda a, b: (a, a)),
]
_COMPILED = [(re.compile(pattern, re.IGNORECASE), bounds) for pattern, bounds in _FORMS]


@dataclass(frozen=True)
class StatedCount:
    """The clusters an instruction asks for: k_min and k_max (None where it gives no bound; equal for an
    exact number) and the words that say so."""

    k_min: int | None
    k_max: int | None
    words: str


def stated_count(instruction: str) -> StatedCount | None:
    """The number (or range) of clusters the instruction asks for, or None where it names none. The first
    form that matches wins, ranges and bounds before an exact number; a bound that reads backwards
    ("between 8 and 4") is put in order; a count under 2 says how texts are placed, not how many clusters."""
    for pattern, bounds in _COMPILED:
        found = pattern.search(instruction)
        if found is None:
            continue
        a = _num(found.group("a"))
        b = _num(found.group("b")) if "b" in pattern.groupindex else None
        lo, hi = bounds(a, b)
        if lo is not None and hi is not None and lo > hi:
            lo, hi = hi, lo
        if (lo is not None and lo < 2) or (hi is not None and hi < 2):  # "each text into one category" is no k
            continue
        return StatedCount(lo, hi, " ".join(found.group(0).split()))
    return None


_LIST_START = re.compile(r"\binto\b|(?<!such )\bas\b(?:\s+(?:either|one of))?|:|\(", re.IGNORECASE)
# A question that asks which of several values each text has: "Is each review positive or negative?", "Tell me
# whether each ticket is about billing or shipping." The list follows the subject (a determiner and, first
# tried, a noun: "each review", else "this", "it"), or "whether ... is/are".
_DETERMINER = r"(?:each|every|this|that|the|a|an|these|those|it|they)"
_QUESTION_STARTS = [re.compile(rf"(?:^|(?<=[.!?])\s+)(?:is|are)\s+{_DETERMINER}{noun}\s+(?:about\s+)?|"
                               rf"\bwhether\s+{_DETERMINER}{noun}\s+(?:is|are)\s+(?:about\s+)?", re.IGNORECASE)
                    for noun in (r"\s+[\w'-]+", "")]
_LIST_BODY = re.compile(r"(?:[^.;!?()]|(?<=\bvs)\.)+")  # to the end of the sentence ("vs." does not end it)
_SEPARATORS = re.compile(r"\s*(?:,\s*(?:and|or)\s+|,|\band\b|\bor\b|\bvs\b\.?|\bversus\b|&|/)\s*", re.IGNORECASE)
_EXAMPLES = re.compile(r"^(?:e\.g|i\.e|for example|for instance|such as|like|including|say)\b", re.IGNORECASE)
_CLAUSE = re.compile(rf"\b(?:{_GROUP_WORDS}|by|that|which|what|who|how|whether|their|they|them|these|those|you)\b",
                     re.IGNORECASE)
# What a list of one-word values says of all of them, written after the last: "... or neutral for the company".
_LIST_TAIL = re.compile(r"\s+(?:for|to|towards?|regarding|about)\s+(?:the|a|an|its|their|his|her|this|that|our|my|your)"
                        r"\b.*$", re.IGNORECASE)
_NUMBER = re.compile(rf"\d|\b(?:{'|'.join(NUMBER_WORDS)})\b", re.IGNORECASE)


def stated_values(instruction: str) -> list[str]:
    """The values the instruction lists for its clusters, in its own words and order ("by sentiment: positive,
    negative or neutral" -> positive, negative, neutral), or [] where it lists none: the first list of 2 to
    20 items of 1-4 words after "into", "as", a colon or an opening bracket, else after a question's subject
    ("Is each review positive or negative?"), none of them a number, a word for groups or the start of a
    clause, and not given as examples ("such as", "e.g.")."""
    questions = [start for pattern in _QUESTION_STARTS for start in pattern.finditer(instruction)]
    for start in [*_LIST_START.finditer(instruction), *questions]:
        body = _LIST_BODY.match(instruction, start.end())
        if body is None or _EXAMPLES.match(body.group(0).strip()):
            continue
        if start.group(0) == "(" and not re.match(r"\)\s*(?:[.!?]|$)", instruction[body.end():]):
            continue  # a bracket inside the sentence describes the texts: "comments (English and French) by topic"
        items = [re.sub(r"^(?:the|a|an|either)\s+", "", item.strip().strip("\"'“”‘’").strip(), flags=re.IGNORECASE)
                 for item in _SEPARATORS.split(body.group(0))]
        items = [item for item in items if item]
        if len(items) == 2 and items[1].lower() == "not":  # "whether they are urgent or not"
            items[1] = f"not {items[0]}"
        if len(items) >= 2 and all(len(item.split()) == 1 for item in items[:-1]):
            items[-1] = _LIST_TAIL.sub("", items[-1])  # "positive, negative or neutral for the company": of them all
        if (2 <= len(items) <= 20 and all(1 <= len(item.split()) <= 4 for item in items)
                and not any(_CLAUSE.search(item) or _NUMBER.search(item) for item in items)
                and len({item.lower() for item in items}) == len(items)):
            return items
    return []
