"""The instrument: the sampling controls and the distributions they reshape, computed in the browser.

Once per distribution Python sends what the browser needs to apply the controls exactly (dashboard/payload.py). The
Vega-Lite transforms here (`pipeline`) apply repetition penalty → temperature → top-k → top-p → min-p → softmax, in
`generate`'s order (sampling.logits_processors), on every input event, for one distribution or several at once
(Compare's columns: a group each); the figures layer reads entropy after, mass kept and tokens left from them. Their
Python twin (`twin`) runs the same steps on the same payload, so a test holds both against `sampling.distribution`.
What is drawn from them (bars, the draw, Compare's shared axis): dashboard/instrument_charts.py. Each control is a
point selection bound to a range input; the spec depends only on what is shown and the controls' starting values,
never on the data, so it stays byte-identical while they move and along a path."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd

from dashboard import chart_style as style
from dashboard.payload import BASE, MOMENTS, UNIT, Payload, offsets
from dashboard.settings import CONTROLS, Settings

CONTROLLED = ("temperature", "top_k", "top_p", "min_p", "repetition_penalty")  # the browser's controls
CUT_DATA = "data_1"  # Vega-Lite's name for the "unpacked" layer's output (the first layer's data after the shared
# transforms); tests/test_instrument.py compiles the spec and checks it


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
    # 3b. a top-k cut inside a bin: that bin's tokens one by one (kind 2), in the order again, so exactly K are kept
    straddles = np.nonzero(bins & (K > 0) & (cn - c < K) & (K < cn))[0] if not greedy else []
    if len(straddles):
        j = int(straddles[0])
        t = l[j] - np.array(offsets(r["offs"].iloc[j])) * UNIT
        tokens = pd.DataFrame({"kind": 2, "i": r["i"].iloc[j], "id": -1, "label": "", "l": t, "pen": 0,
                               "p0": np.exp(t - p.lse), "c": 1})
        rows = pd.concat([r.drop(index=r.index[j]), tokens], ignore_index=True)
        return twin(Payload(rows, p.vocab, p.tail_top, p.lse, p.entropy_before), settings, u)
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
            t = l[j] - np.array(offsets(r["offs"].iloc[j])) * UNIT
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

def percent_text(e: str) -> str:
    """A Vega expression that writes probability `e` as numbers.probability does."""
    exponent = f"'' + toNumber(split(format({e}, '.1e'), 'e')[1])"  # "-7": each character to superscript
    for a, b in zip("-0123456789", "⁻⁰¹²³⁴⁵⁶⁷⁸⁹"):
        exponent = f"replace({exponent}, '{a}', '{b}')"
    return (f"(({e}) <= 0 ? '0%' : ({e}) >= 0.001 ? format(min({e}, 1), '.2%') : ({e}) >= 0.0001 ? "
            f"format({e}, '.3%') : split(format({e}, '.1e'), 'e')[0] + '×10' + {exponent})")


def control_params(anchor: Settings, controls) -> list[dict]:
    """One point selection per control, bound to a range input with the control's label and bounds."""
    params = []
    for name in reversed(controls):  # Vega draws the inputs in the reverse order of the parameters
        c = CONTROLS[name]
        params.append({
            "name": name, "select": {"type": "point", "fields": ["v"], "clear": False, "on": "none"},
            "value": [{"v": getattr(anchor, name)}],
            "bind": {"input": "range", "min": c.low, "max": c.high, "step": c.step, "name": c.label},
        })
    return params


def frame(p: Payload, u: float = 0.5, step: int = 0, group: int = 0, **columns) -> pd.DataFrame:
    """The rows the spec draws from: the payload's, with the constants of this distribution (u of the draw, its
    number `step`, which a click reports back, entropy before, vocabulary, log-sum-exp, the tail's top, its `group`,
    and any `columns` given) as columns, so that the spec itself never changes along a path: Streamlit then swaps
    the data of the chart in place, keeping its inputs and the browser's compiled view."""
    tail_top = p.tail_top if math.isfinite(p.tail_top) else -1e300
    return p.rows.assign(u=float(u), step=int(step), eb=p.entropy_before, vocab=p.vocab, lse=p.lse,
                         tail_top=tail_top, g=int(group), **columns)


def cut_total(field: str) -> str:
    """What the unpacked bins of this row's group add to `field` (0 where no cut falls inside a bin)."""
    return f"(indexof(cut_g, datum.g) < 0 ? 0 : data('{CUT_DATA}')[indexof(cut_g, datum.g)].{field})"


def signals(anchor: Settings, controls) -> list[dict]:
    """T, K, P, MP, R: a bound control's value (a selection holds [value] once moved), else the anchor's; then the
    groups whose bins the unpacking opened and the penalised tokens it kept."""
    out = []
    for short, name in zip(("T", "K", "P", "MP", "R"), CONTROLLED):
        fixed = repr(getattr(anchor, name))
        out.append({"name": short, "expr": f"isValid({name}.v) ? toNumber({name}.v) : {fixed}" if name in controls
                    else fixed})
    out.append({"name": "cut_g", "expr": f"pluck(data('{CUT_DATA}'), 'g')"})
    out.append({"name": "cut_kept", "expr": f"pluck(data('{CUT_DATA}'), 'kid')"})  # g · 2²⁰ + id
    return out


def pipeline() -> tuple[list[dict], dict]:
    """The shared transforms (every row: its processed logit s, weight w, order, whether it is kept; every group:
    the kept totals n0, z0, sx0, mass0) and the layer that unpacks the bins a cut falls in. A row's temperature and
    top-p are its group's own (columns ot, op) where it has them, else the controls'."""
    by = ["g"]
    # Σ_k M_k / (k! T^k) and Σ_k M_k / ((k−1)! T^k), by Horner's rule in 1/T (fewer operations a row: the browser
    # interprets every one)
    x = "(1 / datum.t)"
    s0 = s1 = ""
    for j in range(MOMENTS, 0, -1):
        s0 = f"{1 / math.factorial(j)!r} * datum.m{j}" + (f" + {x} * ({s0})" if s0 else "")
        s1 = f"{1 / math.factorial(j - 1)!r} * datum.m{j}" + (f" + {x} * ({s1})" if s1 else "")
    S0, S1 = f"{x} * ({s0})", f"{x} * ({s1})"
    xm = "(datum.mu / datum.t - datum.m)"
    order = [{"field": "s", "order": "descending"}, {"field": "i", "order": "ascending"}]
    transforms = [
        {"calculate": "isValid(datum.ot) ? datum.ot : T", "as": "t"},
        {"calculate": "isValid(datum.op) ? datum.op : P", "as": "tp"},
        {"calculate": "datum.t == 0", "as": "gr"},  # greedy
        # 1. repetition penalty (tokens the text holds): positive logits divided, negative ones multiplied
        # 2. then temperature: processed logits s (a bin by its top), weights exp(s − max); a bin's from its
        #    moments: Σ exp(t/T − m) = exp(μ/T − m) Σ_k M_k / (k! T^k)
        {"calculate": "(datum.pen ? (datum.l > 0 ? datum.l / R : datum.l * R) : datum.l) / (datum.gr ? 1 : datum.t)",
         "as": "s"},
        {"joinaggregate": [{"op": "max", "field": "s", "as": "m"}], "groupby": by},
        {"calculate": f"datum.kind == 1 && !datum.gr ? {S0} : 0", "as": "S0"},  # (once a bin: w and kwx use it)
        {"calculate": f"datum.gr ? (datum.kind == 0 && datum.s == datum.m ? 1 : 0) : datum.kind == 0 ? "
                      f"exp(datum.s - datum.m) : exp({xm}) * (datum.c + datum.S0)", "as": "w"},
        # 3. the draw's order: processed logit, most likely first
        {"window": [{"op": "sum", "field": "w", "as": "cw"}, {"op": "sum", "field": "c", "as": "cn"},
                    {"op": "row_number", "as": "rn"}], "sort": order, "groupby": by},
        # 3b. a top-k cut inside a bin: that bin's tokens one by one (kind 2), in the order again, so exactly the
        #     first K are kept (and top-p's base, top-k's mass, is exact)
        {"calculate": "datum.kind == 1 && K > 0 && !datum.gr && datum.cn - datum.c < K && K < datum.cn ? "
                      "split(datum.offs, ',') : [null]", "as": "kparts"},
        {"flatten": ["kparts"], "as": ["koff"]},
        {"calculate": "isValid(datum.koff) ? 2 : datum.kind", "as": "kind"},
        {"calculate": f"datum.kind == 2 ? datum.l - parseInt(datum.koff, {BASE}) * {UNIT!r} : datum.l", "as": "l"},
        {"calculate": "datum.kind == 2 ? datum.l / datum.t : datum.s", "as": "s"},
        {"calculate": "datum.kind == 2 ? exp(datum.s - datum.m) : datum.w", "as": "w"},
        {"calculate": "datum.kind == 2 ? 1 : datum.c", "as": "c"},
        {"calculate": "datum.kind == 2 ? exp(datum.l - datum.lse) : datum.p0", "as": "p0"},
        {"window": [{"op": "sum", "field": "w", "as": "cw"}, {"op": "sum", "field": "c", "as": "cn"},
                    {"op": "row_number", "as": "rn"}], "sort": order, "groupby": by},
        # 4. top-k keeps the first K; top-p the tokens with less than P of top-k's mass before them; min-p the
        #    tokens at least MP times as likely as the top one. Each keeps a prefix of that order: st is 1 for a
        #    kept row, 0 for a removed one, 2 for a bin a cut falls in (unpacked by the "cut" layer)
        {"calculate": "K == 0 || datum.cn <= K ? datum.w : 0", "as": "wk"},
        {"joinaggregate": [{"op": "sum", "field": "wk", "as": "zk"}], "groupby": by},
        {"calculate": "datum.gr ? (datum.rn == 1 ? 1 : 0) : K > 0 && datum.cn > K ? 0 : "
                      "datum.kind == 1 && ((datum.tp < 1 && datum.cw - datum.w < datum.tp * datum.zk && "
                      "datum.tp * datum.zk <= datum.cw) || "
                      "(MP > 0 && exp(datum.lo / datum.t - datum.m) < MP && MP <= exp(datum.s - datum.m))) ? 2 : "
                      "datum.tp < 1 && datum.rn > 1 && datum.cw - datum.w >= datum.tp * datum.zk ? 0 : "
                      "MP > 0 && exp((datum.kind == 1 ? datum.lo / datum.t : datum.s) - datum.m) < MP ? 0 : 1",
         "as": "st"},
        # a cut inside a bin (stmax 2): its tokens, and the penalised tokens moved into the tail (which may lie among
        # them), are decided one by one in their exact order by the "unpacked" layer, each against the whole rows
        # above it (cwn) plus those of them above it
        {"joinaggregate": [{"op": "max", "field": "st", "as": "stmax"}], "groupby": by},
        {"calculate": "datum.st == 2 || (datum.pen && datum.stmax == 2 && datum.s <= datum.tail_top / datum.t)",
         "as": "unpack"},
        {"calculate": "datum.unpack ? 0 : datum.w", "as": "wn"},
        {"window": [{"op": "sum", "field": "wn", "as": "cwn"}], "sort": order, "groupby": by},
        {"calculate": "datum.st == 1 && !datum.unpack", "as": "kept"},
        {"calculate": "datum.kept ? datum.c : 0", "as": "kc"},
        {"calculate": "datum.kept ? datum.w : 0", "as": "kw"},
        {"calculate": f"!datum.kept || datum.gr ? 0 : datum.kind != 1 ? datum.w * (datum.s - datum.m) : "
                      f"exp({xm}) * ({xm} * (datum.c + datum.S0) + {S1})", "as": "kwx"},
        {"calculate": "datum.kept ? datum.p0 : 0", "as": "kp"},
        {"joinaggregate": [{"op": "sum", "field": "kc", "as": "n0"}, {"op": "sum", "field": "kw", "as": "z0"},
                           {"op": "sum", "field": "kwx", "as": "sx0"}, {"op": "sum", "field": "kp", "as": "mass0"}],
         "groupby": by},
    ]
    # 5. a bin a cut falls in, unpacked into its tokens (offsets from its top in units of 1e-7), each decided
    #    alone; what they add reaches the other layers by group (_cut)
    unpacked = {
        "transform": [
            {"filter": "datum.unpack"},
            {"calculate": "datum.st == 2 ? split(datum.offs, ',') : ['-1']", "as": "parts"},
            {"flatten": ["parts"], "as": ["off"]},
            {"calculate": f"datum.st == 2 ? (datum.l - parseInt(datum.off, {BASE}) * {UNIT!r}) / datum.t : datum.s",
             "as": "v"},
            {"calculate": "exp(datum.v - datum.m)", "as": "wt"},
            {"window": [{"op": "sum", "field": "wt", "as": "within"}],
             "sort": [{"field": "v", "order": "descending"}], "groupby": by},
            {"calculate": "(datum.tp >= 1 || datum.cwn + datum.within - datum.wt < datum.tp * datum.zk) && "
                          "(MP <= 0 || datum.wt >= MP) ? 1 : 0", "as": "ok"},
            {"calculate": "datum.ok * datum.wt", "as": "okw"},
            {"calculate": "datum.ok * datum.wt * (datum.v - datum.m)", "as": "okwx"},
            {"calculate": "datum.ok * (datum.st == 2 ? exp(datum.v * datum.t - datum.lse) : datum.p0)", "as": "okp"},
            {"calculate": "datum.ok && datum.st != 2 ? datum.g * 1048576 + datum.id : -1", "as": "kid"},  # a kept
            # penalised token
            {"joinaggregate": [{"op": "sum", "field": "ok", "as": "n"}, {"op": "sum", "field": "okw", "as": "z"},
                               {"op": "sum", "field": "okwx", "as": "sx"}, {"op": "sum", "field": "okp", "as": "mass"}],
             "groupby": by},
            {"window": [{"op": "row_number", "as": "item"}], "groupby": by},
            {"filter": "datum.item == 1 || datum.kid >= 0"},  # the totals (on every row) and the kept penalised
        ],
        "mark": {"type": "text", "opacity": 0},
        "encoding": {"x": {"value": 0}, "y": {"value": 0}, "text": {"value": ""}},  # (one empty text per item)
    }
    return transforms, unpacked


def shared_controls(chart: dict) -> dict:
    """`chart` where no group has its own settings: the per-row temperature, top-p and greedy flag become the
    controls' signals T, P, G. The same numbers with fewer expressions per row, so a move redraws sooner."""
    import json
    import re

    chart = dict(chart)
    chart["transform"] = [t for t in chart["transform"] if t.get("as") not in ("t", "tp", "gr")]
    text = json.dumps(chart)
    text = re.sub(r"datum\.tp\b", "P", text)
    text = re.sub(r"datum\.t\b", "T", text)
    text = re.sub(r"datum\.gr\b", "G", text)
    out = json.loads(text)
    out["params"] = [*out["params"], {"name": "G", "expr": "T == 0"}]
    return out


def single(chart: dict) -> dict:
    """`chart` for one distribution (one group): shared_controls, and the per-group lookups of what the unpacked
    bins add become signals, and nothing is grouped."""
    import json

    text = json.dumps(shared_controls(chart))
    for field in ("n", "z", "sx", "mass"):
        text = text.replace(json.dumps(cut_total(field))[1:-1], f"cut_{field}")
    text = text.replace(', "groupby": ["g"]', "")
    out = json.loads(text)
    out["params"] = [*out["params"],
                     *({"name": f"cut_{f}", "expr": f"length(data('{CUT_DATA}')) ? data('{CUT_DATA}')[0].{f} : 0"}
                       for f in ("n", "z", "sx", "mass"))]
    return out


ZA = f"(datum.z0 + {cut_total('z')})"  # the kept weight of a row's group
SURVIVES = {"calculate": "datum.kept || (datum.unpack && indexof(cut_kept, datum.g * 1048576 + datum.id) >= 0)",
            "as": "survives"}


def figures_layer(y: float, groups: bool) -> dict:
    """The figures layer: per group, entropy before → after, mass kept, tokens left (a line each with `groups`)."""
    entropy = "'entropy ' + format(datum.eb, '.2f') + ' → ' + format(datum.Ha, '.2f') + ' bits'"
    lines = (f"width < 420 ? [datum.name + ':  ' + format(datum.N, ',') + ' left', format(datum.eb, '.2f') + ' → ' + "
             f"format(datum.Ha, '.2f') + ' bits', datum.massk + ' kept'] : "  # a phone: short
             f"[datum.name + ':  ' + datum.left, {entropy} + '  ·  mass kept ' + datum.massk]" if groups else
             "width < 420 ? ['Entropy ' + format(datum.eb, '.2f') + ' → ' + format(datum.Ha, '.2f') + ' bits', "
             "datum.mass, datum.left] : [datum.entropy, datum.mass + '  ·  ' + datum.left]")  # three short lines on a phone
    return {
        "transform": [
            {"filter": "datum.rn == 1"},
            {"calculate": f"datum.n0 + {cut_total('n')}", "as": "N"},
            {"calculate": f"datum.gr ? 0 : (log({ZA}) - (datum.sx0 + {cut_total('sx')}) / {ZA}) / LN2", "as": "Ha"},
            {"calculate": f"datum.mass0 + {cut_total('mass')}", "as": "Mk"},
            {"calculate": "'Entropy ' + format(datum.eb, '.2f') + ' bits before → ' + format(datum.Ha, '.2f') + ' bits after'",
             "as": "entropy"},
            {"calculate": percent_text("datum.Mk"), "as": "massk"},
            {"calculate": "'Mass kept ' + datum.massk", "as": "mass"},
            {"calculate": ("format(datum.N, ',') + ' tokens left'" if groups else
                           "'Tokens left ' + format(datum.N, ',') + ' of ' + format(datum.vocab, ',')"), "as": "left"},
            {"calculate": lines, "as": "lines"},
            {"calculate": f"{y} + (width < 420 ? 57 : 38) * datum.g", "as": "fy"},
            {"calculate": ("'Figures: ' + (isValid(datum.name) ? datum.name + ': ' : '') + 'tokens left: ' + datum.N + "
                           "'; entropy after, bits: ' + datum.Ha + '; mass kept: ' + datum.Mk"), "as": "exact"},
        ],
        "mark": {"type": "text", "align": "left", "baseline": "top", "fontSize": 14 if not groups else 13,
                 "lineHeight": 19, "color": style.TEXT, "limit": {"expr": "width"}},
        "encoding": {"x": {"value": 0},
                     "y": {"field": "fy", "type": "quantitative", "scale": None} if groups else {"value": y},
                     "text": {"field": "lines"}, "description": {"field": "exact", "type": "nominal"}},
    }
