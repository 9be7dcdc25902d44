"""The next-token instrument on the page: its data once per token path, its spec kept byte-identical while the
controls move (so the browser keeps its inputs and redraws alone), and the values it reports after a move settles
written where the rest of the page, the link and the other pages read them."""

from __future__ import annotations

import functools

import streamlit as st

from dashboard import instrument, ui
from dashboard.ui import layout
from dashboard.settings import CONTROLS, Settings, coerce

STATE = "nt_inst"  # {"for": what the spec depends on, "gen": its widget generation, "anchor", "current"}
CSS = """
[class*="st-key-nt_inst_"] .vega-embed { display: flex; flex-direction: column-reverse; width: 100%; }
[class*="st-key-nt_inst_"] .vega-bindings {
  display: grid !important; grid-template-columns: repeat(auto-fill, minmax(260px, 1fr)); gap: 2px 28px;
  margin: 0 0 10px;
  width: 100%; box-sizing: border-box;
}
[class*="st-key-nt_inst_"] .vega-bind label {
  display: grid !important; grid-template-columns: 8.6em minmax(0, 1fr) 2.8em; align-items: center; gap: 8px;
  margin: 0; width: 100%;
}
[class*="st-key-nt_inst_"] .vega-bind-name { font-size: 0.92rem; white-space: nowrap; }
[class*="st-key-nt_inst_"] .vega-bind input[type="range"] { width: 100% !important; min-width: 0; margin: 0;
  accent-color: #4f46e5; }
[class*="st-key-nt_inst_"] .vega-bind input[type="range"] + span { text-align: right; font-variant-numeric: tabular-nums; }
"""


def current() -> dict:
    """The browser controls' values this session (a link seeds them; the instrument moves them), by name."""
    return {name: st.session_state.get(name, CONTROLS[name].default) for name in instrument.CONTROLLED}


def keep_in_link(values: dict) -> None:
    """The controls' values in the URL and the share link, as a bound slider would keep them."""
    for name, value in values.items():
        ui.bound(name, CONTROLS[name].default)
        ui.in_url(name, value, CONTROLS[name].default)


def values_from_selection(selection) -> dict:
    """{control: value} the browser reported (untrusted: anything not a control's [{"v": number}] is ignored, a
    number is parsed and clamped into the control's bounds)."""
    values = {}
    if not isinstance(selection, dict):
        return values
    for name in instrument.CONTROLLED:
        points = selection.get(name)
        if isinstance(points, list) and points and isinstance(points[0], dict) and "v" in points[0]:
            value, _ = coerce(name, points[0]["v"])
            values[name] = value
    return values


def picked_id(selection, vocab: int, step: int) -> int | None:
    """The token id of a bar clicked at position number `step` (a new number for every position the chart has
    shown), or None. The browser's report is not trusted: ids outside the vocabulary, non-numbers, bools, fractions
    and a click from an earlier position (the chart keeps its last click while the controls move) are ignored."""
    points = selection.get("pick") if isinstance(selection, dict) else None
    if not (isinstance(points, list) and points and isinstance(points[0], dict)):
        return None
    raw, at = points[0].get("id"), points[0].get("step")
    for value in (raw, at):
        if isinstance(value, bool) or not isinstance(value, (int, float)) or value != int(value):
            return None
    return int(raw) if 0 <= raw < vocab and int(at) == step else None


def _moved(key: str, vocab: int, step: int, on_pick) -> None:
    """on_select: values the browser reports after a move settles, or a clicked bar."""
    selection = (st.session_state.get(key) or {}).get("selection") or {}
    state = st.session_state.get(STATE) or {}
    for name, value in values_from_selection(selection).items():
        st.session_state[name] = value
        state.setdefault("current", {})[name] = value  # the chart shows it already: no new spec
    token_id = picked_id(selection, vocab, step)
    if token_id is not None:
        on_pick(token_id)


def show(path, tok, seed: int, view: str, log_scale: bool, shown: int, on_pick) -> Settings:
    """Draw the instrument for `path` and return the settings it holds now (strategy sample, `seed`)."""
    from dashboard.charts import unique_labels
    from dashboard.sampling import draw_u

    layout.style(CSS)
    values = current()
    keep_in_link(values)
    data_for = (id(path), tuple(path.ids))
    cached = st.session_state.get("nt_inst_payload")
    if cached is None or cached[0] != data_for:
        data = instrument.payload(path.logits, path.ids, lambda ids: unique_labels([tok.decode([i]) for i in ids], ids))
        # every new position gets a new number (an undo too), so a click on the same bar as before is a new click
        version = st.session_state.get("nt_inst_version", 0) + 1
        st.session_state["nt_inst_version"] = version
        st.session_state["nt_inst_payload"] = cached = (data_for, data, {})
    data, frames, version = cached[1], cached[2], st.session_state["nt_inst_version"]
    u = draw_u(seed, len(path.steps))
    if u not in frames:
        frames.clear()
        frames[u] = instrument.frame(data, u, version)
    spec_for = (view, log_scale, shown)  # the spec depends on these and the starting values only, never the path
    state = st.session_state.get(STATE)
    if state is None or state["for"] != spec_for or state["current"] != values:
        gen = (state or {}).get("gen", 0) + 1  # a new chart: its inputs start at the values held now
        anchor = Settings(strategy="sample", **values)
        state = {"for": spec_for, "gen": gen, "anchor": anchor, "current": dict(values),
                 "spec": instrument.spec(anchor, view, log_scale, shown)}
        st.session_state[STATE] = state
    key = f"nt_inst_{state['gen']}"
    st.vega_lite_chart(frames[u], spec=state["spec"], width="stretch", theme=None, key=key,
                       on_select=functools.partial(_moved, key, int(path.logits.shape[-1]), version, on_pick),
                       selection_mode=[*instrument.CONTROLLED, "pick"])
    return Settings(strategy="sample", seed=seed, **current())


def controls_help() -> None:
    """What each control does (the inputs in the chart carry only their labels)."""
    with st.expander("What the sampling controls do"):
        st.markdown("\n".join(f"- **{CONTROLS[n].label}**: {CONTROLS[n].caption} {CONTROLS[n].help}"
                              for n in instrument.CONTROLLED))
        st.caption("They act in generate's order: repetition penalty, temperature, top-k, top-p, min-p. The chart "
                   "follows every move at once; the table, Sample and the link follow when you let go.")
