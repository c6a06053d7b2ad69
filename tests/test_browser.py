"""The report and the served page in a real headless Chromium (Debian's package, driven by Playwright)."""

import pytest
from browser import browser_page, hover_first_point, not_blank
from test_refine import chat_model
from test_report import hostile_run

from clusteragent.serve import running as served

pytestmark = [pytest.mark.browser, pytest.mark.local_server]


def visible_cards(page) -> int:
    return page.locator("#part-clusters .card:not(.hidden)").count()


def test_report_opens_offline_shows_every_cluster_and_hover_and_stays_inert(tmp_path, monkeypatch):
    agent = hostile_run(tmp_path / "run", monkeypatch)
    path = agent.report(tmp_path / "report.html")
    with browser_page() as page:
        page.goto(path.as_uri())
        page.wait_for_selector("#fig-map .scatterlayer, #fig-map canvas")
        assert page.errors == []
        assert all(url.startswith(("file:", "data:", "blob:")) for url in page.requests), page.requests
        text = page.inner_text("body")
        for c in agent.result_.clusters:
            assert c["name"] in text
        label = hover_first_point(page)
        assert "id " in label and "confidence" in label
        page.fill("#search", "onerror")  # the hostile text, found and shown as text
        page.wait_for_function("document.getElementById('hits').textContent.startsWith('1 ')")
        assert visible_cards(page) == 1
        page.fill("#search", "")
        page.wait_for_function("document.getElementById('hits').textContent === ''")
        assert visible_cards(page) == agent.result_.k
        assert page.evaluate("window.pwned") is None
        assert not_blank(page.screenshot())


@pytest.fixture
def merging_service(tmp_path, monkeypatch):
    """A served run over the test corpus (with its hostile text) whose model reads one merge."""
    from clusteragent.serve import RunService, create_app

    out = tmp_path / "run"
    hostile_run(out, monkeypatch)
    service = RunService(out, model=chat_model([{"action": "merge", "clusters": ["weather", "cooking"]}]))
    with served(create_app(service)) as url:
        yield url, service.agent.result_.k


def open_page(page, url):
    page.goto(url + "/")
    page.wait_for_selector("#fig-map canvas")


def test_served_page_merges_by_chat_undoes_and_keeps_markup_inert(merging_service):
    import httpx

    url, k = merging_service
    with browser_page() as page:
        open_page(page, url)
        assert visible_cards(page) == k
        page.fill("#chat-input", 'Merge "weather" and "cooking".')
        page.click("#send")
        page.wait_for_function(f"document.getElementById('k').textContent === '{k - 1}'", timeout=60_000)
        assert visible_cards(page) == k - 1
        assert httpx.get(url + "/api/clusters").json()["k"] == k - 1
        assert "Merge" in page.inner_text("#part-chat")
        page.click("#undo")
        page.wait_for_function(f"document.getElementById('k').textContent === '{k}'", timeout=60_000)
        assert httpx.get(url + "/api/clusters").json()["k"] == k
        page.fill("#search", "onerror")
        page.wait_for_function("document.getElementById('hits').textContent.startsWith('1 ')")
        hover_first_point(page)
        assert page.evaluate("window.pwned") is None
        assert page.errors == []
        assert not_blank(page.screenshot())


def test_a_long_chat_scrolls_in_its_panel_and_keeps_the_form_in_reach(merging_service):
    """On a short window the turns outgrow the chat panel: they scroll inside it, newest in view, and the form
    stays on screen (it was pushed below the sticky panel's edge, where no scrolling reached it)."""
    url, k = merging_service
    with browser_page() as page:
        page.set_viewport_size({"width": 1400, "height": 300})
        open_page(page, url)
        page.fill("#chat-input", 'Merge "weather" and "cooking".')
        page.click("#send")
        page.wait_for_function(f"document.getElementById('k').textContent === '{k - 1}'", timeout=60_000)
        page.click("#undo", timeout=10_000)
        page.wait_for_function(f"document.getElementById('k').textContent === '{k}'", timeout=60_000)
        box = page.evaluate("""() => { window.scrollTo(0, document.body.scrollHeight);
            const b = document.querySelector('aside .turns-box');
            const form = document.getElementById('chat-form').getBoundingClientRect();
            return {overflows: b.scrollHeight > b.clientHeight + 1, atEnd: b.scrollTop + b.clientHeight >= b.scrollHeight - 2,
                    formInView: form.top >= 0 && form.bottom <= innerHeight}; }""")
        assert box == {"overflows": True, "atEnd": True, "formInView": True}
        assert page.errors == []


def test_a_second_tab_follows_a_change_made_in_the_first(merging_service):
    url, k = merging_service
    with browser_page() as first:
        second = first.context.new_page()
        for page in (first, second):
            open_page(page, url)
        first.fill("#chat-input", 'Merge "weather" and "cooking".')
        first.click("#send")
        second.wait_for_function(f"document.getElementById('k').textContent === '{k - 1}'", timeout=30_000)
        assert second.locator("#part-clusters .card").count() == k - 1


@pytest.mark.slow
@pytest.mark.real_model
def test_served_page_refines_with_the_real_embedded_model(tmp_path, shared_model_cache):
    """The embedded model reads a merge typed into the page; the list and the API lose one cluster."""
    import httpx
    from test_real_model import TEXTS as LABELLED

    from clusteragent import ClusterAgent
    from clusteragent.models import DEFAULT_CHAT_MODEL, load_chat_model
    from clusteragent.serve import RunService, create_app

    chat = load_chat_model(DEFAULT_CHAT_MODEL, cache_dir=shared_model_cache)
    texts = [t for t, _ in LABELLED] * 3 + ["the thunderstorm flooded the streets", "send money to my landlord",
                                            "shuffle my jazz playlist"]
    out = tmp_path / "run"
    agent = ClusterAgent(model=chat, max_model_calls=14, review_rounds=1, progress=False)
    agent.fit(texts, instruction="Group the requests by topic.", out_dir=out).result_.write(out)
    service = RunService(out, model=chat)
    names = [c["name"] for c in service.agent.result_.clusters]
    assert len(names) >= 2, names
    with served(create_app(service)) as url, browser_page() as page:
        open_page(page, url)
        page.fill("#chat-input", f'Merge the clusters "{names[-2]}" and "{names[-1]}" into one.')
        page.click("#send")
        page.wait_for_function(f"document.getElementById('k').textContent === '{len(names) - 1}'", timeout=300_000)
        assert httpx.get(url + "/api/clusters").json()["k"] == len(names) - 1
        assert page.errors == []
