"""Records out of a file's text: JSON lines, a JSON array or an object that holds one, and delimited rows.

Each reader gives the records and the number a person would look a record up by (a line of a JSONL file, a
record of an array, a data row of a spreadsheet counted from 1 below its header); corpus.py picks the fields.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Sequence

from clusteragent.errors import CorpusError, counted, listing, plural


def json_records(text: str, path: str, text_field: str | Sequence[str] | None) -> tuple[list[dict], list[int]]:
    """A JSONL file's records, or a JSON array's, or the array a whole-file object holds ({"data": [...]})."""
    stripped = text.lstrip()
    data = _wrapped_records(text, text_field) if stripped.startswith("{") else None
    if data is None and stripped.startswith("["):
        try:
            data = json.loads(text)
        except json.JSONDecodeError as e:
            raise CorpusError(f"{path}: not valid JSON at line {e.lineno}: {e.msg}.") from None
    if data is not None:
        return [r if isinstance(r, dict) else {"text": r} for r in data], list(range(1, len(data) + 1))
    records, numbers = [], []
    for n, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as e:
            raise CorpusError(f"{path}: line {n} is not valid JSON ({e.msg}); fix or remove that line.") from None
        if isinstance(obj, str):
            obj = {"text": obj}
        if not isinstance(obj, dict):
            raise CorpusError(f"{path}: line {n} is a JSON {type(obj).__name__}, not an object with a text field.")
        records.append(obj)
        numbers.append(n)
    return records, numbers


def _wrapped_records(text: str, text_field: str | Sequence[str] | None) -> list | None:
    """The list of records a whole-file JSON object holds under its one list-valued key, or None: a file that
    is not one object, an object with the text field or any string of its own (one record of a one-line JSONL
    file, its text under another name beside a list of tags), or no such single list."""
    try:
        whole = json.loads(text)
    except json.JSONDecodeError:
        return None
    named = [text_field or "text"] if text_field is None or isinstance(text_field, str) else text_field
    if not isinstance(whole, dict) or any(f in whole for f in named) or any(isinstance(v, str) for v in whole.values()):
        return None
    lists = [v for v in whole.values() if isinstance(v, list) and v and all(isinstance(r, (dict, str)) for r in v)]
    return lists[0] if len(lists) == 1 else None


def delimited_records(text: str, path: str, delimiter: str) -> tuple[list[dict], list[int]]:
    """A CSV or TSV file's rows as records under its header. A row with more fields than the header is an
    error, not a text cut at its first unquoted comma."""
    delimiter = _header_delimiter(text, delimiter)
    csv.field_size_limit(2 ** 31 - 1)  # the default, 128 KB, refuses long texts that are valid CSV
    reader = csv.DictReader(io.StringIO(text, newline=""), delimiter=delimiter)
    if not reader.fieldnames:
        raise CorpusError(f"{path}: the file is empty; give a header row and at least one record.")
    records = list(reader)
    numbers = list(range(1, len(records) + 1))
    longer = [n for n, r in zip(numbers, records) if None in r]
    if longer:
        shown = "tab" if delimiter == "\t" else repr(delimiter)
        raise CorpusError(f"{path}: {plural('row', len(longer))} {listing(longer)} (counted below the header) "
                          f"{'has' if len(longer) == 1 else 'have'} more fields than the header's "
                          f"{counted(len(reader.fieldnames), 'field')}; a text with a {shown} in it needs double "
                          "quotes around it" + ("; or, with one text a line, save it as .txt." if len(reader.fieldnames) == 1
                                                else "."))
    return records, numbers


def _header_delimiter(text: str, delimiter: str) -> str:
    """`delimiter`, unless the header row is one field by it and several by ";", a tab or "|" (a spreadsheet
    saved as CSV where the comma is the decimal mark writes ";")."""
    header = text.split("\n", 1)[0]
    splits = {d: len(next(csv.reader([header], delimiter=d), [])) for d in (delimiter, ";", "\t", "|")}
    best = max(splits, key=splits.get)
    return best if splits[delimiter] == 1 and splits[best] > 1 else delimiter
