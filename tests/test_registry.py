"""The model-facing review tools: documented arguments, bounded observations, refusals that change nothing."""

import inspect

import numpy as np
import pytest

from clusteragent.review_tools import REVIEW_TOOLS, Workspace, call_tool, describe_tools, tool_arguments
from clusteragent.tools import taxonomy as tx
from clusteragent.tools.index import VectorIndex
from clusteragent.tools.retrieve import cluster_neighbours, retrieve


@pytest.mark.parametrize("name", sorted(REVIEW_TOOLS))
def test_every_tool_documents_every_parameter(name):
    fn = REVIEW_TOOLS[name]
    params = [p for p in inspect.signature(fn).parameters if p != "ws"]
    described = tool_arguments(fn)
    assert params and set(params) == set(described), (params, described)
    assert all(len(d) > 10 for d in described.values())
    assert name in describe_tools([name])


def workspace():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(12, 8)).astype(np.float32)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    tax = tx.Taxonomy.from_specs([("a", "first"), ("b", "second"), ("c", "third")])
    assignment = np.array([0] * 4 + [1] * 4 + [2] * 4)
    return Workspace(assignment=assignment, taxonomy=tax, labels={"0": 0, "4": 1, "8": 2},
                     texts=[f"text {i} " + "x" * 500 for i in range(12)], vectors=x, index=VectorIndex(x))


def test_merge_through_the_registry_updates_labels_and_audit():
    ws = workspace()
    done, message = call_tool(ws, "merge", {"clusters": ["a", "b"], "new_name": "ab", "new_description": "",
                                            "reason": "ignored"})
    assert done and "Merged" in message
    assert ws.taxonomy.names == ["ab", "c"] and ws.labels == {"0": 0, "4": 0, "8": 2}
    assert ws.audit[0]["op"] == "merge" and ws.changed


@pytest.mark.parametrize("tool,args,reason", [
    ("merge", {"clusters": ["a"]}, "two different clusters"),
    ("merge", {"clusters": ["a", "b"], "new_name": "c"}, "already taken"),
    ("rename", {"clusters": ["zzz"], "new_name": "q"}, 'no cluster named "zzz"'),
    ("rename", {"clusters": ["a"], "new_name": ""}, "needs one cluster and a new name"),
    ("split", {"clusters": ["a"]}, "at least 4 texts"),  # no split helper: refused
])
def test_refused_requests_change_nothing_and_say_why(tool, args, reason):
    ws = workspace()
    before = (ws.assignment.copy(), ws.taxonomy.names)
    done, message = call_tool(ws, tool, args)
    assert not done and reason in message
    assert np.array_equal(ws.assignment, before[0]) and ws.taxonomy.names == before[1] and not ws.changed


def test_retrieve_observation_is_bounded():
    ws = workspace()
    done, message = call_tool(ws, "retrieve", {"clusters": ["a"]})
    assert done and message.startswith('Closest texts outside "a"') and len(message) <= 600


def test_retrieve_matches_brute_force_and_skips_excluded_rows():
    ws = workspace()
    q = ws.vectors[3]
    rows, scores = retrieve(ws.index, q, k=4, exclude=np.array([3, 5]))
    order = [r for r in np.argsort(-(ws.vectors @ q)) if r not in (3, 5)][:4]
    assert rows.tolist() == order
    np.testing.assert_allclose(scores, (ws.vectors @ q)[order], atol=1e-5)
    outside, _ = cluster_neighbours(ws.index, ws.vectors, ws.assignment, 0, k=3)
    assert len(outside) == 3 and not set(outside.tolist()) & {0, 1, 2, 3}
