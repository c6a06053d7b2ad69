"""Run methods over tasks on the same texts; write results, per-method assignments, a table and a plot."""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from clusteragent.evals.methods import METHODS, MethodContext
from clusteragent.evals.metrics import score
from clusteragent.evals.tasks import Task, load_task

DEFAULT_METHODS = ["kmeans_oracle", "kmeans_estimated", "hdbscan_umap", "bertopic", "instruct_kmeans", "agent"]


def run_eval(tasks: Sequence[Task], data_dir: Path, out_dir: Path, methods: Sequence[str] = DEFAULT_METHODS,
             max_docs: int | None = 300, seed: int = 0, agent_options: dict | None = None,
             progress: bool = True, name_checks: int = 100) -> list[dict]:
    from tqdm.auto import tqdm

    from clusteragent.result import versions
    from clusteragent.settings import Settings
    from clusteragent.tools.embeddings import Embedder

    unknown = [m for m in methods if m not in METHODS]
    if unknown:
        from clusteragent.errors import ConfigError

        raise ConfigError(f"unknown method(s) {unknown}; the methods are {', '.join(METHODS)}.")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    embedder = Embedder.from_settings(Settings.resolve(progress=False))
    ctx = MethodContext(embedder=embedder, seed=seed, agent_options=dict(agent_options or {}), name_checks=name_checks)
    if {"agent", "reading_kmeans"} & set(methods):
        from clusteragent import ClusterAgent

        options = dict(ctx.agent_options)
        ctx.chat_model = ClusterAgent(model=options.get("model"), seed=seed, progress=False,
                                      model_options=options.get("model_options")).chat_model()
    results = []
    bar = tqdm(total=len(tasks) * len(methods), desc="eval", unit="run", disable=not progress)
    for task in tasks:
        data = load_task(task, data_dir, max_docs, seed)
        vectors, _ = embedder.embed(data.texts)
        k_gold = len(set(data.gold))
        for method in methods:
            bar.set_postfix_str(f"{task.name} {method}")
            started = time.perf_counter()
            try:
                labels, info = METHODS[method](data.texts, vectors, task.instruction, k_gold, ctx)
                error = None
            except Exception as e:  # one failing method must not sink the suite; the row says why
                labels, info, error = None, {}, f"{type(e).__name__}: {e}"
            wall = time.perf_counter() - started
            row = {"task": task.name, "task_version": task.version, "method": method, "n": len(data.texts),
                   "wall_s": round(wall, 2), "model_calls": info.get("model_calls", 0),
                   "tokens": info.get("prompt_tokens", 0) + info.get("completion_tokens", 0)}
            top_labels = info.pop("top_labels", None)  # a two-level result's broad level
            if error is None:
                row.update(score(data.gold, labels))
                if top_labels is not None:
                    top = score(data.gold, top_labels)
                    row.update({f"top_{key}": top[key] for key in ("v_measure", "k_pred", "k_error")})
                _write_assignments(out_dir / task.name.replace(":", "__") / method, data.ids, labels)
            else:
                row.update({"error": error, "k_gold": k_gold})
            row.update({k: v for k, v in info.items() if k not in ("model_calls", "prompt_tokens", "completion_tokens")})
            results.append(row)
            bar.update(1)
            (out_dir / "results.json").write_text(json.dumps(results, indent=2, ensure_ascii=False))
    bar.close()
    settings = {"max_docs": max_docs, "seed": seed, "methods": list(methods), "agent_options": ctx.agent_options,
                "tasks": [t.__dict__ for t in tasks], "data_dir": str(data_dir), "versions": versions(),
                "embedding_model": embedder.model_id, "embedding_precision": embedder.precision}
    (out_dir / "settings.json").write_text(json.dumps(settings, indent=2, default=str))
    (out_dir / "table.md").write_text(markdown_table(results))
    try:
        plot(results, out_dir / "v_measure.png")
    except ImportError:
        pass
    return results


def _write_assignments(folder: Path, ids, labels) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / "assignments.jsonl", "w", encoding="utf-8") as f:
        for i, c in zip(ids, np.asarray(labels).tolist()):
            f.write(json.dumps({"id": i, "cluster": int(c)}) + "\n")


def markdown_table(results: list[dict]) -> str:
    """Methods as columns of V-measure per task, then a detail table."""
    methods = list(dict.fromkeys(r["method"] for r in results))
    tasks = list(dict.fromkeys(r["task"] for r in results))
    get = {(r["task"], r["method"]): r for r in results}
    lines = ["| task | " + " | ".join(methods) + " |", "|---|" + "---:|" * len(methods)]
    for t in tasks:
        cells = []
        for m in methods:
            r = get.get((t, m), {})
            cells.append(f"{r['v_measure']:.3f}" if "v_measure" in r else "error")
        lines.append(f"| {t} | " + " | ".join(cells) + " |")
    lines += ["", "| task | method | V | NMI | ARI | acc | k pred / gold | k error | top level V (k) | name fidelity "
                  "| model calls | wall s |", "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for r in results:
        if "v_measure" in r:
            k_err = f"{r['k_error']:.2f}" if "k_error" in r else ""
            top = f"{r['top_v_measure']:.3f} ({r['top_k_pred']})" if "top_v_measure" in r else ""
            fidelity = f"{r['name_fidelity']:.2f}" if r.get("name_fidelity") is not None else ""
            lines.append(f"| {r['task']} | {r['method']} | {r['v_measure']:.3f} | {r['nmi']:.3f} | {r['ari']:.3f} | "
                         f"{r['acc']:.3f} | {r['k_pred']} / {r['k_gold']} | {k_err} | {top} | {fidelity} "
                         f"| {r['model_calls']} | {r['wall_s']} |")
        else:
            lines.append(f"| {r['task']} | {r['method']} | error: {r['error'][:80]} | | | | | | | | | |")
    return "\n".join(lines) + "\n"


def plot(results: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    methods = list(dict.fromkeys(r["method"] for r in results))
    tasks = list(dict.fromkeys(r["task"] for r in results))
    get = {(r["task"], r["method"]): r.get("v_measure", np.nan) for r in results}
    width = 0.8 / max(1, len(methods))
    fig, ax = plt.subplots(figsize=(max(6, 0.9 * len(tasks) + 2), 4))
    for j, m in enumerate(methods):
        ax.bar(np.arange(len(tasks)) + j * width, [get.get((t, m), np.nan) for t in tasks], width, label=m)
    ax.set_xticks(np.arange(len(tasks)) + width * (len(methods) - 1) / 2)
    ax.set_xticklabels(tasks, rotation=45, ha="right", fontsize=8)
    ax.set_ylabel("V-measure")
    ax.set_ylim(0, 1)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
