"""Regenerate ``docs/screenshot.png``: the page with a finished, a running and a queued job.

Not a test (pytest does not collect it). Run ``python -m tests.web.make_screenshot [OUT]``; it
starts ``songqueue up --engine synth`` in a temporary directory and drives headless Chromium.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

from tests.client.up import songqueue_up
from tests.web.browser import CHROMIUM, CHROMIUM_ARGS, missing

OUT = Path(__file__).resolve().parents[2] / "docs" / "screenshot.png"
WAIT_MS = 120_000
LYRICS = """[verse]
Streetlights hum a quiet tune
Coffee cooling, half past two
[chorus]
Stay a while, the night is long
Hold the note and hum along"""


def fill(page, **fields: str) -> None:  # type: ignore[no-untyped-def]
    for name, value in fields.items():
        selector = f'#generate [name="{name}"]'
        if page.locator(selector).evaluate("el => el.tagName") == "SELECT":
            page.select_option(selector, value)
        else:
            page.fill(selector, value)


def main(out: Path = OUT) -> None:
    reason = missing()
    if reason:
        sys.exit(reason)
    from playwright.sync_api import sync_playwright

    with tempfile.TemporaryDirectory() as tmp, songqueue_up(
        Path(tmp) / "home", engine="synth"
    ) as up, sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1280, "height": 860})
        page.goto(up.base + "/")
        fill(page, caption="warm lo-fi hip hop, mellow piano, vinyl crackle", lyrics=LYRICS,
             audio_duration="24", bpm="84", key_scale="F major", batch_size="2")  # fmt: skip
        page.click("#submit")
        page.wait_for_selector('#jobs li[data-status="succeeded"] canvas[data-decoded="1"]',
                               timeout=WAIT_MS)  # fmt: skip
        page.wait_for_function(
            "() => [...document.querySelectorAll('canvas')].every(c => c.dataset.decoded)",
            timeout=WAIT_MS,
        )
        fill(page, caption="upbeat synthwave, gated drums, arpeggiated bass", lyrics="",
             audio_duration="240", bpm="118", key_scale="A minor", batch_size="4")  # fmt: skip
        page.click("#submit")
        fill(page, caption="acoustic folk ballad, fingerpicked guitar", audio_duration="90",
             bpm="", key_scale="", batch_size="1")  # fmt: skip
        page.click("#submit")
        page.wait_for_function(
            """() => {
                const li = document.querySelector('#jobs li[data-status="running"]');
                return li && parseFloat(li.querySelector('.progress').dataset.progress) > 0.3;
            }""",
            timeout=WAIT_MS,
        )
        page.evaluate(  # show the played part of the first waveform
            """() => {
                const a = document.querySelector('#jobs li[data-status="succeeded"] audio');
                a.currentTime = a.duration * 0.35;
            }"""
        )
        fill(page, caption="dreamy shoegaze, washed-out guitars", audio_duration="60")
        page.evaluate("() => document.activeElement.blur()")
        page.wait_for_timeout(300)  # let the seek repaint before the picture
        page.screenshot(path=str(out), full_page=True)
        browser.close()
    print(out)


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else OUT)
