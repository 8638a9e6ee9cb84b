"""``/docs`` and ``/redoc`` in headless Chromium: the operations of both APIs are listed, and
the pages load nothing from outside the server (no CDN).

Needs Debian's ``chromium`` and the Python ``playwright`` package (never ``playwright
install``: the system browser is used); skipped with the reason when either is missing.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from typing import Any

import pytest

from tests.diffrhythm_api.conftest import Server

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
PAGE_TIMEOUT_MS = 20_000
EXPECTED = {
    "/api/health",
    "/api/generate",
    "/api/edit",
    "/api/status/{task_id}",
    "/api/download/{task_id}",
    "/api/tasks/{task_id}",
    "/release_task",
    "/query_result",
    "/v1/audio",
    "/health",
    "/v1/stats",
    "/v1/models",
    "/v1/model_inventory",
    "/v1/music/generate",
    "/v1/jobs/{job_id}",
}


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    if not shutil.which("chromium") and not shutil.which("/usr/bin/chromium"):
        pytest.skip("chromium is not installed (apt-get install -y chromium)")
    sync_api = pytest.importorskip(
        "playwright.sync_api", reason="playwright is not installed (pip install playwright)"
    )
    with sync_api.sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


def _local(server: Server, urls: list[str]) -> bool:
    return all(u.startswith((server.base, f"blob:{server.base}")) for u in urls)


def _open(browser: Any, url: str) -> tuple[Any, list[str]]:
    page = browser.new_page()
    requested: list[str] = []
    page.on("request", lambda req: requested.append(req.url))
    page.goto(url, timeout=PAGE_TIMEOUT_MS)
    return page, requested


def test_swagger_ui_lists_both_apis(server: Server, browser: Any) -> None:
    page, requested = _open(browser, f"{server.base}/docs")
    page.wait_for_selector(".opblock-summary-path", timeout=PAGE_TIMEOUT_MS)
    paths = set(
        page.eval_on_selector_all(
            ".opblock-summary-path", "els => els.map(e => e.getAttribute('data-path'))"
        )
    )
    assert paths >= EXPECTED, EXPECTED - paths
    tags = page.inner_text(".swagger-ui")
    assert "DiffRhythm" in tags and "ACE-Step" in tags
    assert _local(server, requested), requested
    page.close()


def test_redoc_lists_both_apis(server: Server, browser: Any) -> None:
    page, requested = _open(browser, f"{server.base}/redoc")
    page.wait_for_function(
        "() => document.body.innerText.includes('Create a generation task')",
        timeout=PAGE_TIMEOUT_MS,
    )
    text = page.inner_text("body")
    for summary in ("Generate music", "Edit music", "Create a generation task", "Poll a job"):
        assert summary in text
    assert _local(server, requested), requested
    page.close()
