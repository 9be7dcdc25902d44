"""Issue 18's figures, measured in Chromium on a served app: a slider move on Next token (then on Compare and on
the Inside cell) redrawn in the browser,
the server's CPU during a drag, the page following after the release, Append and a bar click against a raw decode
step, all of it again while 7 other sessions (websocket clients, bench/wsclient.py) append and generate on the same
server, and the plainest one-slider Streamlit app as the baseline measured in the same run."""

from __future__ import annotations

import asyncio
import os
import statistics
import threading
import time
from pathlib import Path

from bench.page import cpu_ms
from bench.sessions import CHROMIUM, CHROMIUM_ARGS, serve

PROMPT = "Udacity is the best place to learn about generative"
FIGURES = '[aria-label^="Figures: "]'
TEMPERATURE = '.vega-bindings input[name="temperature_v"]'

# Installed before the page's scripts: the time of the last key press, and whether a script run is going on.
PROBE_JS = """
(() => {
  window.__key = null;
  document.addEventListener('keydown', () => { window.__key = performance.now(); }, true);
  document.addEventListener('keyup', () => { window.__keyup = performance.now(); }, true);
})();
"""
FIGURES_JS = f"""() => {{ const e = document.querySelector('{FIGURES}'); return e ? e.getAttribute('aria-label') : null; }}"""
CHANGED_JS = f"""(before) => {{
  const e = document.querySelector('{FIGURES}');
  const now = e && e.getAttribute('aria-label');
  return now && now !== before && window.__key !== null ? performance.now() - window.__key : false;
}}"""
CHART_JS = """() => { const s = document.querySelector('[data-testid="stVegaLiteChart"] svg'); return s ? s.innerHTML : null; }"""
CHART_CHANGED_JS = """(before) => {
  const s = document.querySelector('[data-testid="stVegaLiteChart"] svg');
  return s && s.innerHTML !== before && window.__key !== null ? performance.now() - window.__key : false;
}"""
IDLE_JS = """() => {
  const app = document.querySelector('[data-testid="stApp"]');
  return app && app.getAttribute('data-test-script-state') === 'notRunning'
    && !document.querySelector('[data-stale="true"], [data-testid="stStatusWidgetRunningIcon"]');
}"""


def load() -> str:
    return f"load {os.getloadavg()[0]:.1f}"


def pct(values, q: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(round(q * (len(values) - 1))))]


def settle(page, ms: int = 400) -> None:
    page.wait_for_function(IDLE_JS, timeout=180_000, polling=50)
    time.sleep(ms / 1000)
    page.wait_for_function(IDLE_JS, timeout=180_000, polling=50)


def key_moves(page, target, read_js: str, changed_js: str, moves: int, gap_s: float) -> list[float]:
    """ms from each key press on `target` (a selector or locator) to the first frame that shows the change (one
    warm-up move first)."""
    (page.locator(target) if isinstance(target, str) else target).focus()
    out = []
    for i in range(moves + 1):
        before = page.evaluate(read_js)
        page.evaluate("() => { window.__key = null; }")
        page.keyboard.press("ArrowRight" if i % 2 == 0 else "ArrowLeft")
        ms = page.wait_for_function(changed_js, arg=before, polling="raf", timeout=30_000).json_value()
        if i:
            out.append(ms)
        time.sleep(gap_s)
    return out


def drag_cpu(page, server_pid: int, moves: int = 16) -> float:
    """Server CPU ms per move while a slider is dragged: `moves` key presses 40 ms apart, until the page settles."""
    settle(page)
    page.locator(TEMPERATURE).focus()
    cpu = cpu_ms(server_pid)
    for i in range(moves):
        page.keyboard.press("ArrowRight" if (i // 4) % 2 == 0 else "ArrowLeft")
        time.sleep(0.04)
    settle(page)
    return (cpu_ms(server_pid) - cpu) / moves


def after_release(page, repeats: int = 5) -> list[float]:
    """ms from a move's key release to the page's table, draw sentence and link following it (the run over)."""
    out = []
    page.locator(TEMPERATURE).focus()
    for i in range(repeats):
        settle(page)
        table = page.get_by_test_id("stTable").first.inner_text()
        url = page.url
        page.keyboard.press("ArrowRight" if i % 2 == 0 else "ArrowLeft")
        released = page.evaluate("() => window.__keyup")
        page.wait_for_function(
            """([table, url]) => {
              const t = document.querySelector('[data-testid="stTable"]');
              const app = document.querySelector('[data-testid="stApp"]');
              return t && t.innerText !== table && location.href !== url
                && app.getAttribute('data-test-script-state') === 'notRunning'; }""",
            arg=[table, url], polling="raf", timeout=30_000)
        out.append(page.evaluate("(t) => performance.now() - t", released))
    return out


def clicks(page, what: str, repeats: int = 5) -> list[float]:
    """ms from a click (Append most likely, or the second bar of the chart) to the new distribution drawn and the
    run over; Undo between (not timed)."""
    out = []
    for _ in range(repeats):
        settle(page)
        before = page.evaluate(FIGURES_JS)
        target = (page.get_by_role("button", name="Append most likely") if what == "append"
                  else page.locator('[aria-label*="rank: 2;"][aria-label*="after, exact"]').first)
        start = page.evaluate("() => performance.now()")
        target.click()
        page.wait_for_function(
            f"""(before) => {{ const e = document.querySelector('{FIGURES}');
              const app = document.querySelector('[data-testid="stApp"]');
              return e && e.getAttribute('aria-label') !== before
                && app.getAttribute('data-test-script-state') === 'notRunning'; }}""",
            arg=before, polling="raf", timeout=60_000)
        out.append(page.evaluate("(t) => performance.now() - t", start))
        settle(page)
        page.get_by_role("button", name="Undo").click()
    settle(page)
    return out


def one_slider_app(browser, moves: int) -> dict:
    """The baseline app: key press → chart redrawn (a server round trip per move), and a button's rerun."""
    with serve(script="bench/one_slider_app.py") as (base, _server):
        context = browser.new_context(viewport={"width": 1300, "height": 1000})
        context.add_init_script(PROBE_JS)
        page = context.new_page()
        page.goto(base, timeout=120_000)
        page.get_by_role("slider").wait_for(timeout=120_000)
        settle(page)
        slider = key_moves(page, page.get_by_role("slider"), CHART_JS, CHART_CHANGED_JS, moves, gap_s=0.4)
        floor = []
        for _ in range(7):
            settle(page, 200)
            text = page.get_by_text("Pressed").inner_text()
            start = page.evaluate("() => performance.now()")
            page.get_by_role("button", name="Press").click()
            page.wait_for_function("""(t) => [...document.querySelectorAll('p')].some(p => p.innerText.startsWith('Pressed')
                && p.innerText !== t)""", arg=text, polling="raf", timeout=30_000)
            floor.append(page.evaluate("(t) => performance.now() - t", start))
        context.close()
    return {"slider": slider, "floor": floor[1:]}


class Class:
    """7 other learners on the same server, as websocket sessions: 4 appending and undoing on Next token, 3
    generating on Generate, until stopped."""

    def __init__(self, base: str):
        from bench.wsclient import busy

        self.stop = asyncio.Event()
        self.times: list[float] = []
        self.loop = asyncio.new_event_loop()

        async def main():
            jobs = [busy(base, "next-token", f"prompt=Learner+{i}+writes+about+the", ["Append most likely", "Undo"],
                         self.stop, self.times) for i in range(4)]
            jobs += [busy(base, "generate", f"prompt=Learner+{i}+tells+a+story+about&max_new_tokens=24",
                          ["Generate"], self.stop, self.times) for i in range(3)]
            await asyncio.gather(*jobs, return_exceptions=True)

        self.thread = threading.Thread(target=self.loop.run_until_complete, args=(main(),), daemon=True)

    def __enter__(self):
        self.thread.start()
        deadline = time.monotonic() + 120
        while len(self.times) < 7 and time.monotonic() < deadline:  # every learner has run at least once
            time.sleep(0.2)
        return self

    def __exit__(self, *exc):
        self.loop.call_soon_threadsafe(self.stop.set)
        self.thread.join(timeout=120)


def measure(moves: int = 16) -> dict:
    """Every figure, in one run (one server for the app, one for the baseline app)."""
    from playwright.sync_api import sync_playwright

    if not Path(CHROMIUM).exists():
        raise RuntimeError("Chromium is not installed (apt-get install chromium)")
    out = {}
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            base_app = one_slider_app(browser, moves)
            out["baseline"] = base_app
            out["baseline_load"] = load()
            with serve() as (base, server):
                context = browser.new_context(viewport={"width": 1300, "height": 1000})
                context.add_init_script(PROBE_JS)
                page = context.new_page()
                page.goto(f"{base}/next-token", timeout=300_000)
                page.locator(FIGURES).wait_for(timeout=300_000)
                settle(page)
                out["slider"] = key_moves(page, TEMPERATURE, FIGURES_JS, CHANGED_JS, moves, gap_s=0.4)
                out["slider_load"] = load()
                out["cpu"] = drag_cpu(page, server.pid)
                out["cpu_load"] = load()
                out["release"] = after_release(page)
                out["release_load"] = load()
                out["append"] = clicks(page, "append")
                out["pick"] = clicks(page, "pick")
                out["click_load"] = load()
                with Class(base) as room:
                    out["class_slider"] = key_moves(page, TEMPERATURE, FIGURES_JS, CHANGED_JS, moves, gap_s=0.4)
                    out["class_append"] = clicks(page, "append")
                    out["class_load"] = load()
                out["class_runs"] = len(room.times)
                for name, path in (("compare", "/compare?cmp_processed=true"), ("inside", "/inside")):
                    page.goto(f"{base}{path}", timeout=300_000)  # the same controls on the other two pages
                    page.locator(TEMPERATURE).wait_for(timeout=300_000)
                    settle(page)
                    out[name] = key_moves(page, TEMPERATURE, FIGURES_JS, CHANGED_JS, moves, gap_s=0.4)
                    out[f"{name}_load"] = load()
                context.close()
        finally:
            browser.close()
    return out


def med(values) -> float:
    return statistics.median(values)
