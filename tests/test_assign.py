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
    assert "overwrite" in one_error_line(capsys)
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
              json.dumps({"clusters": [small["name"], large["name"]], "new_name": "Together"})]
    agent = ClusterAgent.load(out, model=ScriptedChatModel(script=script))
    agent.chat(f'Merge "{small["name"]}" and "{large["name"]}" into "Together".')
    agent.result_.write(out, with_trace=False)
    after = {c["cluster"]: c for c in json.loads((out / "clusters.json").read_text())}
    assert after[large["cluster"]]["name"] == "Together" and small["cluster"] not in after
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
