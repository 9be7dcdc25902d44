"""The README's screenshots: every page of the served app in Chromium at 1440×900 (the whole page) and 390×844 (the
first screen, and Next token scrolled to its chart), written to docs/*.png. Run with `make screenshots`."""

from __future__ import annotations

import logging
import sys
import time
from pathlib import Path
from urllib.parse import quote

from PIL import Image
from playwright.sync_api import sync_playwright

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.e2e.conftest import CHROMIUM, LAUNCH_ARGS, AppServer, _OBSERVER_JS, wait_for_app  # noqa: E402

logger = logging.getLogger("screenshots")
DOCS = ROOT / "docs"
DESKTOP = {"width": 1440, "height": 900}
PHONE = {"width": 390, "height": 844}
MAX_HEIGHT = 2600  # px: a longer page is cut there (the README shows its top)
SCORED = ("The quick brown fox jumps over the lazy dog. It was a sunny day in the park, and everyone was happy "
          "to see the fox again.")

# name → (path, buttons to press first)
PAGES = {
    "tokenize": ("/tokenize?model=gpt2&prompt=" + quote("Udacity is the best place to learn about generative")
                 + "&tok_compare=smollm2-135m", ()),
    "next-token": ("/next-token?top_k=5", ("Append most likely", "Append most likely")),
    "generate": (f"/generate?gen_tab=Score+text&score_text={quote(SCORED)}", ()),
    "compare": ("/compare?cmp_processed=true", ()),
    "inside": ("/inside?prompt=" + quote("The capital of France is"), ()),
}


def settle(page) -> None:
    """Wait until the run is over and the page quiet (see tests/e2e/conftest.py)."""
    wait_for_app(page, timeout_s=300, quiet_ms=900)


def open_page(browser, base: str, path: str, presses, viewport: dict):
    """A fresh page at `viewport` on `path`, with `presses` pressed in order."""
    context = browser.new_context(viewport=viewport, device_scale_factor=1)
    context.add_init_script(_OBSERVER_JS)
    page = context.new_page()
    page.goto(base + path, wait_until="domcontentloaded")
    settle(page)
    for label in presses:
        page.get_by_test_id("stMain").get_by_role("button", name=label, exact=True).click()
        settle(page)
    page.mouse.move(1, viewport["height"] - 1)  # no tooltip left open over the page
    time.sleep(0.5)
    return context, page


def whole_page(page, path: Path) -> None:
    """The page as tall as its content (up to MAX_HEIGHT): the viewport grows, Streamlit lays out again."""
    height = page.evaluate("() => document.querySelector('[data-testid=\"stMain\"]').scrollHeight")
    page.set_viewport_size({"width": DESKTOP["width"], "height": min(height + 40, MAX_HEIGHT)})
    time.sleep(1.5)
    settle(page)
    page.screenshot(path=str(path))


def save_small(path: Path) -> None:
    """Rewrite a screenshot as an optimised 256-colour PNG (a README image, not a test artefact)."""
    image = Image.open(path).convert("RGB")
    image.quantize(colors=256, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE).save(path, optimize=True)


CLASS_TEXT = "The capital of France is"
CLASS_GUESSES = {"Ada": "Paris", "Bo": "Paris", "Cy": "Lyon", "Di": "the", "Ed": "Paris", "Flo": "a"}


def class_reveal(browser) -> None:
    """docs/class-reveal.png: a Class room's Reveal as the teacher projects it, after six learners guessed (the
    learners are written to the room's database directly, as their pages would)."""
    import re
    import tempfile

    from dashboard import models
    from dashboard.guessing import map_guess
    from dashboard.rooms import RoomStore
    from dashboard.rooms_schema import make_engine

    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite:///{Path(tmp) / 'rooms.sqlite3'}"
        server = AppServer("screenshots-class", env={"TOKENSCOPE_CLASS_DB": url}).start()
        try:
            context = browser.new_context(viewport=DESKTOP, device_scale_factor=1)
            page = context.new_page()
            page.goto(server.base_url + "/class", wait_until="domcontentloaded")
            page.get_by_label("Text so far (the class guesses what comes next)").fill(CLASS_TEXT)
            page.get_by_role("button", name="Start the room").click()
            heading = page.get_by_text(re.compile(r"Room code: [A-Z0-9]{4}-[A-Z0-9]{4}"))
            heading.wait_for(timeout=120_000)
            code = heading.inner_text().split(":")[1].strip().replace("-", "")
            store, tok = RoomStore(make_engine(url)), models.load_tokenizer(models.DEFAULT_MODEL)
            for name, guess in CLASS_GUESSES.items():
                learner, _ = store.join(code, name)
                mapped = map_guess(tok, CLASS_TEXT, guess)
                store.guess(code, learner, 0, guess, mapped.token_id, mapped.shown)
            page.get_by_test_id("stMetricValue").first.filter(has_text=str(len(CLASS_GUESSES))).wait_for(timeout=30_000)
            page.get_by_role("button", name="Reveal").click()
            page.get_by_text("The class's guesses beside the model's probability of each").wait_for(timeout=60_000)
            page.get_by_text("Round 1", exact=True).evaluate("el => el.scrollIntoView({block: 'start'})")
            time.sleep(2)
            page.mouse.move(1, DESKTOP["height"] - 1)
            page.screenshot(path=str(DOCS / "class-reveal.png"))
            context.close()
        finally:
            server.stop()
    save_small(DOCS / "class-reveal.png")
    logger.info("docs/class-reveal.png: %d KB", (DOCS / "class-reveal.png").stat().st_size // 1024)


def main() -> None:
    """Serve the app, take every screenshot, stop the server."""
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    server = AppServer("screenshots").start()
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=LAUNCH_ARGS, headless=True)
            for name, (path, presses) in PAGES.items():
                context, page = open_page(browser, server.base_url, path, presses, DESKTOP)
                whole_page(page, DOCS / f"{name}.png")
                context.close()
                context, page = open_page(browser, server.base_url, path, presses, PHONE)
                if name == "next-token":  # the chart with the controls docked under it
                    page.get_by_test_id("stVegaLiteChart").first.evaluate("el => el.scrollIntoView({block: 'start'})")
                    time.sleep(0.8)
                page.screenshot(path=str(DOCS / f"{name}-phone.png"))
                context.close()
                for shot in (DOCS / f"{name}.png", DOCS / f"{name}-phone.png"):
                    save_small(shot)
                    logger.info("%s: %d KB", shot.relative_to(ROOT), shot.stat().st_size // 1024)
            class_reveal(browser)
            browser.close()
    finally:
        server.stop()


if __name__ == "__main__":
    main()
