"""Assigning new texts to a finished run: `ClusterAgent.load(OUT).predict(...)` and `clusteragent assign`."""

import json
from pathlib import Path

import numpy as np
import pytest
from fakes import FakeOpenAIServer, ScriptedChatModel
from test_reliability import WORDS, one_error_line, run_args, write_jsonl

from clusteragent import ClusterAgent
from clusteragent.cli import main

pytestmark = pytest.mark.local_server

FITTED = [{"id": f"f{i}-{w}", "text": f"a note about the {w} number {i}"} for i in range(0, 16, 2) for w in WORDS]
NEW = [{"id": f"n{i}-{w}", "text": f"another short note on the {w}, item {i}"} for i in range(10) for w in WORDS]


@pytest.fixture(scope="module")
def fitted_run(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("assign")
    with FakeOpenAIServer() as server, pytest.MonkeyPatch.context() as mp:
        mp.setenv("OPENAI_BASE_URL", server.url)
        assert main(run_args(write_jsonl(tmp / "fit.jsonl", FITTED), tmp / "out")) == 0
    return tmp / "out"


def rows(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_new_texts_go_where_the_runs_texts_of_the_same_kind_went(fitted_run):
    fitted = {r["id"]: r["cluster"] for r in rows(fitted_run / "assignments.jsonl")}
    with FakeOpenAIServer() as server, pytest.MonkeyPatch.context() as mp:
        mp.setenv("OPENAI_BASE_URL", server.url)
        result = ClusterAgent.load(fitted_run).predict([r["text"] for r in NEW], ids=[r["id"] for r in NEW])
        assert server.requests <= 0.05 * len(NEW)
    assert result.ids == [r["id"] for r in NEW]
    clusters = json.loads((fitted_run / "clusters.json").read_text())
    assert [c["name"] for c in result.clusters] == [c["name"] for c in clusters]  # the run's numbers and names
    # where the fitted texts of a word all went to one cluster, the new texts of that word follow
    agree = total = 0
    for w in WORDS:
        old = {c for i, c in fitted.items() if i.endswith(f"-{w}")}
        if len(old) == 1:
            new = [int(c) for i, c in zip(result.ids, result.cluster) if i.endswith(f"-{w}")]
            agree += sum(c == next(iter(old)) for c in new)
            total += len(new)
    assert total and agree / total >= 0.8
    assert result.run["model_calls"] <= 0.05 * len(NEW)


def enums(node) -> list[list]:
    """Every enum list anywhere in a JSON schema."""
    if isinstance(node, dict):
        return ([node["enum"]] if "enum" in node else []) + [e for v in node.values() for e in enums(v)]
    return [e for v in node for e in enums(v)] if isinstance(node, list) else []


def test_the_model_chooses_among_the_classifiers_likeliest_clusters(fitted_run):
    from clusteragent.assign import CHOICES

    names = [c["name"] for c in json.loads((fitted_run / "clusters.json").read_text())]
    with FakeOpenAIServer() as server, pytest.MonkeyPatch.context() as mp:
        mp.setenv("OPENAI_BASE_URL", server.url)
        result = ClusterAgent.load(fitted_run).predict([r["text"] for r in NEW], max_model_calls=4)
        bodies = list(server.bodies)
    assert result.run["model_calls"] == len(bodies) == 4
    for body in bodies:
        allowed = enums(body["response_format"])[0]
        system, user = (m["content"] for m in body["messages"])
        assert len(allowed) == min(CHOICES, len(names)) and set(allowed) <= set(names)
        assert all(f"- {n}:" in user for n in allowed) and not any(f"- {n}:" in system for n in names)


def test_assign_on_the_command_line_writes_every_id_once(fitted_run, tmp_path, capsys):
    new = write_jsonl(tmp_path / "new.jsonl", NEW)
    with FakeOpenAIServer() as server, pytest.MonkeyPatch.context() as mp:
        mp.setenv("OPENAI_BASE_URL", server.url)
        assert main(["assign", str(fitted_run), str(new), "--id-field", "id", "--out", str(tmp_path / "a.jsonl"),
                     "--max-model-calls", "3", "--quiet"]) == 0
        assert server.requests <= 3
        assert main(["assign", str(fitted_run), str(new), "--out", str(tmp_path / "a.csv"), "--quiet",
                     "--max-model-calls", "0"]) == 0
    assigned = rows(tmp_path / "a.jsonl")
    assert [r["id"] for r in assigned] == [r["id"] for r in NEW]
    k = len(json.loads((fitted_run / "clusters.json").read_text()))
    assert all(0 <= r["cluster"] < k and 0 <= r["confidence"] <= 1 for r in assigned)
    import pandas as pd

    assert len(pd.read_csv(tmp_path / "a.csv")) == len(NEW)
    assert "texts into" in capsys.readouterr().out


def test_assign_refuses_to_write_over_the_run(fitted_run, tmp_path, capsys):
    new = write_jsonl(tmp_path / "new.jsonl", NEW)
    assert main(["assign", str(fitted_run), str(new), "--out", str(fitted_run / "assignments.jsonl")]) == 2
    assert "one of the run's own files" in one_error_line(capsys)
    assert main(["assign", str(fitted_run), str(new), "--out", str(new)]) == 2
    assert "is the input" in one_error_line(capsys)
    assert main(["assign", str(fitted_run), str(new), "--out", str(tmp_path / "a.txt")]) == 2
    assert ".jsonl" in one_error_line(capsys)


def test_predict_follows_the_runs_refinements(fitted_run, tmp_path):
    import shutil

    out = Path(shutil.copytree(fitted_run, tmp_path / "copy"))
    old = json.loads((out / "clusters.json").read_text())[0]["name"]
    script = [json.dumps({"action": "rename"}), json.dumps({"cluster": old, "new_name": "Renamed", "description": ""})]
    agent = ClusterAgent.load(out, model=ScriptedChatModel(script=script))
    agent.chat(f'Rename "{old}" to "Renamed".')
    result = ClusterAgent.load(out, model=ScriptedChatModel(script=[])).predict(["a note about the rain"],
                                                                                max_model_calls=0)
    assert "Renamed" in result.names and old not in result.names
    assert np.isfinite(result.confidence).all()


UNRELATED = ["SELECT name, total FROM invoices WHERE paid = 0 ORDER BY total DESC;",
             "Der Zug nach Berlin fährt heute um acht Uhr vom Hauptbahnhof ab.",
             "for (int i = 0; i < n; ++i) { sum += a[i] * b[i]; }",
             "Les résultats du second tour seront publiés dimanche soir.",
             "Mitochondrial DNA is inherited almost exclusively from the mother.",
             "0x7f3a 0x0000 0xffff 0x12ab 0x9c0d 0x44ee",
             "El museo abre de martes a domingo, de diez a seis.",
             "Photosynthesis converts light energy into chemical energy stored in glucose.",
             "import numpy as np; x = np.linspace(0, 1, 101)",
             "Il pleut depuis trois jours sur toute la Bretagne.",
             "The quarterly dividend was raised to 42 cents per share.",
             "∫ x² dx = x³ / 3 + C"]


def test_outliers_catch_unrelated_texts_and_few_typical_ones(fitted_run):
    typical = [f"a note about the {w} number {i}" for i in range(1, 16, 2) for w in WORDS]  # 80, drawn as the run's
    texts = typical + UNRELATED[:9]  # unrelated at 10%
    with FakeOpenAIServer() as server, pytest.MonkeyPatch.context() as mp:
        mp.setenv("OPENAI_BASE_URL", server.url)
        result = ClusterAgent.load(fitted_run).predict(texts, max_model_calls=0, outliers=True, max_outliers=0.05)
    flagged = result.cluster == -1
    assert flagged[len(typical):].mean() >= 0.7
    assert flagged[:len(typical)].mean() <= 0.05
    names = result.cluster_names()
    assert all(n == "Outliers" for n, f in zip(names, flagged) if f) and result.clusters[-1]["cluster"] == -1
    assert result.run["outliers"] == int(flagged.sum())


def test_without_outliers_every_text_has_a_real_cluster(fitted_run):
    with FakeOpenAIServer() as server, pytest.MonkeyPatch.context() as mp:
        mp.setenv("OPENAI_BASE_URL", server.url)
        result = ClusterAgent.load(fitted_run).predict(UNRELATED, max_model_calls=0)
    assert (result.cluster >= 0).all() and result.run["outliers"] is None


def test_the_model_decides_near_the_line_within_the_budget(fitted_run, tmp_path, capsys):
    path = write_jsonl(tmp_path / "new.jsonl", [{"id": i, "text": t} for i, t in enumerate(UNRELATED * 3)])
    with FakeOpenAIServer() as server, pytest.MonkeyPatch.context() as mp:
        mp.setenv("OPENAI_BASE_URL", server.url)
        assert main(["assign", str(fitted_run), str(path), "--out", str(tmp_path / "a.jsonl"), "--outliers",
                     "--max-model-calls", "6", "--quiet"]) == 0
        assert server.requests <= 6
        checks = [b for b in server.bodies if "None of these" in json.dumps(b.get("response_format"))]
        assert 1 <= len(checks) <= 3  # half the budget goes to texts near the line, with "None of these" offered
    printed = capsys.readouterr()
    assert "fit no cluster" in printed.err  # most of them are outliers: the note says so


# ---------------------------------------------------------------- stable cluster ids

def test_merge_keeps_the_larger_clusters_id_and_remembers_the_other():
    from clusteragent.tools import taxonomy as tx

    tax = tx.Taxonomy.from_specs([("Small", "a"), ("Large", "b"), ("Other", "c")])
    assignment = np.array([0, 0, 1, 1, 1, 1, 2, 2])
    out, merged, entry = tx.merge(assignment, tax, [0, 1])
    assert entry["into"] == 1 and sorted(set(out.tolist())) == [1, 2]
    assert merged.by_id(1).merged_ids == (0,) and merged.by_id(1).name == "Small"  # the name asked for first
    out2, again, _ = tx.merge(out, merged, [2, 1])
    assert again.ids == [1] and again.by_id(1).merged_ids == (0, 2)


def test_split_gives_the_id_to_its_largest_part():
    from clusteragent.tools import taxonomy as tx

    tax = tx.Taxonomy.from_specs([("A", ""), ("B", "")])
    assignment = np.array([0, 0, 0, 0, 0, 1, 1])
    members = np.arange(5)
    out, split, entry = tx.split(assignment, tax, 0, members, np.array([1, 0, 1, 1, 0]), [("A1", ""), ("A2", "")])
    assert entry["into"] == [2, 0] and (out[[0, 2, 3]] == 0).all() and (out[[1, 4]] == 2).all()
    assert sorted(split.ids) == [0, 1, 2] and split.by_id(0).name == "A2"


def test_ids_stay_put_through_a_chat_merge_a_resume_and_an_assignment(fitted_run, tmp_path):
    import shutil

    out = Path(shutil.copytree(fitted_run, tmp_path / "copy"))
    before = json.loads((out / "clusters.json").read_text())
    assert len(before) >= 2
    small, large = before[-1], before[0]
    script = [json.dumps({"action": "merge"}),
              json.dumps({"clusters": [small["name"], large["name"]], "new_name": "Together"}),
              json.dumps({"name": "Both kinds", "description": "Texts of either kind.", "second_name": "Either"})]
    agent = ClusterAgent.load(out, model=ScriptedChatModel(script=script))
    agent.chat(f'Merge "{small["name"]}" and "{large["name"]}" into "Together".')
    agent.result_.write(out, with_trace=False)
    after = {c["cluster"]: c for c in json.loads((out / "clusters.json").read_text())}
    assert after[large["cluster"]]["name"] == "Together" and small["cluster"] not in after  # the user's name wins
    assert after[large["cluster"]]["description"] == "Texts of either kind."  # the model's rule covers both
    assert after[large["cluster"]]["merged_ids"] == [small["cluster"]]
    untouched = {c["cluster"]: c["name"] for c in before if c["cluster"] not in (small["cluster"], large["cluster"])}
    assert all(after[i]["name"] == name for i, name in untouched.items())
    with FakeOpenAIServer() as server, pytest.MonkeyPatch.context() as mp:
        mp.setenv("OPENAI_BASE_URL", server.url)
        merged_clusters = (out / "clusters.json").read_text()
        assert main(run_args(fitted_run.parent / "fit.jsonl", out, "--resume")) == 0
        assert (out / "clusters.json").read_text() == merged_clusters
        result = ClusterAgent.load(out).predict([r["text"] for r in NEW[:20]], max_model_calls=0)
    assert set(result.cluster.tolist()) <= set(after)


def seeded_groups(n_groups: int = 4, per_group: int = 40, lone: int = 6, dim: int = 32, seed: int = 0):
    """Unit vectors in tight groups around random centres, then `lone` vectors each in a direction of its own."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(n_groups, dim))
    grouped = np.repeat(centres, per_group, axis=0) + 0.3 * rng.normal(size=(n_groups * per_group, dim))
    vectors = np.vstack([grouped, rng.normal(size=(lone, dim))]).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    return vectors, np.repeat(np.arange(n_groups), per_group)


def outlier_context(vectors, llm=None):
    from clusteragent.state import AgentConfig, RunContext

    return RunContext(texts=[f"text {i}" for i in range(len(vectors))], llm=llm, embedder=None,
                      config=AgentConfig(), vectors=vectors)


def test_a_runs_lone_texts_are_its_outliers_and_its_groups_stay_whole():
    from clusteragent.outliers import in_corpus
    from clusteragent.tools.taxonomy import Taxonomy

    vectors, groups = seeded_groups()
    tax = Taxonomy.from_specs([(f"group {g}", "") for g in range(4)])
    assignment = np.r_[groups, np.zeros(6, dtype=np.int64)]  # the lone texts were put in the nearest cluster
    out, record = in_corpus(outlier_context(vectors), "Group by topic.", tax, assignment, share=0.05, calls=0)
    assert (out[-6:] == -1).all() and (out[:-6] == groups).all()
    assert record["outliers"] == 6 and record["checked_by_model"] == 0
    # the share bounds them: at 2% only the 3 least typical go
    out, _ = in_corpus(outlier_context(vectors), "Group by topic.", tax, assignment, share=0.02, calls=0)
    assert (out == -1).sum() == int(0.02 * len(vectors))


def test_the_model_decides_the_run_texts_near_the_fence():
    from clusteragent.outliers import in_corpus
    from clusteragent.structured import StructuredLLM
    from clusteragent.tools.taxonomy import Taxonomy

    vectors, groups = seeded_groups(lone=0)  # no lone text: every candidate is above the fence, so the model decides
    tax = Taxonomy.from_specs([(f"group {g}", "") for g in range(4)])
    model = ScriptedChatModel(script=[json.dumps({"cluster": "None of these"}), json.dumps({"cluster": "group 2"})])
    out, record = in_corpus(outlier_context(vectors, StructuredLLM(model)), "Group by topic.", tax, groups.copy(),
                            share=0.05, calls=2)
    assert record["below_fence"] == 0 and record["checked_by_model"] == 2 and len(model.calls) == 2
    assert (out == -1).sum() == 1 and (out != groups).sum() <= 2  # one outlier, one moved to where the model put it
    offered = json.dumps(model.calls[0]["kwargs"])
    assert "None of these" in offered


def test_run_with_outliers_writes_the_outlier_group(tmp_path):
    records = FITTED + [{"id": f"u{i}", "text": t} for i, t in enumerate(UNRELATED[:4])]
    with FakeOpenAIServer() as server, pytest.MonkeyPatch.context() as mp:
        mp.setenv("OPENAI_BASE_URL", server.url)
        assert main(run_args(write_jsonl(tmp_path / "fit.jsonl", records), tmp_path / "out", "--outliers",
                             "--max-outliers", "0.1")) == 0
        plain = ClusterAgent.load(tmp_path / "out").predict(UNRELATED[4:], max_model_calls=0)
    assigned = {r["id"]: r for r in rows(tmp_path / "out" / "assignments.jsonl")}
    assert len(assigned) == len(records)
    flagged = [i for i, r in assigned.items() if r["cluster"] == -1]
    assert sum(i.startswith("u") for i in flagged) >= 3 and len(flagged) <= 0.1 * len(records)
    assert all(assigned[i]["cluster_name"] == "Outliers" for i in flagged)
    clusters = json.loads((tmp_path / "out" / "clusters.json").read_text())
    assert clusters[-1]["cluster"] == -1 and clusters[-1]["size"] == len(flagged)
    shown = [i for i in assigned if i in flagged][:3]  # the report shows the outliers by their first texts
    assert clusters[-1]["representative_ids"] == shown and clusters[-1]["representative_texts"] == [
        next(r["text"] for r in records if r["id"] == i) for i in shown]
    run = json.loads((tmp_path / "out" / "run.json").read_text())
    assert run["k"] == len(clusters) - 1 and any("outlier group" in n for n in run["notes"])
    assert (plain.cluster >= 0).all()  # the run's outliers teach the classifier no cluster


NEW_TOPIC = [f"refund request for invoice {i}: the hotel charged my card twice for one night" for i in range(8)]


def test_update_adds_clusters_for_new_kinds_of_text_and_keeps_every_id(fitted_run, tmp_path, capsys):
    import shutil

    out = Path(shutil.copytree(fitted_run, tmp_path / "run"))
    before = rows(out / "assignments.jsonl")
    old_clusters = json.loads((out / "clusters.json").read_text())
    old_ids = {c["cluster"] for c in old_clusters}
    new = [{"id": f"new{i}", "text": t} for i, t in enumerate(NEW[:30:3] + NEW_TOPIC + UNRELATED[:2])]
    path = write_jsonl(tmp_path / "new.jsonl", new)
    with FakeOpenAIServer() as server, pytest.MonkeyPatch.context() as mp:
        mp.setenv("OPENAI_BASE_URL", server.url)
        assert main(["assign", str(out), str(path), "--id-field", "id", "--out", str(tmp_path / "a.jsonl"),
                     "--update", "--max-model-calls", "0", "--quiet"]) == 0
    assert "new cluster" in capsys.readouterr().err.lower()
    assigned = {r["id"]: r["cluster"] for r in rows(tmp_path / "a.jsonl")}
    topic = {assigned[f"new{i}"] for i in range(10, 18)}
    assert len(topic) == 1 and topic.isdisjoint(old_ids) and min(topic) > max(old_ids)  # one new cluster, a new id
    # the run grew: every old text keeps its cluster id, the new texts are in it, and clusters.json lists the new one
    after = rows(out / "assignments.jsonl")
    assert after[:len(before)] == before and [r["id"] for r in after[len(before):]] == [r["id"] for r in new]
    clusters = {c["cluster"]: c for c in json.loads((out / "clusters.json").read_text())}
    assert topic <= set(clusters) and clusters[min(topic)]["size"] == 8
    assert set(clusters[min(topic)]["representative_texts"]) <= set(NEW_TOPIC)
    # undo takes the new cluster back and keeps the texts; ids are not reused by a later split
    script = [json.dumps({"action": "undo"}), json.dumps({})]
    agent = ClusterAgent.load(out, model=ScriptedChatModel(script=script))
    agent.chat("undo")
    assert len(agent.result_.ids) == len(before) + len(new)
    assert not topic & set(agent.result_.cluster.tolist())
    assert agent.refine_session().state["next_id"] > max(topic)


def test_a_small_update_still_has_the_calls_a_new_cluster_needs(fitted_run, tmp_path):
    """0.05 calls a text gives a batch of 12 none; an update keeps a few for a new group's check and name."""
    import shutil

    from clusteragent.assign import MIN_UPDATE_CALLS

    out = Path(shutil.copytree(fitted_run, tmp_path / "run"))
    with FakeOpenAIServer() as server, pytest.MonkeyPatch.context() as mp:
        mp.setenv("OPENAI_BASE_URL", server.url)
        assert ClusterAgent.load(out).predict(NEW_TOPIC[:3]).run["model_budget"] == 0
        assert ClusterAgent.load(out).predict(NEW_TOPIC[:3], update=True).run["model_budget"] == MIN_UPDATE_CALLS


def test_an_updates_new_group_is_named_before_the_outlier_line_spends_the_budget(fitted_run, tmp_path):
    """The new group's name comes first; the texts nearest the outlier line, which took half the budget
    first, get half of what the groups leave."""
    import shutil

    out = Path(shutil.copytree(fitted_run, tmp_path / "run"))
    model = checking_model("no", {"name": "Hotel refunds", "description": "Requests for a refund of a hotel charge."})
    result = ClusterAgent.load(out, model=model).predict(NEW_TOPIC + [r["text"] for r in NEW[:30:3]], update=True,
                                                         max_model_calls=4)
    (added,) = result.run["new_clusters"]
    entry = next(c for c in result.clusters if c["cluster"] == added)
    assert entry["name"] == "Hotel refunds" and entry["named_by"] == "model"
    steps = [t["step"] for t in result.trace if t.get("step")]
    assert steps[0] == "name_new_cluster" and "outlier_check" in steps, steps


def test_an_updates_reply_says_where_each_new_cluster_stands_in_a_two_level_run():
    from clusteragent.assign import _update_reply
    from clusteragent.tools.taxonomy import Taxonomy

    tax = Taxonomy.from_specs([("Rain", ""), ("Snow", ""), ("Pasta", "")])
    grown, near = tax.added("Hail")
    grown, far = grown.added("Hotel refunds")
    tops = [{"id": 7, "name": "Weather", "description": "", "children": [0, 1, near]},
            {"id": 8, "name": "Pasta", "description": "", "children": [2]}]
    reply = _update_reply(grown, tax, {100: near, 101: far}, np.zeros(3, bool), tops)
    assert f'{near} "Hail" (under "Weather")' in reply and f'{far} "Hotel refunds" (at the top level)' in reply
    assert "top level" not in _update_reply(grown, tax, {100: near, 101: far}, np.zeros(3, bool), [])  # one level
    assert reply.startswith("New clusters ") and reply.endswith("from 2 new texts; 0 new texts stay outliers.")
    one, _ = tax.added("Hail")
    assert _update_reply(one, tax, {100: near}, np.array([True, False]), []) == \
        f'New cluster {near} "Hail" from 1 new text; 1 new text stays an outlier.'
    assert _update_reply(tax, tax, {}, np.ones(2, bool), []) == "No new cluster: 2 new texts stay outliers."


def test_update_refuses_ids_the_run_has(fitted_run, tmp_path, capsys):
    path = write_jsonl(tmp_path / "new.jsonl", [{"id": FITTED[0]["id"], "text": "a new text"}])
    assert main(["assign", str(fitted_run), str(path), "--id-field", "id", "--out", str(tmp_path / "a.jsonl"),
                 "--update"]) == 2
    assert "already in the run" in one_error_line(capsys)


def test_after_an_update_assign_and_resume_keep_the_new_clusters(fitted_run, tmp_path):
    import shutil

    out = Path(shutil.copytree(fitted_run, tmp_path / "run"))
    with FakeOpenAIServer() as server, pytest.MonkeyPatch.context() as mp:
        mp.setenv("OPENAI_BASE_URL", server.url)
        update = ClusterAgent.load(out).predict(NEW_TOPIC + UNRELATED[:2], update=True, max_model_calls=0)
        added = set(update.run["new_clusters"])
        assert len(added) == 1
        kept = sorted(len(np.load(p)) for p in (out / "arrays").glob("embeddings-*.npy"))
        assert kept == [len(FITTED), len(FITTED) + 10]  # the grown run's embeddings are kept beside the first
        # a later text of the new kind goes to the new cluster; the texts joined the run under ids after its own
        later = ClusterAgent.load(out).predict(["refund request for invoice 99: the hotel charged my card twice"],
                                               max_model_calls=0)
        assert set(later.cluster.tolist()) == added
        assert update.ids == list(range(1, 11))  # texts without ids are numbered after the run's integer ids (none)
        grown = rows(out / "assignments.jsonl")
        assert main(run_args(write_jsonl(tmp_path / "fit.jsonl", FITTED), out, "--resume")) == 0
    assert rows(out / "assignments.jsonl") == grown  # resume of the finished run keeps the grown result and its ids
    assert json.loads((out / "session.json").read_text())["n_texts"] == len(FITTED) + 10


def checking_model(fits: str, name: dict | None = None, shown: list | None = None):
    """A scripted model that answers a new group's check with `fits` (and keeps the check's prompt in `shown`)
    and names a group `name`."""
    def answer(messages, kwargs):
        if "fits" in json.dumps(kwargs):
            (shown if shown is not None else []).append(json.dumps([m.content for m in messages]))
            return json.dumps({"fits": fits})
        return json.dumps(name or {"name": "Third kind", "description": "."})
    return ScriptedChatModel(script=answer)


def new_kind():
    """Three seeded groups, of which the run knows two; the third's texts were placed in the second."""
    from clusteragent.tools.taxonomy import Taxonomy

    vectors, groups = seeded_groups(n_groups=3, per_group=8, lone=0)
    placed_in = np.where(groups == 2, 1, groups)
    return vectors, np.flatnonzero(groups == 2), Taxonomy.from_specs([("group 0", ""), ("group 1", "")]), placed_in


@pytest.mark.parametrize("fits,made", [("no", True), ("yes", False)])
def test_a_group_of_unsure_texts_is_new_only_when_the_model_says_it_does_not_fit_where_it_was_placed(fits, made):
    from clusteragent.outliers import new_clusters
    from clusteragent.structured import StructuredLLM

    vectors, rows, tax, placed_in = new_kind()
    shown = []
    grown, placed = new_clusters(outlier_context(vectors, StructuredLLM(checking_model(fits, shown=shown))),
                                 "Group by topic.", "topic", tax, rows, np.zeros(len(rows), bool), 0.5, placed_in)
    assert (len(grown.clusters) == 3) is made and (set(placed) == set(rows.tolist())) is made
    assert len(shown) == 1 and "group 1" in shown[0] and "group 0" not in shown[0]  # the cluster they went to
    # without a model, a group counts as new when most of its texts are outliers
    no_model = outlier_context(vectors)
    assert new_clusters(no_model, "Group by topic.", "topic", tax, rows, np.zeros(len(rows), bool), 0.5, placed_in)[1] == {}
    assert len(new_clusters(no_model, "Group by topic.", "topic", tax, rows, np.ones(len(rows), bool), 0.5,
                            placed_in)[1]) == 8


@pytest.mark.parametrize("fits,made", [("no", True), ("yes", False)])
def test_a_region_of_new_texts_is_new_only_when_the_model_says_it_does_not_fit_where_it_was_placed(fits, made):
    """A region (new texts where the run's hardly reach) needs no outliers; the model's check decides it, and
    without the model a region is left to the outlier rule."""
    from clusteragent.outliers import new_clusters
    from clusteragent.structured import StructuredLLM

    vectors, region, tax, placed_in = new_kind()
    no_rows = np.array([], dtype=np.int64)
    grown, placed = new_clusters(outlier_context(vectors, StructuredLLM(checking_model(fits))), "Group by topic.",
                                 "topic", tax, no_rows, np.zeros(0, bool), 0.5, placed_in, regions=[region])
    assert (len(grown.clusters) == 3) is made and (set(placed) == set(region.tolist())) is made
    no_model = outlier_context(vectors)
    assert new_clusters(no_model, "Group by topic.", "topic", tax, no_rows, np.zeros(0, bool), 0.5, placed_in,
                        regions=[region])[1] == {}
    outlying = new_clusters(no_model, "Group by topic.", "topic", tax, region, np.ones(len(region), bool), 0.5,
                            placed_in, regions=[region])[1]
    assert set(outlying) == set(region.tolist())  # as outliers they still make a group of their own


@pytest.mark.parametrize("as_region", [True, False])
def test_a_group_of_mostly_outliers_is_new_without_the_models_check(as_region):
    """Texts far from every run text that hang together are a new kind whatever the model says of them: asked,
    it said gardening questions fit "Todo list management"."""
    from clusteragent.outliers import new_clusters
    from clusteragent.structured import StructuredLLM

    vectors, rows, tax, placed_in = new_kind()
    shown = []
    ctx = outlier_context(vectors, StructuredLLM(checking_model("yes", shown=shown)))
    outlier = np.arange(len(rows)) < 5  # 5 of the 8 are outliers
    grown, placed = new_clusters(ctx, "Group by topic.", "topic", tax, rows, outlier, 0.5, placed_in,
                                 regions=[rows] if as_region else [])
    assert len(grown.clusters) == 3 and set(placed) == set(rows.tolist()) and shown == []
    assert grown.clusters[-1].name == "Third kind"  # named by the model with the call the check did not take


@pytest.mark.parametrize("top_names,named", [((), "Travel"), (("Leisure",), "Hotel refunds"),
                                              (("Travel",), "Hotel refunds")])
def test_a_new_cluster_under_a_top_level_takes_the_narrower_name_and_never_a_tops(top_names, named):
    """Under a top level a run's clusters take the model's narrower name, and a new one does too; a top's name
    is as taken as a cluster's."""
    from clusteragent.outliers import new_clusters
    from clusteragent.structured import StructuredLLM

    vectors, rows, tax, placed_in = new_kind()
    model = checking_model("no", {"name": "Travel", "description": "Hotel stays charged twice.",
                                  "second_name": "Hotel refunds"})
    grown, _ = new_clusters(outlier_context(vectors, StructuredLLM(model)), "Group by topic.", "topic", tax, rows,
                            np.zeros(len(rows), bool), 0.5, placed_in, top_names=top_names)
    assert grown.clusters[-1].name == named


def test_a_loaded_run_embeds_only_the_new_texts(fitted_run, monkeypatch):
    """The run keeps its texts' embeddings in its folder: a later process embeds none of them again, whatever
    the embedding cache holds (with the cache off or cleared, a later process embedded the whole corpus again)."""
    from clusteragent.tools.embeddings import Embedder

    kept = list((fitted_run / "arrays").glob("embeddings-*.npy"))
    assert len(kept) == 1 and np.load(kept[0]).shape[0] == len(FITTED)
    embedded, original = [], Embedder.embed

    def counted(self, texts):
        embedded.append(len(texts))
        return original(self, texts)

    monkeypatch.setattr(Embedder, "embed", counted)
    with FakeOpenAIServer() as server, pytest.MonkeyPatch.context() as mp:
        mp.setenv("OPENAI_BASE_URL", server.url)
        agent = ClusterAgent.load(fitted_run)
        agent.predict([r["text"] for r in NEW], ids=[r["id"] for r in NEW])
        agent.report(fitted_run.parent / "report.html")
    assert embedded == [len(NEW)]


def test_kept_embeddings_that_cannot_be_read_are_computed_again(fitted_run, tmp_path):
    """They hold nothing the texts do not: a file cut short is replaced, not a reason to stop."""
    import shutil

    out = Path(shutil.copytree(fitted_run, tmp_path / "run"))
    [kept] = (out / "arrays").glob("embeddings-*.npy")
    whole = np.load(kept)
    kept.write_bytes(kept.read_bytes()[:200])
    with FakeOpenAIServer() as server, pytest.MonkeyPatch.context() as mp:
        mp.setenv("OPENAI_BASE_URL", server.url)
        assert np.allclose(ClusterAgent.load(out).vectors_, whole, atol=1e-6)
    assert np.allclose(np.load(kept), whole, atol=1e-6)
