"""What the browser needs to apply the sampling controls to one next-token distribution exactly: the most likely
tokens one by one (plus every token the text holds, which the repetition penalty moves, and any the page asks for),
and the rest of the vocabulary (the tail) as bins of tokens whose raw logits lie within BIN_WIDTH of each other.

A bin carries its count, raw probability and central moments, which give its summed weight exp(logit / T) at any
temperature to ~1e-10 of itself where it counts, and its logits themselves, offsets from the bin's top in units of
UNIT, which the browser unpacks only for a bin where a top-p or min-p cut falls: tokens left is exact wherever the
cut lands. The spec that reads it and its Python twin: dashboard/instrument.py."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

TOP_ROWS = 50  # tokens sent one by one (the most the chart shows; a top-k cut past them unpacks its bin)
BIN_WIDTH = 0.3  # logits: with 8 moments a bin's weight is exact to ~1e-10 of itself where it counts
BIN_COUNT = 400  # at most this many tokens in a bin (an unpacked bin is this many rows at most)
MOMENTS = 8  # central moments M1..M8 of a bin's logits
UNIT = 1e-7  # logit offsets within a bin, in these units (an error ≤ 5e-8 in a logit)
BASE = 36  # the offsets are written in base 36 ("1sa7", not "2999999"): the dataset is ~30% smaller than in decimal,
# and the browser reads them with Vega's parseInt(text, 36). Measured: 418 KB of a 437 KB Append rerun was this text.
_DIGITS = np.frombuffer(b"0123456789abcdefghijklmnopqrstuvwxyz", dtype=np.uint8)


@dataclass(frozen=True)
class Payload:
    """What the browser needs for one position: `rows` (tokens, then tail bins; the Vega dataset) and the
    constants the figures use."""

    rows: pd.DataFrame
    vocab: int  # tokens with a finite logit (an engine: its top N)
    tail_top: float  # the raw logit of the first tail token (a penalised token below it may lie inside a bin)
    lse: float  # log-sum-exp of the raw logits
    entropy_before: float  # bits

    @property
    def tokens(self) -> pd.DataFrame:
        """The rows that are single tokens, in raw rank order."""
        return self.rows[self.rows["kind"] == 0]


def payload(logits, prev_ids, labels, top: int = TOP_ROWS, extra=()) -> Payload:
    """The instrument's data for raw `logits` (vocab,) after the text `prev_ids`; `labels(ids)` gives the shown
    text of those tokens (unique, escaped by the chart); `extra` ids are sent one by one too (wherever they rank)."""
    raw = np.asarray(logits, dtype=np.float32).astype(np.float64).reshape(-1)  # (vocab,)
    finite = np.isfinite(raw)
    ids = np.nonzero(finite)[0]
    order = ids[np.argsort(-raw[ids], kind="stable")]  # finite ids, most likely first (ties by id)
    lse = float(np.logaddexp.reduce(raw[order]))
    probs = np.exp(raw[order] - lse)
    entropy = float(-(probs[probs > 0] * np.log2(probs[probs > 0])).sum())
    penalised, single_out = np.zeros(raw.shape[0], dtype=bool), np.zeros(raw.shape[0], dtype=bool)
    for mask, chosen in ((penalised, prev_ids), (single_out, extra)):
        chosen = np.asarray(sorted(set(int(i) for i in chosen)), dtype=np.int64)
        if chosen.size:
            mask[chosen[(chosen >= 0) & (chosen < raw.shape[0])]] = True
    single_out &= finite
    rank = np.empty(raw.shape[0], dtype=np.int64)
    rank[order] = np.arange(order.size)
    # the `top` most likely tokens the penalty leaves alone, every penalised one (the penalty moves them) and the
    # extra ones: the top-k of any setting (k ≤ 200) is among them
    free = order[~penalised[order]]
    single = np.unique(np.concatenate([free[:top], order[penalised[order]], np.nonzero(single_out)[0]]).astype(np.int64))
    single = single[np.argsort(rank[single], kind="stable")]
    names = labels([int(i) for i in single])
    tokens = pd.DataFrame({
        "kind": 0, "i": rank[single], "id": single, "label": names, "l": raw[single],
        "pen": penalised[single].astype(int), "p0": np.exp(raw[single] - lse), "c": 1,
    })
    tail = free[top:]
    tail = tail[~single_out[tail]]
    bins = _bins(raw[tail], lse, start=len(order))
    rows = pd.concat([tokens, bins], ignore_index=True) if len(bins) else tokens
    tail_top = float(bins["l"].iloc[0]) if len(bins) else float("-inf")
    return Payload(rows, int(order.size), tail_top, lse, entropy)


def _bins(values: np.ndarray, lse: float, start: int) -> pd.DataFrame:
    """Tail bins of the sorted (descending) logits `values`: runs at most BIN_WIDTH wide and BIN_COUNT long."""
    n = values.size
    if n == 0:
        return pd.DataFrame()
    # 1. where each bin starts: its top, then every value at least its top − BIN_WIDTH (at most BIN_COUNT of them)
    neg, first, b = -values, [], 0
    while b < n:
        e = int(np.searchsorted(neg, -(values[b] - BIN_WIDTH), side="right"))
        first.append(b)
        b = min(max(e, b + 1), b + BIN_COUNT, n)
    first = np.asarray(first)  # (bins,)
    count = np.diff(np.append(first, n))  # (bins,)
    seg = np.repeat(np.arange(first.size), count)  # (tail,): each value's bin
    hi = values[first]  # (bins,)
    # 2. each value as an offset from its bin's top in UNITs, and the logit the browser unpacks from it
    offsets = np.rint((hi[seg] - values) / UNIT).astype(np.int64)  # (tail,)
    t = hi[seg] - offsets * UNIT
    # 3. per bin: mean, central moments, raw probability, lowest logit
    mu = np.add.reduceat(t, first) / count
    d = t - mu[seg]
    # 4. the offsets as base-36 text, "a,b,c" per bin: one text, cut where each bin's numbers start
    text, at = _base36(offsets)
    ends = at[first + count] - 1  # (the comma after a bin's last number is not its)
    rows = {"kind": 1, "i": start + np.arange(first.size), "id": -1, "label": "", "l": hi, "pen": 0,
            "p0": np.add.reduceat(np.exp(t - lse), first), "c": count, "lo": t[first + count - 1], "mu": mu,
            "offs": [text[i:j] for i, j in zip(at[first].tolist(), ends.tolist())]}
    power = np.ones_like(d)
    for k in range(1, MOMENTS + 1):
        power = power * d
        rows[f"m{k}"] = np.add.reduceat(power, first)
    return pd.DataFrame(rows)


def _base36(values: np.ndarray) -> tuple[str, np.ndarray]:
    """("a,b,c," : the non-negative ints `values` in base 36, each followed by a comma; where each one starts in it,
    and the text's length last)."""
    width = len(np.base_repr(int(values.max()), BASE)) if values.size else 1  # digits of the largest ("0": 1)
    powers = BASE ** np.arange(width - 1, -1, -1, dtype=np.int64)  # (width,)
    digits = (values[:, None] // powers) % BASE  # (n, width), most significant first
    shown = (values[:, None] >= powers) | (powers == 1)  # no leading zeros; 0 is "0"
    chars = np.concatenate([_DIGITS[digits], np.full((values.size, 1), ord(","), dtype=np.uint8)], axis=1)
    keep = np.concatenate([shown, np.ones((values.size, 1), dtype=bool)], axis=1)  # (n, width + 1)
    at = np.concatenate([[0], np.cumsum(keep.sum(axis=1))])
    return chars[keep].tobytes().decode("ascii"), at


def offsets(text: str) -> list[int]:
    """A bin's offsets from its top, in UNITs, from its base-36 text (the browser: parseInt(part, 36))."""
    return [int(part, BASE) for part in text.split(",")]
