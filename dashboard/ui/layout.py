"""Layouts Streamlit has no parameter for, as keyed containers and a little CSS: controls that stay on screen next
to what they move (beside it on a wide screen, docked under it on a phone), and tables that fit a phone."""

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

# {key}: the layout's key. The wrapper Streamlit puts around a keyed container inside a horizontal one is the flex
# item: that is what sticks.
_BESIDE_CSS = """
.st-key-{key}_layout {{ flex-wrap: nowrap; align-items: flex-start; }}
.st-key-{key}_layout > div:has(> .st-key-{key}_controls) {{
  position: sticky; top: 3.75rem; align-self: flex-start; z-index: 5;  /* below Streamlit's header bar */
  max-height: calc(100vh - 4.5rem); overflow-y: auto; overflow-x: hidden;
}}
.st-key-{key}_layout > div:has(> .st-key-{key}_main) {{ flex: 1 1 0; min-width: 0; }}
.st-key-{key}_main [data-testid="stMetricValue"] {{ font-size: 1.7rem; }}
@media {phone} {{
  .st-key-{key}_layout {{ flex-direction: column; align-items: stretch; }}
  .st-key-{key}_layout > div:has(> .st-key-{key}_controls) {{
    order: 2; top: auto; bottom: 0; width: 100% !important; max-height: 36vh;
    background: var(--st-background-color, #ffffff); box-shadow: 0 -3px 10px rgba(31, 35, 51, 0.18);
    border-top: 1px solid #e5e7eb; padding: 0.25rem 0.5rem 0.5rem; margin: 0 -0.5rem;
  }}
  .st-key-{key}_controls [data-testid="stCaptionContainer"] {{ display: none; }}
  .st-key-{key}_controls [data-testid="stHeading"], .st-key-{key}_controls h3 {{ display: none; }}
}}
"""


def style(css: str) -> None:
    """Add `css` to the page (a style element takes no room)."""
    st.html(f"<style>{css}</style>")


def beside(key: str, controls_width: int = 290):
    """(controls, main) containers. On a wide screen the controls sit left of the main area and stay on screen
    while it scrolls (sticky); on a phone they dock at the bottom of the screen (at most 40% of it, scrolling
    on their own), so a slider and the chart it moves are on screen together. Their captions give way to
    the help icons there."""
    style(_BESIDE_CSS.format(key=key, phone=PHONE))
    box = st.container(key=f"{key}_layout", horizontal=True, gap="large")
    with box:
        controls = st.container(key=f"{key}_controls", width=controls_width)
        main = st.container(key=f"{key}_main")
    return controls, main
