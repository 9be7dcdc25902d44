"""GLTR's summary of a scored text (Gehrmann, Strobelt and Rush, 2019): how many tokens fall in each rank bucket,
the frac-p histogram (each token's probability over the top token's), and the model's entropy at every token, as
tables and as charts. Token text is data for Vega (drawn as text, never as HTML)."""

from __future__ import annotations

import math

import altair as alt
import pandas as pd

from dashboard import chart_style as style
from dashboard.charts import BEYOND_TOP_N, RANK_BUCKETS, rank_colour
from dashboard.numbers import probability
from dashboard.tokens import visible

FRAC_P_BINS = 10  # GLTR's histogram: 0–0.1, 0.1–0.2, …, 0.9–1


def bucket_of(rank: int, top_n: int | None = None) -> str:
    """The rank bucket's name: "top 10", "top 100", "top 1000", "beyond 1000" (an engine's: past its top N,
    "below the top N", where the rank is unknown)."""
    if rank < 1:
        raise ValueError(f"`rank` must be at least 1, got {rank!r}")
    if top_n is not None and rank > top_n:
        return f"below the top {top_n}"
    return next(label for limit, _, label in RANK_BUCKETS if limit is None or rank <= limit)


def frac_p(score) -> float:
    """p(token) / p(top token) at the token's place: 1 for the model's top choice, near 0 for a surprise."""
    top = score.top_probs[0] if score.top_probs else score.prob
    return min(1.0, score.prob / top) if top > 0 else 0.0


def bucket_frame(scores, top_n: int | None = None) -> pd.DataFrame:
    """One row per rank bucket, in GLTR's order: bucket, tokens, share (text), colour."""
    names = [label for _, _, label in RANK_BUCKETS]
    colours = [colour for _, colour, _ in RANK_BUCKETS]
    if top_n is not None:  # ranks are known only within the engine's top N
        keep = [i for i, (limit, _, _) in enumerate(RANK_BUCKETS) if limit is not None and limit < top_n]
        names = [names[i] for i in keep] + [f"top {top_n}", f"below the top {top_n}"]
        colours = [colours[i] for i in keep] + [rank_colour(top_n), BEYOND_TOP_N]
    counts = dict.fromkeys(names, 0)
    for s in scores:
        name = bucket_of(s.rank, top_n)
        if name not in counts:  # within an engine's top N but past the last round bucket
            name = f"top {top_n}"
        counts[name] += 1
    total = max(len(scores), 1)
    return pd.DataFrame({"bucket": names, "order": range(len(names)), "tokens": [counts[n] for n in names],
                         "share": [probability(counts[n] / total) for n in names], "colour": colours})


def frac_p_frame(scores, bins: int = FRAC_P_BINS) -> pd.DataFrame:
    """The frac-p histogram: one row per bin of [0, 1] (start, end, label, tokens)."""
    if bins < 1:
        raise ValueError(f"`bins` must be at least 1, got {bins!r}")
    counts = [0] * bins
    for s in scores:
        counts[min(int(frac_p(s) * bins), bins - 1)] += 1  # 1.0 (the top token) goes in the last bin
    return pd.DataFrame({"start": [i / bins for i in range(bins)], "end": [(i + 1) / bins for i in range(bins)],
                         "label": [f"{i / bins:.1f}–{(i + 1) / bins:.1f}" for i in range(bins)], "tokens": counts})


def entropy_frame(tok, scores, top_n: int | None = None) -> pd.DataFrame:
    """One row per scored token: position, token (visible), entropy and surprisal in bits, rank, bucket colour."""
    return pd.DataFrame({
        "position": [s.index for s in scores],
        "token": [visible(tok.decode([s.token_id])) for s in scores],
        "entropy": [None if math.isnan(s.entropy) else s.entropy for s in scores],
        "surprisal": [s.surprisal for s in scores],
        "rank": [s.rank for s in scores],
        "colour": [rank_colour(s.rank, top_n) for s in scores],
    })


def _bucket_chart(frame: pd.DataFrame) -> alt.LayerChart:
    """How many tokens fall in each rank bucket: one bar per bucket in GLTR's colours, its count written on it."""
    base = alt.Chart(frame).encode(
        y=alt.Y("bucket:N", sort=frame["bucket"].tolist(), title=None, axis=style.token_axis()),
        x=alt.X("tokens:Q", title="tokens", axis=alt.Axis(tickMinStep=1)),
        tooltip=[alt.Tooltip("bucket:N"), alt.Tooltip("tokens:Q"), alt.Tooltip("share:N")],
    )
    bars = base.mark_bar(stroke="#6b7280", strokeWidth=0.5).encode(color=alt.Color("colour:N", scale=None))
    counts = base.mark_text(align="left", dx=3, fontSize=11).encode(
        text=alt.Text("label:N")).transform_calculate(label="datum.tokens + ' (' + datum.share + ')'")
    return alt.layer(bars, counts).properties(height=alt.Step(style.ROW + 4), title="Rank buckets")


def _frac_p_chart(frame: pd.DataFrame) -> alt.Chart:
    """The frac-p histogram: tokens per bin of p(token) / p(top token)."""
    return alt.Chart(frame).mark_bar(color="#818cf8").encode(
        x=alt.X("start:Q", bin="binned", scale=alt.Scale(domain=[0, 1]),
                title="p(token) / p(top token)", axis=alt.Axis(values=[i / 10 for i in range(11)], format=".1f")),
        x2="end:Q",
        y=alt.Y("tokens:Q", title="tokens", axis=alt.Axis(tickMinStep=1)),
        tooltip=[alt.Tooltip("label:N", title="frac-p"), alt.Tooltip("tokens:Q")],
    ).properties(height=200, title="frac-p")


def _entropy_chart(frame: pd.DataFrame) -> alt.Chart:
    """The model's entropy before each token (bars, coloured by the token's rank bucket), by position."""
    return alt.Chart(frame).mark_bar().encode(
        x=alt.X("position:O", title="position", axis=alt.Axis(labelOverlap=True, labelAngle=0)),
        y=alt.Y("entropy:Q", title="entropy (bits)"),
        color=alt.Color("colour:N", scale=None),
        tooltip=[alt.Tooltip("position:O"), alt.Tooltip("token:N"), alt.Tooltip("entropy:Q", format=".2f"),
                 alt.Tooltip("surprisal:Q", format=".2f"), alt.Tooltip("rank:Q")],
    ).properties(height=200, title="Entropy before each token")


def bucket_chart(frame: pd.DataFrame):
    """How many tokens fall in each rank bucket (the page's chart: the shared look, fitting its width)."""
    return style.finish(_bucket_chart(frame))


def frac_p_chart(frame: pd.DataFrame):
    """The frac-p histogram (the page's chart)."""
    return style.finish(_frac_p_chart(frame))


def entropy_chart(frame: pd.DataFrame):
    """The entropy before each token (the page's chart)."""
    return style.finish(_entropy_chart(frame))


def summary_chart(buckets: pd.DataFrame, fracp: pd.DataFrame, entropy: pd.DataFrame, width: int = 480):
    """The three charts stacked into one, for the SVG and PNG downloads."""
    parts = [c.properties(width=width) for c in (_bucket_chart(buckets), _frac_p_chart(fracp), _entropy_chart(entropy))]
    return alt.vconcat(*parts).properties(padding=style.PADDING).configure(**style.CONFIG)
