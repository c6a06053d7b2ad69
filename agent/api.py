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
from clusteragent.store import RunStore
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

    def write(self, out_dir: str | Path, with_trace: bool = True) -> Path:
        """Write assignments.jsonl, clusters.json, run.json and (with_trace) trace.jsonl into `out_dir`."""
        from clusteragent.store import atomic_write

        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        lines = "".join(json.dumps(rec, ensure_ascii=False) + "\n" for rec in self.records())
        atomic_write(out / "assignments.jsonl", lines.encode("utf-8"))
        atomic_write(out / "clusters.json", json.dumps(self.clusters, ensure_ascii=False, indent=2).encode("utf-8"))
        if with_trace:
            trace = "".join(json.dumps(e, ensure_ascii=False, default=str) + "\n" for e in self.trace)
            atomic_write(out / "trace.jsonl", trace.encode("utf-8"))
        run = dict(self.run, trace_path=str((out / "trace.jsonl").resolve()))
        atomic_write(out / "run.json", json.dumps(run, ensure_ascii=False, indent=2, default=str).encode("utf-8"))
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
        executor: "local", or "ray" to embed in Ray tasks and, for a served model, send labelling
            requests from Ray tasks (`ray_address`: the cluster; None starts a local Ray instance).
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
                 executor: str = "local", ray_address: str | None = None, **config: Any):
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
        self._session = None
        self.source_options: dict = {}  # where the corpus came from (set by the CLI), for session.json
        self.executor_name, self.ray_address = executor, ray_address
        self._executor = None

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

    def executor(self):
        """Where embedding and (for served models) labelling run: this process, or a Ray cluster."""
        from clusteragent.executors import make_executor

        if self._executor is None:
            spec = self.model if isinstance(self.model, str) else None
            options = {"seed": self.config.seed, **self.model_options}
            self._executor = make_executor(self.executor_name, self.ray_address, spec, options)
        return self._executor

    def _say(self, message: str) -> None:
        if self.progress:
            print(f"clusteragent: {message}", file=sys.stderr, flush=True)

    def fit(self, texts: Sequence[str] | Corpus, instruction: str, ids: Sequence[Any] | None = None,
            out_dir: str | Path | None = None, resume: bool = False) -> "ClusterAgent":
        """Cluster `texts` by `instruction`; the result is in `result_` (and `labels_`, `clusters_`).

        Args:
            texts: the texts (or a Corpus from `load_corpus`).
            instruction: how to cluster them.
            ids: one id per text (default 1..N).
            out_dir: a folder for the run's checkpoints, arrays and recorded model answers (SQLite;
                durable, and what `resume` and `clusteragent refine` read). Default: kept in memory.
            resume: continue the run recorded in `out_dir` from its last checkpoint, replaying the
                model answers it already has instead of asking again.
        """
        from clusteragent.errors import ConfigError

        if not instruction or not instruction.strip():
            raise ConfigError("give an instruction that says how to cluster the texts.")
        corpus = texts if isinstance(texts, Corpus) else from_texts(texts, ids)
        self.config.k_range(len(corpus))  # a k larger than the corpus fails before any model loads
        if resume and out_dir is None:
            raise ConfigError("resume needs the run's folder (out_dir / --out).")
        started = time.perf_counter()
        thread_id = _resume_thread(out_dir, corpus, instruction) if resume else None
        if not resume and out_dir is not None:
            _clear_run_files(Path(out_dir))
        self._store = RunStore(out_dir)
        self._corpus = corpus
        thread_id = thread_id or str(uuid.uuid4())
        if out_dir is not None:
            _write_session(Path(out_dir), thread_id, corpus, instruction, self)
        state, ctx, llm, trace = self._run_graph(corpus, instruction, thread_id, resume=resume)
        self.state_ = state
        self._ctx = ctx
        self._thread_id = thread_id
        self._session = None
        self.result_ = self._result(corpus, ctx, state, llm, thread_id, instruction, trace,
                                    time.perf_counter() - started)
        return self

    @classmethod
    def load(cls, out_dir: str | Path, model: Any = None, progress: bool = False) -> "ClusterAgent":
        """The agent of the finished run in `out_dir` (a `fit(..., out_dir=...)` or `clusteragent run`) with its
        final state and corpus, as `RefineSession.open` chats over it; `model` replaces the run's chat model."""
        from clusteragent.errors import ConfigError
        from clusteragent.graph import build_graph
        from clusteragent.store import RunStore
        from clusteragent.tools.corpus import load_corpus

        out = Path(out_dir)
        session = read_session(out)
        corpus = load_corpus(out / CORPUS_COPY, id_field="id")
        if corpus_digest(corpus) != session["corpus_sha256"]:
            raise ConfigError(f"{out / CORPUS_COPY} does not hold the texts of the run in {out}; was it edited?")
        config = {k: v for k, v in session["config"].items() if v is not None}
        agent = cls(model=model or session.get("model"), embedding_model=session.get("embedding_model"),
                    progress=progress, **config)
        agent._store, agent._corpus, agent._thread_id = RunStore(out), corpus, session["thread_id"]
        snapshot = build_graph().compile(checkpointer=agent._store.checkpointer).get_state(
            {"configurable": {"thread_id": session["thread_id"]}})
        if not snapshot.values.get("assignment_ref") or snapshot.next:
            raise ConfigError(f"{out}: the run there has not finished; finish it with `clusteragent run ... --resume`.")
        agent.state_ = snapshot.values
        return agent

    def _run_graph(self, corpus: Corpus, instruction: str, thread_id: str, resume: bool = False,
                   vectors: np.ndarray | None = None):
        """Run (or continue) the agent's graph on one thread of this agent's store."""
        from clusteragent.graph import build_graph
        from clusteragent.models import backend_info
        from clusteragent.structured import StructuredLLM, Usage
        from clusteragent.tools.embeddings import Embedder

        chat = self.chat_model()
        trace: list[dict] = []
        graph = build_graph().compile(checkpointer=self._store.checkpointer)
        config = {"configurable": {"thread_id": thread_id}, "recursion_limit": 200}
        start: dict | None = {"instruction": instruction}
        usage = Usage()
        if resume and self._store.has_thread(thread_id):
            snapshot = graph.get_state(config)
            usage = Usage.from_dict(snapshot.values.get("usage", {}))
            start = None  # continue from the last checkpoint
            self._say(f"resuming thread {thread_id} after {usage.calls} model call(s); "
                      f"next: {', '.join(snapshot.next) or 'nothing (the run had finished)'}")
        executor = self.executor()
        llm = StructuredLLM(chat, trace=trace, journal=self._store.journal, usage=usage, executor=executor)
        run_config = self.config.resolved_for(backend_info(chat)["provider"])
        ctx = RunContext(texts=corpus.texts, llm=llm, embedder=Embedder.from_settings(self.settings, executor),
                         config=run_config, progress=self._say, show_bars=self.progress, vectors=vectors,
                         arrays=self._store.arrays)
        state = graph.invoke(start, context=ctx, config=config)
        return state, ctx, llm, trace

    def chat(self, message: str) -> str:
        """Refine the fitted clustering by a message ("merge A and B", "why is text 17 in X?"); the reply.

        The conversation is a LangGraph thread on this agent's store (in memory, or `out_dir`'s SQLite
        file); `result_` is updated after every change, and "undo" reverses the last one.
        """
        from clusteragent.refine import RefineSession

        self._fitted()
        if self._session is None:
            self._session = RefineSession.from_agent(self)
        reply = self._session.chat(message)
        self.result_ = self._session.result()
        return reply.text

    def _result(self, corpus, ctx, state, llm, thread_id, instruction, trace, wall) -> ClusterResult:
        from clusteragent.models import backend_info
        from clusteragent.prompts import prompt_versions
        from clusteragent.tools.taxonomy import Taxonomy

        tax = Taxonomy.from_list(state["taxonomy"], state.get("next_id"))
        assignment = ctx.arrays[state["assignment_ref"]]
        confidence = ctx.arrays[state["assignment_ref"] + ".confidence"]
        run = {
            "instruction": instruction, "facet": state.get("facet"),
            "k_range": [state["k_min"], state["k_max"]], "n_texts": len(corpus), "source": corpus.source,
            "model": backend_info(self.chat_model()), "embedding_model": ctx.embedder.model_id,
            "embedding_precision": ctx.embedder.precision,
            "config": ctx.config.model_dump(), "seed": self.config.seed, "thread_id": thread_id,
            "stop_reason": state.get("stop_reason", ""), "notes": state.get("notes", []),
            "audit": state.get("audit", []), "decisions": state.get("trace", []),
            "labelled_by_model": len(state.get("labels", {})), "timings_s": state.get("timings", {}),
            "wall_s": round(wall, 2), **llm.usage.as_dict(), "replayed_calls": llm.journal.replayed if llm.journal else 0,
            "prompt_versions": prompt_versions(), "versions": _versions(),
        }
        return build_result(corpus, ctx.vectors, tax, assignment, confidence, run, trace)


def build_result(corpus: Corpus, vectors: np.ndarray, tax, assignment: np.ndarray, confidence: np.ndarray,
                 run: dict, trace: list | None = None) -> ClusterResult:
    """The result object for an assignment: clusters numbered by size, with representatives."""
    from clusteragent.tools.taxonomy import by_size

    order = by_size(assignment, tax)
    dense = {c.id: i for i, (c, _) in enumerate(order)}
    clusters = []
    for c, size in order:
        members = np.flatnonzero(assignment == c.id)
        cent = vectors[members].mean(axis=0)
        reps = members[np.argsort(-(vectors[members] @ cent))[:REPRESENTATIVES]]
        clusters.append({"cluster": dense[c.id], "name": c.name, "description": c.description,
                         "size": size, "representative_ids": [corpus.ids[r] for r in reps],
                         "representative_texts": [corpus.texts[r] for r in reps]})
    return ClusterResult(ids=list(corpus.ids), texts=list(corpus.texts),
                         cluster=np.array([dense[c] for c in assignment], dtype=np.int64),
                         confidence=np.asarray(confidence, dtype=np.float32), clusters=clusters,
                         run={**run, "k": len(clusters)}, trace=list(trace or []))


SESSION = "session.json"
CORPUS_COPY = "corpus.jsonl"


def corpus_digest(corpus: Corpus) -> str:
    import hashlib

    h = hashlib.sha256()
    for i, t in zip(corpus.ids, corpus.texts):
        h.update(repr(i).encode())
        h.update(b"\0")
        h.update(t.encode("utf-8", "surrogatepass"))
        h.update(b"\0")
    return h.hexdigest()


def _write_session(out: Path, thread_id: str, corpus: Corpus, instruction: str, agent: "ClusterAgent") -> None:
    """What a later process needs to resume or refine this run: the thread, the corpus, the options."""
    from clusteragent.store import atomic_write

    # The texts themselves, so that resume and refine work whatever happens to the source file.
    lines = "".join(json.dumps({"id": i, "text": t}, ensure_ascii=False) + "\n" for i, t in zip(corpus.ids, corpus.texts))
    atomic_write(out / CORPUS_COPY, lines.encode("utf-8"))
    session = {"thread_id": thread_id, "instruction": instruction, "corpus_sha256": corpus_digest(corpus),
               "n_texts": len(corpus), "source": corpus.source, **agent.source_options,
               "model": agent.model if isinstance(agent.model, str) or agent.model is None else None,
               "embedding_model": agent.settings.embedding_model, "config": agent.config.model_dump()}
    atomic_write(out / SESSION, json.dumps(session, ensure_ascii=False, indent=2).encode())


def read_session(out: Path) -> dict:
    from clusteragent.errors import ConfigError

    path = Path(out) / SESSION
    if not path.exists():
        raise ConfigError(f"{out}: no {SESSION} here; give the --out folder of a `clusteragent run`.")
    return json.loads(path.read_text(encoding="utf-8"))


def _resume_thread(out_dir, corpus: Corpus, instruction: str) -> str | None:
    """The thread to continue in out_dir, after checking that it was run on the same texts and instruction."""
    from clusteragent.errors import ConfigError

    if not (Path(out_dir) / SESSION).exists():
        return None  # nothing to resume: start the run, in this folder
    session = read_session(Path(out_dir))
    if session["corpus_sha256"] != corpus_digest(corpus):
        raise ConfigError(f"{out_dir}: the run there used other texts ({session['n_texts']} from "
                          f"{session['source']}); resume with the same input or choose another --out.")
    if session["instruction"] != instruction:
        raise ConfigError(f"{out_dir}: the run there has the instruction {session['instruction']!r}; resume with "
                          "the same instruction (or refine it afterwards with `clusteragent refine`).")
    return session["thread_id"]


def _clear_run_files(out: Path) -> None:
    """A fresh run in a folder starts from nothing: remove an earlier run's checkpoints, arrays and answers."""
    import shutil

    from clusteragent.store import ARRAYS, CALLS, CHECKPOINTS

    for name in (CALLS, SESSION, CORPUS_COPY, CHECKPOINTS, CHECKPOINTS + "-wal", CHECKPOINTS + "-shm"):
        (out / name).unlink(missing_ok=True)
    shutil.rmtree(out / ARRAYS, ignore_errors=True)
