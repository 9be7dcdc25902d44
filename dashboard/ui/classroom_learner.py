"""The Class page's learner side (Streamlit glue): join a room by its link (`/class?room=CODE`), a display name,
the text so far, a guess shown as the model's token before it is sent (changeable until the reveal), the page
following the teacher every second, and the reveal. The learner's id may sit in this learner's own URL
(`?learner=`, so a reload keeps name and guess); the share link leaves it out (links.PRIVATE_PARAMS)."""

from __future__ import annotations

import secrets

import streamlit as st

from dashboard import classgame, ui
from dashboard.classshare import shared_reveal
from dashboard.guessing import map_guess
from dashboard.numbers import probability
from dashboard.rooms import (MAX_GUESS, MAX_NAME, JoinLimiter, NotLearner, RoomNotFound, RoomsError, RoomStore,
                             RoomsUnavailable, clean_text, normalise_code)
from dashboard.rooms_guard import SharedReads
from dashboard.ui.classroom import (FAILED, LEARNER_PARAM, ROOM_PARAM, TEACHER_FIRST, attempt, followed, literal,
                                    pretty_code, room_backend, unavailable)

_ME = "cl_me"  # {"code", "token"} of this session's learner
LIMITER = JoinLimiter()  # join attempts per session, process-wide
FOLLOWED = SharedReads(ttl_s=0.5)  # what follow() reads, shared by the learners of a room on this server


def is_learner() -> bool:
    """True when the page was opened on a join link (?room=…)."""
    return ROOM_PARAM in st.query_params


def room_code() -> str | None:
    """The link's room code in its stored form, or None after saying it is not a room code."""
    raw = st.query_params.get(ROOM_PARAM) or ""
    try:
        return normalise_code(raw)
    except RoomNotFound:
        st.error(f"**That is not a room code:** {literal(raw[:40])!s}. A code is 8 letters and digits, like "
                 "K7Q2-MXP4: check the link, or type the code your teacher shows.", icon="🚪")
        code_box()
        return None


def code_box() -> None:
    """A box to type a room code in; opens that room."""
    typed = st.text_input("Room code", key="cl_code_typed", placeholder="K7Q2-MXP4")
    if st.button("Join", key="cl_code_go") and typed:
        try:
            st.query_params[ROOM_PARAM] = normalise_code(typed)
            st.query_params.pop(LEARNER_PARAM, None)
            st.rerun()
        except RoomNotFound as exc:
            st.warning(str(exc), icon="🚪")


def public_state(store: RoomStore, code: str) -> tuple[dict | None, bool]:
    """(the room's public state, whether the database is down): the last state seen while it is down, so the
    page and what was typed in it stay; None after saying why there is none (no such room)."""
    try:
        state = store.public_state(code)
    except RoomNotFound:
        st.error(f"**There is no room {pretty_code(code)}** (it may have ended or expired). Check the code with "
                 "your teacher.", icon="🚪")
        code_box()
        return None, False
    except RoomsUnavailable as exc:
        unavailable(exc)
        last = st.session_state.get("cl_last_state")
        return (last if last and last["code"] == code else None), True
    except RoomsError as exc:
        st.warning(str(exc), icon="🚪")
        return None, False
    st.session_state["cl_last_state"] = state
    return state, False


def me(store: RoomStore, code: str, down: bool = False) -> dict | None:
    """This learner in room `code` ({"token", "name", "guess", "shown"}), from the session or their own URL; None
    when they have not joined. While the database is `down`: the last seen."""
    mine = st.session_state.get(_ME)
    token = mine["token"] if mine and mine["code"] == code else st.query_params.get(LEARNER_PARAM)
    last = st.session_state.get("cl_last_me")
    if down or not token:
        return last if down and last and last["token"] == token else None
    try:
        info = store.me(code, token)
    except NotLearner:
        st.session_state.pop(_ME, None)
        st.query_params.pop(LEARNER_PARAM, None)
        return None
    except RoomsUnavailable as exc:
        unavailable(exc)
        return last if last and last["token"] == token else None
    st.session_state[_ME] = {"code": code, "token": token}
    if st.query_params.get(LEARNER_PARAM) != token:
        st.query_params[LEARNER_PARAM] = token
    st.session_state["cl_last_me"] = {"token": token, **info}
    return st.session_state["cl_last_me"]


def join_section(store: RoomStore, code: str, state: dict) -> None:
    """Join: an optional display name, then the room (not once the teacher has ended it)."""
    st.subheader(f"Join room {pretty_code(code)}")
    if state["closed"]:
        st.info("The teacher has ended this room: ask for a new code.", icon="🚪")
        return
    name = st.text_input("Your name on the class's screen (optional)", key="cl_name", max_chars=MAX_NAME,
                         placeholder="leave empty to be Learner 1, 2, …")
    if st.button("Join", key="cl_join", type="primary"):
        try:
            chosen = clean_text(name, "name", MAX_NAME) if name.strip() else None
        except ValueError as exc:
            st.error(str(exc), icon="✏️")
            return
        session = st.session_state.setdefault("cl_session", secrets.token_hex(8))
        joined = attempt(store.join, code, chosen, limiter=LIMITER, session_id=session)
        if joined is not FAILED:
            st.session_state[_ME] = {"code": code, "token": joined[0]}
            st.query_params[LEARNER_PARAM] = joined[0]
            st.rerun()


def rename_section(store: RoomStore, code: str, mine: dict) -> None:
    """Change this learner's display name (folded away: most never need it)."""
    if st.session_state.pop("cl_renamed", False):  # saved: an empty box, folded again (before they are drawn)
        st.session_state["cl_rename"] = ""
        st.session_state["cl_rename_open"] = False
        st.toast(f"Saved: the class now sees you as **{literal(mine['name'])}**", icon="✏️")
    with st.expander("Change my name", key="cl_rename_open", on_change="rerun"):
        name = st.text_input("New name", key="cl_rename", max_chars=MAX_NAME,
                             placeholder="the name the class sees")
        if st.button("Save the name", key="cl_rename_go", disabled=not name):
            if attempt(store.set_name, code, mine["token"], name) is not FAILED:
                st.session_state["cl_renamed"] = True
                st.rerun()


@st.fragment(run_every=1)
def follow(store: RoomStore, code: str, seen: tuple) -> None:
    """Every second: the round and how many have guessed; the page follows the teacher's Reveal and Next (within
    1.5 s: the state is shared for 0.5 s by this server's learners of the room), a second later while the
    teacher's page on this server is being drawn after a press (TeacherFirst: the projector first)."""
    if TEACHER_FIRST.busy(code):  # read nothing and rerun nothing now: the last line again
        if st.session_state.get("cl_follow_line"):
            st.caption(st.session_state["cl_follow_line"])
        return
    state = followed(lambda: FOLLOWED.get(code, lambda: store.public_state(code)), seen)
    if state is None:
        return
    st.session_state["cl_follow_line"] = classgame.follow_line(state)
    st.caption(st.session_state["cl_follow_line"])


def learner_section(store: RoomStore, code: str, state: dict, mine: dict) -> None:
    """The learner's round: the text so far and their guess (open), or the reveal."""
    if mine.get("name"):
        st.markdown(f"You are **{literal(mine['name'])}** in room {pretty_code(code)}.")
    if not state["closed"]:
        rename_section(store, code, mine)
    follow(store, code, (state["round"], state["state"]))
    st.markdown("**The text so far**")
    st.markdown(f"### {literal(state['text'])} …")
    if state["closed"]:
        st.info("The teacher has closed this room.", icon="🚪")
        return
    if state["state"] == "open":
        guess_section(store, code, state, mine)
    else:
        reveal_section(store, code, state, mine)


@st.fragment
def guess_section(store: RoomStore, code: str, state: dict, mine: dict) -> None:
    """A guess for the next token, shown as the model would write it after this text, sent (or changed).

    A fragment: typing and sending rerun only this, not the app's sidebar and the rest of the page, so forty
    learners sending at once cost the server ~40% less (bench: class40). Its arguments are the last full run's;
    the round cannot change under it (follow() reruns the whole page when it does), and what was sent since is
    read from the session."""
    sent = st.session_state.get("cl_sent")
    if sent and sent[:2] == (code, state["round"]):
        mine = {**mine, "guess": sent[2], "shown": sent[3]}
    if st.session_state.get("cl_guess_round") != (code, state["round"]):  # a new round starts with an empty box
        st.session_state["cl_guess_round"] = (code, state["round"])
        st.session_state["cl_guess"] = mine.get("guess") or ""
    typed = st.text_input("What comes next? Your guess", key="cl_guess", max_chars=MAX_GUESS,
                          placeholder="a word, or part of one")
    mapped = None
    if typed:
        tok = ui.get_tokenizer(state["model_key"])
        if tok is None:
            return
        try:
            mapped = map_guess(tok, state["text"], clean_text(typed, "guess", MAX_GUESS))
        except ValueError as exc:
            st.error(str(exc)[:1].upper() + str(exc)[1:], icon="✏️")
        if mapped is not None:
            note = f" ({literal(mapped.note)})" if mapped.note else ""
            st.markdown(f"The model would write it as **{literal(mapped.shown)}**{note}.")
    if st.button("Send my guess", key="cl_send", type="primary", disabled=mapped is None):
        sent = attempt(store.guess, code, mine["token"], state["round"], mapped.typed, mapped.token_id, mapped.shown)
        if sent is not FAILED:
            mine = {**mine, "guess": mapped.typed, "shown": mapped.shown}
            st.session_state["cl_last_me"] = mine
            st.session_state["cl_sent"] = (code, state["round"], mapped.typed, mapped.shown)
    if mine.get("shown"):
        st.success(f"Your guess: **{literal(mine['shown'])}**. You can change it until the teacher reveals.",
                   icon="✅")


def reveal_section(store: RoomStore, code: str, state: dict, mine: dict) -> None:
    """The reveal as the class sees it: the class's guesses beside the model's probability, the model's top 10,
    the true token, who was closest and how the model rated this learner's guess."""
    backend = room_backend(state["model_key"])
    if backend is None:
        return
    with ui.engine_faults():
        view = attempt(shared_reveal, store, code, state, backend)
        if view is FAILED:
            return
        if mine.get("shown"):
            st.markdown(f"Your guess: **{literal(mine['shown'])}**{literal(your_verdict(view, mine))}.")
        left, right = st.columns([3, 2])
        with left:
            st.markdown("**The class's guesses beside the model's probability of each**")
            if view["spec"] is None:
                st.info("Nobody guessed this round.")
            else:
                st.vega_lite_chart(spec=view["spec"], width="stretch", theme=None)
        with right:
            st.markdown(f"**The model's top {classgame.TOP_N}**")
            ui.text_table(view["top"])
        if view["true"]:
            st.success(literal(view["true"]), icon="🎯")
        st.info(literal(view["closest"]), icon="🏅")
        st.caption("Wait for the teacher's next round: this page follows by itself.")


def your_verdict(view: dict, mine: dict) -> str:
    """How the model rated this learner's guess, as words after it ('' for a guess with no token)."""
    token_id = mine.get("token_id")
    if token_id is None or not 0 <= token_id < view["probs"].shape[-1]:
        return ""
    p = float(view["probs"][token_id])
    rated = f"the model gave it {probability(p)}" if p > 0 else f"not in the model's top {view['top_n']}"
    return f" ({rated})" + (": the passage's next token, well guessed!" if token_id == view["true_id"] else "")
