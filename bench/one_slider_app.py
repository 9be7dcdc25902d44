"""The baseline of `make bench`'s slider cases: the plainest Streamlit app with a slider moving a bar chart (the
server reruns the script on every move, as a Streamlit app does), and a button for the floor of a rerun."""

import math

import altair as alt
import pandas as pd
import streamlit as st

LOGITS = [3.1, 2.8, 2.2, 2.0, 1.7, 1.5, 1.1, 0.9, 0.8, 0.5, 0.2, 0.1, -0.3, -0.6, -1.0]
t = st.slider("Temperature", 0.05, 2.0, 1.0, 0.05, key="t")
weights = [math.exp(v / t) for v in LOGITS]
frame = pd.DataFrame({"token": [f"token {i}" for i in range(len(LOGITS))], "p": [w / sum(weights) for w in weights]})
st.altair_chart(alt.Chart(frame).mark_bar().encode(x="p:Q", y=alt.Y("token:N", sort=None)), theme=None)
if st.button("Press", key="press"):
    st.session_state["n"] = st.session_state.get("n", 0) + 1
st.write(f"Pressed {st.session_state.get('n', 0)} times")
