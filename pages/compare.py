"""Compare: next-token distributions of 2–4 prompts (or models) side by side, with divergences."""

import altair as alt
import pandas as pd
import streamlit as st

from dashboard import ui

ui.page_guard()

from dashboard import models  # noqa: E402
from dashboard.compare import batched_next_logits, js_bits, kl_bits, reading, top_overlap  # noqa: E402
from dashboard.links import MAX_COLUMNS, MIN_COLUMNS  # noqa: E402
from dashboard.sampling import CONTROLS, Settings, coerce, distribution  # noqa: E402
from dashboard.tokens import encode, fit_context, visible  # noqa: E402

DEFAULT_PROMPTS = [
    ui.SEED_PROMPT,
    "Udacity is the worst place to learn about generative",
    "My grandmother taught me everything about generative",
    "The conference keynote was all about generative",
]
SIDEBAR = "(sidebar model)"
OWN_OFF = "-"  # a column without its own settings, in ?ctemp= / ?ctop_p=

st.title("⚖️ Compare")
st.caption("Each column is a prompt; the charts share one token axis so the same token lines up across columns.")

# Columns come from the link (?prompt=…&prompt=…&cmodel=…&ctemp=…&ctop_p=…) once, then from the widgets.
link_prompts = st.session_state.pop("_ts_link_prompts", None)
if link_prompts:
    st.session_state["cmp_n"] = max(MIN_COLUMNS, min(MAX_COLUMNS, len(link_prompts)))
    for i, p in enumerate(link_prompts[:MAX_COLUMNS]):
        st.session_state[f"cmp_prompt_{i}"] = p
    registry = models.registry()
    for i, m in enumerate(st.query_params.get_all("cmodel")[:MAX_COLUMNS]):
        st.session_state[f"cmp_model_{i}"] = m if m in registry else SIDEBAR
    for param, control in (("ctemp", "temperature"), ("ctop_p", "top_p")):
        for i, raw in enumerate(st.query_params.get_all(param)[:MAX_COLUMNS]):
            if raw == OWN_OFF:
                continue
            value, notice = coerce(control, raw)  # untrusted: clamped or defaulted, with a notice
            if notice:
                ui.add_notice(f"Column {i + 1}: {notice}")
            st.session_state[f"cmp_own_{i}"] = True
            st.session_state[f"cmp_{control}_{i}"] = value
n = st.session_state.setdefault("cmp_n", MIN_COLUMNS)



def change_columns(delta: int) -> None:
    """Button callback: add or remove a column (runs before the page is drawn, so the buttons stay right)."""
    st.session_state["cmp_n"] = max(MIN_COLUMNS, min(MAX_COLUMNS, st.session_state["cmp_n"] + delta))


a, b, _ = st.columns([1, 1, 4])
a.button("Add a column", key="cmp_add", disabled=n >= MAX_COLUMNS, on_click=change_columns, args=(1,))
b.button("Remove last", key="cmp_remove", disabled=n <= MIN_COLUMNS, on_click=change_columns, args=(-1,))

with st.expander("Sampling controls (all columns)", expanded=False):
    values = ui.decoding_controls(["temperature", "top_k", "top_p", "min_p"], captions=False)
settings = Settings(strategy="sample", **values)
o1, o2 = st.columns([2, 1])
processed = o1.toggle("Compare the processed distributions (after the controls)", key="cmp_processed")
k = o2.slider("Top tokens per column", 3, 20, 8, key="cmp_k")

sidebar_model = ui.current_model_key()
cols = st.columns(n)
column_settings: dict[int, Settings] = {}  # columns with their own temperature / top-p
entries = []  # (column index, model key, prompt ids)
for i, col in enumerate(cols):
    with col:
        raw = st.text_area(f"Prompt {i + 1}", value=DEFAULT_PROMPTS[i], key=f"cmp_prompt_{i}", height=110)
        choice = st.selectbox("Model", [SIDEBAR, *models.registry()], key=f"cmp_model_{i}")
        with st.expander("Own settings"):
            own = st.toggle("Use its own temperature and top-p", key=f"cmp_own_{i}",
                            help="Compare settings instead of prompts: e.g. the same prompt at two temperatures.")
            t = CONTROLS["temperature"]
            p = CONTROLS["top_p"]
            col_temp = st.slider(t.label, t.low, t.high, t.default, t.step, key=f"cmp_temperature_{i}", disabled=not own)
            col_top_p = st.slider(p.label, p.low, p.high, p.default, p.step, key=f"cmp_top_p_{i}", disabled=not own)
        if own:
            column_settings[i] = Settings(**{**settings.as_dict(), "temperature": col_temp, "top_p": col_top_p})
        text = ui.checked_prompt(raw)
        if text is None:
            continue
        key = sidebar_model if choice == SIDEBAR else choice
        entries.append((i, key, text))

# Keep the URL in step with the columns (repeated keys, one per column).
st.query_params["prompt"] = [st.session_state[f"cmp_prompt_{i}"] for i in range(n)]
chosen_models = [st.session_state[f"cmp_model_{i}"] for i in range(n)]
if any(m != SIDEBAR for m in chosen_models):
    st.query_params["cmodel"] = chosen_models
elif "cmodel" in st.query_params:
    del st.query_params["cmodel"]
own_columns = [bool(st.session_state.get(f"cmp_own_{i}")) for i in range(n)]
for param, control in (("ctemp", "temperature"), ("ctop_p", "top_p")):
    if any(own_columns):  # one value per column, "-" where the column follows the shared controls
        st.query_params[param] = [str(st.session_state[f"cmp_{control}_{i}"]) if own else OWN_OFF
                                  for i, own in enumerate(own_columns)]
    elif param in st.query_params:
        del st.query_params[param]

# One padded batch forward per model; kept per session so moving a slider runs no model.
results = {}  # column index -> (model key, tokenizer, logits)
by_model: dict[str, list] = {}
for i, key, text in entries:
    by_model.setdefault(key, []).append((i, text))
for key, items in by_model.items():
    loaded = ui.get_model(key)
    if loaded is None:
        continue
    ids = []
    for i, text in items:
        kept, cut = fit_context(encode(loaded.tokenizer, text), loaded.context_length, 1, loaded.spec.label)
        ui.context_notice(cut and f"Prompt {i + 1}: {cut}")
        ids.append(tuple(kept))
    memo = st.session_state.setdefault("cmp_memo", {})
    if memo.get(key, (None,))[0] != ids:
        pad = loaded.tokenizer.pad_token_id or 0
        memo[key] = (ids, batched_next_logits(loaded.model, [list(x) for x in ids], pad_id=pad))
    for row, (i, _) in enumerate(items):
        results[i] = (key, loaded.tokenizer, memo[key][1][row], list(ids[row]))



def show_comparison():
    """The shared chart, divergences and readings for the columns that have a distribution."""
    if not results:
        return

    names = {i: f"Prompt {i + 1}" for i in results}
    dists = {}
    for i, (key, tok, logits, ids) in sorted(results.items()):
        d = distribution(logits, column_settings.get(i, settings), prev_ids=None)
        dists[i] = d.after if (processed or column_settings) else d.probs  # own settings act on the processed view

    # The shared token axis: the union of every column's top tokens, matched by their text.
    rows = []
    union: dict[str, str] = {}  # visible label -> token text
    for i, (key, tok, _, _) in sorted(results.items()):
        for t in dists[i].topk(k).indices.tolist():
            union.setdefault(visible(tok.decode([t])), tok.decode([t]))
    for i, (key, tok, _, _) in sorted(results.items()):
        probs = dists[i]
        for label, text in union.items():
            q = encode(tok, text)  # the same text in this column's vocabulary: one token, or not comparable
            p = float(probs[q[0]]) if len(q) == 1 and tok.decode(q) == text else 0.0
            rows.append({"token": label, "column": names[i], "probability": p})
    frame = pd.DataFrame(rows)
    order = frame.groupby("token")["probability"].max().sort_values(ascending=False).index.tolist()
    chart = alt.Chart(frame).mark_bar().encode(
        y=alt.Y("token:N", sort=order, title=None),
        yOffset=alt.YOffset("column:N"),
        x=alt.X("probability:Q", axis=alt.Axis(format="%")),
        color=alt.Color("column:N", legend=alt.Legend(title=None, orient="top")),
        tooltip=["column", "token", alt.Tooltip("probability:Q", format=".4f")],
    ).properties(height=alt.Step(10))
    st.altair_chart(chart, width="stretch")

    # Divergences between every pair of columns on the same model (different vocabularies cannot be compared).
    pairs = []
    sentences = []
    items = sorted(results.items())
    for x in range(len(items)):
        for y in range(x + 1, len(items)):
            (i, (ki, tok, _, _)), (j, (kj, _, _, _)) = items[x], items[y]
            if ki != kj:
                pairs.append({"pair": f"{names[i]} → {names[j]}", "KL (bits)": None, "JS (bits)": None,
                              "same top token": None, f"top-{k} overlap": None, "note": "different models"})
                continue
            p, q = dists[i], dists[j]
            pairs.append({
                "pair": f"{names[i]} → {names[j]}",
                "KL (bits)": kl_bits(p, q), "JS (bits)": js_bits(p, q),
                "same top token": bool(p.argmax() == q.argmax()), f"top-{k} overlap": top_overlap(p, q, k), "note": "",
            })
            if x == 0:
                sentences.append(reading(f"Compared with {names[i]}, {names[j]}", p, q, lambda t, tok=tok: tok.decode([t])))
    if pairs:
        st.dataframe(pd.DataFrame(pairs), hide_index=True, width="stretch",
                     column_config={"KL (bits)": st.column_config.NumberColumn(format="%.3f"),
                                    "JS (bits)": st.column_config.NumberColumn(format="%.3f"),
                                    f"top-{k} overlap": st.column_config.NumberColumn(format="%.2f")})
    for sentence in sentences:
        st.write(sentence)


show_comparison()
