"""Shared helpers for the real-browser tests: find Chromium, serve a folder, drive it with Playwright.

Locally the browser tests skip with a one-line reason when Chromium (Debian ``chromium``) or
Playwright is missing. ``.ci/run`` installs both and sets ``DDNM_EDU_REQUIRE_BROWSER=1``, which
turns every such skip into a failure, so the browser tests cannot silently not run in CI.
Playwright drives the Debian binary through ``executable_path``: ``playwright install`` cannot
download browsers here.
"""

from __future__ import annotations

import contextlib
import functools
import http.server
import os
import shutil
import threading
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
ARTEFACTS = ROOT / "_build" / "browser-artefacts"  # screenshots and timings (ignored by git)


def require(condition: bool, reason: str) -> None:
    """Skip with ``reason`` -- or fail, where CI requires the browser tests to run."""
    if condition:
        return
    if os.environ.get("DDNM_EDU_REQUIRE_BROWSER") == "1":
        pytest.fail(f"{reason} (DDNM_EDU_REQUIRE_BROWSER=1: the browser tests must run here)")
    pytest.skip(reason)


def chromium_path() -> str:
    path = next((p for p in (shutil.which(n) for n in ("chromium", "chromium-browser", "google-chrome")) if p), None)
    require(path is not None, "no Chromium on this machine (apt-get install -y chromium)")
    try:
        import playwright  # noqa: F401
    except ImportError:
        require(False, "Playwright is not installed (pip install -e '.[test]')")
    return path


@contextlib.contextmanager
def serve(folder: Path):
    """A static HTTP server on 127.0.0.1 (a free port) for ``folder``; yields its base URL."""
    handler = functools.partial(_QuietHandler, directory=str(folder))
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}"
    finally:
        httpd.shutdown()
        httpd.server_close()


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args) -> None:
        pass


@contextlib.contextmanager
def offline_browser(allowed_origin: str, viewport=(1280, 900)):
    """A Playwright Chromium page that may reach ``allowed_origin`` only.

    Every other request is aborted and recorded, as are failed requests, console errors and page
    errors: ``page.problems`` lists them all.
    """
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium_path(), args=["--no-sandbox", "--disable-gpu"])
        context = browser.new_context(viewport={"width": viewport[0], "height": viewport[1]})
        problems: list[str] = []

        def route(r):
            if r.request.url.startswith(allowed_origin) or r.request.url.startswith("data:"):
                r.continue_()
            else:
                problems.append(f"blocked request to the network: {r.request.url}")
                r.abort()

        context.route("**/*", route)
        page = context.new_page()
        page.on(
            "requestfailed",
            lambda r: (
                problems.append(f"failed request: {r.url} ({r.failure})") if r.url.startswith(allowed_origin) else None
            ),
        )
        page.on("console", lambda m: problems.append(f"console {m.type}: {m.text}") if m.type == "error" else None)
        page.on("pageerror", lambda e: problems.append(f"page error: {e}"))
        page.problems = problems
        try:
            yield page
        finally:
            context.close()
            browser.close()
