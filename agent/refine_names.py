"""What a chat message names: clusters by their names in quotes or their numbers, near misses forgiven,
the quoted strings that are no cluster's name (a new name, or a cluster that does not exist), and whether
(and how) the message writes what the model read from it."""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterable

import numpy as np

from clusteragent.instruction_language import in_english
from clusteragent.name_rules import name_words, sentence_case, stems
from clusteragent.review_tools import ToolError as CannotDo
from clusteragent.stated import NUMBER_WORDS
from clusteragent.tools import taxonomy as tx

NOT_LISTED = "(not in the list)"


def numbered(tax: tx.Taxonomy, assignment: np.ndarray) -> list[dict]:
    """Clusters as clusters.json lists them: largest first, each with its id."""
    return [{"cluster": c.id, "id": c.id, "name": c.name, "description": c.description, "size": size}
            for c, size in tx.by_size(assignment, tax)]


def resolve(ref: str, tax: tx.Taxonomy, assignment: np.ndarray) -> tx.Cluster:
    """A cluster by name (case ignored, near misses accepted) or by its id in clusters.json."""
    exact = str(ref).strip()
    ref = exact.strip("\"'“”")
    found = tax.find(exact) or tax.find(ref)
    table = numbered(tax, assignment)
    listing = ", ".join(f'"{c["name"]}"' for c in table[:12]) + (" ..." if len(table) > 12 else "")
    if ref == NOT_LISTED:
        raise CannotDo(f"A cluster you named is not in the list. The clusters are: {listing}.")
    number = re.fullmatch(r"(?:cluster\s*)?#?(\d+)", ref, flags=re.IGNORECASE)
    if found is None and number and int(number.group(1)) in tax.ids:
        return tax.by_id(int(number.group(1)))
    if found is None:
        close = difflib.get_close_matches(ref.lower(), [c.name.lower() for c in tax.clusters], n=1, cutoff=0.85)
        found = tax.find(close[0]) if close else None
    if found is None:
        raise CannotDo(f'There is no cluster "{ref}". The clusters are: {listing}.')
    return found


_QUOTED = re.compile(r'"([^"]+)"|“([^”]+)”|(?<!\w)\'([^\']+)\'(?!\w)')


def quoted(message: str) -> list[str]:
    """The strings a message puts in quotes (straight, curly or single), in order."""
    return [text for _, _, text in _quoted_spans(message)]


def _quoted_spans(message: str) -> list[tuple[int, int, str]]:
    return [(m.start(), m.end(), next(g for g in m.groups() if g is not None)) for m in _QUOTED.finditer(message)]


def blanked(message: str, names: Iterable[str] | None = None) -> str:
    """The message with its quoted names, quotes and all, blanked: those of `names` (case ignored), or all."""
    known = None if names is None else {n.lower() for n in names}
    for start, end, text in reversed(_quoted_spans(message)):
        if known is None or text.strip().lower() in known:
            message = f"{message[:start]} {message[end:]}"
    return message


def _name_spans(message: str, tax: tx.Taxonomy) -> list[tuple[int, int, str]]:
    """Where the message quotes a cluster's exact name (case ignored), whatever characters the name has
    (quotes, slashes, digits); a longer name wins where quoted names overlap."""
    return _spans(message, tax.names, r"(?<=[\"“'‘])", r"(?=[\"”'’])")


# A name written as a whole word or words: no letter, digit or hyphen just before or after it.
_WHOLE = (r"(?<![\w-])", r"(?![\w-])")


def _unquoted(pattern: re.Pattern, message: str) -> list[re.Match]:
    """The matches of `pattern` in the message outside its quoted names ("into" in "Into the wild" is none)."""
    quotes = _quoted_spans(message)
    return [m for m in pattern.finditer(message) if not any(start < m.start() < end for start, end, _ in quotes)]


def _spans(message: str, names: Iterable[str], before: str, after: str) -> list[tuple[int, int, str]]:
    """(start, end, name) where the message writes a name (case ignored) between the lookarounds `before` and
    `after`; a longer name wins where two overlap ("Labor and finance" over "Finance")."""
    taken: list[tuple[int, int, str]] = []
    for name in sorted(names, key=len, reverse=True):
        for m in re.finditer(before + re.escape(name.strip()) + after, message, flags=re.IGNORECASE):
            if not any(m.start() < end and start < m.end() for start, end, _ in taken):
                taken.append((m.start(), m.end(), name))
    return taken


# "the largest", "the two smallest clusters": a cluster word or the end of a phrase must follow, so that "the
# texts about the smallest phones" names no cluster.
_BY_SIZE = re.compile(r"\bthe\s+(?:(\d{1,2}|" + "|".join(NUMBER_WORDS) + r")\s+)?(smallest|largest|biggest)"
                      r"(?=(?:\s+(?:clusters?|groups?|ones?|categor(?:y|ies)))?\s*(?:$|[.,;:!?)]|"
                      r"(?:and|into|in|with|to|as|together|please)\b))", re.I)


# "the weather cluster", "the car maintenance one": a few unquoted words before a word for a cluster.
# "The two Drupal ones", "these Java clusters": the plural, with or without a count, calls every cluster so named.
_CALLED = re.compile(r"\b(?:the|this|that|these|those)\s+(?:(?:\d{1,2}|" + "|".join(NUMBER_WORDS) + r")\s+)?"
                     r"((?:[\w'-]+\s+){1,3}?)(?:cluster|group|categor(?:y|ie)|one)s?\b", re.I)


def called_clusters(message: str, names: Iterable[str], tops: Iterable[str] = ()) -> list[tuple[int, str]]:
    """(where, name) for each cluster a message calls by words of its name ("the weather cluster" for "Weather
    reporter"), read by their stems: the one name that has all the words, or where several have them the one
    that is only them; called in the plural ("all the Drupal clusters", "the architecture clusters" for
    "Architectural" and "Architecture fans"), every name that has the words, or of each of the words joined
    ("the Drupal and Magento clusters"), and of those, where two or more are clusters, not the `tops`
    ("the anime clusters" are "Anime fans" and "Anime reviews", not their top cluster "Anime" too)."""
    tops = set(tops)
    found = []

    def words_of(text: str) -> frozenset[str]:  # by stem: "the architecture clusters" has "Architectural"
        return stems(w for w in name_words(text) if w not in NUMBER_WORDS)  # "the two clusters" calls none

    named = {n: words_of(n) for n in names}  # each name's words, read once for every phrase and part

    def having(called: str) -> list[str]:
        words = words_of(called)
        return [n for n, own in named.items() if words and words <= own]

    for m in _unquoted(_CALLED, message):
        called, plural = m.group(1), m.group(0).lower().endswith("s")
        picked, words = having(called), words_of(called)
        exact = [n for n in picked if named[n] == words]
        leaves = [n for n in picked if n not in tops]
        picked = leaves if plural and len(leaves) > 1 else exact if len(exact) == 1 else picked
        if not picked and plural and len(each := [having(w) for w in re.split(r",|\band\b|&", called)]) > 1 and all(each):
            picked = list(dict.fromkeys(n for part in each for n in part))
        if len(picked) == 1 or len(picked) > 1 and plural:
            found += [(m.start(), name) for name in picked]
    return found


def named_clusters(message: str, tax: tx.Taxonomy, assignment: np.ndarray) -> list[str]:
    """The clusters a message names, in order: their names in quotes, "cluster N" numbers, "the largest", "the
    two smallest" by their sizes (arithmetic the small model gets wrong), and words of one cluster's name before
    a word for a cluster (called_clusters; a small model chose "Pet care" for "the weather cluster")."""
    table = numbered(tax, assignment)
    found = [(start, 0, name) for start, _, name in _name_spans(message, tax)]
    tops = [c["name"] for c in table if c["size"] == 0]  # a top cluster holds no texts itself
    found += [(start, i, name) for i, (start, name) in enumerate(called_clusters(message, [c["name"] for c in table],
                                                                                tops))]
    by_id = {c["cluster"]: c["name"] for c in table}
    for m in re.finditer(r"\bcluster\s*#?(\d+)\b", message, flags=re.IGNORECASE):
        if int(m.group(1)) in by_id:
            found.append((m.start(), 0, by_id[int(m.group(1))]))
    holding = [c["name"] for c in table if c["size"] > 0]  # largest first
    for m in _unquoted(_BY_SIZE, message):  # not inside a quoted name ("The largest lakes")
        n = int(NUMBER_WORDS.get((m.group(1) or "one").lower(), m.group(1)))
        picked = holding[:n] if m.group(2).lower() != "smallest" else holding[::-1][:n]
        found += [(m.start(), i, name) for i, name in enumerate(picked)]
    return list(dict.fromkeys(name for *_, name in sorted(found)))


def merged_into(message: str, clusters: list[str], tax: tx.Taxonomy, assignment: np.ndarray, given: str = "") -> str:
    """The merged cluster's name: the one of `clusters` the message merges the other into ('merge "A" into
    "B"', "... into cluster 3"), unless the name `given` is a new one; else `given` where it is new, else ""
    (the merged cluster is named as a run names one). The small model fills the new name with one of the
    clusters' names: 'Merge "Qt Widget" and "Qt development".' came back as "Qt development"."""
    into = _unquoted(_INTO_WORD, message)
    after = named_clusters(message[into[-1].end():], tax, assignment) if into else []
    fresh = given.strip().lower() not in {"", *(c.lower() for c in clusters)}
    if after and after[0] in clusters and not fresh:
        return after[0]
    return given if fresh else ""


_INTO_WORD = re.compile(r"\binto\b", re.IGNORECASE)
_DESTINATION = re.compile(r"\b(?:into|under|to|in|inside|within|onto)\b", re.IGNORECASE)


def destination(message: str, tax: tx.Taxonomy, assignment: np.ndarray) -> str | None:
    """The cluster a move sends its texts (or a cluster) to: the first the message names after the last
    "into", "under", "to" or "in" outside quoted names that one follows ('Move "Travel alerts" into
    "Travel"', 'Texts about refunds belong in "Billing", not "Payments"'); None where none follows one."""
    for mark in reversed(_unquoted(_DESTINATION, message)):
        if after := named_clusters(message[mark.end():], tax, assignment):
            return after[0]
    return None


def written_clusters(message: str, names: Iterable[str], among: Iterable[str] | None = None) -> list[str]:
    """The `names` the message writes, quoted or not, in order (only those of `among`, where given); a longer
    name written there wins over a name inside it ("Car" in "Car care")."""
    kept = None if among is None else {n.lower() for n in among}
    return [name for *_, name in sorted(_spans(message, names, *_WHOLE)) if kept is None or name.lower() in kept]


_OWN_CLUSTER = re.compile(r"\b(?:(?:their|its)\s+own|(?:a\s+)?(?:new|separate)\s+(?:cluster|group))\b", re.IGNORECASE)


_BY_ANOTHER = re.compile(r"^\W*(?:(?:now|please|instead|then|ok|okay),?\s+)*(?:re-?)?(?:cluster|group|sort|organi[sz]e|"
                        r"categori[sz]e|classify)\s+(?:(?:them|these|those|everything|all|it|the\s+\w+)\s+)*by\b",
                        re.IGNORECASE)


_UNDO_WORDS = re.compile(r"\b(?:undo|revert|reverse|back|restore|cancel|oops)\b|\b(?:remove|drop|discard|delete|erase)\s+"
                         r"(?:the\s+|my\s+|that\s+)?(?:last|previous|latest)\s+(?:change|edit|step|modification)s?\b",
                         re.IGNORECASE)
_HOW_MANY = re.compile(r"\bhow\s+(?:many|big|large)\b", re.IGNORECASE)
# A question about the clusters' sizes or number, which no operation answers but the overview.
_SIZES_ASKED = re.compile(r"\b(?:clusters|groups)\b.*\b(?:smallest|largest|biggest)\b|\b(?:smallest|largest|biggest)"
                          r"\s+(?:clusters?|groups?|ones?)\b|\b(?:cluster|group)\s+is\s+(?:the\s+)?(?:smallest|largest|biggest)\b"
                          r"|\bhow\s+many\s+(?:clusters|groups|categories|top\s+clusters)\b"
                          r"|\b(?:which|what)(?:\s+ones?)?\s+(?:is|are)\s+(?:the\s+)?(?:smallest|largest|biggest)\W*$",
                          re.IGNORECASE)


# A cluster removed: the verb, then the cluster's name ("Delete the Shopping list cluster", "Get rid of 'Misc'").
_REMOVE = r"\b(?:remove|delete|drop|dissolve|discard|eliminate|get\s+rid\s+of)\s+(?:the\s+)?(?:(?:cluster|group|category)\s+)?\W?"


def removed_cluster(message: str, names: Iterable[str]) -> str:
    """The cluster of `names` a message asks to remove, its name right after the verb; "" where it asks none
    (an undo: "remove the last change"; texts out of a cluster: "remove text 5 from Billing")."""
    if _UNDO_WORDS.search(message):
        return ""
    found = [(m.start(), -len(n), n) for n in names if n.strip()
             for m in [re.search(_REMOVE + re.escape(n.strip()) + _WHOLE[1], message, re.IGNORECASE)] if m]
    return min(found)[2] if found else ""


def operation_asked(message: str, read: str, names: Iterable[str] = ()) -> str:
    """The operation a message asks for, given the one the model `read`: texts asked into a cluster of their
    own ("put the articles about trials in their own cluster", "... into a separate group") make a new
    cluster, which the small model read as a move into one it has; a message that opens "cluster them by
    ..." ("group these by sentiment", "now sort the tickets by urgency") is a new instruction, which it read
    as a question about a text or a cluster, or as a call for finer clusters ("Group them by how urgent the
    request is instead."); how many texts a cluster of `names` holds, the message writing its name, is a
    question about that cluster, which it read as one for the cluster that holds texts like the message
    ("How many texts are in Pet care?"). An undo needs a message that says so: it read "Delete the Language
    exchange cluster." as one, and took back the change before: a message that removes a cluster by name
    removes it (removed_cluster). A question of which clusters are the smallest or how many there are is for
    the overview (refine_questions.overview), not a search."""
    if read not in ("merge", "add_cluster") and removed_cluster(message, names):
        return "remove"
    if read == "move" and _OWN_CLUSTER.search(message):
        return "add_cluster"
    if read in ("explain", "describe", "find", "none", "granularity") and _BY_ANOTHER.search(message):
        return "reinstruct"
    if read in ("find", "explain", "none") and _HOW_MANY.search(message) and any(found_in(n, message) for n in names):
        return "describe"
    if read == "undo" and not _UNDO_WORDS.search(message):
        return "none"
    if read in ("find", "explain") and sizes_asked(message) and not _BY_ANOTHER.search(message):
        return "none"  # "Which clusters are the smallest?" read as a search for texts like the question
    return read


def operation_read(llm, message: str, asked_as: str, read: str, names: Iterable[str] = ()) -> tuple[str, str]:
    """operation_asked on the message's English `asked_as`, and that English. An undo the model read in a
    message that says none in English words is asked of the model's English for it where the identifier is
    not sure the message is English (a short French undo, which a turn begins without translating: the
    check refused it); a message it reads as English keeps the refusal and costs no call."""
    action = operation_asked(asked_as, read, names)
    if read == "undo" and action == "none" and asked_as == message:
        asked_as = in_english(llm, message, attempts=1, unsure=True)[0]
        action = operation_asked(asked_as, read, names)
    return action, asked_as


def sizes_asked(message: str) -> bool:
    """Whether the message asks which clusters are the smallest or largest, or how many there are."""
    return bool(_SIZES_ASKED.search(message))


def written_ids(message: str, known: set[str]) -> list[str]:
    """The known text ids the message writes, in order, as words outside quotes ("Why is test-02618 in Currency
    converter?", where the small model gave the cluster's name as the id)."""
    words = (w.strip(".,;:!?\"'()[]{}<>") for w in blanked(message).split())
    return list(dict.fromkeys(w for w in words if w in known))


def unknown_quoted(message: str, tax: tx.Taxonomy) -> list[str]:
    """Quoted strings in the message that are no cluster's name and lie inside none that it spells."""
    names = _name_spans(message, tax)
    return [text for start, end, text in _quoted_spans(message)
            if tax.find(text) is None and not any(s <= start + 1 and end - 1 <= e for s, e, _ in names)]


def found_in(text: str, message: str) -> str:
    """`text` as the message writes it (any case, as a whole word or words), or "" where it does not."""
    found = re.search(_WHOLE[0] + re.escape(text.strip()) + _WHOLE[1], message, flags=re.IGNORECASE) \
        if text.strip() else None
    return found.group() if found else ""


def written_in(text_id: str, message: str) -> bool:
    """Ids must appear in the message: a small model fills an id list with ids nobody asked about."""
    return bool(found_in(text_id, message))


def as_written(name: str, message: str, names: Iterable[str] = ()) -> str:
    """`name` as the message writes it, starting with a capital as every name does ("Epidemics and Networks",
    the model's, for 'rename it to epidemics and networks' is "Epidemics and networks"); "" where the
    message does not write it, or writes it only inside a longer one of the cluster `names` ("Car care" in
    'Merge "Car care questions" and "Car maintenance".': the model's name, not the user's) or in words that
    call clusters ("Anime" in "Merge the anime clusters into one.")."""
    if not name.strip():
        return ""
    inside = _spans(message, [n for n in names if len(n.strip()) > len(name.strip())], *_WHOLE)
    inside += [(m.start(1), m.end(1), "") for m in _unquoted(_CALLED, message)]
    for start, end, _ in sorted(_spans(message, [name], *_WHOLE)):
        if not any(s <= start and end <= e for s, e, _ in inside):
            return sentence_case(message[start:end])
    return ""


def mostly_written_in(text: str, message: str) -> bool:
    """Whether most of the words of `text` are words of the message: a rule the user gave in other order."""
    words, said = re.findall(r"\w+", text.lower()), set(re.findall(r"\w+", message.lower()))
    return bool(words) and sum(w in said for w in words) >= 0.75 * len(words)


_ABOUT = re.compile(r"\b(?:about|related to|concerning|to do with|mention(?:s|ing)?|discuss(?:es|ing)?)\s+"
                    r"(.+?)\s*(?=\b(?:into|in one|together|as one)\b|[.?!;:]|$)", re.IGNORECASE)
_MOVED = re.compile(r"\b(?:move|put|place|send|take)\s+(?:all\s+)?(.+)\s+(?:in|into|to|under)\b", re.IGNORECASE)


def described_in(message: str, read: str = "", names: Iterable[str] = ()) -> str:
    """What the texts a message asks about are about: the model's reading `read` where the message writes most
    of it, else the words after "about" ("Merge everything about sports into one": sports), else what a move
    calls them ("the WordPress questions", "the posts in Portuguese"), else ""; without the cluster of `names`
    they go to ("Move all tweets mentioning refunds to Billing": refunds)."""
    if read.strip() and mostly_written_in(read, message):
        return read.strip()
    if found := _ABOUT.search(message):
        return _without_destination(found.group(1), names)
    return as_about(_without_destination(found.group(1), names)) if (found := _MOVED.search(message)) else ""


def _without_destination(phrase: str, names: Iterable[str]) -> str:
    """`phrase` without the cluster of `names` it ends by putting texts in ("refunds to Billing": refunds)."""
    for name in sorted(names, key=len, reverse=True):
        end = re.search(r"\s+(?:in|into|to|under)\s+(?:the\s+)?[\"“']?" + re.escape(name.strip())
                        + r"[\"”']?(?:\s+(?:cluster|group|one))?$", phrase, re.IGNORECASE)
        if end and end.start() > 0:
            return phrase[:end.start()]
    return phrase


_KIND_CALLED = re.compile(r"(?:(?:all|the|these|those)\s+)*((?:[^\W\d][\w'&.+#-]*\s+){1,3}?)([^\W\d_]{3,}s)", re.I)


def as_about(called: str) -> str:
    """What a message calls texts as a description the model checks them against: "the beer posts" as "posts
    about beer". Asked whether Reddit titles about beer fit "the beer posts", the model answered no to all six;
    "posts about beer", yes to five. A phrase of other words stays as it is."""
    from sklearn.feature_extraction.text import ENGLISH_STOP_WORDS

    m = _KIND_CALLED.fullmatch(called.strip())
    if not m or not set(m.group(1).lower().split()) - ENGLISH_STOP_WORDS - set(NUMBER_WORDS):  # "the other posts"
        return called
    kind = "texts" if m.group(2).lower() == "ones" else m.group(2)
    return f"{kind} {'in' if all(map(_language, m.group(1).split())) else 'about'} {m.group(1).strip()}"


def _language(word: str) -> bool:
    """Whether `word` names a language ("Portuguese"): "the Portuguese posts" are posts in Portuguese."""
    import langcodes

    try:
        return langcodes.find(word) is not None
    except LookupError:
        return False


def typed_name(choice: str, message: str, names: list[str]) -> str:
    """For NOT_LISTED, the name the user typed (a quoted one that is not a cluster), to say it in the reply."""
    if choice != NOT_LISTED:
        return choice
    typed = [q for q in quoted(message) if q.strip().lower() not in {n.lower() for n in names}]
    return typed[0] if typed else NOT_LISTED


def with_written(chosen: list[str], message: str, names: list[str], action: str) -> list[str]:
    """The clusters the model chose for `action`, each whose name the message does not write replaced by the
    next cluster whose name it writes unquoted and no choice has ("Split Labor and finance by ...": the model
    chose "Athletic competition"; "Football and Baseball are the same, merge them": "(not in the list)" and
    "Football"). For a move, the last such name (its target: "Articles about Iraq belong in Security", where
    the description before it may name a cluster too); for a merge, every cluster the message writes, the
    model's two first ("Merge Laughter, Painting and Art.": the model answers two)."""
    written = written_clusters(message, names)
    said, picked = {w.lower() for w in written}, {c.lower() for c in chosen}
    spare = [n for n in written if n.lower() not in picked]
    if action == "move":
        spare.reverse()
    chosen = [c if c.lower() in said or not spare else spare.pop(0) for c in chosen]
    return chosen + spare if action == "merge" else chosen
