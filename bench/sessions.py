"""Serve the app, open browser sessions on it, and read the server's memory (shared by bench and e2e tests)."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run", "--disable-dev-shm-usage"]


def free_port() -> int:
    """A TCP port nobody listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def serve(env: dict | None = None, timeout: float = 120, script: str = "streamlit_app.py"):
    """Run `streamlit run <script>` (the app by default) on a free loopback port; yields (base URL, process)."""
    port = free_port()
    log = open(ROOT / "bench" / f".server-{port}.log", "w")
    proc = subprocess.Popen(
        [sys.executable, "-m", "streamlit", "run", script, "--server.port", str(port),
         "--server.address", "127.0.0.1", "--server.headless", "true"],
        cwd=ROOT, env={**os.environ, "HF_HUB_OFFLINE": "1", **(env or {})}, stdout=log, stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + timeout
        while True:
            try:
                if urllib.request.urlopen(base + "/_stcore/health", timeout=2).read() == b"ok":
                    break
            except OSError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"streamlit did not start: {(ROOT / 'bench' / f'.server-{port}.log').read_text()[-2000:]}")
            time.sleep(0.5)
        yield base, proc
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=20)
        log.close()
        (ROOT / "bench" / f".server-{port}.log").unlink(missing_ok=True)


def rss_mb(pid: int) -> float:
    """Resident memory of a process in MB (from /proc)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS")


def open_session(browser, base: str, prompt: str):
    """A new browser session on the next-token page with `prompt`, after one appended token."""
    import urllib.parse

    page = browser.new_context(viewport={"width": 1300, "height": 1000}).new_page()
    page.goto(f"{base}/next-token?prompt={urllib.parse.quote(prompt)}", timeout=180_000)
    page.locator('[aria-label^="Figures: "]').first.wait_for(timeout=180_000)  # the instrument drawn
    page.get_by_role("button", name="Append most likely").click()
    page.get_by_text("Steps").first.wait_for(timeout=120_000)
    return page


def rss_ratio(n: int = 8) -> tuple[float, float, float]:
    """(RSS with n sessions / RSS with 1, MB with 1, MB with n) for one server."""
    if not Path(CHROMIUM).exists():
        raise RuntimeError("Chromium is not installed (apt-get install chromium)")
    from playwright.sync_api import sync_playwright

    with serve() as (base, proc), sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        pages = [open_session(browser, base, "Session 0 says hello to")]
        time.sleep(2)
        one = rss_mb(proc.pid)
        for i in range(1, n):
            pages.append(open_session(browser, base, f"Session {i} writes about the"))
        time.sleep(2)
        many = rss_mb(proc.pid)
        browser.close()
    return many / one, one, many
