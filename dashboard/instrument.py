"""The next-token instrument: the sampling controls and the distribution they reshape, computed in the browser.

Once per token path Python sends what the browser needs to apply the controls exactly (`payload`): the top 1,000
tokens one by one (plus every token the text already holds: the repetition penalty moves only those), and the rest
of the vocabulary (the tail) as bins of tokens whose raw logits lie within 0.05 of each other. A bin carries its
count, raw probability and central moments, which give its summed weight exp(logit / T) at any temperature to
~1e-12, and its logits themselves, offsets from the bin's top in units of 1e-7, which the browser unpacks only for a
bin where a top-p or min-p cut falls: tokens left is exact wherever the cut lands.

The Vega-Lite spec (`spec`) applies repetition penalty → temperature → top-k → top-p → min-p → softmax, in
`generate`'s order (sampling.logits_processors), on every input event and draws the bars, the figures (entropy
before and after, mass kept, tokens left) and the one draw. Its Python twin (`twin`) runs the same steps on the same
payload, so a test holds both against `sampling.distribution`. Each control is a point selection bound to a range
input, so Streamlit reports the values after a move settles (`on_select`) and the rest of the page follows; the
spec depends only on the payload and the controls' starting values, so it stays byte-identical while they move."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd

from dashboard import chart_style as style
from dashboard.settings import CONTROLS, Settings

TOP_ROWS = 200  # tokens sent one by one
BIN_WIDTH = 0.3  # logits: with 8 moments a bin's weight is exact to ~1e-10 of itself where it counts
BIN_COUNT = 400  # at most this many tokens in a bin (an unpacked bin is this many rows at most)
MOMENTS = 8  # central moments M1..M8 of a bin's logits
UNIT = 1e-7  # logit offsets within a bin, in these units (an error ≤ 5e-8 in a logit)
CONTROLLED = ("temperature", "top_k", "top_p", "min_p", "repetition_penalty")  # the browser's controls
VIEWS = ("probability", "log-probability", "logit")
SERIES_COLOURS = {"before": "#a5b4fc", "before (removed)": "#d1d5db", "after": "#4f46e5"}
PICK_COLOUR, U_COLOUR, OTHER_COLOUR = "#f59e0b", "#b91c1c", "#e5e7eb"
STRETCH_COLOURS = ("#c7d2fe", "#a5b4fc")
DRAWN = 12  # stretches named in the draw
ROW_H = 26  # px per token: its before and after bars
FIGURES_H = 64  # px of the figures above the bars (three lines on a phone)
BARS_TOP = FIGURES_H + 62  # the legend, then the bars' x axis, between the figures and the bars
DRAW_GAP = 64  # px from the bars to the draw's bar (its caption and u's label)
DRAW_BAR_H = 34
CUT_DATA = "data_1"  # Vega-Lite's name for the "unpacked" layer's output (the first layer's data after the shared
# transforms); tests/test_instrument.py compiles the spec and checks it


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


def payload(logits, prev_ids, labels, top: int = TOP_ROWS) -> Payload:
    """The instrument's data for raw `logits` (vocab,) after the text `prev_ids`; `labels(ids)` gives the shown
    text of those tokens (unique, escaped by the chart)."""
    raw = np.asarray(logits, dtype=np.float32).astype(np.float64).reshape(-1)  # (vocab,)
    finite = np.isfinite(raw)
    ids = np.nonzero(finite)[0]
    order = ids[np.argsort(-raw[ids], kind="stable")]  # finite ids, most likely first (ties by id)
    lse = float(np.logaddexp.reduce(raw[order]))
    probs = np.exp(raw[order] - lse)
    entropy = float(-(probs[probs > 0] * np.log2(probs[probs > 0])).sum())
    penalised = np.zeros(raw.shape[0], dtype=bool)
    seen = np.asarray(sorted(set(int(i) for i in prev_ids)), dtype=np.int64)
    if seen.size:
        penalised[seen[(seen >= 0) & (seen < raw.shape[0])]] = True
    rank = np.empty(raw.shape[0], dtype=np.int64)
    rank[order] = np.arange(order.size)
    # the `top` most likely tokens the penalty leaves alone, and every penalised one (the penalty moves them): the
    # top-k of any setting (k ≤ 200) is among them
    free = order[~penalised[order]]
    single = np.sort(np.concatenate([free[:top], order[penalised[order]]]).astype(np.int64))
    single = single[np.argsort(rank[single], kind="stable")]
    names = labels([int(i) for i in single])
    tokens = pd.DataFrame({
        "kind": 0, "i": rank[single], "id": single, "label": names, "l": raw[single],
        "pen": penalised[single].astype(int), "p0": np.exp(raw[single] - lse), "c": 1,
    })
    tail = free[top:]
    bins = _bins(raw[tail], lse, start=len(order))
    rows = pd.concat([tokens, bins], ignore_index=True) if len(bins) else tokens
    tail_top = float(bins["l"].iloc[0]) if len(bins) else float("-inf")
    return Payload(rows, int(order.size), tail_top, lse, entropy)


def _bins(values: np.ndarray, lse: float, start: int) -> pd.DataFrame:
    """Tail bins of the sorted (descending) logits `values`: runs at most BIN_WIDTH wide and BIN_COUNT long."""
    out, n, b = [], values.size, 0
    while b < n:
        hi = values[b]
        e = int(np.searchsorted(-values, -(hi - BIN_WIDTH), side="right"))  # values ≥ hi − width
        e = min(max(e, b + 1), b + BIN_COUNT, n)
        v = values[b:e]
        offsets = np.rint((hi - v) / UNIT).astype(np.int64)
        t = hi - offsets * UNIT  # the logits as the browser unpacks them
        mu = float(t.mean())
        d = t - mu
        row = {"kind": 1, "i": start + len(out), "id": -1, "label": "", "l": float(hi), "pen": 0,
               "p0": float(np.exp(t - lse).sum()), "c": int(t.size), "lo": float(t[-1]), "mu": mu,
               "offs": ",".join(map(str, offsets.tolist()))}
        for k in range(1, MOMENTS + 1):
            row[f"m{k}"] = float((d ** k).sum())
        out.append(row)
        b = e
    return pd.DataFrame(out)


# --------------------------------------------------------------------------- the twin: the spec's steps in Python


@dataclass(frozen=True)
class Figures:
    """What the instrument shows for one setting: probabilities after the controls of the token rows, and the
    figures."""

    after: dict[int, float]  # token id → probability after the controls (token rows only)
    kept: int  # tokens left
    mass_kept: float
    entropy_after: float  # bits
    entropy_before: float  # bits
    picked: int | None  # the token id u lands on (None: a tail token)
    rank_after: int  # of the picked token


def _series(m: np.ndarray, t: float) -> tuple[np.ndarray, np.ndarray]:
    """(S0, S1) of bins with central moments m (bins, MOMENTS): Σ exp(d/T) and Σ (d/T) exp(d/T) by their series."""
    s0 = np.zeros(m.shape[0])  # the count term (k = 0) is the caller's
    s1 = np.zeros(m.shape[0])
    for k in range(1, MOMENTS + 1):
        s0 = s0 + m[:, k - 1] / (math.factorial(k) * t ** k)
        s1 = s1 + m[:, k - 1] / (math.factorial(k - 1) * t ** k)
    return s0, s1


def twin(p: Payload, settings: Settings, u: float = 0.5) -> Figures:
    """The spec's transforms, step for step, on `p` for `settings` (the controls in CONTROLLED)."""
    r = p.rows
    kind, pen, l, c = r["kind"].to_numpy(), r["pen"].to_numpy(), r["l"].to_numpy(), r["c"].to_numpy()
    lo = r["lo"].to_numpy() if "lo" in r else np.full(len(r), np.nan)
    mu = r["mu"].to_numpy() if "mu" in r else np.full(len(r), np.nan)
    T, K, P, MP, R = (settings.temperature, settings.top_k, settings.top_p, settings.min_p,
                      settings.repetition_penalty)
    greedy, bins = T == 0, kind == 1
    # 1. repetition penalty on the tokens the text holds: positive logits divided, negative ones multiplied
    lp = np.where((kind == 0) & (pen == 1), np.where(l > 0, l / R, l * R), l)
    # 2. temperature: processed logits s (a bin by its top), weights exp(s − max); a bin's from its moments
    s = lp if greedy or T == 1 else lp / T
    m = s.max()
    w, wx = np.zeros(len(r)), np.zeros(len(r))
    if greedy:
        w = np.where(~bins & (s == m), 1.0, 0.0)
    else:
        w = np.where(bins, 0.0, np.exp(s - m))
        wx = np.where(bins, 0.0, w * (s - m))
        if bins.any():  # Σ exp(t/T − m) = exp(μ/T − m) Σ_k M_k / (k! T^k), and its Σ (t/T − m) exp(…)
            mom = r.loc[bins, [f"m{k}" for k in range(1, MOMENTS + 1)]].to_numpy()
            s0, s1 = _series(mom, T)
            xm = mu[bins] / T - m
            e = np.exp(xm)
            w[bins] = e * (c[bins] + s0)
            wx[bins] = e * (xm * (c[bins] + s0) + s1)
    # 3. the order a draw lays tokens out: processed logit, most likely first
    order = np.lexsort((r["i"].to_numpy(), -s))
    rn = np.empty(len(r), dtype=np.int64)
    rn[order] = np.arange(1, len(r) + 1)
    cw, cn = np.empty(len(r)), np.empty(len(r))
    cw[order], cn[order] = np.cumsum(w[order]), np.cumsum(c[order])
    # 4. top-k keeps the first K; top-p the tokens with less than P of top-k's mass before them; min-p the tokens
    #    at least MP times as likely as the top one. Each keeps a prefix of that order; a bin a cut falls in is
    #    unpacked and its tokens decided one by one.
    keep_k = (K == 0) | (cn <= K)
    pz = P * w[keep_k].sum()
    with np.errstate(invalid="ignore", divide="ignore"):
        low = np.where(bins, lo / (T or 1) - m, s - m)
    cut = ((not greedy) & bins & keep_k & (((P < 1) & (cw - w < pz) & (pz <= cw))
                                          | ((MP > 0) & (np.exp(low) < MP) & (MP <= np.exp(s - m)))))
    st = keep_k & ~cut
    if P < 1:
        st &= (cw - w < pz) | (rn == 1)
    if MP > 0 and not greedy:
        st &= np.exp(low) >= MP
    if greedy:
        st, cut = rn == 1, np.zeros(len(r), dtype=bool)
    # a cut inside a bin: its tokens, and the penalised tokens the penalty moved into the tail (which may lie among
    # them), are decided one by
    # one in their exact order, each against the whole rows above it (cwn) plus those of them above it
    unpack = cut | ((pen == 1) & (s <= p.tail_top / (T or 1)) & cut.any())
    kept = st & ~unpack
    cwn = np.empty(len(r))
    cwn[order] = np.cumsum(np.where(unpack, 0.0, w)[order])
    n, za, sx, mass = c[kept].sum(), w[kept].sum(), wx[kept].sum(), r["p0"].to_numpy()[kept].sum()
    items = []  # (scaled logit, weight, whole rows' weight above, raw probability, row of a penalised token)
    for j in np.nonzero(unpack)[0]:
        if cut[j]:
            t = l[j] - np.array([int(o) for o in r["offs"].iloc[j].split(",")]) * UNIT
            items += [(v / T, math.exp(v / T - m), cwn[j], math.exp(v - p.lse), None) for v in t]
        else:
            items.append((s[j], w[j], cwn[j], r["p0"].iloc[j], j))
    items.sort(key=lambda it: -it[0])
    above, unpacked_kept = 0.0, []
    for v, wt, base, p0, j in items:
        ok = (P >= 1 or base + above < pz) and (MP <= 0 or wt >= MP)
        above += wt
        if ok:
            n, za, sx, mass = n + 1, za + wt, sx + wt * (v - m), mass + p0
            if j is not None:
                unpacked_kept.append(j)
    kept[unpacked_kept] = True  # (for their probabilities after; they were counted above)
    # 5. softmax over what is kept: probabilities after, entropy after, where u lands
    if greedy:
        za, sx = 1.0, 0.0
    entropy = 0.0 if greedy else (math.log(za) - sx / za) / math.log(2)
    after = {int(r["id"].iloc[j]): (float(w[j] / za) if kept[j] else 0.0) for j in range(len(r)) if kind[j] == 0}
    picked, rank = None, 0
    for j in order:  # the whole kept row whose stretch holds u
        if kept[j] and not unpack[j] and (cw[j] - w[j]) / za <= u < cw[j] / za:
            picked, rank = (int(r["id"].iloc[j]) if kind[j] == 0 else None), int(cn[j])
            break
    return Figures(after, int(n), float(mass), float(entropy), p.entropy_before, picked, rank)


# --------------------------------------------------------------------------- the Vega-Lite spec

def _fmt(e: str) -> str:
    """A Vega expression that writes probability `e` as numbers.probability does."""
    exponent = f"'' + toNumber(split(format({e}, '.1e'), 'e')[1])"  # "-7": each character to superscript
    for a, b in zip("-0123456789", "⁻⁰¹²³⁴⁵⁶⁷⁸⁹"):
        exponent = f"replace({exponent}, '{a}', '{b}')"
    return (f"(({e}) <= 0 ? '0%' : ({e}) >= 0.001 ? format(min({e}, 1), '.2%') : ({e}) >= 0.0001 ? "
            f"format({e}, '.3%') : split(format({e}, '.1e'), 'e')[0] + '×10' + {exponent})")


def _control_params(anchor: Settings) -> list[dict]:
    """One point selection per control, bound to a range input with the control's label and bounds."""
    params = []
    for name in reversed(CONTROLLED):  # Vega draws the inputs in the reverse order of the parameters
        c = CONTROLS[name]
        params.append({
            "name": name, "select": {"type": "point", "fields": ["v"], "clear": False, "on": "none"},
            "value": [{"v": getattr(anchor, name)}],
            "bind": {"input": "range", "min": c.low, "max": c.high, "step": c.step, "name": c.label},
        })
    return params


def frame(p: Payload, u: float, step: int) -> pd.DataFrame:
    """The rows the spec draws from: the payload's, with the constants of this position (u of the draw, its number
    `step`, which a click reports back,
    entropy before, vocabulary, log-sum-exp, the tail's top) as columns, so that the spec itself never changes
    along a path: Streamlit then swaps the data of the chart in place, keeping its inputs and the browser's
    compiled view."""
    tail_top = p.tail_top if math.isfinite(p.tail_top) else -1e300
    return p.rows.assign(u=float(u), step=int(step), eb=p.entropy_before, vocab=p.vocab, lse=p.lse,
                         tail_top=tail_top)


def spec(anchor: Settings, view: str = "probability", log_scale: bool = False, shown: int = 15) -> dict:
    """The instrument as a Vega-Lite dict (its data: `frame`): bars of the `shown` most likely tokens before and
    after the controls, the figures above them, one draw below; the controls start at `anchor`."""
    if view not in VIEWS:
        raise ValueError(f"`view` must be one of {VIEWS}, got {view!r}")
    n = int(shown)
    bars_bottom = BARS_TOP + n * ROW_H
    draw_top = bars_bottom + DRAW_GAP
    height = draw_top + DRAW_BAR_H
    S0 = " + ".join(f"datum.m{j} / {float(math.factorial(j))!r} / pow(T, {j})" for j in range(1, MOMENTS + 1))
    S1 = " + ".join(f"datum.m{j} / {float(math.factorial(j - 1))!r} / pow(T, {j})" for j in range(1, MOMENTS + 1))
    xm = "(datum.mu / T - datum.m)"
    cut = CUT_DATA
    params = [  # the controls' values (a bound selection holds [value] once moved), then what the unpacked bins add
        *({"name": short, "expr": f"isValid({name}.v) ? toNumber({name}.v) : {getattr(anchor, name)!r}"}
          for short, name in zip(("T", "K", "P", "MP", "R"), CONTROLLED)),
        {"name": "G", "expr": "T == 0"},
        *({"name": f"cut_{f}", "expr": f"length(data('{cut}')) ? data('{cut}')[0].{f} : 0"}
          for f in ("n", "z", "sx", "mass")),
        {"name": "cut_kept", "expr": f"pluck(data('{cut}'), 'kid')"},  # penalised tokens the unpacking kept
    ]
    transforms = [
        # 1. repetition penalty (tokens the text holds): positive logits divided, negative ones multiplied
        # 2. then temperature: processed logits s (a bin by its top), weights exp(s − max); a bin's from its
        #    moments: Σ exp(t/T − m) = exp(μ/T − m) Σ_k M_k / (k! T^k)
        {"calculate": "(datum.pen ? (datum.l > 0 ? datum.l / R : datum.l * R) : datum.l) / (G ? 1 : T)", "as": "s"},
        {"joinaggregate": [{"op": "max", "field": "s", "as": "m"}]},
        {"calculate": f"G ? (datum.kind == 0 && datum.s == datum.m ? 1 : 0) : datum.kind == 0 ? "
                      f"exp(datum.s - datum.m) : exp({xm}) * (datum.c + {S0})", "as": "w"},
        # 3. the draw's order: processed logit, most likely first
        {"window": [{"op": "sum", "field": "w", "as": "cw"}, {"op": "sum", "field": "c", "as": "cn"},
                    {"op": "row_number", "as": "rn"}],
         "sort": [{"field": "s", "order": "descending"}, {"field": "i", "order": "ascending"}]},
        # 4. top-k keeps the first K; top-p the tokens with less than P of top-k's mass before them; min-p the
        #    tokens at least MP times as likely as the top one. Each keeps a prefix of that order: st is 1 for a
        #    kept row, 0 for a removed one, 2 for a bin a cut falls in (unpacked by the "cut" layer)
        {"calculate": "K == 0 || datum.cn <= K ? datum.w : 0", "as": "wk"},
        {"joinaggregate": [{"op": "sum", "field": "wk", "as": "zk"}]},
        {"calculate": "G ? (datum.rn == 1 ? 1 : 0) : K > 0 && datum.cn > K ? 0 : "
                      "datum.kind == 1 && ((P < 1 && datum.cw - datum.w < P * datum.zk && P * datum.zk <= datum.cw) || "
                      "(MP > 0 && exp(datum.lo / T - datum.m) < MP && MP <= exp(datum.s - datum.m))) ? 2 : "
                      "P < 1 && datum.rn > 1 && datum.cw - datum.w >= P * datum.zk ? 0 : "
                      "MP > 0 && exp((datum.kind == 1 ? datum.lo / T : datum.s) - datum.m) < MP ? 0 : 1", "as": "st"},
        # a cut inside a bin (stmax 2): its tokens, and the penalised tokens moved into the tail (which may lie among them), are
        # decided one by one in their exact order by the "unpacked" layer, each against the whole rows above it
        # (cwn) plus those of them above it
        {"joinaggregate": [{"op": "max", "field": "st", "as": "stmax"}]},
        {"calculate": "datum.st == 2 || (datum.pen && datum.stmax == 2 && datum.s <= datum.tail_top / T)",
         "as": "unpack"},
        {"calculate": "datum.unpack ? 0 : datum.w", "as": "wn"},
        {"window": [{"op": "sum", "field": "wn", "as": "cwn"}],
         "sort": [{"field": "s", "order": "descending"}, {"field": "i", "order": "ascending"}]},
        {"calculate": "datum.st == 1 && !datum.unpack", "as": "kept"},
        {"calculate": "datum.kept ? datum.c : 0", "as": "kc"},
        {"calculate": "datum.kept ? datum.w : 0", "as": "kw"},
        {"calculate": f"!datum.kept || G ? 0 : datum.kind == 0 ? datum.w * (datum.s - datum.m) : "
                      f"exp({xm}) * ({xm} * (datum.c + {S0}) + {S1})", "as": "kwx"},
        {"calculate": "datum.kept ? datum.p0 : 0", "as": "kp"},
        {"joinaggregate": [{"op": "sum", "field": "kc", "as": "n0"}, {"op": "sum", "field": "kw", "as": "z0"},
                           {"op": "sum", "field": "kwx", "as": "sx0"}, {"op": "sum", "field": "kp", "as": "mass0"}]},
    ]
    # 5. a bin a cut falls in, unpacked into its tokens (offsets from its top in units of 1e-7), each decided
    #    alone; what they add reaches the other layers as cut_n, cut_z, cut_sx, cut_mass
    unpacked = {
        "transform": [
            {"filter": "datum.unpack"},
            {"calculate": "datum.st == 2 ? split(datum.offs, ',') : ['-1']", "as": "parts"},
            {"flatten": ["parts"], "as": ["off"]},
            {"calculate": f"datum.st == 2 ? (datum.l - toNumber(datum.off) * {UNIT!r}) / T : datum.s", "as": "v"},
            {"calculate": "exp(datum.v - datum.m)", "as": "wt"},
            {"window": [{"op": "sum", "field": "wt", "as": "within"}],
             "sort": [{"field": "v", "order": "descending"}]},
            {"calculate": "(P >= 1 || datum.cwn + datum.within - datum.wt < P * datum.zk) && "
                          "(MP <= 0 || datum.wt >= MP) ? 1 : 0", "as": "ok"},
            {"calculate": "datum.ok * datum.wt", "as": "okw"},
            {"calculate": "datum.ok * datum.wt * (datum.v - datum.m)", "as": "okwx"},
            {"calculate": "datum.ok * (datum.st == 2 ? exp(datum.v * T - datum.lse) : datum.p0)", "as": "okp"},
            {"calculate": "datum.ok && datum.st != 2 ? datum.id : -1", "as": "kid"},  # a kept penalised token
            {"joinaggregate": [{"op": "sum", "field": "ok", "as": "n"}, {"op": "sum", "field": "okw", "as": "z"},
                               {"op": "sum", "field": "okwx", "as": "sx"}, {"op": "sum", "field": "okp", "as": "mass"}]},
            {"window": [{"op": "row_number", "as": "item"}]},
            {"filter": "datum.item == 1 || datum.kid >= 0"},  # the totals (on every row) and the kept penalised
        ],
        "mark": {"type": "text", "opacity": 0},
        "encoding": {"x": {"value": 0}, "y": {"value": 0}, "text": {"value": ""}},  # (one empty text per item)
    }
    za = "(datum.z0 + cut_z)"
    value = {"probability": "datum.p0", "log-probability": "log(datum.p0)", "logit": "datum.l"}[view]
    value_after = {"probability": "datum.after", "log-probability": "log(datum.after)", "logit": "datum.s"}[view]
    title = {"probability": "probability", "log-probability": "log-probability (natural log)", "logit": "logit"}[view]
    x_scale = {"type": "log"} if (log_scale and view == "probability") else {"zero": view == "probability"}
    y_scale = {"range": [BARS_TOP, bars_bottom], "paddingInner": 0.15, "paddingOuter": 0.1}
    tooltip = [{"field": "label", "type": "nominal", "title": "token"}, {"field": "id", "type": "quantitative"},
               {"field": "rank", "type": "quantitative"},
               {"field": "p_before", "type": "nominal", "title": "probability before"},
               {"field": "p_after", "type": "nominal", "title": "probability after"},
               {"field": "survives", "type": "nominal"},
               {"field": "after", "type": "quantitative", "title": "after, exact", "format": ".17g"}]
    # (a mark's aria-label lists its tooltip fields: what a screen reader says, and what the browser tests read)
    bars = {
        "transform": [
            {"filter": f"datum.kind == 0 && datum.i < {n}"},
            {"calculate": "datum.kept || (datum.unpack && indexof(cut_kept, datum.id) >= 0)", "as": "survives"},
            {"calculate": f"datum.survives ? datum.w / {za} : 0", "as": "after"},
            {"calculate": "datum.i + 1", "as": "rank"},
            {"calculate": _fmt("datum.p0"), "as": "p_before"},
            {"calculate": "datum.survives ? " + _fmt("datum.after") + " : 'removed'", "as": "p_after"},
            {"calculate": value, "as": "vb"},
            {"calculate": f"datum.survives && datum.after > 0 ? {value_after} : null", "as": "va"},
            {"fold": ["vb", "va"], "as": ["which", "value"]},
            {"filter": "isValid(datum.value) && isFinite(datum.value)" + (
                " && datum.value > 0" if log_scale and view == "probability" else "")},
            {"calculate": "datum.which == 'va' ? 'after' : datum.survives ? 'before' : 'before (removed)'",
             "as": "series"},
            {"calculate": "datum.which == 'va' ? 1 : 0", "as": "slot"},
        ],
        "params": [*_control_params(anchor),  # (a click on the same token at another position is a new selection)
                   {"name": "pick", "select": {"type": "point", "fields": ["id", "step"], "on": "click"}}],
        "mark": {"type": "bar"},
        "encoding": {
            "y": {"field": "label", "type": "nominal", "sort": {"field": "i", "op": "min"}, "title": None,
                  "scale": y_scale,
                  "axis": {"labelOverlap": False, "labelLimit": style.TOKEN_LABEL_LIMIT,
                           "labelFontSize": style.LABEL_SIZE}},
            "yOffset": {"field": "slot", "type": "ordinal", "scale": {"domain": [0, 1], "paddingInner": 0.1}},
            "x": {"field": "value", "type": "quantitative", "title": title, "scale": x_scale, "stack": None,
                  "axis": {"format": "%" if view == "probability" else "", "orient": "top",
                           "offset": -(BARS_TOP - 6)}},
            "color": {"field": "series", "type": "nominal",
                      "scale": {"domain": list(SERIES_COLOURS), "range": list(SERIES_COLOURS.values())},
                      "legend": {"title": None, "orient": "none", "legendX": 0, "legendY": FIGURES_H - 4,
                                 "direction": "horizontal"}},
            "tooltip": tooltip,
        },
    }
    figures = {
        "transform": [
            {"filter": "datum.rn == 1"},
            {"calculate": "datum.n0 + cut_n", "as": "N"},
            {"calculate": f"G ? 0 : (log({za}) - (datum.sx0 + cut_sx) / {za}) / LN2", "as": "Ha"},
            {"calculate": "datum.mass0 + cut_mass", "as": "Mk"},
            {"calculate": "'Entropy ' + format(datum.eb, '.2f') + ' bits before → ' + format(datum.Ha, '.2f') + ' bits after'",
             "as": "entropy"},
            {"calculate": "'Mass kept ' + " + _fmt("datum.Mk"), "as": "mass"},
            {"calculate": "'Tokens left ' + format(datum.N, ',') + ' of ' + format(datum.vocab, ',')", "as": "left"},
            {"calculate": "width < 420 ? [datum.entropy, datum.mass, datum.left] : "  # three short lines on a phone
                          "[datum.entropy, datum.mass + '  ·  ' + datum.left]", "as": "lines"},
            {"calculate": "'Figures: tokens left: ' + datum.N + '; entropy after, bits: ' + datum.Ha + '; mass kept: ' + "
                          "datum.Mk", "as": "exact"},
        ],
        "mark": {"type": "text", "align": "left", "baseline": "top", "fontSize": 14, "lineHeight": 19,
                 "color": style.TEXT},
        "encoding": {"x": {"value": 0}, "y": {"value": 0}, "text": {"field": "lines"},
                     "description": {"field": "exact", "type": "nominal"}},
    }
    # the draw: each kept token owns a stretch of [0, 1] as long as its probability, in the draw's order
    lands = f"(datum.cw - datum.w) / {za} <= datum.u && datum.u < datum.cw / {za}"  # u falls in this row's stretch
    stretch = [{"calculate": f"(datum.cw - datum.w) / {za}", "as": "start"},
               {"calculate": f"datum.cw / {za}", "as": "end"},
               {"calculate": "datum.start <= datum.u && datum.u < datum.end", "as": "picked"},
               {"calculate": f"datum.kind == 0 ? datum.label : 'a token past the top {TOP_ROWS:,}'", "as": "name"}]
    named = {"filter": f"datum.kept && ((datum.kind == 0 && datum.cn <= {DRAWN}) || {lands})"}  # first: cheap
    draw_x = {"field": "start", "type": "quantitative", "scale": {"domain": [0, 1]},
              "axis": {"format": "%", "title": "one draw: cumulative probability after the controls"}}
    stretches = {
        "transform": [named, *stretch,
                      {"calculate": f"datum.picked ? '{PICK_COLOUR}' : datum.cn % 2 ? '{STRETCH_COLOURS[1]}' : "
                                    f"'{STRETCH_COLOURS[0]}'", "as": "colour"},
                      {"calculate": _fmt("datum.end - datum.start"), "as": "shown"},
                      {"calculate": "datum.cn", "as": "rank after"}],
        "mark": {"type": "bar", "stroke": "white", "strokeWidth": 1},
        "encoding": {"x": draw_x, "x2": {"field": "end"}, "y": {"value": draw_top},
                     "y2": {"value": draw_top + DRAW_BAR_H},
                     "color": {"field": "colour", "type": "nominal", "scale": None, "legend": None},
                     "tooltip": [{"field": "name", "type": "nominal", "title": "token"},
                                 {"field": "rank after", "type": "quantitative"},
                                 {"field": "shown", "type": "nominal", "title": "probability"}]},
    }
    other = {
        "transform": [{"filter": f"datum.kept && datum.kind == 0 && datum.cn == {DRAWN} && datum.n0 + cut_n > {DRAWN}"},
                      *stretch,
                      {"calculate": f"format(datum.n0 + cut_n - {DRAWN}, ',') + ' other tokens'", "as": "name"}],
        "mark": {"type": "bar", "color": OTHER_COLOUR, "stroke": "white", "strokeWidth": 1},
        "encoding": {"x": {"field": "end", "type": "quantitative"}, "x2": {"datum": 1},
                     "y": {"value": draw_top}, "y2": {"value": draw_top + DRAW_BAR_H},
                     "tooltip": [{"field": "name", "type": "nominal", "title": "the rest"}]},
    }
    span = "((datum.end - datum.start) * width)"  # px: the draw's x runs over the whole width (its scale is not 'x')
    names = {
        "transform": [named, *stretch, {"calculate": "(datum.start + datum.end) / 2", "as": "mid"}],
        "mark": {"type": "text", "fontSize": 11, "color": style.TEXT, "limit": {"expr": f"{span} - 6"},
                 "opacity": {"expr": f"{span} >= min(34, 7 * length(datum.name) + 6) ? 1 : 0"}},
        "encoding": {"x": {"field": "mid", "type": "quantitative"}, "y": {"value": draw_top + DRAW_BAR_H / 2},
                     "text": {"field": "name"}},
    }
    spot = {
        "transform": [{"filter": f"datum.kept && {lands}"}, *stretch,
                      {"calculate": "'u = ' + format(datum.u, '.4f') + ' → ' + (datum.kind == 0 ? datum.label : 'a token past the top "
                                    f"{TOP_ROWS:,} (rank ' + format(datum.cn, ',') + ')')", "as": "ulabel"},
                      {"calculate": "'Draw: u lands on id: ' + (datum.kind == 0 ? datum.id : -1) + '; rank after: ' + "
                                    "datum.cn", "as": "exact"}],
        "layer": [
            {"mark": {"type": "rule", "color": U_COLOUR, "strokeWidth": 2},
             "encoding": {"x": {"field": "u", "type": "quantitative"}, "y": {"value": draw_top - 12},
                          "y2": {"value": draw_top + DRAW_BAR_H + 4}}},
            {"mark": {"type": "text", "color": U_COLOUR, "fontWeight": "bold", "fontSize": style.LABEL_SIZE,
                      "align": {"expr": "datum.u > 0.5 ? 'right' : 'left'"},  # towards the wider side
                      "dx": {"expr": "datum.u > 0.5 ? -4 : 4"},
                      "limit": {"expr": "datum.u > 0.5 ? datum.u * width - 4 : (1 - datum.u) * width - 4"}},
             "encoding": {"x": {"field": "u", "type": "quantitative"}, "y": {"value": draw_top - 20},
                          "text": {"field": "ulabel"}, "description": {"field": "exact", "type": "nominal"}}},
        ],
    }
    return {
        "$schema": "https://vega.github.io/schema/vega-lite/v6.json",
        "params": params,
        "transform": transforms,
        "height": height,
        "layer": [unpacked, figures, bars, {"layer": [other, stretches, names, spot]}],
        "resolve": {"scale": {"x": "independent", "y": "independent", "color": "independent"}},
        "autosize": {"type": "fit-x", "contains": "padding"}, "padding": style.PADDING,
        "config": style.CONFIG,
    }
