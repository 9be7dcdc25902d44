"""Slider moves measured through the page itself: Streamlit's AppTest in this process, and a served app in
Chromium (what a person feels). Shared by `make bench`."""

from __future__ import annotations

import os
import statistics
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TEMPERATURES = [0.7, 1.3, 0.5, 1.1, 0.8, 1.2, 0.6, 0.9, 1.4, 1.0]  # every move is a change


def _legacy_pages_off() -> None:
    """What tests/conftest.py's _navigation_mode does: AppTest re-detects Streamlit's legacy `pages/` mode
    before every run, a real server once (ui.page_guard switches it off for good)."""
    from streamlit.runtime.pages_manager import PagesManager

    if getattr(PagesManager.__init__, "_tokenscope_bench", False):
        return
    original = PagesManager.__init__

    def init(self, *args, **kwargs):
        original(self, *args, **kwargs)
        PagesManager.uses_pages_directory = False

    init._tokenscope_bench = True
    PagesManager.__init__ = init


def open_page(page: str, **params):
    """A fresh AppTest session on streamlit_app.py opened on `page` (as tests/test_app.py's open_page)."""
    from streamlit.testing.v1 import AppTest

    _legacy_pages_off()
    at = AppTest.from_file(str(ROOT / "streamlit_app.py"), default_timeout=300)
    for key, value in params.items():
        at.query_params[key] = value
    at.run()
    at.switch_page(page)
    at.run()
    if at.exception:
        raise RuntimeError(f"{page} raised: {[e.value for e in at.exception]}")
    return at


def apptest_slider(model_key: str = "smollm2-135m", moves: int = 9) -> dict:
    """Temperature moves on /next-token through AppTest: forwards of the app's own model (a forward hook on
    models.LOADED's copy) and the median wall time of `set_value(...).run()` (Streamlit's rerun included)."""
    from dashboard import models

    at = open_page("pages/next-token.py")
    model = models.LOADED.get(model_key).model
    if at.session_state["nt_path"].model is not model:
        raise RuntimeError("the page's token path does not run on models.LOADED's model: the hook would count nothing")
    calls = []
    handle = model.register_forward_hook(lambda *a: calls.append(1))
    try:
        move(at, TEMPERATURES[-1])  # warm-up move, not counted
        calls.clear()
        times = []
        before = at.table[0].value["after"].tolist()
        for t in TEMPERATURES[:moves]:
            start = time.perf_counter()
            move(at, t)
            times.append(time.perf_counter() - start)
            if at.exception:
                raise RuntimeError(f"the page raised after a slider move: {[e.value for e in at.exception]}")
        forwards = len(calls)
        changed = at.table[0].value["after"].tolist() != before
        calls.clear()
        at.button(key="nt_append").click().run()  # the counter does count: an append is one forward
        append_forwards = len(calls)
    finally:
        handle.remove()
    return {"forwards": forwards, "ms": statistics.median(times) * 1000, "moves": len(times),
            "append_forwards": append_forwards, "metric_changed": changed}


def move(at, temperature: float) -> None:
    """A temperature move on Next token as the instrument reports it after the release (its on_select callback
    writes the value into the session), and the rerun."""
    at.session_state["temperature"] = temperature
    at.session_state["nt_inst"]["current"]["temperature"] = temperature
    at.run()


# --------------------------------------------------------------------------- in the browser

# Installed before Streamlit's scripts: remembers the last keydown and every change of the script state.
_PROBE_JS = """
(() => {
  if (window.__tsProbe) return;
  window.__tsProbe = true;
  window.__tsKeyAt = null;
  window.__tsRuns = [];  // [script state it left, when]: the state entered is the next entry's (or the current)
  window.__tsLastMutation = performance.now();
  window.__tsMessages = [];  // arrival times of the server's websocket messages
  document.addEventListener('keydown', () => { window.__tsKeyAt = performance.now(); }, true);
  const NativeSocket = window.WebSocket;
  window.WebSocket = function (...args) {
    const socket = new NativeSocket(...args);
    socket.addEventListener('message', () => window.__tsMessages.push(performance.now()));
    return socket;
  };
  window.WebSocket.prototype = NativeSocket.prototype;
  Object.assign(window.WebSocket, {CONNECTING: 0, OPEN: 1, CLOSING: 2, CLOSED: 3});
  const watch = () => {
    new MutationObserver(() => { window.__tsLastMutation = performance.now(); })
      .observe(document.documentElement, {subtree: true, childList: true, characterData: true, attributes: true});
    const hook = () => {
      const app = document.querySelector('[data-testid="stApp"]');
      if (!app) { setTimeout(hook, 20); return; }
      new MutationObserver(records => {
        const now = performance.now();
        for (const r of records) window.__tsRuns.push([r.oldValue, now]);
      }).observe(app, {attributes: true, attributeOldValue: true, attributeFilter: ['data-test-script-state']});
    };
    hook();
  };
  if (document.documentElement) watch(); else document.addEventListener('DOMContentLoaded', watch);
})();
"""

# Settled between moves (never inside a measurement): run over, connected, nothing stale, DOM quiet.
_SETTLED_JS = """
(quietMs) => {
  const app = document.querySelector('[data-testid="stApp"]');
  if (!app || app.getAttribute('data-test-script-state') !== 'notRunning') return false;
  if (app.getAttribute('data-test-connection-state') !== 'CONNECTED') return false;
  if (document.querySelector('[data-stale="true"], [data-testid="stSkeleton"]')) return false;
  if (document.querySelector('[data-testid="stStatusWidgetRunningIcon"]')) return false;
  return performance.now() - window.__tsLastMutation >= quietMs;
}
"""

# What the page shows now: the first Vega chart's SVG and, where there is one, a metric's text.
_SNAPSHOT_JS = """
(metric) => {
  const chart = document.querySelector('[data-testid="stVegaLiteChart"] svg, [data-testid="stVegaLiteChart"] canvas');
  let shown = null;
  if (metric) {
    for (const m of document.querySelectorAll('[data-testid="stMetric"]')) {
      if (m.innerText.startsWith(metric)) shown = m.innerText;
    }
  }
  const svg = chart ? (chart.tagName === 'canvas' ? chart.toDataURL() : chart.innerHTML) : null;
  return {svg, shown};
}
"""

# Polled every animation frame after the key press: true once the chart (and metric) differ from before,
# a script run that started after the key has ended and nothing is stale. Returns the timings in ms.
_UPDATED_JS = """
([before, metric]) => {
  const keyAt = window.__tsKeyAt;
  if (keyAt === null) return false;
  const app = document.querySelector('[data-testid="stApp"]');
  if (!app || app.getAttribute('data-test-script-state') !== 'notRunning') return false;
  const all = window.__tsRuns;
  const steps = all.map((r, i) => ({left: r[0], entered: i + 1 < all.length ? all[i + 1][0] : 'notRunning', at: r[1]}))
    .filter(s => s.at >= keyAt);
  const started = steps.find(s => s.entered === 'running');
  const ended = started && steps.find(s => s.left === 'running' && s.at >= started.at);
  if (!started || !ended) return false;
  if (document.querySelector('[data-stale="true"], [data-testid="stSkeleton"]')) return false;
  const chart = document.querySelector('[data-testid="stVegaLiteChart"] svg, [data-testid="stVegaLiteChart"] canvas');
  if (!chart) return false;
  const svg = chart.tagName === 'canvas' ? chart.toDataURL() : chart.innerHTML;
  if (svg === before.svg) return false;
  if (metric) {
    let shown = null;
    for (const m of document.querySelectorAll('[data-testid="stMetric"]')) {
      if (m.innerText.startsWith(metric)) shown = m.innerText;
    }
    if (shown === before.shown) return false;
  }
  const now = performance.now();
  const messages = window.__tsMessages.filter(t => t >= keyAt && t <= ended.at);
  const last = messages.length ? messages[messages.length - 1] : ended.at;
  return {total: now - keyAt, to_start: started.at - keyAt, run: ended.at - started.at, after_run: now - ended.at,
          last_message: last - keyAt, messages: messages.length};
}
"""


def _settle(page, quiet_ms: int = 600, timeout_ms: int = 180_000) -> None:
    page.wait_for_function(_SETTLED_JS, arg=quiet_ms, timeout=timeout_ms, polling=100)


def cpu_ms(pid: int) -> float:
    """CPU time (user + system) a process has used so far, in ms."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) * 1000 / os.sysconf("SC_CLK_TCK")


def slider_moves(page, slider, metric: str | None, server_pid: int, moves: int = 8) -> dict:
    """Median time from an ArrowRight on the focused `slider` to the first frame that shows the new chart (and
    `metric`) with Streamlit's run over; one warm-up move first; the page settles between moves (not timed).
    Also the server's CPU time per move (its script run and messages, without the browser's rendering)."""
    slider.focus()
    results = []
    for i in range(moves + 1):
        _settle(page)
        before = page.evaluate(_SNAPSHOT_JS, metric)
        page.evaluate("() => { window.__tsKeyAt = null; window.__tsRuns = []; window.__tsMessages = []; }")
        cpu = cpu_ms(server_pid)
        page.keyboard.press("ArrowRight")
        timing = page.wait_for_function(_UPDATED_JS, arg=[before, metric], polling="raf", timeout=60_000).json_value()
        timing["server_cpu"] = cpu_ms(server_pid) - cpu
        if i:  # the first move warms the session's caches up
            results.append(timing)
    _settle(page)

    def med(key):
        return statistics.median(r[key] for r in results)

    return {"ms": med("total"), "to_start": med("to_start"), "run": med("run"), "after_run": med("after_run"),
            "last_message": med("last_message"), "messages": med("messages"), "server_cpu": med("server_cpu"),
            "moves": len(results),
            "all": [round(r["total"]) for r in results]}


def browser_sliders(moves: int = 8) -> dict:
    """Temperature moves by keyboard in Chromium on a served app: /compare's shared controls (Next token's are
    measured by bench/instant.py: they redraw without a script run)."""
    from playwright.sync_api import sync_playwright

    from bench.sessions import CHROMIUM, CHROMIUM_ARGS, serve

    if not Path(CHROMIUM).exists():
        raise RuntimeError("Chromium is not installed (apt-get install chromium)")
    out = {}
    with serve() as (base, server), sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            context = browser.new_context(viewport={"width": 1300, "height": 1000})
            context.add_init_script(_PROBE_JS)
            page = context.new_page()
            page.goto(f"{base}/compare", timeout=300_000)
            page.locator('[data-testid="stVegaLiteChart"]').first.wait_for(timeout=300_000)
            _settle(page)
            # The shared temperature changes the chart only where it shows the processed distributions.
            page.get_by_text("After the controls", exact=True).click()
            _settle(page)
            shared = page.locator('[data-testid="stExpander"]').filter(has_text="Sampling controls (all columns)")
            shared.locator("summary").first.click()
            _settle(page)
            out["compare"] = slider_moves(page, shared.get_by_role("slider", name="Temperature"), None,
                                          server.pid, moves)
            context.close()
        finally:
            browser.close()
    return out
