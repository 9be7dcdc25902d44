"""Altair charts and small HTML views (token chips, marked text); every piece of token text is escaped."""

from __future__ import annotations

import html

import altair as alt
import pandas as pd

from dashboard import chart_style as style
from dashboard.numbers import probability
from dashboard.sampling import top_tokens
from dashboard.tokens import TokenRow, visible

CHIP_COLOURS = ("#dbeafe", "#fde68a")  # alternate so neighbouring tokens are told apart
APPENDED_COLOUR = "#bbf7d0"


def unique_labels(texts: list[str], ids: list[int]) -> list[str]:
    """Visible token texts, with the id added where two tokens would show the same label."""
    shown = [visible(t) for t in texts]
    counts = pd.Series(shown).value_counts()
    return [f"{s} #{i}" if counts[s] > 1 else s for s, i in zip(shown, ids)]


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


# --------------------------------------------------------------------------- before → after distributions

SERIES_COLOURS = {"before": "#a5b4fc", "before (removed)": "#d1d5db", "after": "#4f46e5"}
BAR_ROW = 13  # px per bar: a token's row holds its "before" and "after" bars
VIEWS = ("probability", "log-probability", "logit")


def before_after_frame(tokenizer, dist, n: int) -> pd.DataFrame:
    """The top `n` tokens by raw probability with raw and processed values and whether they survive."""
    import torch

    ids, _ = top_tokens(dist.probs, n)
    idx = torch.tensor(ids, dtype=torch.long)
    texts = [tokenizer.decode([i]) for i in ids]
    kept = torch.isfinite(dist.scores[idx])
    return pd.DataFrame(
        {
            "rank": range(1, len(ids) + 1),
            "id": ids,
            "token": texts,
            "label": unique_labels(texts, ids),
            "before": dist.probs[idx].tolist(),
            "after": dist.after[idx].tolist(),
            "kept": kept.tolist(),
            "logit": dist.logits[idx].tolist(),
            "score": [float(v) if k else None for v, k in zip(dist.scores[idx].tolist(), kept.tolist())],
        }
    )


def before_after_chart(frame: pd.DataFrame, view: str = "probability", log_scale: bool = False,
                       selection: str | None = None) -> alt.Chart:
    """Grouped bars per token in rank order: raw ("before") above processed ("after"); removed tokens greyed."""
    if view not in VIEWS:
        raise ValueError(f"`view` must be one of {VIEWS}, got {view!r}")
    import numpy as np

    rows = []
    for r in frame.itertuples():
        if view == "probability":
            before, after = r.before, r.after
        elif view == "log-probability":
            before = float(np.log(r.before)) if r.before > 0 else None
            after = float(np.log(r.after)) if r.after > 0 else None
        else:
            before, after = r.logit, r.score
        common = {"rank": r.rank, "id": r.id, "label": r.label, "kept": r.kept, "p_before": probability(r.before),
                  "p_after": probability(r.after) if r.kept else "removed"}  # as every page writes them
        rows.append({**common, "series": "before" if r.kept else "before (removed)", "slot": 0, "value": before})
        if after is not None and r.kept:
            rows.append({**common, "series": "after", "slot": 1, "value": after})
    long = pd.DataFrame(rows)
    if log_scale and view == "probability":
        long = long[long["value"] > 0]
    x_scale = alt.Scale(type="log") if (log_scale and view == "probability") else alt.Scale(zero=view == "probability")
    title = {"probability": "probability", "log-probability": "log-probability (natural log)", "logit": "logit"}[view]
    order = frame.sort_values("rank", kind="stable")["label"].tolist()  # the rows' order is the rank's, whatever
    # the controls removed (an aggregated sort field would sum a kept token's two rows)
    chart = alt.Chart(long).mark_bar().encode(
        y=alt.Y("label:N", sort=order, title=None, axis=style.token_axis()),
        yOffset=alt.YOffset("slot:O", scale=alt.Scale(domain=[0, 1], paddingInner=0.1)),
        x=alt.X("value:Q", title=title, scale=x_scale, axis=alt.Axis(format="%" if view == "probability" else "")),
        color=alt.Color(
            "series:N",
            scale=alt.Scale(domain=list(SERIES_COLOURS), range=list(SERIES_COLOURS.values())),
            legend=alt.Legend(title=None, orient="top"),
        ),
        tooltip=[
            alt.Tooltip("label:N", title="token"),
            alt.Tooltip("id:Q"),
            alt.Tooltip("rank:Q"),
            alt.Tooltip("p_before:N", title="probability before"),
            alt.Tooltip("p_after:N", title="probability after"),
            alt.Tooltip("kept:N", title="survives"),
        ],
    )
    if selection:
        pick = alt.selection_point(name=selection, fields=["id"], on="click")
        chart = chart.add_params(pick)
    return style.finish(chart.properties(height=alt.Step(2 * BAR_ROW, **{"for": "position"})))


# --------------------------------------------------------------------------- text coloured by rank (GLTR)

RANK_BUCKETS = ((10, "#bbf7d0", "top 10"), (100, "#fef08a", "top 100"), (1000, "#fecaca", "top 1000"),
                (None, "#e9d5ff", "beyond 1000"))


BEYOND_TOP_N = "#e5e7eb"  # an engine's token below its top N: its rank is not known


def rank_colour(rank: int, top_n: int | None = None) -> str:
    """Background colour of a token with this rank under the model (GLTR's buckets); grey past an engine's top N,
    where the rank is unknown."""
    if top_n is not None and rank > top_n:
        return BEYOND_TOP_N
    for limit, colour, _ in RANK_BUCKETS:
        if limit is None or rank <= limit:
            return colour
    return RANK_BUCKETS[-1][1]


def rank_legend_html(top_n: int | None = None) -> str:
    """A one-line legend for the rank colours (an engine's: buckets up to its top N, then "below the top N")."""
    buckets = [(c, label) for _, c, label in RANK_BUCKETS]
    if top_n is not None:  # ranks are known up to the top N only
        buckets = [(rank_colour(1), "top 10")] + ([(rank_colour(top_n), f"top {top_n}")] if top_n > 10 else [])
        buckets.append((BEYOND_TOP_N, f"below the engine's top {top_n} (rank unknown)"))
    items = "".join(
        f'<span style="background:{c};padding:1px 6px;border-radius:3px;margin-right:6px">{html.escape(label)}</span>'
        for c, label in buckets
    )
    return f'<div style="font-size:0.85rem">Rank of each token under the model: {items}</div>'


def ranked_text_html(prefix: str, tokens: list[str], scores, alternatives: list[str], top_n: int | None = None) -> str:
    """`prefix` in plain text, then each token coloured by rank; hovering shows probability, rank, top-5."""
    parts = [f'<span style="color:#6b7280">{html.escape(prefix)}</span>']
    for i, (text, s, alts) in enumerate(zip(tokens, scores, alternatives)):
        rank = f"below the top {top_n}" if top_n is not None and s.rank > top_n else f"rank {s.rank}"
        tip = f"#{s.index} p={probability(s.prob)} {rank} · top 5: {alts}"
        parts.append(
            f'<span title="{html.escape(tip, quote=True)}" style="background:{rank_colour(s.rank, top_n)};'
            f'border-radius:3px">{html.escape(text)}</span>'
        )
    return '<div style="white-space:pre-wrap;line-height:1.8;font-size:1.02rem">' + "".join(parts) + "</div>"


def compare_chart(frame: pd.DataFrame) -> alt.Chart:
    """Bars per token, one per column, on one shared token axis ordered by the largest probability (ties in the
    order the tokens first appear: the first column's ranking)."""
    best = frame.groupby("token", sort=False)["probability"].max()
    order = best.sort_values(ascending=False, kind="stable").index.tolist()
    columns = list(dict.fromkeys(frame["column"]))
    colours = style.column_colours(len(columns))
    frame = frame.assign(shown=frame["probability"].map(probability))
    return style.finish(alt.Chart(frame).mark_bar().encode(
        y=alt.Y("token:N", sort=order, title=None, axis=style.token_axis()),
        yOffset=alt.YOffset("column:N", sort=columns),
        x=alt.X("probability:Q", axis=alt.Axis(format="%")),
        color=alt.Color("column:N", scale=alt.Scale(domain=columns, range=colours),
                        legend=alt.Legend(title=None, orient="top", columns=2)),  # two a row fit a phone
        tooltip=[alt.Tooltip("column:N"), alt.Tooltip("token:N"), alt.Tooltip("shown:N", title="probability")],
    ).properties(height=alt.Step(max(style.ROW, 9 * len(columns) + 4), **{"for": "position"})))
