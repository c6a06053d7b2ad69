"""Label texts with cluster names, and correct the model's bias among the names (calibration).

A small model is good at choosing one of a few named clusters for one text and poor at labelling many
texts in one answer (it tends to give them all one cluster), so each request carries one delimited
text; the cluster list sits in the system prompt, which is identical across requests, so a llama.cpp
server reuses its cached prefix.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Sequence

import numpy as np
from pydantic import BaseModel, Field, create_model

from clusteragent.choices import one_of
from clusteragent.errors import ModelError, ModelUnavailable, counted
from clusteragent.prompts import load_prompt
from clusteragent.tools import taxonomy as tx


@functools.lru_cache(maxsize=256)
def label_schema(cluster_names: tuple[str, ...]) -> type[BaseModel]:
    """A schema whose only field, `cluster`, must be one of the cluster names."""
    if not cluster_names:
        raise ValueError("need at least one cluster name")
    return create_model("ClusterChoice",
                        cluster=(one_of(cluster_names), Field(description="the name of the chosen cluster")))


# A cluster with one of these names stands for texts that show no value of the facet.
# Not "other": a catch-all is for texts of values nobody listed, not for texts without a value.
_ABSENT = re.compile(r"(neutral|none|nothing|no [a-z]+( [a-z]+)?|not applicable|n/a)")


def absent_value(names: Sequence[str]) -> str | None:
    """The cluster name that stands for the facet's absence ("neutral", "no emotion", "none"), if one does."""
    return next((n for n in names if _ABSENT.fullmatch(n.strip().lower())), None)


def label_messages(instruction: str, clusters: Sequence[dict], text: str, own_choices: bool = False):
    """The label_text prompt for these clusters ({name, description}) and one text: listed before the text
    when every text gets the same list (a prefix the server computes once), after it with `own_choices`."""
    listed, choices = ([], list(clusters)) if own_choices else (list(clusters), [])
    return load_prompt("label_text").messages(instruction=instruction, clusters=listed, choices=choices, text=text)


def description_vectors(embedder, tax: tx.Taxonomy) -> np.ndarray:
    """One embedding per cluster, of its name and description."""
    vectors, _ = embedder.embed([f"{c.name}: {c.description}" for c in tax.clusters])
    return vectors


def label_rows(ctx, instruction: str, rows, tax: tx.Taxonomy, step: str,
               choices: dict[int, Sequence[int]] | None = None) -> tuple[dict[str, int], dict[str, dict[str, float]]]:
    """Ask the model for the cluster of each row, within the run's budget; FAISS-style retrieval over the
    cluster descriptions narrows the choices when the taxonomy is large, and `choices` (row -> cluster
    ids, e.g. a classifier's likeliest few) narrows them to its own list for each row.

    Returns the labels (row -> cluster id) and, where the backend gives log-probabilities, each row's
    score for every cluster it was offered (row -> {name: log-probability}).
    """
    from tqdm.auto import tqdm

    rows = [int(r) for r in rows][:max(0, ctx.calls_left())]
    if not rows or not tax.clusters:
        return {}, {}
    clusters = tax.clusters
    candidates = None
    if choices is None and len(clusters) > ctx.config.retrieval_candidates:
        sims = ctx.vectors[rows] @ description_vectors(ctx.embedder, tax).T
        candidates = np.argsort(-sims, axis=1)[:, :ctx.config.retrieval_candidates]
    # Every text's prompt lists the same clusters when they fit, so the server computes that prefix once
    # (on this CPU a request then costs about the text's own tokens, not the whole list's); a text's own
    # short list follows the text instead.
    whole = choices is None and len(clusters) <= ctx.config.prompt_clusters
    requests, schemas = [], []
    for i, row in enumerate(rows):
        if choices is not None:
            allowed = [tax.by_id(cid) for cid in choices[row]]
        else:
            allowed = [clusters[j] for j in sorted(candidates[i])] if candidates is not None else clusters
        requests.append(label_messages(instruction, [c.as_dict() for c in (clusters if whole else allowed)],
                                       ctx.texts[row], own_choices=not whole))
        schemas.append(label_schema(tuple(c.name for c in allowed)))
    labels: dict[str, int] = {}
    scores: dict[str, dict[str, float]] = {}
    failures = 0
    with tqdm(total=len(rows), desc=step, unit="text", disable=not ctx.show_bars, leave=False) as bar:
        step_size = max(1, ctx.llm.parallel * 4)
        for start in range(0, len(rows), step_size):
            chunk = range(start, min(start + step_size, len(rows)))
            if len({id(schemas[i]) for i in chunk}) == 1:
                answers = ctx.llm.decide_many([requests[i] for i in chunk], schemas[chunk[0]], step=step,
                                              return_exceptions=True, choice_field="cluster")
            else:
                answers = []
                for i in chunk:
                    try:
                        answers.append(ctx.llm.decide(requests[i], schemas[i], step=step, choice_field="cluster"))
                    except ModelError as e:
                        answers.append(e)
            for i, answer in zip(chunk, answers):
                if isinstance(answer, ModelUnavailable):
                    raise answer
                if isinstance(answer, Exception):
                    failures += 1
                    continue
                found = tax.find(answer.cluster)
                if found is not None:
                    labels[str(rows[i])] = found.id
                    if getattr(answer, "choice_scores", None):
                        scores[str(rows[i])] = answer.choice_scores
            bar.update(len(chunk))
    if failures:
        ctx.progress(f"{counted(failures, 'labelling call')} gave no valid answer; those texts are placed by the classifier")
    return labels, scores


def labels_added(ctx, state, rows, tax: tx.Taxonomy, step: str) -> dict:
    """The state update that adds the model's labels (and scores) for `rows` to those it already gave."""
    new_labels, new_scores = label_rows(ctx, state["instruction"], rows, tax, step)
    return {"labels": {**state.get("labels", {}), **new_labels},
            "label_scores": {**state.get("label_scores", {}), **new_scores}}


def calibrated_labels(labels: dict[str, int], scores: dict[str, dict[str, float]], tax: tx.Taxonomy,
                      strength: float = 1.0) -> dict[str, int]:
    """Correct the model's preference for some cluster names whatever the text (contextual calibration).

    p(c|x) from the log-probabilities, divided by p(c) ** strength, where p(c) is p(c|x) averaged over the
    labelled texts; the label is the argmax. Rows without scores, or offered a different set of
    clusters, keep the model's own label. Not done where a cluster stands for the facet's absence
    ("neutral"): most texts may belong there, so its high average is no bias.
    """
    names = tax.names
    rows = [r for r in labels if r in scores and set(scores[r]) == set(names)]
    if len(rows) < 2 * len(names) or strength <= 0 or absent_value(names) is not None:
        return dict(labels)
    logp = np.array([[scores[r][n] for n in names] for r in rows])
    p = np.exp(logp - logp.max(axis=1, keepdims=True))
    p /= p.sum(axis=1, keepdims=True)
    prior = p.mean(axis=0)
    adjusted = p / np.power(np.maximum(prior, 1e-6), strength)
    out = dict(labels)
    ids = [tax.find(n).id for n in names]
    for r, j in zip(rows, adjusted.argmax(axis=1)):
        out[r] = ids[j]
    return out
