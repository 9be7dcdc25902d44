"""Next token: the model's distribution over the next token, and the seed's append-the-argmax loop."""

import streamlit as st

from dashboard import ui

ui.page_guard()
from dashboard.charts import marked_text_html, probability_bars, probability_frame
from dashboard.generation import TokenPath
from dashboard.sampling import top_tokens
from dashboard.tokens import MAX_PROMPT_TOKENS, encode

st.title("🎲 Next token")
st.caption(
    "The model reads the text and gives every token in its vocabulary a probability of coming next. "
    "Appending the most likely one, again and again, is *greedy* generation."
)

model_key = ui.current_model_key()
prompt = ui.prompt_box(ui.SEED_PROMPT)
loaded = ui.get_model(model_key)

if prompt is not None and loaded is not None:
    tok = loaded.tokenizer
    prompt_ids = encode(tok, prompt)[-MAX_PROMPT_TOKENS:]
    # One TokenPath per session: rebuilt (one forward) only when the model or prompt changes.
    path: TokenPath | None = st.session_state.get("nt_path")
    if path is None or st.session_state.get("nt_path_for") != (model_key, tuple(prompt_ids)):
        path = TokenPath(loaded.model, prompt_ids)
        st.session_state["nt_path"] = path
        st.session_state["nt_path_for"] = (model_key, tuple(prompt_ids))

    b1, b2, b3, _ = st.columns([2, 1, 1, 3])
    if b1.button("Append most likely token", type="primary", key="nt_append"):
        path.append(int(path.logits.argmax()), "most likely")
    if b2.button("Undo", key="nt_undo", disabled=not path.steps):
        path.undo()
    if b3.button("Reset", key="nt_reset", disabled=not path.steps):
        path.truncate(0)

    st.markdown("**Text so far** (appended tokens highlighted)")
    st.html(marked_text_html(prompt, [tok.decode([s.token_id]) for s in path.steps]))
    st.caption(f"{len(path.ids)} tokens: {len(path.prompt_ids)} from the prompt, {len(path.steps)} appended.")

    k = st.slider("How many candidates to show (k)", 1, 50, 10, key="nt_show")
    ids, probs = top_tokens(path.logits.softmax(-1), k)
    frame = probability_frame(tok, ids, probs)
    left, right = st.columns([3, 2])
    with left:
        st.altair_chart(probability_bars(frame, title=f"Top {k} next tokens"), width="stretch")
    with right:
        st.dataframe(
            frame[["rank", "id", "label", "probability"]].rename(columns={"label": "token"}),
            hide_index=True,
            width="stretch",
            column_config={"probability": st.column_config.NumberColumn(format="%.4f")},
        )
