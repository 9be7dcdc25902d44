"""The instruments on the pages (Next token's, Compare's, the Inside cell's): their data once per distribution,
their specs kept byte-identical while the controls move (so the browser keeps its inputs and redraws alone), and
the values they report after a move (through the bridge) or a click (through on_select) written where the rest of
the page, the link and the other pages read them."""

from __future__ import annotations

import functools

import streamlit as st

from dashboard import instrument, instrument_charts, ui
from dashboard.payload import payload
from dashboard.ui import layout
from dashboard.settings import CONTROLS, Settings, coerce

PREFIXES = ("nt", "cmp", "in")  # Next token, Compare, Inside: each page's instrument keys start "<prefix>_inst";
# its chart and bridge sit in the container "<prefix>_instbox" (a keyed container carries its key as a CSS class)
CSS = """
.st-key-PFX_instbox .vega-embed { display: flex; flex-direction: column-reverse; width: 100%; }
.st-key-PFX_instbox .vega-bindings {
  display: grid !important; grid-template-columns: repeat(auto-fill, minmax(260px, 1fr)); gap: 2px 28px;
  margin: 0 0 10px;
  width: 100%; box-sizing: border-box;
}
.st-key-PFX_instbox .vega-bind label {
  display: grid !important; grid-template-columns: 8.6em minmax(0, 1fr) 2.8em; align-items: center; gap: 8px;
  margin: 0; width: 100%;
}
.st-key-PFX_instbox .vega-bind-name { font-size: 0.92rem; white-space: nowrap; }
.st-key-PFX_instbox .vega-bind input[type="range"] { width: 100% !important; min-width: 0; margin: 0;
  accent-color: #4f46e5; }
.st-key-PFX_instbox .vega-bind input[type="range"] + span { text-align: right; font-variant-numeric: tabular-nums; }
"""
INSIDE_CONTROLS = ("temperature", "top_k", "top_p", "min_p")  # a layer's guess, Compare's columns: no penalty
REPORT_MS = 60  # the bridge reports a move this long after its last change (a held arrow key repeats every ~33 ms)
# The bridge: Streamlit reports a selection bound to an input 150 ms after its last change. This tiny component
# (trusted code of ours, no HTML) listens for the instrument's inputs' `change` events instead (a release, a key
# press) and reports their values REPORT_MS later, so the page follows a move sooner. Values it reports are parsed
# like any link value (values_from_bridge).
BRIDGE_JS = """
export default function (component) {
  const { data, setStateValue } = component;
  const inside = (el) => el instanceof HTMLInputElement && el.closest('.vega-bindings') &&
    el.closest('.st-key-' + data.prefix + '_instbox');
  let timer = null;
  const report = (box) => {
    const values = {};
    for (const name of data.controls) {
      const input = box.querySelector('input[name="' + name + '_v"]');
      if (input) values[name] = Number(input.value);
    }
    setStateValue('values', values);
  };
  const changed = (event) => {
    const box = inside(event.target) && event.target.closest('.vega-bindings');
    if (!box) return;
    clearTimeout(timer);
    timer = setTimeout(() => report(box), data.delay);
  };
  document.addEventListener('change', changed, true);
  return () => { document.removeEventListener('change', changed, true); clearTimeout(timer); };
}
"""


_BRIDGE = st.components.v2.component("tokenscope_instrument_bridge", js=BRIDGE_JS, isolate_styles=False)


def current(controls=instrument.CONTROLLED) -> dict:
    """The browser controls' values this session (a link seeds them; an instrument moves them), by name: every
    page's instrument holds the same values."""
    return {name: st.session_state.get(name, CONTROLS[name].default) for name in controls}


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


def values_from_bridge(values, controls=instrument.CONTROLLED) -> dict:
    """{control: value} the bridge reported (untrusted: anything not a number for one of `controls` is ignored, a
    number is parsed and clamped into the control's bounds)."""
    if not isinstance(values, dict):
        return {}
    return {name: coerce(name, values[name])[0] for name in controls
            if name in values and isinstance(values[name], (int, float)) and not isinstance(values[name], bool)}


def _hold(prefix: str, values: dict) -> None:
    """The values a move settled on, held for the page and the link (the chart shows them already: no new spec)."""
    state = st.session_state.get(f"{prefix}_inst") or {}
    for name, value in values.items():
        st.session_state[name] = value
        state.setdefault("current", {})[name] = value


def _reported(prefix: str, key: str, controls) -> None:
    """on_values_change: the bridge's report of a move."""
    _hold(prefix, values_from_bridge((st.session_state.get(key) or {}).get("values"), controls))


def _moved(prefix: str, key: str, vocab: int, step: int, on_pick) -> None:
    """on_select: a clicked bar (and any control values the chart reports with it)."""
    selection = (st.session_state.get(key) or {}).get("selection") or {}
    _hold(prefix, values_from_selection(selection))
    token_id = picked_id(selection, vocab, step) if on_pick else None
    if token_id is not None:
        on_pick(token_id)


def _version(prefix: str, data_for, build):
    """(data_for, data, {}, number) for what `data_for` names: built once, with a new number for every new one (an
    undo too), so a click on the same bar as before is a new click."""
    cached = st.session_state.get(f"{prefix}_inst_payload")
    if cached is None or cached[0] != data_for:
        version = st.session_state.get(f"{prefix}_inst_version", 0) + 1
        st.session_state[f"{prefix}_inst_version"] = version
        st.session_state[f"{prefix}_inst_payload"] = cached = (data_for, build(), {}, version)
    return cached


def _draw(prefix: str, data, spec_for, build_spec, controls, vocab: int = 0, step: int = 0, on_pick=None) -> None:
    """The chart: its spec rebuilt only when `spec_for` or the values held change elsewhere (a new chart, whose
    inputs start at the values held now); otherwise byte-identical, with `data` swapped in place."""
    layout.style(CSS.replace("PFX", prefix))
    values = current(controls)
    keep_in_link(values)
    state = st.session_state.get(f"{prefix}_inst")
    if state is None or state["for"] != spec_for or state["current"] != values:
        gen = (state or {}).get("gen", 0) + 1
        anchor = Settings(strategy="sample", **values)
        state = {"for": spec_for, "gen": gen, "anchor": anchor, "current": dict(values), "spec": build_spec(anchor)}
        st.session_state[f"{prefix}_inst"] = state
    key = f"{prefix}_inst_{state['gen']}"
    with st.container(key=f"{prefix}_instbox", gap=None):
        if on_pick:  # a click reports at once
            st.vega_lite_chart(data, spec=state["spec"], width="stretch", theme=None, key=key,
                               on_select=functools.partial(_moved, prefix, key, vocab, step, on_pick),
                               selection_mode=["pick"])
        else:
            st.vega_lite_chart(data, spec=state["spec"], width="stretch", theme=None, key=key)
        if controls:  # the moves report through the bridge
            bridge = f"{prefix}_bridge"
            _BRIDGE(key=bridge, data={"prefix": prefix, "controls": list(controls), "delay": REPORT_MS},
                    on_values_change=functools.partial(_reported, prefix, bridge, tuple(controls)), height=0)


def show(path, tok, seed: int, view: str, log_scale: bool, shown: int, on_pick) -> Settings:
    """Draw Next token's instrument for `path` and return the settings it holds now (strategy sample, `seed`)."""
    from dashboard.charts import unique_labels
    from dashboard.sampling import draw_u

    data_for = (id(path), tuple(path.ids))
    _, data, frames, version = _version("nt", data_for, lambda: payload(
        path.logits, path.ids, lambda ids: unique_labels([tok.decode([i]) for i in ids], ids)))
    u = draw_u(seed, len(path.steps))
    if u not in frames:
        frames.clear()
        frames[u] = instrument.frame(data, u, version)
    _draw("nt", frames[u], (view, log_scale, shown), lambda a: instrument_charts.spec(a, view, log_scale, shown),
          instrument.CONTROLLED, int(path.logits.shape[-1]), version, on_pick)
    return Settings(strategy="sample", seed=seed, **current())


def show_logits(prefix: str, data_for, logits, tok, shown: int = 12, controls=INSIDE_CONTROLS) -> Settings:
    """Draw an instrument for one distribution's raw `logits` (no text to penalise, no draw) and return the
    settings it holds now; `data_for` names the logits (the data is built once for it)."""
    from dashboard.charts import unique_labels

    _, data, frames, _ = _version(prefix, data_for, lambda: payload(
        logits, [], lambda ids: unique_labels([tok.decode([i]) for i in ids], ids), top=max(shown, 50)))
    if not frames:
        frames[0] = instrument.frame(data)
    _draw(prefix, frames[0], ("logits", shown), lambda a: instrument_charts.spec(a, shown=shown, controls=controls,
                                                                           draw=False), controls)
    return Settings(strategy="sample", **current(controls))


def show_compare(data_for, build, names: list[str], processed: bool) -> Settings:
    """Draw Compare's instrument: `build()` gives its data and the number of tokens on its shared axis
    (compare.instrument_frame) for what `data_for` names; with `processed` the controls act on every column. The
    settings held now."""
    _, (data, rows), _, _ = _version("cmp", data_for, build)
    controls = INSIDE_CONTROLS if processed else ()
    own = bool(data["ot"].notna().any() or data["op"].notna().any())  # a column with its own settings
    _draw("cmp", data, (tuple(names), rows, processed, own),
          lambda a: instrument_charts.compare_spec(a, names, rows, processed, own), controls)
    return Settings(strategy="sample", **current(INSIDE_CONTROLS))


def controls_help() -> None:
    """What each control does (the inputs in the chart carry only their labels)."""
    with st.expander("What the sampling controls do"):
        st.markdown("\n".join(f"- **{CONTROLS[n].label}**: {CONTROLS[n].caption} {CONTROLS[n].help}"
                              for n in instrument.CONTROLLED))
        st.caption("They act in generate's order: repetition penalty, temperature, top-k, top-p, min-p. The chart "
                   "follows every move at once; the table, Sample and the link follow when you let go.")
