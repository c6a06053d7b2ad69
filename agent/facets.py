"""Which view of the texts follows the facet an instruction asks for, decided from measured evidence.

Each view is a representation in which texts that share a value of the facet lie close together: the
meaning embeddings follow subject matter, character n-grams follow language, layout measures follow
form. Facets like sentiment, emotion or dialog act have none of these; the model's own reading of each
text under the instruction (reading.py, views.reading_view) is their view where the corpus is small
enough to read whole, and the model's labels carry them otherwise.

`data/facet_routes.json` (made by `python -m clusteragent.training.routes`) holds, for each kind of facet
in the labelled corpora, how closely each view follows it there (k-means with the gold number of values,
adjusted mutual information) and example instructions that ask for it. A new instruction takes the view
of the kind whose examples it reads most like under the run's sentence embedder; no word list decides.
The small chat model's own yes/no on "subject matter?" misroutes paraphrases ("the kind of request",
"which community") and is kept in the trace only.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from functools import lru_cache
from importlib import resources
from typing import Literal

import numpy as np

from clusteragent.name_rules import echoes_the_prompt, says_what_a_facet_is

View = Literal["meaning", "characters", "layout", "reading"]
VIEWS: tuple[View, ...] = ("meaning", "characters", "layout")

# Words that open a clause naming a facet the instruction rules out ("..., not by topic", "whatever
# language they are in"): a sentence embedding reads the facet named there as much as the one asked for.
EXCLUDING = re.compile(r"^(?:and\s+|but\s+)?(?:not|whatever|regardless|irrespective|rather than|instead of|ignoring)\b",
                       re.IGNORECASE)
_CLAUSES = re.compile(r"[,;:()\[\]]|(?<=[.?!])\s+")

# Example instructions embedded, by (embedding model, examples): a process embeds them once per model.
_EXAMPLE_VECTORS: dict[tuple[str, tuple[str, ...]], np.ndarray] = {}

# A kind's likeness to an instruction: the mean similarity of its few nearest examples, so that one
# template that happens to share the instruction's frame does not decide alone.
NEAREST = 3

# A route that leads the best kind of another path by less than this is doubtful, and the run says so: of
# the routing benchmark's 78 instructions (docs/benchmarks.md, "Routing"), 4 of the 5 misrouted led by at
# most 0.037 (the fifth by 0.135), and 10 of the 73 routed right by less than 0.04.
DOUBTFUL_LEAD = 0.04

# How each path clusters, in the words of the note on a doubtful route.
PATH_WORDS = {"meaning": "by subject matter", "characters": "by the texts' characters (language)",
              "layout": "by the texts' layout (form)", None: "by the model's judgement of each text"}


@lru_cache(maxsize=1)
def routes_data() -> dict:
    """The packaged measurements and examples (read once; not to be changed in place)."""
    return json.loads(resources.files("clusteragent").joinpath("data", "facet_routes.json").read_text("utf-8"))


def view_means(by_corpus: dict[str, dict[str, float]]) -> dict[str, float]:
    """Each view's mean score over a kind's corpora."""
    return {v: float(np.mean([scores[v] for scores in by_corpus.values()])) for v in VIEWS}


def kind_view(by_corpus: dict[str, dict[str, float]], follows: float) -> View | None:
    """The view with the best mean score over a kind's corpora, or None where no view reaches `follows`."""
    mean = view_means(by_corpus)
    best = max(VIEWS, key=mean.get)
    return best if mean[best] >= follows else None


@dataclass(frozen=True)
class Route:
    view: View | None
    kind: str  # the kind of facet the instruction reads most like
    likeness: float
    nearest: str  # that kind's example closest to the instruction
    runners_up: list[tuple[str, float]]
    # The kind most like the instruction among those of another path: its view, likeness and nearest example.
    other_path: tuple[str, View | None, float, str] | None = None
    # Where the instruction was written in another language: that language and the English routed
    # (instruction_language.in_english).
    read_as: dict = field(default_factory=dict)

    @property
    def about_topic(self) -> bool:
        return self.view == "meaning"

    @property
    def facet(self) -> str:
        """The kind in words (kind_words): the facet where the model states none."""
        return kind_words(self.kind)

    def facet_read(self, stated: str, instruction: str = "", prompt_text: str = "") -> tuple[str, str]:
        """The model's `stated` facet and "model", or this route's and "route" where the model's says only what a
        facet is (name_rules.says_what_a_facet_is: the instruction named no property, and the model echoed the
        prompt's definition) or is the example of the prompt whose own words are `prompt_text`, which
        `instruction` does not use (name_rules.echoes_the_prompt)."""
        if says_what_a_facet_is(stated) or echoes_the_prompt(stated, instruction, prompt_text):
            return self.facet, "route"
        return stated, "model"

    @property
    def doubtful(self) -> bool:
        return self.other_path is not None and self.likeness - self.other_path[2] < DOUBTFUL_LEAD

    def evidence(self) -> dict:
        found = {"kind": self.kind, "likeness": round(self.likeness, 3), "nearest_example": self.nearest,
                 "runners_up": [[k, round(s, 3)] for k, s in self.runners_up]}
        if self.other_path is not None:
            kind, view, likeness, nearest = self.other_path
            found["other_path"] = {"kind": kind, "view": view, "likeness": round(likeness, 3), "nearest_example": nearest}
        return {**found, **self.read_as}

    def doubt(self) -> str | None:
        """For a doubtful route, a note that says which path the run took and how to take the other."""
        if not self.doubtful:
            return None
        kind, view, _, _ = self.other_path
        option = view or "reading"
        return (f"the instruction was read as one asking for {self.facet} and clustered {PATH_WORDS[self.view]}, but "
                f"it reads almost as much like one asking for {kind_words(kind)}; if that is what it asks, run again "
                f'with --view {option} (in Python, view="{option}") to cluster {PATH_WORDS[view]}')


@lru_cache(maxsize=64)
def facet_reading_schema(instruction: str) -> type:
    """The schema of the model's reading of `instruction` (schemas.FacetReading) whose facet is not the facet
    prompt's example where the instruction does not use its words (name_rules.echoes_the_prompt): refused, the
    model is asked again, and where it gives nothing else the route's facet stands in."""
    from pydantic import create_model, field_validator

    from clusteragent.prompts import load_prompt
    from clusteragent.schemas import FacetReading

    example = load_prompt("facet").template_text

    def _not_the_example(cls, v: str) -> str:
        if echoes_the_prompt(v, instruction, example):
            raise ValueError(f"{v!r} comes from these instructions' example, not from the user's instruction; "
                             "state the property the user's instruction asks to cluster by")
        return v

    return create_model("FacetReading", __base__=FacetReading,
                        __validators__={"_not_the_example": field_validator("facet")(_not_the_example)})


def kind_words(kind: str) -> str:
    """A kind of facet in words: its first phrase in the training templates ("broad area of discussion" for
    hierarchy_top)."""
    from clusteragent.training.routes import UNSPECIFIED
    from clusteragent.training.tasks import FACET_PHRASES

    return FACET_PHRASES.get(kind, ("subject matter" if kind == UNSPECIFIED else kind,))[0]


class FacetRouter:
    """Routes instructions by their likeness to the example instructions of each measured kind of facet."""

    def __init__(self, embedder, data: dict | None = None, exclude: tuple[str, ...] = ()):
        """`exclude` drops corpora from the evidence (each kind's view is decided again without them, and a
        kind only they carry is dropped): a leave-one-corpus-out check of the routes."""
        data = routes_data() if data is None else data
        self.views: dict[str, View | None] = {}
        examples: list[str] = []
        kinds: list[str] = []
        for kind, entry in data["kinds"].items():
            measured = {c: s for c, s in entry.get("corpora", {}).items() if c not in exclude}
            if entry.get("corpora") and not measured:
                continue
            self.views[kind] = kind_view(measured, data["follows"]) if measured else entry["view"]
            examples += entry["examples"]
            kinds += [kind] * len(entry["examples"])
        self.kinds = np.array(kinds)
        self.examples = examples
        self.embedder = embedder
        self._vectors = _example_vectors(embedder, examples)

    def route(self, instruction: str) -> Route:
        similarity = self._vectors @ self.embedder.embed([asked_for(instruction)])[0][0]
        likeness = {k: float(np.sort(similarity[self.kinds == k])[::-1][:NEAREST].mean()) for k in self.views}
        ranked = sorted(likeness, key=likeness.get, reverse=True)
        best = ranked[0]

        def nearest(kind: str) -> str:
            own = np.flatnonzero(self.kinds == kind)
            return self.examples[int(own[similarity[own].argmax()])]

        other = next((k for k in ranked if self.views[k] != self.views[best]), None)
        other_path = None if other is None else (other, self.views[other], likeness[other], nearest(other))
        return Route(self.views[best], best, likeness[best], nearest(best), [(k, likeness[k]) for k in ranked[1:3]],
                     other_path)


def _example_vectors(embedder, examples: list[str]) -> np.ndarray:
    """The examples' unit rows (Embedder.embed gives unit rows), embedded once per model in a process."""
    key = (embedder.model_id, tuple(examples))
    if key not in _EXAMPLE_VECTORS:
        _EXAMPLE_VECTORS[key] = embedder.embed(examples)[0]
    return _EXAMPLE_VECTORS[key]


def asked_for(instruction: str) -> str:
    """The instruction without the clauses that rule a facet out."""
    clauses = [c.strip() for c in _CLAUSES.split(instruction) if c and re.search(r"\w", c)]
    kept = [c for c in clauses if not EXCLUDING.match(c)]
    return instruction if len(kept) in (0, len(clauses)) else ", ".join(kept)


def route_instruction(instruction: str, embedder) -> Route:
    """The route for `instruction`; the examples are embedded once per embedding model in a process."""
    return FacetRouter(embedder).route(instruction)
