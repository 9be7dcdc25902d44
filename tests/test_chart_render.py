"""Every chart the pages draw, rendered to SVG by vl-convert the way the page shows it (Streamlit's frontend config
for the theme the page passes, the container's width) at a desktop and a phone width, and read back as a person
sees it (tests/svg_geometry.py): every token label visible, in rank order, not overlapping, inside the chart; cell
text inside its cell; the chart no wider than its container; the export drawn exactly like the screen, in a
sans-serif font. The charts hold real data: distributions, lenses, attention and attribution of tiny models over
GPT-2's real tokenizer."""

from __future__ import annotations

import ast
import copy
import json
import re
from pathlib import Path

import pytest
import torch

from dashboard import exports
from dashboard.charts import before_after_chart, before_after_frame, compare_chart
from dashboard.compare import shared_axis_frame
from dashboard.draw import draw_chart, draw_frame, one_draw
from dashboard.inside import (attention_map, final_choice_track, lens_last_position, lens_logits, lens_table,
                              occlusion, run_forward)
from dashboard.links import MAX_COLUMNS
from dashboard.inside_charts import attention_heatmap, bars_over_tokens, lens_heatmap, track_chart
from dashboard.sampling import Settings, distribution, draw_u
from dashboard.tokens import encode, visible
from svg_geometry import Box, Drawing, aria_fields, covers, drawing, overlapping, resolved_family, shows

ROOT = Path(__file__).resolve().parents[1]
DESKTOP, PHONE = 1000, 330  # the main area's width at 1440×900 (~1000-1100 px) and on a 390×844 phone
WIDTHS = [DESKTOP, PHONE]
FRANCE = "The capital of France is"
LONG = ("In physics, gravity is a fundamental interaction which causes mutual attraction between all things that "
        "have mass, and air resistance slows a falling object down until it reaches its terminal velocity")

# --------------------------------------------------------------------------- the page's frontend, emulated
# Streamlit 1.67's frontend (static/js/CustomTheme.*.js) merges one of two Vega-Lite configs under a chart's own
# config (the chart's values win), sets the width to the container's and a bottom padding of 20 when none is given.
# The values are this app's light theme (.streamlit/config.toml) as the frontend resolves them.
ST_FONT, ST_TEXT, ST_FADED, ST_GRID = '"Source Sans", sans-serif', "#1f2333", "#808495", "#e6eaf1"
ST_CATEGORY = ["#0068c9", "#83c9ff", "#ff2b2b", "#ffabab", "#29b09d", "#7defa1", "#ff8700", "#ffd16a", "#6d3fc0",
               "#d5dae5"]
STREAMLIT_THEME = {  # theme="streamlit" (st.altair_chart's default)
    "font": ST_FONT, "background": "#ffffff", "fieldTitle": "verbal",
    "autosize": {"type": "fit", "contains": "padding"},
    "title": {"align": "left", "anchor": "start", "color": ST_TEXT, "fontSize": 16, "orient": "top", "offset": 26},
    "axis": {"labelFontSize": 12, "labelFontWeight": "normal", "labelColor": ST_FADED, "titleFontWeight": "normal",
             "titleFontSize": 14, "titleColor": ST_FADED, "ticks": False, "gridColor": ST_GRID, "domain": False,
             "domainWidth": 1, "domainColor": ST_GRID, "labelFlush": True, "labelFlushOffset": 1, "labelBound": False,
             "labelLimit": 100, "titlePadding": 16, "labelPadding": 16, "labelSeparation": 4, "labelOverlap": True},
    "legend": {"labelFontSize": 14, "labelFontWeight": "normal", "labelColor": ST_FADED, "titleFontSize": 14,
               "titleFontWeight": "normal", "titleColor": ST_FADED, "titlePadding": 8, "labelPadding": 16,
               "columnPadding": 8, "rowPadding": 4, "padding": 8, "symbolStrokeWidth": 4},
    "range": {"category": ST_CATEGORY},
    "view": {"strokeWidth": 0, "stroke": "transparent", "continuousHeight": 350, "continuousWidth": 400},
    "mark": {"tooltip": {"content": "encoding"}, "color": ST_CATEGORY[0]},
    "bar": {"binSpacing": 4, "discreteBandSize": {"band": 0.85}},
    "axisDiscrete": {"grid": False}, "axisXPoint": {"grid": False}, "axisXBand": {"grid": False},
}
_PLAIN_TEXT = {"labelFont": ST_FONT, "titleFont": ST_FONT, "labelFontSize": 12, "titleFontSize": 12}
STREAMLIT_PLAIN = {  # theme=None: the frontend still applies these
    "background": "#ffffff",
    "axis": {"labelColor": ST_TEXT, "titleColor": ST_TEXT, "gridColor": ST_GRID, **_PLAIN_TEXT},
    "legend": {"labelColor": ST_TEXT, "titleColor": ST_TEXT, **_PLAIN_TEXT},
    "title": {"color": ST_TEXT, "subtitleColor": ST_TEXT, **_PLAIN_TEXT},
    "header": {"labelColor": ST_TEXT, "titleColor": ST_TEXT, **_PLAIN_TEXT},
    "view": {"stroke": ST_GRID, "continuousHeight": 350, "continuousWidth": 400},
    "mark": {"tooltip": True},
}


def _merge(base: dict, top: dict) -> dict:
    """`base` deep-merged with `top` (top wins; lists are replaced, as the frontend's mergeWith does)."""
    out = copy.deepcopy(base)
    for key, value in top.items():
        out[key] = _merge(out[key], value) if isinstance(value, dict) and isinstance(out.get(key), dict) else value
    return out


def page_theme(page: str):
    """The `theme` every chart call of pages/<page>.py passes ("streamlit" when it passes none): its st.altair_chart
    calls, and an instrument's (dashboard/ui/instrument.py's st.vega_lite_chart) where the page shows one."""
    source = (ROOT / "pages" / f"{page}.py").read_text()
    trees = [ast.parse(source)]
    if "ui_instrument." in source:
        trees.append(ast.parse((ROOT / "dashboard" / "ui" / "instrument.py").read_text()))
    themes = set()
    for node in (n for tree in trees for n in ast.walk(tree)):
        if isinstance(node, ast.Call) and getattr(node.func, "attr", None) in ("altair_chart", "vega_lite_chart"):
            kw = {k.arg: k.value for k in node.keywords}
            themes.add(ast.literal_eval(kw["theme"]) if "theme" in kw else "streamlit")
    assert len(themes) == 1, f"pages/{page}.py draws its charts with several themes: {themes}"
    return themes.pop()


def screen_spec(chart, width: int, page: str) -> dict:
    """The Vega-Lite spec pages/<page>.py hands to Vega in a container `width` px wide."""
    spec = json.loads(chart.to_json())
    base = STREAMLIT_THEME if page_theme(page) == "streamlit" else STREAMLIT_PLAIN
    spec["config"] = _merge(base, spec.get("config", {}))
    spec["width"] = width
    if not isinstance(spec.get("padding"), dict):
        spec["padding"] = {"bottom": 20}
    spec["padding"].setdefault("bottom", 20)
    return spec


def screen_svg(chart, width: int, page: str) -> str:
    """The chart as pages/<page>.py shows it in a container `width` px wide, rendered by vl-convert."""
    import vl_convert

    return vl_convert.vegalite_to_svg(json.dumps(screen_spec(chart, width, page)))


def screen(chart, width: int, page: str) -> Drawing:
    """What the page shows, checked for what every chart must do: no wider than its container, every text inside
    the chart and not cut off by a clip, no two texts overlapping."""
    d = drawing(screen_svg(chart, width, page))
    assert d.width <= width + 0.5, f"the chart is {d.width:.0f} px wide in a {width} px container"
    outside = [t.text for t in d.texts if not t.box.inside(Box(0, 0, d.width, d.height))]
    assert not outside, f"texts drawn (partly) outside the {d.width:.0f}×{d.height:.0f} chart: {outside[:8]}"
    cut = [t.text for t in d.texts if t.clipped]
    assert not cut, f"texts cut off by a clip path: {cut[:8]}"
    pairs = overlapping(d.texts)
    assert not pairs, f"{len(pairs)} overlapping text pairs at {width} px, e.g. {pairs[:6]}"
    return d


def token_axis(d: Drawing, expected: list[str]) -> dict[str, object]:
    """{label: its visible Text} on whichever axis shows these labels; fails naming the labels not shown."""
    best: dict[str, object] = {}
    for axis in ("X-axis", "Y-axis"):
        drawn = d.axis_labels(axis)
        found = {full: t for full in expected for t in drawn if shows(t.text, full)}
        if len(found) > len(best):
            best = found
    missing = [e for e in expected if e not in best]
    assert not missing, f"{len(missing)} of {len(expected)} token labels not visible, e.g. {missing[:6]}"
    return best


def in_order(found: dict, expected: list[str], along: str) -> None:
    """The labels sit on screen (by position, not SVG order) in the order of `expected`."""
    pos = [getattr(found[e].box, "cy" if along == "y" else "cx") for e in expected]
    assert pos == sorted(pos), f"labels drawn out of order: {[e for _, e in sorted(zip(pos, expected))]}"


def bars_match_labels(d: Drawing, found: dict, key: str, along: str = "y") -> list:
    """Every bar sits in the band of the label its aria-label names (key: the tooltip field with the label)."""
    bars = [b for b in d.bars() if f"{key}: " in b.label]
    assert bars, "no bars with an aria-label"
    for b in bars:
        name = aria_fields(b.label)[key]
        centre = b.box.cy if along == "y" else b.box.cx
        nearest = min(found, key=lambda f: abs((found[f].box.cy if along == "y" else found[f].box.cx) - centre))
        assert nearest == name, f"the bar of {name!r} sits next to the label {nearest!r}"
    return bars


# --------------------------------------------------------------------------- real data


@pytest.fixture(scope="module")
def deep_gpt2():
    """A 30-block GPT-2 (31 lens rows like the bundled SmolLM2) with GPT-2's vocabulary, seeded random weights."""
    from transformers import GPT2Config, GPT2LMHeadModel

    torch.manual_seed(0)
    config = GPT2Config(n_layer=30, n_head=2, n_embd=32, n_positions=128, vocab_size=50257)
    model = GPT2LMHeadModel(config).eval()
    for p in model.parameters():
        p.requires_grad_(False)
    return model


@pytest.fixture(scope="module")
def next_frame(tiny_gpt2, gpt2_tokenizer):
    """The next-token page's frame for the seed prompt, top-k 5 removing 10 of the 15 tokens shown."""
    ids = encode(gpt2_tokenizer, "Udacity is the best place to learn about generative")
    dist = distribution(tiny_gpt2(torch.tensor([ids])).logits[0, -1], Settings(strategy="sample", top_k=5))
    return before_after_frame(gpt2_tokenizer, dist, 15), dist


def _tokens(tok, text):
    ids = encode(tok, text)
    return ids, [tok.decode([i]) for i in ids]


# --------------------------------------------------------------------------- next token


@pytest.mark.parametrize("width", WIDTHS)
@pytest.mark.parametrize("view,log", [("probability", False), ("probability", True), ("log-probability", False),
                                      ("logit", False)])
def test_next_token_chart_shows_every_token_in_rank_order(next_frame, view, log, width):
    frame, _ = next_frame
    assert (~frame["kept"]).sum() >= 5 and frame["kept"].sum() == 5  # the controls removed some
    d = screen(before_after_chart(frame, view, log, selection="pick"), width, "next-token")
    expected = frame.sort_values("rank")["label"].tolist()
    found = token_axis(d, expected)
    in_order(found, expected, "y")
    bars = bars_match_labels(d, found, "token")
    ranks = [int(aria_fields(b.label)["rank"]) for b in sorted(bars, key=lambda b: b.box.cy)]
    assert ranks == sorted(ranks), f"bars top to bottom have ranks {ranks}"


def test_draw_chart_u_label_and_segment_names(tiny_gpt2, gpt2_tokenizer):
    ids = encode(gpt2_tokenizer, "Udacity is the best place to learn about generative")
    logits = tiny_gpt2(torch.tensor([ids])).logits[0, -1]
    low_seed = next(s for s in range(1000) if draw_u(s, 0) < 0.1)  # u near each end of the bar
    cases = [(Settings(strategy="sample", top_k=5), 0), (Settings(strategy="sample", top_k=5), low_seed),
             (Settings(strategy="sample"), 0)]  # no top-k: a few thin stretches and one wide "other" block
    for settings, seed in cases:
        dist = distribution(logits, settings)
        draw = one_draw(dist, seed, 0)
        frame = draw_frame(gpt2_tokenizer, dist, draw)
        for width in WIDTHS:
            d = screen(draw_chart(frame, draw), width, "next-token")
            u_labels = [t for t in d.texts if t.text.startswith(f"u = {draw.u:.4f}")]
            assert len(u_labels) == 1, f"u label not visible at {width} px (u = {draw.u:.4f})"
            picked = frame[frame["picked"]]["token"].iloc[0]
            assert shows(u_labels[0].text, f"u = {draw.u:.4f} → {picked}")
            names = [t for t in d.mark_texts() if t is not u_labels[0]]
            for seg in [b for b in d.bars() if "token: " in b.label]:  # the stretches (not the pick's tick)
                token = aria_fields(seg.label).get("token")
                inside = [t for t in names if seg.box.contains_point(t.box.cx, t.box.cy)]
                if seg.box.width >= 40:
                    assert inside and shows(inside[0].text, token), f"{token!r} ({seg.box.width:.0f} px) unnamed"
                for t in inside:
                    assert t.box.inside(seg.box), f"{t.text!r} overflows its {seg.box.width:.0f} px stretch"


# --------------------------------------------------------------------------- compare


@pytest.mark.parametrize("width", WIDTHS)
@pytest.mark.parametrize("n", [2, MAX_COLUMNS])
def test_compare_chart_orders_by_largest_probability(tiny_gpt2, gpt2_tokenizer, width, n):
    columns = []
    for i, text in enumerate([FRANCE, "The capital of Italy is", "The capital of Spain is", LONG][:n]):
        ids = encode(gpt2_tokenizer, text)
        probs = torch.softmax(tiny_gpt2(torch.tensor([ids])).logits[0, -1], -1)
        columns.append((f"Prompt {i + 1}", gpt2_tokenizer, probs))
    frame = shared_axis_frame(columns, 8)
    best = {}
    for token, p in zip(frame["token"], frame["probability"]):
        best[token] = max(best.get(token, 0.0), p)
    expected = sorted(best, key=lambda t: -best[t])  # ties keep the order of first appearance (sorted is stable)
    d = screen(compare_chart(frame), width, "compare")
    found = token_axis(d, expected)
    in_order(found, expected, "y")
    bars_match_labels(d, found, "token")
    assert {t.text for t in d.legend_labels()} == {f"Prompt {i + 1}" for i in range(n)}


class Spec:
    """A Vega-Lite dict (an instrument's) where screen() expects an Altair chart, with its data."""

    def __init__(self, spec: dict, frame):
        self.spec = {**spec, "data": {"values": json.loads(frame.to_json(orient="records"))}}

    def to_json(self) -> str:
        return json.dumps(self.spec)


@pytest.mark.parametrize("width", WIDTHS)
@pytest.mark.parametrize("n", [2, MAX_COLUMNS])
def test_compares_instrument_orders_by_largest_probability_and_names_every_bar(tiny_gpt2, gpt2_tokenizer, width, n):
    """What Compare draws in the browser: the shared axis by each token's largest probability after the controls,
    every token labelled, every bar in its label's band, every column in the legend and in the figures."""
    from dashboard.compare import instrument_frame
    from dashboard.instrument_charts import compare_spec

    settings = Settings(strategy="sample", temperature=0.8, top_p=0.9)
    columns = []
    for i, text in enumerate([FRANCE, "The capital of Italy is", "The capital of Spain is", LONG][:n]):
        logits = tiny_gpt2(torch.tensor([encode(gpt2_tokenizer, text)])).logits[0, -1]
        columns.append((f"Prompt {i + 1}", gpt2_tokenizer, logits, None))
    frame, rows = instrument_frame(columns, 8)
    best = {}
    for g, (_, tok, logits, _) in enumerate(columns):
        after = distribution(logits, settings).after
        for t in frame.loc[(frame["on"] == 1) & (frame["g"] == g), "id"]:
            label = visible(tok.decode([int(t)]))
            best[label] = max(best.get(label, 0.0), float(after[int(t)]))
    expected = sorted(best, key=lambda t: -best[t])
    assert len(expected) == rows
    d = screen(Spec(compare_spec(settings, [c[0] for c in columns], rows), frame), width, "compare")
    found = token_axis(d, expected)
    positive = [e for e in expected if best[e] > 0]  # (removed everywhere: order among zeros is Vega's)
    in_order(found, positive, "y")
    bars_match_labels(d, found, "token")
    assert {t.text for t in d.legend_labels()} == {f"Prompt {i + 1}" for i in range(n)}
    shown = " ".join(t.text for t in d.mark_texts())
    assert all(f"Prompt {i + 1}:" in shown for i in range(n))
    assert "…" not in shown and " left" in shown and "kept" in shown, shown  # the figures whole, on a phone too


ROW_H_PX = 13  # half a token's row in the instrument (instrument_charts.ROW_H)


@pytest.mark.parametrize("width", WIDTHS)
@pytest.mark.parametrize("draw", [True, False], ids=["next-token", "inside-cell"])
def test_the_instruments_bars_figures_and_draw_fit_and_are_named(tiny_gpt2, gpt2_tokenizer, width, draw):
    """Next token's instrument (and the Inside cell's, without a draw) at a phone's and a desktop's width: every
    text inside the chart and apart, the figures whole, the bars in raw rank order, each in its label's band."""
    from dashboard.charts import unique_labels
    from dashboard.instrument import frame
    from dashboard.instrument_charts import spec
    from dashboard.payload import payload

    ids = encode(gpt2_tokenizer, FRANCE)
    logits = tiny_gpt2(torch.tensor([ids])).logits[0, -1] * 40  # a peaked distribution: a few long stretches
    data = payload(logits, ids if draw else [], lambda xs: unique_labels([gpt2_tokenizer.decode([i]) for i in xs], xs))
    settings = Settings(strategy="sample", temperature=0.9, top_k=40)
    chart = spec(settings, shown=12, controls=("temperature", "top_k", "top_p", "min_p"), draw=draw)
    d = screen(Spec(chart, frame(data, 0.37, 1)), width, "next-token" if draw else "inside")
    expected = data.tokens["label"].tolist()[:12]
    found = token_axis(d, expected)
    in_order(found, expected, "y")
    for bar in (b for b in d.bars() if "after, exact: " in b.label):  # (the draw's stretches name tokens too)
        label = found[aria_fields(bar.label)["token"]]
        assert label.box.y0 - 4 <= bar.box.cy <= label.box.y1 + 4 or abs(bar.box.cy - label.box.cy) < ROW_H_PX, \
            f"the bar of {aria_fields(bar.label)['token']!r} sits away from its label"
    shown = " ".join(t.text for t in d.mark_texts())
    figures = [t.text for t in d.mark_texts() if t.text.startswith(("Entropy", "Mass kept", "Tokens left"))]
    assert len(figures) in (2, 3) and not [f for f in figures if "…" in f], figures  # whole, on a phone too
    assert "Tokens left 40 of 50,257" in shown and "→ 2.60 bits" in shown, shown
    assert ("u = 0.3700" in shown) == draw


# --------------------------------------------------------------------------- inside


@pytest.fixture(scope="module")
def lens_case(deep_gpt2, gpt2_tokenizer):
    """The lens page's table for a 40-token prompt: the last 32 positions × 31 layers, as the page builds it."""
    ids, tokens = _tokens(gpt2_tokenizer, LONG)
    assert len(ids) > 32
    fwd = run_forward(deep_gpt2, ids)
    positions = list(range(len(ids) - 32, len(ids)))
    table = lens_table(lens_logits(deep_gpt2, fwd, positions=positions), gpt2_tokenizer, positions=positions)
    return table, tokens, positions, fwd


@pytest.mark.parametrize("width", WIDTHS)
def test_lens_heatmap_labels_every_position_and_fits_cell_text(lens_case, width):
    table, tokens, positions, fwd = lens_case
    d = screen(lens_heatmap(table, tokens), width, "inside")
    found = token_axis(d, [f"{p}: {visible(tokens[p])}" for p in positions])
    axis = next(iter(found.values())).axis
    along = "y" if axis.startswith("Y") else "x"
    in_order(found, [f"{p}: {visible(tokens[p])}" for p in positions], along)
    layers = sorted(table["layer"].unique())
    other = "X-axis" if along == "y" else "Y-axis"
    drawn = {t.text for t in d.axis_labels(other)}
    wanted = layers if width == DESKTOP else [l for l in layers if l % 5 == 0 or l == layers[-1]]
    assert {str(l) for l in wanted} <= drawn, f"layer labels missing: {sorted(set(map(str, wanted)) - drawn)}"
    cells = d.bars()
    assert len(cells) == len(table)
    texts = d.mark_texts()
    for t in texts:
        cell = next((c for c in cells if c.box.contains_point(t.box.cx, t.box.cy)), None)
        assert cell is not None and t.box.inside(cell.box), f"cell text {t.text!r} overflows its cell"
        assert shows(t.text, visible(aria_fields(cell.label)["top token"]))
    if width == DESKTOP:  # wide enough: every cell names its token (cut with an ellipsis where needed)
        assert len(texts) == len(table), f"{len(table) - len(texts)} cells show no token at {width} px"


@pytest.mark.parametrize("width", WIDTHS)
def test_track_chart_says_which_line_is_which(lens_case, deep_gpt2, gpt2_tokenizer, width):
    *_, fwd = lens_case
    final = int(fwd.logits.argmax())
    track = final_choice_track(lens_last_position(deep_gpt2, fwd), final)
    d = screen(track_chart(track, gpt2_tokenizer.decode([final])), width, "inside")
    legend = " ".join(t.text for t in d.legend_labels())
    assert "probability" in legend and "rank" in legend, f"no legend naming both lines: {legend!r}"


@pytest.mark.parametrize("width", WIDTHS)
@pytest.mark.parametrize("prompt", [FRANCE, LONG])
def test_attention_heatmap_and_where_it_looks(tiny_gpt2, gpt2_tokenizer, prompt, width):
    ids, tokens = _tokens(gpt2_tokenizer, prompt)
    weights = attention_map(run_forward(tiny_gpt2, ids, attentions=True), 0)
    labels = [f"{i}: {visible(t)}" for i, t in enumerate(tokens)]
    d = screen(attention_heatmap(weights, tokens), width, "inside")
    rows = {t.text for t in d.axis_labels("Y-axis")}
    assert all(any(shows(r, full) for r in rows) for full in labels), "a query row has no visible label"
    columns = d.axis_labels("X-axis")
    if width == DESKTOP or len(tokens) <= 8:  # every key column labelled where the columns are wide enough
        found = {full: t for full in labels for t in columns if shows(t.text, full)}
        assert len(found) == len(labels), f"key labels missing: {[l for l in labels if l not in found][:6]}"
        in_order(found, labels, "x")
    last = len(tokens) - 1
    looks = screen(bars_over_tokens(weights[last, : last + 1], tokens, "attention weight"), width, "inside")
    found = token_axis(looks, labels)
    in_order(found, labels, "y")
    bars_match_labels(looks, found, "token")


@pytest.mark.parametrize("width", WIDTHS)
def test_attribution_bars_label_every_token(tiny_gpt2, gpt2_tokenizer, width):
    ids, tokens = _tokens(gpt2_tokenizer, FRANCE)
    target = int(tiny_gpt2(torch.tensor([ids])).logits[0, -1].argmax())
    scores = occlusion(tiny_gpt2, ids, target)
    d = screen(bars_over_tokens(scores, tokens, "drop in log-probability when left out"), width, "inside")
    labels = [f"{i}: {visible(t)}" for i, t in enumerate(tokens)]
    found = token_axis(d, labels)
    in_order(found, labels, "y")
    bars_match_labels(d, found, "token")


# --------------------------------------------------------------------------- exports = screen


@pytest.fixture(scope="module")
def every_chart(next_frame, lens_case, deep_gpt2, tiny_gpt2, gpt2_tokenizer):
    """(name, chart, page) for one chart of each kind, built from real data."""
    frame, dist = next_frame
    table, tokens, positions, fwd = lens_case
    draw = one_draw(dist, 0, 0)
    ids, france = _tokens(gpt2_tokenizer, FRANCE)
    weights = attention_map(run_forward(tiny_gpt2, ids, attentions=True), 0)
    probs = torch.softmax(tiny_gpt2(torch.tensor([ids])).logits[0, -1], -1)
    track = final_choice_track(lens_last_position(deep_gpt2, fwd), int(fwd.logits.argmax()))
    return [
        ("next-token", before_after_chart(frame, selection="pick"), "next-token"),
        ("draw", draw_chart(draw_frame(gpt2_tokenizer, dist, draw), draw), "next-token"),
        ("compare", compare_chart(shared_axis_frame([("Prompt 1", gpt2_tokenizer, probs),
                                                     ("Prompt 2", gpt2_tokenizer, probs.flip(0))], 6)), "compare"),
        ("lens", lens_heatmap(table, tokens), "inside"),
        ("track", track_chart(track, tokens[-1]), "inside"),
        ("attention", attention_heatmap(weights, france), "inside"),
        ("looks", bars_over_tokens(weights[-1], france, "attention weight"), "inside"),
    ]


def _as_vega_lite_reads(spec: dict) -> dict:
    """`spec` with the config properties Vega-Lite's schema does not know dropped: it ignores them (the frontend's
    theme=None config puts axis-style keys such as labelFont into `title`)."""
    import altair

    schema = json.loads(next(Path(altair.__file__).parent.glob("vegalite/v*/schema/vega-lite-schema.json")).read_text())
    defs = schema["definitions"]
    known = defs["Config"]["properties"]
    config = {}
    for key, value in spec.get("config", {}).items():
        if key not in known:
            continue
        node = known[key]
        while "properties" not in node and (node.get("$ref") or any("$ref" in a for a in node.get("anyOf", []))):
            ref = node.get("$ref") or next(a["$ref"] for a in node["anyOf"] if "$ref" in a)
            node = defs[ref.split("/")[-1]]
        allowed = node.get("properties")
        config[key] = ({k: v for k, v in value.items() if k in allowed} if isinstance(value, dict) and allowed
                       else value)
    return {**spec, "config": config}


def test_exports_draw_exactly_what_the_screen_shows(every_chart):
    for name, chart, page in every_chart:
        export = json.loads(exports._static_spec(chart))
        shown = screen_spec(chart, export["width"], page)
        assert _as_vega_lite_reads(export) == _as_vega_lite_reads(shown), \
            f"the {name} chart's export spec differs from what its page shows"
    name, chart, page = next(c for c in every_chart if c[0] == "compare")  # and the same spec draws the same SVG

    def same(svg: str) -> str:
        return re.sub(r"gradient_\d+", "gradient", svg)  # vl-convert numbers gradients across calls

    width = json.loads(exports._static_spec(chart))["width"]
    assert same(exports.chart_svg(chart).decode()) == same(screen_svg(chart, width, page))


def test_exports_use_an_installed_sans_serif_font_for_every_text(every_chart):
    for name, chart, _ in every_chart:
        d = drawing(exports.chart_svg(chart).decode())
        for t in d.texts:
            family = resolved_family(t.family)
            assert family is not None, f"{name}: {t.text!r} names no installed font ({t.family}); the PNG's " \
                                       "renderer would pick one (here a serif one for ␣)"
            assert not any(w in family for w in ("Serif", "Mono", "Math")), f"{name}: {family} is not sans-serif"
            assert covers(family, t.text), f"{name}: {family} lacks glyphs of {t.text!r}: another font steps in"
    png = exports.chart_png(every_chart[0][1])
    assert png[:8] == b"\x89PNG\r\n\x1a\n"

