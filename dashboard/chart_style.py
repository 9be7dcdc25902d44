"""One look for every chart, carried in the chart itself: fonts, sizes, colours, padding and how it fits its width.
The pages draw charts with `theme=None`, so the screen shows exactly this config, and so does an exported SVG/PNG
(vl-convert renders the same spec): nothing comes from Streamlit's theme or Vega's defaults."""

from __future__ import annotations

import altair as alt

# Streamlit's own font first (the page has it as a web font), then DejaVu Sans: it has every symbol the token labels
# use (␣ ↵ → ␍), so a renderer without Source Sans (vl-convert's PNG) draws the whole label in one sans-serif font
# instead of falling back to a serif one for the symbols.
FONT = '"Source Sans", "Source Sans Pro", "DejaVu Sans", sans-serif'  # (every family more slows vl-convert down)
TEXT = "#1f2333"  # the app theme's textColor (.streamlit/config.toml)
MUTED = "#4b5162"  # axis labels and titles
GRID = "#e6eaf1"
BACKGROUND = "#ffffff"
LABEL_SIZE = 12
TITLE_SIZE = 13
TOKEN_LABEL_LIMIT = 132  # px: a token axis label longer than this ends in "…" (the tooltip has the whole text)
COLUMN_COLOURS = ("#0068c9", "#83c9ff", "#ff2b2b", "#ffabab", "#29b09d", "#7defa1")  # Streamlit's first
# category colours (what the compare chart always showed), fixed here so an export draws the same ones
ROW = 20  # px per labelled row (token bars, heatmap rows): a 12 px label and a gap
PADDING = {"left": 4, "top": 6, "right": 12, "bottom": 6}
AUTOSIZE = {"type": "fit-x", "contains": "padding"}

_TEXT_STYLE = {"labelFont": FONT, "titleFont": FONT, "labelColor": MUTED, "titleColor": MUTED,
               "labelFontSize": LABEL_SIZE, "titleFontSize": TITLE_SIZE, "labelFontWeight": "normal",
               "titleFontWeight": "normal"}
CONFIG = {
    "font": FONT,
    "background": BACKGROUND,
    "axis": {**_TEXT_STYLE, "gridColor": GRID, "domainColor": "#c9ced8", "tickColor": "#c9ced8", "labelPadding": 4,
             "titlePadding": 8},
    "legend": {**_TEXT_STYLE, "labelColor": TEXT, "orient": "top", "symbolType": "square"},
    "title": {"font": FONT, "subtitleFont": FONT, "color": TEXT, "subtitleColor": MUTED, "fontSize": 14,
              "subtitleFontSize": LABEL_SIZE, "fontWeight": "normal"},
    "header": {**_TEXT_STYLE},
    "text": {"font": FONT, "fontSize": LABEL_SIZE, "color": TEXT},
    "view": {"stroke": None, "continuousHeight": 300, "continuousWidth": 400},
    "mark": {"tooltip": {"content": "encoding"}},
}


def token_axis(**kwargs) -> alt.Axis:
    """An axis of token labels: every label drawn (no overlap culling), long ones ending in "…"."""
    return alt.Axis(labelOverlap=False, labelLimit=TOKEN_LABEL_LIMIT, labelFontSize=LABEL_SIZE, **kwargs)


def finish(chart):
    """`chart` with the shared look and a width that fits its container: the page (width="stretch") or an export
    sets the width, and axes, labels and legend fit inside it."""
    return chart.properties(autosize=AUTOSIZE, padding=PADDING).configure(**CONFIG)


def column_colours(n: int) -> list[str]:
    """The colours of n compared columns (COLUMN_COLOURS, cycled)."""
    return [COLUMN_COLOURS[i % len(COLUMN_COLOURS)] for i in range(n)]
