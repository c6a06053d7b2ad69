"""Assigning new texts: fit on one half of a corpus, assign the other half, compare both halves with gold.

    python -m clusteragent.evals.bench_assign [--suite agent] [--task CORPUS:FACET ...] [--half 400]
        [--max-model-calls 40] [--seed 0] [--scale 10000 --scale-task clinc150:domain --repeats 3]
        [--foreign CORPUS:FACET] [--holdout 2]

For each task, a stratified sample of 2 x --half texts (fixed seed) is shuffled and cut in two; the
agent is fitted on the first half (in memory, --max-model-calls) and `predict` assigns the second with
its default model budget. Prints one JSON line per task: the V-measure of the fitted half and of the
assigned half against the gold facet, their gap, the assigned half's V without any model call, the
model calls per new text, and the assignment's texts per second. With --scale N, it also times, after a
fit on --half texts, embedding N other texts of --scale-task (no cache) against assigning them (embedding
included), without and with the model, --repeats rounds of the three (medians of the times and of each
round's ratios), and scores both assignments.

With --foreign, the assigned half is mixed with texts of another corpus at 10% and assigned with
outliers on: the share of foreign texts flagged as outliers, and of the task's own. With --holdout K,
the fit leaves out the texts of K gold classes (drawn with the seed) and the second half, which has
them, is assigned with update on: how many new clusters, the share of held-out texts that went to them,
and of the other texts that did.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import time

import numpy as np

from clusteragent.evals.metrics import v_measure


def fitted_agent(texts, instruction, options):
    from clusteragent import ClusterAgent

    return ClusterAgent(max_model_calls=options.max_model_calls, seed=options.seed, progress=False).fit(
        texts, instruction=instruction)


def one_task(task, data_dir, options) -> dict:
    from clusteragent.evals.tasks import load_task

    data = load_task(task, data_dir, max_docs=2 * options.half, seed=options.seed)
    order = list(range(len(data.texts)))
    random.Random(options.seed).shuffle(order)
    fit, new = order[:len(order) // 2], order[len(order) // 2:]
    agent = fitted_agent([data.texts[i] for i in fit], task.instruction, options)
    started = time.perf_counter()
    result = agent.predict([data.texts[i] for i in new])
    wall = time.perf_counter() - started
    v_fit = v_measure([data.gold[i] for i in fit], agent.labels_)
    v_new = v_measure([data.gold[i] for i in new], result.cluster)
    classifier_only = agent.predict([data.texts[i] for i in new], max_model_calls=0)
    return {"task": task.name, "fitted": len(fit), "assigned": len(new), "k": agent.result_.k, "v_fitted": v_fit,
            "v_assigned": v_new, "gap": round(v_new - v_fit, 3),
            "v_assigned_no_model": v_measure([data.gold[i] for i in new], classifier_only.cluster),
            "calls_per_new_text": round(result.run["model_calls"] / len(new), 3),
            "fit_calls": agent.result_.run["model_calls"], "texts_per_s": round(len(new) / wall, 1)}


def foreign_task(task, data_dir, options) -> dict:
    """Assign the second half mixed with foreign texts at 10%, outliers on; how many of each are flagged."""
    from clusteragent.evals.tasks import load_task, parse_task

    data = load_task(task, data_dir, max_docs=2 * options.half, seed=options.seed)
    order = list(range(len(data.texts)))
    random.Random(options.seed).shuffle(order)
    fit, new = order[:len(order) // 2], order[len(order) // 2:]
    foreign = load_task(parse_task(options.foreign), data_dir, max_docs=len(new) // 9, seed=options.seed).texts
    agent = fitted_agent([data.texts[i] for i in fit], task.instruction, options)
    result = agent.predict([data.texts[i] for i in new] + foreign, outliers=True)
    flagged = result.cluster == -1
    return {"task": task.name, "foreign": options.foreign, "assigned": len(new), "mixed_in": len(foreign),
            "foreign_flagged": round(float(flagged[len(new):].mean()), 3),
            "own_flagged": round(float(flagged[:len(new)].mean()), 3),
            "calls_per_new_text": round(result.run["model_calls"] / len(result.ids), 3)}


def holdout_task(task, data_dir, options) -> dict:
    """Fit without K gold classes, assign a half that has them with update on; where they went."""
    from clusteragent.evals.tasks import load_task

    data = load_task(task, data_dir, max_docs=2 * options.half, seed=options.seed)
    classes = sorted(set(data.gold))
    held = set(random.Random(options.seed).sample(classes, options.holdout))
    order = list(range(len(data.texts)))
    random.Random(options.seed).shuffle(order)
    fit = [i for i in order[:len(order) // 2] if data.gold[i] not in held]
    new = order[len(order) // 2:]
    agent = fitted_agent([data.texts[i] for i in fit], task.instruction, options)
    result = agent.predict([data.texts[i] for i in new], update=True)
    added = set(result.run["new_clusters"])
    in_new = [int(c) in added for c in result.cluster]
    is_held = [data.gold[i] in held for i in new]
    share = lambda picked: round(sum(picked) / max(1, len(picked)), 3)  # noqa: E731
    names = {c["cluster"]: c["name"] for c in result.clusters}
    return {"task": task.name, "held_out": sorted(held), "fitted": len(fit), "assigned": len(new),
            "held_out_texts": sum(is_held), "new_clusters": [names[c] for c in sorted(added)],
            "held_out_to_new": share([n for n, h in zip(in_new, is_held) if h]),
            "others_to_new": share([n for n, h in zip(in_new, is_held) if not h]),
            "outliers_left": int((result.cluster == -1).sum()),
            "v_assigned": v_measure([data.gold[i] for i in new], result.cluster),
            "calls_per_new_text": round(result.run["model_calls"] / len(new), 3)}


def scale(options, data_dir) -> dict:
    from clusteragent.assign import CHOICES
    from clusteragent.evals.tasks import load_task, parse_task
    from clusteragent.tools.embeddings import Embedder

    task = parse_task(options.scale_task)
    data = load_task(task, data_dir, max_docs=None, seed=options.seed)
    order = list(range(len(data.texts)))
    random.Random(options.seed).shuffle(order)
    fit, new = order[:options.half], order[options.half:options.half + options.scale]
    texts = [data.texts[i] for i in new]
    agent = fitted_agent([data.texts[i] for i in fit], task.instruction, options)
    agent.vectors_  # noqa: B018 (the fitted texts' vectors, computed before the clocks start)
    plain = Embedder(agent.settings.embedding_model, agent.settings.embedding_precision, cache_dir=None, progress=False)
    plain.embed(texts[:10])  # the model loaded before the clock starts
    agent.settings = agent.settings.model_copy(update={"embedding_cache": False})
    seconds: dict[str, list[float]] = {"embed": [], "no_model": [], "default_budget": []}
    results = {}
    for _ in range(options.repeats):  # each round times the three alike, one after another
        started = time.perf_counter()
        plain.embed(texts)
        seconds["embed"].append(time.perf_counter() - started)
        for key, calls in (("no_model", 0), ("default_budget", None)):
            started = time.perf_counter()
            results[key] = agent.predict(texts, max_model_calls=calls)
            seconds[key].append(time.perf_counter() - started)
    ratios = {k: [t / e for t, e in zip(seconds[k], seconds["embed"])] for k in results}
    return {"task": task.name, "scale": len(texts), "repeats": options.repeats, "choices": CHOICES,
            "embed_s": round(float(np.median(seconds["embed"])), 1),
            **{f"assign_{k}_s": round(float(np.median(seconds[k])), 1) for k in results},
            **{f"ratio_{k}": round(float(np.median(r)), 2) for k, r in ratios.items()},
            **{f"ratios_{k}": [round(x, 2) for x in r] for k, r in ratios.items()},
            "default_budget_calls": results["default_budget"].run["model_calls"],
            **{f"v_assigned_{k}": v_measure([data.gold[i] for i in new], r.cluster) for k, r in results.items()}}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--suite", default="agent")
    parser.add_argument("--task", action="append", help="CORPUS:FACET[:INSTRUCTION] instead of the suite")
    parser.add_argument("--data-dir")
    parser.add_argument("--half", type=int, default=400)
    parser.add_argument("--max-model-calls", type=int, default=40, help="the fit's budget (the eval default)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--scale", type=int, help="also time assigning this many texts against embedding them")
    parser.add_argument("--scale-task", default="clinc150:domain")
    parser.add_argument("--repeats", type=int, default=1, help="rounds of the --scale timing (medians printed)")
    parser.add_argument("--skip-tasks", action="store_true", help="only the --scale timing")
    parser.add_argument("--foreign", help="CORPUS:FACET whose texts are mixed in at 10%% to be found as outliers")
    parser.add_argument("--holdout", type=int, help="gold classes the fit leaves out, for assign --update to find")
    options = parser.parse_args(argv)

    from pathlib import Path

    from clusteragent.evals.tasks import default_data_dir, load_suite, parse_task

    data_dir = Path(options.data_dir) if options.data_dir else default_data_dir()
    if not options.skip_tasks:
        tasks = [parse_task(t) for t in options.task] if options.task else load_suite(options.suite)
        run_one = foreign_task if options.foreign else holdout_task if options.holdout else one_task
        for task in tasks:
            print(json.dumps(run_one(task, data_dir, options)), flush=True)
    if options.scale:
        print(json.dumps(scale(options, data_dir)), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
