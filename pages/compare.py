"""Compare: next-token distributions of 2–4 prompts (or models, or settings) side by side, with divergences."""

import streamlit as st

from dashboard import ui

ui.page_guard()

from dashboard.ui import views  # noqa: E402
from dashboard.charts import compare_chart  # noqa: E402
from dashboard.compare import divergence_row, instrument_frame, reading, shared_axis_frame  # noqa: E402
from dashboard.links import MAX_COLUMNS, MIN_COLUMNS  # noqa: E402
from dashboard.sampling import Settings, distribution  # noqa: E402
from dashboard.ui import instrument as ui_instrument  # noqa: E402

DEFAULT_PROMPTS = [
    ui.SEED_PROMPT,
    "Udacity is the worst place to learn about generative",
    "My grandmother taught me everything about generative",
    "The conference keynote was all about generative",
]

st.title("⚖️ Compare")
st.caption("Each column is a prompt; the charts share one token axis so the same token lines up across columns.")
views.seed_columns_from_link(MAX_COLUMNS, MIN_COLUMNS)  # once per link, then the widgets rule
st.session_state.setdefault("cmp_n", MIN_COLUMNS)


def change_columns(delta: int) -> None:
    """Button callback: add or remove a column (runs before the page is drawn, so the buttons stay right)."""
    st.session_state["cmp_n"] = max(MIN_COLUMNS, min(MAX_COLUMNS, st.session_state["cmp_n"] + delta))


def distributions(results: dict, shared: Settings, own: dict, processed: bool) -> dict:
    """{column: probabilities}: raw, or after the controls (a column's own settings act on the processed view)."""
    out = {}
    for i, (_, _, logits, _) in sorted(results.items()):
        d = distribution(logits, own.get(i) or shared, prev_ids=None)  # an engine's: shares of its top N
        out[i] = d.after if (processed or any(own.values())) else d.probs
    return out


def divergences(results: dict, dists: dict, k: int) -> None:
    """Every pair of columns: KL and JS in bits, top-1 agreement, top-k overlap, a reading; then sentences."""
    names = {i: f"Prompt {i + 1}" for i in results}
    items = sorted(results)
    rows, sentences = [], []
    for x, i in enumerate(items):
        for j in items[x + 1:]:
            same = results[i][0] == results[j][0]  # different models have different vocabularies
            rows.append(divergence_row(f"{names[i]} → {names[j]}", dists[i] if same else None, dists[j], k))
            if x == 0 and same:
                tok = results[i][1]
                sentences.append(reading(f"Compared with {names[i]}, {names[j]}", dists[i], dists[j],
                                         lambda t, tok=tok: tok.decode([t])))
    if rows:
        ui.text_table(rows)
        st.caption("KL and JS measure in bits how far apart two distributions are (JS: 0 identical, 1 nothing in "
                   "common); the overlap counts the top tokens both columns share.")
    for sentence in sentences:
        st.write(sentence)


@st.fragment
def compare() -> None:
    """Columns, shared controls, the chart and divergences; reruns alone when a control moves."""
    with ui.engine_faults():
        compare_sections()


def compare_sections() -> None:
    """The fragment's sections (an engine's failure inside them becomes a message)."""
    n = st.session_state["cmp_n"]
    a = b = st.container(horizontal=True)  # one row, on a phone too
    a.button("Add a column", key="cmp_add", disabled=n >= MAX_COLUMNS, on_click=change_columns, args=(1,))
    b.button("Remove last", key="cmp_remove", disabled=n <= MIN_COLUMNS, on_click=change_columns, args=(-1,))
    o1, o2 = st.columns([2, 1])
    processed = o1.toggle("After the controls", key="cmp_processed",
                          help="Compare the processed distributions (after the sampling controls) instead of the raw ones",
                          bind="query-params")
    k = o2.slider("Top tokens per column", 3, 20, 8, key="cmp_k", bind="query-params")
    ui.bound("cmp_processed", False)
    ui.bound("cmp_k", 8)
    shared = Settings(strategy="sample", **ui_instrument.current(ui_instrument.INSIDE_CONTROLS))  # held now
    entries, own = [], {}
    for i, col in enumerate(st.columns(n)):
        with col:
            key, text, settings = views.column_inputs(i, DEFAULT_PROMPTS[i], shared, ui.current_model_key())
        own[i] = settings
        if text is not None:
            entries.append((i, key, text))
    views.columns_to_link(n)
    results = views.column_logits(entries)
    if not results:
        return
    engines_used = sorted({results[i][0] for i in results if results[i][3]})
    if engines_used:
        st.caption(f"Columns on an engine ({', '.join(engines_used)}) compare its top tokens only, renormalised.")
    shared = chart(results, own, k, processed or any(own.values()))
    dists = distributions(results, shared, own, processed)
    ui.chart_downloads(lambda: compare_chart(shared_axis_frame(
        [(f"Prompt {i + 1}", results[i][1], dists[i]) for i in sorted(dists)], k)), "compare", key="cmp_chart")
    divergences(results, dists, k)


def chart(results: dict, own: dict, k: int, processed: bool) -> Settings:
    """The columns' distributions on one token axis, redrawn in the browser as the controls move; the shared
    settings held now (the divergences below follow when a move settles)."""
    names = [f"Prompt {i + 1}" for i in sorted(results)]
    columns = [(f"Prompt {i + 1}", results[i][1], results[i][2], own.get(i)) for i in sorted(results)]
    data_for = (tuple((name, views.fingerprint(logits), own and (own.temperature, own.top_p))
                      for name, _, logits, own in columns), k)
    settings = ui_instrument.show_compare(data_for, lambda: instrument_frame(columns, k), names, processed)
    if processed:
        st.caption("Move a control: every column follows at once (a column's own temperature and top-p win); the "
                   "divergences below follow when you let go.")
    else:
        st.caption("Raw distributions: turn on **After the controls** to reshape every column with the sampling "
                   "controls.")
    return settings


compare()
