"""The public facade: `ClusterAgent(...).fit(texts, instruction=...)` and the result it gives."""

from __future__ import annotations

import json
import platform
import sys
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from clusteragent.settings import Settings
from clusteragent.state import AgentConfig, RunContext
from clusteragent.tools.corpus import Corpus, from_texts

REPRESENTATIVES = 3


@dataclass
class ClusterResult:
    """One text per row, every input exactly once, with its cluster; plus the clusters and the run record."""

    ids: list[Any]
    texts: list[str]
    cluster: np.ndarray  # dense cluster numbers 0..k-1, largest cluster first
    confidence: np.ndarray
    clusters: list[dict]  # {cluster, name, description, size, representative_ids, representative_texts}
    run: dict = field(default_factory=dict)
    trace: list[dict] = field(default_factory=list)

    @property
    def k(self) -> int:
        return len(self.clusters)

    @property
    def names(self) -> list[str]:
        return [c["name"] for c in self.clusters]

    def cluster_names(self) -> list[str]:
        """The cluster name of each text, in input order."""
        return [self.clusters[c]["name"] for c in self.cluster]

    def records(self) -> list[dict]:
        names = self.cluster_names()
        return [{"id": i, "cluster": int(c), "cluster_name": n, "confidence": round(float(p), 4)}
                for i, c, n, p in zip(self.ids, self.cluster, names, self.confidence)]

    def to_pandas(self, with_text: bool = True):
        import pandas as pd

        df = pd.DataFrame(self.records())
        if with_text:
            df.insert(1, "text", self.texts)
        return df

    def write(self, out_dir: str | Path) -> Path:
        """Write assignments.jsonl, clusters.json, run.json and trace.jsonl into `out_dir`."""
        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        with open(out / "assignments.jsonl", "w", encoding="utf-8") as f:
            for rec in self.records():
                f.write(json.dumps(rec, ensure_ascii=False) + "\n")
        (out / "clusters.json").write_text(json.dumps(self.clusters, ensure_ascii=False, indent=2), encoding="utf-8")
        with open(out / "trace.jsonl", "w", encoding="utf-8") as f:
            for entry in self.trace:
                f.write(json.dumps(entry, ensure_ascii=False, default=str) + "\n")
        run = dict(self.run, trace_path=str((out / "trace.jsonl").resolve()))
        (out / "run.json").write_text(json.dumps(run, ensure_ascii=False, indent=2, default=str), encoding="utf-8")
        return out


def _versions() -> dict:
    from importlib.metadata import PackageNotFoundError, version

    out = {"python": platform.python_version()}
    for dist in ("clusteragent", "langgraph", "langchain-core", "langchain-openai", "sentence-transformers",
                 "faiss-cpu", "torch", "numpy", "scikit-learn", "xllamacpp", "pydantic"):
        try:
            out[dist] = version(dist)
        except PackageNotFoundError:
            pass
    return out


class ClusterAgent:
    """Cluster texts the way an instruction asks; the number of clusters is the agent's unless given.

    Args:
        model: chat model spec, "provider:model" (default: the embedded llama.cpp model), or a LangChain
            chat model object.
        embedding_model: sentence-transformers name or path (default: the packaged all-MiniLM-L6-v2).
        k: exact number of clusters; or k_min/k_max: a range (default 2..20).
        max_model_calls: hard cap on chat model calls for a run.
        seed: seed for samples and classifiers; the same seed and model give the same result.
        progress: print stage messages and progress bars on stderr.
        model_options: options for `load_chat_model` (base_url, timeout, parallel, ...).
        **config: further AgentConfig fields (review_rounds, propose_batches, ...).
    """

    def __init__(self, model: Any = None, embedding_model: str | None = None, k: int | None = None,
                 k_min: int | None = None, k_max: int | None = None, max_model_calls: int = 150, seed: int = 0,
                 progress: bool = True, settings: Settings | None = None, model_options: dict | None = None,
                 **config: Any):
        from pydantic import ValidationError

        from clusteragent.errors import ConfigError

        try:
            self.config = AgentConfig(k=k, k_min=k_min, k_max=k_max, max_model_calls=max_model_calls, seed=seed,
                                      **config)
        except ValidationError as e:
            raise ConfigError.from_validation(e) from None
        self.settings = settings or Settings.resolve(embedding_model=embedding_model,
                                                     progress=None if progress else False)
        self.model = model
        self.model_options = dict(model_options or {})
        self.progress = progress and self.settings.progress
        self.result_: ClusterResult | None = None
        self.state_: dict | None = None
        self._chat = None

    # sklearn-style fitted attributes
    @property
    def labels_(self) -> np.ndarray:
        return self._fitted().cluster

    @property
    def clusters_(self) -> list[dict]:
        return self._fitted().clusters

    def _fitted(self) -> ClusterResult:
        if self.result_ is None:
            raise RuntimeError("call fit() first")
        return self.result_

    def chat_model(self):
        from clusteragent.models import load_chat_model

        if self._chat is None:
            if self.model is None or isinstance(self.model, str):
                options = {"seed": self.config.seed, **self.model_options}
                if (self.model or "").startswith("llamacpp:") or self.model is None:
                    options.setdefault("cache_dir", self.settings.cache_dir)
                self._chat = load_chat_model(self.model, **options)
            else:
                self._chat = self.model
        return self._chat

    def _say(self, message: str) -> None:
        if self.progress:
            print(f"clusteragent: {message}", file=sys.stderr, flush=True)

    def fit(self, texts: Sequence[str] | Corpus, instruction: str, ids: Sequence[Any] | None = None) -> "ClusterAgent":
        """Cluster `texts` by `instruction`; the result is in `result_` (and `labels_`, `clusters_`)."""
        from clusteragent.errors import ConfigError
        from clusteragent.graph import graph
        from clusteragent.models import backend_info
        from clusteragent.structured import StructuredLLM
        from clusteragent.tools.embeddings import Embedder

        if not instruction or not instruction.strip():
            raise ConfigError("give an instruction that says how to cluster the texts.")
        corpus = texts if isinstance(texts, Corpus) else from_texts(texts, ids)
        self.config.k_range(len(corpus))  # a k larger than the corpus fails before any model loads
        started = time.perf_counter()
        chat = self.chat_model()
        trace: list[dict] = []
        llm = StructuredLLM(chat, trace=trace)
        config = self.config.resolved_for(backend_info(chat)["provider"])
        ctx = RunContext(texts=corpus.texts, llm=llm, embedder=Embedder.from_settings(self.settings),
                         config=config, progress=self._say, show_bars=self.progress)
        thread_id = str(uuid.uuid4())
        state = graph.invoke({"instruction": instruction}, context=ctx,
                             config={"configurable": {"thread_id": thread_id}, "recursion_limit": 200})
        self.state_ = state
        self.result_ = self._result(corpus, ctx, state, llm, chat, thread_id, instruction, trace,
                                    time.perf_counter() - started, backend_info)
        return self

    def _result(self, corpus, ctx, state, llm, chat, thread_id, instruction, trace, wall, backend_info) -> ClusterResult:
        from clusteragent.prompts import prompt_versions
        from clusteragent.tools.taxonomy import Taxonomy

        tax = Taxonomy.from_list(state["taxonomy"], state.get("next_id"))
        assignment = ctx.arrays[state["assignment_ref"]]
        confidence = ctx.arrays[state["assignment_ref"] + ":confidence"]
        counts = {c.id: int((assignment == c.id).sum()) for c in tax.clusters}
        order = sorted(tax.clusters, key=lambda c: (-counts[c.id], c.id))
        dense = {c.id: i for i, c in enumerate(order)}
        clusters = []
        for c in order:
            members = np.flatnonzero(assignment == c.id)
            cent = ctx.vectors[members].mean(axis=0)
            reps = members[np.argsort(-(ctx.vectors[members] @ cent))[:REPRESENTATIVES]]
            clusters.append({"cluster": dense[c.id], "name": c.name, "description": c.description,
                             "size": counts[c.id], "representative_ids": [corpus.ids[r] for r in reps],
                             "representative_texts": [corpus.texts[r] for r in reps]})
        info = backend_info(chat)
        run = {
            "instruction": instruction, "facet": state.get("facet"), "k": len(clusters),
            "k_range": [state["k_min"], state["k_max"]], "n_texts": len(corpus), "source": corpus.source,
            "model": info, "embedding_model": ctx.embedder.model_id, "embedding_precision": ctx.embedder.precision,
            "config": ctx.config.model_dump(), "seed": self.config.seed, "thread_id": thread_id,
            "stop_reason": state.get("stop_reason", ""), "notes": state.get("notes", []),
            "audit": state.get("audit", []), "decisions": state.get("trace", []),
            "labelled_by_model": len(state.get("labels", {})), "timings_s": state.get("timings", {}),
            "wall_s": round(wall, 2), **llm.usage.as_dict(), "prompt_versions": prompt_versions(),
            "versions": _versions(),
        }
        return ClusterResult(ids=list(corpus.ids), texts=list(corpus.texts),
                             cluster=np.array([dense[c] for c in assignment], dtype=np.int64),
                             confidence=np.asarray(confidence, dtype=np.float32), clusters=clusters, run=run,
                             trace=trace)
