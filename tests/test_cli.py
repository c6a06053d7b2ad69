import subprocess
import sys

import numpy as np
import pytest

from clusteragent.cli import main
from clusteragent.tools.corpus import sample_corpus_path


@pytest.mark.slow
def test_embed_bundled_sample_writes_n_by_384(tmp_path, capsys):
    out = tmp_path / "x.npy"
    assert main(["embed", str(sample_corpus_path()), "--out", str(out), "--quiet"]) == 0
    vectors = np.load(out)
    assert vectors.shape == (2000, 384)
    assert "2000 x 384" in capsys.readouterr().err


def test_the_text_field_used_is_said_on_stderr(tmp_path, capsys):
    path = tmp_path / "in.jsonl"
    path.write_text('{"body": "where is my card"}\n{"body": "refund my order"}\n')
    assert main(["embed", str(path), "--out", str(tmp_path / "x.npy"), "--quiet"]) == 0
    assert "clusteragent: warning: " in (err := capsys.readouterr().err) and "the field 'body'" in err


def test_encoding_option_reads_a_legacy_file_without_a_warning(tmp_path, capsys):
    path = tmp_path / "in.txt"
    path.write_bytes("caf\u00e9 au lait\nth\u00e9 vert\n".encode("cp1252"))
    assert main(["embed", str(path), "--out", str(tmp_path / "x.npy"), "--quiet", "--encoding", "cp1252"]) == 0
    assert "warning" not in capsys.readouterr().err
    assert main(["embed", str(path), "--out", str(tmp_path / "x.npy"), "--quiet"]) == 0
    assert "lines 1, 2 are not UTF-8" in capsys.readouterr().err


def test_text_field_given_twice_embeds_both_fields_of_each_record(tmp_path):
    import json

    sheet = tmp_path / "papers.csv"
    sheet.write_text("title,abstract\nCats at night,They sleep all day.\nBank fees,Why cards cost more abroad.\n")
    joined = tmp_path / "joined.jsonl"
    joined.write_text("".join(json.dumps({"text": t}) + "\n" for t in
                              ["Cats at night\n\nThey sleep all day.", "Bank fees\n\nWhy cards cost more abroad."]))
    vectors = {}
    for name, path, args in [("both", sheet, ["--text-field", "title", "--text-field", "abstract"]),
                             ("title", sheet, ["--text-field", "title"]), ("joined", joined, [])]:
        assert main(["embed", str(path), "--out", str(out := tmp_path / f"{name}.npy"), "--quiet", *args]) == 0
        vectors[name] = np.load(out)
    assert np.allclose(vectors["both"], vectors["joined"], atol=1e-5)
    assert not np.allclose(vectors["both"], vectors["title"], atol=1e-2)


@pytest.mark.parametrize("make,args,message", [
    (None, [], "no such file"),
    (lambda p: p.write_text('{"text": "a"}\nnot json\n'), [], "line 2 is not valid JSON"),
    (lambda p: p.write_text('{"text": "a"}\n'), ["--text-field", "body"], "no text field 'body'; the fields are 'text'"),
    (lambda p: p.write_text('{"id": 1, "text": "a"}\n{"id": 1, "text": "b"}\n'), ["--id-field", "id"],
     "duplicate ids in field 'id': 1"),
    (lambda p: p.write_text(""), [], "empty"),
])
def test_user_errors_print_one_line_and_exit_2(tmp_path, capsys, make, args, message):
    path = tmp_path / "in.jsonl"
    if make:
        make(path)
    assert main(["embed", str(path), "--out", str(tmp_path / "x.npy"), *args]) == 2
    err = capsys.readouterr().err
    assert message in err
    assert err.startswith("clusteragent: error: ") and err.count("\n") == 1
    assert "Traceback" not in err


def test_out_must_be_npy(tmp_path, capsys):
    assert main(["embed", str(sample_corpus_path()), "--out", str(tmp_path / "x.csv")]) == 2
    assert "give a .npy file name" in capsys.readouterr().err


def test_bad_environment_setting_is_a_user_error(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("CLUSTERAGENT_EMBEDDING_BATCH_SIZE", "lots")
    assert main(["embed", str(sample_corpus_path()), "--out", str(tmp_path / "x.npy")]) == 2
    assert "embedding_batch_size" in capsys.readouterr().err


def test_console_script_runs_offline_in_a_fresh_process(tmp_path):
    path = tmp_path / "in.txt"
    path.write_text("first text\nsecond text\n")
    out = tmp_path / "x.npy"
    proc = subprocess.run([sys.executable, "-m", "clusteragent.cli", "embed", str(path), "--out", str(out), "--quiet"],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert np.load(out).shape == (2, 384)


def test_a_parquet_file_the_run_refuses_exits_with_the_error_not_an_abort(tmp_path):
    """Arrow's reader threads once called back into a Python file object at exit, which the embedded model's
    library turned into "terminate called without an active exception" and status 134, about half the time."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    path = tmp_path / "posts.parquet"
    pq.write_table(pa.Table.from_pylist([{"headline": f"post {i}", "summary": f"text number {i}"} for i in range(400)]),
                   path)
    for _ in range(4):
        proc = subprocess.run([sys.executable, "-m", "clusteragent.cli", "run", str(path), "--instruction", "x",
                               "--out", str(tmp_path / "run")], capture_output=True, text=True, timeout=120)
        assert (proc.returncode, proc.stderr.count("terminate")) == (2, 0), proc.stderr
        assert "pass --text-field, one of 'headline', 'summary'" in proc.stderr


@pytest.mark.parametrize("args,message", [
    (["--k-min", "5", "--k-max", "3"], "k_min (5) is larger than k_max (3)"),
    (["--k", "0"], "'k': Input should be greater than or equal to 1"),
    (["--max-model-calls", "1"], "'max_model_calls'"),
    (["--k", "5000"], "larger than the corpus"),
    (["--reading-max-texts", "-1"], "'reading_max_texts': Input should be greater than or equal to 0"),
    (["--view", "reading", "--k", "5000"], "larger than the corpus"),  # --view reaches the config, which checks k
])
def test_run_option_errors_are_one_line_exit_2(tmp_path, capsys, args, message):
    rc = main(["run", str(sample_corpus_path()), "--id-field", "id", "--instruction", "by topic",
               "--out", str(tmp_path / "o"), "--model", "openai:m", *args])
    err = capsys.readouterr().err
    assert rc == 2 and message in err and err.count("\n") == 1 and "Traceback" not in err


def test_chat_on_a_corpus_file_clusters_it_first_with_the_run_defaults(tmp_path, capsys, monkeypatch):
    # chat takes few of run's options; the others take run's defaults (chat once failed on args.outliers)
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    corpus = tmp_path / "tiny.jsonl"
    corpus.write_text("".join(f'{{"text": "text number {i}"}}\n' for i in range(6)), encoding="utf-8")
    rc = main(["chat", str(corpus), "--instruction", "by topic", "--out", str(tmp_path / "o"), "--model", "openai:m"])
    err = capsys.readouterr().err
    assert rc == 2 and "OPENAI_API_KEY" in err and err.count("\n") == 1, err


def test_chat_on_a_corpus_file_clusters_it_on_the_view_asked(tmp_path, monkeypatch):
    import clusteragent.cli as cli
    from clusteragent.errors import ConfigError

    seen = {}

    def run(args):
        seen["view"] = args.view
        raise ConfigError("stopped before clustering")

    monkeypatch.setattr(cli, "cmd_run", run)
    corpus = tmp_path / "tiny.jsonl"
    corpus.write_text("".join(f'{{"text": "text number {i}"}}\n' for i in range(6)), encoding="utf-8")
    rc = main(["chat", str(corpus), "--instruction", "by how urgent", "--out", str(tmp_path / "o"), "--view", "reading"])
    assert rc == 2 and seen == {"view": "reading"}


def test_the_views_the_command_line_offers_are_the_views_the_router_knows():
    from typing import get_args

    from clusteragent.cli import VIEWS
    from clusteragent.facets import View

    assert VIEWS == get_args(View)


@pytest.mark.parametrize("command", ["run", "chat"])
def test_an_interrupted_run_says_what_it_kept_and_the_command_that_goes_on(tmp_path, capsys, monkeypatch, command):
    from clusteragent.api import ClusterAgent

    def interrupted(self, *args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(ClusterAgent, "fit", interrupted)
    corpus = tmp_path / "tiny.jsonl"
    corpus.write_text("".join(f'{{"text": "text number {i}"}}\n' for i in range(6)), encoding="utf-8")
    out = tmp_path / "o"
    rc = main([command, str(corpus), "--instruction", "by the writer's mood", "--out", str(out), "--quiet"])
    err = capsys.readouterr().err
    assert rc == 130 and err.count("\n") == 1 and f"kept in {out}" in err, err
    if command == "run":
        assert "run the same command with --resume" in err
    else:  # chat has no --resume: the message gives the run command that has
        assert f"clusteragent run {corpus} --instruction 'by the writer'\"'\"'s mood' --out {out} --resume" in err


def test_counts_in_the_summary_lines_agree_with_their_number():
    from clusteragent.errors import counted

    assert [counted(n, "model call") for n in (0, 1, 2)] == ["0 model calls", "1 model call", "2 model calls"]
    assert counted(40898, "text") == "40,898 texts"
