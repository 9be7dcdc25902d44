"""The Class page's numbers and charts, without Streamlit: a pasted passage made fit for a room, the model's
probabilities (a full softmax, or an engine's top N), the reveal's table and chart, the game's score over the
rounds and its export table. Rooms and guesses come from dashboard/rooms.py; the game rules from guessing.py."""

from __future__ import annotations

import math
import unicodedata

import altair as alt
import pandas as pd
import torch

from dashboard import chart_style
from dashboard.guessing import Round, closest, score
from dashboard.numbers import probability
from dashboard.tokens import visible

TOP_N = 10  # the model's own top tokens shown at a reveal
CLASS, MODEL = "class's guesses", "model"


def flatten_passage(text: str) -> tuple[str, bool]:
    """`text` with line breaks, tabs and other control or invisible characters as single spaces (a room's text
    has none), and whether anything changed."""
    out = "".join(" " if unicodedata.category(ch) in ("Cc", "Cf", "Cs", "Zl", "Zp") else ch for ch in text)
    out = " ".join(out.split()) if out != text else out.strip()
    return out, out != text


def model_probs(logits: torch.Tensor, partial: bool) -> torch.Tensor:
    """The model's next-token probabilities: softmax of full logits, or an engine's own top-N probabilities
    (exp of its log-probs; the tokens it did not send get 0)."""
    logits = logits.detach().float().cpu()
    return logits.exp().nan_to_num(0.0) if partial else logits.softmax(-1)


def token_label(tokenizer, token_id: int | None, fallback: str = "") -> str:
    """A token as shown on the page (␣ for a space), or `fallback` without one."""
    return fallback if token_id is None else visible(tokenizer.decode([int(token_id)]))


def reveal_frame(counts: list[dict], probs: torch.Tensor, true_id: int | None = None) -> pd.DataFrame:
    """One row per guessed token: how it is shown, its id, how many guessed it, the class's share and the model's
    probability (None for a guess with no token); most guessed first."""
    total = sum(c["n"] for c in counts) or 1
    rows = []
    for c in counts:
        tid = c["token_id"]
        p = float(probs[tid]) if tid is not None and 0 <= tid < probs.shape[-1] else None
        rows.append({"token": c["shown"], "id": tid, "guesses": int(c["n"]), "class share": c["n"] / total,
                     "model probability": p, "true": tid is not None and tid == true_id})
    frame = pd.DataFrame(rows, columns=["token", "id", "guesses", "class share", "model probability", "true"])
    frame["id"] = frame["id"].astype("Int64")
    return frame.sort_values(["guesses", "model probability"], ascending=False, na_position="last",
                             kind="stable").reset_index(drop=True)


def top_frame(tokenizer, probs: torch.Tensor, n: int = TOP_N) -> pd.DataFrame:
    """The model's n most likely next tokens: rank, token, id, probability (only tokens with a probability)."""
    values, ids = probs.topk(min(n, int((probs > 0).sum()) or 1))
    return pd.DataFrame({"rank": range(1, len(ids) + 1), "token": [token_label(tokenizer, int(i)) for i in ids],
                         "id": [int(i) for i in ids], "probability": [float(v) for v in values]})


def reveal_chart(frame: pd.DataFrame) -> alt.Chart:
    """The class's share of guesses beside the model's probability, for each guessed token (bars side by side)."""
    long = pd.concat([
        pd.DataFrame({"token": frame["token"], "who": CLASS, "share": frame["class share"], "guesses": frame["guesses"]}),
        pd.DataFrame({"token": frame["token"], "who": MODEL, "share": frame["model probability"].fillna(0.0),
                      "guesses": frame["guesses"]}),
    ], ignore_index=True)
    long["shown"] = long["share"].map(probability)  # the app's one way to write a probability (dashboard/numbers.py)
    order = list(dict.fromkeys(frame["token"]))
    chart = alt.Chart(long).mark_bar().encode(
        y=alt.Y("token:N", sort=order, title=None, axis=chart_style.token_axis()),
        yOffset=alt.YOffset("who:N", sort=[CLASS, MODEL]),
        x=alt.X("share:Q", title="share of the class / model probability", axis=alt.Axis(format="%"),
                scale=alt.Scale(domain=[0, 1])),
        color=alt.Color("who:N", sort=[CLASS, MODEL], title=None,
                        scale=alt.Scale(range=list(chart_style.column_colours(2)))),
        tooltip=["token:N", "who:N", alt.Tooltip("shown:N", title="share / probability"), "guesses:Q"],
    ).properties(height=max(60, 2 * chart_style.ROW * len(order)))
    return chart_style.finish(chart)


def count_spec(guessed: int, joined: int) -> dict:
    """The live count as one stacked bar, guessed and not yet of those who joined: a plain Vega-Lite dict, the same
    bytes while the numbers stay (the teacher's fragment redraws it every second). Drawn from the room's start, it
    also has the browser load Vega's bundle before the first Reveal, not during it (round 1's reveal took ~3 s
    more than the others for that alone: bench class40)."""
    rest = max(0, joined - guessed)
    values = [{"who": "guessed", "n": guessed, "at": 0}, {"who": "not yet", "n": rest, "at": 1}]
    title = (f"{guessed} of {joined} who joined have guessed" if joined else "Nobody has joined yet")
    return {
        "$schema": "https://vega.github.io/schema/vega-lite/v5.json",
        "data": {"values": values},
        "mark": {"type": "bar", "tooltip": True},
        "height": 44,
        "encoding": {
            "x": {"field": "n", "type": "quantitative", "stack": "zero", "title": title,
                  "scale": {"domain": [0, max(1, joined, guessed)]},
                  "axis": {"format": "d", "tickMinStep": 1}},
            "color": {"field": "who", "type": "nominal", "title": None,
                      "scale": {"domain": ["guessed", "not yet"], "range": [chart_style.column_colours(1)[0],
                                                                            "#d5d9e0"]},
                      "legend": {"orient": "right"}},
            "order": {"field": "at", "type": "ordinal"},
            "tooltip": [{"field": "who", "type": "nominal"}, {"field": "n", "type": "quantitative",
                                                             "title": "learners"}],
        },
        "autosize": chart_style.AUTOSIZE, "padding": chart_style.PADDING, "config": chart_style.CONFIG,
    }


def target_of(rnd: dict) -> tuple[int | None, str]:
    """The token a round is scored on, and why: the passage's next token, else the token appended by Next."""
    if rnd.get("true_id") is not None:
        return int(rnd["true_id"]), "passage"
    if rnd.get("chosen_id") is not None:
        return int(rnd["chosen_id"]), rnd.get("chosen_by") or "chosen"
    return None, ""


def game_score(rounds: list[dict], rows: list[dict], probs_of, vocab_size: int, names: dict):
    """(guessing.Score, per-round frame, hits frame) over the revealed rounds: `rounds` from
    RoomStore.rounds_detail, `rows` from export_rows, `probs_of(ids)` the model's probabilities after ids,
    `names` learner id -> display name."""
    by_round: dict[int, dict] = {}
    for r in rows:
        by_round.setdefault(r["round"] - 1, {})[r["learner_id"]] = r["token_id"]
    game, labels = [], []
    for rnd in rounds:
        if rnd["state"] != "revealed":
            continue
        target, why = target_of(rnd)
        p = None
        if target is not None:
            probs = probs_of(rnd["ids"])
            p = float(probs[target]) if 0 <= target < probs.shape[-1] else None
            p = p if p and p > 0 else None  # not among an engine's top N: the model's bits are not known
        game.append(Round(by_round.get(rnd["round"], {}), target, p))
        labels.append((rnd["round"] + 1, why))
    result = score(game, vocab_size)
    per_round = []
    for (number, why), row in zip(labels, result.per_round):
        if row["scored"]:
            per_round.append({"round": number, "scored on": why, "guesses": row["n_guesses"],
                              "class bits": row["class_bits"], "model bits": row["model_bits"]})
    hits = pd.DataFrame([{"learner": names.get(k, f"learner {k}"), "hits": v} for k, v in result.hits.items()],
                        columns=["learner", "hits"]).sort_values("hits", ascending=False, kind="stable")
    return result, pd.DataFrame(per_round, columns=["round", "scored on", "guesses", "class bits", "model bits"]), hits


def score_chart(per_round: pd.DataFrame) -> alt.Chart:
    """The class's and the model's bits on each scored round (lower: less surprised)."""
    long = per_round.melt(id_vars=["round"], value_vars=["class bits", "model bits"], var_name="who",
                          value_name="bits").dropna()
    chart = alt.Chart(long).mark_line(point=True).encode(
        x=alt.X("round:O", title="round", axis=alt.Axis(labelAngle=0)), y=alt.Y("bits:Q", title="bits (surprise on the true token)"),
        color=alt.Color("who:N", title=None, scale=alt.Scale(range=list(chart_style.column_colours(2)))),
        tooltip=["round:O", "who:N", alt.Tooltip("bits:Q", format=".2f")],
    ).properties(height=240)
    return chart_style.finish(chart)


def closest_line(guesses: dict, probs: torch.Tensor, true_id: int | None, names: dict, tokenizer) -> str:
    """Who was closest this round, in words (names are the caller's to escape)."""
    known = {k: v for k, v in guesses.items() if v is not None and 0 <= v < probs.shape[-1]}
    best = closest(known, probs, true_id)
    if not best.learners:
        return "Nobody guessed a token this round."
    who = ", ".join(names.get(k, f"learner {k}") for k in best.learners)
    token = token_label(tokenizer, best.token_id)
    if best.reason == "hit":
        return f"{who} guessed the true token, {token}."
    return f"Closest: {who}, with {token} (the model gives it {probability(best.p)})."


def export_frame(rows: list[dict], rounds: list[dict], names: dict) -> pd.DataFrame:
    """The whole game, one row per guess of every revealed round (raw text: exports.csv_bytes neutralises it)."""
    targets = {r["round"] + 1: target_of(r)[0] for r in rounds}
    out = [{"round": r["round"], "text so far": r["text"], "learner": names.get(r["learner_id"], r["name"]),
            "guess": r["guess"], "guess token": r["shown"], "guess id": r["token_id"],
            "true id": targets.get(r["round"]), "hit": r["token_id"] is not None
            and r["token_id"] == targets.get(r["round"]), "appended": r["chosen_text"], "appended by": r["chosen_by"]}
           for r in rows]
    return pd.DataFrame(out, columns=["round", "text so far", "learner", "guess", "guess token", "guess id", "true id",
                                      "hit", "appended", "appended by"])


def bits_text(bits: float | None) -> str:
    """Bits per token as shown ('—' when not known)."""
    return "—" if bits is None or not math.isfinite(bits) else f"{bits:.2f}"


def follow_line(state: dict) -> str:
    """The learner's once-a-second line for the room's public `state`: the round, and how many of those who joined
    have guessed (so far while it is open; in all once revealed)."""
    head, guessed = f"Round {state['round'] + 1}", f"{state['n_guesses']} of {state['n_learners']}"
    if state.get("closed"):
        return f"{head} · the room is closed"
    if state["state"] == "open":
        return f"{head} · {guessed} guessed so far"
    return f"{head} · revealed: {guessed} guessed"

