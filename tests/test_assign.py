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

FITTED = [{"id": f"f{i}-{w}", "text": f"a note about the {w} number {i}"} for i in range(8) for w in WORDS]
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
