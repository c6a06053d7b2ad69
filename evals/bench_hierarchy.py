"""The two-level result against fine and coarse gold labels of the same texts.

    python -m clusteragent.evals.bench_hierarchy [--suite dev] [--task CORPUS:FACET ...] [--max-docs 300]
        [--max-model-calls 40] [--seed 0]

For each fine-grained task of the suite whose corpus also has a coarse facet (CLINC150 intent and domain,
MASSIVE intent and scenario, 20 Newsgroups newsgroup and area, arXiv category and group), the agent is
run with the fine task's instruction on a stratified sample (fixed seed). Prints one JSON line per task:
the leaves' V against the fine gold and the top level's V against the coarse gold (a one-level run's
clusters are its top level), the number of clusters at each level, and k-means with the oracle k on the
embeddings against each gold (the issue's reference), with the gaps.
"""

from __future__ import annotations

import argparse
import json
import sys

from clusteragent.evals.metrics import v_measure

# fine facet -> the coarse facet of the same corpus
COARSE = {("clinc150", "intent"): "domain", ("massive_en", "intent"): "scenario",
          ("twenty_newsgroups", "newsgroup"): "hierarchy_top", ("arxiv_titles", "category"): "group"}


def kmeans_oracle(vectors, gold, seed: int) -> float:
    """V of k-means with the gold k (the dev suite's reference method) against `gold`."""
    from clusteragent.evals.methods import MethodContext
    from clusteragent.evals.methods import kmeans_oracle as oracle

    labels, _ = oracle(None, vectors, "", len(set(gold)), MethodContext(embedder=None, seed=seed))
    return v_measure(gold, labels)


def one_task(task, data_dir, options) -> dict:
    from clusteragent import ClusterAgent
    from clusteragent.evals.tasks import load_task

    data = load_task(task, data_dir, max_docs=options.max_docs, seed=options.seed)
    coarse_facet = COARSE[(task.corpus, task.facet)]
    by_id = {}
    with open(data_dir / task.corpus / "data.jsonl", encoding="utf-8") as f:
        for line in f:
            record = json.loads(line)
            by_id[record["id"]] = str(record["labels"][coarse_facet])
    coarse = [by_id[i] for i in data.ids]
    agent = ClusterAgent(max_model_calls=options.max_model_calls, seed=options.seed, progress=False).fit(
        data.texts, instruction=task.instruction)
    result = agent.result_
    tops = result.top_cluster
    vectors = agent.vectors_
    fine_ref, coarse_ref = kmeans_oracle(vectors, data.gold, options.seed), kmeans_oracle(vectors, coarse, options.seed)
    v_leaves, v_top = v_measure(data.gold, result.cluster), v_measure(coarse, tops)
    return {"task": task.name, "coarse": coarse_facet, "n": len(data.texts), "levels": result.levels,
            "k_leaves": result.k, "k_top": len(set(tops.tolist()) - {-1}),
            "k_gold_fine": len(set(data.gold)), "k_gold_coarse": len(set(coarse)),
            "v_leaves_fine": v_leaves, "kmeans_oracle_fine": fine_ref, "gap_leaves": round(v_leaves - fine_ref, 3),
            "v_top_coarse": v_top, "kmeans_oracle_coarse": coarse_ref, "gap_top": round(v_top - coarse_ref, 3),
            "top_names": [t["name"] for t in result.top_clusters], "model_calls": result.run["model_calls"]}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--suite", default="dev")
    parser.add_argument("--task", action="append", help="only these fine tasks of the suite (CORPUS:FACET)")
    parser.add_argument("--data-dir")
    parser.add_argument("--max-docs", type=int, default=300)
    parser.add_argument("--max-model-calls", type=int, default=40)
    parser.add_argument("--seed", type=int, default=0)
    options = parser.parse_args(argv)

    from pathlib import Path

    from clusteragent.evals.tasks import default_data_dir, load_suite

    data_dir = Path(options.data_dir) if options.data_dir else default_data_dir()
    for task in load_suite(options.suite):
        if (task.corpus, task.facet) in COARSE and (not options.task or task.name in options.task):
            print(json.dumps(one_task(task, data_dir, options)), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
