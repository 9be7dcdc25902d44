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
    dashboard.loaded.LOADED's copy) and the median wall time of `set_value(...).run()` (Streamlit's rerun included)."""
    from dashboard.loaded import LOADED

    at = open_page("pages/next-token.py")
    model = LOADED.get(model_key).model
    if at.session_state["nt_path"].model is not model:
        raise RuntimeError("the page's token path does not run on LOADED's model: the hook would count nothing")
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

def cpu_ms(pid: int) -> float:
    """CPU time (user + system) a process has used so far, in ms."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) * 1000 / os.sysconf("SC_CLK_TCK")
