"""The Class page's Streamlit glue, shared part and the teacher's side: the rooms store through st.connection, store
calls whose failures become messages, and the teacher's sections: start or resume a room, the join link and QR code
and the live count. The round (Reveal, the reveal, Next): dashboard/ui/classroom_round.py; the score:
classroom_score.py; the learner's side: classroom_learner.py; numbers and charts: dashboard/classgame.py; what the
room's pages share in this process (one forward per text): dashboard/classshare.py; the store: dashboard/rooms.py.

The teacher's key lives only in this session (shown once, to paste after a reload); never in a URL or a log."""

from __future__ import annotations

import functools
import io
import logging

import streamlit as st

from dashboard import classgame, ui
from dashboard.rooms import (MAX_TEXT, RateLimited, RoomNotFound, RoomsError, RoomStore, RoomsUnavailable,
                             clean_text, normalise_code)
from dashboard.rooms_guard import TeacherFirst
from dashboard.rooms_schema import engine_kwargs, safe_url, url_from
from dashboard.tokens import markdown_literal

logger = logging.getLogger(__name__)

ROOM_PARAM, LEARNER_PARAM = "room", "learner"  # ?room=CODE joins; ?learner= is that learner's own id
_TEACHER = "cl_room"  # {"code", "key"} of the room this session teaches
_KEY_ONCE = "cl_key_once"  # the key is still to be shown (until the teacher says it is saved)
TYPED, PASSAGE = "Type a text", "Paste a passage"
FAILED = object()  # what attempt() returns after showing why a call failed
TEACHER_FIRST = TeacherFirst()  # rooms whose teacher's page goes before their learners' on this server


# --------------------------------------------------------------------------- the store and its calls


@st.cache_resource(show_spinner=False)
def _store(url: str) -> RoomStore:
    """The process's rooms store on `url` (Streamlit's SQL connection), its schema migrated; never mutated."""
    conn = st.connection("class", type="sql", url=url, **engine_kwargs(url))
    store = RoomStore(conn.engine)
    store.migrate()  # RoomsUnavailable is not cached: the next run tries again
    logger.info("class rooms on %s", safe_url(url))
    return store


def _secrets() -> dict | None:
    """The app's secrets as a dict, or None when there are none."""
    try:
        return st.secrets.to_dict()
    except Exception:  # no secrets file: the default database
        return None


def store() -> RoomStore | None:
    """The rooms store, or None after saying why the class database cannot be used right now."""
    try:
        return _store(url_from(_secrets()))
    except RoomsUnavailable as exc:
        unavailable(exc)
    except Exception as exc:  # a malformed TOKENSCOPE_CLASS_DB (the message has no password)
        logger.warning("class rooms database not usable: %s", type(exc).__name__)
        st.error(f"**The class database is not set up right.** {exc}", icon="🗄️")
    return None


def unavailable(exc: Exception) -> None:
    """The database is down, in words: nothing typed is lost, the room goes on when it is back (a live
    fragment reruns the page then: back_again)."""
    st.session_state["cl_was_down"] = True
    st.error(f"**The class database cannot be reached right now.** {exc} The room goes on as soon as it is back; "
             "this page retries by itself (or press any button).", icon="🗄️")


def attempt(call, *args, **kwargs):
    """`call(*args, **kwargs)`, or FAILED after showing why it could not be done (never a traceback)."""
    try:
        return call(*args, **kwargs)
    except RoomsUnavailable as exc:
        unavailable(exc)
    except RateLimited as exc:
        st.warning(f"**Slow down.** {exc}", icon="⏳")
    except RoomsError as exc:
        st.warning(str(exc)[:1].upper() + str(exc)[1:] + ".", icon="🚪")
    except ValueError as exc:
        st.error(str(exc)[:1].upper() + str(exc)[1:], icon="✏️")
    return FAILED


def back_again() -> None:
    """In a live fragment that reached the database: rerun the whole page if it was down (its messages go)."""
    if st.session_state.pop("cl_was_down", False):
        st.rerun()


def pretty_code(code: str) -> str:
    """A room code as it is read out: K7Q2-MXP4."""
    return f"{code[:4]}-{code[4:]}"


def join_link(code: str) -> str:
    """The link a learner opens: this app's /class?room=CODE (nothing else in it)."""
    from dashboard import links

    return links.share_url(st.context.url, "class", ["class"], {ROOM_PARAM: code})


@functools.lru_cache(maxsize=64)  # the same link on every run of the teacher's page (8% of its time)
def qr_svg(link: str) -> str:
    """A QR code of `link` as SVG text, large enough to project."""
    import segno

    out = io.BytesIO()
    segno.make(link, error="m").save(out, kind="svg", scale=12, border=2, xmldecl=False)
    return out.getvalue().decode("ascii")


def literal(text: str) -> str:
    """Learner or teacher text made safe for Markdown (read exactly as typed)."""
    return markdown_literal(str(text))


def room_backend(model_key: str):
    """The back-end of the room's model (not necessarily the sidebar's), or None after saying why."""
    from dashboard import backends

    if model_key not in backends.model_keys():
        st.error(f"This room's model ({literal(model_key)}) is not offered here any more.", icon="🔌")
        return None
    with ui.engine_faults():
        return ui.get_backend(model_key)
    return None


# --------------------------------------------------------------------------- the teacher: start or resume


def teacher_room() -> dict | None:
    """The room this session teaches ({"code", "key"}), or None."""
    return st.session_state.get(_TEACHER)


def _take_next_text() -> None:
    """Button callback: the text box takes the Next token page's text so far."""
    st.session_state["cl_text"] = st.session_state.get(ui._TEXT) or ""


def start_section(store: RoomStore) -> None:
    """Start a room on the sidebar's model: a typed text, or a pasted passage and where the game starts in it."""
    from dashboard import backends

    st.subheader("Start a room")
    model_key = ui.current_model_key()
    st.caption(f"Model: **{literal(backends.facts(model_key).label)}**, the sidebar's (pick another there).")
    mode = st.radio("The text", [TYPED, PASSAGE], key="cl_mode", horizontal=True,
                    help="A passage: the class guesses its real next tokens, so every round has a true answer.")
    if "cl_text" not in st.session_state:
        st.session_state["cl_text"] = st.session_state.get(ui._TEXT) or ui.SEED_PROMPT
    if mode == TYPED:
        st.button("Use the Next token page's text so far", key="cl_use_next", on_click=_take_next_text,
                  disabled=not st.session_state.get(ui._TEXT))
        raw = st.text_area("Text so far (the class guesses what comes next)", key="cl_text", height=90)
    else:
        raw = st.text_area("Passage", key="cl_passage", height=140, placeholder="Paste a paragraph of real text")
    backend = room_backend(model_key)
    if backend is None:
        return
    chosen = _room_text(backend, raw, mode)
    if st.button("Start the room", key="cl_create", type="primary", disabled=chosen is None) and chosen:
        text, ids, passage = chosen
        made = attempt(store.create_room, model_key, text, ids, passage)
        if made is not FAILED:
            try:  # rooms past their 12 hours go, with everything in them
                store.expire()
            except RoomsError:
                logger.info("expired rooms not deleted this time (the database is busy)")
            st.session_state[_TEACHER] = {"code": made[0], "key": made[1]}
            st.session_state[_KEY_ONCE] = True
            st.rerun()


def _room_text(backend, raw: str, mode: str) -> tuple | None:
    """(text, ids, passage ids or None) a room would start from, or None after saying what is missing or wrong
    (the Start button then stays, disabled)."""
    if not raw.strip():
        st.caption("Type or paste the text the class starts from.")
        return None
    flat, changed = classgame.flatten_passage(raw)
    if changed and flat != raw.strip():
        st.caption("Line breaks and invisible characters become single spaces in a room.")
    try:
        text = clean_text(flat, "text", MAX_TEXT)
    except ValueError as exc:
        st.error(str(exc), icon="✏️")
        return None
    ids, passage = backend.tokenize(text), None
    if mode == PASSAGE:
        if len(ids) < 2:
            st.info("A passage needs at least two tokens.")
            return None
        start = st.slider("The game starts after token", 1, len(ids) - 1, min(8, len(ids) - 1), key="cl_start",
                          help="The class sees the passage up to here and guesses each next token in turn.")
        ids, passage = ids[:start], ids[start:]
        text = backend.detokenize(ids)
        st.markdown(f"**The class starts from:** {literal(text)}  \n{len(passage)} rounds with a true answer.")
    return text, ids, passage


def resume_section(store: RoomStore) -> None:
    """Come back to a room after a reload: its code and the teacher key shown when it was made."""
    with st.expander("Come back to a room you started"):
        code = st.text_input("Room code", key="cl_resume_code")
        key = st.text_input("Teacher key", key="cl_resume_key", type="password")
        if st.button("Open the room", key="cl_resume") and code and key:
            try:
                code = normalise_code(code)
            except RoomNotFound as exc:
                st.warning(str(exc), icon="🚪")
                return
            if attempt(store.teacher_state, code, key) is not FAILED:
                st.session_state[_TEACHER] = {"code": code, "key": key}
                st.rerun()


# --------------------------------------------------------------------------- the teacher: the room


def teacher_state(store: RoomStore, room: dict) -> tuple[dict | None, bool]:
    """(the room's state for its teacher, whether the database is down): the last state seen while it is down;
    None after saying why there is none (a room gone, or a key that does not match: back to the start)."""
    try:
        state = store.teacher_state(room["code"], room["key"])
    except RoomNotFound as exc:
        st.session_state.pop(_TEACHER, None)
        st.warning(f"{exc}; start a new one.", icon="🚪")
        return None, False
    except RoomsUnavailable as exc:
        unavailable(exc)
        last = st.session_state.get("cl_last_teacher")
        return (last if last and last["code"] == room["code"] else None), True
    except RoomsError as exc:  # NotTeacher: the key no longer matches this room
        st.session_state.pop(_TEACHER, None)
        st.warning(f"{exc}.", icon="🔑")
        return None, False
    st.session_state["cl_last_teacher"] = state
    return state, False


def join_section(room: dict) -> None:
    """The join link, the room code and a QR code of the link, large enough to project; the key once."""
    code, link = room["code"], join_link(room["code"])
    left, right = st.columns([3, 2])
    with left:
        st.markdown(f"## Room code: {pretty_code(code)}")
        st.markdown("**Join at** (phone or laptop):")
        st.code(link, language=None, wrap_lines=True)
        once = bool(st.session_state.get(_KEY_ONCE))
        if once:
            st.warning("**Save your teacher key now: it is shown once.** After a reload, paste it with the room "
                       "code under *Come back to a room* to go on; nobody else can reveal or go on without it.",
                       icon="🔑")
            with st.expander("Show the teacher key (not on the projector)"):
                st.code(room["key"], language=None, wrap_lines=True)
                if st.button("I have saved it", key="cl_key_saved"):
                    st.session_state[_KEY_ONCE] = False
                    st.rerun()
        if st.button("Leave this room", key="cl_leave", disabled=once,
                     help="Back to Start a room (the room stays; come back with its code and key). Save the key "
                          "first."):
            st.session_state.pop(_TEACHER, None)
            st.rerun()
    right.image(qr_svg(link), caption="Scan to join", width=330)


def drawn(room: dict) -> None:
    """The teacher's page is drawn: this room's learners on this server may follow a press (TeacherFirst)."""
    TEACHER_FIRST.drawn(room["code"])


def followed(read, seen: tuple) -> dict | None:
    """The room's public state from `read()` for a page's once-a-second fragment, which reruns the whole page
    when the (round, state) it was drawn for (`seen`) changed or the room went; None after saying the database
    is down."""
    try:
        state = read()
    except RoomsUnavailable as exc:
        unavailable(exc)
        return None
    except RoomsError:
        st.rerun()
    back_again()
    if (state["round"], state["state"]) != seen:
        st.rerun()
    return state


@st.fragment(run_every=1)
def live_count(store: RoomStore, code: str, seen: tuple) -> None:
    """How many have guessed (not what), every second; the whole page follows a change made elsewhere."""
    state = followed(lambda: store.public_state(code), seen)
    if state is None:
        return
    st.metric("Guesses so far", state["n_guesses"], help="Who guessed what stays hidden until you reveal.")
    st.vega_lite_chart(spec=classgame.count_spec(state["n_guesses"], state["n_learners"]), width="stretch",
                       theme=None)
