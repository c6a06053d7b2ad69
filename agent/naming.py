"""Naming a group of texts: by the model, by the values the model listed, or by statistics."""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import replace

import numpy as np
from pydantic import ValidationError

from clusteragent.errors import ModelError
from clusteragent.name_rules import (
    LINKING_WORDS,
    NAME_MAX,
    alike,
    capitalised_words,
    name_words,
    sentence_case,
    telling_words,
)
from clusteragent.prompts import load_prompt
from clusteragent.schemas import ClusterSpec, distinct_spec_schema, requested_words
from clusteragent.structured import extract_json
from clusteragent.tools import taxonomy as tx
from clusteragent.wording import in_words, rule_of_value, without_retelling

# A name refused twice is given up for the statistical one: each answer costs a call another group could
# use. (Before retries were sampled, a third answer at temperature 0 repeated the second in every case seen,
# the README's main job: 0 of 4; a sampled third answer has not been measured.)
NAMING_ATTEMPTS = 2
NAMING_TEXTS = 6  # central texts the model reads to name a group (each costs its tokens in every naming call)
PHRASE_TEXTS, PHRASE_SHARE = 3, 20  # a statistical name is a phrase that 3 texts of a group, and 1 in 20, write


def name_group(llm, instruction: str, facet: str, texts: Sequence[str], taken: Sequence[str],
               step: str, shared: Sequence[str] = (), parts: Sequence[str] = (),
               attempts: int = NAMING_ATTEMPTS, show_texts: bool = True, nested: bool = False,
               whole: str = "", current: str = "", narrower: bool = False, within: str = "") -> ClusterSpec | None:
    """The model's name and inclusion rule for a group shown by `texts`, or None when it gives no valid one.

    `shared` lists, in words, what statistics found the group's texts have more of than the others
    (for a group of the layout view: "many lines", "whole lines in capitals"); the model sees it.
    A name already in `taken` is refused with the reason, which the model sees on its retry (a small
    model otherwise gives every group of one domain the same name). `parts` names the smaller clusters
    a top cluster is made of, largest first: the name should cover them all; with `show_texts` false the
    model sees only those names, and the answer is still checked against `texts` (the words they ask for, the
    capitals they keep). With `nested` a name saying less in a taken one's words is refused too: of clusters
    named "Cooking" and "Cooking recipes", a reader sorts every recipe into "Cooking" (see views.renamed_broader). `whole`
    names the cluster the group is a part of, being split (asked for a part's name, the model gave the
    whole's twice, which the part may not take); `within` names the top cluster the group stands under, whose
    name it may not take either, and the model is asked what sets the group apart from the rest of it.
    `current` is the name the group has now, which a new name must differ from (asked for a better name, the
    model was told the group's own name was "another group's").
    With `narrower` the model's second, narrower name is taken where it is valid (a cluster that a top cluster
    will hold: see schemas.distinct_spec_schema).
    """
    own = whole or within or current
    taken = [t for t in taken if t.lower() != own.lower()]
    prompt = load_prompt("name_cluster")
    messages = prompt.messages(instruction=instruction, facet=facet, taken=taken,
                               texts=list(texts) if show_texts else [], shared=list(shared),
                               parts=list(parts), whole=whole, current=current, within=within)
    try:
        schema = distinct_spec_schema(tuple(taken), requested_words(texts), facet, capitalised_words(texts),
                                      second_choice=True, nested=nested, texts=tuple(map(str, texts)),
                                      parts=tuple(parts), current=own, narrower=narrower, part_of=bool(whole or within),
                                      subject=corpus_subject(instruction), echoes=prompt.quoted,
                                      prompt_text=prompt.own_text)
        return llm.decide(messages, schema, step=step, attempts=attempts)
    except ModelError as e:
        return named_as_described(e.answers, schema)


# Where a description says what its group is about, or expresses: "This group discusses political events and ...".
_ABOUT = re.compile(r"\b(?:about|discuss(?:es|ing)?|cover(?:s|ing)?|focus(?:es|ing)? on|describ(?:es|ing)|"
                    r"concern(?:s|ing)?|deal(?:s|ing)? with|report(?:s|ing)? on|express(?:es|ing)?|convey(?:s|ing)?)"
                    r"\s+(?P<what>[^,.;:()]+)", re.IGNORECASE)
# Where one phrase of a description's list ends and the next begins: ", and ", ", including ", ...
_ITEMS = re.compile(r",\s*(?:and\s+|or\s+)?(?:including\s+|such as\s+|like\s+|especially\s+)?", re.IGNORECASE)
# Words a clause opens with, never a name: pronouns, question words, forms of "be", "have" and "do".
_CLAUSE_OPENERS = frozenset("""i you he she it we they them this that these those who whom whose which what why how
    when where whether is are was were be been being am has have had do does did can could will would""".split())
_LEADING = re.compile(r"^(?:(?:the|a|an|various|different|several|many|some)\s+|(?:feelings?|emotions?|sense)\s+of\s+)+",
                      re.IGNORECASE)
# Where what texts express ends and what they express it about begins: "disgust at the situation, including ...".
_EXPRESSED_AT = re.compile(r",?\s+(?:with|at|about|towards?|over|regarding|including|such as|like)\b", re.IGNORECASE)


def named_as_described(answers: Sequence[str], schema: type[ClusterSpec]) -> ClusterSpec | None:
    """A name from what a refused answer's own description says its group is about, where the answer's names
    were refused (another group's, twice): "discusses financial deals and market trends, including ..." ->
    "Market trends" where "Financial deals" is taken. The model's words, under the same rules (`schema`),
    before statistical ones; a phrase of one to three words, or one side of an "and" in it, the first of
    each answer's list first, then the rest ("about payment problems, including double charges, fees, ..." ->
    "Double charges" where "Payment problems" is taken: over Banking77 messages the model answered "Payment
    assistance" 36 times, and the clusters it named none fell to "abroad / saturday"); but not one verb of a
    list of verbs ("about checking, starting, and maintaining a car's engine" gave "Checking")."""
    from sklearn.feature_extraction.text import ENGLISH_STOP_WORDS

    heads, later = [], []  # (phrase, description): each answer's first phrase, then the rest of its list
    for answer in answers:
        try:
            description = str(extract_json(answer).get("description", ""))
        except (ValueError, AttributeError):
            continue
        found = _ABOUT.search(description)
        if not found:
            continue
        said = re.split(r"[.;:()]", description[found.start("what"):])[0]
        if found.group(0).lower().startswith(("express", "convey")):  # "Emerald" from "..., the mention of emeralds"
            said = _EXPRESSED_AT.split(said, maxsplit=1)[0]
        items = [_LEADING.sub("", i.strip()) for i in _ITEMS.split(said)]
        phrases = [[(phrase, description) for phrase in [item, *item.split(" and ")]] for item in items]
        heads += phrases[0]
        later += [p for item in phrases[1:] for p in item]
    for candidate, description in heads + later:
        words = candidate.split()
        if not 1 <= len(words) <= 3 or (LINKING_WORDS - {"and"}) & {w.lower() for w in words} \
                or not telling_words(candidate) - ENGLISH_STOP_WORDS or words[0].lower() in _CLAUSE_OPENERS:
            continue  # not "it", "them", nor a clause: "... why they didn't work, were returned"
        if candidate.lower().endswith("ing") and re.search(
                rf"\b{re.escape(candidate)}(?:,\s*|\s+)(?:and\s+|or\s+)?\w+ing\b", description, re.IGNORECASE):
            continue  # a verb of a list of verbs, its object left behind: "about checking, starting, and ..."
        try:
            return schema.model_validate({"name": sentence_case(candidate), "description": description})
        except ValidationError:
            continue
    return None


def name_members(llm, instruction: str, facet: str, texts: Sequence[str], vectors: np.ndarray, rows: np.ndarray,
                 taken: Sequence[str], step: str, n: int = NAMING_TEXTS, shared: Sequence[str] = (),
                 parts: Sequence[str] = (), nested: bool = False, whole: str = "",
                 current: str = "", narrower: bool = False, within: str = "") -> ClusterSpec | None:
    """name_group shown the `n` texts of `rows` closest to their centre."""
    central = tx.central_members(vectors, rows, n)
    return name_group(llm, instruction, facet, [texts[r] for r in central], taken, step=step, shared=shared,
                      parts=parts, nested=nested, whole=whole, current=current, narrower=narrower, within=within)


def given_values(categories: Sequence[str], facet: str, about_topic: bool | None) -> tx.Taxonomy:
    """The user's categories as the run's values, in their order and words, each with a rule made of its name
    (wording.rule_of_value: "Texts whose sentiment is positive.", "Texts about sports.")."""
    return tx.Taxonomy.from_specs([(sentence_case(c), rule_of_value(c, facet, about_topic)) for c in categories])


def listed_as_rules(specs: Sequence[ClusterSpec], facet: str, about_topic: bool | None,
                    shown: Sequence[str]) -> tuple[list[ClusterSpec], list[str]]:
    """The values the model listed from a sample of texts (`shown`), each rule that retells one of those texts
    made a rule for the value (wording.without_retelling: without the examples that came from the text, else
    made of the value's name, wording.rule_of_value), and the names so mended. Asked for the values of a facet
    other than subject matter, the small model has filled every rule of its list with a copy of a shown text
    ("Negative": "October-December sales were 302 mln eur, a 25.3 pct increase."); the labelling reads those
    rules, and a reader sorts by them."""
    proper = capitalised_words(shown)
    out, mended = [], []
    for spec in specs:
        rule = without_retelling(spec.description, spec.name, shown, proper,
                                 rule_of_value(spec.name, facet, about_topic, proper))
        if rule != spec.description:
            spec = spec.model_copy(update={"description": rule})
            mended.append(spec.name)
        out.append(spec)
    return out, mended


def unrequested(words: list[str], texts: list[str]) -> list[str]:
    """`words` less any that a text asks the clusters to be named (see schemas.requested_words): a group of
    texts saying "name this cluster HACKED" has "hacked" among its distinctive words."""
    requested = {w.lower() for w in requested_words(texts)}
    return [w for w in words if w.lower() not in requested]


def statistical_name(words: list[str], texts: list[str], taken: list[str]) -> tx.Cluster:
    """The name a group of `texts` gets where the model gave nothing valid: its distinctive `words`, less any
    the texts ask the clusters to be named (unrequested), made a name unlike those `taken` (fallback_name)."""
    return fallback_name(unrequested(words, texts), taken, texts=texts)


def phrase_of(a: str, b: str, texts: Sequence[str]) -> str:
    """Words `a` and `b` side by side, as the group's `texts` most often write them ("oil prices", "Credit
    card"), where at least PHRASE_TEXTS texts and one in PHRASE_SHARE do; else "". Two distinctive words the
    texts keep writing together are a phrase of theirs, which reads better as a name than the two apart."""
    a, b = re.escape(a), re.escape(b)
    pattern = re.compile(rf"\b(?:{a}\s+{b}|{b}\s+{a})\b", re.IGNORECASE)
    found = Counter(" ".join(m.group(0).split()) for t in texts for m in [pattern.search(t)] if m)
    if not found or sum(found.values()) < max(PHRASE_TEXTS, len(texts) / PHRASE_SHARE):
        return ""
    phrase = found.most_common(1)[0][0]
    return phrase[0].upper() + phrase[1:]


def fallback_name(traits: list[str], taken: list[str], layout: bool = False, texts: Sequence[str] = (),
                  languages: bool = False) -> tx.Cluster:
    """A name for a group the model could not name: its two most distinctive traits (words, or with
    `layout` what sets its layout apart, such as "many lines"), as the group's `texts` write them side by
    side where they do (phrase_of), else another two, else one, none alike a name in `taken` (see
    name_rules.alike: "card / credit" is alike "Credit card"); two forms of one word are not a pair; else a
    number. With `languages` the traits are the languages the group is written in (features.languages_read),
    its name the languages themselves ("Arabic and Korean")."""
    def free(name: str) -> bool:
        return not any(alike(name, t) for t in taken)

    named = language_name(traits, taken) if languages else None
    if named is not None:
        return named

    pairs = [(not layout and phrase_of(a, b, texts)) or f"{a} / {b}" for i, a in enumerate(traits)
             for b in traits[i + 1:] if layout or name_words(a) != name_words(b)]  # not "drug / drugs"
    name = next((n for n in pairs + list(traits) if free(n)), "")
    if not name:
        name = next(f"group {i}" for i in range(len(taken) + 1, 2 * len(taken) + 2) if free(f"group {i}"))
    if not traits:
        description = ""
    elif layout:
        description = f"Texts with more {', '.join(traits)} than the others."
    else:
        description = f"Texts that often use the words {', '.join(traits)}."
    return tx.Cluster(-1, name, description, named_by="statistics")


def language_name(languages: list[str], taken: Sequence[str]) -> tx.Cluster | None:
    """A group named by the languages it is written in (features.languages_read): "Arabic and Korean", else
    "Other languages" where the list is long or taken, or empty (a group in many languages, none of them most
    of it); None where both are alike a name in `taken`."""
    listed = in_words(languages)
    for name in (listed, "Other languages") if languages and len(listed) <= NAME_MAX else ("Other languages",):
        if not any(alike(name, t) for t in taken):
            read = in_words(languages, "or") if languages else "several languages, none of them most of the group's"
            return tx.Cluster(-1, name, f"Texts a language identifier reads as {read}.", named_by="statistics")
    return None


def vote_counts(rows: np.ndarray, votes: dict[str, int], listed: tx.Taxonomy) -> np.ndarray:
    """How many of `rows` were labelled with each listed cluster, by its id."""
    return np.bincount([votes[str(r)] for r in rows if str(r) in votes], minlength=listed.next_id)


def voted_name(rows: np.ndarray, votes: dict[str, int], listed: tx.Taxonomy, taken: list[str]) -> tx.Cluster | None:
    """The listed cluster that most of a group's representative texts were labelled with, when it is a
    clear majority and no bigger group took it first."""
    counts = vote_counts(rows, votes, listed)
    if counts.sum() == 0:
        return None
    winner = listed.by_id(int(counts.argmax()))
    free = winner.name.lower() not in {t.lower() for t in taken}
    return winner if free and counts.max() * 2 > len(rows) else None


def given_most(rows: np.ndarray, answered: dict[str, int], listed: tx.Taxonomy, value: tx.Cluster) -> bool:
    """Whether the model's own answer (before calibration) for more of `rows` was `value` than any other value
    (ties allowed). A value the model listed is no group's name where it gave it few or none of the group's
    texts: "what the speaker is doing" was listed as speaking, moving, sitting ..., the model answered
    "speaking" for 35 of 40 conversation turns, and calibration's small differences, with the one-to-one
    matching, named groups "Moving" and "Sitting"; 300 voice assistant commands by "what the person wants
    done", with a list that copied a text ("any festivals"), named 57 news, trivia and music questions "Any
    festivals" on one answer in five."""
    counts = vote_counts(rows, answered, listed)
    return counts.max() > 0 and counts[value.id] == counts.max()


def matched_names(shown: dict[int, np.ndarray], votes: dict[str, int], listed: tx.Taxonomy) -> dict[int, tx.Cluster]:
    """Each group its own listed value, for as many groups as values (`shown`: each group's representative
    rows): the one-to-one matching that gives the most representative texts the value they were labelled with.
    A group whose texts went to values that larger groups took gets a value left over: its texts lie between
    theirs ("Cluster by tone: angry, neutral or friendly" had three groups, named "Friendly", "Angry" and,
    voted friendly and angry both, "Disappointment", the model's second name, where "Neutral" was left)."""
    from scipy.optimize import linear_sum_assignment

    groups, values = list(shown), listed.clusters
    counts = np.array([vote_counts(shown[g], votes, listed)[[v.id for v in values]] for g in groups])
    rows, cols = linear_sum_assignment(-counts)
    return {groups[r]: values[c] for r, c in zip(rows, cols)}


def nearest_values(group_vectors: np.ndarray, value_vectors: np.ndarray, groups: list[int],
                   listed: tx.Taxonomy) -> dict[int, tx.Cluster]:
    """Each group its own listed value where no vote could be taken: the one-to-one matching of the groups'
    centroids (`group_vectors`, unit rows) to the embeddings of the values' names and rules that is most alike."""
    from scipy.optimize import linear_sum_assignment

    rows, cols = linear_sum_assignment(-(group_vectors @ value_vectors.T))
    return {groups[r]: listed.clusters[c] for r, c in zip(rows, cols)}


def without_shared_words(tax: tx.Taxonomy) -> tuple[tx.Taxonomy, list[dict]]:
    """Names with the words every name shares left out ("Airline delays", "Airline refunds", "Airline meals"
    -> "delays", "refunds", "meals"): a word in every name (the facet, the corpus's subject) sets no cluster
    apart. A name that would be left empty or alike another keeps its words. Returns the taxonomy and one
    audit entry per rename."""
    if len(tax.clusters) < 3:
        return tax, []
    common = set.intersection(*(set(name_words(c.name)) for c in tax.clusters))
    if not common:
        return tax, []
    audit, names = [], {c.name.lower() for c in tax.clusters}
    for c in list(tax.clusters):
        kept = [w for w in c.name.split() if not (set(name_words(w)) & common)]
        while kept and not name_words(kept[0]):  # no linking word left in front ("of", "and")
            kept.pop(0)
        while kept and not name_words(kept[-1]):
            kept.pop()
        new = " ".join(kept)
        if new and c.name[:1].isupper():
            new = new[0].upper() + new[1:]
        if not new or new.lower() in names:
            continue
        tax, entry = tx.rename(tax, c.id, new)
        names.add(new.lower())
        audit.append({**entry, "by": "finalize: a word every name shares"})
    return tax, audit


_NOT_NOUNS = frozenset("them these those they it its all each every ones one".split())


def corpus_noun(written: str, instruction: str, facet: str = "") -> str:
    """What the instruction calls its texts ("queries" for "Group these assistant queries by ..."), or "" where
    it has no such word: the last word of what the instruction says every text is (corpus_subject), before
    any "of" ("titles" in "the titles of papers"), else of the model's reading `written`; either must be one
    of the instruction's own words, and neither a pronoun nor the facet (asked about "Group by the user's
    specific intent", the model answered "recipes", the prompt's example). The instruction's own subject
    comes first: asked about "Sort these sentences from financial news by the sentiment ...", the model
    answered "news", and every rule opened "News that express ..."."""
    said = set(name_words(" ".join(re.findall(r"[^\W\d_]+", instruction.lower()))))  # singular: "Is each sentence ..."

    def last_word(text: str) -> str:
        words = re.findall(r"[^\W\d_]+", text.lower())
        noun = words[-1] if words else ""
        if (len(noun) < 3 or noun == "texts" or noun in _NOT_NOUNS or not set(name_words(noun)) <= said
                or set(name_words(noun)) & set(name_words(facet))):  # name_words makes both singular
            return ""
        return noun

    return last_word(re.split(r"\s+of\s+", corpus_subject(instruction), maxsplit=1)[0]) or last_word(written)


# "Group these Reddit post titles by ...": the verb, then what the texts are, up to the word that says how.
_SUBJECT = re.compile(r"^\s*(?:please\s+)?(?:group|cluster|sort|organi[sz]e|categori[sz]e|classify|split|divide|"
                      r"arrange|bucket)\s+(?:(?:all|these|those|the|my|our|this|its|their)\s+)*(?P<what>[^,:;.()]+?)"
                      r"\s+(?:by|into|according|based|on|in|from|that|which|with|for|using|per|under|so)\b", re.I)


def corpus_subject(instruction: str) -> str:
    """What the instruction says every text is ("Reddit post titles" for "Group these Reddit post titles by the
    subreddit ..."), or "" where it does not say it in those words: a name made of these words fits every
    text. At most four words, else the instruction was read wrong."""
    found = _SUBJECT.match(instruction)
    what = found["what"] if found else ""
    return what if 0 < len(what.split()) <= 4 else ""


def in_corpus_noun(description: str, noun: str) -> str:
    """A description that opens with "Texts" opened with the corpus's own noun instead ("Queries asking for the
    time in another city."), as a reader of these texts would write it. Nothing changes without a noun."""
    head, _, rest = description.partition(" ")
    return f"{noun.capitalize()} {rest}" if noun and head.lower() == "texts" and rest else description


def in_corpus_words(tax: tx.Taxonomy, tops: list[dict], noun: str) -> tuple[tx.Taxonomy, list[dict]]:
    """Every description of the clusters and top clusters in the corpus's own noun (in_corpus_noun)."""
    if not noun:
        return tax, tops

    def worded(description: str) -> str:
        return in_corpus_noun(description, noun)

    clusters = [replace(c, description=worded(c.description)) for c in tax.clusters]
    return tx.Taxonomy(clusters, tax.next_id), [{**t, "description": worded(t["description"])} for t in tops]
