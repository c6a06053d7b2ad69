"""Grow a finished run by new texts (`assign --update`): the new texts join the run, with the new clusters
made of the new texts of kinds it has not seen, as one change of the run's chat thread.

The change is a chat turn like any other: it has a record in the turn history, and "undo" takes back its
new clusters (the new texts stay in the run, at the clusters they were assigned to, or as outliers). Old
clusters keep their ids; new ones take the next free ids. The run folder's corpus copy and session grow
with the texts (the session keeps the fitted corpus's digest, which `run --resume` checks its input
against), and its result files are written again over every text.
"""

from __future__ import annotations

import time

import numpy as np

from clusteragent.errors import ConfigError
from clusteragent.refine import build_refine_graph, chat_state, chat_thread, snapshot
from clusteragent.result import current_confidence
from clusteragent.run_folder import content_name, embeddings_name, grow_session, read_run_record
from clusteragent.tools import taxonomy as tx
from clusteragent.tools.corpus import Corpus, work_texts


def new_ids(agent, corpus: Corpus) -> Corpus:
    """`corpus` with ids the run does not have: texts read without ids (numbered 1..N) are numbered after
    the run's highest integer id; ids the user gave that the run already has are refused."""
    taken = set(agent.corpus_.ids)
    if corpus.id_field is None and corpus.ids == list(range(1, len(corpus) + 1)):
        start = max((i for i in taken if isinstance(i, int)), default=0) + 1
        return Corpus(list(range(start, start + len(corpus))), corpus.texts, corpus.source, corpus.extra,
                      corpus.text_field, corpus.id_field)
    clash = [i for i in corpus.ids if i in taken]
    if clash:
        raise ConfigError(f"{corpus.source}: ids {clash[:5]}{' ...' if len(clash) > 5 else ''} are already in the "
                          "run; texts that join a run need ids of their own.")
    return corpus


def grow_run(agent, corpus: Corpus, grown_vectors: np.ndarray, state: dict, before: np.ndarray,
             grown_after: np.ndarray, tax_after: tx.Taxonomy, tops: list[dict], confidence: np.ndarray,
             labels: dict[str, int], record: dict) -> None:
    """Add `corpus` to `agent`'s run, whose clustering as it stands is `state` (assign.current_clustering).
    `grown_vectors` are every text's embeddings, the run's then the new; `before` is the new texts' clusters
    without the new clusters of `tax_after`, `grown_after` every text's clusters with them, and `tops` the
    top level over those (hierarchy.reconcile); `confidence` the new texts'; `labels` the model's labels of
    new texts (run rows)."""
    arrays, folder = agent.store_.arrays, agent.store_.folder
    fitted = arrays[state["assignment_ref"]]
    old_confidence = current_confidence(arrays, state, agent.state_, fitted)
    confidence_all = np.concatenate([old_confidence, confidence]).astype(np.float32)
    refs = []
    for assignment in (np.concatenate([fitted, before]), grown_after):
        ref = content_name("assignment", assignment, confidence_all)
        arrays[ref], arrays[ref + ".confidence"] = assignment.astype(np.int64), confidence_all
        refs.append(ref)
    grown = Corpus(list(agent.corpus_.ids) + list(corpus.ids), list(agent.corpus_.texts) + list(corpus.texts),
                   agent.corpus_.source, [], agent.corpus_.text_field, agent.corpus_.id_field)
    if folder is not None:
        grow_session(folder, grown)
    chat = chat_state(agent.store_.checkpointer, agent.thread_id_)
    kept = snapshot(state)
    k_before = len(kept["taxonomy"])
    turn = {**record, "action": "update", "changed": True, "k_before": k_before, "k_after": len(tax_after.clusters),
            "moved": int((before != grown_after[len(fitted):]).sum()), "at": time.strftime("%Y-%m-%dT%H:%M:%S")}
    values = {**kept, **tax_after.as_state(), "assignment_ref": refs[1], "base_ref": refs[1], "tops": tops,
              "labels": {**(kept.get("labels") or {}), **labels},
              # earlier states cover fewer texts: undo goes back to just before the update, not further
              "undo": [{**kept, "assignment_ref": refs[0], "next_id": tax_after.next_id}],  # ids never reused
              "turns": list(chat.get("turns", [])) + [turn], "reply": record["message"]}
    graph = build_refine_graph().compile(checkpointer=agent.store_.checkpointer)
    graph.update_state({"configurable": {"thread_id": chat_thread(agent.thread_id_)}}, values, as_node="apply")
    arrays[embeddings_name(agent.embedder().model_id, work_texts(grown.texts))] = grown_vectors
    agent.corpus_, agent._vectors, agent._session = grown, grown_vectors, None
    result = agent.refine_session().result(run=read_run_record(folder) if folder is not None
                                                else (agent.result_.run if agent.result_ is not None else {}))
    agent.result_ = result
    if folder is not None:
        result.write(folder, with_trace=False)
