"""A labelling probe for an embedded chat model: speed, valid-output rate and accuracy.

    python -m clusteragent.evals.bench_chat [--model qwen2.5-coder-1.5b] [--texts 60]

Each request asks the model to put one text of the bundled sample (CLINC150, shuffled with a fixed
seed) into one of its 10 domains, under the label_text prompt and a JSON schema, as the agent does.
Prints one JSON line with the load time, prompt and generation tokens/s (medians over requests, from
llama.cpp's own timings; prompt tokens exclude the cached system prefix), seconds per request, the share
of answers that validated on the first try, and the accuracy against the gold domain.
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import time

from pydantic import ValidationError

from clusteragent.labelling import label_messages, label_schema
from clusteragent.models import EmbeddedServer, resolve_gguf
from clusteragent.settings import Settings
from clusteragent.structured import extract_json, output_constraint
from clusteragent.tools.corpus import load_corpus, sample_corpus_path

DOMAINS = {
    "banking": "bank accounts, transfers, balances, bills and payments",
    "credit_cards": "credit cards: limits, rewards, applications, lost or declined cards",
    "kitchen_and_dining": "cooking, recipes, nutrition, restaurants and reservations",
    "home": "shopping lists, to-do lists, reminders, calendar, smart home",
    "auto_and_commute": "cars, fuel, maintenance, tires, traffic and commuting",
    "travel": "flights, hotels, luggage, visas, travel plans and translation",
    "utility": "time, date, weather, alarms, timers, calculations, definitions, phone",
    "work": "payroll, paid time off, meetings, direct deposit, insurance, taxes",
    "small_talk": "chit-chat with the assistant: greetings, jokes, questions about the assistant",
    "meta": "settings of the assistant itself: its name, language, voice, volume, yes/no answers",
}


def timed_request(server, messages, schema, **options) -> tuple[dict, float, dict]:
    """One chat request straight to the embedded llama.cpp server, its answer held to `schema` as a run holds it:
    (the reply, its seconds, llama.cpp's own timings)."""
    request = {"messages": [{"role": role, "content": content} for role, content in messages], "temperature": 0,
               **options, **output_constraint(schema, "llamacpp")["extra_body"]}  # the body llama.cpp reads
    started = time.perf_counter()
    reply = server.chat_completion(request)
    return reply, time.perf_counter() - started, reply.get("timings", {})


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="qwen2.5-coder-1.5b", help="embedded model name or .gguf path")
    ap.add_argument("--texts", type=int, default=60)
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)

    corpus = load_corpus(sample_corpus_path(), id_field="id")
    rows = list(range(len(corpus)))
    random.Random(args.seed).shuffle(rows)
    clusters = [{"name": n, "description": d} for n, d in DOMAINS.items()]
    instruction = "Group these assistant queries by the domain of life they are about."

    t0 = time.perf_counter()
    server = EmbeddedServer.get(resolve_gguf(args.model, Settings.resolve().cache_dir), threads=args.threads)
    load_s = time.perf_counter() - t0
    schema = label_schema(tuple(DOMAINS))
    prompt_tps, gen_tps, seconds = [], [], []
    valid = correct = 0
    for i in rows[:args.texts]:
        reply, took, timings = timed_request(server, label_messages(instruction, clusters, corpus.texts[i]), schema,
                                             seed=args.seed, max_tokens=60)
        seconds.append(took)
        prompt_tps.append(timings.get("prompt_per_second", float("nan")))
        gen_tps.append(timings.get("predicted_per_second", float("nan")))
        try:
            label = schema.model_validate(extract_json(reply["choices"][0]["message"]["content"])).cluster
        except (ValueError, ValidationError):
            continue
        valid += 1
        correct += label == corpus.extra[i]["labels"]["domain"]
    print(json.dumps({
        "model": args.model, "load_s": round(load_s, 2), "requests": args.texts,
        "prompt_tokens_per_s_median": round(statistics.median(prompt_tps), 1),
        "generation_tokens_per_s_median": round(statistics.median(gen_tps), 1),
        "seconds_per_request_median": round(statistics.median(seconds), 3),
        "valid_first_try": f"{valid}/{args.texts}", "accuracy": round(correct / args.texts, 3),
    }))


if __name__ == "__main__":
    main()
