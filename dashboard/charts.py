"""Altair charts and small HTML views (token chips, marked text); every piece of token text is escaped."""

from __future__ import annotations

import html

import altair as alt
import pandas as pd

from dashboard.tokens import TokenRow, visible

CHIP_COLOURS = ("#dbeafe", "#fde68a")  # alternate so neighbouring tokens are told apart
APPENDED_COLOUR = "#bbf7d0"


def unique_labels(texts: list[str], ids: list[int]) -> list[str]:
    """Visible token texts, with the id added where two tokens would show the same label."""
    shown = [visible(t) for t in texts]
    counts = pd.Series(shown).value_counts()
    return [f"{s} #{i}" if counts[s] > 1 else s for s, i in zip(shown, ids)]


def probability_frame(tokenizer, ids: list[int], probs: list[float]) -> pd.DataFrame:
    """Table of candidate tokens: rank, id, token text, visible label and probability."""
    texts = [tokenizer.decode([i]) for i in ids]
    return pd.DataFrame(
        {
            "rank": range(1, len(ids) + 1),
            "id": ids,
            "token": texts,
            "label": unique_labels(texts, ids),
            "probability": probs,
        }
    )


def probability_bars(frame: pd.DataFrame, title: str = "", selection: str | None = None) -> alt.Chart:
    """Horizontal bars of `frame`'s probabilities, most likely on top; optional click selection by token id."""
    base = alt.Chart(frame, title=title).encode(
        y=alt.Y("label:N", sort=alt.EncodingSortField("probability", order="descending"), title=None),
        x=alt.X("probability:Q", title="probability", axis=alt.Axis(format="%")),
        tooltip=[
            alt.Tooltip("rank:Q"),
            alt.Tooltip("id:Q"),
            alt.Tooltip("label:N", title="token"),
            alt.Tooltip("probability:Q", format=".4f"),
        ],
    )
    bars = base.mark_bar(color="#4f46e5")
    if selection:
        pick = alt.selection_point(name=selection, fields=["id"], on="click")
        bars = bars.add_params(pick).encode(
            opacity=alt.condition(pick, alt.value(1.0), alt.value(0.55))
        )
    text = base.mark_text(align="left", dx=3, fontSize=11).encode(text=alt.Text("probability:Q", format=".1%"))
    return (bars + text).properties(height=alt.Step(22))


def chips_html(rows: list[TokenRow]) -> str:
    """The text as coloured token chips (alternating colours, hover shows id), HTML-escaped."""
    spans = []
    for r in rows:
        colour = CHIP_COLOURS[r.index % 2]
        label = html.escape(r.visible, quote=True)
        tip = html.escape(f"#{r.index} id {r.id}: {r.visible}", quote=True)
        spans.append(
            f'<span title="{tip}" style="background:{colour};border-radius:4px;padding:1px 3px;'
            f'margin:1px;display:inline-block;font-family:monospace;white-space:pre">{label}</span>'
        )
    return '<div style="line-height:2">' + "".join(spans) + "</div>"


def marked_text_html(prompt_text: str, appended: list[str]) -> str:
    """The prompt followed by appended tokens highlighted, HTML-escaped, whitespace kept."""
    parts = [html.escape(prompt_text)]
    for t in appended:
        parts.append(
            f'<mark style="background:{APPENDED_COLOUR};border-radius:3px;padding:0 1px">{html.escape(t)}</mark>'
        )
    return '<div style="white-space:pre-wrap;font-size:1.05rem;line-height:1.7">' + "".join(parts) + "</div>"
