"""The Class page (issue 20) through AppTest on the bundled model, each test on its own SQLite rooms file (or the
test PostgreSQL): a teacher's room, learners joining by ?room= and guessing, the live count, the reveal's numbers
against the model's own, Next, the score, and the faults (bad codes, bad text, the database down)."""

from __future__ import annotations

import math
import time

import pytest

from dashboard.numbers import probability
import torch

from dashboard.guessing import Round, score
from dashboard.loaded import LOADED
from dashboard.rooms_schema import DB_ENV
from dashboard.tokens import encode, markdown_literal, visible
from conftest import open_page
from pg import pg_server, pg_url  # noqa: F401  (fixtures)
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


def param(at, name: str) -> str:
    """The value of ?name= in the session's URL."""
    value = at.query_params[name]
    return value[0] if isinstance(value, list) else value


def chart_rows(at) -> dict:
    """{(token, who): share} of the reveal chart's bars, from the rows Streamlit sends the browser."""
    import pyarrow as pa

    for chart in at.get("vega_lite_chart"):
        if "yOffset" not in chart.proto.spec:
            continue
        frames = [pa.ipc.open_stream(d.data.data).read_pandas() for d in chart.proto.datasets]
        if chart.proto.data.data:
            frames.append(pa.ipc.open_stream(chart.proto.data.data).read_pandas())
        for frame in frames:
            if {"token", "who", "share"} <= set(frame.columns):
                return {(r["token"], r["who"]): r["share"] for r in frame.to_dict("records")}
    raise AssertionError("no reveal chart on the page")


def count_bar(at) -> dict:
    """{who: learners} of the teacher's live count bar, from the spec Streamlit sends the browser."""
    import pyarrow as pa

    for chart in at.get("vega_lite_chart"):
        if chart.proto.data.data:  # Streamlit sends the spec's inline values as its Arrow data
            rows = pa.ipc.open_stream(chart.proto.data.data).read_pandas().to_dict("records")
            if {r.get("who") for r in rows} == {"guessed", "not yet"}:
                return {r["who"]: r["n"] for r in rows}
    raise AssertionError("no live count bar on the page")


def model_probs(ids: list[int]) -> torch.Tensor:
    """The bundled model's own next-token probabilities after `ids` (computed here, not by the page)."""
    from dashboard.generation import next_token_logits

    return next_token_logits(LOADED.get("smollm2-135m").model, ids).softmax(-1)


def test_a_room_from_start_to_round_two(smollm, rooms_db, caplog, monkeypatch):
    caplog.set_level("DEBUG")
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
    token = param(ada, "learner")  # the learner's own id, in their own URL
    anon = join(code)
    assert "Learner 2" in texts(anon)
    shared = links_shown(ada)
    assert shared and all(token not in s and "learner" not in s and f"room={code}" in s for s in shared)

    ada = guess(ada, "Paris")
    assert "␣Paris" in texts(ada) and "Your guess: **␣Paris**" in texts(ada)
    assert count_bar(ok(teacher.run())) == {"guessed": 1, "not yet": 1}  # Ada, of Ada and Learner 2
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
    assert count_bar(teacher) == {"guessed": 2, "not yet": 0}
    time.sleep(0.6)  # what a learner's once-a-second line reads is shared by this server's learners for 0.5 s
    assert "Round 1 · 2 of 2 guessed so far" in [c.value for c in ada.run().caption]
    assert "Lyon" not in texts(teacher) and "Paris" not in texts(teacher)  # how many, not what

    from dashboard.rooms import RoomStore
    from dashboard.ui.classroom import TEACHER_FIRST

    reads, teacher_state = [], RoomStore.teacher_state
    monkeypatch.setattr(RoomStore, "teacher_state", lambda self, *a: reads.append(a[0]) or teacher_state(self, *a))
    ok(teacher.button(key="cl_reveal").click().run())
    assert len(reads) == 1  # one page run draws the reveal: the press's callback revealed before it (not a rerun)
    monkeypatch.setattr(RoomStore, "teacher_state", teacher_state)
    assert TEACHER_FIRST.busy(code)  # drawn, its messages on their way: this server's learners wait half a second
    time.sleep(TEACHER_FIRST.after_s + 0.1)
    assert not TEACHER_FIRST.busy(code)  # then they follow
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
    bars = chart_rows(teacher)  # what the browser draws: the class's share beside the model's probability
    for tid in (paris, lyon):
        label = visible(tok.decode([tid]))
        assert bars[(label, "class's guesses")] == 0.5
        assert bars[(label, "model")] == pytest.approx(float(probs[tid]), rel=1e-4)
    top = teacher.table[1].value  # the model's top 10
    assert top["id"].tolist() == [int(i) for i in probs.topk(10).indices]
    assert "Nobody" not in texts(teacher)
    shown = teacher.table[0].value  # probabilities written as on every page (dashboard/numbers.py): none reads 0
    for tid in (paris, lyon):
        cell = shown[shown["id"] == tid]["model probability"].iloc[0]
        assert cell == markdown_literal(probability(float(probs[tid]))) and cell not in ("0.00%", "0%")
    assert top["probability"].tolist() == [markdown_literal(probability(float(p))) for p in probs.topk(10).values]

    ada = ok(ada.run())  # the learner's page follows the reveal: the same chart, the model's top 10, who was closest
    assert chart_rows(ada) == bars
    assert "Round 1 · revealed: 2 of 2 guessed" in [c.value for c in ada.caption]  # not "so far" any more
    assert ada.table[0].value["token"].tolist() == [markdown_literal(visible(tok.decode([int(i)])))
                                                     for i in probs.topk(10).indices]
    assert ada.table[0].value["probability"].tolist() == top["probability"].tolist()
    best_guess, other = (paris, lyon) if probs[paris] > probs[lyon] else (lyon, paris)
    closest = "Ada" if best_guess == paris else "Learner 2"
    rated = f"(the model gave it {probability(float(probs[paris]))})"
    assert f"Your guess: **␣Paris** {markdown_literal(rated)}" in texts(ada)
    assert [i.value for i in ada.info] == [i.value for i in teacher.info] and closest in ada.info[0].value
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
    assert key not in caplog.text and token not in caplog.text  # nor in a log
    ada = ok(ada.run())
    assert f"### {markdown_literal(TEXT + tok.decode([best]))} …" in texts(ada)  # round 2's text on the learner's
    assert ada.text_input(key="cl_guess").value == ""  # a new round, an empty box


SLY = "=HYPERLINK(1) <b>x</b>"
PASSAGE = "The capital of France is Paris. The capital of Italy is Rome."


def test_a_passage_game_scores_the_class_on_the_true_tokens_and_exports_it_escaped(smollm, rooms_db):
    from dashboard.exports import csv_bytes

    tok = smollm.tokenizer
    ids = encode(tok, PASSAGE)
    start = len(encode(tok, TEXT))
    teacher = open_page(PAGE)
    teacher.radio(key="cl_mode").set_value("Paste a passage").run()
    teacher.text_area(key="cl_passage").input(PASSAGE).run()
    teacher.slider(key="cl_start").set_value(start).run()
    ok(teacher.button(key="cl_create").click().run())
    code, key = teacher.session_state["cl_room"]["code"], teacher.session_state["cl_room"]["key"]
    sly = join(code, SLY)  # a name a spreadsheet, Markdown or HTML would act on
    assert f"You are **{markdown_literal(SLY)}**" in texts(sly) and "<b>" not in texts(sly)
    ann = join(code, "Ann")
    guess(sly, "Paris")
    guess(ann, "Lyon")
    ok(teacher.run())
    ok(teacher.button(key="cl_reveal").click().run())
    probs = model_probs(ids[:start])
    true = ids[start]
    assert f"The passage's next token:** {markdown_literal(visible(tok.decode([true])))}" in texts(teacher)
    assert any("guessed the true token" in e.value and "HYPERLINK" in e.value for e in teacher.info)
    assert teacher.radio(key="cl_next_by").value.startswith("the passage's next token")
    ok(teacher.button(key="cl_next").click().run())
    result, per_round, hits = teacher.session_state["cl_score"]
    paris_id = encode(tok, TEXT + " Paris")[start]
    lyon_id = encode(tok, TEXT + " Lyon")[start]
    assert paris_id == true  # the passage goes on with " Paris"
    expected = score([Round({1: paris_id, 2: lyon_id}, true, float(probs[true]))], len(probs))
    assert result.class_bits == pytest.approx(expected.class_bits)
    assert result.class_bits == pytest.approx(-math.log2((1 + 1 / len(probs)) / (2 + 1)))
    assert result.model_bits == pytest.approx(-math.log2(float(probs[true])), rel=1e-4)
    assert dict(zip(hits["learner"], hits["hits"])) == {SLY: 1, "Ann": 0}
    # round 2 starts on the passage's next token, with its own true token
    assert "Round 2" in [h.value for h in teacher.subheader]
    table = [t.value for t in teacher.table][-1]  # the hits table: the name escaped for Markdown
    assert markdown_literal(SLY) in table["learner"].tolist()
    from dashboard import classgame

    labels = [b.label for b in teacher.get("download_button")]
    assert labels == ["Chart as SVG", "Chart as PNG", "Download CSV", "Download JSON"]  # the score chart, the game
    rows = classgame.export_frame(*_game(code, key, teacher))
    csv = csv_bytes(rows).decode()
    assert f"'{SLY}" in csv and ",=HYPERLINK" not in csv


def _game(code, key, at):
    """(export rows, rounds, names) of room `code` read from the page's own store."""
    from dashboard.rooms import RoomStore
    from dashboard.rooms_schema import make_engine, url_from

    store = RoomStore(make_engine(url_from()))
    state = store.teacher_state(code, key)
    return store.export_rows(code, key), store.rounds_detail(code, key), {l["id"]: l["name"] for l in state["learners"]}


@pytest.mark.parametrize("raw", ["nope", "<script>alert(1)</script>", "ABCD-EFG", "' OR 1=1 --", "x" * 500])
def test_a_bad_room_code_gets_a_message(rooms_db, raw):
    at = ok(open_page(PAGE, room=raw))
    assert any("not a room code" in e.value for e in at.error), texts(at)
    assert "<script>" not in texts(at)
    assert at.text_input(key="cl_code_typed") is not None


def test_a_room_that_does_not_exist_gets_a_message(rooms_db):
    at = ok(open_page(PAGE, room="ABCD-EFGH"))
    assert any("There is no room ABCD-EFGH" in e.value for e in at.error), texts(at)


def test_a_learner_reload_keeps_name_and_guess_and_the_teacher_comes_back_with_the_key(smollm, rooms_db):
    teacher, code, key = start_room()
    ada = guess(join(code, "Ada"), "Paris")
    token = param(ada, "learner")
    again = ok(open_page(PAGE, room=code, learner=token))  # a reload: a new session on the learner's own URL
    assert "You are **Ada**" in texts(again)
    assert again.text_input(key="cl_guess").value == "Paris"
    stranger = ok(open_page(PAGE, room=code, learner="not-my-id"))  # someone else's made-up id: join afresh
    assert stranger.button(key="cl_join") is not None and "learner" not in stranger.query_params

    back = open_page(PAGE)  # the teacher after a reload: the code and the key
    back.text_input(key="cl_resume_code").input(code)
    back.text_input(key="cl_resume_key").input("wrong")
    ok(back.button(key="cl_resume").click().run())
    assert any("teacher key does not match" in w.value for w in back.warning)
    back.text_input(key="cl_resume_key").input(key)
    ok(back.button(key="cl_resume").click().run())
    assert [m.value for m in back.metric if m.label == "Guesses so far"] == ["1"]
    assert key not in [c.value for c in back.code] and key not in str(dict(back.query_params))


def test_joins_are_rate_limited_per_session(smollm, rooms_db, monkeypatch):
    from dashboard.rooms import JoinLimiter
    from dashboard.ui import classroom_learner

    monkeypatch.setattr(classroom_learner, "LIMITER", JoinLimiter(limit=2))
    _, code, _ = start_room()
    at = join(code)
    for _ in range(2):
        at.session_state["cl_me"] = None
        del at.query_params["learner"]
        ok(at.run())
        at.text_input(key="cl_name").input("Bo")
        ok(at.button(key="cl_join").click().run())
    assert any("too many tries to join" in w.value for w in at.warning), texts(at)
    assert at.text_input(key="cl_name").value == "Bo"


def test_the_database_unreachable_gives_a_message_on_every_room_page(tmp_path, monkeypatch):
    folder = tmp_path / "read-only"
    folder.mkdir()
    folder.chmod(0o500)
    monkeypatch.setenv(DB_ENV, f"sqlite:///{folder / 'missing' / 'rooms.sqlite3'}")
    for params in ({}, {"room": "ABCD-EFGH"}):
        at = ok(open_page(PAGE, **params))
        assert any("cannot be reached right now" in e.value for e in at.error), texts(at)


def test_postgresql_stopped_mid_game_keeps_what_was_typed_and_the_room_goes_on(smollm, pg_server, pg_url, monkeypatch):
    monkeypatch.setenv(DB_ENV, pg_url)
    teacher, code, key = start_room()
    ada = join(code, "Ada")
    pg_server.stop()
    try:
        ada.text_input(key="cl_guess").input("Paris").run()
        ok(ada.button(key="cl_send").click().run())
        assert any("cannot be reached right now" in e.value for e in ada.error), texts(ada)
        assert pg_server.password not in texts(ada)
        assert ada.text_input(key="cl_guess").value == "Paris"  # nothing typed is lost
        ok(teacher.run())
        assert any("cannot be reached right now" in e.value for e in teacher.error), texts(teacher)
    finally:
        pg_server.start()
    ada = ok(ada.run())
    ada = ok(ada.button(key="cl_send").click().run())  # the same box, sent again once it is back
    assert "Your guess: **␣Paris**" in texts(ada)
    ok(teacher.run())
    assert [m.value for m in teacher.metric if m.label == "Guesses so far"] == ["1"]


def test_a_room_on_the_engine_reveals_its_top_n(engine, rooms_db):
    from dashboard import backends, models

    key = "class/smollm2"
    teacher = open_page(PAGE, model=key)
    teacher.text_area(key="cl_text").input(TEXT).run()
    ok(teacher.button(key="cl_create").click().run())
    code = teacher.session_state["cl_room"]["code"]
    ada = guess(join(code, "Ada"), "Paris")
    guess(join(code, "Bo"), "Zanzibarque")
    assert "␣Paris" in texts(ada)
    ok(teacher.button(key="cl_reveal").click().run())
    backend = backends.engine_backend(models.get_spec(key))
    ids = backend.tokenize(TEXT)
    logits = backend.next_logits([ids])[0]  # the engine's own log-probabilities of its top N
    frame = teacher.session_state["cl_reveal_frame"]
    paris = backend.tokenize(TEXT + " Paris")[len(ids)]
    row = frame[frame["id"] == paris].iloc[0]
    assert row["guesses"] == 1 and row["model probability"] == pytest.approx(math.exp(float(logits[paris])), rel=1e-4)
    other = frame[frame["id"] != paris].iloc[0]  # a token outside the engine's top N: no probability, shown as —
    assert not math.isfinite(float(logits[int(other["id"])])) and other["model probability"] == 0
    assert f"its top {backend.top_n} tokens only" in "\n".join(c.value for c in teacher.caption)
    shown = teacher.table[0].value
    assert shown["model probability"].tolist()[-1] == f"not in its top {backend.top_n}"
    top = teacher.table[1].value
    assert top["id"].tolist() == [int(i) for i in logits.topk(10).indices]
    ok(teacher.button(key="cl_next").click().run())
    assert "Round 2" in [h.value for h in teacher.subheader]


def test_the_next_token_pages_text_so_far_starts_a_room(smollm, rooms_db):
    at = open_page("pages/next-token.py")
    ok(at.button(key="nt_append").click().run())
    path = at.session_state["nt_path"]
    so_far = at.text_area(key="prompt").value + smollm.tokenizer.decode([s.token_id for s in path.steps])
    at.switch_page("pages/class.py")
    ok(at.run())
    assert at.text_area(key="cl_text").value == so_far  # the text the user was working on
    at.text_area(key="cl_text").input("something else").run()
    ok(at.button(key="cl_use_next").click().run())
    assert at.text_area(key="cl_text").value == so_far
    ok(at.button(key="cl_create").click().run())
    assert f"### {markdown_literal(so_far)} …" in texts(at)


def test_next_appends_the_teachers_pick_and_a_send_after_the_reveal_changes_nothing(smollm, rooms_db):
    teacher, code, key = start_room()
    tok = smollm.tokenizer
    ada = guess(join(code, "Ada"), "Paris")
    ada.text_input(key="cl_guess").input("Lyon")  # typed before the reveal, sent after it
    ok(teacher.button(key="cl_reveal").click().run())
    ok(ada.button(key="cl_send").click().run())
    assert list(chart_rows(ada).values())[0] == 1.0  # her page shows the reveal instead: one guess, hers
    assert _game(code, key, teacher)[0][0]["guess"] == "Paris"
    ok(teacher.radio(key="cl_next_by").set_value("a token I pick").run())
    pick = teacher.selectbox(key="cl_next_pick")
    ids = encode(tok, TEXT)
    paris = encode(tok, TEXT + " Paris")[len(ids)]
    assert pick.options[0] == visible(tok.decode([paris]))  # the class's guesses first, then the model's top 10
    ok(pick.select_index(0).run())
    ok(teacher.button(key="cl_next").click().run())
    rounds = _game(code, key, teacher)[1]
    assert rounds[0]["chosen_id"] == paris and rounds[0]["chosen_by"] == "teacher"
    assert rounds[1]["text"] == TEXT + tok.decode([paris]) and rounds[1]["state"] == "open"


@pytest.mark.parametrize("name, message", [("\u200bBob", "control or invisible characters"), ("Bo\tb", "U+0009")])
def test_a_bad_name_gets_a_message_and_stays_in_the_box(smollm, rooms_db, name, message):
    _, code, _ = start_room()
    at = open_page(PAGE, room=code)
    at.session_state["cl_name"] = name  # (what a script, not a keyboard, can put in the box)
    ok(at.button(key="cl_join").click().run())
    assert any(message in e.value for e in at.error), texts(at)
    assert at.text_input(key="cl_name").value == name and "learner" not in at.query_params


def test_a_learner_changes_their_name_after_joining_and_a_bad_one_gets_a_message(smollm, rooms_db):
    teacher, code, key = start_room()
    at = join(code)
    assert "You are **Learner 1**" in texts(at)
    at.session_state["cl_rename"] = "Bo\x07b"  # a control character: a message, the text kept in the box
    ok(at.run().button(key="cl_rename_go").click().run())
    assert any("control or invisible characters" in e.value for e in at.error)
    assert at.text_input(key="cl_rename").value == "Bo\x07b" and "You are **Learner 1**" in texts(at)
    at.text_input(key="cl_rename").input("Grace <b>H</b>").run()
    ok(at.button(key="cl_rename_go").click().run())
    assert f"You are **{markdown_literal('Grace <b>H</b>')}**" in texts(at) and at.text_input(key="cl_rename").value == ""
    assert at.session_state["cl_rename_open"] is False  # folded again once saved, with a toast saying so
    assert [t.value for t in at.toast] == [f"Saved: the class now sees you as **{markdown_literal('Grace <b>H</b>')}**"]
    assert list(_game(code, key, teacher)[2].values()) == ["Grace <b>H</b>"]  # stored as typed (escaped where shown)


def test_a_text_that_cannot_start_a_room_says_why_and_keeps_start_in_place_disabled(smollm, rooms_db):
    at = open_page(PAGE)
    ok(at.text_area(key="cl_text").input("x" * 5000).run())
    assert any("at most 4000" in e.value for e in at.error) and at.button(key="cl_create").disabled
    assert at.text_area(key="cl_text").value == "x" * 5000  # nothing typed is lost
    ok(at.text_area(key="cl_text").input("   ").run())
    assert "Type or paste the text the class starts from." in [c.value for c in at.caption]
    assert at.button(key="cl_create").disabled
    ok(at.text_area(key="cl_text").input("Bonjour").run())
    assert not at.button(key="cl_create").disabled and not at.error


def test_a_guess_of_spaces_only_gets_a_message(smollm, rooms_db):
    _, code, _ = start_room()
    at = join(code)
    ok(at.text_input(key="cl_guess").input("   ").run())
    assert any("only spaces" in e.value for e in at.error) and at.button(key="cl_send").disabled


def test_the_teacher_ends_then_deletes_the_room(smollm, rooms_db):
    teacher, code, key = start_room()
    ada = guess(join(code, "Ada"), "Paris")
    ok(teacher.button(key="cl_reveal").click().run())
    ok(teacher.button(key="cl_close").click().run())
    assert "The game is over" in texts(teacher) and not any(b.key == "cl_next" for b in teacher.button)
    assert "The teacher has closed this room" in texts(ok(ada.run()))
    assert not any(b.key == "cl_join" for b in open_page(PAGE, room=code).button)  # no more joins
    assert teacher.button(key="cl_delete").disabled
    teacher.checkbox(key="cl_delete_sure").check().run()
    ok(teacher.button(key="cl_delete").click().run())
    assert "cl_room" not in teacher.session_state and teacher.button(key="cl_create") is not None
    assert f"There is no room {code[:4]}-{code[4:]}" in texts(ok(ada.run()))


def test_three_rounds_in_a_row_with_a_changing_next_choice(smollm, rooms_db):
    teacher, code, key = start_room()
    tok = smollm.tokenizer
    ada = join(code, "Ada")
    for n in range(3):
        ada = guess(ok(ada.run()), "the")
        ok(teacher.run())
        ok(teacher.button(key="cl_reveal").click().run())
        labels = teacher.radio(key="cl_next_by").options
        assert labels[0].startswith("the model's most likely") and labels[1] == "a token I pick"
        if n == 1:
            ok(teacher.radio(key="cl_next_by").set_value("a token I pick").run())
        ok(teacher.button(key="cl_next").click().run())
        assert f"Round {n + 2}" in [h.value for h in teacher.subheader]
    rounds = _game(code, key, teacher)[1]
    assert [r["chosen_by"] for r in rounds[:3]] == ["model", "teacher", "model"]
    assert rounds[3]["ids"][-3:] == [r["chosen_id"] for r in rounds[:3]]
    assert teacher.session_state["cl_score"][0].n_scored == 3


def test_a_reveal_the_database_refuses_says_why_under_the_button_and_the_round_stays_open(smollm, rooms_db,
                                                                                          monkeypatch):
    from dashboard.rooms import RoomStore, RoomsUnavailable

    teacher, code, key = start_room()
    guess(join(code, "Ada"), "Paris")

    def down(self, *args):
        raise RoomsUnavailable("the database did not answer")

    reveal = RoomStore.reveal
    monkeypatch.setattr(RoomStore, "reveal", down)
    ok(teacher.run())
    ok(teacher.button(key="cl_reveal").click().run())  # Reveal's callback failed: the page says so, in place
    assert any("cannot be reached right now" in e.value and "did not answer" in e.value for e in teacher.error)
    assert teacher.button(key="cl_reveal") is not None and "cl_reveal_frame" not in teacher.session_state
    monkeypatch.setattr(RoomStore, "reveal", reveal)
    ok(teacher.run())
    assert not teacher.error  # said once, not on every later run
    ok(teacher.button(key="cl_reveal").click().run())
    assert "cl_reveal_frame" in teacher.session_state and not teacher.error  # back: the same press reveals
