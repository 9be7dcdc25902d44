"""The Class page (issue 20) through AppTest on the bundled model, each test on its own SQLite rooms file (or the
test PostgreSQL): a teacher's room, learners joining by ?room= and guessing, the live count, the reveal's numbers
against the model's own, Next, the score, and the faults (bad codes, bad text, the database down)."""

from __future__ import annotations

import math

import pytest
import torch

from dashboard.guessing import Round, score
from dashboard.loaded import LOADED
from dashboard.rooms_schema import DB_ENV
from dashboard.tokens import encode, markdown_literal, visible
from conftest import open_page
from conftest import texts as _texts

pytestmark = pytest.mark.app

PAGE = "pages/class.py"
TEXT = "The capital of France is"


@pytest.fixture
def rooms_db(tmp_path, monkeypatch):
    """The page's rooms database: a fresh SQLite file under tmp_path (its URL)."""
    url = f"sqlite:///{tmp_path / 'rooms.sqlite3'}"
    monkeypatch.setenv(DB_ENV, url)
    return url


def texts(at) -> str:
    """Every Markdown, info, warning, error and success text of a run, one per line."""
    return "\n".join([_texts(at)] + [str(e.value) for e in at.success])


def ok(at):
    """`at` after checking its run raised nothing."""
    assert not at.exception, [e.value for e in at.exception]
    return at


def start_room(text: str = TEXT):
    """A teacher's AppTest with a room started on `text` (typed): (AppTest, code, key)."""
    at = open_page(PAGE)
    at.text_area(key="cl_text").input(text).run()
    ok(at.button(key="cl_create").click().run())
    room = at.session_state["cl_room"]
    return at, room["code"], room["key"]


def join(code: str, name: str = ""):
    """A learner's AppTest joined to room `code` (under `name`, or the default one)."""
    at = open_page(PAGE, room=code)
    if name:
        at.text_input(key="cl_name").input(name)
    return ok(at.button(key="cl_join").click().run())


def guess(at, text: str):
    """The learner types `text` and sends it."""
    at.text_input(key="cl_guess").input(text).run()
    return ok(at.button(key="cl_send").click().run())


def links_shown(at) -> list[str]:
    """Every link in a code block after pressing the sidebar's share button (its dialog, and the join link)."""
    ok(at.button(key="ts_share").click().run())
    return [c.value for c in at.code if c.value.startswith("http")]


def model_probs(ids: list[int]) -> torch.Tensor:
    """The bundled model's own next-token probabilities after `ids` (computed here, not by the page)."""
    from dashboard.generation import next_token_logits

    return next_token_logits(LOADED.get("smollm2-135m").model, ids).softmax(-1)


def test_a_room_from_start_to_round_two(smollm, rooms_db):
    teacher, code, key = start_room()
    tok = smollm.tokenizer
    link = f"http://localhost:8501/class?room={code}"
    assert link in [c.value for c in teacher.code]
    assert f"Room code: {code[:4]}-{code[4:]}" in texts(teacher)
    assert len(teacher.get("image")) == 1  # the QR code
    assert key not in link and key not in str(dict(teacher.query_params)) and key not in texts(teacher)
    assert [c.value for c in teacher.code].count(key) == 1  # shown once, in its own box
    ok(teacher.button(key="cl_key_saved").click().run())
    assert key not in [c.value for c in teacher.code]
    shared = links_shown(teacher)
    assert shared and not any(key in s or "learner" in s for s in shared)

    ada = join(code, "Ada")
    assert "You are **Ada**" in texts(ada)
    token = ada.query_params["learner"][0]  # the learner's own id, in their own URL
    anon = join(code)
    assert "Learner 2" in texts(anon)
    shared = links_shown(ada)
    assert shared and all(token not in s and "learner" not in s and f"room={code}" in s for s in shared)

    ada = guess(ada, "Paris")
    assert "␣Paris" in texts(ada) and "Your guess: **␣Paris**" in texts(ada)
    anon.text_input(key="cl_guess").input("Lon\x07don").run()  # a control character: a message, the text kept
    ok(anon)
    assert any("control or invisible characters" in e.value for e in anon.error)
    assert anon.text_input(key="cl_guess").value == "Lon\x07don"
    assert anon.button(key="cl_send").disabled
    anon = guess(anon, "London")
    anon = guess(anon, "Paris")  # changed before the reveal: the latest counts
    anon = guess(anon, "Lyon")

    ok(teacher.run())
    assert [m.value for m in teacher.metric if m.label == "Guesses so far"] == ["2"]
    assert "Lyon" not in texts(teacher) and "Paris" not in texts(teacher)  # how many, not what

    ok(teacher.button(key="cl_reveal").click().run())
    frame = teacher.session_state["cl_reveal_frame"]
    ids = encode(tok, TEXT)
    probs = model_probs(ids)
    paris, lyon = encode(tok, TEXT + " Paris")[len(ids)], encode(tok, TEXT + " Lyon")[len(ids)]
    rows = {r["token"]: r for r in frame.to_dict("records")}
    assert set(rows) == {visible(tok.decode([paris])), visible(tok.decode([lyon]))}
    for tid in (paris, lyon):
        row = rows[visible(tok.decode([tid]))]
        assert row["id"] == tid and row["guesses"] == 1 and row["class share"] == 0.5
        assert row["model probability"] == pytest.approx(float(probs[tid]), rel=1e-4)
    chart = [c for c in teacher.get("arrow_vega_lite_chart") or teacher.get("vega_lite_chart")]
    assert chart, "no reveal chart"
    top = teacher.table[1].value  # the model's top 10
    assert top["id"].tolist() == [int(i) for i in probs.topk(10).indices]
    assert "Nobody" not in texts(teacher)

    ada = ok(ada.run())  # the learner's page follows the reveal
    assert ada.session_state["cl_reveal_frame"]["guesses"].sum() == 2
    assert ada.get("text_input") == [] or not any(t.key == "cl_guess" for t in ada.text_input)

    teacher = ok(teacher.run())
    scored = teacher.session_state["cl_score"][0]
    best = int(probs.argmax())
    ok(teacher.button(key="cl_next").click().run())  # the default: the model's most likely
    assert "Round 2" in [h.value for h in teacher.subheader]
    assert teacher.session_state["cl_reveal_frame"] is not None
    result, per_round, hits = teacher.session_state["cl_score"]
    expected = score([Round({1: paris, 2: lyon}, best, float(probs[best]))], len(probs))
    assert result.class_bits == pytest.approx(expected.class_bits) and result.model_bits == pytest.approx(
        -math.log2(float(probs[best])), rel=1e-4)
    assert scored.n_scored == 0 and result.n_scored == 1
    ada = ok(ada.run())
    assert f"### {markdown_literal(TEXT + tok.decode([best]))} …" in texts(ada)  # round 2's text on the learner's
    assert ada.text_input(key="cl_guess").value == ""  # a new round, an empty box
