"""Landing page: what Tokenscope shows and where to start."""

import streamlit as st

from dashboard import ui

ui.page_guard()

st.title("How a language model writes, one token at a time")
st.markdown(
    "Tokenscope turns the classic *generating one token at a time* notebook into something you can poke at. "
    "Pick a model in the sidebar (the bundled **SmolLM2-135M** runs offline), then follow the four steps:"
)
cols = st.columns(3)
with cols[0]:
    st.subheader("1 · Tokenize")
    st.write("See how text is split into tokens: ids, bytes, character spans and the token count.")
    st.page_link("pages/tokenize.py", label="Open Tokenize", icon="🧩")
with cols[1]:
    st.subheader("2–3 · Next token")
    st.write("See the probability of every candidate next token, append the most likely one, and repeat.")
    st.page_link("pages/next-token.py", label="Open Next token", icon="🎲")
with cols[2]:
    st.subheader("4 · Generate")
    st.write("Let `generate` write a whole continuation, token by token, and watch the speed.")
    st.page_link("pages/generate.py", label="Open Generate", icon="✍️")
st.markdown("Then look further: **Compare** puts prompts, models or settings side by side, and **Inside the model** "
            "shows where the next token forms — each layer's guess, attention, and which input tokens drove it.")
c1, c2, c3 = st.columns(3)
c1.page_link("pages/compare.py", label="Open Compare", icon="⚖️")
c2.page_link("pages/inside.py", label="Open Inside the model", icon="🔬")
c3.page_link("pages/class.py", label="Open Class (the guessing game)", icon="🧑‍🏫")
st.caption(f"The course notebook's example sentence: “{ui.SEED_PROMPT}”.")
