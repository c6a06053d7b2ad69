import numpy as np
import pytest

from clusteragent.tools.index import VectorIndex


def clustered_unit_vectors(n, d=32, centers=20, seed=0):
    rng = np.random.default_rng(seed)
    c = rng.normal(size=(centers, d))
    x = c[rng.integers(0, centers, n)] + 0.3 * rng.normal(size=(n, d))
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


def brute_force(x, q, k):
    sims = q @ x.T
    ids = np.argsort(-sims, axis=1, kind="stable")[:, :k]
    return np.take_along_axis(sims, ids, axis=1), ids


def test_flat_index_matches_brute_force_exactly():
    x = clustered_unit_vectors(2000)
    q = clustered_unit_vectors(50, seed=1)
    res = VectorIndex(x, kind="flat").search(q, 10)
    scores, _ = brute_force(x, q, 10)
    np.testing.assert_allclose(res.scores, scores, atol=1e-5)
    # the ids found have exactly the similarities brute force computes for them
    np.testing.assert_allclose(np.take_along_axis(q @ x.T, res.ids, axis=1), res.scores, atol=1e-5)


@pytest.mark.parametrize("kind", ["hnsw", "ivf"])
def test_approximate_indexes_recall_brute_force_neighbours(kind):
    x = clustered_unit_vectors(5000)
    q = clustered_unit_vectors(100, seed=2)
    res = VectorIndex(x, kind=kind).search(q, 10)
    _, truth = brute_force(x, q, 10)
    recall = np.mean([len(set(a) & set(b)) / 10 for a, b in zip(res.ids, truth)])
    assert recall >= 0.9


def test_auto_switches_to_approximate_past_the_threshold():
    x = clustered_unit_vectors(300)
    assert VectorIndex(x).kind == "flat"
    assert VectorIndex(x, approximate_from=100).kind == "hnsw"


def test_k_larger_than_index_is_capped_and_single_vector_query_works():
    x = clustered_unit_vectors(5)
    res = VectorIndex(x).search(x[0], 50)
    assert res.ids.shape == (1, 5) and res.ids[0, 0] == 0


def test_dimension_mismatch_is_an_error():
    with pytest.raises(ValueError, match="dimension"):
        VectorIndex(clustered_unit_vectors(10)).search(np.zeros((1, 8), np.float32), 3)
