"""Many people on one server: 8 browser sessions at once share one model copy and never see each other's
text; an unreachable Hub is reported within 5 seconds while the bundled model keeps working."""

from __future__ import annotations

import time
import urllib.parse
from pathlib import Path

import pytest

from .conftest import AppServer, open_app, wait_for_app

pytestmark = pytest.mark.e2e
SESSIONS = 8


def rss_mb(pid: int) -> float:
    """Resident memory of the server process in MB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmRSS")


def text_so_far(page) -> str:
    """The next-token page's running text (the only st.html block holding a <mark> or the prompt)."""
    return page.locator('[data-testid="stHtml"]').first.inner_text()


def test_eight_sessions_share_one_model_and_stay_separate(fresh_app_server, browser):
    server: AppServer = fresh_app_server
    prompts = [f"Session {i} keeps a diary about the" for i in range(SESSIONS)]
    contexts, pages = [], []
    try:
        for i, prompt in enumerate(prompts):
            context = browser.new_context(viewport={"width": 1300, "height": 1000})
            context.set_default_timeout(120_000)
            page = context.new_page()
            contexts.append(context)
            pages.append(page)
            open_app(page, f"{server.base_url}/next-token?prompt={urllib.parse.quote(prompt)}")
            if i == 0:
                time.sleep(1)
                one = rss_mb(server.proc.pid)
        # every session appends at once: click all, then wait for all
        for page in pages:
            page.get_by_role("button", name="Append most likely").click()
        for page in pages:
            wait_for_app(page, timeout_s=180)
        time.sleep(1)
        many = rss_mb(server.proc.pid)
        for i, page in enumerate(pages):
            shown = text_so_far(page)
            assert prompts[i] in shown
            assert all(p not in shown for j, p in enumerate(prompts) if j != i)  # nobody else's prompt
            assert page.locator("mark").count() == 1  # its own single appended token
        ratio = many / one
        print(f"server RSS: 1 session {one:.0f} MB, {SESSIONS} sessions {many:.0f} MB, ratio {ratio:.3f}")
        assert ratio <= 1.25
    finally:
        for context in contexts:
            context.close()


def test_unreachable_hub_is_reported_fast_and_bundled_model_keeps_working(page, base_url):
    open_app(page, f"{base_url}/")  # the server has imported its libraries
    start = time.perf_counter()
    page.goto(f"{base_url}/next-token?model=gpt2", wait_until="domcontentloaded")
    page.get_by_text("is not available here").first.wait_for(timeout=60_000)
    elapsed = time.perf_counter() - start
    wait_for_app(page)
    assert page.get_by_text("Hugging Face Hub").first.is_visible()
    # the bundled model still works in the same session
    open_app(page, f"{base_url}/next-token?model=smollm2-135m")
    assert page.locator('[aria-label^="Figures: "]').first.is_visible()  # the instrument drew
    print(f"Hub-unreachable message after {elapsed:.2f} s")
    assert elapsed < 5
