"""Name a finished run's clusters again, with the model's first or its narrower name, and check the names.

    python -m clusteragent.evals.bench_leaf_names RUN_DIR [--seeds 0,1] [--checks 200] [--model SPEC]

Loads the run folder and names its clusters (the leaves, under a top level) one after another, largest
first, as a run names them: from each cluster's central texts, a name already given refused. Once taking
the model's first name wherever it is valid, once its second, narrower one (as a run with a top level
does). The partition is the run's either way, so only the names differ. Each naming is then checked by
name fidelity (evals.fidelity) on `--checks` texts per seed. Prints one JSON line per naming: the names,
the fidelity at each seed and over all of them. The chat model is the embedded one unless `--model` says.
"""

from __future__ import annotations

import argparse
import json
import sys
import time


def main(argv: list[str] | None = None) -> int:
    import numpy as np

    from clusteragent.evals.fidelity import name_fidelity
    from clusteragent.evals.run_dirs import clustering_of
    from clusteragent.models import load_chat_model
    from clusteragent.naming import name_members
    from clusteragent.structured import StructuredLLM

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run_dir")
    parser.add_argument("--seeds", default="0,1", help="comma-separated seeds of the texts checked")
    parser.add_argument("--checks", type=int, default=200, help="texts checked per seed")
    parser.add_argument("--model", default=None, help="chat model spec (default: the embedded default)")
    options = parser.parse_args(argv)

    agent, state, tax, assignment = clustering_of(options.run_dir)  # after any chat turn, as the result is
    result = agent.result_
    leaves = sorted(tax.clusters, key=lambda c: -int((assignment == c.id).sum()))
    llm = StructuredLLM(load_chat_model(options.model))
    seeds = [int(s) for s in options.seeds.split(",")]
    for narrower in (False, True):
        started, named, taken = time.perf_counter(), [], []
        for c in leaves:
            spec = name_members(llm, state["instruction"], state.get("facet", ""), result.texts, agent.vectors_,
                                np.flatnonzero(assignment == c.id), taken, step="name_cluster", narrower=narrower)
            named.append({"cluster": c.id, "name": spec.name if spec else c.name,
                          "description": spec.description if spec else c.description})
            taken.append(named[-1]["name"])
        naming_s = time.perf_counter() - started
        checks = [name_fidelity(llm, state["instruction"], result.texts, assignment, named, options.checks, s)
                  for s in seeds]
        hits = sum(round(c["name_fidelity"] * c["name_checks"]) for c in checks if c["name_fidelity"] is not None)
        print(json.dumps({"name": "narrower" if narrower else "first", "clusters": len(named),
                          "naming_seconds": round(naming_s), "fidelity": [c["name_fidelity"] for c in checks],
                          "fidelity_all": round(hits / max(1, sum(c["name_checks"] for c in checks)), 4),
                          "names": [n["name"] for n in named]}, ensure_ascii=False), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
