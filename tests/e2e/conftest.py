"""Browser end-to-end fixtures: a served Tokenscope, Debian's Chromium through Playwright, a recording page.

The app is started with `python -m streamlit run streamlit_app.py` on a free port (offline, same weight cache
as the other tests) and driven like a person would drive it. Browser downloads are impossible here, so
Playwright always launches the system Chromium at /usr/bin/chromium.
"""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

import pytest

try:  # the test modules import `expect` from here, so a missing Playwright fails each browser test with its fix
    from playwright.sync_api import expect
except ImportError:  # (the `playwright_instance` fixture) instead of stopping the whole run at collection
    expect = None

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
ARTIFACTS = ROOT / "tests" / "artifacts"
SCREENSHOTS = ARTIFACTS / "screenshots"

CHROMIUM = "/usr/bin/chromium"
LAUNCH_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
VIEWPORT = {"width": 1300, "height": 1000}

SERVER_START_TIMEOUT_S = 120
FIRST_LOAD_TIMEOUT_S = 180  # a cold weight cache dequantizes the bundled model (~30-60 s, more on a busy machine)
DEFAULT_TIMEOUT_MS = 45_000  # other test suites may share the two cores: be patient with every step
QUIET_MS = 600  # the DOM must stay unchanged this long after a run before the app counts as settled

# Installed in every page before Streamlit's own scripts: remembers when the DOM last changed, so that
# wait_for_app can wait for the frontend to settle (lazy element chunks render after the run has ended).
_OBSERVER_JS = """
(() => {
  if (window.__tsObserver) return;
  window.__tsLastMutation = performance.now();
  window.__tsObserver = new MutationObserver(() => { window.__tsLastMutation = performance.now(); });
  const start = () => window.__tsObserver.observe(document.documentElement || document, {
    subtree: true, childList: true, characterData: true, attributes: true,
    attributeFilter: ['data-test-script-state', 'data-test-connection-state', 'data-stale', 'disabled', 'value'],
  });
  if (document.documentElement) start(); else document.addEventListener('DOMContentLoaded', start);
})();
"""

# True once Streamlit has finished a run and the page is settled:
# - stApp's data-test-script-state is "notRunning" (it is "initial" before the first run, "running" during one),
# - the websocket is connected,
# - no element is stale (left over from the previous run) and no lazy element is still a skeleton,
# - the DOM has been quiet for QUIET_MS.
_SETTLED_JS = """
(quietMs) => {
  const app = document.querySelector('[data-testid="stApp"]');
  if (!app) return false;
  if (app.getAttribute('data-test-script-state') !== 'notRunning') return false;
  if (app.getAttribute('data-test-connection-state') !== 'CONNECTED') return false;
  if (document.querySelector('[data-stale="true"], [data-testid="stSkeleton"]')) return false;
  if (document.querySelector('[data-testid="stStatusWidgetRunningIcon"]')) return false;
  const last = window.__tsLastMutation;
  if (last === undefined) return true;
  return performance.now() - last >= quietMs;
}
"""


def pytest_collection_modifyitems(config, items):
    """Every test under tests/e2e is an e2e test. Nothing is skipped: without Playwright or Chromium every browser
    test fails (see the `playwright_instance` and `browser` fixtures), saying how to install the missing piece."""
    for item in items:
        if HERE in Path(str(item.fspath)).resolve().parents:
            item.add_marker(pytest.mark.e2e)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """Keep each phase's report on the item so fixtures can tell whether the test failed."""
    outcome = yield
    rep = outcome.get_result()
    setattr(item, f"rep_{rep.when}", rep)


# --------------------------------------------------------------------------- the served app


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


_NO_PROXY = urllib.request.build_opener(urllib.request.ProxyHandler({}))


class AppServer:
    """One `streamlit run streamlit_app.py` process in its own process group, its output in a log file."""

    running: list["AppServer"] = []

    def __init__(self, name: str, env: dict[str, str | None] | None = None):
        self.env = env or {}  # overrides of the server's environment (None removes a variable)
        self.port = _free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        self.log_path = ARTIFACTS / f"e2e-server-{name}.log"
        self.proc: subprocess.Popen | None = None

    def start(self) -> "AppServer":
        env = dict(os.environ)
        env["HF_HUB_OFFLINE"] = "1"
        env.setdefault("TOKENSCOPE_CACHE", str(ROOT / ".tokenscope-cache"))
        env["PYTHONUNBUFFERED"] = "1"
        for name, value in self.env.items():
            if value is None:
                env.pop(name, None)
            else:
                env[name] = value
        cmd = [
            sys.executable, "-m", "streamlit", "run", "streamlit_app.py",
            "--server.port", str(self.port),
            "--server.address", "127.0.0.1",
            "--server.headless", "true",
            "--browser.gatherUsageStats", "false",
        ]
        log = open(self.log_path, "wb")
        try:
            self.proc = subprocess.Popen(
                cmd, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                start_new_session=True,  # its own process group: stop() ends it and every child it started
            )
        finally:
            log.close()
        AppServer.running.append(self)
        self._wait_healthy()
        return self

    def _wait_healthy(self) -> None:
        url = f"{self.base_url}/_stcore/health"
        deadline = time.monotonic() + SERVER_START_TIMEOUT_S
        last_error = "no answer yet"
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                self.stop()
                pytest.fail(
                    f"streamlit exited with code {self.proc.returncode} before it was healthy.\n{self.log_tail()}",
                    pytrace=False,
                )
            try:
                with _NO_PROXY.open(url, timeout=3) as resp:
                    body = resp.read().decode("utf-8", "replace").strip()
                if body == "ok":
                    return
                last_error = f"answered {body!r}"
            except (urllib.error.URLError, OSError) as exc:
                last_error = repr(exc)
            time.sleep(0.5)
        self.stop()
        pytest.fail(
            f"streamlit did not answer {url} with 'ok' within {SERVER_START_TIMEOUT_S} s ({last_error}).\n"
            f"{self.log_tail()}",
            pytrace=False,
        )

    def log_tail(self, lines: int = 60) -> str:
        try:
            text = self.log_path.read_text("utf-8", errors="replace")
        except OSError:
            return f"(no server log at {self.log_path})"
        tail = "\n".join(text.splitlines()[-lines:])
        return f"--- last {lines} lines of {self.log_path} ---\n{tail}\n--- end of server log ---"

    def stop(self) -> None:
        if self in AppServer.running:
            AppServer.running.remove(self)
        proc = self.proc
        if proc is None or proc.poll() is not None:
            return
        try:
            os.killpg(proc.pid, signal.SIGTERM)
        except ProcessLookupError:
            return
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            proc.wait(timeout=10)


@pytest.fixture(scope="session")
def app_server():
    """The app served for the whole session."""
    server = AppServer("session").start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def base_url(app_server) -> str:
    """Base URL of the session's app, e.g. http://127.0.0.1:PORT."""
    return app_server.base_url


@pytest.fixture
def fresh_app_server(request):
    """A server of its own for one test, so that the test's first request is the process's first request."""
    name = re.sub(r"[^A-Za-z0-9_.-]+", "_", request.node.name)
    server = AppServer(name).start()
    yield server
    server.stop()


# --------------------------------------------------------------------------- the browser


@pytest.fixture(scope="session")
def playwright_instance():
    """Playwright's sync API; every browser test fails (never skips) when the package is missing."""
    if expect is None:
        pytest.fail(
            "the playwright package is not installed in this environment: run `make install` "
            "(it installs requirements-test.txt into .venv), or `.venv/bin/pip install -r requirements-test.txt`",
            pytrace=False,
        )
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        yield p


@pytest.fixture(scope="session")
def browser(playwright_instance):
    """Debian's Chromium, headless, driven by Playwright (no browser download). Fails (never skips) without it."""
    expect.set_options(timeout=DEFAULT_TIMEOUT_MS)
    if Path(CHROMIUM).exists():
        browser = playwright_instance.chromium.launch(executable_path=CHROMIUM, args=LAUNCH_ARGS, headless=True)
    else:  # macOS, Windows: the Chromium of `python -m playwright install chromium`, where there is one
        try:
            browser = playwright_instance.chromium.launch(args=LAUNCH_ARGS, headless=True)
        except Exception as exc:
            pytest.fail(f"no Chromium: {CHROMIUM} is missing (on Debian: `make browser`) and Playwright has none of "
                        f"its own (`python -m playwright install chromium`): {str(exc).splitlines()[0]}",
                        pytrace=False)
    yield browser
    browser.close()


@dataclass
class Recorded:
    """What the page did besides rendering: dialogs (all dismissed), console messages, uncaught errors."""

    dialogs: list[str] = field(default_factory=list)
    console: list[str] = field(default_factory=list)
    page_errors: list[str] = field(default_factory=list)

    def summary(self) -> str:
        parts = [f"dialogs: {self.dialogs}", f"page errors: {self.page_errors}", "console:"]
        parts += [f"  {line}" for line in self.console[-80:]]
        return "\n".join(parts)


@pytest.fixture
def recorded() -> Recorded:
    return Recorded()


def _on_dialog(recorded: Recorded, dialog) -> None:
    recorded.dialogs.append(f"{dialog.type}: {dialog.message}")
    try:
        dialog.dismiss()
    except Exception:  # the page may already be gone
        pass


@pytest.fixture
def page(browser, recorded, request):
    """A new browser context per test (1300x1000) whose page records dialogs, console and errors.

    Teardown saves a full-page screenshot to tests/artifacts/screenshots/<test>.png, then fails the test if
    Streamlit showed an exception, the page opened a dialog or threw an uncaught JavaScript error."""
    context = browser.new_context(viewport=VIEWPORT, accept_downloads=True)
    context.set_default_timeout(DEFAULT_TIMEOUT_MS)
    context.set_default_navigation_timeout(DEFAULT_TIMEOUT_MS)
    context.add_init_script(_OBSERVER_JS)
    pg = context.new_page()
    pg.on("dialog", lambda d: _on_dialog(recorded, d))
    pg.on("console", lambda m: recorded.console.append(f"[{m.type}] {m.text}"))
    pg.on("pageerror", lambda e: recorded.page_errors.append(str(e)))
    yield pg

    problems = []
    try:
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        name = re.sub(r"[^A-Za-z0-9_.-]+", "_", request.node.name).strip("_")
        pg.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=True, timeout=30_000)
    except Exception as exc:  # a screenshot must never hide the test's own result
        print(f"screenshot failed: {exc!r}")
    try:
        exceptions = sum(f.locator('[data-testid="stException"]').count() for f in pg.frames)
        if exceptions:
            texts = pg.locator('[data-testid="stException"]').all_inner_texts()
            problems.append(f"{exceptions} st.exception element(s) on the page: {texts}")
    except Exception as exc:
        problems.append(f"could not inspect the page for exceptions: {exc!r}")
    if recorded.dialogs:
        problems.append(f"the page opened dialog(s): {recorded.dialogs}")
    if recorded.page_errors:
        problems.append(f"uncaught JavaScript error(s): {recorded.page_errors}")

    failed = getattr(request.node, "rep_call", None) is not None and request.node.rep_call.failed
    if failed or problems:
        print(recorded.summary())
        for server in AppServer.running:
            print(server.log_tail())
    context.close()
    if problems:
        pytest.fail("; ".join(problems), pytrace=False)


# --------------------------------------------------------------------------- helpers for the tests


def wait_for_app(page, timeout_s: float = FIRST_LOAD_TIMEOUT_S, quiet_ms: int = QUIET_MS) -> None:
    """Wait until Streamlit finished running the script and the page settled (see _SETTLED_JS).

    Generous by default: the first page that needs the model may load it (a cold cache takes ~60 s)."""
    page.wait_for_selector('[data-testid="stApp"]', state="attached", timeout=timeout_s * 1000)
    page.evaluate(_OBSERVER_JS)  # in case the page was created without the init script
    page.wait_for_function(_SETTLED_JS, arg=quiet_ms, timeout=timeout_s * 1000, polling=100)


def open_app(page, url: str, timeout_s: float = FIRST_LOAD_TIMEOUT_S) -> None:
    """Open `url` like a person typing it into the address bar, and wait for the app to settle."""
    page.goto(url, wait_until="domcontentloaded")
    wait_for_app(page, timeout_s)


# --------------------------------------------------------------------------- hostile markup (XSS) checks

# Payloads point at this address (the discard port on this machine, where nothing answers): a request for it can
# only come from payload markup that became an element (an <img>, <script src>, <iframe>, SVG <image>, …).
# Payloads write it protocol-relative (XSS_SRC), so that Markdown's autolinking cannot break the markup up first.
XSS_URL = "http://127.0.0.1:9/"
XSS_SRC = "//127.0.0.1:9/"
XSS_JS = "window.__xss=1"  # what every payload's script, handler or javascript: link would run

# Every element in one frame that payload markup could have made: an element that loads or runs things (script, img,
# svg and its parts, iframe, object, …) with a marker in any attribute, a <script> with a marker in its text, any
# element with an on* handler or an attribute holding the payload's address (the app's own links carry a prompt
# only URL-encoded), and any link to javascript:.
_INJECTED_JS = """
([jsMarkers, urlMarkers]) => {
  const risky = new Set(['script', 'img', 'image', 'svg', 'iframe', 'frame', 'object', 'embed', 'video', 'audio',
                         'source', 'link', 'meta', 'style', 'form', 'input', 'base', 'use', 'animate', 'set']);
  const hasUrl = (text) => urlMarkers.some((m) => (text || '').includes(m));
  const has = (text) => hasUrl(text) || jsMarkers.some((m) => (text || '').includes(m));
  const urlAttrs = ['href', 'src', 'xlink:href', 'action', 'formaction', 'data', 'srcdoc'];
  const found = [];
  for (const el of document.querySelectorAll('*')) {
    const tag = el.tagName.toLowerCase();
    for (const attr of el.attributes) {
      const name = attr.name.toLowerCase();
      const value = attr.value;
      if ((name.startsWith('on') && has(value)) || (risky.has(tag) && has(value)) || hasUrl(value)
          || (urlAttrs.includes(name) && value.trim().toLowerCase().startsWith('javascript:'))) {
        found.push(`<${tag} ${name}="${value.slice(0, 120)}">`);
      }
    }
    if (tag === 'script' && has(el.textContent)) found.push(`<script>${el.textContent.slice(0, 120)}</script>`);
  }
  return found;
}
"""


def injected_elements(page, js_markers=("__xss",), url_markers=("127.0.0.1:9/",)) -> list[str]:
    """Elements made from hostile markup, in every frame of `page` (see _INJECTED_JS), and whether a payload's
    script ran (window.__xss set); [] when there are none."""
    found = []
    for frame in page.frames:
        found += [f"{frame.url}: {e}" for e in frame.evaluate(_INJECTED_JS, [list(js_markers), list(url_markers)])]
        if frame.evaluate("typeof window.__xss") != "undefined":
            found.append(f"{frame.url}: window.__xss was set (a payload ran)")
    return found


def shown_text(page) -> str:
    """The app's visible text (chips' ␣ read as spaces), without what is typed in text boxes."""
    return page.get_by_test_id("stApp").inner_text().replace("\u2423", " ")


def box_values(page) -> list[str]:
    """The value of every text box on the page (a prompt stays there, as typed)."""
    return page.locator("textarea, input[type=text]").evaluate_all("els => els.map(e => e.value)")


@pytest.fixture
def requests_seen(page) -> list[str]:
    """URLs of every request the test's browser context sends (pages, frames, images, scripts, workers)."""
    urls: list[str] = []
    page.context.on("request", lambda request: urls.append(request.url))
    return urls


def share_link(page) -> str:
    """Press the sidebar's share button and read the link from the dialog's code block; closes the dialog."""
    page.get_by_test_id("stSidebar").get_by_role("button", name="🔗 Share this view").click()
    dialog = page.get_by_role("dialog")
    code = dialog.get_by_test_id("stCode")
    expect(code).to_be_visible()
    link = code.inner_text().strip()
    page.keyboard.press("Escape")
    expect(dialog).to_have_count(0)
    wait_for_app(page)
    return link
