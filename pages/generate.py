"""Generate: let the model write a whole continuation, streamed token by token."""

import streamlit as st

from dashboard import ui

ui.page_guard()
from dashboard.generation import start_generation
from dashboard.sampling import Settings
from dashboard.tokens import MAX_PROMPT_TOKENS, encode, safe_markdown

st.title("✍️ Generate")
st.caption(
    "`generate` repeats the next-token step for you. Greedy decoding always takes the most likely token, "
    "so the same prompt always gives the same text."
)

SEED_TOTAL = 100  # the notebook's max_length=100: prompt plus new tokens

model_key = ui.current_model_key()
prompt = ui.prompt_box(ui.STORY_PROMPT)
loaded = ui.get_model(model_key)

if prompt is not None and loaded is not None:
    prompt_ids = encode(loaded.tokenizer, prompt)[-MAX_PROMPT_TOKENS:]
    auto = max(1, SEED_TOTAL - len(prompt_ids))
    max_new = st.slider(
        "Max new tokens", 1, 256, auto, key="gen_max_tokens",
        help=f"Defaults to a total of {SEED_TOTAL} tokens (the notebook's max_length=100); "
        "generation also stops at end-of-text.",
    )
    settings = Settings(strategy="greedy", max_new_tokens=max_new)

    # A click on Stop (or any rerun) ends a run that is still going.
    previous = st.session_state.get("gen_run")
    if previous is not None and previous.thread is not None and previous.thread.is_alive():
        previous.stop()

    go, stop = st.columns([1, 1])
    if go.button("Generate", type="primary", key="gen_go"):
        run = start_generation(loaded.model, loaded.tokenizer, prompt_ids, settings)
        st.session_state["gen_run"] = run
        stop.button("Stop", key="gen_stop")
        with st.container(border=True):
            try:
                st.write_stream(run.chunks())
            finally:
                run.stop()  # the page was left or Stop was pressed: end the worker
        st.rerun()

    run = st.session_state.get("gen_run")
    if run is not None and run.output_ids:
        text = loaded.tokenizer.decode(run.new_ids, skip_special_tokens=True)
        with st.container(border=True):
            st.markdown(f"**{safe_markdown(loaded.tokenizer.decode(run.prompt_ids))}**{safe_markdown(text)}")
        c1, c2, c3 = st.columns(3)
        c1.metric("New tokens", len(run.new_ids))
        c2.metric("Total tokens", len(run.output_ids))
        c3.metric("Tokens per second", f"{run.tokens_per_second:.1f}")
    elif run is not None and run.error is not None:
        st.error(f"Generation failed: {run.error.__class__.__name__}. The model and other pages still work.")
