"""Tokenscope entry point: page config, navigation and the shared sidebar."""

import streamlit as st

from dashboard import ui

st.set_page_config(page_title="Tokenscope", page_icon="🔭", layout="wide")
ui.configure_logging()

pages = [
    st.Page("pages/home.py", title="Start here", icon="🔭", default=True),
    st.Page("pages/tokenize.py", title="Tokenize", icon="🧩", url_path="tokenize"),
    st.Page("pages/next-token.py", title="Next token", icon="🎲", url_path="next-token"),
    st.Page("pages/generate.py", title="Generate", icon="✍️", url_path="generate"),
]
page = st.navigation(pages)

st.sidebar.title("🔭 Tokenscope")
ui.model_picker()
ui.run_page(page)
ui.show_notices()
