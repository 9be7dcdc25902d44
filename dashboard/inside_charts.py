"""Charts of the Inside page (logit lens, where the answer forms, attention, attribution). Token text is data
for Vega (drawn as text, never as HTML). Every token axis draws every label (long ones end in "…", tooltips
hold the whole text) and rows are sized by their count, so nothing is culled."""

from __future__ import annotations

import altair as alt
import pandas as pd

from dashboard import chart_style as style
from dashboard import numbers
from dashboard.tokens import visible

MAX_LENS_POSITIONS = 32  # the heatmap shows the last (up to) 32 positions
CELL_TEXT_SIZE = 10
MIN_CELL_TEXT = 18  # px: a lens column narrower than this shows colour only (the tooltip names the token)
MIN_KEY_COLUMN = 14  # px: attention columns narrower than this label every k-th key (the rows label them all)
PROBABILITY_COLOUR, RANK_COLOUR = "#4f46e5", "#f59e0b"


def position_label(position: int, token: str) -> str:
    """A token axis label: its position and its text made visible ("3: ␣France")."""
    return f"{position}: {visible(token)}"


def _gradient_legend(title: str) -> alt.Legend:
    """A horizontal colour-scale legend above the chart (it takes no width from a phone's narrow chart)."""
    return alt.Legend(title=title, orient="top", direction="horizontal", gradientLength=160)


def lens_heatmap(table: pd.DataFrame, tokens: list[str], selection: str | None = "cell") -> alt.LayerChart:
    """Positions (rows, in reading order) × layers (columns, 0 = embeddings on the left): the token each layer
    would predict after that position, coloured by its probability; a click selects a cell (layer, position)."""
    frame = table.assign(
        input=[position_label(p, tokens[p]) for p in table["position"]],
        predicts=[visible(t) for t in table["top_text"]],
        shown=[numbers.probability(p) for p in table["probability"]],
    )
    order = [position_label(p, tokens[p]) for p in sorted(table["position"].unique())]
    last = int(table["layer"].max())
    every_fifth = {"condition": {"test": f"bandwidth('x') >= 16 || datum.value % 5 === 0 || datum.value === {last}",
                                 "value": 1}, "value": 0}  # narrow columns: layers 0, 5, 10, … and the last
    base = alt.Chart(frame).encode(
        y=alt.Y("input:N", sort=order, title="input position (token)", axis=style.token_axis()),
        x=alt.X("layer:O", sort="ascending", title="layer (0 = embeddings)",
                axis=alt.Axis(labelAngle=0, labelOverlap=False, labelOpacity=every_fifth)),
    )
    tooltip = [alt.Tooltip("layer:O"), alt.Tooltip("input:N", title="position"),
               alt.Tooltip("predicts:N", title="top token"), alt.Tooltip("top_id:Q", title="id"),
               alt.Tooltip("shown:N", title="probability")]
    cells = base.mark_rect().encode(
        color=alt.Color("probability:Q", scale=alt.Scale(scheme="blues", domain=[0, 1]),
                        legend=_gradient_legend("probability")),
        tooltip=tooltip,
    )
    if selection:
        cells = cells.add_params(alt.selection_point(name=selection, fields=["layer", "position"], on="click"))
    text = base.mark_text(
        fontSize=CELL_TEXT_SIZE, limit={"expr": "bandwidth('x') - 4"},  # cut to the cell's width, with "…"
        opacity={"expr": f"bandwidth('x') >= {MIN_CELL_TEXT} ? 1 : 0"},
    ).encode(
        text="predicts:N", color=alt.condition("datum.probability > 0.5", alt.value("white"), alt.value(style.TEXT)),
    )  # no tooltip: Vega-Lite then makes the text non-interactive, so hover and click reach the cell beneath
    return style.finish(alt.layer(cells, text).properties(height=alt.Step(style.ROW)))


def track_chart(track: pd.DataFrame, token: str) -> alt.LayerChart:
    """Rank (log scale, right axis, dashed) and probability (left axis, solid) of the model's final choice at every
    layer of the last position, with a legend naming both lines."""
    probability, rank = f"probability of {visible(token)}", "rank (1 = top)"
    names = [probability, rank]
    colour = alt.Scale(domain=names, range=[PROBABILITY_COLOUR, RANK_COLOUR])
    dash = alt.Scale(domain=names, range=[[1, 0], [4, 3]])
    legend = alt.Legend(title=None, orient="top", direction="vertical", symbolType="stroke", symbolStrokeWidth=2,
                        symbolSize=300)  # one line per entry: a long token's name still fits a phone
    track = track.assign(shown=[numbers.probability(p) for p in track["probability"]])
    tooltip = ["layer", "rank", alt.Tooltip("shown:N", title="probability")]
    x = alt.X("layer:Q", title="layer", axis=alt.Axis(tickMinStep=1))
    line = {"color": alt.Color("line:N", scale=colour, legend=legend),
            "strokeDash": alt.StrokeDash("line:N", scale=dash, legend=legend)}  # one legend names both lines
    prob = alt.Chart(track.assign(line=probability)).mark_line(point=True).encode(
        x=x, y=alt.Y("probability:Q", axis=alt.Axis(format="%", title=probability)), tooltip=tooltip, **line)
    decades = [10 ** k for k in range(len(str(max(int(track["rank"].max()), 1))) + 1)]  # 1, 10, 100, … past the
    # worst rank: a log axis's own ticks (1, 2, 10, 20, …) crowd each other
    ranks = alt.Chart(track.assign(line=rank)).mark_line(point=True).encode(
        x=x, y=alt.Y("rank:Q", scale=alt.Scale(type="log", reverse=True), axis=alt.Axis(title=rank, values=decades)),
        tooltip=tooltip, **line)
    return style.finish(alt.layer(prob, ranks).resolve_scale(y="independent").properties(height=220))


def attention_heatmap(weights, tokens: list[str], selection: str | None = "row") -> alt.Chart:
    """Query (rows) × key (columns) attention weights; a click on a row selects that query token."""
    labels = [position_label(i, t) for i, t in enumerate(tokens)]
    rows = [{"query": labels[q], "q": q, "key": labels[k], "weight": float(weights[q, k])}
            for q in range(len(tokens)) for k in range(len(tokens))]
    every_kth = {"condition": {"test": f"bandwidth('x') >= {MIN_KEY_COLUMN} || "
                                       f"parseInt(datum.value) % ceil({MIN_KEY_COLUMN} / bandwidth('x')) === 0",
                               "value": 1}, "value": 0}  # labels start with the position: "12: ␣of"
    chart = alt.Chart(pd.DataFrame(rows)).mark_rect().encode(
        x=alt.X("key:N", sort=labels, title="attends to (key)",
                axis=style.token_axis(labelAngle=-90, labelOpacity=every_kth)),
        y=alt.Y("query:N", sort=labels, title="token (query)", axis=style.token_axis()),
        color=alt.Color("weight:Q", scale=alt.Scale(scheme="purples", domain=[0, 1]),
                        legend=_gradient_legend("weight")),
        tooltip=["query", "key", alt.Tooltip("weight:Q", format=".3f")],
    )
    if selection:
        chart = chart.add_params(alt.selection_point(name=selection, fields=["q"], on="click"))
    return style.finish(chart.properties(height=alt.Step(style.ROW)))


def bars_over_tokens(values, tokens: list[str], title: str) -> alt.Chart:
    """One bar per input token (in order), positive and negative values coloured apart."""
    labels = [position_label(i, t) for i, t in enumerate(tokens)]
    frame = pd.DataFrame({"token": labels, "value": [float(v) for v in values]})
    return style.finish(alt.Chart(frame).mark_bar().encode(
        y=alt.Y("token:N", sort=labels, title=None, axis=style.token_axis()),
        x=alt.X("value:Q", title=title),
        color=alt.condition("datum.value >= 0", alt.value("#4f46e5"), alt.value("#f97316")),
        tooltip=["token", alt.Tooltip("value:Q", format=".4f")],
    ).properties(height=alt.Step(style.ROW)))
