"""Exports: spreadsheet-safe CSV (OWASP's CSV-injection rule), exact JSON, every chart as SVG and PNG; and the
pages route every download through them."""

import ast
import csv
import io
import json

import pandas as pd
import pytest

from dashboard.exports import chart_png, chart_svg, csv_bytes, json_bytes

from conftest import ROOT

PAGES = sorted(ROOT.glob("pages/*.py"))


@pytest.mark.parametrize("text", ["=cmd|' /C calc'!A0", "+1+1", "-2+3", "@SUM(1)", "\t=1", "\r=1"])
def test_formula_cells_are_neutralised_in_csv_and_exact_in_json(text):
    frame = pd.DataFrame({"token": [text, "plain", " =spaced"], "id": [1, -5, 3]})
    rows = list(csv.reader(io.StringIO(csv_bytes(frame).decode("utf-8"), newline="")))
    assert rows[1][0] == "'" + text and rows[2][0] == "plain" and rows[3][0] == " =spaced"
    assert rows[2][1] == "-5"  # numbers stay numbers
    assert json.loads(json_bytes(frame))[0]["token"] == text


@pytest.mark.parametrize("name", ["=SUM(A1)", "+1", "-token", "@cmd", "\t=1"])
def test_a_column_name_starting_with_a_formula_character_is_neutralised_in_the_header(name):
    """A header cell is a cell too (a compared prompt's text can name a column)."""
    frame = pd.DataFrame({name: ["x"], "plain": [1]})
    header = next(csv.reader(io.StringIO(csv_bytes(frame).decode("utf-8"), newline="")))
    assert header == ["'" + name, "plain"]
    assert list(json.loads(json_bytes(frame))[0]) == [name, "plain"]  # JSON keeps the exact name


def test_a_tokenizer_token_starting_with_equals_is_neutralised(gpt2_tokenizer):
    from dashboard.tokens import token_rows

    rows = token_rows(gpt2_tokenizer, "=HYPERLINK(1)")
    frame = pd.DataFrame([r.as_dict() for r in rows])
    assert frame["text"].iloc[0].startswith("=")
    assert csv_bytes(frame).decode().splitlines()[1].split(",")[2].startswith("'=")



def test_json_keeps_non_ascii_text_as_utf8_not_escapes():
    """JSON holds the exact text: a token like "é" or "→" is its own UTF-8 bytes in the file, not a \\u escape."""
    data = json_bytes([{"token": "café →", "id": 1}])
    assert "café →".encode("utf-8") in data and b"\\u" not in data
    assert json.loads(data) == [{"token": "café →", "id": 1}]


def test_a_chart_at_container_width_is_exported_at_the_export_width():
    """A page's "container" width means nothing in a file: the export draws at EXPORT_WIDTH (an explicit pixel
    width is kept)."""
    import altair as alt

    from dashboard.exports import EXPORT_WIDTH, _static_spec

    frame = pd.DataFrame({"x": [1, 2], "y": [3, 4]})
    stretched = alt.Chart(frame).mark_bar().encode(x="x:Q", y="y:Q").properties(width="container")
    assert json.loads(_static_spec(stretched))["width"] == EXPORT_WIDTH
    assert json.loads(_static_spec(stretched.properties(width=300)))["width"] == 300


def test_charts_render_to_svg_and_png(tiny_gpt2, gpt2_tokenizer):
    import torch

    from dashboard.charts import before_after_chart, before_after_frame
    from dashboard.sampling import Settings, distribution

    dist = distribution(tiny_gpt2(torch.tensor([[52, 67]])).logits[0, -1], Settings(strategy="sample", top_k=3))
    chart = before_after_chart(before_after_frame(gpt2_tokenizer, dist, 6), selection="pick")
    svg = chart_svg(chart).decode()
    assert svg.startswith("<svg") and "</svg>" in svg and "probability" in svg
    png = chart_png(chart)
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 2000


def _calls(path, name):
    tree = ast.parse(path.read_text())
    return [n for n in ast.walk(tree) if isinstance(n, ast.Call) and getattr(n.func, "attr", None) == name]


@pytest.mark.parametrize("page", PAGES, ids=[p.stem for p in PAGES])
def test_pages_download_only_through_the_safe_helpers(page):
    assert not _calls(page, "download_button"), "use ui.download_buttons (neutralised CSV)"
    assert not _calls(page, "to_csv")
    # an instrument (dashboard/ui/instrument.py) is exported as the Altair charts it shows: Next token's its
    # distribution and its draw, Compare's and the Inside cell's their distributions
    instruments = (sum(n * len(_calls(page, f)) for f, n in (("show", 2), ("show_logits", 1), ("show_compare", 1)))
                   if "ui_instrument" in page.read_text() else 0)
    assert len(_calls(page, "altair_chart")) + instruments == len(_calls(page, "chart_downloads")), \
        "every chart gets SVG/PNG"
