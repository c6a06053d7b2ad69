"""Headless Chromium (Debian's /usr/bin/chromium, driven by Playwright) and a served app on loopback, for tests.

Without a browser the browser tests skip, unless CLUSTERAGENT_REQUIRE_BROWSER=1 (as in CI), when they fail.
"""

from __future__ import annotations

import contextlib
import os

import numpy as np
import pytest

from clusteragent.evals.chromium import CHROMIUM, available, chromium_page


def require_browser():
    if not available():
        if os.environ.get("CLUSTERAGENT_REQUIRE_BROWSER") == "1":
            pytest.fail(f"no Chromium at {CHROMIUM}: install Debian's chromium package")
        pytest.skip("no Chromium: install Debian's chromium package to run the browser tests")
    pytest.importorskip("playwright.sync_api")


@contextlib.contextmanager
def browser_page():
    """A fresh page, with the console errors, page errors and request URLs it saw (page.errors, page.requests)."""
    require_browser()
    with chromium_page() as page:
        page.errors, page.requests = [], []
        page.on("console", lambda m: m.type == "error" and page.errors.append(m.text))
        page.on("pageerror", lambda e: page.errors.append(str(e)))
        page.on("request", lambda r: page.requests.append(r.url))
        yield page


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
