"""Tokenize: how the picked model's tokenizer splits a text."""

import streamlit as st

from dashboard import ui

ui.page_guard()

import pandas as pd  # noqa: E402
from dashboard import backends  # noqa: E402
from dashboard.charts import chips_html
from dashboard.tokens import token_rows

st.title("🧩 Tokenize")
st.caption("A tokenizer turns text into a list of numbers (token ids). Tokens are often pieces of words: *subwords*.")

model_key = ui.current_model_key()
prompt = ui.prompt_box(ui.SEED_PROMPT, label="Text to tokenize")
tokenizer = ui.get_tokenizer(model_key)
model = backends.facts(model_key)
if model.on_engine:
    st.caption(f"🛰️ These are the engine's own tokens: {model_key} tokenizes on its server (`/tokenize`).")

other_key = st.selectbox(
    "Compare with another tokenizer", ["(none)"] + [k for k in backends.model_keys() if k != model_key],
    key="tok_compare", bind="query-params", help="Shows how a second model's tokenizer splits the same text.",
)
ui.bound("tok_compare", "(none)")

if prompt is not None and tokenizer is not None and other_key != "(none)":
    other = ui.get_tokenizer(other_key)
    if other is not None:
        left, right = st.columns(2)
        for col, key, tk in ((left, model_key, tokenizer), (right, other_key, other)):
            rows_k = token_rows(tk, prompt)
            col.metric(f"{key}: tokens", f"{len(rows_k):,}", help=f"{len(prompt) / max(len(rows_k), 1):.2f} characters per token")
            with col:
                st.html(chips_html(rows_k))

if prompt is not None and tokenizer is not None:
    rows = token_rows(tokenizer, prompt)
    context = model.context_length
    if context is not None and len(rows) > context:
        ui.context_notice(f"This text has {len(rows):,} tokens; {model.label} reads at most "
                          f"{context:,}, so the other pages use its last {context - 1:,} (with room for the next token).")
    c1, c2, c3 = st.columns(3)
    c1.metric("Characters", f"{len(prompt):,}")
    c2.metric("Tokens", f"{len(rows):,}")
    c3.metric("Characters per token", f"{len(prompt) / max(len(rows), 1):.2f}")

    st.markdown("**Tokens over the text** (hover a chip for its id; ␣ is a space, ↵ a new line)")
    st.html(chips_html(rows))

    table = pd.DataFrame(
        {
            "index": [r.index for r in rows],
            "id": [r.id for r in rows],
            "token": [r.visible for r in rows],
            "bytes": [r.bytes for r in rows],
            "start": [r.start for r in rows],
            "end": [r.end for r in rows],
        }
    )
    st.dataframe(
        table,
        hide_index=True,
        width="stretch",
        height="content" if len(table) <= 40 else 600,  # every row of a short text shows; a long one scrolls
        column_config={
            # widths that add up to a phone's 356 px (a long token's bytes end in … there: the CSV has them all)
            "index": st.column_config.NumberColumn("index", width=42),
            "id": st.column_config.NumberColumn("id", width=54),
            "token": st.column_config.TextColumn("token", width=84, help="The token's text; ␣ marks a space"),
            "bytes": st.column_config.TextColumn("bytes (hex)", width=96, help="UTF-8 bytes the token stands for"),
            "start": st.column_config.NumberColumn("start", width=40, help="First character of the token in the text"),
            "end": st.column_config.NumberColumn("end", width=38, help="One past its last character"),
        },
    )
    export = pd.DataFrame([r.as_dict() for r in rows]).drop(columns=["visible"])
    ui.download_buttons(export, f"tokens-{model_key}", key="tok_download")
