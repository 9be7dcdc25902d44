"""The next-token numbers as a table, and one draw made visible: where the seeded uniform number u lands on
the cumulative distribution after the sampling controls, and which token it picks."""

from __future__ import annotations

from dataclasses import dataclass

import altair as alt
import pandas as pd
import torch

from dashboard import chart_style as style
from dashboard.numbers import probability
from dashboard.sampling import draw_u, inverse_cdf
from dashboard.tokens import visible

PICK_COLOUR = "#f59e0b"
STRETCH_COLOURS = ("#c7d2fe", "#a5b4fc")  # alternate, so neighbouring stretches are told apart
OTHER_COLOUR = "#e5e7eb"
U_COLOUR = "#b91c1c"
DRAW_HEIGHT = 72  # px of the plot: u's label on top, the bar below it
U_ROW, BAR_TOP, BAR_BOTTOM = 10, 24, 64  # px from the plot's top
NAME_SIZE = 11
MIN_NAMED_STRETCH = 34  # px: a stretch narrower than this (or than its whole name) is not named: it would show
# only "…" (its tooltip names it)


def top_table(tokenizer, dist, n: int) -> pd.DataFrame:
    """The `n` most likely tokens (raw ranking) with probability before and after the controls, logit, the
    cumulative probability after (in the order a draw lays tokens out) and whether the controls removed it."""
    k = min(n, dist.probs.shape[0])
    before, ids = torch.topk(dist.probs, k)  # (k,), (k,)
    order, cum = dist.order  # (vocab,), (vocab,)
    position = torch.empty_like(order)
    position[order] = torch.arange(order.shape[0])  # where each id sits in the draw's order
    kept = torch.isfinite(dist.scores[ids])
    return pd.DataFrame(
        {
            "rank": range(1, k + 1),
            "id": ids.tolist(),
            "token": [visible(tokenizer.decode([i])) for i in ids.tolist()],
            "probability before": before.tolist(),
            "probability after": dist.after[ids].tolist(),
            "logit": dist.logits[ids].tolist(),
            "cumulative after": [float(cum[position[i]]) if ok else None for i, ok in zip(ids.tolist(), kept.tolist())],
            "removed": [not ok for ok in kept.tolist()],
        }
    )


def table_text(frame: pd.DataFrame) -> pd.DataFrame:
    """The table with every number as text (4 decimals, percentages) for an HTML table people can copy."""
    return pd.DataFrame(
        {
            "rank": frame["rank"].astype(str),
            "id": frame["id"].astype(str),
            "token": frame["token"],
            "before": frame["probability before"].map(probability),
            "after": [("removed" if r else probability(p)) for p, r in zip(frame["probability after"], frame["removed"])],
            "logit": frame["logit"].map(lambda v: f"{v:.3f}"),
            "cumulative after": [("—" if c is None or pd.isna(c) else probability(min(c, 1.0)))
                                 for c in frame["cumulative after"]],
        }
    )


@dataclass(frozen=True)
class Draw:
    """One draw: u, the token it picks, and the stretch of the cumulative distribution that token owns."""

    u: float
    seed: int
    step: int
    token_id: int
    start: float  # cumulative probability before the picked token
    end: float  # … and after it
    rank_after: int  # 1 = the most likely token after the controls

    @property
    def prob(self) -> float:
        """Probability of the picked token after the controls."""
        return self.end - self.start


def one_draw(dist, seed: int, step: int) -> Draw:
    """The draw "Sample" makes at this step: u from (seed, step), the token by inverse CDF."""
    u = draw_u(seed, step)
    order, cum = dist.order
    token = inverse_cdf(dist.after, u, dist.order)
    where = int((order == token).nonzero()[0, 0])
    start = float(cum[where - 1]) if where else 0.0
    return Draw(u, seed, step, token, start, float(cum[where]), where + 1)


def draw_frame(tokenizer, dist, draw: Draw, n: int = 12) -> pd.DataFrame:
    """Stretches of [0, 1] for the `n` most likely tokens after the controls (plus the picked one), the rest
    merged into one "other" stretch."""
    order, cum = dist.order
    kept = dist.kept
    shown = min(n, kept)
    picked_at = draw.rank_after - 1
    rows = []
    for j in sorted(set(range(shown)) | ({picked_at} if picked_at < kept else set())):
        tid = int(order[j])
        start = float(cum[j - 1]) if j else 0.0
        rows.append({"token": visible(tokenizer.decode([tid])), "id": tid, "rank": j + 1, "start": start,
                     "end": float(cum[j]), "picked": tid == draw.token_id})
    covered = sum(r["end"] - r["start"] for r in rows)
    if covered < 0.9999 and kept > len(rows):
        # what is left of [0, 1] after the shown stretches: one grey block (may sit between shown ones)
        rows.insert(0, {"token": f"{kept - len(rows):,} other tokens", "id": -1, "rank": 0,  # drawn first, so
                        "start": float(cum[shown - 1]) if shown else 0.0, "end": 1.0, "picked": False})  # under
    frame = pd.DataFrame(rows)
    frame["probability"] = frame["end"] - frame["start"]
    return frame


def draw_chart(frame: pd.DataFrame, draw: Draw) -> alt.LayerChart:
    """One bar from 0 to 1 cut into the tokens' stretches (each named where it is wide enough, cut with "…" to fit),
    the picked one highlighted, a rule at u labelled above the bar."""
    frame = frame.assign(
        colour=[PICK_COLOUR if p else (OTHER_COLOUR if i < 0 else STRETCH_COLOURS[r % 2])
                for p, i, r in zip(frame["picked"], frame["id"], frame["rank"])],
        mid=(frame["start"] + frame["end"]) / 2,
        shown=[probability(min(max(p, 0.0), 1.0)) for p in frame["probability"]],
    )
    tooltip = [alt.Tooltip("token:N"), alt.Tooltip("id:Q"), alt.Tooltip("rank:Q", title="rank after"),
               alt.Tooltip("shown:N", title="probability"), alt.Tooltip("start:Q", format=".4f"),
               alt.Tooltip("end:Q", format=".4f")]
    bar_mid = (BAR_TOP + BAR_BOTTOM) / 2
    bars = alt.Chart(frame).mark_bar(stroke="white", strokeWidth=1).encode(
        x=alt.X("start:Q", scale=alt.Scale(domain=[0, 1]),
                axis=alt.Axis(format="%", title="cumulative probability after the controls")),
        x2="end:Q", y=alt.value(BAR_TOP), y2=alt.value(BAR_BOTTOM),
        color=alt.Color("colour:N", scale=None, legend=None),
        tooltip=tooltip,
    )
    span = "(scale('x', datum.end) - scale('x', datum.start))"  # the stretch's width in pixels
    names = alt.Chart(frame).mark_text(
        fontSize=NAME_SIZE, color=style.TEXT, limit={"expr": f"{span} - 6"},
        opacity={"expr": f"{span} >= min({MIN_NAMED_STRETCH}, 7 * length(datum.token) + 6) ? 1 : 0"},
    ).encode(x="mid:Q", y=alt.value(bar_mid), text="token:N")  # no tooltip: hover reaches the stretch beneath
    picked = frame[frame["picked"]]
    marker = alt.Chart(picked).mark_tick(color=PICK_COLOUR, thickness=8, size=BAR_BOTTOM - BAR_TOP + 8).encode(
        x="mid:Q", y=alt.value(bar_mid))  # a thin stretch stays visible
    label = f"u = {draw.u:.4f} → {picked['token'].iloc[0]}" if len(picked) else f"u = {draw.u:.4f}"
    spot = pd.DataFrame({"u": [draw.u], "label": [label]})
    rule = alt.Chart(spot).mark_rule(color=U_COLOUR, strokeWidth=2).encode(
        x="u:Q", y=alt.value(U_ROW + 8), y2=alt.value(BAR_BOTTOM + 4))
    right = draw.u > 0.5  # the label runs from the rule towards the wider side, cut to fit inside the chart
    rule_label = alt.Chart(spot).mark_text(
        color=U_COLOUR, fontWeight="bold", fontSize=style.LABEL_SIZE, align="right" if right else "left",
        dx=-4 if right else 4,
        limit={"expr": "scale('x', datum.u) - 4" if right else "width - scale('x', datum.u) - 4"},
    ).encode(x="u:Q", y=alt.value(U_ROW), text="label:N")
    return style.finish(alt.layer(bars, marker, names, rule, rule_label).properties(height=DRAW_HEIGHT))


def draw_sentence(tokenizer, draw: Draw, top_after: float) -> str:
    """One plain sentence: where u landed, what it picked, and why that need not be the top token."""
    token = visible(tokenizer.decode([draw.token_id]))
    sentence = (f"With seed {draw.seed}, step {draw.step + 1} draws u = {draw.u:.4f}. It lands in the stretch of "
                f"`{token}` (id {draw.token_id}, from {draw.start:.4f} to {draw.end:.4f}), so **Sample** appends "
                f"`{token}`")
    if draw.rank_after == 1:
        return sentence + ", the most likely token."
    return (sentence + f", rank {draw.rank_after} after the controls with probability {probability(draw.prob)}. "
            f"The top token owns only the first {probability(top_after)} of the bar: any u past that picks something "
            "else.")
