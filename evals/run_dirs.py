"""A finished run folder as the benchmarks that name its clusters again read it."""

from __future__ import annotations


def clustering_of(run_dir: str):
    """(agent, state, taxonomy, assignment) of the run in `run_dir` as it stands after any chat turn: the
    loaded ClusterAgent, its state, its clusters (the leaves, under a top level) and each text's cluster."""
    import numpy as np

    from clusteragent import ClusterAgent
    from clusteragent.assign import current_clustering
    from clusteragent.tools import taxonomy as tx

    agent = ClusterAgent.load(run_dir)
    state, _ = current_clustering(agent)
    return agent, state, tx.Taxonomy.from_state(state), np.asarray(agent.result_.cluster)
