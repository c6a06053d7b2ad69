import numpy as np
import pytest

from clusteragent.tools.embeddings import Embedder, bf16_supported

TEXTS = ["how do i reset my pin", "change my card pin please", "what is the weather tomorrow",
         "will it rain in paris", "book a table for two", "reserve a table at a restaurant tonight"]


@pytest.fixture(scope="module")
def fp32_model():
    # One model load for the module: loading is the slow part, not these few texts.
    return Embedder(precision="fp32", cache_dir=None, progress=False).model


def make(tmp_path, model, precision="fp32", name="all-MiniLM-L6-v2"):
    e = Embedder(name, precision=precision, cache_dir=tmp_path, progress=False)
    e._model = model
    return e


def test_packaged_model_gives_normalized_384d_rows_that_follow_meaning(tmp_path, fp32_model):
    vectors, stats = make(tmp_path, fp32_model).embed(TEXTS)
    assert vectors.shape == (6, 384) and vectors.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    sims = vectors @ vectors.T
    # each text's nearest other text is its paraphrase (pairs 0-1, 2-3, 4-5)
    np.fill_diagonal(sims, -1)
    assert list(sims.argmax(axis=1)) == [1, 0, 3, 2, 5, 4]
    assert stats.computed == 6


def test_rows_keep_input_order_despite_length_sorting(tmp_path, fp32_model):
    e = make(tmp_path, fp32_model)
    together, _ = e.embed(TEXTS)
    one_by_one = np.vstack([e.encode_batch([t]) for t in TEXTS])
    np.testing.assert_allclose(together, one_by_one, atol=1e-5)


def test_second_call_is_served_by_the_cache(tmp_path, fp32_model, monkeypatch):
    first, stats1 = make(tmp_path, fp32_model).embed(TEXTS)
    calls = []
    e2 = make(tmp_path, fp32_model)
    monkeypatch.setattr(e2, "encode_batch", lambda texts: calls.append(texts))
    second, stats2 = e2.embed(TEXTS)
    assert calls == [] and stats2.computed == 0
    np.testing.assert_array_equal(first, second)
    assert stats1.cache_path == stats2.cache_path


def test_cache_key_depends_on_texts_model_and_precision(tmp_path, fp32_model):
    a = make(tmp_path, fp32_model)
    assert a.cache_key(TEXTS) != a.cache_key(TEXTS[:-1])
    assert a.cache_key(TEXTS) != a.cache_key(["x" + TEXTS[0]] + TEXTS[1:])
    assert a.cache_key(["ab", "c"]) != a.cache_key(["a", "bc"])
    assert a.cache_key(TEXTS) != make(tmp_path, fp32_model, precision="bf16").cache_key(TEXTS)
    assert a.cache_key(TEXTS) != make(tmp_path, fp32_model, name="/some/other/model").cache_key(TEXTS)


def test_damaged_cache_file_is_recomputed(tmp_path, fp32_model):
    e = make(tmp_path, fp32_model)
    _, stats = e.embed(TEXTS)
    with open(stats.cache_path, "wb") as f:
        f.write(b"not an array")
    again, stats2 = e.embed(TEXTS)
    assert stats2.computed == len(TEXTS) and again.shape == (6, 384)


def test_no_temporary_files_are_left_behind(tmp_path, fp32_model):
    make(tmp_path, fp32_model).embed(TEXTS)
    assert [p.name for p in (tmp_path / "embeddings").iterdir() if "tmp" in p.name] == []


@pytest.mark.skipif(not bf16_supported(), reason="this CPU has no native bf16")
def test_bf16_agrees_with_fp32(tmp_path, fp32_model):
    fp32, _ = make(tmp_path, fp32_model).embed(TEXTS)
    bf16, _ = make(tmp_path, fp32_model, precision="bf16").embed(TEXTS)
    assert np.sum(fp32 * bf16, axis=1).min() > 0.99


def test_unknown_model_gives_a_clear_error(tmp_path):
    from clusteragent.errors import ModelError

    with pytest.raises(ModelError, match="cannot load embedding model"):
        Embedder(str(tmp_path / "no-such-model"), cache_dir=None).embed(["x"])


@pytest.mark.slow
def test_static_model_is_distilled_once_locally_and_follows_meaning(tmp_path):
    """--embedding-model static: distilled from the packaged MiniLM (no download), cached, then reused."""
    pytest.importorskip("model2vec", reason="the static extra is not installed")
    from clusteragent.tools.static_embeddings import static_model_dir

    first = Embedder("static", cache_dir=None, progress=False, models_dir=tmp_path)
    vectors, _ = first.embed(["the cat sat on the mat", "a kitten rested on the rug", "interest rates rose again"])
    assert vectors.shape == (3, 256) and np.allclose(np.linalg.norm(vectors, axis=1), 1, atol=1e-5)
    assert vectors[0] @ vectors[1] > vectors[0] @ vectors[2]
    made = static_model_dir(tmp_path) / "model.safetensors"
    stamp = made.stat().st_mtime_ns
    again, _ = Embedder("static", cache_dir=None, progress=False, models_dir=tmp_path).embed(["the cat sat on the mat"])
    assert made.stat().st_mtime_ns == stamp and np.allclose(again[0], vectors[0], atol=1e-6)
