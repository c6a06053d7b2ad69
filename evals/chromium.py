"""Headless Chromium for the benchmarks, the screenshots and the browser tests: Debian's package, driven by
Playwright (playwright's own browser download is never used)."""

from __future__ import annotations

import contextlib
import os
import shutil

CHROMIUM = os.environ.get("CLUSTERAGENT_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
# Chromium's background services would try the (closed) network at every start.
FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--disable-dev-shm-usage"]
VIEWPORT = {"width": 1400, "height": 1000}


def available() -> bool:
    return os.path.exists(CHROMIUM)


@contextlib.contextmanager
def chromium_page():
    """A fresh page in a fresh context of a headless Chromium, closed afterwards."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=FLAGS, headless=True)
        try:
            yield browser.new_context(viewport=VIEWPORT).new_page()
        finally:
            browser.close()


def settle(page) -> None:
    """Wait until the page has painted twice (Plotly draws on the next frames)."""
    page.evaluate("() => new Promise(r => requestAnimationFrame(() => requestAnimationFrame(r)))")
