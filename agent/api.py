"""The public facade: `ClusterAgent(...).fit(texts, instruction=...)`, then `chat(...)` to refine."""

from __future__ import annotations

import contextlib
import sys
import time
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from clusteragent.errors import ConfigError, counted
from clusteragent.result import ClusterResult, build_result, versions
from clusteragent.run_folder import (
    RunStore,
    clean_stale_temps,
    clear_run_files,
    damaged,
    fitted_texts,
    make_run_folder,
    read_corpus,
    read_run_record,
    read_session,
    resume_thread,
    write_session,
)
from clusteragent.run_lock import RunLock
from clusteragent.settings import Settings
from clusteragent.state import AgentConfig, RunContext
from clusteragent.tools.corpus import Corpus, as_corpus, work_texts
from clusteragent.tools.taxonomy import Taxonomy


class ClusterAgent:
    """Cluster texts the way an instruction asks; the number of clusters is the agent's unless given.

    Args:
        model: chat model spec, "provider:model" (default: the embedded llama.cpp model), or a LangChain
            chat model object.
        executor: "local", or "ray" to embed in Ray tasks and, for a served model, send labelling
            requests from Ray tasks (`ray_address`: the cluster; None starts a local Ray instance).
        embedding_model: sentence-transformers name or path (default: the packaged all-MiniLM-L6-v2).
        k: exact number of clusters; or k_min/k_max: a range (default 2..20; by subject matter up to 50,
            at least 5 texts a cluster).
        max_model_calls: hard cap on chat model calls for a run.
        seed: seed for samples and classifiers; the same seed and model give the same result.
        progress: print stage messages and progress bars on stderr.
        model_options: options for `load_chat_model` (base_url, timeout, parallel, ...).
        **config: further AgentConfig fields (review_rounds, propose_batches, ...).

    Fitted attributes (after `fit` or `load`):
        result_: the ClusterResult; labels_ and clusters_ are its cluster ids and clusters.
        state_: the graph's final state. corpus_: the texts and ids. thread_id_: the run's LangGraph thread.
        store_: the run's arrays, checkpoints and answer journal. vectors_: the embeddings.
    """

    def __init__(self, model: Any = None, embedding_model: str | None = None, k: int | None = None,
                 k_min: int | None = None, k_max: int | None = None, max_model_calls: int = 150, seed: int = 0,
                 progress: bool = True, settings: Settings | None = None, model_options: dict | None = None,
                 executor: str = "local", ray_address: str | None = None, **config: Any):
        from pydantic import ValidationError

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
        self.source_options: dict = {}  # where the corpus came from (set by the CLI), for session.json
        self.executor_name, self.ray_address = executor, ray_address
        self.result_: ClusterResult | None = None
        self.state_: dict | None = None
        self.corpus_: Corpus | None = None
        self.thread_id_: str | None = None
        self.store_: RunStore | None = None
        self._vectors: np.ndarray | None = None
        self._chat = None
        self._executor = None
        self._session = None

    # sklearn-style fitted attributes
    @property
    def labels_(self) -> np.ndarray:
        return self._fitted().cluster

    @property
    def clusters_(self) -> list[dict]:
        return self._fitted().clusters

    @property
    def vectors_(self) -> np.ndarray:
        """The corpus's embeddings (from the fit, or as the run kept them, or computed again)."""
        from clusteragent.run_folder import embeddings_name, kept

        if self.corpus_ is None:
            raise RuntimeError("call fit() or load() first")
        if self._vectors is None:
            embedder, texts = self.embedder(), work_texts(self.corpus_.texts)
            self._vectors = kept(self.store_.arrays, embeddings_name(embedder.model_id, texts),
                                 lambda: embedder.embed(texts)[0])
        return self._vectors

    def _fitted(self) -> ClusterResult:
        if self.result_ is None:
            raise RuntimeError("call fit() first")
        return self.result_

    def chat_model(self):
        """The LangChain chat model this agent uses (loaded on first use)."""
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

    def embedder(self, **overrides: Any):
        """An Embedder with this agent's settings (`overrides`: settings fields to change)."""
        from clusteragent.tools.embeddings import Embedder

        return Embedder.from_settings(self.settings.model_copy(update=overrides), self.executor())

    def _say(self, message: str) -> None:
        if self.progress:
            print(f"clusteragent: {message}", file=sys.stderr, flush=True)

    def fit(self, texts: Sequence[str] | Corpus, instruction: str, ids: Sequence[Any] | None = None,
            out_dir: str | Path | None = None, resume: bool = False, force: bool = False) -> ClusterAgent:
        """Cluster `texts` by `instruction`; the result is in `result_` (and `labels_`, `clusters_`).

        Args:
            texts: the texts: a list of strings, a pandas DataFrame (its `text` column, ids from its `id`
                column or its index) or Series (ids from its index), or a Corpus from `load_corpus`.
            instruction: how to cluster them.
            ids: one id per text (default 1..N).
            out_dir: a folder for the run's checkpoints, arrays and recorded model answers (SQLite;
                durable, and what `resume` and `clusteragent refine` read). Default: kept in memory.
                A folder that holds other files is refused unless `force`; the folder is locked
                against other processes while the run writes there.
            resume: continue the run recorded in `out_dir` from its last checkpoint, replaying the
                model answers it already has instead of asking again.
            force: write the run's files into a folder that holds files of its own (only the run's
                files are written or removed there).
        """
        if not instruction or not instruction.strip():
            raise ConfigError("give an instruction that says how to cluster the texts.")
        corpus = as_corpus(texts, ids)
        self.config.for_instruction(instruction).k_range(len(corpus))  # a k larger than the corpus fails first
        if resume and out_dir is None:
            raise ConfigError("resume needs the run's folder (out_dir / --out).")
        if out_dir is None:
            return self._fit(corpus, instruction, None, resume)
        out = Path(out_dir)
        make_run_folder(out, (corpus.source,), force=force)
        with RunLock(out):
            clean_stale_temps(out)
            return self._fit(corpus, instruction, out, resume)

    def _fit(self, corpus: Corpus, instruction: str, out: Path | None, resume: bool) -> ClusterAgent:
        started = time.perf_counter()
        thread_id = resume_thread(out, corpus, instruction) if resume else None
        if not resume and out is not None:
            clear_run_files(out)
        self.store_, self.corpus_, self._vectors = RunStore(out), corpus, None
        self.thread_id_ = thread_id or str(uuid.uuid4())
        session = read_session(out) if thread_id is not None else {}
        grown = "fitted_texts" in session  # texts joined the run since (assign --update)
        if out is not None and not grown:  # a run that texts joined since keeps its session and corpus copy
            write_session(out, corpus, thread_id=self.thread_id_, instruction=instruction,
                          **self.source_options, model=self.model if isinstance(self.model, str) else None,
                          embedding_model=self.settings.embedding_model, config=self.config.model_dump())
        state, ctx, trace = self._run_graph(instruction, self.thread_id_, resume=resume)
        self.state_, self._vectors, self._session = state, ctx.vectors, None
        self.result_ = self._result(ctx, state, trace, time.perf_counter() - started)
        from clusteragent.refine import chat_thread

        if resume and self.store_.has_thread(chat_thread(self.thread_id_)):  # a finished run refined since
            if grown:
                self.corpus_, self._vectors = read_corpus(out, session), None
            self.result_ = self.refine_session().result(run=self.result_.run)
        return self

    @classmethod
    def load(cls, out_dir: str | Path, model: Any = None, progress: bool = False,
             model_options: dict | None = None) -> ClusterAgent:
        """The agent of the finished run in `out_dir` (a `fit(..., out_dir=...)` or `clusteragent run`) with
        its final state and corpus, ready to `chat`; `model` replaces the run's chat model. A damaged
        folder (unreadable session, checkpoints or arrays) is a one-line ConfigError, found before any change."""
        out = Path(out_dir)
        session = read_session(out)
        corpus = read_corpus(out, session)
        config = {k: v for k, v in session["config"].items() if v is not None}
        agent = cls(model=model or session.get("model"), embedding_model=session.get("embedding_model"),
                    progress=progress, model_options=model_options, **config)
        agent.store_, agent.corpus_, agent.thread_id_ = RunStore(out), corpus, session["thread_id"]
        agent.state_ = _finished_state(out, agent.store_, session["thread_id"], fitted_texts(session), len(corpus))
        agent.result_ = agent.refine_session().result(run=read_run_record(out))  # after any chat turn
        return agent

    def predict(self, texts: Sequence[str] | Corpus, ids: Sequence[Any] | None = None,
                max_model_calls: int | None = None, outliers: bool = False, max_outliers: float = 0.05,
                update: bool = False) -> ClusterResult:
        """Put new texts into the fitted run's clusters (as they stand after any chat turn): a classifier
        trained on the run's assignment places them, and the chat model labels the least certain within
        `max_model_calls` (default 0.05 per text, at most 10). The result's cluster ids are the run's.
        With `outliers`, texts unlike the run's go to cluster -1 (see assign.assign for `max_outliers`).
        With `update`, outliers that hang together become new clusters (new ids, named by the model) and
        the texts join the run, as one chat change that "undo" takes back (see run_update.py)."""
        from clusteragent.assign import assign

        self._fitted_state()
        corpus = as_corpus(texts, ids)
        folder = self.store_.folder
        with RunLock(folder, "assign") if folder is not None else contextlib.nullcontext():
            return assign(self, corpus, max_model_calls, outliers, max_outliers, update, progress=self._say,
                          show_bars=self.progress)

    def recluster(self, instruction: str, thread_id: str) -> tuple[dict, list[dict]]:
        """Run the whole graph again on the fitted corpus under a new instruction, on a new thread of this
        run's store (chat's "cluster by sentiment instead"); returns the final state and the model's decisions."""
        # The categories and the view given for the first instruction are not this one's (it may list its own).
        dropped = {"categories": None, "k": None} if self.config.categories else {}
        dropped.update({"view": None} if self.config.view else {})
        fresh = self.config.model_copy(update=dropped) if dropped else None
        state, _, trace = self._run_graph(instruction, thread_id, agent_config=fresh)
        return state, trace

    def _run_graph(self, instruction: str, thread_id: str, resume: bool = False,
                   agent_config: AgentConfig | None = None):
        """Run (or continue) the agent's graph on one thread of this agent's store (under `agent_config`, default
        the agent's)."""
        from clusteragent.graph import build_graph
        from clusteragent.instruction_language import in_english
        from clusteragent.models import backend_info
        from clusteragent.reading import reader_for
        from clusteragent.structured import StructuredLLM, Usage

        chat = self.chat_model()
        journal = self.store_.journal
        trace = journal.trace(thread_id, resume) if journal is not None else []
        graph = build_graph().compile(checkpointer=self.store_.checkpointer)
        config = {"configurable": {"thread_id": thread_id}, "recursion_limit": 200}
        start: dict | None = {"instruction": instruction}
        usage, read_as = Usage(), {}
        if resume and self.store_.has_thread(thread_id):
            snapshot = graph.get_state(config)
            usage = Usage.from_dict(snapshot.values.get("usage", {}))
            read_as = snapshot.values.get("read_as") or {}
            start = None  # continue from the last checkpoint
            self._say(f"resuming thread {thread_id} after {counted(usage.calls, 'model call')}; "
                      f"next: {', '.join(snapshot.next) or 'nothing (the run had finished)'}")
        llm = StructuredLLM(chat, trace=trace, journal=journal, usage=usage, executor=self.executor(),
                            max_calls=self.config.max_model_calls)
        if start is not None:  # the number or values an instruction in another language states are read in English
            start["read_as"] = read_as = in_english(llm, instruction)[1]
        embedder = self.embedder()
        ctx = RunContext(texts=work_texts(self.corpus_.texts), llm=llm, embedder=embedder,
                         config=(agent_config or self.config).resolved_for(backend_info(chat)["provider"])
                         .for_instruction(read_as.get("routed_as", instruction)),
                         progress=self._say,
                         show_bars=self.progress, vectors=self._vectors, arrays=self.store_.arrays,
                         reader=reader_for(chat, embedder))
        state = graph.invoke(start, context=ctx, config=config)
        return state, ctx, trace

    def refine_session(self):
        """The chat over this fitted run (see RefineSession); `chat` uses one."""
        from clusteragent.refine import RefineSession

        self._fitted_state()
        if self._session is None:
            self._session = RefineSession(self)
        return self._session

    def chat(self, message: str) -> str:
        """Refine the fitted clustering by a message ("merge A and B", "why is text 17 in X?"); the reply.

        The conversation is a LangGraph thread on this agent's store (in memory, or `out_dir`'s SQLite
        file); `result_` is updated after every change, and "undo" reverses the last one.
        """
        session = self.refine_session()
        reply = session.chat(message)
        self.result_ = session.result(run=self.result_.run if self.result_ is not None else None)
        return reply.text

    @property
    def map_(self) -> np.ndarray:
        """The texts' 2-D map (N x 2) that reports draw: of the model's reading where the clustering as it stands
        was made on it (by sentiment the embeddings scatter every cluster across the subjects), else of the
        embeddings; made once per view and kept in the run's store."""
        from clusteragent.errors import ModelError
        from clusteragent.reading import centred, kept_reading
        from clusteragent.run_folder import content_name, kept
        from clusteragent.tools.semantic_map import plane
        from clusteragent.views import clustered_view

        vectors = self.vectors_
        state = {**self.state_, **self.refine_session().state}
        if clustered_view(state) == "reading":
            with contextlib.suppress(ModelError):  # not kept (texts added since): the embeddings; no model is loaded
                vectors = centred(kept_reading(self.store_.arrays, None, state["instruction"],
                                               work_texts(self.corpus_.texts)))
        return kept(self.store_.arrays, content_name("plane", vectors, np.array([self.config.seed])),
                    lambda: plane(vectors, seed=self.config.seed))

    def report(self, path: str | Path) -> Path:
        """Write the HTML report of the clustering as it stands now (see ClusterResult.report)."""
        return self._fitted().report(path, coordinates=self.map_)

    def _fitted_state(self) -> dict:
        if self.state_ is None:
            raise RuntimeError("call fit() or load() first")
        return self.state_

    def _result(self, ctx: RunContext, state: dict, trace: list, wall: float) -> ClusterResult:
        from clusteragent.models import backend_info
        from clusteragent.prompts import prompt_versions

        corpus, llm = self.corpus_, ctx.llm
        assignment, confidence = ctx.assignment(state)
        run = {
            "instruction": state["instruction"], "facet": state.get("facet"),
            "k_range": [state["k_min"], state["k_max"]], "n_texts": len(corpus), "source": corpus.source,
            "text_field": corpus.text_field, "id_field": corpus.id_field,
            "model": backend_info(self.chat_model()), "embedding_model": ctx.embedder.model_id,
            "embedding_precision": ctx.embedder.precision,
            "config": ctx.config.model_dump(), "seed": self.config.seed, "thread_id": self.thread_id_,
            "stop_reason": state.get("stop_reason", ""), "notes": state.get("notes", []),
            "audit": state.get("audit", []), "decisions": state.get("trace", []),
            "labelled_by_model": len(state.get("labels", {})), "timings_s": state.get("timings", {}),
            "wall_s": round(wall, 2), **llm.usage.as_dict(), "replayed_calls": llm.journal.replayed if llm.journal else 0,
            "prompt_versions": prompt_versions(), "versions": versions(),
        }
        return build_result(corpus, self.vectors_, Taxonomy.from_state(state), assignment, confidence, run, trace,
                            state.get("tops"), state.get("texts_are", ""))


def _finished_state(out: Path, store: RunStore, thread_id: str, n_fitted: int, n_texts: int) -> dict:
    """The final state of the run in `out`, after checking that its checkpoints and the arrays they name
    (the run's, over the `n_fitted` texts it was fitted on, and its chat's latest, over all `n_texts`)
    can be read."""
    import sqlite3

    from clusteragent.graph import build_graph
    from clusteragent.refine import chat_state

    try:
        snapshot = build_graph().compile(checkpointer=store.checkpointer).get_state(
            {"configurable": {"thread_id": thread_id}})
        chat = chat_state(store.checkpointer, thread_id)
    except sqlite3.DatabaseError as e:
        raise damaged(out, f"checkpoints.sqlite: {e}") from None
    if not snapshot.values.get("assignment_ref") or snapshot.next:
        raise ConfigError(f"{out}: the run there has not finished; finish it with `clusteragent run ... --resume`.")
    fit_ref = snapshot.values["assignment_ref"]
    refs = [(fit_ref, n_fitted), (fit_ref + ".confidence", n_fitted)]
    refs += [(chat["assignment_ref"], n_texts)] if chat.get("assignment_ref") else []
    for ref, n in refs:
        try:
            rows = store.arrays[ref].shape[0]
        except KeyError:
            raise damaged(out, f"arrays/{ref}.npy is missing") from None
        except (OSError, ValueError, EOFError) as e:
            raise damaged(out, f"arrays/{ref}.npy cannot be read: {e}") from None
        if rows != n:
            raise damaged(out, f"arrays/{ref}.npy has {rows} rows for {n} texts")
    return snapshot.values
