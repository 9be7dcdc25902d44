"""The Class teacher's round, Streamlit glue: the text so far, the live count and Reveal; after the reveal the class
against the model (the chart, both tables, the true token and who was closest) and Next. The rest of the teacher's
page and the calls to the store: dashboard/ui/classroom.py."""

from __future__ import annotations

import streamlit as st

from dashboard import classgame, ui
from dashboard.classshare import prefetch, probs_after, shared_reveal
from dashboard.numbers import probability
from dashboard.rooms import RoomsError, RoomStore, RoomsUnavailable
from dashboard.ui.classroom import FAILED, TEACHER_FIRST, attempt, literal, live_count, room_backend


def round_section(store: RoomStore, room: dict, state: dict) -> None:
    """The round: the text so far, the live count and Reveal; after the reveal the class against the model and
    Next."""
    number, failed = state["round"], st.session_state.pop(_PRESS_FAILED, None)
    st.subheader(f"Round {number + 1}")
    st.markdown(f"### {literal(state['text'])} …")
    if state["closed"]:
        st.info("The game is over: the score and the downloads are below.", icon="🏁")
        return
    if state["state"] == "open":
        backend = room_backend(state["model_key"])
        if backend is not None:
            prefetch(backend, state["ids"])  # the reveal's forward, while the class guesses
        live_count(store, room["code"], (number, "open"))
        st.button("Reveal", key="cl_reveal", type="primary", on_click=_reveal_pressed,
                  args=(store, room["code"], room["key"], number))
        if failed is not None:
            attempt(_raise, failed)  # why the press did nothing, here under the button
        return
    if failed is not None:  # the round moved on meanwhile (another tab of this teacher): why, here
        attempt(_raise, failed)
    backend = room_backend(state["model_key"])
    if backend is None:
        return
    with ui.engine_faults():
        probs = probs_after(backend, state["ids"])
        view = attempt(shared_reveal, store, room["code"], state, backend)
        if view is FAILED:
            return
        reveal_view(backend, state, probs, view)
        next_controls(store, room, state, backend, probs)


_PRESS_FAILED = "cl_press_failed"  # what a press's callback could not do, for the page to say in place


def _raise(exc: Exception):
    raise exc


def _reveal_pressed(store: RoomStore, code: str, key: str, number: int) -> None:
    """Reveal's on_click: close the round before the page runs, so one run draws the reveal (not a run that only
    reveals and reruns: 0.2-0.4 s of the press-to-chart time, bench class40). A failure is kept for the page."""
    TEACHER_FIRST.press(code)  # the projector draws the reveal before the learners follow
    try:
        store.reveal(code, key, number)
    except (RoomsError, RoomsUnavailable, ValueError) as exc:
        st.session_state[_PRESS_FAILED] = exc


def reveal_view(backend, state: dict, probs, view: dict) -> None:
    """The class's guesses beside the model's probability of each, the model's top 10, the true token and who
    was closest."""
    tok = backend.tokenizer
    frame = classgame.reveal_frame(state.get("counts", []), probs, state.get("true_id"))
    st.session_state["cl_reveal_frame"] = frame
    names = {lr["id"]: lr["name"] for lr in state.get("learners", [])}
    left, right = st.columns([3, 2])
    with left:
        st.markdown("**The class's guesses beside the model's probability of each**")
        if frame.empty:
            st.info("Nobody guessed this round.")
        else:
            st.vega_lite_chart(spec=view["spec"], width="stretch", theme=None)
            ui.chart_downloads(lambda: classgame.reveal_chart(frame), f"class-round-{state['round'] + 1}",
                               key="cl_reveal_chart")
            outside = f"not in its top {backend.top_n}"
            shown = frame.assign(**{"class share": frame["class share"].map("{:.0%}".format),
                                    "model probability": frame["model probability"].map(
                                        lambda p: "—" if p is None or p != p else outside
                                        if backend.top_n and p == 0 else probability(p))})
            ui.text_table(shown.drop(columns=["true"]))
    with right:
        st.markdown(f"**The model's top {classgame.TOP_N}**")
        top = classgame.top_frame(tok, probs)
        ui.text_table(top.assign(probability=top["probability"].map(probability)))
        if backend.top_n is not None:
            st.caption(f"On an engine: its top {backend.top_n} tokens only; a guess outside them has no probability "
                       "here (the bar shows 0).")
    true_id = state.get("true_id")
    if true_id is not None:
        p = float(probs[true_id])
        st.success(f"**The passage's next token:** {literal(classgame.token_label(tok, true_id))} (the model gave "
                   f"it {probability(p)})" if p > 0 else f"**The passage's next token:** "
                   f"{literal(classgame.token_label(tok, true_id))} (not in the model's top {backend.top_n})",
                   icon="🎯")
    guesses = {g["learner_id"]: g["token_id"] for g in state.get("guesses", [])}
    st.info(literal(classgame.closest_line(guesses, probs, true_id, names, tok)), icon="🏅")


def next_controls(store: RoomStore, room: dict, state: dict, backend, probs) -> None:
    """Next: append the true token, the model's most likely or the teacher's pick, and open the next round."""
    tok = backend.tokenizer
    options: dict[str, tuple[int, str]] = {}
    true_id = state.get("true_id")
    if true_id is not None:
        options[f"the passage's next token, {classgame.token_label(tok, true_id)}"] = (true_id, "true")
    top = int(probs.argmax())
    options[f"the model's most likely, {classgame.token_label(tok, top)}"] = (top, "model")
    options["a token I pick"] = (-1, "teacher")
    c1, c2 = st.columns([3, 2])
    label = c1.radio("Next appends", list(options), key="cl_next_by")
    token_id, chosen_by = options[label]
    if chosen_by == "teacher":
        frame = st.session_state.get("cl_reveal_frame")
        candidates = [int(i) for i in frame["id"].dropna()] if frame is not None else []
        candidates += [int(i) for i in classgame.top_frame(tok, probs)["id"] if int(i) not in candidates]
        token_id = c2.selectbox("Token", candidates, key="cl_next_pick",
                                format_func=lambda i: classgame.token_label(tok, i))
    if st.button("Next round", key="cl_next", type="primary"):
        TEACHER_FIRST.press(room["code"])
        made = attempt(store.next_round, room["code"], room["key"], state["round"], int(token_id),
                       tok.decode([int(token_id)]), chosen_by)
        if made is not FAILED:
            st.rerun()
