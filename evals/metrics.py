"""Clustering metrics against a gold partition: V-measure (the main one), NMI, ARI, matched accuracy, and
the error in the number of clusters."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def _codes(labels: Sequence) -> np.ndarray:
    return np.unique(np.asarray([str(x) for x in labels]), return_inverse=True)[1]


def matched_accuracy(gold: Sequence, pred: Sequence) -> float:
    """Accuracy under the best one-to-one matching of predicted to gold clusters (Hungarian).

    With more predicted than gold clusters, the unmatched predicted clusters count as wrong.
    """
    from scipy.optimize import linear_sum_assignment

    g, p = _codes(gold), _codes(pred)
    table = np.zeros((p.max() + 1, g.max() + 1), dtype=np.int64)
    np.add.at(table, (p, g), 1)
    rows, cols = linear_sum_assignment(-table)
    return float(table[rows, cols].sum() / len(g))


def k_error(k_pred: int, k_gold: int) -> float:
    """How far the number of clusters is from the gold number, as a factor: |log(k_pred / k_gold)|
    (0.4 is a factor of 1.5 either way)."""
    return abs(float(np.log(k_pred / k_gold)))


def v_measure(gold: Sequence, pred: Sequence) -> float:
    """V-measure of `pred` against `gold`, to 3 decimals: what the benchmark scripts print."""
    from sklearn.metrics import v_measure_score

    return round(float(v_measure_score(gold, list(pred))), 3)


def score(gold: Sequence, pred: Sequence) -> dict:
    from sklearn.metrics import adjusted_rand_score, normalized_mutual_info_score, v_measure_score

    g, p = _codes(gold), _codes(pred)
    k_pred, k_gold = int(len(np.unique(p))), int(len(np.unique(g)))
    return {"v_measure": round(float(v_measure_score(g, p)), 4),
            "nmi": round(float(normalized_mutual_info_score(g, p)), 4),
            "ari": round(float(adjusted_rand_score(g, p)), 4),
            "acc": round(matched_accuracy(g, p), 4),
            "k_pred": k_pred, "k_gold": k_gold, "k_error": round(k_error(k_pred, k_gold), 4)}
