"""The review tools the model may call (and chat refinement reuses), as thin wrappers over the pure operations.

Each wrapper's docstring is what the model reads: its first line says what the tool does and its
`Args:` describe the arguments (a test checks that every parameter is described). A wrapper changes
the workspace or explains why it cannot, and answers with a short, bounded observation.
"""

from __future__ import annotations

import inspect
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from clusteragent.prompts import as_data
from clusteragent.splitting import MIN_SPLIT, apply_split
from clusteragent.tools import taxonomy as tx

MAX_OBSERVATION = 600


@dataclass
class Workspace:
    """The clustering a review step works on."""

    assignment: np.ndarray
    taxonomy: tx.Taxonomy
    labels: dict[str, int]
    texts: list[str]
    vectors: np.ndarray
    index: Any
    audit: list[dict] = field(default_factory=list)
    plan_split: Callable | None = None  # (cluster) -> a splitting.SplitPlan, or the reason there is none
    changed: bool = False


class ToolError(ValueError):
    """The request cannot be done; the message tells the model why."""


def _cluster(ws: Workspace, name: str) -> tx.Cluster:
    found = ws.taxonomy.find(name or "")
    if found is None:
        raise ToolError(f'There is no cluster named "{name}".')
    return found


def merge(ws: Workspace, clusters: list[str], new_name: str = "", new_description: str = "") -> str:
    """Merge two clusters that mean the same under the instruction into one.

    Args:
        clusters: the names of exactly two different clusters to merge.
        new_name: a name for the merged cluster; empty keeps the first cluster's name.
        new_description: an inclusion rule for the merged cluster; empty keeps the first one's.
    """
    names = list(dict.fromkeys(clusters))
    if len(names) != 2:
        raise ToolError("A merge needs two different clusters.")
    ids = [_cluster(ws, n).id for n in names]
    clash = ws.taxonomy.find(new_name) if new_name.strip() else None
    if clash is not None and clash.id not in ids:
        raise ToolError(f'The name "{new_name}" is already taken.')
    ws.assignment, ws.taxonomy, entry = tx.merge(ws.assignment, ws.taxonomy, ids, new_name.strip() or None,
                                                 new_description.strip() or None)
    ws.labels = tx.remap_labels(ws.labels, entry)
    ws.audit.append(entry)
    ws.changed = True
    return f'Merged "{names[0]}" and "{names[1]}" into "{entry["name"]}" ({entry["moved"]} texts moved).'


def rename(ws: Workspace, clusters: list[str], new_name: str = "", new_description: str = "") -> str:
    """Rename a cluster whose name does not fit its texts.

    Args:
        clusters: the name of the one cluster to rename.
        new_name: its new name (1-3 words, not used by another cluster).
        new_description: its new inclusion rule; empty keeps the old one.
    """
    if len(clusters) != 1 or not new_name.strip():
        raise ToolError("A rename needs one cluster and a new name.")
    target = _cluster(ws, clusters[0])
    clash = ws.taxonomy.find(new_name)
    if clash is not None and clash.id != target.id:
        raise ToolError(f'The name "{new_name}" is already taken.')
    ws.taxonomy, entry = tx.rename(ws.taxonomy, target.id, new_name, new_description.strip() or None, named_by="model")
    ws.audit.append(entry)
    ws.changed = True
    return f'Renamed "{entry["from"]}" to "{entry["to"]}".'


def split(ws: Workspace, clusters: list[str]) -> str:
    """Split a cluster that mixes two groups into two more specific clusters.

    Args:
        clusters: the name of the one cluster to split (it needs at least 4 texts).
    """
    if len(clusters) != 1:
        raise ToolError("A split needs exactly one cluster.")
    target = _cluster(ws, clusters[0])
    if int((ws.assignment == target.id).sum()) < MIN_SPLIT or ws.plan_split is None:
        raise ToolError(f"A split needs one cluster with at least {MIN_SPLIT} texts.")
    plan = ws.plan_split(target)
    if isinstance(plan, str):
        raise ToolError(plan)
    ws.assignment, ws.taxonomy, ws.labels, entry = apply_split(ws.assignment, ws.taxonomy, ws.labels, plan, target.id)
    ws.audit.append(entry)
    ws.changed = True
    return f'Split "{target.name}" into ' + " and ".join(f'"{n}" ({s})' for n, s in zip(entry["names"], entry["sizes"])) + "."


def retrieve(ws: Workspace, clusters: list[str]) -> str:
    """Show the texts outside a cluster that lie closest to it, to judge whether it should grow or merge.

    Args:
        clusters: the name of the one cluster to look around.
    """
    from clusteragent.tools.retrieve import cluster_neighbours

    if len(clusters) != 1:
        raise ToolError("retrieve needs exactly one cluster.")
    target = _cluster(ws, clusters[0])
    rows, _ = cluster_neighbours(ws.index, ws.vectors, ws.assignment, target.id, k=3)
    if len(rows) == 0:
        return f'No texts lie outside "{target.name}".'
    lines = [f'in "{ws.taxonomy.by_id(int(ws.assignment[r])).name}": {as_data(ws.texts[r], 120)}' for r in rows]
    return f'Closest texts outside "{target.name}": ' + " | ".join(lines)


REVIEW_TOOLS: dict[str, Callable[..., str]] = {"merge": merge, "split": split, "rename": rename, "retrieve": retrieve}


def call_tool(ws: Workspace, name: str, arguments: dict) -> tuple[bool, str]:
    """Run a tool by name with the arguments it takes; (done, bounded observation)."""
    fn = REVIEW_TOOLS[name]
    wanted = {k: v for k, v in arguments.items() if k in inspect.signature(fn).parameters}
    try:
        message = fn(ws, **wanted)
        done = True
    except ToolError as e:
        message, done = str(e), False
    return done, message[:MAX_OBSERVATION]


def tool_arguments(fn: Callable) -> dict[str, str]:
    """The `Args:` section of a tool's docstring, as {parameter: description}."""
    doc = inspect.getdoc(fn) or ""
    section = doc.split("Args:", 1)[1] if "Args:" in doc else ""
    out: dict[str, str] = {}
    for line in section.splitlines():
        m = re.match(r"\s{4}(\w+):\s*(.+)", line)
        if m:
            out[m.group(1)] = m.group(2).strip()
    return out


def describe_tools(names) -> str:
    """One line per tool for the prompt: what it does and what its arguments mean."""
    lines = []
    for name in names:
        fn = REVIEW_TOOLS[name]
        summary = (inspect.getdoc(fn) or "").splitlines()[0]
        args = "; ".join(f"{k}: {v}" for k, v in tool_arguments(fn).items())
        lines.append(f"- {name}: {summary} ({args})")
    lines.append("- stop: submit the clustering as it is; refused, with the reason, while it is invalid.")
    return "\n".join(lines)
