"""Load and validate a corpus: JSONL, CSV/TSV, Parquet, Excel or plain text, one text per record (any of
them compressed with gzip, bz2 or xz), or a folder of text files, one text per file.

Every record comes back exactly once, in file order, with the user's id: the `id` field's value (its
type kept) when records have one, another field's with `id_field`, else the one field named as an id
("tweet_id", fields.py), else the 1-based line or row number. Anything that would make a record disappear
or collide is an error that names the records concerned; a line that is not UTF-8 is read as Windows-1252
and reported (text_encoding), never dropped.
"""

from __future__ import annotations

import bz2
import gzip
import io
import lzma
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from os import PathLike
from pathlib import Path
from typing import Any

from clusteragent.errors import CorpusError, counted, listing, plural, warn
from clusteragent.tools.fields import DEFAULT_ID_FIELD, is_text_field, pick_field
from clusteragent.tools.records import delimited_records, json_records
from clusteragent.tools.text_encoding import decode


class FieldChoiceWarning(UserWarning):
    """The texts were taken from a field other than `text`, chosen by name: the message says which."""


FORMATS = {
    ".jsonl": "jsonl", ".ndjson": "jsonl", ".json": "jsonl",
    ".csv": "csv", ".tsv": "tsv",
    ".parquet": "parquet", ".pq": "parquet",
    ".txt": "text", ".text": "text",
    ".xlsx": "excel", ".xlsm": "excel",
}
COMPRESSED = {".gz": gzip.decompress, ".bz2": bz2.decompress, ".xz": lzma.decompress}
TEXT_FILES = (".txt", ".text", ".md")  # what a folder corpus reads, one text per file


@dataclass(frozen=True)
class Corpus:
    """Texts with their ids, in input order. `extra` holds each record's other fields (e.g. labels);
    `text_field` and `id_field` name the fields the texts and ids came from (None: not from a field; a tuple
    of names: each text is those fields' values joined)."""

    ids: list[Any]
    texts: list[str]
    source: str = "<memory>"
    extra: list[dict] = field(default_factory=list, repr=False)
    text_field: str | tuple[str, ...] | None = None
    id_field: str | None = None

    def __len__(self) -> int:
        return len(self.texts)


JOINED_BY = "\n\n"  # between the values of several text fields, as between a title and its body
MAX_WORK_CHARS = 20_000  # what the tools and the model read of one text; the output keeps it whole


def work_texts(texts: Sequence[str]) -> list[str]:
    """The texts as the tools read them: each cut to MAX_WORK_CHARS, so one enormous text cannot make a
    run's memory or time grow with it (the result still carries every text whole)."""
    return [t if len(t) <= MAX_WORK_CHARS else t[:MAX_WORK_CHARS] for t in texts]


def from_texts(texts: Sequence[str], ids: Sequence[Any] | None = None, source: str = "<memory>") -> Corpus:
    """Validate in-memory texts (and optional ids) into a Corpus, with the same checks as files."""
    texts = list(texts)
    given = ids is not None
    ids = list(ids) if given else list(range(1, len(texts) + 1))
    if len(ids) != len(texts):
        raise CorpusError(f"{source}: {counted(len(ids), 'id')} for {counted(len(texts), 'text')}; give one id per text.")
    bad = [n for n, t in enumerate(texts) if not isinstance(t, str)]
    if bad:  # named by id where the caller gave ids (a dict's keys, a Series' index), else by list index
        one, kinds = len(bad) == 1, sorted({_kind(texts[n]) for n in bad})
        where = f"the {plural('text', len(bad))} with {plural('id', len(bad))} {listing([ids[n] for n in bad])}" \
            if given else f"the {plural('item', len(bad))} at {'index' if one else 'indexes'} {listing(bad)}"
        raise CorpusError(f"{source}: texts must be strings; {where} {'is' if one else 'are'} {' or '.join(kinds)}; "
                          f"drop {'it' if one else 'them'} or make {'it a string' if one else 'them strings'}.")
    return _validated(ids, texts, source, [{} for _ in texts], id_option="")


def _kind(value: Any) -> str:
    """What a value that is not a text is, in a message: "None", "NaN" (a missing value), or its type."""
    return "None" if value is None else "NaN" if isinstance(value, float) and value != value else type(value).__name__


def from_dataframe(frame, text_field: str | Sequence[str] | None = None, id_field: str | None = None,
                   quiet: bool = False) -> Corpus:
    """A pandas DataFrame as a Corpus, read as a corpus file's records are: the text from the column `text`
    (else the first of DEFAULT_TEXT_FIELDS, with a FieldChoiceWarning, or `text_field`: a list joins several),
    the ids from the column `id` or `id_field`, else the frame's index, so that results join back on it; the
    other columns are kept as each record's extra fields. A missing value is a blank text, which is an error."""
    source = "<DataFrame>"
    fields = [str(c) for c in frame.columns]
    if len(set(fields)) != len(fields):
        raise CorpusError(f"{source}: repeated column names; give every column its own name.")
    records = _records_of(frame)
    try:
        corpus = _from_records(records, text_field, id_field, source, [_plain(i) for i in frame.index],
                               named_ids=False)  # its index is what results join back on
    except CorpusError as e:  # the same checks as a file's records, in the Python API's words
        raise CorpusError(str(e).replace("--text-field", "text_field").replace("--id-field", "id_field")) from None
    if text_field is None and not is_text_field(corpus.text_field) and not quiet:
        warn(f"{source}: no 'text' column; clustering the column {corpus.text_field!r} (choose another "
             "with text_field).", FieldChoiceWarning)
    return corpus


def _records_of(frame) -> list[dict]:
    """A DataFrame's rows as records of Python values, a missing value None."""
    return frame.rename(columns=str).astype(object).where(frame.notna().to_numpy(), None).to_dict("records")


def _plain(value: Any) -> Any:
    """A numpy scalar as the Python value it holds (an index of numpy integers gives int ids)."""
    return value.item() if hasattr(value, "item") and not isinstance(value, (str, bytes)) else value


def as_corpus(texts: Any, ids: Sequence[Any] | None = None, text_field: str | Sequence[str] | None = None,
              id_field: str | None = None, quiet: bool = False) -> Corpus:
    """What the Python API takes as texts, as a Corpus: a Corpus as it is; a pandas DataFrame (from_dataframe,
    with `text_field`, `id_field` and `quiet`, which nothing else has) or Series (its values, ids from its index
    unless `ids`); a dict from id to text; else a sequence of strings (from_texts). One string is refused: read
    as a sequence it would be clustered letter by letter."""
    kind = type(texts).__module__.split(".")[0], type(texts).__name__
    if (text_field or id_field) and kind != ("pandas", "DataFrame"):
        raise CorpusError(f"text_field and id_field choose a file's or a DataFrame's columns; a {kind[1]} has none: "
                          "drop them.")
    if isinstance(texts, Corpus):
        if ids is not None:
            raise CorpusError("a Corpus carries its own ids; drop ids, or pass the texts as a list.")
        return texts
    if isinstance(texts, (str, bytes)):
        raise CorpusError("give a list of texts, not one string.")
    if isinstance(texts, Mapping):  # {id: text}, as a dict comprehension or a JSON object of texts gives them
        if ids is not None:
            raise CorpusError("a dict gives its ids as its keys; drop ids, or pass the texts as a list.")
        return from_texts(list(texts.values()), [_plain(i) for i in texts], source="<dict>")
    if kind == ("pandas", "DataFrame"):
        if ids is not None:
            raise CorpusError("a DataFrame gives its ids from its 'id' column or its index; drop ids.")
        return from_dataframe(texts, text_field, id_field, quiet)
    if kind == ("pandas", "Series"):
        values = ["" if v is None or v != v else v for v in texts.tolist()]  # NaN is a blank text
        return from_texts(values, ids if ids is not None else [_plain(i) for i in texts.index],
                          source=f"<Series {texts.name!r}>" if texts.name is not None else "<Series>")
    if not isinstance(texts, Iterable):
        raise CorpusError(f"expected texts: a list of strings, a dict from id to text, a pandas DataFrame or Series, "
                          f"or a corpus file's path; got {type(texts).__name__}.")
    return from_texts(texts, ids)


def _validated(ids: list[Any], texts: list[str], source: str, extra: list[dict], text_field: str | tuple[str, ...] | None = None,
               id_field: str | None = None, id_option: str = "--id-field") -> Corpus:
    """The corpus, or an error that names the records at fault; `id_option` is how the caller chooses the id
    field ("" where there is no field to choose: a list of texts and its ids)."""
    if not texts:
        raise CorpusError(f"{source}: the corpus is empty; give at least one text.")
    other = f", or choose another field with {id_option}" if id_option else ""
    missing = [n for n, i in enumerate(ids, 1) if i is None or (isinstance(i, str) and not i.strip())]
    if missing:
        raise CorpusError(f"{source}: {plural('record', len(missing))} {listing(missing)} "
                          f"{'has' if len(missing) == 1 else 'have'} no {id_field or 'id'!r}; give every record an id{other}.")
    # Strings and integers only: 1, 1.0 and true would print alike in some tools and not in others, and
    # NaN or Infinity cannot be written as strict JSON.
    odd = [(n, i) for n, i in enumerate(ids, 1) if isinstance(i, bool) or not isinstance(i, (str, int))]
    if odd:
        n, i = odd[0]
        raise CorpusError(f"{source}: ids must be strings or integers; record {n} has {i!r} "
                          f"({type(i).__name__}){f' and {len(odd) - 1} more' if len(odd) > 1 else ''}; "
                          f"give integer or string ids{other}.")
    seen: dict[str, int] = {}
    dups: list[Any] = []
    for i in ids:
        key = str(i)  # 7 and "7" would be the same id in any output file
        seen[key] = seen.get(key, 0) + 1
        if seen[key] == 2:
            dups.append(i)
    if dups:
        where = f" in field {id_field!r}" if id_field else ""
        raise CorpusError(f"{source}: duplicate ids{where}: {listing(dups)}; every record needs a unique id"
                          f"{f' ({other[2:]})' if other else ''}.")
    blank = [i for i, t in zip(ids, texts) if not t.strip()]
    if blank:
        them = "it" if len(blank) == 1 else "them"
        raise CorpusError(f"{source}: {counted(len(blank), 'blank text')}, {plural('id', len(blank))} {listing(blank)}; "
                          f"remove {them} or fill {them} in.")
    return Corpus(ids=ids, texts=texts, source=source, extra=extra, text_field=text_field, id_field=id_field)


def _from_records(records: list[dict], text_field: str | Sequence[str] | None, id_field: str | None, source: str,
                  numbers: list[int], named_ids: bool = True) -> Corpus:
    if not records:
        raise CorpusError(f"{source}: the corpus is empty; give at least one record.")
    fields: list[str] = []
    for r in records:
        fields.extend(k for k in r if k not in fields)
    id_field = pick_field(fields, id_field, "id", source, records, named_ids=named_ids)
    if text_field is None or isinstance(text_field, str):
        text_field = pick_field(fields, text_field, "text", source, records, besides=id_field)
        joined: list[str] = [text_field]
    else:  # several fields, each record's non-blank values joined: a title and its abstract
        joined = [pick_field(fields, f, "text", source) for f in dict.fromkeys(text_field)]
        if not joined:
            raise CorpusError(f"{source}: no text field named; give at least one.")
        text_field = joined[0] if len(joined) == 1 else tuple(joined)
    lacking = [n for n, r in zip(numbers, records) if not any(f in r for f in joined)]  # one of several: blank
    if lacking:
        one = len(lacking) == 1
        raise CorpusError(f"{source}: {'the record' if one else 'records'} on {plural('line', len(lacking))} "
                          f"{listing(lacking)} {'has' if one else 'have'} no field {' or '.join(map(repr, joined))}.")
    texts, ids, extra = [], [], []
    for n, r in zip(numbers, records):
        values = ["" if r.get(f) is None else r[f] if isinstance(r[f], str) else str(r[f]) for f in joined]
        texts.append(values[0] if len(values) == 1 else JOINED_BY.join(v.strip() for v in values if v.strip()))
        ids.append(r.get(id_field) if id_field else n)
        extra.append({k: v for k, v in r.items() if k not in joined and k != id_field})
    return _validated(ids, texts, source, extra, text_field, id_field)


def _read_jsonl(raw: bytes, path: str, text_field, id_field, encoding: str | None = None) -> Corpus:
    records, numbers = json_records(decode(raw, path, encoding), str(path), text_field)
    return _from_records(records, text_field, id_field, str(path), numbers)


def _read_delimited(raw: bytes, path: str, text_field, id_field, delimiter: str, encoding: str | None = None) -> Corpus:
    records, numbers = delimited_records(decode(raw, path, encoding), str(path), delimiter)
    return _from_records(records, text_field, id_field, str(path), numbers)


def _read_parquet(raw: bytes, path: str, text_field, id_field) -> Corpus:
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:  # not a Python file object: arrow's reader threads calling back into Python could abort the exit
        table = pq.read_table(pa.BufferReader(raw))
    except Exception as e:  # pyarrow raises several types for a damaged file
        raise CorpusError(f"{path}: cannot read as Parquet ({e}).") from None
    records = table.to_pylist()
    if not records and table.column_names:
        raise CorpusError(f"{path}: the corpus is empty; give at least one record.")
    return _from_records(records, text_field, id_field, str(path), list(range(1, len(records) + 1)))


def _read_excel(raw: bytes, path: str, text_field, id_field) -> Corpus:
    """The first sheet of an Excel workbook, its first row the header; rows are numbered from 1 below it."""
    import pandas as pd

    try:
        book = pd.ExcelFile(io.BytesIO(raw), engine="openpyxl")
        sheet = book.sheet_names[0]
        frame = pd.read_excel(book, sheet_name=sheet, dtype=object)
    except Exception as e:  # openpyxl and zipfile raise several types for a file that is no workbook
        raise CorpusError(f"{path}: cannot read as an Excel workbook ({e}); save it again as .xlsx, or as CSV.") from None
    if len(book.sheet_names) > 1:
        warn(f"{path}: read the first of its {len(book.sheet_names)} sheets, {sheet!r}; save the sheet you "
             "want first, or as CSV.", UserWarning)
    records = _records_of(frame)
    return _from_records(records, text_field, id_field, path, list(range(1, len(records) + 1)))


def _read_text(raw: bytes, path: str, text_field, id_field, encoding: str | None = None) -> Corpus:
    if text_field or id_field:
        raise CorpusError(f"{path}: a plain-text corpus has no fields; drop --text-field/--id-field.")
    text = decode(raw, path, encoding)
    lines = text.splitlines()
    while lines and not lines[-1].strip():  # trailing newlines are not records
        lines.pop()
    return _validated(list(range(1, len(lines) + 1)), lines, str(path), [{} for _ in lines])


def load_corpus(path: str | Path | Any, text_field: str | Sequence[str] | None = None, id_field: str | None = None,
                format: str | None = None, quiet: bool = False, encoding: str | None = None) -> Corpus:
    """Read a corpus file. The format comes from the extension unless `format` names it.

    Args:
        path: a .jsonl/.json, .csv, .tsv, .parquet, .xlsx (its first sheet) or .txt file, also compressed (.gz, .bz2, .xz: the
            extension before it gives the format); or a folder of .txt/.text/.md files, one text per file,
            each file's path in the folder its id. Texts already in memory are taken too, as `fit` takes them
            (as_corpus): a pandas DataFrame (read with `text_field` and `id_field` as a file's records), a
            Series, a dict from id to text or a list of strings.
        text_field: the field holding the text (default: the first of "text", "content", ... present, in
            any case; a field other than "text" is named in a FieldChoiceWarning), or a list of fields whose
            non-blank values make each text, joined by a blank line (["title", "abstract"]).
        id_field: the field holding each record's id (default: "id", in any case, else the one field named as
            an id, "tweet_id", with a unique value in every record, named in a FieldChoiceWarning, else the
            1-based line or row number).
        format: one of "jsonl", "csv", "tsv", "parquet", "excel", "text" to override the extension.
        quiet: no warning about the text or id field chosen.
        encoding: the encoding of a text file (JSONL, CSV, TSV, plain text, a folder's files), e.g. "cp1252";
            default UTF-8, where a line that is not UTF-8 is read as Windows-1252 with a warning.
    """
    if not isinstance(path, (str, PathLike)):
        return as_corpus(path, text_field=text_field, id_field=id_field, quiet=quiet)
    corpus = _read(Path(path), text_field, id_field, format, encoding)
    if text_field is None and corpus.text_field is not None and not is_text_field(corpus.text_field) and not quiet:
        warn(f"{path}: the records have no 'text' field; clustering the field {corpus.text_field!r} "
             "(choose another with --text-field).", FieldChoiceWarning)
    if id_field is None and corpus.id_field is not None and corpus.id_field.strip().lower() != DEFAULT_ID_FIELD and not quiet:
        warn(f"{path}: ids from the field {corpus.id_field!r} (choose another with --id-field).", FieldChoiceWarning)
    return corpus


def _read(path: Path, text_field: str | Sequence[str] | None, id_field: str | None, format: str | None,
          encoding: str | None) -> Corpus:
    if not path.exists():
        raise CorpusError(f"{path}: no such file.")
    if path.is_dir():
        return _read_folder(path, text_field, id_field, encoding)
    suffixes = [s.lower() for s in path.suffixes]
    packed = suffixes[-1] if suffixes and suffixes[-1] in COMPRESSED else None
    inner = suffixes[-2] if packed and len(suffixes) > 1 else "" if packed else path.suffix.lower()
    fmt = format or FORMATS.get(inner)
    if fmt is None:
        known = ", ".join(sorted(FORMATS))
        raise CorpusError(f"{path}: unknown extension {(inner or path.suffix)!r}; use one of {known} (compressed "
                          f"with {', '.join(COMPRESSED)} or not), a folder of {'/'.join(TEXT_FILES)} files, or pass "
                          "a format.")
    raw = _raw(path, packed)
    if fmt == "jsonl":
        return _read_jsonl(raw, str(path), text_field, id_field, encoding)
    if fmt in ("csv", "tsv"):
        return _read_delimited(raw, str(path), text_field, id_field, "," if fmt == "csv" else "\t", encoding)
    if fmt == "parquet":
        return _read_parquet(raw, str(path), text_field, id_field)
    if fmt == "text":
        return _read_text(raw, str(path), text_field, id_field, encoding)
    if fmt == "excel":
        return _read_excel(raw, str(path), text_field, id_field)
    raise CorpusError(f"unknown format {fmt!r}; use jsonl, csv, tsv, parquet, excel or text.")


def _raw(path: Path, packed: str | None) -> bytes:
    """The file's bytes, decompressed where its last extension says it is compressed."""
    raw = path.read_bytes()
    if packed is None:
        return raw
    try:
        return COMPRESSED[packed](raw)
    except (OSError, EOFError, lzma.LZMAError, ValueError) as e:
        raise CorpusError(f"{path}: cannot decompress it as {packed[1:]} ({e}); check the file, or rename it if "
                          "it is not compressed.") from None


def _read_folder(path: Path, text_field, id_field, encoding: str | None = None) -> Corpus:
    """Every text file under `path` (TEXT_FILES; hidden files and folders skipped), in path order, one text
    each, its id the path under `path` ("reviews/0001.txt")."""
    if text_field or id_field:
        raise CorpusError(f"{path}: a folder of text files has no fields; drop --text-field/--id-field.")
    files = sorted((p for p in path.rglob("*") if p.suffix.lower() in TEXT_FILES and p.is_file()
                    and not any(part.startswith(".") for part in p.relative_to(path).parts)),
                   key=lambda p: p.relative_to(path).parts)
    if not files:
        raise CorpusError(f"{path}: a folder with no {', '.join(TEXT_FILES)} files; put one text per file there, or "
                          "give a corpus file.")
    ids = [p.relative_to(path).as_posix() for p in files]
    texts = [decode(p.read_bytes(), str(p), encoding) for p in files]
    return _validated(ids, texts, str(path), [{} for _ in files])


def sample_corpus_path() -> Path:
    """The bundled sample: 2,000 CLINC150 queries (CC BY 3.0, see data/ATTRIBUTION.md)."""
    from importlib.resources import files

    return Path(str(files("clusteragent") / "data" / "clinc150_sample.jsonl"))
