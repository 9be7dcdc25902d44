"""Class: Shannon's guessing game, live. The teacher starts a room on a text; learners join by its link or QR code
and guess the next token; Reveal shows the class beside the model, Next writes on, and the score adds up."""

import streamlit as st

from dashboard import ui

ui.page_guard()

from dashboard.ui import classroom  # noqa: E402
from dashboard.ui import classroom_learner as learner  # noqa: E402
from dashboard.ui import classroom_round  # noqa: E402
from dashboard.ui import classroom_score  # noqa: E402

st.title("🧑‍🏫 Class: guess the next token")
st.caption("Shannon's guessing game with a class: everyone guesses what comes next, then the model's own "
           "probabilities are revealed beside the class's guesses.")


def learner_page(store) -> None:
    """A learner on a join link: join, then the round (guess, or the reveal)."""
    code = learner.room_code()
    state, down = learner.public_state(store, code) if code else (None, False)
    if state is None:
        return
    mine = learner.me(store, code, down)
    if mine is None:
        learner.join_section(store, code, state)
    else:
        learner.learner_section(store, code, state, mine)


def teacher_page(store) -> None:
    """The teacher: start or resume a room, then its join link, the round and the score."""
    room = classroom.teacher_room()
    if room is None:
        classroom.start_section(store)
        classroom.resume_section(store)
        return
    state, down = classroom.teacher_state(store, room)
    if state is None:
        return
    classroom.join_section(room)  # still on the projector while the database is down
    if down:  # the live count retries every second and brings the room back
        classroom.live_count(store, room["code"], (state["round"], state["state"]))
        return
    classroom_round.round_section(store, room, state)
    classroom_score.score_section(store, room, state)
    classroom_score.end_section(store, room, state)
    classroom.drawn(room)  # the learners follow once the projector shows this


rooms = classroom.store()
if rooms is not None and learner.is_learner():
    learner_page(rooms)
elif rooms is not None:
    teacher_page(rooms)
