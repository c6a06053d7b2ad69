"""Bad input, model faults, resume after a crash or a kill, secrets, concurrency, reproducibility.

Model faults are injected by a loopback OpenAI-compatible server (fakes.FakeOpenAIServer) that answers
every request with a valid instance of the requested schema, except where told to fail.
"""

import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest
from fakes import FakeOpenAIServer
from test_structured import MESSAGES, Pick

from clusteragent.cli import main
from clusteragent.errors import ModelError
from clusteragent.models import load_chat_model
from clusteragent.structured import StructuredLLM

WORDS = ["rain", "storm", "goal", "match", "pasta", "bread", "bank", "loan", "song", "guitar"]
TEXTS = [f"a note about the {w} number {i}" for i in range(12) for w in WORDS]


def write_jsonl(path: Path, records) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    return path


def corpus(tmp_path, n=len(TEXTS)) -> Path:
    return write_jsonl(tmp_path / "corpus.jsonl", [{"id": f"t{i}", "text": t} for i, t in enumerate(TEXTS[:n])])


def run_args(path, out, *extra):
    return ["run", str(path), "--id-field", "id", "--instruction", "Group by topic.", "--model", "openai:fake",
            "--max-model-calls", "40", "--out", str(out), "--quiet", *extra]


def one_error_line(capsys) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    assert "Traceback" not in "\n".join(err)
    errors = [line for line in err if line.startswith("clusteragent: error:")]
    assert len(errors) == 1, err
    return errors[0]


# ---------------------------------------------------------------- bad input

BAD_INPUTS = {
    "empty file": ("", [], "empty"),
    "only blank texts": ('{"id": 1, "text": "  "}\n{"id": 2, "text": ""}\n', [], "blank text"),
    "a line that is not JSON": ('{"id": 1, "text": "fine"}\n{"id": 2, "text": \n', [], "line 2 is not valid JSON"),
    "missing text field": ('{"id": 1, "note": "x", "tag": "y"}\n', [], "no text field"),
    "named text field absent": ('{"id": 1, "text": "x"}\n', ["--text-field", "content"], "no text field 'content'"),
    "duplicate ids": ('{"id": 1, "text": "a"}\n{"id": 1, "text": "b"}\n', [], "duplicate ids"),
    "mixed id types that collide": ('{"id": 7, "text": "a"}\n{"id": "7", "text": "b"}\n', [], "duplicate ids"),
    "k larger than the corpus": ('{"id": 1, "text": "a"}\n{"id": 2, "text": "b"}\n', ["--k", "5"],
                                 "k=5 is larger than the corpus"),
    "k below 1": ('{"id": 1, "text": "a"}\n', ["--k", "0"], "setting 'k': Input should be greater than or equal to 1"),
    "k range reversed": ('{"id": 1, "text": "a"}\n', ["--k-min", "5", "--k-max", "2"], "k_min (5) is larger than k_max (2)"),
}


@pytest.mark.parametrize("case", list(BAD_INPUTS))
def test_bad_input_is_one_clear_line_and_exit_2(case, tmp_path, capsys):
    content, extra, expected = BAD_INPUTS[case]
    path = tmp_path / "in.jsonl"
    path.write_text(content)
    args = ["run", str(path), "--instruction", "Group by topic.", "--out", str(tmp_path / "out"), *extra]
    if "id" in content:
        args += ["--id-field", "id"]
    assert main(args) == 2
    line = one_error_line(capsys)
    assert expected in line, line
    if not case.startswith("k "):  # an input error names the file
        assert str(path) in line, line


def test_missing_input_file_is_one_line(tmp_path, capsys):
    assert main(["run", str(tmp_path / "nope.jsonl"), "--instruction", "x", "--out", str(tmp_path / "o")]) == 2
    assert "no such file" in one_error_line(capsys)


@pytest.mark.local_server
def test_odd_but_valid_input_gives_a_correct_result(tmp_path, monkeypatch, capsys):
    """Non-UTF-8 bytes, an enormous text and ids of mixed types: every text back once; the model sees a bounded text."""
    huge = "word " * 60_000
    lines = [json.dumps({"id": i if i % 2 else f"s{i}", "text": t}).encode() for i, t in enumerate(TEXTS[:40])]
    lines.append(json.dumps({"id": "huge", "text": huge}).encode())
    lines.append(b'{"id": "latin1", "text": "caf\xe9 cr\xe8me"}')
    path = tmp_path / "odd.jsonl"
    path.write_bytes(b"\n".join(lines) + b"\n")
    with FakeOpenAIServer() as server:
        monkeypatch.setenv("OPENAI_BASE_URL", server.url)
        assert main(run_args(path, tmp_path / "out")) == 0
        longest = max(len(m["content"]) for b in server.bodies for m in b["messages"])
    assert "not UTF-8" in capsys.readouterr().err
    rows = [json.loads(line) for line in (tmp_path / "out" / "assignments.jsonl").read_text().splitlines()]
    assert [r["id"] for r in rows] == [i if i % 2 else f"s{i}" for i in range(40)] + ["huge", "latin1"]
    assert longest < 10_000  # the 300,000-character text reached the model truncated
    copied = (tmp_path / "out" / "corpus.jsonl").read_text().splitlines()
    kept = {json.loads(line)["id"]: json.loads(line)["text"] for line in copied}
    assert kept["huge"] == huge and kept["latin1"] == "caf\u00e9 cr\u00e8me"


# ---------------------------------------------------------------- model faults

@pytest.mark.local_server
@pytest.mark.parametrize("faults,requests", [({1: 429, 2: 500}, 3), ({1: "invalid_json"}, 2), ({1: "empty", 2: "empty"}, 3)])
def test_faults_are_retried_then_answered(faults, requests):
    with FakeOpenAIServer(faults) as server:
        llm = StructuredLLM(load_chat_model("openai:m", base_url=server.url, timeout=5, max_retries=2))
        assert llm.decide(MESSAGES, Pick).label in ("billing", "shipping")
        assert server.requests == requests
    kinds = [e["error"] for e in llm.trace]
    assert kinds[-1] is None and all(k for k in kinds[:-1])  # failed answers are in the trace with their error


@pytest.mark.local_server
def test_a_timeout_ends_in_a_clear_error_after_bounded_retries():
    with FakeOpenAIServer(lambda n: ("slow", 3)) as server:
        llm = StructuredLLM(load_chat_model("openai:m", base_url=server.url, timeout=0.5, max_retries=1))
        started = time.perf_counter()
        with pytest.raises(ModelError, match=rf"server at {server.url} did not answer.*Timeout"):
            llm.decide(MESSAGES, Pick)
        assert server.requests == 2 and time.perf_counter() - started < 10


@pytest.mark.local_server
def test_a_server_that_dies_mid_run_stops_the_run_with_a_resume_hint(tmp_path, monkeypatch, capsys):
    with FakeOpenAIServer(lambda n: 500 if n > 10 else None) as server:
        monkeypatch.setenv("OPENAI_BASE_URL", server.url)
        assert main(run_args(corpus(tmp_path), tmp_path / "out")) == 2
        sent = server.requests
    line = one_error_line(capsys)
    assert "calls in a row" in line and "--resume" in line
    # a few calls (some sent in parallel) of up to three attempts each, not the rest of a 40-call budget
    assert sent <= 10 + 3 * (8 + 3)  # 8 requests in flight at once (openai parallel default) when the breaker opens
    entries = [json.loads(line) for line in (tmp_path / "out" / "calls.jsonl").read_text().splitlines()]
    assert sum("reply" in e for e in entries) == 10  # every answer the server gave before it failed is kept
    assert sum(bool(e.get("failed")) for e in entries) == sent - 10  # and every failed request, to count again


# ---------------------------------------------------------------- durability

@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory):
    """A complete run and the number of requests it needed (the fake server is deterministic)."""
    tmp = tmp_path_factory.mktemp("whole")
    with FakeOpenAIServer() as server:
        env = {"OPENAI_BASE_URL": server.url}
        with pytest.MonkeyPatch.context() as mp:
            for k, v in env.items():
                mp.setenv(k, v)
            assert main(run_args(corpus(tmp), tmp / "out")) == 0
        return tmp / "out", server.requests


def assignments(out: Path) -> str:
    return (out / "assignments.jsonl").read_text()


def decisions(out: Path) -> Counter:
    """The run's model decisions in trace.jsonl (in any order: some are made in parallel)."""
    rows = [json.loads(line) for line in (out / "trace.jsonl").read_text().splitlines()]
    assert rows
    return Counter((r["step"], r["attempt"], r["answer"], r["error"]) for r in rows)


@pytest.mark.local_server
def test_same_seed_same_model_identical_assignments(uninterrupted, tmp_path, monkeypatch):
    out, _ = uninterrupted
    with FakeOpenAIServer() as server:
        monkeypatch.setenv("OPENAI_BASE_URL", server.url)
        assert main(run_args(corpus(tmp_path), tmp_path / "again")) == 0
    assert assignments(tmp_path / "again") == assignments(out)


@pytest.mark.local_server
def test_resume_after_a_crash_replays_finished_calls(uninterrupted, tmp_path, monkeypatch):
    whole, total = uninterrupted
    with FakeOpenAIServer(lambda n: 500 if n > 12 else None) as server:
        monkeypatch.setenv("OPENAI_BASE_URL", server.url)
        assert main(run_args(corpus(tmp_path), tmp_path / "out")) == 2
    with FakeOpenAIServer() as server:
        monkeypatch.setenv("OPENAI_BASE_URL", server.url)
        assert main(run_args(corpus(tmp_path), tmp_path / "out", "--resume")) == 0
        asked_again = server.requests
    assert asked_again == total - 12  # the 12 answered calls were replayed, not asked again
    assert assignments(tmp_path / "out") == assignments(whole)
    assert decisions(tmp_path / "out") == decisions(whole)  # those made before the crash too, each once
    run = json.loads((tmp_path / "out" / "run.json").read_text())
    assert run["replayed_calls"] >= 1 and run["model_calls"] <= 40


@pytest.mark.local_server
@pytest.mark.slow
def test_a_killed_run_resumes_from_its_checkpoint(uninterrupted, tmp_path):
    """SIGKILL a `clusteragent run` process mid-way; `--resume` finishes it with the same result."""
    whole, total = uninterrupted
    path = corpus(tmp_path)
    out = tmp_path / "out"
    cli = [sys.executable, "-m", "clusteragent.cli", *run_args(path, out)]
    with FakeOpenAIServer(delay=0.05) as server:
        env = dict(os.environ, OPENAI_BASE_URL=server.url, HF_HUB_OFFLINE="1")
        proc = subprocess.Popen(cli, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        deadline = time.time() + 120
        while server.requests < total // 2 and time.time() < deadline and proc.poll() is None:
            time.sleep(0.02)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        before = server.requests
        assert 0 < before < total, "the run was not killed mid-way"
        done = subprocess.run(cli + ["--resume"], env=env, capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, done.stderr
        after = server.requests - before
    # only requests in flight at the kill (at most 8, the openai backend's parallel default) are asked again
    assert after <= total - before + 8
    assert assignments(out) == assignments(whole)


# ---------------------------------------------------------------- secrets

@pytest.mark.local_server
def test_the_api_key_is_used_but_never_written(tmp_path, monkeypatch, capsys):
    secret = "sk-test-4f2b9c1e7d3a5b6c"
    with FakeOpenAIServer() as server:
        monkeypatch.setenv("OPENAI_BASE_URL", server.url)
        monkeypatch.setenv("OPENAI_API_KEY", secret)
        assert main(["-v", *run_args(corpus(tmp_path, 30), tmp_path / "out")]) == 0
        assert main(["refine", str(tmp_path / "out"), "undo"]) == 0
        assert all(h.get("authorization") == f"Bearer {secret}" for h in server.headers)
    printed = capsys.readouterr()
    assert secret not in printed.out + printed.err
    for f in (tmp_path / "out").rglob("*"):
        if f.is_file():
            assert secret.encode() not in f.read_bytes(), f


# ---------------------------------------------------------------- concurrency

@pytest.mark.slow
def test_two_processes_sharing_a_cache_dir_do_not_corrupt_it(tmp_path):
    import numpy as np

    path = corpus(tmp_path)
    cache = tmp_path / "cache"
    env = dict(os.environ, CLUSTERAGENT_CACHE_DIR=str(cache), HF_HUB_OFFLINE="1")
    procs = [subprocess.Popen([sys.executable, "-m", "clusteragent.cli", "embed", str(path), "--quiet",
                               "--out", str(tmp_path / f"v{i}.npy")], env=env, stderr=subprocess.PIPE)
             for i in range(2)]
    for p in procs:
        assert p.wait(timeout=300) == 0, p.stderr.read().decode()
    a, b = np.load(tmp_path / "v0.npy"), np.load(tmp_path / "v1.npy")
    assert a.shape == (len(TEXTS), 384) and np.array_equal(a, b)
    cached = [f for f in cache.rglob("*") if f.is_file()]
    assert cached and not [f for f in cached if f.name.endswith(".tmp") or f.name.startswith(".")]
    for f in cached:
        if f.suffix == ".npy":
            assert np.array_equal(np.load(f), a)


@pytest.mark.local_server
def test_interactive_chat_over_a_run_folder(tmp_path, monkeypatch, capsys):
    import io

    with FakeOpenAIServer() as server:
        monkeypatch.setenv("OPENAI_BASE_URL", server.url)
        assert main(run_args(corpus(tmp_path, 30), tmp_path / "out")) == 0
        capsys.readouterr()
        monkeypatch.setattr(sys, "stdin", io.StringIO("What is in cluster 0?\nundo\n\n"))
        assert main(["chat", str(tmp_path / "out")]) == 0
    printed = capsys.readouterr()
    run = json.loads((tmp_path / "out" / "run.json").read_text())
    assert len(run["refinements"]) == 2 and printed.out.count("\n") >= 2
