"""Where a naming call's time goes on the embedded model: the prompt tokens read (and those reused from the
cache) and the answer tokens written, in llama.cpp's own timings.

    python -m clusteragent.evals.bench_call_time CORPUS [--instruction TEXT] [--groups 10] [--texts 6]

Names `--groups` groups of `--texts` consecutive texts of the corpus in turn, each call listing the names
given before it, as a run's naming does (the naming prompt and the answer's grammar of a run), straight to
the embedded llama.cpp server. Prints one JSON line per call (seconds, prompt tokens read, reused from the
cache, ms reading; answer tokens, ms writing), then the medians.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys


def main(argv: list[str] | None = None) -> int:
    from clusteragent.evals.bench_chat import timed_request
    from clusteragent.models import DEFAULT_CHAT_MODEL, EmbeddedServer, resolve_gguf
    from clusteragent.prompts import load_prompt
    from clusteragent.schemas import distinct_spec_schema
    from clusteragent.settings import Settings
    from clusteragent.tools.corpus import load_corpus

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("corpus", help="a corpus file, as `clusteragent run` reads it")
    parser.add_argument("--instruction", default="Group these texts by topic.")
    parser.add_argument("--facet", default="topic")
    parser.add_argument("--groups", type=int, default=10)
    parser.add_argument("--texts", type=int, default=6, help="texts shown per group (a run shows 6)")
    options = parser.parse_args(argv)

    texts = load_corpus(options.corpus).texts
    server = EmbeddedServer.get(resolve_gguf(DEFAULT_CHAT_MODEL.partition(":")[2], Settings.resolve().cache_dir))
    prompt = load_prompt("name_cluster")
    schema = distinct_spec_schema((), second_choice=True)
    taken: list[str] = []
    rows = []
    for group in range(options.groups):
        shown = texts[group * options.texts:(group + 1) * options.texts]
        if not shown:
            break
        messages = prompt.messages(instruction=options.instruction, facet=options.facet, taken=taken, texts=shown,
                                   shared=[], parts=[], whole="", current="", within="")
        reply, seconds, timings = timed_request(server, messages, schema, max_tokens=200)
        row = {"seconds": round(seconds, 2), "prompt_read": timings.get("prompt_n"), "prompt_reused": timings.get("cache_n"),
               "prompt_ms": round(timings.get("prompt_ms", 0)), "answer_tokens": timings.get("predicted_n"),
               "answer_ms": round(timings.get("predicted_ms", 0))}
        rows.append(row)
        print(json.dumps(row), flush=True)
        try:
            taken.append(json.loads(reply["choices"][0]["message"]["content"])["name"])
        except (KeyError, IndexError, TypeError, ValueError):
            taken.append(f"group {group + 1}")
    print(json.dumps({"median": {k: statistics.median(r[k] or 0 for r in rows) for k in rows[0]}, "calls": len(rows)}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
