"""The benchmark harness: metrics against scikit-learn and constructed truth, tasks, sampling, runner."""

import json

import numpy as np
import pytest
from sklearn.metrics import adjusted_rand_score, normalized_mutual_info_score, v_measure_score

from clusteragent.errors import ConfigError
from clusteragent.evals.metrics import matched_accuracy, score
from clusteragent.evals.tasks import load_suite, load_task, parse_task, stratified_sample, suites


def test_perfect_partition_scores_one_under_any_renaming():
    gold = ["a"] * 5 + ["b"] * 5 + ["c"] * 5
    pred = [7] * 5 + [3] * 5 + [9] * 5
    s = score(gold, pred)
    assert s["v_measure"] == s["nmi"] == s["ari"] == s["acc"] == 1.0
    assert s["k_pred"] == s["k_gold"] == 3 and s["k_error"] == 0.0


def test_k_error_is_the_factor_by_which_k_is_off_either_way():
    gold = ["a"] * 6 + ["b"] * 6
    assert score(gold, list(range(12)))["k_error"] == pytest.approx(np.log(6), abs=1e-4)  # 12 for 2
    assert score(gold, [0] * 12)["k_error"] == pytest.approx(np.log(2), abs=1e-4)  # 1 for 2


def test_orthogonal_embeddings_clustered_by_kmeans_give_v_measure_one():
    from clusteragent.evals.methods import MethodContext, kmeans_oracle

    x = np.repeat(np.eye(5, 16, dtype=np.float32), 20, axis=0)
    gold = np.repeat(np.arange(5), 20)
    labels, _ = kmeans_oracle(None, x, "", 5, MethodContext(embedder=None))
    assert score(gold, labels)["v_measure"] == 1.0


def test_metrics_agree_with_scikit_learn():
    rng = np.random.default_rng(0)
    gold, pred = rng.integers(0, 4, 200), rng.integers(0, 6, 200)
    s = score(gold, pred)
    assert s["v_measure"] == pytest.approx(v_measure_score(gold, pred), abs=1e-4)
    assert s["nmi"] == pytest.approx(normalized_mutual_info_score(gold, pred), abs=1e-4)
    assert s["ari"] == pytest.approx(adjusted_rand_score(gold, pred), abs=1e-4)


def test_matched_accuracy_against_brute_force():
    from itertools import permutations

    rng = np.random.default_rng(1)
    gold, pred = rng.integers(0, 3, 60), rng.integers(0, 3, 60)
    brute = max(np.mean([perm[p] == g for p, g in zip(pred, gold)]) for perm in permutations(range(3)))
    assert matched_accuracy(gold, pred) == pytest.approx(brute)
    assert matched_accuracy([0, 0, 1, 1], [0, 1, 2, 3]) == 0.5  # extra predicted clusters count as wrong


def test_suites_are_versioned_and_dev_covers_every_facet_of_every_corpus(tmp_path):
    assert {"dev", "agent"} <= set(suites())
    dev = load_suite("dev")
    assert all(t.version >= 1 and t.instruction for t in dev)
    assert len({t.name for t in dev}) == len(dev)
    from clusteragent.evals.tasks import default_data_dir

    try:
        data = default_data_dir()
    except ConfigError:
        pytest.skip("shared/data is not beside this checkout")
    for folder in sorted(p for p in data.iterdir() if (p / "data.jsonl").exists()):
        first = json.loads((folder / "data.jsonl").open().readline())
        for facet in first["labels"]:
            assert f"{folder.name}:{facet}" in {t.name for t in dev}


def test_routing_bench_tasks_are_dev_tasks_and_its_paraphrases_their_own_wording():
    from clusteragent.evals.bench_routing import DEV_VIEWS, FRESH, LATER, NOUNS, OTHER_LANGUAGES, PARAPHRASES

    dev = {t.name: t for t in load_suite("dev")}
    assert set(DEV_VIEWS) <= set(dev) and set(DEV_VIEWS.values()) <= {None, "meaning", "characters", "layout"}
    for corpus, facet, instruction, _ in PARAPHRASES + FRESH + NOUNS + LATER + OTHER_LANGUAGES:  # facets the data
        # has, worded otherwise
        assert f"{corpus}:{facet}" in dev and instruction not in {t.instruction for t in dev.values()}


def test_routing_evidence_tells_labels_that_follow_a_view_from_labels_that_do_not():
    from clusteragent.evals.bench_routing import follows

    rng = np.random.default_rng(0)
    centres = rng.normal(size=(3, 16)) * 3
    groups = np.repeat(np.arange(3), 10)
    vectors = centres[groups] + rng.normal(size=(30, 16))
    along = follows(vectors, [f"value {g}" for g in groups])
    across = follows(vectors, [f"value {g}" for g in rng.permutation(groups)])
    assert along["z"] > 5 and along["p"] < 0.001 and along["kappa"] == 1.0
    assert abs(across["z"]) < 3 and across["p"] > 0.01 and across["kappa"] < 0.5


def test_parse_task():
    t = parse_task("goalex_syn:style:Group by form.")
    assert (t.corpus, t.facet, t.instruction) == ("goalex_syn", "style", "Group by form.")
    assert parse_task("x:emotion").instruction == "Cluster the texts by emotion."
    suite_task = next(t for t in load_suite("dev") if t.name == "clinc150:domain")
    assert parse_task("clinc150:domain") == suite_task  # a suite task by name runs as the suite runs it
    with pytest.raises(ConfigError, match="CORPUS:FACET"):
        parse_task("nofacet")


def test_stratified_sample_keeps_proportions_and_is_seeded():
    gold = ["a"] * 600 + ["b"] * 300 + ["c"] * 100
    rows = stratified_sample(gold, 100, seed=0)
    counts = {c: sum(gold[i] == c for i in rows) for c in "abc"}
    assert counts == {"a": 60, "b": 30, "c": 10}
    assert rows == stratified_sample(gold, 100, seed=0) != stratified_sample(gold, 100, seed=1)


def test_stratified_sample_with_more_classes_than_room():
    gold = [str(i) for i in range(50) for _ in range(3)]
    assert len(stratified_sample(gold, 20)) == 20


def make_data(tmp_path):
    folder = tmp_path / "toy"
    folder.mkdir(parents=True)
    rows = [{"id": f"t{i}", "text": f"{w} number {i}", "labels": {"kind": w}}
            for i, w in enumerate(["weather rain storm"] * 10 + ["football goal match"] * 10)]
    (folder / "data.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    return tmp_path


def test_load_task_checks_the_facet(tmp_path):
    data = make_data(tmp_path)
    with pytest.raises(ConfigError, match="no label for facet 'mood'"):
        load_task(parse_task("toy:mood"), data)
    assert len(load_task(parse_task("toy:kind"), data, max_docs=8).texts) == 8


def test_runner_writes_results_assignments_table_and_plot(tmp_path):
    from clusteragent.evals.runner import run_eval

    data = make_data(tmp_path / "data")
    out = tmp_path / "out"
    results = run_eval([parse_task("toy:kind")], data, out, methods=["kmeans_oracle", "kmeans_estimated"],
                       max_docs=None, progress=False)
    assert [r["method"] for r in results] == ["kmeans_oracle", "kmeans_estimated"]
    assert results[0]["v_measure"] == 1.0 and results[0]["k_gold"] == 2
    saved = json.loads((out / "results.json").read_text())
    assert {"task", "method", "v_measure", "nmi", "ari", "acc", "k_pred", "k_gold", "n", "wall_s", "model_calls"} <= set(saved[0])
    lines = (out / "toy__kind" / "kmeans_oracle" / "assignments.jsonl").read_text().splitlines()
    assert len(lines) == 20 and json.loads(lines[0])["id"] == "t0"
    assert "| toy:kind |" in (out / "table.md").read_text()
    assert (out / "v_measure.png").stat().st_size > 1000
    assert "versions" in json.loads((out / "settings.json").read_text())


def test_runner_records_a_failing_method_instead_of_crashing(tmp_path, monkeypatch):
    from clusteragent.evals import methods
    from clusteragent.evals.runner import run_eval

    def broken(*args):
        raise RuntimeError("boom")

    monkeypatch.setitem(methods.METHODS, "kmeans_oracle", broken)
    results = run_eval([parse_task("toy:kind")], make_data(tmp_path / "d"), tmp_path / "o",
                       methods=["kmeans_oracle"], max_docs=None, progress=False)
    assert results[0]["error"] == "RuntimeError: boom"


def test_runner_scores_a_two_level_result_at_both_levels(tmp_path, monkeypatch):
    from clusteragent.evals import methods
    from clusteragent.evals.runner import run_eval

    def two_levels(texts, vectors, instruction, k_gold, ctx):  # four leaves of five, two per gold value
        leaves = np.arange(len(texts)) // 5
        return leaves, {"levels": 2, "top_labels": leaves // 2}

    monkeypatch.setitem(methods.METHODS, "kmeans_oracle", two_levels)
    out = tmp_path / "o"
    row = run_eval([parse_task("toy:kind")], make_data(tmp_path / "d"), out, methods=["kmeans_oracle"],
                   max_docs=None, progress=False)[0]
    gold = np.repeat(["weather", "football"], 10)  # make_data's gold, in its order
    leaves = np.arange(20) // 5
    assert row["k_pred"] == 4 and row["v_measure"] == pytest.approx(v_measure_score(gold, leaves), abs=1e-4)
    assert (row["top_k_pred"], row["top_v_measure"], row["top_k_error"]) == (2, 1.0, 0.0)
    assert "top_labels" not in row and "| 1.000 (2) |" in (out / "table.md").read_text()


def test_name_fidelity_is_the_share_of_texts_the_model_puts_back_in_their_own_cluster():
    from fakes import ScriptedChatModel, choices, delimited_texts

    from clusteragent.evals.fidelity import name_fidelity
    from clusteragent.structured import StructuredLLM

    texts = [f"a text about {w} ({i})" for w in ("rain", "goals", "pasta") for i in range(10)]
    labels = [0] * 10 + [1] * 10 + [2] * 10
    labels[25:] = [1] * 5  # five pasta texts sit in the goals cluster: the names cannot send them there
    clusters = [{"cluster": 0, "name": "rain", "description": "weather"},
                {"cluster": 1, "name": "goals", "description": "football"},
                {"cluster": 2, "name": "pasta", "description": "cooking"}]

    def answer(messages, kwargs):  # the model picks the cluster its text names
        text = delimited_texts(messages[-1].content)[0]
        return json.dumps({"cluster": next(c for c in choices(kwargs, "cluster") if c in text)})

    got = name_fidelity(StructuredLLM(ScriptedChatModel(script=answer)), "By topic.", texts, labels, clusters, n=30)
    assert got == {"name_fidelity": round(25 / 30, 4), "name_checks": 30}
    sample = name_fidelity(StructuredLLM(ScriptedChatModel(script=answer)), "By topic.", texts, labels, clusters, n=12)
    assert sample["name_checks"] == 12
    assert name_fidelity(None, "By topic.", texts, [0] * 30, clusters[:1])["name_checks"] == 0  # one cluster: nothing


def test_eval_from_the_command_line_passes_the_model_timeout_and_name_checks(tmp_path, monkeypatch):
    from clusteragent.cli import main
    from clusteragent.evals import runner

    seen = {}

    def fake_run_eval(tasks, data_dir, out, **kw):
        seen.update(kw)
        (out.mkdir(parents=True, exist_ok=True), (out / "table.md").write_text("table\n"))
        return []

    monkeypatch.setattr(runner, "run_eval", fake_run_eval)
    assert main(["eval", "--task", "toy:kind", "--timeout", "30", "--name-checks", "0", "--out",
                 str(tmp_path / "o"), "--quiet"]) == 0
    assert seen["agent_options"]["model_options"] == {"timeout": 30.0} and seen["name_checks"] == 0


def test_pairwise_bench_auc_matches_sklearn_with_ties():
    from sklearn.metrics import roc_auc_score

    from clusteragent.evals.bench_pairwise import auc

    rng = np.random.default_rng(0)
    positive, negative = rng.integers(0, 5, 30).tolist(), rng.integers(0, 4, 40).tolist()  # many ties
    expected = roc_auc_score([1] * 30 + [0] * 40, positive + negative)
    assert auc(positive, negative) == pytest.approx(expected, abs=1e-3)
    assert auc([], [0.5]) is None


def test_the_chat_routing_bench_asks_for_every_operation_at_least_twice():
    from clusteragent.evals.bench_chat_routing import messages
    from clusteragent.refine_schemas import OPERATIONS

    asked = [action for _, action in messages("A", "B", "T", "7", "a text")]
    assert sorted(set(asked)) == sorted(OPERATIONS) and all(asked.count(a) >= 2 for a in OPERATIONS)


def test_the_gold_answer_under_its_gold_names_is_checked_like_a_runs_clusters(tmp_path):
    """A model that sorts every text right puts every checked text back in its gold group; one that always
    answers the first group, only the texts of that group."""
    from fakes import ScriptedChatModel

    from clusteragent.evals.bench_gold_fidelity import gold_fidelity
    from clusteragent.structured import StructuredLLM

    task = parse_task("toy:kind")
    data = load_task(task, make_data(tmp_path))

    def sorting(messages, kwargs):
        text = messages[-1].content
        return json.dumps({"cluster": "Weather rain storm" if "weather" in text else "Football goal match"})
    right = gold_fidelity(StructuredLLM(ScriptedChatModel(script=sorting)), task.instruction, task.facet, data.texts,
                          data.gold, checks=12)
    assert right == {"k": 2, "name_fidelity": 1.0, "name_checks": 12,
                     "names": ["Football goal match", "Weather rain storm"]}
    first = gold_fidelity(StructuredLLM(ScriptedChatModel(script=lambda m, k: json.dumps({"cluster": "Football goal match"}))),
                          task.instruction, task.facet, data.texts, data.gold, checks=20)
    assert first["name_fidelity"] == 0.5  # the toy's 20 texts, 10 of each kind


def test_the_described_bench_scores_matches_and_answers_from_the_gold_labels_of_the_texts_shown():
    from clusteragent.evals.bench_described import GoldAnswers, scored
    from clusteragent.fits import Match, group_fits_request
    from clusteragent.prompts import load_prompt

    truth = np.array([True, True, True, False, False])
    assert scored(np.array([0, 3]), truth) == {"matched": 2, "precision": 0.5, "recall": 0.333, "f1": 0.4}
    texts = ["a <b> tag & more", "plain", "x" * 300, "other", "not {{ this }}"]
    gold = GoldAnswers(texts, truth)
    single = [load_prompt("match").messages(description="d", text=t) for t in texts]
    assert [a.fits for a in gold.decide_many(single, Match)] == ["yes", "yes", "yes", "no", "no"]
    vectors = np.eye(5)
    groups = [group_fits_request("d", "g", texts, vectors, np.array(rows)) for rows in ([0, 2, 3], [1, 3, 4])]
    assert [a.fits for a in gold.decide_many(groups, Match)] == ["yes", "no"] and gold.calls == 7
