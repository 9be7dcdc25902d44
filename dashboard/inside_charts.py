"""Charts of the Inside page (logit lens, where the answer forms, attention, attribution). Token text is data
for Vega (drawn as text, never as HTML)."""

from __future__ import annotations

import altair as alt
import pandas as pd

from dashboard.tokens import visible

MAX_LENS_POSITIONS = 32  # the heatmap shows the last (up to) 32 positions


def lens_heatmap(table: pd.DataFrame, tokens: list[str], selection: str | None = "cell") -> alt.LayerChart:
    """Layers (rows, last block on top) × positions: the token each layer would predict there, coloured by its
    probability; a click selects a cell (layer, position)."""
    frame = table.assign(
        label=[visible(t)[:10] for t in table["top_text"]],
        input=[f"{p}: {visible(tokens[p])[:12]}" for p in table["position"]],
        predicts=[visible(t) for t in table["top_text"]],
    )
    order = [f"{p}: {visible(tokens[p])[:12]}" for p in sorted(table["position"].unique())]
    base = alt.Chart(frame).encode(
        x=alt.X("input:N", sort=order, title="input position (token)", axis=alt.Axis(labelAngle=-50)),
        y=alt.Y("layer:O", sort="descending", title="layer (0 = embeddings)"),
    )
    cells = base.mark_rect().encode(
        color=alt.Color("probability:Q", scale=alt.Scale(scheme="blues", domain=[0, 1]), title="probability"),
        tooltip=[alt.Tooltip("layer:O"), alt.Tooltip("input:N", title="position"),
                 alt.Tooltip("predicts:N", title="top token"), alt.Tooltip("top_id:Q", title="id"),
                 alt.Tooltip("probability:Q", format=".3f")],
    )
    if selection:
        cells = cells.add_params(alt.selection_point(name=selection, fields=["layer", "position"], on="click"))
    text = base.mark_text(fontSize=9).encode(
        text="label:N", color=alt.condition("datum.probability > 0.5", alt.value("white"), alt.value("#1f2333")),
    )
    return alt.layer(cells, text).properties(height=alt.Step(16), width=alt.Step(58))


def track_chart(track: pd.DataFrame, token: str) -> alt.LayerChart:
    """Rank (log scale) and probability of the model's final choice at every layer of the last position."""
    base = alt.Chart(track).encode(x=alt.X("layer:Q", title="layer", axis=alt.Axis(tickMinStep=1)))
    prob = base.mark_line(point=True, color="#4f46e5").encode(
        y=alt.Y("probability:Q", axis=alt.Axis(format="%", title=f"probability of {visible(token)}")),
        tooltip=["layer", "rank", alt.Tooltip("probability:Q", format=".4f")],
    )
    rank = base.mark_line(point=True, color="#f59e0b", strokeDash=[4, 3]).encode(
        y=alt.Y("rank:Q", scale=alt.Scale(type="log", reverse=True), axis=alt.Axis(title="rank (1 = top)")),
        tooltip=["layer", "rank", alt.Tooltip("probability:Q", format=".4f")],
    )
    return alt.layer(prob, rank).resolve_scale(y="independent").properties(height=220)


def attention_heatmap(weights, tokens: list[str], selection: str | None = "row") -> alt.Chart:
    """Query (rows) × key (columns) attention weights; a click on a row selects that query token."""
    labels = [f"{i}: {visible(t)[:12]}" for i, t in enumerate(tokens)]
    rows = [{"query": labels[q], "q": q, "key": labels[k], "weight": float(weights[q, k])}
            for q in range(len(tokens)) for k in range(len(tokens))]
    chart = alt.Chart(pd.DataFrame(rows)).mark_rect().encode(
        x=alt.X("key:N", sort=labels, title="attends to (key)", axis=alt.Axis(labelAngle=-50)),
        y=alt.Y("query:N", sort=labels, title="token (query)"),
        color=alt.Color("weight:Q", scale=alt.Scale(scheme="purples", domain=[0, 1])),
        tooltip=["query", "key", alt.Tooltip("weight:Q", format=".3f")],
    )
    if selection:
        chart = chart.add_params(alt.selection_point(name=selection, fields=["q"], on="click"))
    return chart.properties(height=alt.Step(18), width=alt.Step(18))


def bars_over_tokens(values, tokens: list[str], title: str) -> alt.Chart:
    """One bar per input token (in order), positive and negative values coloured apart."""
    labels = [f"{i}: {visible(t)[:14]}" for i, t in enumerate(tokens)]
    frame = pd.DataFrame({"token": labels, "value": [float(v) for v in values]})
    return alt.Chart(frame).mark_bar().encode(
        y=alt.Y("token:N", sort=labels, title=None),
        x=alt.X("value:Q", title=title),
        color=alt.condition("datum.value >= 0", alt.value("#4f46e5"), alt.value("#f97316")),
        tooltip=["token", alt.Tooltip("value:Q", format=".4f")],
    ).properties(height=alt.Step(16))
