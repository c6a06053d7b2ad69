"""Which operation the chat model reads in refinement messages: the first of a chat turn's two decisions.

    python -m clusteragent.evals.bench_chat_routing RUN_DIR [--model SPEC]

Loads a finished run folder and writes two or three messages for each operation from its own clusters (the
two largest, its largest top cluster, a text of each), phrased as a user might, then asks the chat model
(default: the embedded one) which operation each asks for, under the refine prompt and the run's cluster
list, as a chat turn does (refine_names.operation_asked included). Nothing is changed. Prints one JSON
object: how many were read right, per operation, and each miss.
"""

from __future__ import annotations

import argparse
import json
import sys
import time


def messages(a: str, b: str, top: str, text_id: str, text: str) -> list[tuple[str, str]]:
    """(message, the operation it asks for): two or three phrasings per operation, naming the run's own clusters."""
    return [
        (f'Merge "{a}" and "{b}".', "merge"),
        (f'Put "{a}" and "{b}" together, they are the same thing.', "merge"),
        (f'Split "{a}" into two.', "split"),
        (f'"{top}" mixes several things; break it up.', "split"),
        (f'Rename "{a}" to "Everyday tasks".', "rename"),
        (f'Give "{b}" a better name.', "rename"),
        (f'Text {text_id} belongs to "{b}".', "move"),
        (f'Texts that mention money belong to "{a}".', "move"),
        ("Make a new cluster for complaints.", "add_cluster"),
        ("Add a group for texts that ask about prices.", "add_cluster"),
        (f"Put the texts about {b.lower()} in their own cluster.", "add_cluster"),
        ("Cluster them by whether the user asks a question or gives a command.", "reinstruct"),
        ("Group these by sentiment instead.", "reinstruct"),
        ("Fewer, broader clusters please.", "granularity"),
        ("I want more, finer clusters.", "granularity"),
        (f'Delete the "{b}" cluster.', "remove"),
        (f"Get rid of {a}.", "remove"),
        ("Undo that.", "undo"),
        ("Go back to how it was before the last change.", "undo"),
        (f'Why is text {text_id} in "{a}"?', "explain"),
        (f"Explain why text {text_id} ended up where it is.", "explain"),
        (f'What is in "{a}"?', "describe"),
        (f'Tell me about the "{top}" cluster.', "describe"),
        (f'Which cluster has texts like "{text}"?', "find"),
        (f"Where are the texts about {b.lower()}?", "find"),
    ]


def main(argv: list[str] | None = None) -> int:
    import numpy as np

    from clusteragent import ClusterAgent
    from clusteragent.models import load_chat_model
    from clusteragent.prompts import load_prompt
    from clusteragent.refine import ActionChoice, cluster_listing
    from clusteragent.refine_names import numbered, operation_asked
    from clusteragent.structured import StructuredLLM
    from clusteragent.tools import taxonomy as tx

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run_dir")
    parser.add_argument("--model", default=None, help="chat model spec (default: the embedded default)")
    options = parser.parse_args(argv)

    agent = ClusterAgent.load(options.run_dir)
    state, result = agent.state_, agent.result_
    tax, assignment = tx.Taxonomy.from_state(state), np.asarray(result.cluster)
    listed = numbered(tax, assignment)
    first, second = listed[0], listed[1]
    top = max(result.top_clusters, key=lambda t: t["size"])["name"] if result.top_clusters else second["name"]
    shown = next(c for c in result.clusters if c["cluster"] == first["cluster"])  # a text of the largest cluster
    cases = messages(first["name"], second["name"], top, str(shown["representative_ids"][0]),
                     shown["representative_texts"][0][:80])
    llm = StructuredLLM(load_chat_model(options.model))
    clusters = cluster_listing(state, assignment)
    right: dict[str, list[int]] = {}
    misses = []
    started = time.perf_counter()
    for message, wanted in cases:
        prompt = load_prompt("refine").messages(instruction=state["instruction"], message=message,
                                                clusters=clusters, action="")
        try:
            read = operation_asked(message, llm.decide(prompt, ActionChoice, step="refine").action, tax.names)
        except Exception as e:  # an invalid answer counts as a miss
            read = f"no answer ({type(e).__name__})"
        right.setdefault(wanted, [0, 0])[1] += 1
        right[wanted][0] += read == wanted
        if read != wanted:
            misses.append({"message": message, "wanted": wanted, "read": read})
    print(json.dumps({"right": sum(r for r, _ in right.values()), "of": len(cases),
                      "per_operation": {k: f"{r}/{n}" for k, (r, n) in right.items()}, "misses": misses,
                      "calls": llm.usage.calls, "seconds": round(time.perf_counter() - started, 1)},
                     ensure_ascii=False))
    return 0


if __name__ == "__main__":
    sys.exit(main())
