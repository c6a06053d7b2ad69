"""Which of a corpus's fields hold the texts and the ids, where the user does not say.

The text: a field with a default name ("text", "content", ... in any case), else the one field of words.
The id: a field named `id` (in any case), else, in a file, the one field named as an id ("tweet_id",
"Review ID", "postId") whose values are unique, so the results join back on it; else none (line numbers).
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from clusteragent.errors import CorpusError

# Fields that hold the text, the first present chosen (in any case: "Text" from a spreadsheet's header).
DEFAULT_TEXT_FIELDS = ("text", "content", "document", "body", "sentence", "utterance", "message", "review", "comment",
                       "tweet", "question", "query")
DEFAULT_ID_FIELD = "id"
_NAMED_AS_ID = re.compile(r"(.*\w)?[ _.-](?i:id)|.*[a-z]Id")  # "tweet_id", "Review ID", "postId", "_id"; not "paid"


def is_text_field(field) -> bool:
    """Whether `field` is the default text field's name, in any case ("Text")."""
    return str(field).strip().lower() == DEFAULT_TEXT_FIELDS[0]


def pick_field(fields: Sequence[str], wanted: str | None, what: str, source: str, records: Sequence[dict] = (),
               besides: str | None = None, named_ids: bool = False) -> str | None:
    """The field holding the texts (`what` "text") or the ids ("id"): `wanted` where given, else by name and
    content as the module says; `named_ids` allows an id field named other than `id`. A CorpusError where
    `wanted` is missing or no field holds the texts."""
    if wanted is not None:
        if wanted not in fields:
            raise CorpusError(
                f"{source}: no {what} field {wanted!r}; the fields are {', '.join(map(repr, fields))}."
            )
        return wanted
    by_name = {str(f).strip().lower(): f for f in reversed(fields)}  # the first of "Text" and "text" wins
    if what == "id":
        return by_name.get(DEFAULT_ID_FIELD) or (named_id_field(records, fields) if named_ids else None)
    for name in DEFAULT_TEXT_FIELDS:
        if name in by_name:
            return by_name[name]
    if sole := sole_text_field(records, [f for f in fields if f != besides]):
        return sole
    raise CorpusError(
        f"{source}: no text field found; pass --text-field, one of {', '.join(map(repr, fields))}."
    )


def named_id_field(records: Sequence[dict], fields: Sequence[str]) -> str | None:
    """The one field named as an id whose values are strings or integers, present and unique in every record
    (a "user_id" repeated across a user's posts is not the records' id); None where none or several are."""
    def unique_ids(field) -> bool:
        values = [r.get(field) for r in records]
        return all(isinstance(v, (str, int)) and not isinstance(v, bool) and str(v).strip() for v in values) \
            and len({str(v) for v in values}) == len(values)

    found = [f for f in fields if _NAMED_AS_ID.fullmatch(str(f).strip()) and unique_ids(f)]
    return found[0] if len(found) == 1 else None


def sole_text_field(records: Sequence[dict], fields: Sequence[str]) -> str | None:
    """The one field of strings with words in most records, where only one is ("ID,Review Text,Stars": not ids,
    numbers or lists; a blank one is named as such), or the one of those with spaces between words in most
    records ("post_title" beside a "slug" of "t3-cats-42"); None where none or several are, for the user to choose."""
    def most(field, test) -> bool:
        return sum(test(r.get(field) or "") for r in records) > len(records) / 2

    found = [f for f in fields if all(r.get(f) is None or isinstance(r.get(f), str) for r in records)
             and most(f, lambda v: any(ch.isalpha() for ch in v))]
    if len(found) > 1:
        found = [f for f in found if most(f, lambda v: any(ch.isspace() for ch in v.strip()))]
    return found[0] if len(found) == 1 else None
