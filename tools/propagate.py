"""Assign every text from the model's labels on a few: a classifier over the embeddings.

The model labels a budgeted sample under the instruction; a multinomial logistic regression on the
embeddings learns the direction of the instructed facet from those labels (an embedding carries many
facets; the labels select one) and predicts the rest in O(N). Low-margin texts are the ones worth
sending back to the model.
"""

from __future__ import annotations

import numpy as np


def propagate(vectors: np.ndarray, labelled_rows: np.ndarray, labels: np.ndarray, seed: int = 0,
              c: float = 4.0, chunk: int = 8192, top: int = 0,
              balanced: bool = False) -> tuple[np.ndarray, np.ndarray, np.ndarray, dict]:
    """Train on (vectors[labelled_rows], labels) and predict every row. With `balanced`, each label weighs
    as much in training as every other, however few rows have it: for labels whose counts say nothing of
    how common each is (a diverse sample of a few texts), so that the rarest is not left with only its own.

    Returns:
        (predicted, confidence, margin, stats): the predicted label of each row (labelled rows keep the
        model's label), the classifier's probability of it, the gap between the best and second-best
        probability, and {"classes", "train_accuracy", "labelled"}, with `top` > 0 also "top": each row's
        `top` likeliest labels, likeliest first (fewer where there are fewer classes).
    """
    from sklearn.linear_model import LogisticRegression

    labelled_rows = np.asarray(labelled_rows, dtype=np.int64)
    labels = np.asarray(labels)
    n = len(vectors)
    classes = np.unique(labels)
    if len(labelled_rows) == 0:
        raise ValueError("propagation needs at least one labelled row")
    if len(classes) == 1:
        predicted = np.full(n, classes[0], dtype=labels.dtype)
        stats = {"classes": 1, "train_accuracy": 1.0, "labelled": int(len(labelled_rows))}
        return predicted, np.ones(n, np.float32), np.ones(n, np.float32), \
            {**stats, "top": predicted[:, None].copy()} if top > 0 else stats
    clf = LogisticRegression(C=c, max_iter=2000, random_state=seed, class_weight="balanced" if balanced else None)
    clf.fit(vectors[labelled_rows], labels)
    predicted = np.empty(n, dtype=labels.dtype)
    confidence = np.empty(n, np.float32)
    margin = np.empty(n, np.float32)
    likeliest = np.empty((n, min(top, len(classes))), dtype=labels.dtype)
    for start in range(0, n, chunk):
        proba = clf.predict_proba(vectors[start:start + chunk])
        likeliest[start:start + chunk] = clf.classes_[np.argsort(-proba, axis=1, kind="stable")[:, :likeliest.shape[1]]]
        top2 = np.sort(proba, axis=1)[:, -2:]
        predicted[start:start + chunk] = clf.classes_[proba.argmax(axis=1)]
        confidence[start:start + chunk] = top2[:, 1]
        margin[start:start + chunk] = top2[:, 1] - top2[:, 0]
    train_acc = float((predicted[labelled_rows] == labels).mean())
    # The model's own labels stand where it gave them; their confidence is the classifier's
    # probability of that label, so a label the embeddings disagree with shows as uncertain.
    predicted[labelled_rows] = labels
    proba = clf.predict_proba(vectors[labelled_rows])
    confidence[labelled_rows] = proba[np.arange(len(labels)), np.searchsorted(clf.classes_, labels)]
    stats = {"classes": int(len(classes)), "train_accuracy": round(train_acc, 4), "labelled": int(len(labelled_rows))}
    return predicted, confidence, margin, {**stats, "top": likeliest} if top > 0 else stats


def least_certain(margin: np.ndarray, n: int, exclude: np.ndarray | None = None) -> np.ndarray:
    """The `n` rows with the smallest margin, excluding `exclude` (e.g. rows already labelled)."""
    order = np.argsort(margin, kind="stable")
    if exclude is not None and len(exclude):
        order = order[~np.isin(order, exclude)]
    return order[:max(0, int(n))]
