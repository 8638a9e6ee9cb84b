"""The web page in headless Chromium against a real ``songqueue up`` with an API key: submit,
watch the queue and progress, draw the waveform, play, download, cancel, remember the jobs."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import numpy as np
import pytest
import soundfile as sf

from tests.client.up import Up, songqueue_up
from tests.web.browser import CHROMIUM, CHROMIUM_ARGS, missing

if (reason := missing()) is not None:
    pytest.skip(f"browser tests skipped: {reason}", allow_module_level=True)

from playwright.sync_api import Browser, Page, sync_playwright

KEY = "web-test-key"
STEP_SECONDS = 0.2  # TimedEngine: 6 steps per song, so a song runs for about 1.2 s
WAIT_MS = 30_000  # deadline for any one condition on the page


@pytest.fixture(scope="module")
def up(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Up]:
    home = tmp_path_factory.mktemp("web") / "home"
    with songqueue_up(home, api_key=KEY, steps=6, step_seconds=STEP_SECONDS) as running:
        yield running


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with sync_playwright() as pw:
        launched = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield launched
        launched.close()


@pytest.fixture
def page(browser: Browser, up: Up) -> Iterator[Page]:
    context = browser.new_context(accept_downloads=True, viewport={"width": 1280, "height": 900})
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.goto(up.base + "/")
    page.fill("#api-key", KEY)
    page.dispatch_event("#api-key", "change")
    yield page
    context.close()
    assert errors == [], f"JavaScript errors on the page: {errors}"


def card(job_id: str) -> str:
    return f'#jobs li[data-job-id="{job_id}"]'


def submit(page: Page, **fields: str) -> str:
    """Fill the form, press Generate, and return the new job's id (the top card)."""
    before = page.locator("#jobs li").count()
    for name, value in fields.items():
        selector = f'#generate [name="{name}"]'
        if page.locator(selector).evaluate("el => el.tagName") == "SELECT":
            page.select_option(selector, value)
        else:
            page.fill(selector, value)
    page.click("#submit")
    page.wait_for_function(
        f"() => document.querySelectorAll('#jobs li').length > {before}", timeout=WAIT_MS
    )
    job_id = page.locator("#jobs li").first.get_attribute("data-job-id")
    assert job_id
    return job_id


def wait_status(page: Page, job_id: str, status: str) -> None:
    page.wait_for_selector(f'{card(job_id)}[data-status="{status}"]', timeout=WAIT_MS)


def server_file(url: str) -> Path:
    return Path(parse_qs(urlsplit(url).query)["path"][0])


def test_submit_watch_progress_play_and_download(page: Page, up: Up) -> None:
    first = submit(page, caption="warm lo-fi piano", lyrics="[verse]\nla la", audio_duration="2",
                   batch_size="2", seed="11")  # fmt: skip
    second = submit(page, caption="second in line", audio_duration="1")

    # the second job waits behind the first: its place in the queue is shown
    wait_status(page, second, "queued")
    assert "in the queue" in page.inner_text(f"{card(second)} .detail")
    # the first one runs: the bar moves and the steps are counted
    page.wait_for_function(
        """id => {
            const li = document.querySelector(`#jobs li[data-job-id="${id}"]`);
            const p = parseFloat(li.querySelector('.progress').dataset.progress);
            return li.dataset.status === 'running' && p > 0 && p < 1;
        }""",
        arg=first,
        timeout=WAIT_MS,
    )
    assert "/12" in page.inner_text(f"{card(first)} .detail")  # 6 steps x batch 2

    wait_status(page, first, "succeeded")
    assert page.get_attribute(f"{card(first)} .progress", "data-progress") == "1.000"
    assert "seed 11," in page.inner_text(f"{card(first)} .detail")
    # one player per song, each with a waveform decoded by WebAudio
    page.wait_for_function(
        """id => [...document.querySelectorAll(`#jobs li[data-job-id="${id}"] canvas`)]
                 .filter(c => c.dataset.decoded === '1').length === 2""",
        arg=first,
        timeout=WAIT_MS,
    )
    for canvas in page.locator(f"{card(first)} canvas").all():
        assert abs(float(canvas.get_attribute("data-duration") or 0) - 2.0) < 0.1
        assert float(canvas.get_attribute("data-peak") or 0) > 0.2  # TimedEngine: 0.3 sine
    drawn = page.evaluate(
        """id => {
            const c = document.querySelector(`#jobs li[data-job-id="${id}"] canvas`);
            const px = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
            let lit = 0;
            for (let i = 3; i < px.length; i += 4) if (px[i] > 0) lit++;
            return lit / (c.width * c.height);
        }""",
        first,
    )
    assert drawn > 0.2  # the waveform is painted, not blank

    # the <audio> element plays, authenticated through ?ai_token=
    audio = page.locator(f"{card(first)} audio").first
    src = audio.get_attribute("src") or ""
    assert f"ai_token={KEY}" in src
    audio.evaluate("el => el.play()")
    page.wait_for_function(
        "id => document.querySelector(`#jobs li[data-job-id=\"${id}\"] audio`).currentTime > 0.2",
        arg=first,
        timeout=WAIT_MS,
    )

    # download: the same bytes as the file on the server, with a readable name
    with page.expect_download(timeout=WAIT_MS) as download_info:
        page.locator(f"{card(first)} a.download").first.click()
    download = download_info.value
    assert download.suggested_filename == f"songqueue-{first[:8]}-1.mp3"
    saved = Path(download.path())
    job: dict[str, Any] = up.job(first)
    original = server_file(job["result"]["audio_paths"][0])
    assert hashlib.sha256(saved.read_bytes()).digest() == hashlib.sha256(
        original.read_bytes()
    ).digest()
    data, rate = sf.read(str(saved))
    assert abs(len(data) / rate - 2.0) < 0.1 and np.abs(data).max() > 0.2

    # the jobs of this browser survive a reload (localStorage), players and all
    wait_status(page, second, "succeeded")
    page.reload()
    wait_status(page, first, "succeeded")
    wait_status(page, second, "succeeded")
    assert page.locator(f"{card(first)} audio").count() == 2
    assert page.input_value("#api-key") == KEY


def test_cancel_from_the_page(page: Page, up: Up) -> None:
    job_id = submit(page, caption="too long", audio_duration="1", batch_size="8")
    wait_status(page, job_id, "running")
    page.click(f"{card(job_id)} .cancel")
    wait_status(page, job_id, "cancelled")
    assert page.is_hidden(f"{card(job_id)} .cancel")
    job = up.job(job_id)
    assert job["cancelled"] and job["result"] is None


def test_cover_uploads_the_source_song(page: Page, up: Up, tmp_path: Path) -> None:
    source = tmp_path / "source.wav"
    rate = 44100
    tone = 0.2 * np.sin(2 * np.pi * 330 * np.arange(rate) / rate)
    sf.write(str(source), np.stack([tone, tone], axis=1), rate)
    page.select_option('#generate [name="task_type"]', "cover")
    assert page.is_visible('#generate [name="src_audio"]')
    page.set_input_files('#generate [name="src_audio"]', str(source))
    job_id = submit(page, caption="a cover", audio_format="wav")
    wait_status(page, job_id, "succeeded")
    job = up.job(job_id)
    assert job["task_type"] == "cover"
    assert server_file(job["result"]["audio_paths"][0]).suffix == ".wav"


def test_wrong_key_is_reported_on_the_form(page: Page) -> None:
    page.fill("#api-key", "not-the-key")
    page.dispatch_event("#api-key", "change")
    page.fill('#generate [name="caption"]', "refused")
    page.click("#submit")
    page.wait_for_selector("#form-error:has-text('Invalid API key')", timeout=WAIT_MS)
    assert page.locator("#jobs li").count() == 0
