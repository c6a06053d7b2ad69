"""Requests in a loop share their prompt's prefix, so a server with a prompt cache (llama.cpp, vLLM)
computes it once: what varies from one request to the next comes last."""

from __future__ import annotations

import json

import numpy as np
from fakes import ScriptedChatModel, choices

from clusteragent.state import AgentConfig, RunContext
from clusteragent.structured import StructuredLLM
from clusteragent.tools import taxonomy as tx


class DescriptionEmbedder:
    """Cluster g's description embeds as unit vector g: texts built near it retrieve it first."""

    def __init__(self, dim: int):
        self.dim = dim

    def embed(self, texts):
        return np.eye(len(texts), self.dim, dtype=np.float32), None


def test_labelling_requests_share_one_prefix_and_allow_only_a_texts_candidates():
    from clusteragent.labelling import label_rows

    k, dim = 20, 24
    rng = np.random.default_rng(0)
    homes = np.arange(40) % k
    vectors = np.eye(dim, dtype=np.float32)[homes] + 0.05 * rng.normal(size=(40, dim)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    tax = tx.Taxonomy.from_specs([(f"theme {g}", f"texts about theme {g}") for g in range(k)])
    model = ScriptedChatModel(script=lambda messages, kwargs: json.dumps({"cluster": choices(kwargs, "cluster")[0]}))
    config = AgentConfig(max_model_calls=10, retrieval_candidates=5)
    ctx = RunContext(texts=[f"text {i}" for i in range(40)], llm=StructuredLLM(model), embedder=DescriptionEmbedder(dim),
                     config=config, vectors=vectors, show_bars=False)
    labels, _ = label_rows(ctx, "Group by theme.", list(range(10)), tax, "label")

    systems = {str(call["messages"][0].content) for call in model.calls}
    assert len(model.calls) == 10 and len(systems) == 1
    assert all(f"theme {g}:" in next(iter(systems)) for g in range(k))  # every cluster listed once, for all texts
    for row, call in zip(range(10), model.calls):
        allowed = choices(call["kwargs"], "cluster")
        assert len(allowed) == 5 and f"theme {homes[row]}" in allowed
    # past prompt_clusters, each text's prompt lists only its candidates
    model.calls.clear()
    narrow = RunContext(texts=ctx.texts, llm=StructuredLLM(model), embedder=ctx.embedder, vectors=vectors,
                        config=AgentConfig(max_model_calls=10, retrieval_candidates=5, prompt_clusters=10),
                        show_bars=False)
    label_rows(narrow, "Group by theme.", list(range(3)), tax, "label")
    assert len({str(call["messages"][0].content) for call in model.calls}) == 1  # still one shared prefix
    assert "theme 0:" not in str(model.calls[0]["messages"][0].content)
    for row, call in zip(range(3), model.calls):
        user = str(call["messages"][1].content)
        listed = [g for g in range(k) if f"theme {g}:" in user]
        assert len(listed) == 5 and homes[row] in listed and user.index("</text>") < user.index(f"theme {homes[row]}:")


def test_a_texts_own_choices_follow_it_and_bound_its_answer():
    from clusteragent.labelling import label_rows

    tax = tx.Taxonomy.from_specs([(f"theme {g}", f"texts about theme {g}") for g in range(6)])
    model = ScriptedChatModel(script=lambda messages, kwargs: json.dumps({"cluster": choices(kwargs, "cluster")[-1]}))
    ctx = RunContext(texts=[f"text {i}" for i in range(4)], llm=StructuredLLM(model), embedder=DescriptionEmbedder(8),
                     config=AgentConfig(max_model_calls=10), vectors=np.eye(4, 8, dtype=np.float32), show_bars=False)
    labels, _ = label_rows(ctx, "Group by theme.", [0, 1], tax, "assign", choices={0: [4, 1], 1: [2, 5, 3]})
    assert labels == {"0": 1, "1": 3}  # the last of each text's own choices, as the script answers
    assert [choices(call["kwargs"], "cluster") for call in model.calls] == [["theme 4", "theme 1"],
                                                                           ["theme 2", "theme 5", "theme 3"]]
    assert len({str(call["messages"][0].content) for call in model.calls}) == 1
    assert "theme 0" not in str(model.calls[1]["messages"][1].content)


def test_naming_requests_put_the_groups_own_texts_last_but_for_the_question():
    from clusteragent.naming import name_group

    answers = iter(["Weather", "Football"])
    model = ScriptedChatModel(script=lambda messages, kwargs: json.dumps(
        {"name": next(answers), "description": "Texts about it."}))
    llm = StructuredLLM(model)
    name_group(llm, "Group by topic.", "topic", ["rain again today", "cold wind"], [], step="name_cluster")
    name_group(llm, "Group by topic.", "topic", ["a late goal", "the league table"], ["Weather"], step="name_cluster")
    first, second = (str(call["messages"][0].content) + str(call["messages"][1].content) for call in model.calls)
    assert str(model.calls[0]["messages"][0].content) == str(model.calls[1]["messages"][0].content)
    assert second.index("Weather") < second.index("a late goal")  # taken names before the texts
    # after the group's texts only what is the same in every request of the run: the question naming the facet
    assert first.split("cold wind</text>")[1] == second.split("the league table</text>")[1]
    assert '"topic"' in first.split("cold wind</text>")[1]
