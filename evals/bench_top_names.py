"""Name the top level of a finished run again: how many top clusters the model names, in how many calls.

    python -m clusteragent.evals.bench_top_names RUN_DIR [--model SPEC]

Loads the run folder, takes its top clusters (or, for a run of one level, groups its clusters as a run
without a meaning map would), and asks the chat model
(default: the embedded one) for every top of two or more clusters with no budget limit. Prints one JSON
object: the tops, how many the model named, its calls, the seconds, the names, and each refused answer
with the reason.
"""

from __future__ import annotations

import argparse
import json
import sys
import time


def main(argv: list[str] | None = None) -> int:
    from clusteragent.evals.run_dirs import clustering_of
    from clusteragent.hierarchy import group_leaves
    from clusteragent.models import load_chat_model
    from clusteragent.structured import StructuredLLM
    from clusteragent.top_naming import name_tops

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run_dir")
    parser.add_argument("--model", default=None, help="chat model spec (default: the embedded default)")
    options = parser.parse_args(argv)

    agent, state, tax, assignment = clustering_of(options.run_dir)  # after any chat turn, as the result is
    result = agent.result_
    # The run's own tops (their grouping was judged on its meaning map, which the folder does not keep), in
    # the order the run named them; else the leaves grouped on the embeddings alone.
    groups = ([list(t["children"]) for t in result.top_clusters] if result.top_clusters else
              group_leaves(agent.vectors_, assignment, tax.ids))
    trace: list[dict] = []
    llm = StructuredLLM(load_chat_model(options.model), trace=trace)
    started = time.perf_counter()
    named = name_tops(llm, 10**6, state["instruction"], state.get("facet", ""), result.texts, agent.vectors_,
                      assignment, groups, tax, list(tax.names))
    broad = [n for g, n in zip(groups, named) if len(g) > 1]
    print(json.dumps({"tops": len(broad), "named_by_model": sum(n["named_by"] == "model" for n in broad),
                      "calls": llm.usage.calls, "seconds": round(time.perf_counter() - started, 1),
                      "names": [n["name"] for n in broad],
                      "refused": [{"answer": e["answer"][:80], "reason": (e["error"] or "")[:160]}
                                  for e in trace if e.get("error")]}, ensure_ascii=False))
    return 0


if __name__ == "__main__":
    sys.exit(main())
