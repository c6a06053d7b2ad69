"""The HTML report, the exports and the served API, with the scripted model (no browser: see test_browser.py)."""

import json
import re
import threading
import time

import numpy as np
import pandas as pd
import pytest
from test_agent import TEXTS, TRUTH
from test_refine import chat_model

from clusteragent import ClusterAgent
from clusteragent.cli import main

HOSTILE = 'The storm <img src=x onerror="window.pwned=1"> <script>window.pwned=1</script> hit the city'
HOSTILE_NAME = "<script>window.pwned=1</script>"


def hostile_run(out, monkeypatch, decisions=()):
    """A run folder over the test corpus plus a text that carries markup (the model reads it as weather)."""
    monkeypatch.setitem(TRUTH, HOSTILE, ("weather", "angry"))
    agent = ClusterAgent(model=chat_model(list(decisions)), progress=False, max_model_calls=60)
    agent.fit(TEXTS + [HOSTILE], instruction="Cluster by topic.", out_dir=out)
    agent.result_.write(out)
    return agent


def outside_scripts(page: str) -> str:
    return re.sub(r"(?is)<script\b[^>]*>.*?</script>", "", page)


def test_report_is_one_offline_file_with_every_cluster_and_inert_markup(tmp_path, monkeypatch):
    agent = hostile_run(tmp_path / "run", monkeypatch)
    result = agent.result_
    result.clusters[0]["name"] = HOSTILE_NAME  # a name can carry markup too
    path = result.report(tmp_path / "report.html")
    page = path.read_text()
    markup = outside_scripts(page)
    loaded = re.findall(r"(?i)<(?:script|link|img|iframe)[^>]*?(?:src|href)\s*=\s*[\"']?([^\"'\s>]*)", page)
    assert loaded == ["data:,"]  # nothing is loaded from anywhere (the icon is an empty data: URL)
    assert "http://" not in markup and "https://" not in markup
    assert HOSTILE_NAME not in page and "<img src=x" not in page  # escaped everywhere, in markup and in JSON
    assert "&lt;script&gt;window.pwned=1&lt;/script&gt;" in markup
    figures = json.loads(re.search(r'<script type="application/json" id="figures">(.*?)</script>', page, re.S).group(1))
    hover = [t for trace in figures["map"]["data"] for t in trace["text"]]
    assert len(hover) == len(result.ids)  # every text is a point
    assert any("&lt;img src=x onerror=" in t for t in hover)
    for c in result.clusters[1:]:
        assert f">{c['name']}" in markup
    assert {trace["type"] for trace in figures["map"]["data"]} == {"scattergl"}
    assert figures["sizes"]["data"][0]["x"] == [c["size"] for c in result.clusters[::-1]]


def test_report_shows_the_run_facts_notes_and_chat_history(tmp_path, monkeypatch):
    agent = hostile_run(tmp_path / "run", monkeypatch,
                        [{"action": "merge", "clusters": ["weather", "cooking"], "new_name": "home"}])
    agent.chat('Merge "weather" and "cooking" into one called home.')
    markup = outside_scripts(agent.report(tmp_path / "r.html").read_text())
    assert "Cluster by topic." in markup and "Model calls" in markup
    assert "Merge &#34;weather&#34; and &#34;cooking&#34; into one called home." in markup
    assert "3 → 2 clusters" in markup and ">Home" in markup


def test_a_hover_label_keeps_a_title_apart_from_its_body():
    from clusteragent.report import hover_text

    assert hover_text("Bridges Loom as Cash Cow\n\nThere they  stand <b>") == \
        "Bridges Loom as Cash Cow<br>There they stand &lt;b&gt;"
    assert hover_text("one\nline") == "one line"


def test_report_draws_given_coordinates_and_refuses_wrong_ones(tmp_path):
    agent = ClusterAgent(model=chat_model([]), progress=False, max_model_calls=60).fit(TEXTS, "Cluster by topic.")
    result = agent.result_
    xy = np.column_stack([np.arange(len(TEXTS)), -np.arange(len(TEXTS))]).astype(np.float32)
    page = result.report(tmp_path / "r.html", coordinates=xy).read_text()
    figures = json.loads(re.search(r'id="figures">(.*?)</script>', page, re.S).group(1))
    trace = figures["map"]["data"][0]
    rows = np.flatnonzero(result.cluster == result.clusters[0]["cluster"])
    drawn = _decoded(trace["x"]) if isinstance(trace["x"], dict) else np.asarray(trace["x"], dtype=float)
    assert np.allclose(drawn, xy[rows, 0])
    with pytest.raises(ValueError, match="one row per text"):
        result.report(tmp_path / "bad.html", coordinates=xy[:5])


def _decoded(typed: dict) -> np.ndarray:
    """Plotly's typed-array JSON ({dtype, bdata}) back to numbers."""
    import base64

    return np.frombuffer(base64.b64decode(typed["bdata"]), dtype=np.dtype(typed["dtype"])).astype(float)


def test_csv_export_neutralises_formula_cells_and_keeps_numbers(tmp_path):
    texts = ["=HYPERLINK(\"http://x\")", "+1+1", "-2-2", "@SUM(A1)", "plain text here", "\tTabbed start"] * 2
    result = _two_cluster_result(texts)
    path = result.to_csv(tmp_path / "out.csv", with_text=True)
    frame = pd.read_csv(path, keep_default_na=False)
    assert list(frame["text"][:6]) == ["'=HYPERLINK(\"http://x\")", "'+1+1", "'-2-2", "'@SUM(A1)", "plain text here",
                                       "'\tTabbed start"]
    assert frame["cluster"].tolist() == result.cluster.tolist()  # numbers, -1 included, stay numbers
    assert -1 in frame["cluster"].tolist()


def _two_cluster_result(texts):
    from clusteragent.result import ClusterResult

    cluster = np.array([0, -1] * (len(texts) // 2))
    return ClusterResult(ids=list(range(len(texts))), texts=texts, cluster=cluster,
                         confidence=np.ones(len(texts), np.float32),
                         clusters=[{"cluster": 0, "name": "=cmd", "size": len(texts) // 2},
                                   {"cluster": -1, "name": "Outliers", "size": len(texts) // 2}])


def test_exports_agree_with_the_result(tmp_path):
    agent = ClusterAgent(model=chat_model([]), progress=False, max_model_calls=60).fit(TEXTS, "Cluster by topic.")
    result = agent.result_
    expected = result.to_pandas()
    parquet = pd.read_parquet(result.to_parquet(tmp_path / "a.parquet", with_text=True))
    pd.testing.assert_frame_equal(parquet, expected)
    lines = [json.loads(line) for line in result.to_jsonl(tmp_path / "a.jsonl").read_text().splitlines()]
    assert lines == result.records()


def test_cli_report_and_export_write_beside_the_run_and_never_over_its_files(tmp_path, monkeypatch, capsys):
    out = tmp_path / "run"
    agent = hostile_run(out, monkeypatch)
    assert main(["report", str(out)]) == 0
    assert (out / "report.html").stat().st_size > 1_000_000  # plotly.js is inside
    assert main(["export", str(out), "--format", "parquet"]) == 0
    frame = pd.read_parquet(out / "export.parquet")
    assert frame["id"].tolist() == agent.result_.ids and frame["text"].tolist() == TEXTS + [HOSTILE]
    for argv in (["report", str(out), "--html", str(out / "run.json")],
                 ["export", str(out), "--format", "jsonl", "--out", str(out / "assignments.jsonl")]):
        assert main(argv) == 2
        assert "one of the run's own files" in capsys.readouterr().err
    assert json.loads((out / "run.json").read_text())["k"] == agent.result_.k


# ---------------------------------------------------------------- the served API

@pytest.fixture
def service(tmp_path, monkeypatch):
    from clusteragent.serve import RunService

    out = tmp_path / "run"
    hostile_run(out, monkeypatch)
    decisions = [{"action": "merge", "clusters": ["weather", "cooking"]}, {"action": "merge", "clusters": ["weather", "cooking"]}]
    return RunService(out, model=chat_model(decisions))


def client(service, host="127.0.0.1"):
    from fastapi.testclient import TestClient

    from clusteragent.serve import create_app

    return TestClient(create_app(service), base_url=f"http://{host}")


def test_api_chat_merges_undo_restores_and_files_follow(service):
    api = client(service)
    before = api.get("/api/clusters").json()
    answer = api.post("/api/chat", json={"message": 'Merge "weather" and "cooking".'}).json()
    assert answer["changed"] and answer["k"] == before["k"] - 1 and answer["action"] == "merge"
    assert api.get("/api/clusters").json()["k"] == before["k"] - 1
    written = json.loads((service.out / "clusters.json").read_text())
    assert len(written) == before["k"] - 1  # the run's files follow the page
    assert api.post("/api/undo", json={}).json()["k"] == before["k"]
    after = api.get("/api/clusters").json()
    assert [c["name"] for c in after["clusters"]] == [c["name"] for c in before["clusters"]]
    run = api.get("/api/run").json()
    assert run["version"] == 2 and [t["action"] for t in run["refinements"]] == ["merge", "undo"]


def test_a_second_tab_and_a_second_server_see_the_same_state(service):
    from clusteragent.serve import RunService

    first, second = client(service), client(service)
    other = client(RunService(service.out, model=chat_model([])))  # another process on the same folder
    first.post("/api/chat", json={"message": 'Merge "weather" and "cooking".'})
    k = first.get("/api/clusters").json()["k"]
    assert second.get("/api/clusters").json()["k"] == k == other.get("/api/clusters").json()["k"]
    assert second.get("/api/run").json()["version"] == 1 == other.get("/api/run").json()["version"]


def test_two_turns_at_once_run_one_after_the_other(service):
    api = client(service)
    inside, most = [0], [0]
    real = service.session.turn_and_write

    def slow_turn(*args, **kwargs):
        inside[0] += 1
        most[0] = max(most[0], inside[0])
        time.sleep(0.3)
        try:
            return real(*args, **kwargs)
        finally:
            inside[0] -= 1

    service.session.turn_and_write = slow_turn
    answers = []
    threads = [threading.Thread(target=lambda m=m: answers.append(api.post("/api/chat", json={"message": m}).json()))
               for m in ('Merge "weather" and "cooking".', "undo")]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert most[0] == 1 and len(answers) == 2
    assert len(api.get("/api/run").json()["refinements"]) == 2


def test_api_refuses_what_a_page_elsewhere_could_send(service):
    api = client(service)
    assert api.post("/api/chat", content='{"message": "undo"}', headers={"Content-Type": "text/plain"}).status_code == 415
    assert api.post("/api/chat", data={"message": "undo"}).status_code == 415  # a form post
    assert client(service, host="attacker.example").get("/api/clusters").status_code == 400  # DNS rebinding
    assert api.post("/api/chat", json={"message": ""}).status_code == 422
    assert api.get("/api/run").json()["version"] == 0  # nothing ran
    assert api.get("/../run.json").status_code == 404


def test_the_page_lists_every_cluster_and_escapes_the_texts(service):
    page = client(service).get("/").text
    markup = outside_scripts(page)
    for c in service.agent.result_.clusters:
        assert f">{c['name']}" in markup
    assert "<img src=x" not in page and 'id="chat-form"' in page


def test_undo_typed_alone_needs_no_model_call():
    agent = ClusterAgent(model=chat_model([{"action": "merge", "clusters": ["weather", "cooking"]}]), progress=False,
                         max_model_calls=60).fit(TEXTS, "Cluster by topic.")
    k = agent.result_.k
    agent.chat('Merge "weather" and "cooking".')
    calls = len(agent.chat_model().calls)
    assert "Undid" in agent.chat("Undo.") and agent.result_.k == k
    assert len(agent.chat_model().calls) == calls


def test_two_levels_draw_a_sunburst_and_nest_the_list(tmp_path):
    from clusteragent.result import ClusterResult

    texts = [f"text {i} about {'rain' if i % 4 < 2 else 'goals'} {'storm' if i % 2 else 'sun'}" for i in range(40)]
    leaf = np.array([i % 4 for i in range(40)])
    leaves = [{"cluster": c, "name": n, "description": f"{n} texts", "size": 10, "level": 2, "parent": p,
               "representative_ids": [c], "representative_texts": [texts[c]]}
              for c, n, p in ((0, "Sunny days", 10), (1, "Storms", 10), (2, "Home wins", 11), (3, "Away wins", 11))]
    tops = [{"cluster": 10, "name": "Weather", "description": "", "size": 20, "level": 1, "parent": None,
             "children": [0, 1]},
            {"cluster": 11, "name": "Football", "description": "", "size": 20, "level": 1, "parent": None,
             "children": [2, 3]}]
    result = ClusterResult(ids=list(range(40)), texts=texts, cluster=leaf, confidence=np.ones(40, np.float32),
                           clusters=leaves, top_clusters=tops)
    page = result.report(tmp_path / "r.html", coordinates=np.random.default_rng(0).normal(size=(40, 2))).read_text()
    figures = json.loads(re.search(r'id="figures">(.*?)</script>', page, re.S).group(1))
    tree = figures["tree"]["data"][0]
    assert tree["type"] == "sunburst" and dict(zip(tree["ids"], tree["parents"])) == {
        "t10": "", "t11": "", "c0": "t10", "c1": "t10", "c2": "t11", "c3": "t11"}
    markup = outside_scripts(page)
    weather = markup[markup.index(">Weather"):markup.index(">Football")]
    assert "Sunny days" in weather and "Storms" in weather and "Home wins" not in weather
    legend = {trace["legendgrouptitle"]["text"] for trace in figures["map"]["data"]}
    assert legend == {"Weather", "Football"}


def test_the_page_counts_in_words(tmp_path):
    from clusteragent.result import ClusterResult

    texts = [f"note {i} about the weather" for i in range(1200)] + ["one odd note"]
    clusters = [{"cluster": c, "name": n, "description": "", "size": size, "level": 1, "parent": None,
                 "representative_ids": [0], "representative_texts": [texts[0]]}
                for c, n, size in ((0, "Weather", 1200), (1, "Odd", 1))]
    result = ClusterResult(ids=list(range(1201)), texts=texts, cluster=np.array([0] * 1200 + [1]),
                           confidence=np.ones(1201, np.float32), clusters=clusters)
    markup = outside_scripts(result.report(tmp_path / "r.html", coordinates=np.zeros((1201, 2))).read_text())
    assert "clusters · 1,201 texts<" in markup
    assert "#0 · 1,200 texts<" in markup and "#1 · 1 text<" in markup


def test_the_maps_legend_lists_the_top_level_largest_first_as_a_run_prints_it(tmp_path):
    from clusteragent.result import ClusterResult

    spec = (("Big leaf", 15, 10), ("Mid one", 12, 11), ("Mid two", 12, 11), ("Alone", 8, None), ("Tiny", 3, 10))
    leaf = np.repeat(np.arange(5), [n for _, n, _ in spec])
    texts = [f"text {i}" for i in range(len(leaf))]
    leaves = [{"cluster": c, "name": name, "description": "", "size": n, "level": 1 if p is None else 2, "parent": p,
               "representative_ids": [], "representative_texts": []} for c, (name, n, p) in enumerate(spec)]
    tops = [{"cluster": 10, "name": "Small top", "description": "", "size": 18, "level": 1, "parent": None,
             "children": [0, 4]},
            {"cluster": 11, "name": "Large top", "description": "", "size": 24, "level": 1, "parent": None,
             "children": [1, 2]}]
    result = ClusterResult(ids=list(range(len(leaf))), texts=texts, cluster=leaf, confidence=np.ones(len(leaf), np.float32),
                           clusters=leaves, top_clusters=tops)
    page = result.report(tmp_path / "r.html", coordinates=np.random.default_rng(0).normal(size=(len(leaf), 2))).read_text()
    traces = json.loads(re.search(r'id="figures">(.*?)</script>', page, re.S).group(1))["map"]["data"]
    assert [t["name"] for t in traces] == ["Mid one", "Mid two", "Big leaf", "Tiny", "Alone"]


def test_serving_beyond_loopback_warns_and_loopback_does_not(tmp_path, monkeypatch, capsys):
    import uvicorn

    from clusteragent import serve as serving

    out = tmp_path / "run"
    hostile_run(out, monkeypatch)
    bound = []
    monkeypatch.setattr(uvicorn, "run", lambda app, host, port, **kw: bound.append((host, port)))
    monkeypatch.setattr(serving, "RunService", lambda out, **kw: type("S", (), {"current": lambda self: None,
                                                                              "session": None})())
    monkeypatch.setattr("clusteragent.prompt_state.read_ahead", lambda session: None)
    assert main(["serve", str(out)]) == 0
    assert "warning" not in capsys.readouterr().err
    assert main(["serve", str(out), "--host", "0.0.0.0", "--port", "9000"]) == 0
    assert "warning: serving on 0.0.0.0" in capsys.readouterr().err
    assert bound == [("127.0.0.1", 8765), ("0.0.0.0", 9000)]


def test_every_cluster_colour_can_be_seen_on_white_and_fifty_clusters_get_their_own():
    from clusteragent.report import MAX_LUMINANCE, luminance, palette

    assert luminance("#000000") == 0 and luminance("#FFFFFF") == pytest.approx(1)
    assert luminance("#E2E2E2") > MAX_LUMINANCE and luminance("#F7E1A0") > MAX_LUMINANCE  # the palest Alphabet
    shades = palette()
    assert all(luminance(c) <= MAX_LUMINANCE for c in shades)
    assert len({c.upper() for c in shades}) == len(shades) >= 50  # the most clusters a run by subject makes


def cielab(hex_colour: str) -> np.ndarray:
    """A "#RRGGBB" colour in CIELAB (sRGB, D65): a reference for how far apart two colours look."""
    rgb = np.array([int(hex_colour[i:i + 2], 16) / 255 for i in (1, 3, 5)])
    linear = np.where(rgb <= 0.04045, rgb / 12.92, ((rgb + 0.055) / 1.055) ** 2.4)
    xyz = np.array([[0.4124, 0.3576, 0.1805], [0.2126, 0.7152, 0.0722], [0.0193, 0.1192, 0.9505]]) @ linear
    f = np.cbrt(np.maximum(xyz / np.array([0.95047, 1.0, 1.08883]), (6 / 29) ** 3))
    return np.array([116 * f[1] - 16, 500 * (f[0] - f[1]), 200 * (f[1] - f[2])])


def test_the_first_clusters_colours_are_far_apart():
    """A run of a few clusters shows no two of one hue (Alphabet's first four hold two purples, 38 apart)."""
    import itertools

    from clusteragent.report import palette

    first = palette()[:6]
    assert min(np.linalg.norm(cielab(a) - cielab(b)) for a, b in itertools.combinations(first, 2)) > 50
