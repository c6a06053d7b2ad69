"""Which view follows which kind of facet, measured on the labelled corpora, and the example
instructions the agent's router compares a new instruction with (facets.py).

For every (corpus, facet) of the data folder, k-means with the gold number of values runs on each view
of a sample of the corpus (the meaning embeddings, character n-grams, layout measures: facet_sample) and
the adjusted mutual information with the gold labels says how closely that view follows the facet. A
kind of facet (the keys of tasks.FACET_PHRASES; several corpora share one) is routed to the view with the
best mean over its corpora, or to none (the model's reading or labels) when no view reaches FOLLOWS. Its example
instructions are the training templates with its phrases; an instruction that names no facet reads like
the UNSPECIFIED examples and goes by meaning.

    python -m clusteragent.training.routes [--out FILE] [--exclude CORPUS ...]
"""

from __future__ import annotations

import argparse
import json
import sys
from datetime import date
from pathlib import Path

import numpy as np

from clusteragent.facets import kind_view, view_means
from clusteragent.training.tasks import FACET_PHRASES, TEMPLATES, corpora, read_corpus

# A view follows a facet when k-means with the gold k on it reaches this adjusted mutual information.
# It sits in the gap the labelled corpora show: every subject kind reaches 0.34 or more on the meaning
# view, and sentiment, emotion and dialog act at most 0.19 on any view (the command prints the table;
# docs/benchmarks.md keeps it).
FOLLOWS = 0.3
MAX_VALUES, PER_VALUE = 12, 40
# An instruction that names no facet ("Group these tickets.") asks for what the texts are about.
UNSPECIFIED = "unspecified"
UNSPECIFIED_EXAMPLES = ("Cluster the texts.", "Group these texts.", "Sort the texts into groups.",
                        "Organise the texts into groups.", "Find the groups of texts.", "Cluster these documents.")
ROUTES_FILE = Path(__file__).resolve().parents[1] / "agent" / "data" / "facet_routes.json"


def view_vectors(texts: list[str], embedder) -> dict[str, np.ndarray]:
    """The texts in each view as the agent clusters them (views.view)."""
    from clusteragent.tools.features import language_features, layout_features

    return {"meaning": embedder.embed(texts)[0], "characters": language_features(texts), "layout": layout_features(texts)}


def view_scores(vectors: dict[str, np.ndarray], codes: np.ndarray, seed: int) -> dict[str, float]:
    """Adjusted mutual information of k-means with the gold k on each view (0: chance, whatever k)."""
    from sklearn.cluster import KMeans
    from sklearn.metrics import adjusted_mutual_info_score

    k = int(codes.max()) + 1
    return {name: round(float(adjusted_mutual_info_score(codes, KMeans(k, n_init=4, random_state=seed).fit_predict(x))), 3)
            for name, x in vectors.items()}


def example_instructions(facet: str) -> list[str]:
    """The templates with each of the facet's phrases, about texts in general (no corpus's own noun, so the
    noun says nothing about the route)."""
    return sorted({t.format(noun="texts", phrase=p) for t in TEMPLATES for p in FACET_PHRASES[facet]})


def facet_sample(records: list[dict], facet: str, seed: int) -> tuple[list[str], np.ndarray]:
    """Up to PER_VALUE texts of each of the facet's MAX_VALUES commonest values: whether a view follows a
    facet is asked of well-filled values, so that a facet with a hundred values is not judged by k-means
    on two or three texts each."""
    rng = np.random.default_rng(seed)
    values = np.array([str(r["labels"][facet]) for r in records])
    names, counts = np.unique(values, return_counts=True)
    kept = names[np.argsort(-counts, kind="stable")[:MAX_VALUES]]
    rows = np.concatenate([rng.permutation(np.flatnonzero(values == v))[:PER_VALUE] for v in kept])
    return [records[r]["text"] for r in rows], np.unique(values[rows], return_inverse=True)[1]


def build_routes(data_dir: Path, embedder, seed: int = 0, exclude: tuple[str, ...] = (), log=print) -> dict:
    measured: dict[str, dict[str, dict[str, float]]] = {}
    for corpus in corpora(data_dir):
        if corpus in exclude:
            continue
        records, facets = read_corpus(data_dir, corpus)
        for facet in facets:
            if facet not in FACET_PHRASES:
                continue
            texts, codes = facet_sample(records, facet, seed)
            if codes.max() == 0:
                continue
            scores = view_scores(view_vectors(texts, embedder), codes, seed)
            measured.setdefault(facet, {})[corpus] = scores
            log(f"{corpus}:{facet} values={int(codes.max()) + 1} texts={len(texts)} "
                + " ".join(f"{v}={s:.3f}" for v, s in scores.items()))
    kinds = {facet: {"view": kind_view(by_corpus, FOLLOWS), "corpora": by_corpus,
                     "examples": example_instructions(facet)} for facet, by_corpus in sorted(measured.items())}
    kinds[UNSPECIFIED] = {"view": "meaning", "corpora": {}, "examples": sorted(UNSPECIFIED_EXAMPLES)}
    return {"made_by": "python -m clusteragent.training.routes", "date": date.today().isoformat(), "seed": seed,
            "max_values": MAX_VALUES, "per_value": PER_VALUE, "follows": FOLLOWS, "excluded": sorted(exclude),
            "embedding_model": embedder.model_id, "kinds": kinds}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROUTES_FILE)
    parser.add_argument("--data-dir", type=Path)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--exclude", nargs="*", default=[])
    options = parser.parse_args(argv)

    from clusteragent.evals.tasks import default_data_dir
    from clusteragent.settings import Settings
    from clusteragent.tools.embeddings import Embedder

    embedder = Embedder.from_settings(Settings.resolve())
    embedder.progress = False
    log = lambda line: print(line, file=sys.stderr, flush=True)  # noqa: E731
    routes = build_routes(options.data_dir or default_data_dir(), embedder, options.seed, tuple(options.exclude), log)
    options.out.write_text(json.dumps(routes, indent=1) + "\n", encoding="utf-8")
    for facet, kind in routes["kinds"].items():
        mean = view_means(kind["corpora"]) if kind["corpora"] else {}
        print(f"{facet:14s} -> {kind['view']!s:10s} " + " ".join(f"{v}={s:.3f}" for v, s in mean.items()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
