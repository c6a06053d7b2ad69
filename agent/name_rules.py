"""What a cluster's name is made of and how it is written: whole words within the limit, plain case, the
words the texts keep in capitals, and the words two names are told apart by."""

from __future__ import annotations

import functools
import re
import unicodedata
from collections import Counter
from collections.abc import Iterable, Sequence
from itertools import combinations, permutations

NAME_MAX = 32
# The grammar lets a name run past NAME_MAX: held to the limit itself, a name the limit cut could not be
# told from a whole one that ends there, and both lost their last word. Written whole, it is cut to whole
# words by whole_name.
NAME_ROOM = 48


def whole_name(v):
    """A name of at most NAME_MAX characters, cut at a word ("Buddhist and astrological advice requests" ->
    "Buddhist and astrological advice"; the grammar stops a name at NAME_ROOM, so a word it cut is always past
    NAME_MAX), and never ending in a linking word or a comma ("Personal communication with a"), nor where it
    was cut, in a preposition ("Personal details change after marriage" -> "Personal details change"). A cut
    name that joins two things and keeps one word of the second ends before it, a word the cut left without
    its noun: "Machine learning and natural language processing" -> "Machine learning", not "Machine learning
    and natural"; so does a phrase a preposition opens ("Travel alerts for specific destinations"), and one
    whose noun the cut left without the phrase it opens ("Soccer players with a focus on ..." -> "Soccer
    players", not "Soccer players with a focus")."""
    if not isinstance(v, str):
        return v
    words = v.split()
    cut = False
    while len(words) > 1 and len(" ".join(words)) > NAME_MAX:
        words.pop()
        cut = True
    if cut:
        # Where the second thing starts: after a joining word or a preposition ("Travel alerts for specific
        # destinations" -> "Travel alerts", not "... for specific"), or after a word ending in a comma.
        starts = [i + 1 for i, w in enumerate(words[:-1]) if i and w.lower() in _JOINING | _PREPOSITIONS]
        starts += [i + 1 for i, w in enumerate(words[:-1]) if w.endswith(",")]
        if starts and len(words) - max(starts) == 1:
            words = words[:max(starts)]
    inner = False  # whether the cut fell inside a phrase a preposition opens within another ("with a focus on")
    while len(words) > 1 and words[-1].strip(",;:").lower() in (_CUT_DANGLING if cut else _DANGLING):
        inner = inner or words.pop().lower() in _PREPOSITIONS
    opened = [i for i, w in enumerate(words) if i >= 2 and w.lower() in _PREPOSITIONS]
    if inner and opened and len([w for w in words[opened[-1] + 1:] if w.lower() not in ("a", "an", "the")]) == 1:
        words = words[:opened[-1]]  # "Soccer players with a focus on team play" -> "Soccer players"
    return (" ".join(words).rstrip(",;:") or v)[:NAME_MAX]


# Words that name no value of any facet: two names that differ only in these say the same thing
# ("customer issues", "customer complaints").
GENERIC_WORDS = frozenset("""
    issue complaint inquiry enquiry question request problem concern need matter topic thing stuff general
    other misc miscellaneous various related info information satisfaction service query feedback support
    help type kind category group cluster text message
""".split())
# Words that say a group is a share of another, not what it holds: a part of a cluster split from "Security"
# named "Security split" is named as the whole.
SHARE_WORDS = frozenset("split part half subset subgroup portion remainder rest remaining".split())
LINKING_WORDS = frozenset("a an and the of for to in into on with about by or & / -".split())
_JOINING = frozenset({"and", "&", "or", "/"})
# The prepositions a cut name may not end on; a name the model wrote whole may ("Before and after").
_PREPOSITIONS = frozenset("of for to in on with about by at from after before during into onto via per without "
                          "within between across against through toward towards until since among".split())
_DANGLING = LINKING_WORDS | {""}  # a last word a name cannot end on: a linking one, or a lone comma
_CUT_DANGLING = _DANGLING | _PREPOSITIONS  # ... nor, where the length cut it, a preposition


def name_words(name: str) -> list[str]:
    """The content words of a name, lower case and singular ("Customer Inquiries" -> customer, inquiry)."""
    out = []
    for w in re.findall(r"[\w'’]+|[&/-]", name.lower()):
        if w in LINKING_WORDS:
            continue
        if len(w) > 4 and w.endswith("ies"):
            w = w[:-3] + "y"
        elif len(w) > 3 and w.endswith("s") and not w.endswith(("ss", "us")):  # not "various", "status"
            w = w[:-1]
        out.append(w)
    return out


# What the facet prompt and schema say a facet is ("the property of a text the clusters must differ by"): a
# facet stated in these words alone repeats the question. Asked again, the model repeated it.
DEFINITION_WORDS = frozenset({"property", "text", "cluster", "facet", "differ", "group", "instruction"})


def says_what_a_facet_is(facet: str) -> bool:
    """Whether the model's `facet` is only the prompt's definition of one ("property of a text", "property")."""
    return set(name_words(facet)) <= DEFINITION_WORDS


def echoes_the_prompt(facet: str, instruction: str, prompt_text: str) -> bool:
    """Whether the model's `facet` is made only of words the prompt's own text (`prompt_text`, its example:
    "Group these recipes by the cuisine they come from") has and `instruction` does not: asked to sort news
    stories "into the sections of a newspaper", the model stated the facet "cuisine" and named every group for food."""
    own = stems(set(name_words(facet)) - GENERIC_WORDS)
    return bool(own) and own <= stems(name_words(prompt_text)) and not own & stems(name_words(instruction))


def telling_words(name: str) -> set[str]:
    """A name's content words less the generic ones: what it says about its group."""
    return set(name_words(name)) - GENERIC_WORDS


def listing(name: str) -> str:
    """Why `name` is a list of names rather than one ("" when it is one): asked to cover several groups, a
    small model strings their names together ("Philosophical inquiries, ID verification"), which the length
    limit then cuts mid-word."""
    if re.search(r"[,;]", name.strip().rstrip(",;:")):  # a comma at the end is one the length limit left
        return (f"{name!r} lists several names; give one 1-3 word name for what the texts share, not a list "
                "of its parts")
    return ""


def wordless(name: str) -> str:
    """Why `name` names nothing a reader can read ("" when it has a word): no letter in it, only digits or
    signs ("4", "...", "#1"). Shown texts about paydays, the model answered "4"."""
    if not re.search(r"[^\W\d_]", name):
        return f"{name!r} has no word in it; name in words what the texts share"
    return ""


def joined_parts(name: str, parts: Sequence[str]) -> tuple[str, str] | None:
    """The two of `parts` whose own words the two sides of `name` are ("Radio and Lego enthusiasts" over
    "Radio enthusiasts" and "Lego enthusiast"), or None. A side in words every part has ("Health and wellness"
    over "Health and medicine" and "Nutrition and health") is something the parts share, not one of them."""
    sides = re.split(r"\s+(?:and|&)\s+", name)
    if len(sides) != 2 or len(parts) < 2:
        return None
    a, b = (telling_words(s) for s in sides)
    owners = [telling_words(p) for p in parts]
    shared = set.intersection(*owners)
    if not a or not b or a <= shared or b <= shared:
        return None
    return next(((parts[i], parts[j]) for i, j in permutations(range(len(parts)), 2)
                 if a <= owners[i] and b <= owners[j]), None)


def side_by_side(name: str, parts: Sequence[str], texts: Iterable[str]) -> bool:
    """Whether `name` sets its parts' names side by side with no joining word ("VBA MATLAB" over "VBA
    programming" and "MATLAB"; "Spring hibernate LINQ" over three): its words cut into runs that each name one
    part alone and every part once, and where two runs meet the two words never stand together in `texts`, the
    group's own texts (which write "credit card", a compound, over "Credit score" and "Card payments")."""
    tokens = re.findall(r"[\w'’]+|[&/,;]", name.lower())
    if len(parts) < 2 or set(tokens) & (_JOINING | {",", ";"}):
        return False
    content = [(i, name_words(t)[0]) for i, t in enumerate(tokens) if name_words(t)]
    owners = [telling_words(p) for p in parts]
    for cuts in combinations(range(1, len(content)), len(parts) - 1):
        bounds = (0, *cuts, len(content))
        runs = [{w for _, w in content[a:b]} - GENERIC_WORDS for a, b in zip(bounds, bounds[1:])]
        named = [[n for n, words in enumerate(owners) if run and run <= words] for run in runs]
        if any(len(n) != 1 for n in named) or len({n[0] for n in named}) != len(parts):
            continue
        seams = [(content[b - 1][0], content[b][0]) for b in bounds[1:-1]]
        written = "\n".join(str(t) for t in texts).lower()
        return any(not re.search(_seam_pattern(tokens[a:b + 1]), written) for a, b in seams)
    return False


def _seam_pattern(tokens: list[str]) -> str:
    """A pattern for two words of a name and the linking words between them, each content word singular or
    plural, joined by spaces or hyphens."""
    def word(t: str) -> str:
        if not name_words(t):
            return re.escape(t)
        w = name_words(t)[0]
        return re.escape(w[:-1]) + "(?:y|ys|ies)" if w.endswith("y") else re.escape(w) + "(?:e?s)?"
    return r"\b" + r"[\s-]+".join(word(t) for t in tokens) + r"\b"


def nested_names(names: Sequence[str], broader: bool = True) -> list[int]:
    """Where a name says less in another's words ("Travel" beside "Travel alerts"), the indexes of the broader
    names, or with `broader` false of the narrower ones."""
    words = [telling_words(n) for n in names]
    return sorted({i if broader else j for i, a in enumerate(words) for j, b in enumerate(words) if a and a < b})


def names_what_all_share(part: str, parts: Sequence[str]) -> bool:
    """Whether `part`, one of the names `parts` of several clusters, says only what each of the others says
    too ("Sports" beside "Sports teams" and "Sports team coverage"): it names what they all are."""
    own = telling_words(part)
    others = [telling_words(p) for p in parts if p != part]
    return bool(own) and bool(others) and all(own <= words for words in others)


# A value that stands for whatever the others leave ("Sort into billing, shipping and other").
CATCH_ALL = {"other", "others", "misc", "miscellaneous", "rest", "the rest", "everything else", "anything else",
             "something else", "none of these", "none"}


def is_catch_all(name: str) -> bool:
    """Whether `name` stands for whatever the other values leave ("Other", "the rest")."""
    return " ".join(name.lower().split()) in CATCH_ALL


def unfit_for_texts(name: str, texts: Sequence[str]) -> str:
    """Why `name` cannot name a group that its `texts` make, or "": a catch-all ("Miscellaneous", given the
    for-sale posts of a newsgroup run with the rule "items for sale") says only that they fit no other group,
    and five or more words one text writes in a row (the second name "They Knew What They Wanted is a 1924
    play by Sid") say what that text says."""
    if is_catch_all(name):
        return f"{name!r} says only that these texts fit no other group; name what they share"
    words = re.findall(r"[\w'’]+", name.lower())
    copied = len(words) >= 5 and re.compile(r"\b" + r"\W+".join(map(re.escape, words)) + r"\b")
    if copied and any(copied.search(t.lower()) for t in texts):
        return f"{name!r} copies the words of one text; name what the group's texts share"
    return foreign_script(name, texts)


def foreign_script(value: str, texts: Sequence[str]) -> str:
    """Why `value` cannot stand where it has letters of a script other than Latin that none of `texts` uses
    ("" where it has none): the small model drifted into Chinese in the middle of an English rule ("Queries
    about personal identity, names, and称呼.")."""
    def script(ch: str) -> str:
        return unicodedata.name(ch, "?").split()[0]

    own = {script(ch) for ch in value if ch.isalpha()} - {"LATIN"}
    if not own or not texts:
        return ""
    foreign = own - {script(ch) for t in texts for ch in t if ch.isalpha()}
    if not foreign:
        return ""
    return (f"{value!r} is written partly in {' and '.join(sorted(foreign)).title()} script, which none of the "
            "group's texts use; write it in the language of the texts")


def alike(first: str, second: str) -> bool:
    """Two names are alike when they differ only in generic words (GENERIC_WORDS) and in the forms of their
    other words ("Political issues" beside "Politics": one stem, see stems)."""
    return alike_words(telling_words(first), telling_words(second))


def alike_words(first: Iterable[str], second: Iterable[str]) -> bool:
    """`alike` on two names' telling words, where a caller has them already."""
    return stems(first) == stems(second)


def stems(words: Iterable[str]) -> frozenset[str]:
    """The stems of `words` (see stem)."""
    return frozenset(map(stem, words))


@functools.lru_cache(maxsize=1 << 16)
def stem(word: str) -> str:
    """Snowball's English stem of a lower-case word ("politics" and "political" are "polit", "booking" is
    "book")."""
    import snowballstemmer

    return snowballstemmer.stemmer("english").stemWord(word)


def plain_case(name: str, proper: frozenset[str] | tuple[str, ...] = ()) -> str:
    """A name in title case written in plain case ("Credit Card Limits" -> "Credit card limits"): each capitalised
    word after the first is lowered unless it is in `proper` (lower-cased words, and pairs of words, the texts
    themselves capitalise: see capitalised_words), alone or with a word beside it ("Visual Studio"). Capitals
    and mixed case ("ATM", "JavaScript") stay. A name with a lower-case word other than a linking one ("Weather
    and rain", "Cheap flights to Paris") is taken as written, but for two names joined in sentence case: "Task
    reminder and Music player" -> "Task reminder and music player"."""
    words = name.split()
    low = [w.lower() for w in words]

    def kept(i: int) -> bool:
        return not _capitalised(words[i]) or is_proper(low, i, proper)

    def joined(i: int) -> bool:
        """Word i opens a second name in sentence case: after "and" (or "&", "or", "/"), before a word in lower
        case."""
        return (low[i - 1] in _JOINING and i + 1 < len(words) and words[i + 1] == low[i + 1]
                and low[i + 1] not in LINKING_WORDS)
    rest = [w for w in words[1:] if w[:1].isalpha() and w.lower() not in LINKING_WORDS]
    title_case = bool(rest) and all(w[:1].isupper() for w in rest)
    return " ".join(words[:1] + [low[i] if (title_case or joined(i)) and not kept(i) else w
                                 for i, w in enumerate(words) if i])


def with_capitals_of(name: str, text: str) -> str:
    """`name` with each word after the first that is in lower case capitalised where `text`, running text the
    model wrote about the same group (its description), writes it in capitals mid-sentence, or a word it
    begins with one or two letters more: "Gun and israel" -> "Gun and Israel" by "... and Israeli politics.".
    On texts written all in lower case plain_case has no evidence of which words are names, and lowers them."""
    capitals = [w for w in capitalised_words([text]) if " " not in w]
    words = name.split()
    for i, w in enumerate(words[1:], 1):
        if w.islower() and w not in LINKING_WORDS and any(
                c == w or (len(w) >= 4 and c.startswith(w) and len(c) - len(w) <= 2) for c in capitals):
            words[i] = w[0].upper() + w[1:]
    return " ".join(words)


def is_proper(low: list[str], i: int, proper) -> bool:
    """Whether word `i` of a name's lower-cased words `low` is in `proper` (see capitalised_words), alone or
    as a pair with the word before or after it ("visual studio")."""
    return (low[i] in proper or (i > 0 and f"{low[i - 1]} {low[i]}" in proper)
            or (i + 1 < len(low) and f"{low[i]} {low[i + 1]}" in proper))


def sentence_case(name: str) -> str:
    """`name` starting with a capital, as a reader writes a name ("linguistics" -> "Linguistics"), unless its
    first word has capitals of its own ("iPhone repairs", "eBay")."""
    first = name.split(maxsplit=1)[0] if name.strip() else ""
    if not first[:1].isalpha() or first != first.lower():
        return name
    return name[:1].upper() + name[1:]


def _capitalised(word: str) -> bool:
    """A capital then lower case only ("Italy"; not "ATM", "JavaScript" or "I")."""
    return len(word) > 1 and word[0].isupper() and word[1:] == word[1:].lower()


_WORD = re.compile(r"(\W*)([^\W\d_][\w'’]*)")  # a word and the non-word characters just before it
_SENTENCE_END = re.compile(r"[.!?:;\n]")
_SENTENCES = re.compile(r"(?<=[.!?:;\n])\s+")
# Words of four letters or more that a title may leave in lower case: no evidence either way.
_TITLE_SMALL = frozenset("with from into onto upon over under about than that this when what which your their "
                         "using versus".split())


def _in_title_case(words: list[str]) -> bool:
    """A sentence whose words after the first are nearly all capitalised (a headline, a paper's title): its
    capitals say nothing of which words are names."""
    content = [w for w in words[1:] if len(w) >= 4 and w.lower() not in _TITLE_SMALL]
    return len(content) >= 3 and sum(w[0].isupper() for w in content) >= 0.8 * len(content)


def capitalised_words(texts) -> tuple[str, ...]:
    """Words (lower-cased) the texts write with a capital more often than without, not counting a sentence's
    first word nor a sentence in title case: names of places, products, people ("Django", "Italy"), which a
    name keeps in capitals. Also pairs of words ("visual studio") the texts write both in capitals more often
    than not, where one of the two is such a word or an acronym ("SQL Server"): the other is part of the same
    name, though it may open most sentences it is in ("Visual Studio 2008 crashes") or be written in lower case
    elsewhere ("web server")."""
    capital, lower, pair_capital, pair_other, acronyms = Counter(), Counter(), Counter(), Counter(), set()
    for sentence in (s for text in texts for s in _SENTENCES.split(str(text))):
        found = list(_WORD.finditer(sentence))
        title = _in_title_case([m.group(2) for m in found])
        previous = None
        for m in found:
            before, w = m.groups()
            key = w.lower()
            if previous is not None and before == " " and not title and not {previous.lower(), key} & LINKING_WORDS:
                both = previous[:1].isupper() and w[:1].isupper()
                (pair_capital if both else pair_other)[f"{previous.lower()} {key}"] += 1
            previous = w
            if len(w) < 2:
                continue
            if w == key:
                lower[key] += 1
            elif not _capitalised(w):
                acronyms.add(key)
            elif m.start(2) > 0 and not _SENTENCE_END.search(before) and not title:
                capital[key] += 1
    words = {w for w, n in capital.items() if n > lower[w]}
    anchors = words | acronyms
    phrases = {p for p, n in pair_capital.items() if n > pair_other[p] and not anchors.isdisjoint(p.split())}
    return tuple(sorted(words | phrases))
