"""Groups of texts in other languages than the rest of the corpus, on the meaning view.

The packaged embedding model reads English: in a corpus mostly in one language, the few texts in others that
it cannot read fall together whatever they say. By what 150 Reddit titles are about, nine titles stood
together, seven of them Portuguese, Vietnamese or Turkish, and the model, shown them, named the group "Work"
after two Portuguese words for it. Such a group is named by the languages the identifier reads in it, as a
group of the language view is, and the run's notes say why.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

import numpy as np

from clusteragent.instruction_language import OTHER_LANGUAGE
from clusteragent.naming import language_name
from clusteragent.tools import taxonomy as tx
from clusteragent.tools.features import languages_read, likeliest_languages

MAIN_SHARE = 0.8  # a corpus is in one language where the identifier reads at least this share of it as that one
LANGUAGE_SAMPLE = 2_000  # texts read to find the corpus's language, evenly spaced over it
GROUP_SAMPLE = 200  # and a group's


def main_language(texts: Sequence[str]) -> str | None:
    """The language code the identifier reads at least MAIN_SHARE of `texts` as ("en"), else None."""
    if not texts:
        return None
    sample = list(texts[::max(1, len(texts) // LANGUAGE_SAMPLE)])
    read = Counter((guesses[0]["lang"] if guesses else "und") for guesses in likeliest_languages(sample, 1))
    code, n = read.most_common(1)[0]
    return code if n >= MAIN_SHARE * len(sample) else None


def in_other_languages(texts: Sequence[str], main: str | None) -> list[str]:
    """Those of `texts` the identifier reads, at OTHER_LANGUAGE or more, as another language than `main`."""
    if main is None:
        return []
    return [t for t, g in zip(texts, likeliest_languages(list(texts), 1))
            if g and g[0]["lang"] != main and g[0]["score"] >= OTHER_LANGUAGE]


def mostly_other(texts: Sequence[str], main: str | None) -> list[str]:
    """The texts of a group (a sample of GROUP_SAMPLE) in other languages than `main`, where they are at least
    half of it; else none."""
    texts = list(texts[::max(1, len(texts) // GROUP_SAMPLE)])
    other = in_other_languages(texts, main)
    return other if texts and 2 * len(other) >= len(texts) else []


def named_by_language(texts: Sequence[str], main: str | None, taken: Sequence[str]) -> tuple[tx.Cluster | None, str]:
    """A meaning group's name by the languages of its texts in other languages than the corpus's `main` one
    (naming.language_name), where they are at least half of its `texts`, with the run's note on it; (None, "")
    otherwise, and where the name is taken (the model then names the group)."""
    other = mostly_other(texts, main)
    if not other:
        return None, ""
    spec = language_name(languages_read(other), taken)
    if spec is None:
        return None, ""
    return spec, (f'"{spec.name}" is named by its languages: most of its texts are in other languages than the '
                  "rest of the corpus, and stand together by language rather than by what they say")


def apart_by_language(groups: list[list[int]], texts: Sequence[str], assignment: np.ndarray) -> list[list[int]]:
    """`groups` of clusters for a top level, with each cluster mostly in other languages than the corpus's main
    one standing alone: the embedding put its texts where it did because it cannot read them, so the clusters
    beside it share nothing with it (over one, the model named the top from statistics: "uma / para")."""
    main = main_language(texts)
    if main is None:
        return groups
    apart = []
    for group in groups:
        foreign = [] if len(group) == 1 else \
            [c for c in group if mostly_other([texts[r] for r in np.flatnonzero(assignment == c)], main)]
        kept = [c for c in group if c not in foreign]
        apart += ([kept] if kept else []) + [[c] for c in foreign]
    return apart
