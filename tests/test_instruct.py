"""The instruction-conditioned head: its training data, loss, training loop (seeded, resumable) and the
numpy inference that must agree with the trained module."""

from __future__ import annotations

import hashlib
import json
from importlib.resources import files
from pathlib import Path

import numpy as np
import pytest

from clusteragent.errors import ModelError
from clusteragent.tools.instruct import PARAMETERS, InstructHead, conditioned, save_head
from clusteragent.training import embedder as trainer
from clusteragent.training.tasks import TrainingTask, load_sample, training_tasks

D = 32


class HashEmbedder:
    """Text vectors with two independent facets: the topic (strong directions) and the sentiment (weak
    ones), so that a plain embedding follows topic only. An instruction lies near one direction for the
    ways of asking about sentiment and near another for the rest, as paraphrases do in a sentence model."""

    model_id = "hash-embedder"

    def embed(self, texts):
        out = np.zeros((len(texts), D), dtype=np.float32)
        for i, t in enumerate(texts):
            rng = np.random.default_rng(int(hashlib.sha256(t.encode()).hexdigest()[:8], 16))
            if t.startswith("doc "):
                topic, sentiment = (int(p) for p in t.split()[1:3])
                out[i, topic] = 3.0
                out[i, 8 + sentiment] = 0.6
                out[i] += rng.normal(0, 0.3, D)
            else:
                about_sentiment = any(w in t for w in ("sentiment", "tone", "polarity", "attitude"))
                out[i, 20 if about_sentiment else 21] = 1.0
                out[i] += rng.normal(0, 0.2, D)
        return out / np.linalg.norm(out, axis=1, keepdims=True), None


@pytest.fixture
def data_dir(tmp_path):
    rng = np.random.default_rng(0)
    folder = tmp_path / "data" / "reviews"
    folder.mkdir(parents=True)
    with open(folder / "data.jsonl", "w") as f:
        for i in range(240):
            topic, sentiment = int(rng.integers(4)), int(rng.integers(2))
            f.write(json.dumps({"id": str(i), "text": f"doc {topic} {sentiment} {i}",
                                "labels": {"topic": f"t{topic}", "sentiment": f"s{sentiment}"}}) + "\n")
    return tmp_path / "data"


def _v(vectors, gold):
    from sklearn.cluster import KMeans

    from clusteragent.evals.metrics import v_measure

    return v_measure(gold, KMeans(len(set(gold)), n_init=3, random_state=0).fit_predict(vectors))


def test_instructions_vary_in_wording_and_name_the_facet():
    options = TrainingTask("goemotions", "sentiment").instructions()
    assert len(options) >= 10 and len(set(options)) == len(options)
    assert all(any(p in o for p in ("sentiment", "tone", "polarity", "attitude")) for o in options)


def test_sample_keeps_every_facet_and_tasks_need_two_values(data_dir):
    sample = load_sample(data_dir, "reviews", 100, seed=0)
    assert len(sample.texts) == 100 and set(sample.labels) == {"topic", "sentiment"}
    assert {t.facet for t in training_tasks([sample])} == {"topic", "sentiment"}
    sample.labels["sentiment"][:] = 0
    assert {t.facet for t in training_tasks([sample])} == {"topic"}


def test_batches_take_an_equal_share_from_each_chosen_value():
    codes = np.repeat(np.arange(10), 50)
    rows = trainer.draw_batch(np.random.default_rng(0), codes, batch=64, classes=4)
    values, counts = np.unique(codes[rows], return_counts=True)
    assert len(values) == 4 and set(counts) == {16} and len(set(rows)) == len(rows)


def test_supcon_loss_is_lower_when_same_values_lie_together():
    import torch

    labels = torch.tensor([0, 0, 1, 1, 2, 2])
    together = torch.nn.functional.normalize(torch.eye(3)[labels] + 0.01, dim=1)
    apart = torch.nn.functional.normalize(torch.eye(3)[torch.tensor([0, 1, 2, 0, 1, 2])] + 0.01, dim=1)
    assert trainer.supcon_loss(together, labels, 0.1) < trainer.supcon_loss(apart, labels, 0.1) - 1.0


def test_numpy_head_agrees_with_the_trained_module(tmp_path):
    import torch

    torch.manual_seed(1)
    module = trainer.build_module(D, 16)
    with torch.no_grad():
        for p in module.parameters():
            p.add_(torch.randn_like(p) * 0.1)
    x = torch.nn.functional.normalize(torch.randn(5, D), dim=1)
    q = torch.randn(D)
    expected = module(x, q).detach().numpy()
    save_head(tmp_path, {k: getattr(module, k).detach().numpy() for k in PARAMETERS}, {"base_model": "m"})
    got = InstructHead.load(tmp_path).apply(x.numpy(), q.numpy())
    assert np.allclose(got, expected, atol=5e-3)  # weights are stored as float16


def test_a_head_that_does_not_match_its_checksum_or_model_is_refused(tmp_path):
    module = trainer.build_module(D, 8)
    save_head(tmp_path, {k: getattr(module, k).detach().numpy() for k in PARAMETERS}, {"base_model": "other"})
    with pytest.raises(ModelError, match="trained over 'other'"):
        conditioned(np.eye(D, dtype=np.float32)[:2], "by sentiment", HashEmbedder(), tmp_path)
    (tmp_path / "instruct_head.npz").write_bytes(b"not the weights")
    with pytest.raises(ModelError, match="checksum"):
        InstructHead.load(tmp_path)
    with pytest.raises(ModelError, match="train-embedder"):
        InstructHead.load(tmp_path / "missing")


def test_training_makes_the_weak_facet_followable_and_keeps_the_strong_one(data_dir, tmp_path):
    config = trainer.TrainConfig(str(data_dir), steps=300, batch=64, classes_per_batch=8, hidden=32, lr=1e-2,
                                 preserve=0.0, checkpoint_every=50)
    head = InstructHead.load(trainer.train(config, tmp_path / "head", HashEmbedder(), progress=False).parent)
    assert head.card["tasks"] == ["reviews:sentiment", "reviews:topic"]
    sample = load_sample(data_dir, "reviews", 240, seed=0)
    x = HashEmbedder().embed(sample.texts)[0]
    q_sentiment = HashEmbedder().embed(["How do the writers feel? Group by their sentiment."])[0][0]
    q_topic = HashEmbedder().embed(["What is each one about?"])[0][0]
    sentiment, topic = sample.labels["sentiment"], sample.labels["topic"]
    assert _v(x, sentiment) < 0.1  # the plain vectors follow topic
    assert _v(head.apply(x, q_sentiment), sentiment) > 0.5
    assert _v(head.apply(x, q_topic), topic) > 0.9


def test_the_preserving_penalty_keeps_the_plain_geometry_where_the_facet_does_not_ask_to_move(data_dir, tmp_path):
    import torch

    sample = load_sample(data_dir, "reviews", 240, seed=0)
    x = HashEmbedder().embed(sample.texts)[0]
    q_topic = HashEmbedder().embed(["What is each one about?"])[0][0]
    change = {}
    for weight in (0.0, 50.0):
        config = trainer.TrainConfig(str(data_dir), steps=200, batch=64, classes_per_batch=8, hidden=32, lr=1e-2,
                                     preserve=weight)
        head = InstructHead.load(trainer.train(config, tmp_path / str(weight), HashEmbedder(), progress=False).parent)
        z = torch.from_numpy(head.apply(x, q_topic))
        change[weight] = float(trainer.geometry_change(z, torch.from_numpy(x)))
    assert change[50.0] < change[0.0] / 3


def test_an_interrupted_training_resumes_to_the_same_weights(data_dir, tmp_path, monkeypatch):
    config = trainer.TrainConfig(str(data_dir), steps=30, batch=32, classes_per_batch=4, hidden=16,
                                 checkpoint_every=10)
    whole = InstructHead.load(trainer.train(config, tmp_path / "whole", HashEmbedder(), progress=False).parent)
    real_loss, calls = trainer.supcon_loss, {"n": 0}

    def interrupted(*args):
        calls["n"] += 1
        if calls["n"] == 16:
            raise KeyboardInterrupt
        return real_loss(*args)

    monkeypatch.setattr(trainer, "supcon_loss", interrupted)
    with pytest.raises(KeyboardInterrupt):
        trainer.train(config, tmp_path / "resumed", HashEmbedder(), progress=False)
    monkeypatch.setattr(trainer, "supcon_loss", real_loss)
    resumed = InstructHead.load(trainer.train(config, tmp_path / "resumed", HashEmbedder(), progress=False).parent)
    for name in PARAMETERS:
        assert np.array_equal(whole.weights[name], resumed.weights[name]), name


def test_cli_trains_a_head_and_embeds_with_it(tmp_path, capsys):
    """train-embedder and embed --instruction with the packaged sentence model, on a tiny corpus."""
    from clusteragent.cli import main

    data = tmp_path / "data" / "reviews"
    data.mkdir(parents=True)
    rows = [{"id": str(i), "text": f"{['The hotel', 'The flight', 'The meal'][i % 3]} was "
             f"{['wonderful', 'awful'][i % 2]} number {i}.",
             "labels": {"topic": ["hotel", "flight", "meal"][i % 3], "sentiment": ["good", "bad"][i % 2]}}
            for i in range(36)]
    (data / "data.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    head = tmp_path / "head"
    assert main(["train-embedder", "--out", str(head), "--data-dir", str(tmp_path / "data"), "--steps", "20",
                 "--quiet"]) == 0
    card = json.loads((head / "instruct_head.json").read_text())
    assert card["tasks"] == ["reviews:sentiment", "reviews:topic"] and card["config"]["steps"] == 20
    corpus = tmp_path / "in.jsonl"
    corpus.write_text("".join(json.dumps({"text": r["text"]}) + "\n" for r in rows[:6]))
    plain, instructed = tmp_path / "plain.npy", tmp_path / "instructed.npy"
    assert main(["embed", str(corpus), "--out", str(plain), "--quiet"]) == 0
    assert main(["embed", str(corpus), "--out", str(instructed), "--quiet", "--instruction", "by sentiment",
                 "--head", str(head)]) == 0
    a, b = np.load(plain), np.load(instructed)
    assert a.shape == b.shape == (6, 384)
    assert np.allclose(np.linalg.norm(b, axis=1), 1.0, atol=1e-4) and not np.allclose(a, b, atol=1e-3)
    capsys.readouterr()
    assert main(["embed", str(corpus), "--out", str(instructed), "--quiet", "--instruction", "by sentiment",
                 "--head", str(tmp_path / "nowhere")]) == 2
    assert "train-embedder" in capsys.readouterr().err
    assert main(["embed", str(corpus), "--out", str(instructed), "--quiet", "--head", str(head)]) == 2
    assert "give --instruction" in capsys.readouterr().err


def test_the_packaged_head_loads_over_the_packaged_sentence_model():
    from clusteragent.tools.embeddings import Embedder

    head = InstructHead.load()
    assert head.base_model == Embedder().model_id
    assert (Path(str(files("clusteragent.tools") / "data")) / "instruct_head.npz").stat().st_size <= 20 * 2**20
    assert head.weights["W1"].shape == (384, 384)
