"""The graph's state (small, JSON-serializable, checkpointable) and its run context (the big things).

The state holds the taxonomy, the model's labels (row -> cluster id: O(budget), not O(N)), counters
and the trace. The corpus, the embedding matrix, the FAISS index, the chat model and the full
assignment array live in the run context; the state refers to arrays by name.
"""

from __future__ import annotations

import time
from collections.abc import Callable, MutableMapping
from dataclasses import dataclass, field
from typing import Any, Literal, TypedDict

import numpy as np
from pydantic import BaseModel, Field, model_validator

from clusteragent.errors import ConfigError
from clusteragent.facets import View
from clusteragent.views import ViewCache

# Fine facets (intents, categories, sites) have dozens of values in a few hundred texts; a two-level result
# keeps that many clusters readable (hierarchy.py).
STRUCTURE_K_MAX = 50
MIN_MEAN_SIZE = 5


class AgentConfig(BaseModel):
    """How one run may spend its model budget."""

    k: int | None = Field(None, ge=1, description="exact number of clusters, if the user fixes it")
    k_min: int | None = Field(None, ge=1, description="fewest clusters allowed")
    k_max: int | None = Field(None, ge=1, description="most clusters allowed")
    max_model_calls: int = Field(150, ge=4, description="hard cap on chat model calls for the whole run")
    seed: int = Field(0, ge=0, le=2 ** 32 - 1, description="seed for every sample and classifier (0 to 2**32 - 1)")
    understand_texts: int = Field(10, ge=2, description="texts the model reads to state the facet")
    propose_batches: int | None = Field(None, ge=0, description="batches of texts read to refine the taxonomy "
                                        "(default: 0 on the embedded model, 1 otherwise; see resolved_for)")
    propose_batch_size: int = Field(8, ge=2, description="texts per taxonomy batch")
    review_rounds: int | None = Field(None, ge=0, description="most review steps (merge/split/rename/stop) "
                                      "(default: 0 on the embedded model, 3 otherwise; see resolved_for)")
    uncertain_share: float = Field(0.3, ge=0, le=1, description="share of the label budget kept for low-margin texts")
    retrieval_candidates: int = Field(16, ge=2, description="when the taxonomy is larger, the clusters nearest a text "
                                      "are the only answers its labelling request allows")
    prompt_clusters: int = Field(60, ge=2, description="a labelling prompt lists every cluster up to this many (one "
                                 "prompt prefix for every text, which the server caches), else only a text's candidates")
    calibration: float = Field(1.0, ge=0, le=1, description="strength of the correction for the model's "
                               "preference for some cluster names (0 = use its labels as they are)")
    min_label_share: float = Field(0.03, ge=0, le=0.5, description="a cluster needs at least this share of the "
                                   "model's labels to stay (an honest k: a name the model almost never picks is not a group)")
    strategy: Literal["auto", "labels", "kmeans"] | None = Field(
        None, description="labels: the model's labels define the clusters; kmeans: k-means with k from estimate_k "
                          "on the view of the texts that follows the facet (meaning embeddings; character n-grams "
                          "for language; layout for style and form; the model's reading of each text for other "
                          "facets, see reading_max_texts), each cluster named by the model; auto: kmeans "
                          "when such a view exists for the facet, labels otherwise (default: auto on the embedded "
                          "model, labels otherwise)")
    view: View | None = Field(
        None, description="the view to cluster on whatever the router reads in the instruction (facets.py): "
                          "meaning for subject matter, characters for language, layout for form, reading for "
                          "any other facet (urgency, tone; with strategy auto, the embedded model's default); the "
                          "router takes an instruction it has no examples of for the kind it reads most like")
    show_k_evidence: bool = Field(False, description="show estimate_k's statistics to the model while proposing")
    reading_max_texts: int = Field(1000, ge=0, description="for a facet no view follows (sentiment, emotion, "
                                   "dialog act), k-means on the model's reading of each text (reading.py) "
                                   "when the corpus has at most this many texts and the backend gives the "
                                   "reading; the model's labels otherwise (0: always labels)")
    first_proposal_max: int = Field(8, ge=2, description="most clusters in the first proposal when k is not fixed")
    hierarchy: bool = Field(True, description="a top level of broader, named clusters when a run ends with more "
                            "than 12 clusters")
    outliers: bool = Field(False, description="texts that fit no cluster go to the outlier group (cluster -1) "
                           "instead of the nearest cluster")
    max_outliers: float = Field(0.05, gt=0, lt=1, description="with outliers: the largest share of the texts that "
                                "may be outliers")
    categories: list[str] | None = Field(None, description="the clusters as the user names them, k their number: "
                                         "each group takes one, and no proposal, review or merge changes them "
                                         "(filled from the values the instruction lists where no k option is "
                                         "given; see for_instruction)")
    k_stated: str | None = Field(None, description="the instruction's words that set k or its range where no k "
                                 "option was given (\"into 5 groups\"; see for_instruction)")

    @model_validator(mode="after")
    def _range(self) -> AgentConfig:
        if self.categories is not None:
            names = [" ".join(str(c).split()) for c in self.categories]
            if len(names) < 2 or not all(names) or len({n.lower() for n in names}) < len(names):
                raise ConfigError("categories needs two or more different, non-empty names.")
            if self.k not in (None, len(names)) or self.k_min is not None or self.k_max is not None:
                raise ConfigError(f"{len(names)} categories make k={len(names)}; give no other k or k range.")
            self.categories = names
        if self.k is not None and (self.k_min is not None or self.k_max is not None):
            raise ConfigError("give either k or a k range (k_min/k_max), not both.")
        if self.k_min is not None and self.k_max is not None and self.k_min > self.k_max:
            raise ConfigError(f"k_min ({self.k_min}) is larger than k_max ({self.k_max}).")
        return self

    def resolved_for(self, provider: str) -> AgentConfig:
        """Fill the defaults that depend on the model's strength.

        The embedded model loses the facet when it revises its own list (it adds topic clusters to a
        list of languages; docs/benchmarks.md), so on the embedded backend the taxonomy comes from the
        understand step alone and the labels, calibration and classifier do the rest. A served model
        gets the full loop. Explicit values always win.
        """
        small = provider == "llamacpp"
        return self.model_copy(update={
            "strategy": self.strategy or ("auto" if small else "labels"),
            "propose_batches": self.propose_batches if self.propose_batches is not None else (0 if small else 1),
            "review_rounds": self.review_rounds if self.review_rounds is not None else (0 if small else 3),
        })

    def for_instruction(self, instruction: str) -> AgentConfig:
        """This config with the clusters the instruction names (its listed values, "by sentiment: positive,
        negative or neutral", become the categories) or else k or its range where it states one ("into 5
        groups", "at most 10 topics"; stated.py), where no k option was given: the options win. With
        categories there is no proposal or review (the graph also keeps them from being dropped or renamed)."""
        from clusteragent.stated import stated_count, stated_values

        if (self.k is not None and not self.categories) or self.k_min is not None or self.k_max is not None:
            return self
        categories = self.categories or stated_values(instruction)
        if categories:
            words = None if self.categories else ", ".join(categories)
            return self.model_copy(update={"categories": categories, "k": len(categories), "k_stated": words,
                                           "propose_batches": 0, "review_rounds": 0})
        stated = stated_count(instruction)
        if stated is None or self.k is not None:
            return self
        exact = stated.k_min is not None and stated.k_min == stated.k_max
        update = {"k": stated.k_min} if exact else {"k_min": stated.k_min, "k_max": stated.k_max}
        return self.model_copy(update={**update, "k_stated": stated.words})

    def k_range(self, n_texts: int) -> tuple[int, int]:
        """The allowed [k_min, k_max] for a corpus of n_texts; a k larger than the corpus is an error.
        Without a user's k_max the most is 20; clustering on a view searches wider (structure_k_max)."""
        if self.k_stated and ((self.k or 0) > n_texts or (self.k_min or 0) > n_texts):
            raise ConfigError(f"the instruction asks for more clusters ({self.k_stated!r}) than the corpus has texts "
                              f"({n_texts}); ask for at most {n_texts}, or give --k/--k-max.")
        if self.k is not None:
            if self.k > n_texts:
                raise ConfigError(f"k={self.k} is larger than the corpus ({n_texts} texts); choose k <= {n_texts}.")
            return self.k, self.k
        if self.k_min is not None and self.k_min > n_texts:
            raise ConfigError(f"k_min={self.k_min} is larger than the corpus ({n_texts} texts).")
        lo = self.k_min or 2
        hi = self.k_max or 20
        return min(lo, n_texts), max(min(hi, n_texts), min(lo, n_texts))

    def structure_k_max(self, n_texts: int, k_max: int) -> int:
        """The most clusters the data's structure may choose on a view: the user's k_max where given, else up
        to STRUCTURE_K_MAX with an average of at least MIN_MEAN_SIZE texts a cluster (never below `k_max`)."""
        if self.k is not None or self.k_max is not None:
            return k_max
        return max(k_max, min(STRUCTURE_K_MAX, n_texts // MIN_MEAN_SIZE))


class AgentState(TypedDict, total=False):
    instruction: str
    read_as: dict  # for an instruction in another language, the model's English for it (instruction_language)
    facet: str
    texts_are: str  # what the instruction calls the texts ("queries"; naming.corpus_noun), "" when it does not say
    about_topic: bool
    view: str | None  # the view whose clusters follow the facet (facets.facet_view), None when only labels can
    k_min: int
    k_max: int
    taxonomy: list[dict]  # [{id, name, description}]
    next_id: int
    labels: dict[str, int]  # row index (as str, for JSON) -> cluster id, as the model labelled it
    label_scores: dict[str, dict[str, float]]  # row -> {cluster name: log-probability}, where the backend gives them
    seen: list[int]  # rows the model has read while building the taxonomy
    assignment_ref: str  # name of the current assignment array in the run context
    margin_ref: str  # name of the classifier's margins after the last propagate
    calls_used: int
    active_learning_done: bool
    review_round: int
    review_feedback: str
    audit: list[dict]
    notes: list[str]
    stop_reason: str
    trace: list[dict]
    timings: dict[str, float]
    usage: dict  # model calls and tokens so far (restored when a run resumes)
    tops: list[dict]  # the top level over many clusters: {id, name, description, children, named_by} (hierarchy.py)


@dataclass
class RunContext:
    """What a run needs that does not belong in a checkpoint."""

    texts: list[str]
    llm: Any  # StructuredLLM
    embedder: Any  # Embedder
    config: AgentConfig
    progress: Callable[[str], None] = lambda message: None
    show_bars: bool = True
    vectors: np.ndarray | None = None
    index: Any = None
    arrays: MutableMapping[str, np.ndarray] = field(default_factory=dict)  # an ArrayStore for durable runs
    views: ViewCache = field(default_factory=ViewCache)  # features of the texts, computed once per run
    reader: Any = None  # a reading.Reader over the chat model, where its backend can read (None otherwise)
    top_names: int = 0  # calls kept back for naming the top level (hierarchy.top_calls)
    leaf_groups: dict = field(default_factory=dict)  # partition digest -> its top-level grouping (hierarchy.py)

    def calls_left(self, with_top_names: bool = False) -> int:
        """Calls the budget still allows; those kept for the top level's names only when `with_top_names`."""
        return self.config.max_model_calls - self.llm.usage.calls - (0 if with_top_names else self.top_names)

    def store_assignment(self, assignment: np.ndarray, confidence: np.ndarray) -> str:
        """Keep an assignment and its confidences under a content-derived name; the state keeps the name."""
        from clusteragent.run_folder import content_name

        ref = content_name("assignment", assignment, confidence)
        self.arrays[ref] = assignment
        self.arrays[ref + ".confidence"] = confidence
        return ref

    def assignment(self, state: AgentState) -> tuple[np.ndarray, np.ndarray]:
        """The state's current assignment and its confidences."""
        ref = state["assignment_ref"]
        return self.arrays[ref], self.arrays[ref + ".confidence"]

    def stamp(self, state: AgentState, step: str, started: float) -> dict:
        timings = dict(state.get("timings", {}))
        timings[step] = round(timings.get(step, 0.0) + time.perf_counter() - started, 3)
        return {"timings": timings, "calls_used": self.llm.usage.calls, "usage": self.llm.usage.as_dict()}
