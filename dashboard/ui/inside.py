"""Streamlit sections of the Inside page: the session's cached study of one prompt (one forward, the lens, the
attribution), the selectors bound to the link, and what to read into attribution."""

from __future__ import annotations

import pandas as pd
import streamlit as st
import torch

from dashboard import inside, ui
from dashboard.inside_charts import MAX_LENS_POSITIONS
from dashboard.links import decode_path, path_text
from dashboard.numbers import probability
from dashboard.sampling import shown
from dashboard.tokens import encode, fit_context, visible

ATTRIBUTION_NOTE = {
    "occlusion": "**How to read it.** Each bar is how much the chosen token's log-probability drops when that one "
                 "input token is left out (all the variants run as one batch). Tall bars: tokens the prediction "
                 "leans on. **Limits:** leaving a token out also shifts every later position and makes text the "
                 "model never saw; tokens that matter only together (a name split into pieces) each look small.",
    "gradient × input": "**How to read it.** Each bar is the gradient of the chosen token's log-probability with "
                        "respect to that token's embedding, dotted with the embedding: how much the prediction would "
                        "move if that token's embedding were scaled up a little. **Limits:** it is a first-order, "
                        "local view — saturated tokens can matter a lot and still score near zero, and signs can "
                        "flip between neighbouring tokens.",
}
_MEMO = "_in_study"
MAX_ATTENTION_TOKENS = 64  # the attention view reads the last 64 tokens (a 64 × 64 map; memory grows as n²)
MAX_ATTRIBUTION_TOKENS = 64  # occlusion runs n + 1 variants of n tokens: the last 64 keep it to one batch


class Study:
    """Everything the page shows for one model and token sequence, computed once and kept in the session:
    moving a selector costs no forward."""

    def __init__(self, loaded, ids: list[int]):
        self.loaded, self.model, self.tok, self.ids = loaded, loaded.model, loaded.tokenizer, ids
        self.fwd = inside.run_forward(self.model, ids)  # hidden states; attentions only when asked for
        self._memo: dict = {}

    def _once(self, key, make):
        if key not in self._memo:
            self._memo[key] = make()
        return self._memo[key]

    def track(self) -> pd.DataFrame:
        """Rank and probability of the final choice at every layer of the last position (computed first)."""
        last = self._once("last", lambda: inside.lens_last_position(self.model, self.fwd))
        return self._once("track", lambda: inside.final_choice_track(last, int(self.fwd.logits.argmax())))

    def lens_table(self) -> tuple[pd.DataFrame, list[int]]:
        """(top token per layer × position for the last up to 32 positions, those positions)."""
        positions = list(range(max(0, len(self.ids) - MAX_LENS_POSITIONS), len(self.ids)))

        def make():
            lens = inside.lens_logits(self.model, self.fwd, positions=positions)  # (layers + 1, positions, vocab)
            return inside.lens_table(lens, self.tok, positions=positions)
        return self._once("table", make), positions

    def lens_row(self, layer: int, position: int) -> torch.Tensor:
        """The lens logits (vocab,) of one cell: that layer's guess after that position."""
        return self._once(("row", layer, position),
                          lambda: inside.lens_logits(self.model, self.fwd, positions=[position], layers=[layer])[0, 0])

    @property
    def attention_ids(self) -> list[int]:
        """The tokens the attention view reads: the last MAX_ATTENTION_TOKENS."""
        return self.ids[-MAX_ATTENTION_TOKENS:]

    @property
    def attribution_ids(self) -> list[int]:
        """The tokens attribution explains the next token from: the last MAX_ATTRIBUTION_TOKENS."""
        return self.ids[-MAX_ATTRIBUTION_TOKENS:]

    def with_attention(self) -> inside.Forward:
        """A forward of the attention view's tokens with attention weights (eager attention, this forward only)."""
        return self._once("attention", lambda: inside.run_forward(self.model, self.attention_ids, attentions=True))

    def attribution(self, target: int, method: str) -> torch.Tensor:
        """Per input token scores (seq,) over attribution_ids for `target` as the next token."""
        how = inside.occlusion if method == "occlusion" else inside.grad_x_input
        return self._once(("attr", target, method), lambda: how(self.model, self.attribution_ids, target))


def study(loaded, prompt: str) -> Study:
    """The session's study of this prompt (and the next-token page's appended path, when it is for this prompt)."""
    ids, cut = fit_context(encode(loaded.tokenizer, prompt), loaded.context_length, 1, loaded.spec.label)
    ui.context_notice(cut)
    path = st.session_state.get("nt_path")
    if path is not None and st.session_state.get("nt_path_for") == (loaded.spec.key, tuple(ids)) and path.steps:
        ids = path.ids  # the appended tokens come along
    elif st.query_params.get("path"):
        extra, notice = decode_path(st.query_params.get("path"), loaded.vocab_size)
        if notice:  # the URL keeps only the steps used
            ui.add_notice(notice)
            if extra:
                st.query_params["path"] = path_text(extra)
            else:
                del st.query_params["path"]
        ids = (ids + [t for t, _ in extra])[-(loaded.context_length - 1):]
    memo = st.session_state.get(_MEMO)
    if memo is None or memo.ids != ids or memo.model is not loaded.model:
        memo = Study(loaded, ids)
        st.session_state[_MEMO] = memo
    return memo


def keep_valid(key: str, options: list, default) -> None:
    """A bound selector's value that is not an option becomes `default` before the widget is drawn: with a notice
    when a link asked for it, silently when it is left over from an earlier prompt or model."""
    value = st.session_state.get(key)
    asked = ui.from_link(key)
    if value is not None and value not in options:
        if asked:
            ui.add_notice(f"`{key}` = {shown(str(value), 20)} does not exist for this model and prompt; using "
                          f"{default!r}.")
        st.session_state[key] = default


def layer_and_position(n_layers: int, seq: int, first_layer: int) -> tuple[int, int]:
    """Layer and position selectors bound to the link (?layer=&position=); defaults: the last of each."""
    layers, positions = list(range(first_layer, n_layers + 1)), list(range(seq))
    keep_valid("layer", layers, n_layers)
    keep_valid("position", positions, seq - 1)
    left, right = st.columns(2)
    layer = left.selectbox("Layer" + (" (0 = embeddings)" if first_layer == 0 else ""), layers,
                           index=len(layers) - 1, key="layer", bind="query-params")  # shown as is: the link gets it
    position = right.selectbox("Position", positions, index=seq - 1, key="position", bind="query-params")
    ui.bound("layer", n_layers)
    ui.bound("position", seq - 1)
    return int(layer), int(position)


CELL_CLICK = {"layer": "layer", "position": "position"}  # a lens cell sets both selectors
ROW_CLICK = {"q": "position"}  # an attention row sets the query position


def on_click(chart_key: str, name: str, fields: dict[str, str]):
    """An `on_select` callback for the chart keyed `chart_key`: the clicked point's `fields` go into the bound
    selectors. Callbacks run before the page is drawn, so the selectors may still change (setting them after
    they were drawn raises StreamlitAPIException)."""

    def callback() -> None:
        event = st.session_state.get(chart_key)
        selection = getattr(event, "selection", None) or {}
        chosen = (selection.get(name) or [{}])[0]
        for field, key in fields.items():
            if field in chosen:
                st.session_state[key] = int(chosen[field])

    return callback


def target_picker(study: Study) -> int:
    """The next token to explain: the argmax unless the user picks another of the top 10."""
    probs = torch.softmax(study.fwd.logits, -1)
    top = torch.topk(probs, 10)
    options = top.indices.tolist()
    label = {t: f"{visible(study.tok.decode([t]))} ({probability(p)})" for t, p in zip(options, top.values.tolist())}
    keep_valid("in_target", options, options[0])  # a link's token id that is not among the top 10 here
    target = int(st.selectbox("Explain the next token", options, key="in_target", format_func=label.get,
                              help="The model's top choice by default; pick another of its top 10 to see what "
                                   "speaks for that one."))
    ui.bound("in_target", options[0])  # the link carries the token id (the label holds a probability)
    ui.in_url("in_target", target, options[0])
    return target


def attention_frame(weights: torch.Tensor, tokens: list[str]) -> pd.DataFrame:
    """Attention weights as a long table: query position and token, key position and token, weight."""
    n = len(tokens)
    return pd.DataFrame([{"query": q, "query token": tokens[q], "key": k, "key token": tokens[k],
                          "weight": float(weights[q, k])} for q in range(n) for k in range(n)])


def attribution_frame(scores: torch.Tensor, tokens: list[str], ids: list[int]) -> pd.DataFrame:
    """Attribution scores as a table: position, token, id, score."""
    return pd.DataFrame({"position": range(len(tokens)), "token": tokens, "id": ids,
                         "score": [float(s) for s in scores]})
