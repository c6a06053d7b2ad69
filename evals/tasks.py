"""Benchmark tasks: corpus x facet x instruction, from versioned suite files or an ad-hoc spec."""

from __future__ import annotations

import functools
import json
import os
from collections import defaultdict
from dataclasses import dataclass
from importlib.resources import files
from pathlib import Path

import numpy as np
import yaml

from clusteragent.errors import ConfigError


@dataclass(frozen=True)
class Task:
    corpus: str
    facet: str
    instruction: str
    version: int = 1

    @property
    def name(self) -> str:
        return f"{self.corpus}:{self.facet}"


@dataclass
class TaskData:
    task: Task
    ids: list[str]
    texts: list[str]
    gold: list[str]

    def texts_by_value(self) -> dict[str, list[str]]:
        """The texts of each gold value, in corpus order."""
        found: dict[str, list[str]] = {}
        for text, value in zip(self.texts, self.gold):
            found.setdefault(str(value), []).append(text)
        return found


def suites() -> list[str]:
    return sorted(p.name[:-5] for p in (files(__package__) / "tasks").iterdir() if p.name.endswith(".yaml"))


def load_suite(name: str) -> list[Task]:
    path = files(__package__) / "tasks" / f"{name}.yaml"
    if not path.is_file():
        raise ConfigError(f"no suite {name!r}; the suites are {', '.join(suites())}.")
    raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    return [Task(t["corpus"], t["facet"], t["instruction"], int(t.get("version", 1))) for t in raw["tasks"]]


def parse_task(spec: str) -> Task:
    """CORPUS:FACET[:INSTRUCTION]; without an instruction, the dev suite's task of that name (so that
    `--task clinc150:domain` runs what the suite runs), else 'Cluster the texts by <facet>.'"""
    parts = spec.split(":", 2)
    if len(parts) < 2 or not parts[0] or not parts[1]:
        raise ConfigError(f"--task {spec!r}: write CORPUS:FACET[:INSTRUCTION].")
    if len(parts) == 3 and parts[2].strip():
        return Task(parts[0], parts[1], parts[2], 0)
    known = _dev_tasks().get(f"{parts[0]}:{parts[1]}")
    return known or Task(parts[0], parts[1], f"Cluster the texts by {parts[1].replace('_', ' ')}.", 0)


@functools.lru_cache(maxsize=1)
def _dev_tasks() -> dict[str, Task]:
    """The dev suite's tasks by name, read once per process."""
    return {t.name: t for t in load_suite("dev")}


def default_data_dir() -> Path:
    env = os.environ.get("CLUSTERAGENT_DATA_DIR")
    if env:
        return Path(env)
    for base in [Path.cwd(), *Path.cwd().parents]:
        candidate = base / "shared" / "data"
        if candidate.is_dir():
            return candidate
        candidate = base.parent / "shared" / "data"
        if candidate.is_dir():
            return candidate
    raise ConfigError("no data folder found; pass --data-dir (a folder of CORPUS/data.jsonl files).")


def load_task(task: Task, data_dir: Path, max_docs: int | None = None, seed: int = 0) -> TaskData:
    """The task's texts and gold labels; a stratified sample of max_docs with a fixed seed."""
    path = Path(data_dir) / task.corpus / "data.jsonl"
    if not path.is_file():
        raise ConfigError(f"task {task.name}: no {path}.")
    ids, texts, gold = [], [], []
    with open(path, encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            if not line.strip():
                continue
            rec = json.loads(line)
            labels = rec.get("labels", {})
            if task.facet not in labels:
                raise ConfigError(f"task {task.name}: line {n} of {path} has no label for facet {task.facet!r} "
                                  f"(it has {sorted(labels)}).")
            ids.append(rec["id"])
            texts.append(rec["text"])
            gold.append(str(labels[task.facet]))
    if max_docs and len(texts) > max_docs:
        keep = stratified_sample(gold, max_docs, seed)
        ids, texts, gold = [ids[i] for i in keep], [texts[i] for i in keep], [gold[i] for i in keep]
    return TaskData(task, ids, texts, gold)


def stratified_sample(gold: list[str], n: int, seed: int = 0) -> list[int]:
    """n row indices, each gold class represented in proportion (at least one where room allows)."""
    rng = np.random.default_rng(seed)
    by_class: dict[str, list[int]] = defaultdict(list)
    for i, g in enumerate(gold):
        by_class[g].append(i)
    classes = sorted(by_class)
    quota = {c: len(by_class[c]) * n / len(gold) for c in classes}
    take = {c: min(len(by_class[c]), max(1, int(quota[c]))) for c in classes}
    while sum(take.values()) > n:  # more classes than room: drop from the largest takes
        c = max(take, key=lambda c: (take[c], c))
        take[c] -= 1
    leftover = sorted(classes, key=lambda c: -(quota[c] - int(quota[c])))
    i = 0
    while sum(take.values()) < n and i < 10 * len(classes):
        c = leftover[i % len(leftover)]
        if take[c] < len(by_class[c]):
            take[c] += 1
        i += 1
    chosen = []
    for c in classes:
        members = np.array(by_class[c])
        chosen.extend(rng.choice(members, size=take[c], replace=False).tolist())
    return sorted(chosen)
