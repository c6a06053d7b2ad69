"""How a description is worded: the plain opening, no asides, no restated facet, a full stop."""

from __future__ import annotations

import re
from collections.abc import Iterable

from clusteragent.name_rules import is_catch_all, is_proper, name_words, stem, stems, telling_words


# How a small model opens a description ("This group of texts is specifically about ..."): words that
# say nothing about which texts belong, in the place a reader looks first.
def _texts(group: str = "noun") -> str:
    """A plural noun the model calls the texts by (texts, questions, queries, messages, ...), captured as `group`."""
    return rf"(?P<{group}>[a-z]+s)"


def _texts_of(group: str = "noun") -> str:
    """The same after "group of", where the corpus's word may come with a word or two before it ("Reddit post
    titles", "customer support tickets")."""
    return rf"(?:[a-z'-]+\s+){{0,2}}?{_texts(group)}"


_IS_ABOUT = re.compile(rf"^(?:this group of {_texts_of()}|this group|these {_texts('noun2')}|(?:the )?texts|"
                       rf"the {_texts('noun3')} in this group|{_texts('noun4')} (?:in|from) (?:this|the) group)"
                       r"\s+(?:is|are)\s+(?:(?:specifically|mainly|primarily|generally|mostly|all)\s+)?"
                       r"(?=(?:about|related|focused|concerned|dedicated|devoted|written|in)\b|[a-z]+ing\b)", re.I)
# "The texts express ..." too, but not "The <plural> <verb>" at large: "The sales figures rose" is about the texts' content.
# "The texts are friendly" too ("Texts that are friendly"), but not "These texts are questions about X": a plural
# after "are" says what the texts are, and stays as written.
_THESE_DO = re.compile(rf"^(?:these {_texts()}|the texts|{_texts('noun2')} (?:from|in) (?:this|the) group)"
                       r"\s+(?!(?:is|were|was|in|from|of|that|which)\b|are\s+[a-z]+s\b)(?=[a-z]+\b)", re.I)
_GROUP_OF = re.compile(rf"^(?:a\s+)?group of {_texts_of()}\s+(?=(?:about|related|on|that|which|with|for)\b|[a-z]+ing\b)",
                       re.I)
_HOLDS = r"^this group(?: of texts)?\s+(?:includes|contains|comprises|consists of|has|is made (?:up )?of)"
_GROUP_HOLDS = re.compile(rf"{_HOLDS}\s+{_texts()}\b\s*", re.I)
# A top cluster's description that echoes the prompt ("This group is made up of smaller groups related to X").
_GROUP_OF_GROUPS = re.compile(rf"{_HOLDS}\s+(?:(?:several|a few|many|two|three|four)\s+)?(?:smaller\s+)?(?:sub-?)?"
                              rf"(?:groups|clusters)(?:\s+of\s+{_texts_of()})?\s+(?=[a-z])", re.I)
_GROUP_DOES = re.compile(r"^this group(?: of texts)?\s+(?!(?:is|was|has)\b)(?P<verb>[a-z]+s)\b", re.I)
# With the corpus's own word ("This group of news articles covers ..."), where the noun's last word and the
# verb both end in "s", only a verb a description opens with is taken as one.
_DESCRIBING = ("covers|discusses|deals|focuses|provides|describes|contains|includes|involves|features|asks|requests|"
               "mentions|expresses|uses|relates|concerns|explores|highlights|addresses|shows|reports|talks|refers")
_GROUP_OF_DOES = re.compile(rf"^this group of {_texts_of()}\s+(?P<verb>{_DESCRIBING})\b", re.I)


def _noun(m: re.Match) -> str:
    """The plural noun a matched opening calls the texts by ("questions"), capitalised; "Texts" where it names none."""
    return next((v for k, v in m.groupdict().items() if k.startswith("noun") and v), "texts").capitalize()


def _base(verb: str) -> str:
    """A verb in the third person in its base form ("deals" -> "deal", "focuses" -> "focus")."""
    verb = verb.lower()
    return verb[:-2] if verb.endswith(("sses", "shes", "ches", "xes", "zes")) or (
        verb.endswith("uses") and len(verb) > 4) else verb[:-1]


def _ing(verb: str) -> str:
    """The -ing form of a verb in the third person ("deals" -> "dealing", "provides" -> "providing",
    "focuses" -> "focusing")."""
    base = _base(verb)
    return (base[:-1] if base.endswith("e") and not base.endswith("ee") else base) + "ing"


# "Texts express gratitude" reads as a statement about texts, not as a rule: "Texts that express gratitude".
_TEXTS_DO = re.compile(r"^texts\s+(?=(?:" + "|".join(_base(v) for v in _DESCRIBING.split("|")) + r")\b)", re.I)


def plain_opening(description: str) -> str:
    """A description opened the plain way: "This group of texts is about X" or "Texts are about X" -> "Texts
    about X", "Texts are written in X" -> "Texts written in X", "These texts are asking for X" -> "Texts
    asking for X", "These (or The) texts express X" or "Texts express X" -> "Texts that express X", "A group
    of texts that X" -> "Texts that X", "This group of texts deals with X" -> "Texts dealing with X", "This
    group includes texts on X" -> "Texts on X", "This group is dedicated to X" -> "Texts dedicated to X",
    "This group is made up of smaller groups related to X" -> "Texts related to X"; and so with the corpus's
    own word for its texts ("These questions are about X" -> "Questions about X")."""
    for opening in (_IS_ABOUT, _GROUP_OF, _GROUP_HOLDS, _GROUP_OF_GROUPS):
        if m := opening.match(description):
            rest = description[m.end():]
            return f"{_noun(m)} {rest}" if rest[:1].isalnum() else _noun(m) + rest
    if m := _THESE_DO.match(description) or _TEXTS_DO.match(description):
        return f"{_noun(m)} that " + description[m.end():]
    if m := _GROUP_DOES.match(description) or _GROUP_OF_DOES.match(description):
        return f"{_noun(m)} {_ing(m.group('verb'))}" + description[m.end():]
    return description


_ASIDE = re.compile(r",\s+which\b[^,.!?]*")
# The prompt's own words echoed as a clause ("..., setting them apart from other groups."): about the grouping.
_SETS_APART = re.compile(r",\s+(?:[a-z]+\s+){0,2}?(?:sets?|setting)\s+(?:it|them|this group|these texts)\s+apart\b[^,.!?]*",
                         re.I)
# An example that points at one text the model read ("..., such as the one about getting her game on."): no reader
# knows which text that is, so it says nothing about which texts belong.
_ONE_TEXT = re.compile(r",?\s+(?:such as|like|as in|for example|e\.g\.,?)\s+(?:the|that|this)\s+"
                       r"(?:one|text|post|comment|message|sentence|title|query)\s+(?:about|where|in which|that|on|"
                       r"with|from|who)\b[^.!?;]*", re.I)


# "Texts about credit card applications, including status inquiries, are about banking.": the rule's noun
# phrase made the subject of a sentence whose predicate says what the texts fall under. A relative or
# question word between them ("Texts about flights that are delayed", "... what the weather is like") makes
# the verb the phrase's own, and it stays.
_PREDICATE = re.compile(r"^(?P<rule>[a-z]+s\s+about\s+(?:(?!\b(?:that|which|who|whose|what|where|when|why|how|whether|if)\b)"
                        r"[^.!?;])*?\w)\s*,?\s+(?:is|are)\b[^.!?]*(?:\.\.\.)?", re.I)


def without_predicate(description: str) -> str:
    """`description` without the predicate its rule is made the subject of ("Texts about X are all related
    to banking." -> "Texts about X."), and the "..." of a length cut in it: a comment on the group, as an
    aside is (without_asides)."""
    return _PREDICATE.sub(lambda m: m.group("rule"), description, count=1)


def without_asides(description: str) -> str:
    """`description` without its clauses set off by ", which" (to the next comma or the sentence's end): a
    comment on the group ("Texts about setting alarms, which is a common task in daily life."), not a part of
    the rule that says which texts belong; so is a clause that says what sets the group apart (the prompt's
    words, not the texts'), and so is an example that points at one text ("such as the one about ...")."""
    kept = _ONE_TEXT.sub("", _SETS_APART.sub("", _ASIDE.sub("", description))).strip()
    return kept if re.search(r"[^\W\d_]", kept) else description


def without_repeats(description: str) -> str:
    """`description` with a list item it says twice said once ("Titles about Lego builds, a LaFerrari build, a
    LaFerrari build." -> "Titles about Lego builds, a LaFerrari build."): a small model can loop on a phrase. An
    item of two words or more that ends an earlier one is said already ("Texts about boxing matches, boxing
    matches, ...")."""
    seen, kept = [], []
    for item in description.split(", "):
        key = re.sub(r"^(?:and|or)\s+", "", item.lower().rstrip(".!? ").strip())
        if not any(key == k or (" " in key and k.endswith(" " + key)) for k in seen):
            seen.append(key)
            kept.append(item)
    out = ", ".join(kept)
    stop = description.rstrip()[-1:]
    return out + stop if stop in (".", "!", "?") and not out.endswith(stop) else out


def _spaced(text: str) -> str:
    """`text` in lower case, single-spaced: how a facet phrase is compared with it."""
    return " ".join(text.lower().split())


def restates(text: str, phrase: str) -> bool:
    """Whether `text` says `phrase` (lower case, single-spaced), whatever its case and spacing."""
    return phrase in _spaced(text)


def without_restated(description: str, phrase: str) -> str | None:
    """`description` without what restates `phrase` (the instruction's facet): a later sentence that says it
    goes, and so does a clause after the first one that does ("Texts about freezing bank accounts, which
    falls under the domain of life." -> "Texts about freezing bank accounts."). None where the phrase is in
    the first clause, what the description says belongs, unless it opens it as the texts' subject ("Customer
    wants to order a new card." for the facet "customer wants")."""
    first, *later = re.split(r"(?<=[.!?])\s+", description.strip())
    clauses = first.rstrip(".!?").split(", ")
    opening = _spaced(clauses[0])
    if phrase in opening and not re.match(rf"(?:(?:the|a|an) )?{re.escape(phrase)}\b", opening):
        return None
    kept = ", ".join(clauses[:1] + [c for c in clauses[1:] if not restates(c, phrase)]) + first[len(first.rstrip(".!?")):]
    return " ".join([kept] + [sentence for sentence in later if not restates(sentence, phrase)])


def as_sentence(description: str, room: int) -> str:
    """`description` ending as a sentence does: a full stop where the model left none ("Customer messages
    about activating new cards"), where `room` characters allow one."""
    if description[-1:].isalnum() or description[-1:] in ")\"'”’":
        return description + "." if len(description) < room else description
    return description


# Words a description of any group may share with a text without retelling it.
_COMMON = frozenset("""
    that this these those with from into about their they them such other some than then what which when where
    were been have more most very also only does your there here will would could should text texts
""".split())
# Where a description's examples start; not "like", which is also a verb ("Texts that read like ...").
_EXAMPLES = re.compile(r",?\s+(?:including|such as|especially|for example|e\.g\.)\s", re.I)


def examples_at(text: str) -> int:
    """Where the first list of examples starts in `text` ("..., including ...", "... such as ..."), or -1."""
    found = _EXAMPLES.search(text)
    return found.start() if found else -1


def _example_words(text: str) -> list[str]:
    """The lower-case words and names of a text ("c#", "node.js", "3d")."""
    return re.findall(r"[a-z0-9][a-z0-9+#]*(?:\.[a-z0-9]+)*", text.lower())


def with_examples_found(description: str, texts) -> str:
    """`description` less the examples of its first list ("..., such as HTML, CSS and Drupal") that none of
    `texts` (its group's, with any smaller groups' names) mentions, a word matched by its stem (Snowball's
    English stemmer: "booking" is "book") or, of five letters or more, its first five; the list goes where none
    is left ("Questions about web tools."). An example in no text of its group is the model's idea of the
    topic, not what it read: over Drupal, Magento and SharePoint questions it listed "HTML, CSS, JavaScript,
    and frameworks like React, Angular". "Other ..." stays."""
    from sklearn.feature_extraction.text import ENGLISH_STOP_WORDS

    found = _EXAMPLES.search(description)
    if not found:
        return description
    rest = description[found.end():]
    end = re.search(r"[.;:()](?:\s|$)", rest)
    listed, tail = (rest[:end.start()], rest[end.start():]) if end else (rest, "")
    items = [i.strip() for i in re.split(r",\s*(?:and\s+|or\s+)?|\s+(?:and|or)\s+", listed) if i.strip()]
    said = {w for t in texts for w in _example_words(str(t))}
    said_stems, starts = {stem(w) for w in said}, {w[:5] for w in said if len(w) >= 5}

    def mentioned(item: str) -> bool:
        words = [w for w in _example_words(item) if w not in ENGLISH_STOP_WORDS and w not in _COMMON]
        return (not words or item.lower().startswith(("other", "etc"))
                or any(stem(w) in said_stems or len(w) >= 5 and w[:5] in starts for w in words))

    kept = [i for i in items if mentioned(i)]
    if len(kept) == len(items):
        return description
    if kept:
        return description[:found.end()] + in_words(kept) + tail
    return description[:found.start()] + (tail or ".")


def says_only_the_instruction(description: str, name: str, instruction: str) -> bool:
    """Whether `description` says nothing that `instruction` does not and no word of its group's `name`
    ("Titles are questions on Stack Exchange sites." for "Cluster the question titles by the Stack Exchange
    site they were asked on."): a rule no text can be sorted by. Content words are compared by stem; general
    ones ("various topics", name_rules.GENERIC_WORDS) say nothing."""
    from sklearn.feature_extraction.text import ENGLISH_STOP_WORDS

    own = stems(telling_words(description) - ENGLISH_STOP_WORDS)
    named = stems(telling_words(name)) or stems(name_words(name))  # "Request" is a general word, and a name
    return not own - stems(telling_words(instruction)) and not stems(name_words(description)) & named


def _content(text: str) -> set[str]:
    """Lower-case words of four letters or more, a plural's last "s" dropped, less the commonest words."""
    words = (w[:-1] if w.endswith("s") and not w.endswith("ss") else w for w in re.findall(r"[^\W\d_]{4,}", text.lower()))
    return {w for w in words if w not in _COMMON}


def retold(description: str, name: str, texts) -> int | None:
    """The position in `texts` (the texts the model was shown) of the one text `description` retells, or None.
    Retold: at least three of its words that are not the name's come from that text alone among the shown ones,
    and they are most (60%) of its words found in any. Asked for a rule that covers a group whose texts share
    little, a small model describes the first text it reads ("Titles on the effects of arterial hypoxia on the
    cutaneous circulation of the rabbit." for a group named "Cardiovascular physiology")."""
    shown = [_content(str(t)) for t in texts]
    found = {w: [i for i, words in enumerate(shown) if w in words] for w in _content(description) - _content(name)}
    found = {w: where for w, where in found.items() if where}
    alone = [where[0] for where in found.values() if len(where) == 1]
    if len(alone) < 3:
        return None
    source = max(set(alone), key=alone.count)
    return source if alone.count(source) >= max(3, 0.6 * len(found)) else None


def without_retelling(description: str, name: str, texts, proper=frozenset(), fallback: str = "") -> str:
    """`description` as a rule for the whole group where it retells one of `texts` (see `retold`): without its
    examples where they are what comes from that text ("Snippets about video games, including reviews, cheats
    and previews." -> "Snippets about video games."), else `fallback`, by default "Texts about <name>." (the
    name with its first word in lower case unless that word is in `proper`): the name says what the model found
    the group shares, and a reader sorts by the rule, so one text's details there would send every other text
    elsewhere."""
    if not texts or retold(description, name, texts) is None:
        return description
    head = _EXAMPLES.split(description, maxsplit=1)[0].rstrip(" ,;:.")
    if head != description.rstrip(" .") and len(head.split()) >= 3 and retold(head, name, texts) is None:
        return head + "."
    return fallback or about(name, proper)


def rule_of_value(name: str, facet: str, about_topic: bool | None, proper=frozenset()) -> str:
    """A rule made of a value's `name` alone, for where the model's own rule cannot stand: "Texts whose
    sentiment is neutral." where the facet is not subject matter and is a short noun phrase (the model is
    asked for one to three words), "Texts that are neutral." where it is not subject matter and no such phrase
    (the model read "Is each review positive or negative?" as the facet "positive/negative"), else "Texts about
    <name>."; a value such as "other" is the texts no other value takes."""
    if is_catch_all(name):
        return "Texts that fit none of the other clusters."
    words = facet.lower().split()
    if words[:1] == ["the"]:
        words = words[1:]
    if about_topic is not True and 1 <= len(words) <= 3 and all(re.fullmatch(r"[^\W\d_][\w'’-]*", w) for w in words):
        return f"Texts whose {' '.join(words)} is {in_running_text(name, proper)}."
    if about_topic is False:
        return f"Texts that are {in_running_text(name, proper)}."
    return about(name, proper)


def about(name: str, proper=frozenset()) -> str:
    """The plainest rule a group's `name` makes: "Texts about baseball." (see in_running_text)."""
    return f"Texts about {in_running_text(name, proper)}."


def in_words(items: list[str], conjunction: str = "and") -> str:
    """Items as a sentence lists them: "A", "A and B", "A, B and C" (or with another `conjunction`)."""
    return f"{', '.join(items[:-1])} {conjunction} {items[-1]}" if len(items) > 1 else "".join(items)


def quoted_list(names: Iterable[str]) -> str:
    """Names in quotes as a reply lists them ('"A"', '"A" and "B"', '"A", "B" and "C"')."""
    return in_words([f'"{n}"' for n in names])


def in_running_text(name: str, proper=frozenset()) -> str:
    """`name` as written inside a sentence: its first word in lower case unless that word, or it with the next
    ("visual studio"), is in `proper` or it has capitals of its own ("Lost luggage" -> "lost luggage"; "ATM
    fees" and "iPhone repairs" stay)."""
    first, _, rest = name.partition(" ")
    if not (first and is_proper(name.lower().split(), 0, proper)) and first[1:] == first[1:].lower():
        first = first.lower()
    return " ".join([first, rest]).strip()


# "MATLAB is a programming language ...": a subject of a few words, then "is a" or "are an".
_DEFINITION = re.compile(r"^(?P<subject>\w[^,.;:!?]{0,38}?)\s+(?:is|are)\s+(?P<article>an?)\s+(?=\w)", re.I)


def as_rule(description: str, name: str, room: int) -> str:
    """A description that defines what the group is about ("MATLAB is a programming language for numerical
    computing.") made a rule that says which texts belong ("Texts about MATLAB, a programming language for
    numerical computing."), where the subject shares a word with the group's `name` and the rule fits in
    `room` characters."""
    m = _DEFINITION.match(description)
    if not m or not _content(m.group("subject")) & _content(name):
        return description
    subject = re.sub(r"^(?:A|An|The)\b", lambda a: a.group().lower(), m.group("subject"))
    rule = f"Texts about {subject}, {m.group('article').lower()} {description[m.end():]}"
    return rule if len(rule) <= room else description


def said_in_full(description: str, name: str, proper=frozenset()) -> str:
    """`description`, or where it has fewer than two words of three letters or more ("Sports.", a rule no text
    can be sorted by) a rule made of the group's `name` ("Texts about baseball.")."""
    if len(re.findall(r"[^\W\d_]{3,}", description)) >= 2 or not name.strip():
        return description
    return about(name, proper)
