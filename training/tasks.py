"""Training tasks: (corpus, facet) pairs from the labelled corpora, each with instructions written by
templates in varied wording.

A task's texts are sampled once per corpus, so the same texts carry every facet of their corpus: in
one batch two reviews share a value and lie close, in another (the same reviews, another facet) they
differ and lie apart. Only the data folder's corpora are read.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

# How people ask for each kind of facet. Keys are the facet names the corpora use; several corpora
# share a kind (sentiment, intent, topic), which is what lets a held-out corpus's facet be followed.
FACET_PHRASES: dict[str, tuple[str, ...]] = {
    "topic": ("topic", "subject", "what they are about", "theme"),
    "language": ("language", "the language they are written in", "which language is used"),
    "style": ("writing style", "the form they are written in", "genre of writing", "format and register"),
    "dialog_act": ("dialog act", "what the speaker does with the utterance", "speech act",
                   "communicative function"),
    "emotion": ("emotion", "the emotion expressed", "how the writer feels", "the feeling conveyed"),
    "ekman": ("basic emotion", "the broad emotion expressed", "which basic emotion it shows"),
    "sentiment": ("sentiment", "whether the tone is positive, negative or neutral", "polarity",
                  "the attitude expressed"),
    "domain": ("domain", "area of life", "the field they belong to"),
    "intent": ("intent", "what the user wants", "the request being made", "the goal of the message"),
    "scenario": ("scenario", "the area of the assistant addressed", "kind of task"),
    "group": ("broad scientific field", "discipline", "broad field"),
    "archive": ("archive", "research area", "field of research"),
    "category": ("fine-grained category", "specific research topic", "subfield"),
    "hierarchy_top": ("broad area of discussion", "general area", "broad area"),
    "subject": ("broad subject", "general subject", "main subject"),
    "newsgroup": ("newsgroup", "the forum it was posted to", "discussion group"),
    "mesh_topic": ("medical topic", "disease or treatment discussed", "biomedical subject"),
    "relation": ("relation between the entities", "how the two entities are related", "relation type"),
    "subreddit": ("subreddit", "the community it was posted in", "online community"),
    "site": ("site", "the Q&A site it was asked on", "community site"),
    "tag": ("technology", "the programming tool it is about", "software technology"),
}

NOUNS: dict[str, tuple[str, ...]] = {
    "agnews_test": ("news articles", "articles"),
    "arxiv_titles": ("paper titles", "titles"),
    "banking77": ("banking queries", "customer messages"),
    "biomedical_stc": ("biomedical titles", "titles"),
    "clinc150": ("assistant queries", "requests"),
    "dailydialog_utterances": ("utterances", "dialogue turns"),
    "fewrel": ("sentences",),
    "financial_phrasebank": ("financial sentences", "sentences"),
    "goalex_syn": ("texts", "documents"),
    "goemotions": ("comments", "Reddit comments"),
    "massive_en": ("assistant commands", "commands"),
    "reddit_titles": ("post titles", "posts"),
    "searchsnippets": ("search snippets", "snippets"),
    "stackexchange_titles": ("question titles", "questions"),
    "stackoverflow_stc": ("Stack Overflow titles", "questions"),
    "twenty_newsgroups": ("posts", "messages"),
}

TEMPLATES = (
    "Cluster the {noun} by {phrase}.",
    "Group these {noun} by {phrase}.",
    "Sort the {noun} according to {phrase}.",
    "Organise the {noun} into groups by {phrase}.",
    "Group the {noun} so that each group shares one {phrase}.",
    "Find the groups of {noun} that differ in {phrase}.",
    "Cluster by {phrase}.",
)


@dataclass(frozen=True)
class TrainingTask:
    corpus: str
    facet: str

    @property
    def name(self) -> str:
        return f"{self.corpus}:{self.facet}"

    def instructions(self) -> list[str]:
        """Every instruction the templates write for this task (nouns x phrases x templates)."""
        nouns = NOUNS.get(self.corpus, ("texts",))
        phrases = FACET_PHRASES.get(self.facet, (self.facet.replace("_", " "),))
        return sorted({t.format(noun=n, phrase=p) for t in TEMPLATES for n in nouns for p in phrases})


@dataclass
class CorpusSample:
    """A corpus's sampled texts with every facet's labels as integer codes."""

    corpus: str
    texts: list[str]
    labels: dict[str, np.ndarray]  # facet -> (n,) int codes
    values: dict[str, list[str]]  # facet -> code -> label


def corpora(data_dir: Path) -> list[str]:
    return sorted(p.parent.name for p in Path(data_dir).glob("*/data.jsonl"))


def read_corpus(data_dir: Path, corpus: str) -> tuple[list[dict], list[str]]:
    """A corpus's records and the facets every record is labelled with."""
    with open(Path(data_dir) / corpus / "data.jsonl", encoding="utf-8") as f:
        records = [json.loads(line) for line in f if line.strip()]
    return records, [k for k in records[0].get("labels", {}) if all(k in r.get("labels", {}) for r in records)]


def load_sample(data_dir: Path, corpus: str, max_texts: int, seed: int) -> CorpusSample:
    """Up to max_texts texts of a corpus, sampled in proportion to its finest facet's values (every value
    present where room allows), with the labels of every facet the records all carry."""
    from clusteragent.evals.tasks import stratified_sample

    records, facets = read_corpus(data_dir, corpus)
    if len(records) > max_texts:
        finest = max(facets, key=lambda f: len({str(r["labels"][f]) for r in records}))
        keep = stratified_sample([str(r["labels"][finest]) for r in records], max_texts, seed)
        records = [records[i] for i in keep]
    labels, values = {}, {}
    for facet in facets:
        names, codes = np.unique([str(r["labels"][facet]) for r in records], return_inverse=True)
        labels[facet], values[facet] = codes.astype(np.int64), names.tolist()
    return CorpusSample(corpus, [r["text"] for r in records], labels, values)


def training_tasks(samples: Iterable[CorpusSample]) -> list[TrainingTask]:
    """One task per facet with at least two values."""
    return [TrainingTask(s.corpus, f) for s in samples for f, codes in s.labels.items() if codes.max() > 0]
