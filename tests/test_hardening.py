"""The run folder, the budget and hostile input: nothing lost, nothing overrun, one line per failure.

Model faults come from the loopback server (clusteragent.evals.fault_server), which counts every request
that reaches it.
"""

import json
import os
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from fakes import FakeOpenAIServer
from test_reliability import TEXTS, corpus, one_error_line, run_args, write_jsonl
from test_structured import MESSAGES, Pick

from clusteragent.cli import main
from clusteragent.errors import BudgetSpent, ModelError
from clusteragent.models import load_chat_model
from clusteragent.structured import StructuredLLM

pytestmark = pytest.mark.local_server


def run(tmp_path, out, *extra, faults=None, n=60, path=None):
    """A CLI run against a fresh fault server; (exit code, requests the server saw)."""
    with FakeOpenAIServer(faults) as server, pytest.MonkeyPatch.context() as mp:
        mp.setenv("OPENAI_BASE_URL", server.url)
        code = main(run_args(path or corpus(tmp_path, n), out, *extra))
        return code, server.requests


@pytest.fixture(scope="module")
def finished(tmp_path_factory):
    """A finished run folder, copied fresh for each test that damages one."""
    tmp = tmp_path_factory.mktemp("finished")
    code, _ = run(tmp, tmp / "out")
    assert code == 0
    return tmp / "out"


def copy_of(finished: Path, tmp_path: Path) -> Path:
    import shutil

    return Path(shutil.copytree(finished, tmp_path / "copy"))


# ---------------------------------------------------------------- the run folder is the tool's own

def test_a_run_into_a_folder_of_other_files_is_refused_and_touches_nothing(tmp_path, capsys):
    out = tmp_path / "mine"
    (out / "arrays").mkdir(parents=True)
    (out / "arrays" / "data.npy").write_bytes(b"users array")
    (out / "run.json").write_text('{"mine": true}')
    before = {p: p.read_bytes() for p in out.rglob("*") if p.is_file()}
    code, requests = run(tmp_path, out)
    assert code == 2 and requests == 0
    assert "--force" in one_error_line(capsys)
    assert {p: p.read_bytes() for p in out.rglob("*") if p.is_file()} == before


def test_force_writes_the_runs_files_and_removes_nothing_else(tmp_path):
    out = tmp_path / "mine"
    (out / "arrays").mkdir(parents=True)
    (out / "arrays" / "data.npy").write_bytes(b"users array")
    (out / "notes.txt").write_text("keep me")
    assert run(tmp_path, out, "--force")[0] == 0
    assert (out / "assignments.jsonl").exists()
    assert run(tmp_path, out, "--force")[0] == 0  # a second fresh run clears the first one's files only
    assert (out / "arrays" / "data.npy").read_bytes() == b"users array"
    assert (out / "notes.txt").read_text() == "keep me"


def test_the_input_file_is_never_overwritten(tmp_path, capsys, monkeypatch):
    path = corpus(tmp_path, 30)
    before = path.read_bytes()
    monkeypatch.chdir(tmp_path)
    assert run(tmp_path, Path("."), "--force", path=path)[0] == 2  # --out . would replace corpus.jsonl
    assert "would overwrite the input" in one_error_line(capsys)
    assert path.read_bytes() == before


def test_a_second_process_is_refused_while_the_folder_is_locked(finished, tmp_path, capsys):
    out = copy_of(finished, tmp_path)
    holder = subprocess.Popen([sys.executable, "-c", (
        "import sys, time; from clusteragent.run_lock import RunLock\n"
        f"with RunLock({str(out)!r}):\n    print('locked', flush=True); time.sleep(60)")],
        stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "locked"
        assert run(tmp_path, out)[0] == 2
        assert f"pid {holder.pid}" in one_error_line(capsys)
        assert main(["refine", str(out), "undo"]) == 2
        assert f"pid {holder.pid}" in one_error_line(capsys)
    finally:
        holder.kill()
        holder.wait()
    with FakeOpenAIServer() as server, pytest.MonkeyPatch.context() as mp:
        mp.setenv("OPENAI_BASE_URL", server.url)
        assert main(["refine", str(out), "undo"]) == 0  # the lock went with its process


def test_files_of_a_run_folder_share_one_mode(finished):
    mask = os.umask(0)
    os.umask(mask)
    modes = {p.name: p.stat().st_mode & 0o777 for p in finished.rglob("*") if p.is_file()}
    assert set(modes.values()) == {0o666 & ~mask}, modes


def test_stale_temporary_files_are_cleaned_on_start(tmp_path):
    from clusteragent.tools.embeddings import remove_stale_temps

    out = tmp_path / "out"
    (out / "arrays").mkdir(parents=True)
    (out / ".run.json.k2j4_x.tmp").write_text("half")
    (out / "arrays" / ".assignment-0123456789abcdef.npy.ab12cd.tmp").write_text("half")
    assert run(tmp_path, out, "--force")[0] == 0
    assert not [p for p in out.rglob("*.tmp")]
    cache = tmp_path / "cache"
    cache.mkdir()
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    (cache / f"0123456789abcdef.{dead.stdout.strip()}.x1.tmp.npy").write_bytes(b"left by a kill")
    (cache / f"0123456789abcdef.{os.getpid()}.x2.tmp.npy").write_bytes(b"still being written")
    remove_stale_temps(cache)
    assert [p.name.split(".")[1] for p in cache.iterdir()] == [str(os.getpid())]


# ---------------------------------------------------------------- the budget is a hard cap

def test_parallel_requests_and_retries_never_pass_the_cap():
    with FakeOpenAIServer(lambda n: "invalid_json") as server:
        chat = load_chat_model("openai:m", base_url=server.url, timeout=5, parallel=8)
        llm = StructuredLLM(chat, max_calls=10)
        answers = llm.decide_many([MESSAGES] * 20, Pick, return_exceptions=True)
        assert server.requests == 10
    assert all(isinstance(a, ModelError) for a in answers)
    assert sum(isinstance(a, BudgetSpent) for a in answers) >= 16  # most were never sent


def test_transport_retries_are_taken_from_the_budget():
    with FakeOpenAIServer(lambda n: 500) as server:
        llm = StructuredLLM(load_chat_model("openai:m", base_url=server.url, timeout=5, max_retries=5), max_calls=3)
        with pytest.raises(BudgetSpent):
            llm.decide(MESSAGES, Pick)
        assert server.requests == 3


@pytest.mark.parametrize("budget", [12, 30])
def test_a_run_with_invalid_answers_sends_at_most_its_budget(budget, tmp_path):
    # every other answer fails validation: each decision retries, and the run must still stop at the cap
    code, requests = run(tmp_path, tmp_path / "out", "--max-model-calls", str(budget),
                         faults=lambda n: "invalid_json" if n % 2 == 0 else None)
    assert requests <= budget
    if code == 0:
        assert json.loads((tmp_path / "out" / "run.json").read_text())["model_calls"] == requests


@pytest.mark.parametrize("status,stops", [(400, False), (401, True), (404, True)])
def test_a_status_that_asking_again_cannot_change_is_not_retried(status, stops):
    from clusteragent.errors import ModelUnavailable

    with FakeOpenAIServer(lambda n: status) as server:
        llm = StructuredLLM(load_chat_model("openai:m", base_url=server.url, timeout=5, max_retries=2))
        with pytest.raises(ModelUnavailable if stops else ModelError) as caught:
            llm.decide(MESSAGES, Pick)
        assert server.requests == 1
    assert isinstance(caught.value, ModelUnavailable) == stops  # ModelUnavailable is not a ModelError


def test_failed_attempts_are_journaled_and_counted_again_on_resume(tmp_path):
    from clusteragent.call_journal import CallJournal

    with FakeOpenAIServer({1: 500, 2: "reset"}) as server:
        chat = load_chat_model("openai:m", base_url=server.url, timeout=5, max_retries=2)
        first = StructuredLLM(chat, journal=CallJournal(tmp_path / "calls.jsonl"), max_calls=10)
        answer = first.decide(MESSAGES, Pick)
        assert server.requests == 3 and (first.usage.calls, first.usage.failed_calls) == (3, 2)
        again = StructuredLLM(chat, journal=CallJournal(tmp_path / "calls.jsonl"), max_calls=10)
        assert again.decide(MESSAGES, Pick) == answer
        assert server.requests == 3  # replayed, not asked
    assert (again.usage.calls, again.usage.failed_calls) == (3, 2)  # the budget is spent as it was


def test_the_journal_charges_attempts_under_way_at_a_kill_but_not_those_given_up(tmp_path):
    from clusteragent.call_journal import CallJournal

    journal = CallJournal(tmp_path / "calls.jsonl")
    journal.record_failure("answered")
    journal.record("answered", {"content": "{}"})
    journal.record_failure("under way at the kill")
    journal.record_failure("given up")
    journal.record_failure("given up", gave_up=True)
    again = CallJournal(tmp_path / "calls.jsonl")
    assert again.replay("answered") == ({"content": "{}"}, 1)
    assert again.replay("under way at the kill") == (None, 1)  # charged, then asked again
    assert again.replay("given up") == (None, 0)  # the outage that stopped the run is not charged twice


# ---------------------------------------------------------------- resume, and failures before any change

def test_resume_of_a_finished_run_prints_its_result(finished, tmp_path, capsys):
    out = copy_of(finished, tmp_path)
    before = [(out / name).read_text() for name in ("assignments.jsonl", "trace.jsonl")]
    assert before[1]
    capsys.readouterr()
    code, requests = run(tmp_path, out, "--resume")
    assert code == 0 and requests == 0
    assert "clusters for 60 texts" in capsys.readouterr().out
    assert [(out / name).read_text() for name in ("assignments.jsonl", "trace.jsonl")] == before


def test_resume_of_a_refined_run_keeps_the_refinement(finished, tmp_path):
    from fakes import ScriptedChatModel

    from clusteragent import ClusterAgent

    out = copy_of(finished, tmp_path)
    old = json.loads((out / "clusters.json").read_text())[0]["name"]
    script = [json.dumps({"action": "rename"}), json.dumps({"cluster": old, "new_name": "Renamed one", "description": ""})]
    agent = ClusterAgent.load(out, model=ScriptedChatModel(script=script))
    agent.chat(f'Rename "{old}" to "Renamed one".')
    agent.result_.write(out, with_trace=False)
    refined = (out / "assignments.jsonl").read_text() + (out / "clusters.json").read_text()
    assert "Renamed one" in refined
    assert run(tmp_path, out, "--resume")[0] == 0
    assert (out / "assignments.jsonl").read_text() + (out / "clusters.json").read_text() == refined


@pytest.mark.parametrize("extra,expected", [
    (["--seed", "-1"], "seed"), (["--seed", str(2 ** 32)], "seed"), (["--k", "500"], "larger than the corpus"),
])
def test_bad_options_are_one_line(extra, expected, tmp_path, capsys):
    assert run(tmp_path, tmp_path / "out", *extra)[0] == 2
    assert expected in one_error_line(capsys)
    assert not (tmp_path / "out").exists()  # refused before anything was written


def test_out_naming_a_file_is_one_line(tmp_path, capsys):
    (tmp_path / "afile").write_text("x")
    assert run(tmp_path, tmp_path / "afile")[0] == 2
    assert "is a file" in one_error_line(capsys)


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only folders")
def test_a_read_only_out_is_one_line(tmp_path, capsys):
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o500)
    try:
        assert run(tmp_path, ro / "out")[0] == 2
        assert "cannot" in one_error_line(capsys)
    finally:
        ro.chmod(0o700)


def damage_checkpoints(out):
    (out / "checkpoints.sqlite").write_bytes(b"this is not a database" * 100)
    for extra in ("-wal", "-shm"):
        (out / f"checkpoints.sqlite{extra}").unlink(missing_ok=True)


def damage_arrays(out, how):
    for f in (out / "arrays").glob("assignment-*.npy"):
        if how == "missing":
            f.unlink()
        else:
            f.write_bytes(f.read_bytes()[:70])


DAMAGE = {
    "garbage checkpoints": damage_checkpoints,
    "missing arrays": lambda out: damage_arrays(out, "missing"),
    "truncated arrays": lambda out: damage_arrays(out, "truncated"),
    "truncated session": lambda out: (out / "session.json").write_text((out / "session.json").read_text()[:40]),
    "truncated run record": lambda out: (out / "run.json").write_text((out / "run.json").read_text()[:40]),
    "edited corpus copy": lambda out: (out / "corpus.jsonl").write_text('{"id": 1, "text": "other"}\n'),
}


@pytest.mark.parametrize("case", list(DAMAGE))
def test_a_damaged_run_folder_is_one_line_under_refine_and_changes_nothing(case, finished, tmp_path, capsys):
    out = copy_of(finished, tmp_path)
    DAMAGE[case](out)
    before = {p.name: p.read_bytes() for p in out.rglob("*") if p.is_file()}
    with FakeOpenAIServer() as server, pytest.MonkeyPatch.context() as mp:
        mp.setenv("OPENAI_BASE_URL", server.url)
        assert main(["refine", str(out), "undo"]) == 2
        assert server.requests == 0
    line = one_error_line(capsys)
    assert str(out) in line
    after = {p.name: p.read_bytes() for p in out.rglob("*") if p.is_file()}
    ignored = (".clusteragent.lock", "checkpoints.sqlite-wal", "checkpoints.sqlite-shm")  # made by opening the database
    assert {k: v for k, v in after.items() if k not in ignored} == {k: v for k, v in before.items() if k not in ignored}
    if case != "garbage checkpoints":
        assert checkpoint_rows(out) == checkpoint_rows(finished)


def checkpoint_rows(out: Path) -> int:
    with sqlite3.connect(out / "checkpoints.sqlite") as db:
        return db.execute("select count(*) from checkpoints").fetchone()[0]


# ---------------------------------------------------------------- odd input

def test_a_csv_text_over_the_default_field_limit_is_read(tmp_path):
    from clusteragent.tools.corpus import load_corpus

    path = tmp_path / "long.csv"
    long = "word " * 40_000
    path.write_text(f'id,text\n1,"{long}"\n2,short\n')
    assert load_corpus(path).texts == [long, "short"]


@pytest.mark.parametrize("bad", ["NaN", "Infinity", "1.0", "true"])
def test_ids_are_strings_or_integers(bad, tmp_path, capsys):
    path = tmp_path / "c.jsonl"
    path.write_text(f'{{"id": 1, "text": "a"}}\n{{"id": {bad}, "text": "b"}}\n')
    assert main(["run", str(path), "--instruction", "x", "--out", str(tmp_path / "o")]) == 2
    assert "strings or integers" in one_error_line(capsys)


def test_identical_and_enormous_texts_are_embedded_once_and_cut(monkeypatch):
    from clusteragent.tools.corpus import MAX_WORK_CHARS
    from clusteragent.tools.embeddings import Embedder

    seen = []

    def encode(self, texts, out):
        seen.extend(texts)
        out[:] = np.eye(out.shape[0], out.shape[1], dtype=np.float32)

    monkeypatch.setattr(Embedder, "encode_locally", encode)
    monkeypatch.setattr(Embedder, "dimension", 8)
    monkeypatch.setattr(Embedder, "model", object())
    texts = ["same"] * 5000 + ["x" * 5_000_000, "other"]
    vectors, stats = Embedder(cache_dir=None, progress=False).embed(texts)
    assert len(seen) == 3 and stats.computed == 3 and max(map(len, seen)) == MAX_WORK_CHARS
    assert vectors.shape == (5002, 8) and (vectors[:5000] == vectors[0]).all() and not (vectors[-1] == vectors[0]).all()


def test_a_run_with_many_identical_texts_and_one_enormous_text(tmp_path):
    records = [{"id": i, "text": "the very same message"} for i in range(3000)]
    records += [{"id": "big", "text": "word " * 2_000_000}] + [{"id": f"o{i}", "text": t} for i, t in enumerate(TEXTS[:30])]
    path = write_jsonl(tmp_path / "odd.jsonl", records)
    started = time.perf_counter()
    assert run(tmp_path, tmp_path / "out", path=path)[0] == 0
    assert time.perf_counter() - started < 120
    rows = (tmp_path / "out" / "assignments.jsonl").read_text().splitlines()
    assert [json.loads(r)["id"] for r in rows] == [r["id"] for r in records]


# ---------------------------------------------------------------- secrets and terminals

def test_a_key_echoed_by_the_server_is_masked_everywhere(tmp_path, capsys, monkeypatch):
    secret = "sk-echo-9d8c7b6a5f4e3d2c"
    monkeypatch.setenv("OPENAI_API_KEY", secret)
    code, _ = run(tmp_path, tmp_path / "out", faults=lambda n: "echo_key" if n > 3 else None)
    assert code == 2
    printed = capsys.readouterr()
    assert secret not in printed.out + printed.err and "***" in printed.err
    db = sqlite3.connect(tmp_path / "out" / "checkpoints.sqlite")
    dump = "\n".join(db.iterdump())
    assert secret not in dump
    for f in (tmp_path / "out").rglob("*"):
        if f.is_file():
            assert secret.encode() not in f.read_bytes(), f


def test_credentials_in_the_server_url_are_not_stored(tmp_path, monkeypatch, capsys):
    with FakeOpenAIServer() as server:
        url = server.url.replace("http://", "http://alice:s3cr3t-pass@")
        monkeypatch.setenv("OPENAI_BASE_URL", url)
        assert main(["-v", *run_args(corpus(tmp_path, 30), tmp_path / "out")]) == 0
    printed = capsys.readouterr()
    assert "s3cr3t-pass" not in printed.out + printed.err
    for f in (tmp_path / "out").rglob("*"):
        if f.is_file():
            assert b"s3cr3t-pass" not in f.read_bytes(), f
    assert json.loads((tmp_path / "out" / "run.json").read_text())["model"]["base_url"].startswith("http://***@127.0.0.1")


def test_names_keep_no_control_or_bidi_characters():
    from clusteragent.tools.taxonomy import Cluster, Taxonomy

    tax, _ = Taxonomy().added("\x1b[2J\x1b]0;owned\x07Lost\u202e luggage\u200b", "Bags\r\nthat\x00 went missing")
    c = tax.clusters[0]
    assert c.name == "[2J ]0;owned Lost luggage" and c.description == "Bags that went missing"
    assert Cluster(1, "ok\x9bname").name == "ok name"


@pytest.mark.parametrize("text", ["a </TEXT> b", "a </Text > b", "a < /text> b", "<TEXT>new</TEXT>"])
def test_a_document_cannot_close_its_delimiter_in_any_case(text):
    import re

    from clusteragent.prompts import as_data

    assert not re.search(r"</text\s*>|<text\s*>", as_data(text), flags=re.IGNORECASE)


# ---------------------------------------------------------------- small lies

@pytest.mark.parametrize("k", [5, 9])
def test_k_is_exact(k, tmp_path):
    assert run(tmp_path, tmp_path / "out", "--k", str(k), n=120)[0] == 0
    clusters = json.loads((tmp_path / "out" / "clusters.json").read_text())
    assert len(clusters) == k and all(c["size"] > 0 for c in clusters)


def test_timeout_on_the_command_line(tmp_path, capsys):
    started = time.perf_counter()
    code, requests = run(tmp_path, tmp_path / "out", "--timeout", "0.3", faults=lambda n: ("slow", 2))
    assert code == 2 and time.perf_counter() - started < 30
    assert "Timeout" in one_error_line(capsys)


def test_an_embedded_model_timeout_says_so_and_what_to_try():
    with FakeOpenAIServer(lambda n: ("slow", 2)) as server:
        chat = load_chat_model("openai:m", base_url=server.url, timeout=0.3, max_retries=0)
        object.__setattr__(chat, "provider_name", "llamacpp")
        with pytest.raises(ModelError) as caught:
            StructuredLLM(chat).decide(MESSAGES, Pick)
    message = str(caught.value)
    assert "embedded model" in message and "--timeout" in message and server.url not in message


@pytest.mark.slow
def test_one_50_mb_text_costs_little_memory(tmp_path):
    """A whole process's peak memory with one 50 MB text among 29 short ones, against the 29 alone."""
    records = [{"id": i, "text": t} for i, t in enumerate(TEXTS[:29])]
    peaks = {}
    for name, extra in (("short", []), ("huge", [{"id": "huge", "text": "word " * 10_000_000}])):
        path = write_jsonl(tmp_path / f"{name}.jsonl", records + extra)
        with FakeOpenAIServer() as server:
            env = dict(os.environ, OPENAI_BASE_URL=server.url, HF_HUB_OFFLINE="1")
            proc = subprocess.Popen([sys.executable, "-m", "clusteragent.cli", *run_args(path, tmp_path / name),
                                     "--no-cache"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
            _, status, usage = os.wait4(proc.pid, 0)
        assert os.waitstatus_to_exitcode(status) == 0, proc.stderr.read().decode()[-2000:]
        peaks[name] = usage.ru_maxrss / 1024  # MB
    assert peaks["huge"] < peaks["short"] + 600, peaks  # the file itself, its parsed copy and the corpus copy
