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


def read_qr(png: bytes) -> str:
    """The text of the QR code in a PNG (OpenCV's detector and decoder: what a phone's camera app does)."""
    import cv2
    import numpy as np

    image = cv2.imdecode(np.frombuffer(png, np.uint8), cv2.IMREAD_GRAYSCALE)
    text, points, _ = cv2.QRCodeDetector().detectAndDecode(image)
    assert points is not None, "no QR code found in the image"
    return text


def start_room(teacher, base: str, before=None):
    """Open /class on the teacher's page, do `before(teacher)` (the text), start a room: (its code, the heading)."""
    teacher.goto(f"{base}/class", wait_until="domcontentloaded")
    if before is not None:
        before(teacher)
    teacher.get_by_role("button", name="Start the room").click(timeout=MODEL_LOAD_MS)
    heading = teacher.get_by_text(re.compile(r"Room code: [A-Z2-9]{4}-[A-Z2-9]{4}"))
    expect(heading).to_be_visible(timeout=MODEL_LOAD_MS)
    return heading.inner_text().split(": ")[1].replace("-", ""), heading


def test_a_learner_guesses_and_both_pages_follow_live(class_server, page, browser):
    teacher = page
    code, heading = start_room(teacher, class_server.base_url)
    link = f"{class_server.base_url}/class?room={code}"
    expect(teacher.get_by_test_id("stCode").filter(has_text=link)).to_be_visible()
    qr = teacher.get_by_test_id("stImage").locator("img")
    expect(qr).to_be_visible()
    assert read_qr(qr.screenshot()) == link  # the QR code as the browser drew it, read as a phone's camera would
    shown_key = teacher.get_by_test_id("stCode").nth(1)
    expect(shown_key).not_to_be_visible()  # folded away: a projected screen does not show it
    teacher.get_by_text("Show the teacher key").click()
    key = shown_key.inner_text().strip()
    assert len(key) > 30 and key not in teacher.url
    expect(metric(teacher, "Guesses so far")).to_have_text("0")
    count_bar = teacher.get_by_test_id("stVegaLiteChart").first  # drawn by Vega in the browser before any reveal
    expect(count_bar.locator("svg")).to_contain_text("Nobody has joined yet")
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
        expect(count_bar.locator("svg")).to_contain_text("1 of 1 who joined have guessed", timeout=LIVE_MS)
        expect(learner.get_by_text("Round 1 · 1 of 1 guessed so far")).to_be_visible(timeout=LIVE_MS)
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
    code, _ = start_room(teacher, class_server.base_url)
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
        reveal_chart = teacher.get_by_test_id("stVegaLiteChart").filter(has_text="share of the class")  # not the count
        expect(reveal_chart).to_be_visible(timeout=60_000)
        expect(teacher.get_by_role("button", name="Next round")).to_be_visible(timeout=60_000)
        expect(learner.get_by_test_id("stVegaLiteChart").first).to_be_visible(timeout=LIVE_MS + 2_000)
        teacher.wait_for_timeout(1500)  # the charts' own layout pass
        assert teacher.evaluate(_CUT_OFF_JS) == [] and learner.evaluate(_CUT_OFF_JS) == []
        shot(teacher, "teacher-phone-reveal", reveal_chart)
    finally:
        context.close()


PASSAGE = "The capital of France is Paris. The capital of Italy is Rome."


def rows(table) -> list[list[str]]:
    """The body rows of a drawn st.table, as the text of their cells."""
    return table.evaluate("t => [...t.querySelectorAll('tbody tr')].map(r => [...r.cells].map(c => c.innerText.trim()))")


def test_a_teacher_and_three_learners_play_two_rounds_of_a_passage(class_server, page, browser):
    """Two whole rounds in separate browser contexts (four sessions): the live count, Reveal on every page with
    the class's counts, the passage's true token, Next on the true token, and the score over both rounds."""
    teacher = page

    def passage(teacher) -> None:
        teacher.get_by_text("Paste a passage").click(timeout=MODEL_LOAD_MS)
        teacher.get_by_label("Passage", exact=True).fill(PASSAGE)
        teacher.get_by_label("Passage", exact=True).press("Control+Enter")
        start = teacher.get_by_role("slider")  # the game starts after token 5: "The capital of France is"
        start.focus()
        start.press("Home")
        for _ in range(4):
            start.press("ArrowRight")

    code, _ = start_room(teacher, class_server.base_url, passage)
    text_so_far = teacher.get_by_role("heading", level=3).filter(has_text="…").inner_text()
    assert text_so_far.startswith("The capital of France is") and "Paris" not in text_so_far
    learners, contexts = {}, []
    try:
        for name in ("Ada", "Bo", "Cy"):
            context = browser.new_context(viewport={"width": 390, "height": 844})
            contexts.append(context)
            learner = context.new_page()
            learner.goto(f"{class_server.base_url}/class?room={code}", wait_until="domcontentloaded")
            learner.get_by_label("Your name on the class's screen (optional)").fill(name)
            learner.get_by_role("button", name="Join").click()
            expect(learner.get_by_text(f"You are {name}")).to_be_visible(timeout=60_000)
            expect(learner.get_by_role("heading", level=3).filter(has_text="…")).to_have_text(text_so_far)  # as the teacher's
            learners[name] = learner
        rounds = (({"Ada": "Paris", "Bo": "Paris", "Cy": "Lyon"}, "␣Paris"),
                  ({"Ada": ".", "Bo": ",", "Cy": "."}, "."))
        for number, (guesses, true_token) in enumerate(rounds, start=1):
            expect(teacher.get_by_role("heading", name=f"Round {number}")).to_be_visible(timeout=60_000)
            for name, guess in guesses.items():
                learner = learners[name]
                box = learner.get_by_label("What comes next? Your guess")
                expect(box).to_have_value("", timeout=LIVE_MS + 2_000)  # a new round: an empty box
                box.fill(guess)
                box.press("Enter")
                expect(learner.get_by_text("The model would write it as")).to_be_visible(timeout=60_000)
                learner.get_by_role("button", name="Send my guess").click()
                expect(learner.get_by_text("You can change it until the teacher reveals")).to_be_visible(timeout=60_000)
            expect(metric(teacher, "Guesses so far")).to_have_text("3", timeout=LIVE_MS)
            assert "Lyon" not in teacher.get_by_test_id("stMain").inner_text()  # how many, not what
            teacher.get_by_role("button", name="Reveal").click()
            expect(teacher.get_by_text("The class's guesses beside the model's probability")).to_be_visible(
                timeout=60_000)
            counts = {}
            for guess in guesses.values():
                counts[guess] = counts.get(guess, 0) + 1
            table = teacher.get_by_test_id("stTable").filter(has_text="class share")  # this round's reveal table
            expect(table).to_be_visible(timeout=60_000)  # (drawn after the heading: a table above it is another)
            expect(table.locator("tbody tr")).to_have_count(len(counts), timeout=30_000)
            shown = {row[0].strip("␣ "): row for row in rows(table)}
            assert {token: int(row[2]) for token, row in shown.items()} == counts  # token, id, guesses, …
            expect(teacher.get_by_text(f"The passage's next token: {true_token}")).to_be_visible()
            hit = ", ".join(name for name, guess in guesses.items() if guess == true_token.strip("␣"))
            for learner in learners.values():  # every learner's page follows the reveal by itself
                expect(learner.get_by_text("Wait for the teacher's next round")).to_be_visible(timeout=LIVE_MS + 2_000)
                expect(learner.get_by_text(f"The passage's next token: {true_token}")).to_be_visible()
                expect(learner.get_by_text(f"{hit} guessed the true token, {true_token}.")).to_be_visible()
                top = learner.get_by_test_id("stTable").filter(has_text="rank")  # the model's top 10, as the teacher's
                expect(top.locator("tbody tr")).to_have_count(10)
            expect(teacher.get_by_text(f"{hit} guessed the true token, {true_token}.")).to_be_visible()
            teacher.get_by_text("the passage's next token", exact=False).first.click()  # Next appends the true token
            teacher.get_by_role("button", name="Next round").click()
        expect(teacher.get_by_role("heading", name="Round 3")).to_be_visible(timeout=60_000)
        expect(metric(teacher, "Rounds scored")).to_have_text("2")
        hits = teacher.get_by_test_id("stTable").filter(has_text="hits")
        expect(hits.locator("tbody tr")).to_have_count(3, timeout=30_000)
        assert {row[0]: int(row[1]) for row in rows(hits)} == {"Ada": 2, "Bo": 1, "Cy": 1}
        for learner in learners.values():
            expect(learner.get_by_role("heading", level=3).filter(has_text="…")).to_contain_text(
                "Paris.", timeout=LIVE_MS + 2_000)
        shot(teacher, "teacher-two-rounds", teacher.get_by_role("heading", name="Score"))
    finally:
        for context in contexts:
            context.close()


def test_the_teacher_ends_then_deletes_the_room_without_reopening_the_box(class_server, page):
    """Ending redraws 'End the room' with other contents; it stays open, so Delete is where the teacher looks
    (it folded shut before: seen in Chromium)."""
    start_room(page, class_server.base_url)
    page.get_by_text("End the room").click()
    page.get_by_role("button", name="End the game").click()
    expect(page.get_by_text("This room is ended")).to_be_visible(timeout=60_000)
    sure = page.get_by_text("Yes, delete this room and everything in it")
    expect(sure).to_be_visible()  # no second click on the expander
    sure.click()
    page.get_by_role("button", name="Delete the room").click()
    expect(page.get_by_role("button", name="Start the room")).to_be_visible(timeout=60_000)
