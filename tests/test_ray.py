"""The Ray executor against a local Ray instance that the test starts (2 CPUs)."""


import numpy as np
import pytest

ray = pytest.importorskip("ray", reason="the ray extra is not installed")

from fakes import FakeOpenAIServer  # noqa: E402
from test_reliability import TEXTS  # noqa: E402

from clusteragent.executors import RayExecutor  # noqa: E402
from clusteragent.tools.embeddings import Embedder  # noqa: E402

pytestmark = [pytest.mark.local_server, pytest.mark.slow]  # Ray's own processes talk over loopback


@pytest.fixture(scope="module")
def executor():
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, ignore_reinit_error=True)
    yield RayExecutor()
    ray.shutdown()


def test_ray_embedding_matches_local_embedding_row_for_row(executor, monkeypatch):
    import clusteragent.executors as ex

    monkeypatch.setattr(ex, "EMBED_CHUNK", 16)  # several tasks even for a small corpus
    local, _ = Embedder(precision="fp32", progress=False).embed(TEXTS)
    distributed, _ = Embedder(precision="fp32", progress=False, executor=executor).embed(TEXTS)
    assert distributed.shape == local.shape == (len(TEXTS), 384)
    assert np.allclose(distributed, local, atol=1e-5)


def test_ray_labelling_gives_the_same_run_as_local(tmp_path):
    """A served model: labelling requests go out from Ray tasks; the result equals a local run's."""
    from clusteragent import ClusterAgent

    results = {}
    with FakeOpenAIServer() as server:
        for name in ("local", "ray"):
            agent = ClusterAgent(model="openai:fake", model_options={"base_url": server.url}, max_model_calls=30,
                                 progress=False, executor=name)
            before = server.requests
            results[name] = agent.fit(TEXTS, instruction="Group by topic.").result_
            results[name + "_requests"] = server.requests - before
    assert np.array_equal(results["ray"].cluster, results["local"].cluster)
    assert results["ray"].names == results["local"].names
    assert results["ray_requests"] == results["local_requests"] > 10
