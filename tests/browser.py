"""Headless Chromium (Debian's /usr/bin/chromium, driven by Playwright) and a served app on loopback, for tests.

Without a browser the browser tests skip, unless CLUSTERAGENT_REQUIRE_BROWSER=1 (as in CI), when they fail.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import threading
import time

import numpy as np
import pytest

CHROMIUM = os.environ.get("CLUSTERAGENT_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
# Chromium's background services would try the closed network at every start.
FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--disable-dev-shm-usage"]


def require_browser():
    if not os.path.exists(CHROMIUM):
        if os.environ.get("CLUSTERAGENT_REQUIRE_BROWSER") == "1":
            pytest.fail(f"no Chromium at {CHROMIUM}: install Debian's chromium package")
        pytest.skip("no Chromium: install Debian's chromium package to run the browser tests")
    pytest.importorskip("playwright.sync_api")


@contextlib.contextmanager
def browser_page():
    """A fresh page, with the console errors, page errors and request URLs it saw (page.errors, page.requests)."""
    from playwright.sync_api import sync_playwright

    require_browser()
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=FLAGS, headless=True)
        try:
            page = browser.new_context(viewport={"width": 1400, "height": 1000}).new_page()
            page.errors, page.requests = [], []
            page.on("console", lambda m: m.type == "error" and page.errors.append(m.text))
            page.on("pageerror", lambda e: page.errors.append(str(e)))
            page.on("request", lambda r: page.requests.append(r.url))
            yield page
        finally:
            browser.close()


@contextlib.contextmanager
def served(app):
    """Run an ASGI app with uvicorn on a free loopback port, in a thread; yields its base URL."""
    import uvicorn

    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("the test server did not start")
        time.sleep(0.05)
    port = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(10)


def not_blank(png: bytes) -> bool:
    """A screenshot that shows something: many colours, not one flat fill."""
    import io

    from PIL import Image

    pixels = np.asarray(Image.open(io.BytesIO(png)).convert("RGB"))
    return pixels.std() > 10 and len(np.unique(pixels.reshape(-1, 3), axis=0)) > 50


def hover_first_point(page) -> str:
    """Move the mouse onto the first point of the map's first trace and return the hover label's text."""
    x, y = page.evaluate("""() => {
        const gd = document.getElementById("fig-map"), trace = gd._fullData[0];
        const box = gd.querySelector(".nsewdrag").getBoundingClientRect();
        return [box.left + gd._fullLayout.xaxis.l2p(trace.x[0]), box.top + gd._fullLayout.yaxis.l2p(trace.y[0])];
    }""")
    page.mouse.move(x + 1, y + 1)
    page.mouse.move(x, y)
    page.wait_for_selector("#fig-map .hoverlayer .hovertext", timeout=5000)
    return page.text_content("#fig-map .hoverlayer .hovertext")
