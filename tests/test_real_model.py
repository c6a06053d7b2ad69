"""The real embedded chat model, end to end (slow: loads a 1.1 GB GGUF on the CPU; runs in CI)."""

import pytest

from clusteragent.cli import main
from clusteragent.models import DEFAULT_CHAT_MODEL, backend_info, load_chat_model
from clusteragent.structured import StructuredLLM
from clusteragent.tools.labelling import label_messages, label_schema

pytestmark = [pytest.mark.slow, pytest.mark.real_model]

CLUSTERS = [{"name": "weather", "description": "forecasts, rain, temperature"},
            {"name": "banking", "description": "accounts, transfers, balances"},
            {"name": "music", "description": "songs, playlists, artists"}]
TEXTS = [("will it rain in london tomorrow", "weather"), ("move 50 dollars to my savings account", "banking"),
         ("play the new taylor swift song", "music"), ("how cold will it be tonight", "weather"),
         ("what is my checking account balance", "banking"), ("add this track to my workout playlist", "music")]


@pytest.fixture(scope="module")
def chat(shared_model_cache):
    return load_chat_model(DEFAULT_CHAT_MODEL, cache_dir=shared_model_cache)


def test_default_model_labels_clear_texts_through_the_schema(chat):
    llm = StructuredLLM(chat)
    schema = label_schema(tuple(c["name"] for c in CLUSTERS))
    answers = llm.decide_many([label_messages("Group by topic.", CLUSTERS, t) for t, _ in TEXTS], schema, step="label")
    correct = sum(a.cluster == gold for a, (_, gold) in zip(answers, TEXTS))
    assert correct >= 5, [a.cluster for a in answers]
    assert llm.usage.calls == len(TEXTS) and llm.usage.failed_calls == 0
    assert backend_info(chat)["provider"] == "llamacpp"


def test_same_seed_gives_the_same_answer(chat):
    schema = label_schema(("weather", "banking", "music"))
    msgs = label_messages("Group by topic.", CLUSTERS, "is it sunny in rome")
    first = chat.bind(response_format={"type": "json_schema", "json_schema": {"name": "c", "schema": schema.model_json_schema()}})
    assert first.invoke(msgs).content == first.invoke(msgs).content


def test_doctor_passes_offline(shared_model_cache, monkeypatch, capsys):
    monkeypatch.setenv("CLUSTERAGENT_CACHE_DIR", str(shared_model_cache))
    assert main(["doctor"]) == 0
    out = capsys.readouterr().out
    assert "all checks passed" in out and "schema-constrained request" in out


def test_agent_runs_end_to_end_on_the_real_model(chat, tmp_path):
    """A small corpus, a small budget: the run finishes with a valid result in the written format."""
    import json

    from clusteragent.api import ClusterAgent

    texts = [t for t, _ in TEXTS] * 3 + ["the thunderstorm flooded the streets", "send money to my landlord",
                                         "shuffle my jazz playlist"]
    agent = ClusterAgent(model=chat, max_model_calls=14, review_rounds=1, progress=False)
    result = agent.fit(texts, instruction="Group the requests by topic.").result_
    assert len(result.cluster) == len(texts) and 1 <= result.k <= 20
    assert result.run["model_calls"] <= 14
    out = result.write(tmp_path / "run")
    lines = (out / "assignments.jsonl").read_text().splitlines()
    assert [json.loads(l)["id"] for l in lines] == list(range(1, len(texts) + 1))
    assert all(c["name"].strip() for c in result.clusters)
