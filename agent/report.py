"""A run as one self-contained HTML page: a map of the texts, the cluster sizes, the hierarchy, every cluster
with its rule, words and representatives, and the run's facts. The same parts make the served page (serve.py).

Plots are Plotly's, with plotly.js inlined: the file opens offline and names no outside resource. Every text
and name reaches the page escaped: Jinja escapes the markup, hover labels carry HTML entities (Plotly's
labels read a few tags, so a raw `<b>` in a text would be drawn bold, and nothing in a label runs), and the
figures' JSON has `<`, `>` and `&` as \\u escapes, so no text can close its <script> element.
"""

from __future__ import annotations

import functools
import html
import json
import re
import textwrap
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from clusteragent.run_folder import atomic_write
from clusteragent.tools import taxonomy as tx

HOVER_CHARS = 280  # of each text in its hover label
WRAP = 70
WORDS = 6  # distinctive words shown per cluster
# Distinct colours for up to 62 clusters (Plotly's Alphabet, Dark24 and Light24 less their palest), then
# they repeat.
# Dark24 first: its first colours are far apart, where Alphabet's first four hold two purples ("#AA0DFE",
# "#782AB6") that a run of four clusters showed side by side.
PALETTE_NAMES = ("Dark24", "Alphabet", "Light24")
MAX_LUMINANCE = 0.6  # paler dots ("#E2E2E2", "#F7E1A0") can hardly be seen on the page's white


@functools.lru_cache(maxsize=1)
def palette() -> tuple[str, ...]:
    from plotly.express import colors

    return tuple(c for name in PALETTE_NAMES for c in getattr(colors.qualitative, name)
                 if luminance(c) <= MAX_LUMINANCE)


def luminance(hex_colour: str) -> float:
    """The relative luminance of "#RRGGBB" (WCAG 2): 0 for black, 1 for white."""
    def linear(c: float) -> float:
        return c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4

    r, g, b = (linear(int(hex_colour[i:i + 2], 16) / 255) for i in (1, 3, 5))
    return 0.2126 * r + 0.7152 * g + 0.0722 * b


def hover_text(text: str) -> str:
    """A text as a hover label: cut to HOVER_CHARS, escaped, wrapped with Plotly's <br>; a blank line (between a
    title and its body, where the texts join two fields) starts a new line."""
    short = text if len(text) <= HOVER_CHARS else text[:HOVER_CHARS].rstrip() + " …"
    paragraphs = (" ".join(p.split()) for p in re.split(r"\n\s*\n", short))
    lines = [line for p in paragraphs for line in textwrap.wrap(p, WRAP)] or [""]
    return "<br>".join(html.escape(line, quote=False) for line in lines)


def label(name: str) -> str:
    """A cluster name as Plotly label text (escaped, since Plotly reads tags in labels)."""
    return html.escape(name, quote=False)


def colours(result) -> dict[int, str]:
    """One colour per cluster id, largest cluster first; the outlier group grey."""
    shades = palette()
    ids = [c["cluster"] for c in result.clusters if c["cluster"] != tx.OUTLIER]
    return {**{cid: shades[i % len(shades)] for i, cid in enumerate(ids)}, tx.OUTLIER: "#9e9e9e"}


def map_figure(result, coordinates: np.ndarray):
    """The texts on the plane, one WebGL trace per cluster (legend toggles it), hover: text, id, cluster,
    confidence; where the run has two levels, the legend groups leaves under their top cluster."""
    import plotly.graph_objects as go

    colour, tops = colours(result), {t["cluster"]: t["name"] for t in result.top_clusters}
    sizes = {**{c["cluster"]: c["size"] for c in result.clusters}, **{t["cluster"]: t["size"] for t in result.top_clusters}}
    fig = go.Figure()
    # The legend lists the top level as a run prints it: its entries largest first (a top cluster, or a
    # cluster on its own), each top's clusters largest first under it.
    for c in sorted(result.clusters, key=lambda c: (-sizes[c.get("parent") or c["cluster"]], c.get("parent") or c["cluster"])):
        rows = np.flatnonzero(result.cluster == c["cluster"])
        group = tops.get(c.get("parent"))
        fig.add_trace(go.Scattergl(
            x=coordinates[rows, 0], y=coordinates[rows, 1], mode="markers", name=label(c["name"]),
            marker={"size": 5 if len(result.ids) < 5_000 else 3, "color": colour[c["cluster"]], "opacity": 0.8},
            text=[hover_text(result.texts[r]) for r in rows],
            customdata=[[str(result.ids[r]), round(float(result.confidence[r]), 2)] for r in rows],
            meta=[label(c["name"]) + (f" ({label(group)})" if group else ""), c["cluster"]],
            hovertemplate="<b>%{meta[0]}</b><br>id %{customdata[0]} · confidence %{customdata[1]}<br>%{text}<extra></extra>",
            legendgroup=str(c.get("parent") or c["cluster"]),
            legendgrouptitle={"text": label(group)} if group else None))
    fig.update_layout(template="plotly_white", height=620, margin={"l": 10, "r": 10, "t": 30, "b": 10},
                      xaxis={"visible": False}, yaxis={"visible": False}, legend={"itemsizing": "constant"},
                      hoverlabel={"align": "left"}, title={"text": "Texts by cluster", "x": 0.01})
    return fig


def sizes_figure(result):
    """The clusters' sizes as horizontal bars, largest on top; hover gives the description."""
    import plotly.graph_objects as go

    colour, shown = colours(result), result.clusters[::-1]
    fig = go.Figure(go.Bar(
        x=[c["size"] for c in shown], y=[f"{label(c['name'])} ({c['cluster']})" for c in shown], orientation="h",
        marker={"color": [colour[c["cluster"]] for c in shown]},
        text=[c["size"] for c in shown], textposition="outside",
        customdata=[hover_text(c.get("description") or "") for c in shown],
        hovertemplate="%{y}: %{x} texts<br>%{customdata}<extra></extra>"))
    fig.update_layout(template="plotly_white", height=max(260, 22 * len(shown) + 80),
                      margin={"l": 10, "r": 30, "t": 30, "b": 30}, title={"text": "Cluster sizes", "x": 0.01},
                      yaxis={"automargin": True})
    return fig


def tree_figure(result):
    """Where the run has two levels: a sunburst of top clusters and their leaves, sized by texts."""
    import plotly.graph_objects as go

    if not result.top_clusters:
        return None
    colour = colours(result)
    tops = [(f"t{t['cluster']}", label(t["name"]), "", t["size"], "#dddddd") for t in result.top_clusters]
    leaves = [(f"c{c['cluster']}", label(c["name"]), f"t{c['parent']}" if c.get("parent") is not None else "",
               c["size"], colour[c["cluster"]]) for c in result.clusters]
    ids, names, parents, values, shades = zip(*(tops + leaves))
    fig = go.Figure(go.Sunburst(ids=ids, labels=names, parents=parents, values=values, branchvalues="total",
                                marker={"colors": shades}, hovertemplate="%{label}: %{value} texts<extra></extra>"))
    fig.update_layout(height=560, margin={"l": 10, "r": 10, "t": 30, "b": 10},
                      title={"text": "Top clusters and their clusters", "x": 0.01})
    return fig


def figure_json(fig) -> str | None:
    """A figure as JSON safe inside <script>: no `<`, `>` or `&` left raw."""
    if fig is None:
        return None
    import plotly.io as pio

    return (pio.to_json(fig, validate=False, pretty=False)
            .replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026"))


def figures(result, coordinates: np.ndarray) -> dict[str, str | None]:
    return {"map": figure_json(map_figure(result, coordinates)), "sizes": figure_json(sizes_figure(result)),
            "tree": figure_json(tree_figure(result))}


def cluster_cards(result) -> list[dict]:
    """What the page lists per cluster: its entry, its colour and distinctive words; top clusters first
    with their leaves under them where the run has two levels."""
    from clusteragent.tools.features import distinctive_words

    words = distinctive_words(result.texts, result.cluster, top=WORDS)
    colour = colours(result)
    leaves = [{**c, "colour": colour[c["cluster"]], "words": words.get(c["cluster"], [])} for c in result.clusters]
    if not result.top_clusters:
        return leaves
    tops = [{**t, "colour": "#555555", "words": [], "children_cards": [c for c in leaves if c.get("parent") == t["cluster"]]}
            for t in result.top_clusters]
    return tops + [c for c in leaves if c.get("parent") is None]


def run_facts(result) -> list[tuple[str, str]]:
    """The run's facts as (label, value) rows."""
    run = result.run
    model = run.get("model") or {}
    shown_model = f"{model.get('provider', '')}:{model.get('model', '')}" if isinstance(model, dict) else str(model)
    rows = [("Instruction", run.get("instruction")), ("Facet", run.get("facet")), ("Texts", len(result.ids)),
            ("Clusters", result.k), ("Levels", result.levels), ("Chat model", shown_model),
            ("Embedding model", run.get("embedding_model")), ("Model calls", run.get("model_calls")),
            ("Time (s)", run.get("wall_s")), ("Seed", run.get("seed")), ("Stopped because", run.get("stop_reason"))]
    return [(k, str(v)) for k, v in rows if v not in (None, "")]


def audit_lines(result) -> list[str]:
    def line(entry: dict) -> str:
        rest = ", ".join(f"{k}: {v}" for k, v in entry.items() if k != "by")
        return f"{entry.get('by', 'review')}: {rest}" if rest else str(entry.get("by", ""))

    return [line(e) if isinstance(e, dict) else str(e) for e in result.run.get("audit") or []]


@functools.lru_cache(maxsize=1)
def templates():
    import jinja2

    from clusteragent.errors import counted

    env = jinja2.Environment(loader=jinja2.PackageLoader("clusteragent", "templates"),
                             autoescape=True, trim_blocks=True, lstrip_blocks=True)
    env.filters["counted"] = counted  # {{ size | counted("text") }}: "1 text", "2,000 texts"
    return env


@functools.lru_cache(maxsize=1)
def plotly_js() -> str:
    from plotly.offline import get_plotlyjs

    return get_plotlyjs()


def parts(result) -> dict[str, str]:
    """The page's changing parts as HTML (escaped): the cluster list, the run's facts, the chat history."""
    macros = templates().get_template("parts.html.j2").module
    return {"clusters": str(macros.clusters(cluster_cards(result))),
            "facts": str(macros.facts(run_facts(result), result.run.get("notes") or [], audit_lines(result))),
            "chat": str(macros.chat(result.run.get("refinements") or []))}


@dataclass
class Drawn:
    """A result drawn once: its figures as one JSON object (text, safe inside <script>) and its parts' HTML;
    the static report and every request of the served page use the same drawing."""

    result: Any
    figures_json: str
    parts: dict[str, str]


def drawn(result, coordinates: np.ndarray) -> Drawn:
    shown = figures(result, coordinates)
    return Drawn(result, "{" + ", ".join(f'"{k}": {v or "null"}' for k, v in shown.items()) + "}", parts(result))


def render(page: Drawn, served: bool = False, version: int = 0) -> str:
    """The whole page: a static report, or (`served`) the page of `clusteragent serve` with its chat box
    (`version`: the number of chat turns it shows, which the page compares with the server's)."""
    result = page.result
    title = f"Clusters: {result.run.get('instruction') or 'a run'}"
    return templates().get_template("report.html.j2").render(
        title=title, plotly_js=plotly_js(), figures_json=page.figures_json, parts=page.parts,
        served=served, version=version, k=result.k, n=len(result.ids))


def write_report(result, path: str | Path, coordinates: np.ndarray) -> Path:
    """Write the report of `result` to `path` (one HTML file that opens offline)."""
    path = Path(path)
    atomic_write(path, render(drawn(result, np.asarray(coordinates))).encode("utf-8"))
    return path


def view_json(page: Drawn, version: int) -> str:
    """What the served page redraws after a change, as JSON text: the figures as drawn (not parsed and
    written again: at 40,000 texts they are megabytes), the parts' HTML, k and the version."""
    rest = json.dumps({"parts": page.parts, "k": page.result.k, "version": version})
    return '{"figures": ' + page.figures_json + ", " + rest[1:]
