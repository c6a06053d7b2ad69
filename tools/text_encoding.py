"""A corpus file's bytes as text, losing none of them.

UTF-8 is read as it is (a byte-order mark dropped), UTF-16 by its byte-order mark. A file that is not
UTF-8 is read line by line: its UTF-8 lines as UTF-8, the others as Windows-1252, the commonest legacy
encoding of Western text (Latin-1 is a subset of it; its five unassigned bytes are read as Latin-1), and
a warning names those lines and shows how the first reads, so a user can tell whether to give the file's
encoding. A given encoding reads the whole file, strictly: a byte it cannot read is an error naming the line.
"""

from __future__ import annotations

import codecs

from clusteragent.errors import CorpusError, listing, plural, warn

LEGACY = "cp1252"


def _legacy(line: bytes) -> str:
    try:
        return line.decode(LEGACY)
    except UnicodeDecodeError:  # 0x81, 0x8d, 0x8f, 0x90, 0x9d: unassigned in Windows-1252, control codes in Latin-1
        return "".join(bytes([b]).decode(LEGACY, errors="ignore") or chr(b) for b in line)


def decode(raw: bytes, source: str, encoding: str | None = None) -> str:
    """`raw` as text: in `encoding` when given, else UTF-8 with a per-line Windows-1252 fallback (module doc)."""
    if encoding:
        return _decode_as(raw, source, encoding)
    if raw.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return _decode_as(raw, source, "utf-16")
    if raw.startswith(codecs.BOM_UTF8):
        raw = raw[len(codecs.BOM_UTF8):]
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        pass
    lines, legacy = [], []
    for n, line in enumerate(raw.split(b"\n"), 1):  # 0x0a is a newline and nothing else in both encodings
        try:
            lines.append(line.decode("utf-8"))
        except UnicodeDecodeError:
            lines.append(_legacy(line))
            legacy.append(n)
    first = " ".join(lines[legacy[0] - 1].split())
    first = first if len(first) <= 60 else first[:57] + "..."
    one = len(legacy) == 1
    warn(f"{source}: {plural('line', len(legacy))} {listing(legacy)} {'is' if one else 'are'} not UTF-8 and "
         f"{'was' if one else 'were'} read as Windows-1252 (line "
         f"{legacy[0]} reads {first!r}); if that is wrong, give the file's encoding (--encoding) or "
         "re-encode it as UTF-8.", UnicodeWarning)
    return "\n".join(lines)


def _decode_as(raw: bytes, source: str, encoding: str) -> str:
    try:
        codec = codecs.lookup(encoding)
    except LookupError:
        raise CorpusError(f"unknown encoding {encoding!r}; give a name Python knows, such as utf-8, cp1252, "
                          "latin-1, utf-16 or shift_jis.") from None
    if codec.name == "utf-8" and raw.startswith(codecs.BOM_UTF8):
        raw = raw[len(codecs.BOM_UTF8):]
    try:
        return raw.decode(codec.name)
    except UnicodeDecodeError as e:
        line = raw[:e.start].count(b"\n") + 1
        raise CorpusError(f"{source}: line {line} cannot be read as {encoding} (byte {raw[e.start]:#04x}); give "
                          "the file's encoding (--encoding), or re-encode it as UTF-8.") from None
