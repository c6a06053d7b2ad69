"""Training data and reward for the reasoning model: given an instruction and a sample of texts, name
the groups and label every text.

Each example is drawn from one training task (tasks.py): a few dozen texts of a corpus, the task's
instruction in one of its templated wordings, and the gold values as the target. The reward scores a
completion as a clustering, not as text: an answer that does not parse scores `INVALID`; one that
parses scores its V-measure against the gold labels, less a share of its k error, so that neither one
cluster nor one per text pays. No GPU or training library is needed here; grpo.py uses it.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable

import numpy as np
from pydantic import BaseModel, Field, ValidationError

from clusteragent.evals.metrics import k_error, v_measure
from clusteragent.training.tasks import CorpusSample, TrainingTask

INVALID = -1.0
K_ERROR_WEIGHT = 0.25
TEXT_CHARS = 200  # each text is shown cut to this many characters

SYSTEM = ("You cluster texts the way the user's instruction asks. Decide what the groups are and how many "
          "the texts support, name each group in 1-4 plain words, then give every text the name of its "
          "group. Answer with JSON only.")


class Group(BaseModel):
    name: str = Field(min_length=1, max_length=60)
    description: str = Field("", max_length=200)


class ClusteringAnswer(BaseModel):
    """What the model answers: the groups, then one group name per text, in the texts' order."""

    groups: list[Group] = Field(min_length=1)
    labels: list[str]


def prompt_messages(instruction: str, texts: list[str]) -> list[dict]:
    lines = "\n".join(f"{i + 1}. {t[:TEXT_CHARS]}" for i, t in enumerate(texts))
    schema = json.dumps(ClusteringAnswer.model_json_schema())
    user = (f"Instruction: {instruction}\n\nTexts:\n{lines}\n\n"
            f"Answer with JSON matching this schema, with exactly {len(texts)} labels: {schema}")
    return [{"role": "system", "content": SYSTEM}, {"role": "user", "content": user}]


def target_answer(gold: list[str]) -> str:
    """The supervised target: the gold values as group names, in order of first appearance."""
    names = list(dict.fromkeys(gold))
    return ClusteringAnswer(groups=[Group(name=n) for n in names], labels=list(gold)).model_dump_json()


def examples(samples: Iterable[CorpusSample], tasks: list[TrainingTask], n_examples: int, texts_per_example: int,
             seed: int) -> list[dict]:
    """Chat examples: a prompt (messages), the gold labels, and the target answer for supervised tuning."""
    by_corpus = {s.corpus: s for s in samples}
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n_examples):
        task = tasks[rng.integers(len(tasks))]
        sample = by_corpus[task.corpus]
        rows = rng.choice(len(sample.texts), size=min(texts_per_example, len(sample.texts)), replace=False)
        wordings = task.instructions()
        instruction = wordings[rng.integers(len(wordings))]
        gold = [sample.values[task.facet][sample.labels[task.facet][r]] for r in rows]
        texts = [sample.texts[r] for r in rows]
        out.append({"prompt": prompt_messages(instruction, texts), "gold": gold, "task": task.name,
                    "target": target_answer(gold)})
    return out


def parse_answer(completion: str, n_texts: int) -> ClusteringAnswer | None:
    """The answer in a completion (the first JSON object in it), or None when there is none with one label
    per text, each the name of a listed group."""
    match = re.search(r"\{.*\}", completion, re.DOTALL)
    if match is None:
        return None
    try:
        answer = ClusteringAnswer.model_validate_json(match.group(0))
    except ValidationError:
        return None
    names = {g.name for g in answer.groups}
    if len(answer.labels) != n_texts or any(label not in names for label in answer.labels):
        return None
    return answer


def clustering_reward(completion: str, gold: list[str]) -> float:
    """V-measure of the answer's labels against gold, less K_ERROR_WEIGHT x |log(k / k_gold)|; INVALID
    when the completion holds no valid answer."""
    answer = parse_answer(completion, len(gold))
    if answer is None:
        return INVALID
    k_pred = len(set(answer.labels))
    return v_measure(gold, answer.labels) - K_ERROR_WEIGHT * k_error(k_pred, len(set(gold)))
