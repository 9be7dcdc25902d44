"""The Class page in a real browser: a teacher's tab and a learner's (another browser context, so another session)
on one served app with its own rooms file. What AppTest cannot show: the run_every fragments updating the
teacher's count and the learner's page with nobody touching them, and the QR code drawn."""

from __future__ import annotations

import re
import time

import pytest

from .conftest import SCREENSHOTS, XSS_JS, XSS_SRC, AppServer, expect, injected_elements, share_link

pytestmark = pytest.mark.e2e

MODEL_LOAD_MS = 180_000
LIVE_MS = 4_000  # the issue asks for the count within 2 s; a busy machine gets a little more


@pytest.fixture
def class_server(tmp_path):
    """A served app whose rooms are in a SQLite file of its own."""
    server = AppServer("class", env={"TOKENSCOPE_CLASS_DB": f"sqlite:///{tmp_path / 'rooms.sqlite3'}"}).start()
    yield server
    server.stop()


def metric(page, label: str):
    """The value of the st.metric labelled `label`."""
    box = page.get_by_test_id("stMetric").filter(has=page.get_by_test_id("stMetricLabel").filter(has_text=label))
    return box.get_by_test_id("stMetricValue")


def shot(page, name: str, target=None) -> None:
    """A screenshot of the viewport (at `target`, scrolled into view) under tests/artifacts/screenshots/."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    if target is not None:
        target.scroll_into_view_if_needed()
    page.screenshot(path=str(SCREENSHOTS / f"class-{name}.png"))


def test_a_learner_guesses_and_both_pages_follow_live(class_server, page, browser):
    teacher = page
    teacher.goto(f"{class_server.base_url}/class", wait_until="domcontentloaded")
    teacher.get_by_role("button", name="Start the room").click(timeout=MODEL_LOAD_MS)
    heading = teacher.get_by_text(re.compile(r"Room code: [A-Z2-9]{4}-[A-Z2-9]{4}"))
    expect(heading).to_be_visible(timeout=MODEL_LOAD_MS)
    code = heading.inner_text().split(": ")[1].replace("-", "")
    link = f"{class_server.base_url}/class?room={code}"
    expect(teacher.get_by_test_id("stCode").filter(has_text=link)).to_be_visible()
    expect(teacher.get_by_test_id("stImage").locator("img")).to_be_visible()  # the QR code
    shown_key = teacher.get_by_test_id("stCode").nth(1)
    expect(shown_key).not_to_be_visible()  # folded away: a projected screen does not show it
    teacher.get_by_text("Show the teacher key").click()
    key = shown_key.inner_text().strip()
    assert len(key) > 30 and key not in teacher.url
    expect(metric(teacher, "Guesses so far")).to_have_text("0")
    shot(teacher, "teacher-room", heading)

    context = browser.new_context(viewport={"width": 390, "height": 844})  # a phone
    learner = context.new_page()
    try:
        learner.goto(link, wait_until="domcontentloaded")
        learner.get_by_label("Your name on the class's screen (optional)").fill("Ada")
        learner.get_by_role("button", name="Join").click()
        expect(learner.get_by_text("You are Ada")).to_be_visible(timeout=60_000)
        assert "learner=" in learner.url and key not in learner.url
        box = learner.get_by_label("What comes next? Your guess")
        box.fill("Paris")
        box.press("Enter")
        expect(learner.get_by_text("The model would write it as")).to_be_visible(timeout=60_000)
        learner.get_by_role("button", name="Send my guess").click()
        expect(learner.get_by_text("You can change it until the teacher reveals")).to_be_visible(timeout=60_000)
        shot(learner, "learner-guessed")
        sent = time.monotonic()
        expect(metric(teacher, "Guesses so far")).to_have_text("1", timeout=LIVE_MS)  # nobody touched the teacher
        print(f"teacher's count followed in {time.monotonic() - sent:.1f} s")
        teacher.get_by_role("button", name="Reveal").click()
        reveal = teacher.get_by_text("The class's guesses beside the model's probability")
        expect(reveal).to_be_visible(timeout=60_000)
        expect(learner.get_by_text("Wait for the teacher's next round")).to_be_visible(timeout=LIVE_MS + 2_000)
        shot(teacher, "teacher-reveal", reveal)
        shot(learner, "learner-reveal", learner.get_by_test_id("stVegaLiteChart"))
        assert "Paris" in learner.get_by_test_id("stApp").inner_text().replace("\u2423", " ")
        teacher.get_by_role("button", name="Next round").click()
        expect(teacher.get_by_role("heading", name="Round 2")).to_be_visible(timeout=60_000)
        expect(learner.get_by_label("What comes next? Your guess")).to_have_value("", timeout=LIVE_MS + 2_000)
        own_url = learner.url
    finally:
        context.close()
    again = browser.new_context(viewport={"width": 1300, "height": 1000}).new_page()  # the learner's URL reopened
    try:
        again.goto(own_url, wait_until="domcontentloaded")
        expect(again.get_by_text("You are Ada")).to_be_visible(timeout=60_000)  # the name kept
        shared = share_link(again)
        assert f"room={code}" in shared and "learner" not in shared and key not in shared
    finally:
        again.context.close()
    assert key not in share_link(teacher)


HOSTILE = f'<img src="{XSS_SRC}n" onerror="{XSS_JS}">'  # 40 characters: fits a name


def test_hostile_names_and_guesses_stay_text_on_both_pages(class_server, page, browser):
    teacher = page
    teacher.goto(f"{class_server.base_url}/class", wait_until="domcontentloaded")
    teacher.get_by_role("button", name="Start the room").click(timeout=MODEL_LOAD_MS)
    heading = teacher.get_by_text(re.compile(r"Room code: [A-Z2-9]{4}-[A-Z2-9]{4}"))
    expect(heading).to_be_visible(timeout=MODEL_LOAD_MS)
    code = heading.inner_text().split(": ")[1].replace("-", "")
    context = browser.new_context()
    learner = context.new_page()
    try:
        learner.goto(f"{class_server.base_url}/class?room={code}", wait_until="domcontentloaded")
        learner.get_by_label("Your name on the class's screen (optional)").fill(HOSTILE[:40])
        learner.get_by_role("button", name="Join").click()
        expect(learner.get_by_text("You are")).to_be_visible(timeout=60_000)
        box = learner.get_by_label("What comes next? Your guess")
        box.fill(f'<svg onload="{XSS_JS}">')
        box.press("Enter")
        learner.get_by_role("button", name="Send my guess").click()
        expect(learner.get_by_text("You can change it until the teacher reveals")).to_be_visible(timeout=60_000)
        expect(metric(teacher, "Guesses so far")).to_have_text("1", timeout=LIVE_MS)
        teacher.get_by_role("button", name="Reveal").click()
        expect(teacher.get_by_text(HOSTILE[:40]).first).to_be_visible(timeout=60_000)  # the name, as text
        expect(learner.get_by_text("Wait for the teacher's next round")).to_be_visible(timeout=LIVE_MS + 2_000)
        assert injected_elements(teacher) == [] and injected_elements(learner) == []
    finally:
        context.close()


def test_on_a_phone_nothing_on_either_side_is_cut_off(class_server, browser):
    from .test_screen import _CUT_OFF_JS

    context = browser.new_context(viewport={"width": 390, "height": 844})
    try:
        teacher, learner = context.new_page(), context.new_page()
        teacher.goto(f"{class_server.base_url}/class", wait_until="domcontentloaded")
        teacher.get_by_role("button", name="Start the room").click(timeout=MODEL_LOAD_MS)
        heading = teacher.get_by_text(re.compile(r"Room code: [A-Z2-9]{4}-[A-Z2-9]{4}"))
        expect(heading).to_be_visible(timeout=MODEL_LOAD_MS)
        expect(teacher.get_by_test_id("stImage").locator("img")).to_be_visible()
        assert teacher.evaluate(_CUT_OFF_JS) == []
        code = heading.inner_text().split(": ")[1].replace("-", "")
        learner.goto(f"{class_server.base_url}/class?room={code}", wait_until="domcontentloaded")
        learner.get_by_role("button", name="Join").click()
        box = learner.get_by_label("What comes next? Your guess")
        box.fill("extraordinarily")
        box.press("Enter")
        learner.get_by_role("button", name="Send my guess").click()
        expect(learner.get_by_text("You can change it until the teacher reveals")).to_be_visible(timeout=60_000)
        expect(metric(teacher, "Guesses so far")).to_have_text("1", timeout=LIVE_MS)
        teacher.get_by_role("button", name="Reveal").click()
        expect(teacher.get_by_test_id("stVegaLiteChart").first).to_be_visible(timeout=60_000)
        expect(teacher.get_by_role("button", name="Next round")).to_be_visible(timeout=60_000)
        expect(learner.get_by_test_id("stVegaLiteChart").first).to_be_visible(timeout=LIVE_MS + 2_000)
        teacher.wait_for_timeout(1500)  # the charts' own layout pass
        assert teacher.evaluate(_CUT_OFF_JS) == [] and learner.evaluate(_CUT_OFF_JS) == []
        shot(teacher, "teacher-phone-reveal", teacher.get_by_test_id("stVegaLiteChart").first)
    finally:
        context.close()
