"""The HTML report at scale: how long writing it takes, how large it is, and how long Chromium takes to draw it.

    python -m clusteragent.evals.bench_report [--sizes 2000 40000] [--repeats 3] [--task goemotions:ekman]

For each size, a stratified sample of the task's corpus (fixed seed) is embedded (the embedding cache is
used: embedding is not what is measured) and cut into 50 clusters by k-means, named by their distinctive
words; then `ClusterResult.report` is timed: the seeded 2-D map (UMAP up to 10,000 texts, PCA beyond),
the figures, the cluster list and the file. With Debian's Chromium at /usr/bin/chromium, the file is also
opened headless and the time until the map's canvas is drawn is taken, then a drag across the map (a pan)
and the time until the page answers again. Prints one JSON line per size with medians over repeats.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np

CLUSTERS = 50


def clustered(texts: list[str], ids: list, vectors: np.ndarray, seed: int = 0):
    """A ClusterResult of k-means clusters (no model): what the report draws, at the size asked."""
    from sklearn.cluster import MiniBatchKMeans

    from clusteragent.result import ClusterResult
    from clusteragent.tools.features import distinctive_words

    labels = MiniBatchKMeans(n_clusters=CLUSTERS, random_state=seed, n_init=3).fit_predict(vectors)
    words = distinctive_words(texts, labels, top=3)
    clusters = []
    for c in sorted(set(labels.tolist()), key=lambda c: -(labels == c).sum()):
        rows = np.flatnonzero(labels == c)[:3]
        clusters.append({"cluster": c, "name": " / ".join(words[c][:2]) or f"cluster {c}", "description": "",
                         "size": int((labels == c).sum()), "representative_ids": [ids[r] for r in rows],
                         "representative_texts": [texts[r] for r in rows], "named_by": "statistics",
                         "level": 1, "parent": None})
    return ClusterResult(ids=ids, texts=texts, cluster=labels.astype(np.int64),
                         confidence=np.ones(len(texts), np.float32), clusters=clusters,
                         run={"instruction": "k-means clusters (benchmark)"}, vectors=vectors)


def browser_times(path: Path) -> dict | None:
    """Seconds until the map is drawn, and until the page answers again after a pan, in headless Chromium."""
    from clusteragent.evals.chromium import available, chromium_page, settle

    if not available():
        return None
    with chromium_page() as page:
        started = time.perf_counter()
        page.goto(path.as_uri(), timeout=300_000)
        page.wait_for_selector("#fig-map canvas", timeout=300_000)
        settle(page)
        drawn = time.perf_counter() - started
        box = page.locator("#fig-map .nsewdrag").bounding_box()
        cx, cy = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2
        started = time.perf_counter()
        page.mouse.move(cx, cy)
        page.mouse.down()
        for step in range(1, 11):
            page.mouse.move(cx + 20 * step, cy + 10 * step)
        page.mouse.up()
        settle(page)
        panned = time.perf_counter() - started
    return {"draw_s": round(drawn, 2), "pan_s": round(panned, 2)}


def main(argv: list[str] | None = None) -> None:
    from clusteragent.evals.tasks import default_data_dir, load_task, parse_task
    from clusteragent.settings import Settings
    from clusteragent.tools.embeddings import Embedder

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[2000, 40000])
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--task", default="goemotions:ekman")
    ap.add_argument("--data-dir", default=None)
    ap.add_argument("--no-browser", action="store_true", help="skip the Chromium timings")
    ap.add_argument("--work-dir", default=None)
    args = ap.parse_args(argv)

    task = parse_task(args.task)
    data_dir = Path(args.data_dir) if args.data_dir else default_data_dir()
    work = Path(args.work_dir or tempfile.mkdtemp(prefix="bench-report-"))
    work.mkdir(parents=True, exist_ok=True)
    embedder = Embedder.from_settings(Settings(progress=False))
    for n in args.sizes:
        data = load_task(task, data_dir, max_docs=n, seed=0)
        vectors, _ = embedder.embed(data.texts)
        result = clustered(list(data.texts), list(data.ids), vectors)
        walls = []
        for r in range(args.repeats):
            path = work / f"report-n{len(data.texts)}-{r}.html"
            started = time.perf_counter()
            result.report(path)
            walls.append(time.perf_counter() - started)
        shown = None if args.no_browser else browser_times(path)
        print(json.dumps({"n": len(data.texts), "task": task.name, "clusters": CLUSTERS,
                          "write_s": round(statistics.median(walls), 2), "writes_s": [round(w, 2) for w in walls],
                          "size_mb": round(path.stat().st_size / 1e6, 2), "chromium": shown}), flush=True)


if __name__ == "__main__":
    main()
