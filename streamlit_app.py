"""Tokenscope entry point: page config, navigation and the shared sidebar."""

import streamlit as st

from dashboard import ui
from dashboard.ui import layout

st.set_page_config(page_title="Tokenscope", page_icon="🔭", layout="wide")
ui.configure_logging()
layout.style(layout.GLOBAL_CSS)

pages = [
    st.Page("pages/home.py", title="Start here", icon="🔭", default=True),
    st.Page("pages/tokenize.py", title="Tokenize", icon="🧩", url_path="tokenize"),
    st.Page("pages/next-token.py", title="Next token", icon="🎲", url_path="next-token"),
    st.Page("pages/generate.py", title="Generate", icon="✍️", url_path="generate"),
    st.Page("pages/compare.py", title="Compare", icon="⚖️", url_path="compare"),
    st.Page("pages/inside.py", title="Inside the model", icon="🔬", url_path="inside"),
    st.Page("pages/class.py", title="Class", icon="🧑‍🏫", url_path="class"),
]
page = st.navigation(pages, position="hidden")  # the sidebar's own links carry model and prompt along
ui.apply_link(page.url_path)
ui.begin_run(page.url_path)

with st.sidebar:
    st.title("🔭 Tokenscope")
    nav = st.empty()
    ui.sidebar_navigation(nav, pages)  # at once: a page that loads a model for a while still has its links
    ui.model_picker()
    share = st.container()

notices = st.container()  # at the top of the page: filled after it, so its own corrections show too
ui.run_page(page)
ui.sidebar_navigation(nav, pages)  # again after the page (the model picked may have changed)
ui.share_link(share, page, pages)
ui.show_notices(notices)
