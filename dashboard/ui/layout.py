"""The app's own CSS (tables that fit a phone, copy buttons touch users can see) and a way to add a page's. Next
token's controls sit in its chart (dashboard/ui/instrument.py), right above what they move on any screen."""

from __future__ import annotations

import streamlit as st

PHONE = "(max-width: 640px)"  # where Streamlit itself stacks columns

# The app's own CSS, once per page: tables that fit a narrow screen, copy buttons touch users can see.
GLOBAL_CSS = f"""
@media {PHONE} {{
  [data-testid="stTable"] table {{ font-size: 0.74rem; }}
  [data-testid="stTable"] th, [data-testid="stTable"] td {{ padding: 2px 3px; white-space: normal; }}
  [data-testid="stTable"] th p, [data-testid="stTable"] td p {{ overflow-wrap: anywhere !important; }}
}}
/* st.code's copy button shows only on hover: touch screens have no hover, so it is always shown */
[data-testid="stCode"] button, [data-testid="stCodeCopyButton"] {{ opacity: 1 !important; visibility: visible !important; }}
"""


def style(css: str) -> None:
    """Add `css` to the page (a style element takes no room)."""
    st.html(f"<style>{css}</style>")
