"""Downloads: CSV safe to open in a spreadsheet, JSON with the exact text, charts as SVG and PNG."""

from __future__ import annotations

import json

import pandas as pd

# OWASP's CSV-injection rule: a cell starting with one of these is a formula to a spreadsheet.
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
EXPORT_WIDTH = 1000  # px: a chart's width in a file, about the page's main area on a desktop


def neutralise(value):
    """`value` made inert for a spreadsheet: text starting with a formula character gets a leading quote."""
    if isinstance(value, str) and value.startswith(FORMULA_STARTS):
        return "'" + value
    return value


def csv_bytes(frame: pd.DataFrame) -> bytes:
    """The table as UTF-8 CSV, every text cell (and header) neutralised; numbers are left as numbers."""
    safe = frame.copy()
    for column in safe.columns:
        if safe[column].dtype == object:
            safe[column] = safe[column].map(neutralise)
    safe.columns = [neutralise(str(c)) for c in safe.columns]
    # RFC 4180's CRLF: a field holding either line-break character is then quoted (with "\n" alone a bare "\r"
    # inside a token would split a row in a spreadsheet)
    return safe.to_csv(index=False, lineterminator="\r\n").encode("utf-8")


def json_bytes(records) -> bytes:
    """Records (or a table) as indented UTF-8 JSON with the exact text (no neutralising: JSON is data)."""
    if isinstance(records, pd.DataFrame):
        records = records.to_dict(orient="records")
    return json.dumps(records, ensure_ascii=False, indent=1).encode("utf-8")


def chart_svg(chart) -> bytes:
    """An Altair chart rendered to SVG by Altair's own converter (vl-convert), interactions dropped."""
    import vl_convert

    return vl_convert.vegalite_to_svg(_static_spec(chart)).encode("utf-8")


def chart_png(chart, scale: float = 2.0) -> bytes:
    """An Altair chart rendered to a PNG at `scale` times its size by vl-convert."""
    import vl_convert

    return vl_convert.vegalite_to_png(_static_spec(chart), scale=scale)


def _static_spec(chart) -> str:
    """The chart's Vega-Lite JSON at EXPORT_WIDTH (a page's "container" width means nothing in a file). The chart
    carries its whole look (dashboard/chart_style.py) and the pages draw it with theme=None, so the file shows what
    the screen shows at that width."""
    spec = json.loads(chart.to_json())
    if spec.get("width") == "container" or "width" not in spec:
        spec["width"] = EXPORT_WIDTH
    return json.dumps(spec)
