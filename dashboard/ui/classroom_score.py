"""The Class page's score for the teacher (Streamlit glue): the class's bits/token against the model's over the
rounds, each learner's hits, a chart of both, and the whole game as CSV and JSON. The numbers:
dashboard/classgame.py."""

from __future__ import annotations

import json

import streamlit as st

from dashboard import classgame, ui
from dashboard.rooms import RoomStore
from dashboard.classshare import probs_after, score_spec
from dashboard.ui.classroom import FAILED, attempt, room_backend


def score_section(store: RoomStore, room: dict, state: dict) -> None:
    """The class's bits/token against the model's over the rounds, each learner's hits, and the game's export."""
    rounds = attempt(store.rounds_detail, room["code"], room["key"])
    rows = attempt(store.export_rows, room["code"], room["key"])
    if rounds is FAILED or rows is FAILED or not any(r["state"] == "revealed" for r in rounds):
        return
    backend = room_backend(state["model_key"])
    if backend is None:
        return
    st.subheader("Score")
    names = {lr["id"]: lr["name"] for lr in state.get("learners", [])}
    with ui.engine_faults():
        result, per_round, hits = classgame.game_score(rounds, rows, lambda ids: probs_after(backend, ids),
                                                       backend.vocab_size, names)
        st.session_state["cl_score"] = (result, per_round, hits)
        c1, c2, c3 = st.columns(3)
        c1.metric("Class, bits/token", classgame.bits_text(result.class_bits))
        c2.metric("Model, bits/token", classgame.bits_text(result.model_bits))
        c3.metric("Rounds scored", result.n_scored)
        st.caption("Bits/token: the surprise on the true token (the passage's, else the one Next appended), "
                   "averaged; lower is better. The class's probability is its share of guesses, smoothed.")
        if not per_round.empty:
            st.vega_lite_chart(spec=score_spec(per_round), width="stretch", theme=None)
            ui.chart_downloads(lambda: classgame.score_chart(per_round), f"class-{room['code']}-score",
                               key="cl_score_chart")
        if not hits.empty:
            ui.text_table(hits)
        export = classgame.export_frame(rows, rounds, names)
        records = {"room": room["code"], "model": state["model_key"], "rounds": rounds,
                   "guesses": json.loads(export.to_json(orient="records", force_ascii=False)),
                   "score": json.loads(per_round.to_json(orient="records"))}
        ui.download_buttons(export, f"class-{room['code']}", key="cl_export", records=records)


def end_section(store: RoomStore, room: dict, state: dict) -> None:
    """End the game (no more joins, guesses or rounds; the score and export stay), or delete the room and all
    its names and guesses."""
    with st.expander("End the room", key="cl_end_open"):  # a key: it stays open when ending redraws it
        if not state["closed"]:
            st.caption("Ending stops joins, guesses and new rounds; the score and the downloads stay.")
            if st.button("End the game", key="cl_close"):
                if attempt(store.close, room["code"], room["key"]) is not FAILED:
                    st.rerun()
        else:
            st.info("This room is ended: learners see that it is over.", icon="🚪")
        st.caption("Deleting removes the room with every name and guess in it, now (rooms also go 12 hours after "
                   "they were made).")
        sure = st.checkbox("Yes, delete this room and everything in it", key="cl_delete_sure")
        if st.button("Delete the room", key="cl_delete", disabled=not sure):
            if attempt(store.delete, room["code"], room["key"]) is not FAILED:
                st.session_state.pop("cl_room", None)
                st.rerun()
