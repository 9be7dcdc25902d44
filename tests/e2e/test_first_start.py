"""A new machine's first start, in the browser: a server with an empty weight cache (the bundled GGUF is dequantized,
~30-70 s) shows a progress bar saying what it is doing from the first seconds, to a phone and a laptop at once, and
then the page itself."""

from __future__ import annotations

import re
import time

import pytest

from .conftest import SCREENSHOTS, AppServer, expect, wait_for_app

pytestmark = pytest.mark.e2e


@pytest.fixture
def cold_server(tmp_path):
    server = AppServer("first_start", env={"TOKENSCOPE_CACHE": str(tmp_path / "cache")}).start()
    yield server
    server.stop()


def test_first_start_shows_one_bar_from_the_first_seconds_to_every_visitor(cold_server, browser):
    sizes = {"laptop": {"width": 1440, "height": 900}, "phone": {"width": 390, "height": 844}}
    contexts = {name: browser.new_context(viewport=size) for name, size in sizes.items()}
    try:
        pages = {name: c.new_page() for name, c in contexts.items()}
        opened = time.monotonic()
        for page in pages.values():
            page.goto(f"{cold_server.base_url}/next-token", wait_until="domcontentloaded")
        texts: dict[str, list[str]] = {name: [] for name in pages}
        framed: dict[str, float] = {}  # when each page first had Streamlit's frame, then our bar, watched together
        barred: dict[str, float] = {}
        while len(barred) < len(pages):
            for name, page in pages.items():
                now = time.monotonic()
                if name not in framed and page.locator('[data-testid="stApp"]').count():
                    framed[name] = now
                bar = page.locator('[data-testid="stProgress"]')
                if name in framed and name not in barred and bar.count() and bar.first.is_visible():
                    barred[name] = now
                    texts[name].append(bar.first.inner_text())
            assert time.monotonic() - opened < 20, f"no bar 20 s after opening: frames {framed}, bars {barred}"
            time.sleep(0.02)
        frame_to_bar = {name: round(barred[name] - framed[name], 2) for name in pages}  # the app's own part
        first_bar = min(barred.values()) - opened
        shot_at = {}
        append = {name: page.get_by_role("button", name="Append most likely") for name, page in pages.items()}
        # until every page is done (not "until no page has a bar": both may be between the import's bar and the model's)
        while not all(append[n].count() and not p.locator('[data-testid="stProgress"]').count() for n, p in pages.items()):
            for name, page in pages.items():
                bars = page.locator('[data-testid="stProgress"]')
                if bars.count():
                    try:
                        text = bars.first.inner_text(timeout=1000)
                    except Exception:  # the bar went away between count and read
                        continue
                    if text != texts[name][-1]:
                        texts[name].append(text)
                    if "tensor" in text and name not in shot_at:
                        page.screenshot(path=str(SCREENSHOTS / f"first-start-{name}.png"))
                        shot_at[name] = text
            assert time.monotonic() - opened < 240, "the first start took over 4 minutes"
            time.sleep(0.3)
        for name, page in pages.items():
            wait_for_app(page)
            expect(page.get_by_role("button", name="Append most likely")).to_be_visible()
            seen = " | ".join(texts[name])
            for step in ("tokenizer", "Dequantizing", "Writing the weight cache"):
                assert step in seen, f"{name} never saw {step!r}: {seen[:800]}"
            seconds = [int(s) for s in re.findall(r"\((\d+) s\)", seen)]
            assert seconds == sorted(seconds) and seconds[-1] >= 5, seen[:800]  # time passes on the bar
        print(f"first bar {first_bar:.1f} s after opening, {frame_to_bar} s after each page's frame; the page "
              f"{time.monotonic() - opened:.0f} s; {len(texts['laptop'])} and {len(texts['phone'])} bar texts")
        # Opening to the first bar is mostly the browser fetching and parsing Streamlit's own bundle from a server
        # that has just started: 2.4 s on one machine, 3.9-7.4 s on this one (load ~1) and 5.2 s in a CI run. What
        # this app decides is the rest, from each page's frame to its bar: 0.1-4.5 s here, two tabs and torch's
        # import sharing two cores; a page importing torch and transformers before its bar took 5.4 s for the
        # first visitor (watched failing). The first bar says torch is being imported; the model takes ~30-70 s more.
        first = min(barred, key=barred.get)
        assert "importing torch" in texts[first][0], texts[first][0]
        assert min(frame_to_bar.values()) < 3 and max(frame_to_bar.values()) < 6, frame_to_bar
        assert first_bar < 12, first_bar
    finally:
        for c in contexts.values():
            c.close()
