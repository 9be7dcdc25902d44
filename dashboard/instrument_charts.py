"""The instruments' drawings: Next token's (bars before and after, the figures, one draw) and Compare's (every
column on one token axis), as Vega-Lite dicts over the transforms and twin of dashboard/instrument.py."""

from __future__ import annotations

import math

from dashboard import chart_style as style
from dashboard.instrument import (CONTROLLED, SURVIVES, ZA, control_params, cut_total, figures_layer, percent_text,
                                  pipeline, shared_controls, signals, single)
from dashboard.payload import TOP_ROWS
from dashboard.settings import Settings

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


def spec(anchor: Settings, view: str = "probability", log_scale: bool = False, shown: int = 15,
         controls=CONTROLLED, draw: bool = True) -> dict:
    """The instrument as a Vega-Lite dict (its data: `frame`): bars of the `shown` most likely tokens before and
    after the controls, the figures above them and (with `draw`) one draw below; the `controls` start at `anchor`
    (the others stay at its values)."""
    if view not in VIEWS:
        raise ValueError(f"`view` must be one of {VIEWS}, got {view!r}")
    if not set(controls) <= set(CONTROLLED):
        raise ValueError(f"`controls` must be among {CONTROLLED}, got {controls!r}")
    n = int(shown)
    bars_bottom = BARS_TOP + n * ROW_H
    draw_top = bars_bottom + DRAW_GAP
    height = draw_top + DRAW_BAR_H if draw else bars_bottom + 8
    params = signals(anchor, controls)
    transforms, unpacked = pipeline()
    za = ZA
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
            SURVIVES,
            {"calculate": f"datum.survives ? datum.w / {za} : 0", "as": "after"},
            {"calculate": "datum.i + 1", "as": "rank"},
            {"calculate": percent_text("datum.p0"), "as": "p_before"},
            {"calculate": "datum.survives ? " + percent_text("datum.after") + " : 'removed'", "as": "p_after"},
            {"calculate": value, "as": "vb"},
            {"calculate": f"datum.survives && datum.after > 0 ? {value_after} : null", "as": "va"},
            {"fold": ["vb", "va"], "as": ["which", "value"]},
            {"filter": "isValid(datum.value) && isFinite(datum.value)" + (
                " && datum.value > 0" if log_scale and view == "probability" else "")},
            {"calculate": "datum.which == 'va' ? 'after' : datum.survives ? 'before' : 'before (removed)'",
             "as": "series"},
            {"calculate": "datum.which == 'va' ? 1 : 0", "as": "slot"},
        ],
        "params": [*control_params(anchor, controls),  # (a click on the same token at another position is a new selection)
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
    figures = figures_layer(0, groups=False)
    # the draw: each kept token owns a stretch of [0, 1] as long as its probability, in the draw's order
    # (the draw's layers share these: the kept rows named in it, the first DRAWN and where u lands, with their
    # stretches; each layer then picks among those few rows)
    shared = [{"filter": "datum.kept"},
              {"calculate": za, "as": "za"},
              {"calculate": "(datum.cw - datum.w) / datum.za", "as": "start"},
              {"calculate": "datum.cw / datum.za", "as": "end"},
              {"calculate": "datum.start <= datum.u && datum.u < datum.end", "as": "picked"},
              {"filter": f"(datum.kind == 0 && datum.cn <= {DRAWN}) || datum.picked"},
              {"calculate": f"datum.kind == 0 ? datum.label : 'a token past the top {TOP_ROWS:,}'", "as": "name"}]
    draw_x = {"field": "start", "type": "quantitative", "scale": {"domain": [0, 1]},
              "axis": {"format": "%", "title": "one draw: cumulative probability after", "titleAnchor": "end"}}
    stretches = {
        "transform": [{"calculate": f"datum.picked ? '{PICK_COLOUR}' : datum.cn % 2 ? '{STRETCH_COLOURS[1]}' : "
                                    f"'{STRETCH_COLOURS[0]}'", "as": "colour"},
                      {"calculate": percent_text("datum.end - datum.start"), "as": "shown"},
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
        "transform": [{"filter": f"datum.kind == 0 && datum.cn == {DRAWN} && datum.n0 + {cut_total('n')} > {DRAWN}"},
                      {"calculate": f"format(datum.n0 + {cut_total('n')} - {DRAWN}, ',') + ' other tokens'", "as": "name"}],
        "mark": {"type": "bar", "color": OTHER_COLOUR, "stroke": "white", "strokeWidth": 1},
        "encoding": {"x": {"field": "end", "type": "quantitative"}, "x2": {"datum": 1},
                     "y": {"value": draw_top}, "y2": {"value": draw_top + DRAW_BAR_H},
                     "tooltip": [{"field": "name", "type": "nominal", "title": "the rest"}]},
    }
    span = "((datum.end - datum.start) * width)"  # px: the draw's x runs over the whole width (its scale is not 'x')
    names = {
        "transform": [{"calculate": "(datum.start + datum.end) / 2", "as": "mid"}],
        "mark": {"type": "text", "fontSize": 11, "color": style.TEXT, "limit": {"expr": f"{span} - 6"},
                 "opacity": {"expr": f"{span} >= min(34, 7 * length(datum.name) + 6) ? 1 : 0"}},
        "encoding": {"x": {"field": "mid", "type": "quantitative"}, "y": {"value": draw_top + DRAW_BAR_H / 2},
                     "text": {"field": "name"}},
    }
    spot = {
        "transform": [{"filter": "datum.picked"},
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
    return single({
        "$schema": "https://vega.github.io/schema/vega-lite/v6.json",
        "params": params,
        "transform": transforms,
        "height": height,
        "layer": [unpacked, figures, bars, *([{"transform": shared, "layer": [other, stretches, names, spot]}]
                                             if draw else [])],
        "resolve": {"scale": {"x": "independent", "y": "independent", "color": "independent"}},
        "autosize": {"type": "fit-x", "contains": "padding"}, "padding": style.PADDING,
        "config": style.CONFIG,
    })


# --------------------------------------------------------------------------- Compare: several distributions

def compare_spec(anchor: Settings, names: list[str], rows: int, processed: bool = True, own: bool = True) -> dict:
    """Compare's instrument as a Vega-Lite dict (its data: compare.instrument_frame, a group per column): each
    column's probability of the `rows` tokens on one shared axis (the union of the columns' top tokens, matched by
    text), ordered by the largest; with `processed`, after the controls (T, K, P, MP, starting at `anchor`; a column's
    own temperature and top-p win; without `own`, none has them), each column's figures above."""
    n = len(names)
    controls = tuple(c for c in CONTROLLED if c != "repetition_penalty") if processed else ()
    row_h = max(style.ROW + 2, 9 * n + 6)  # px per token: a bar per column
    narrow = "width < 420"  # a phone: three short lines of figures a column, else two
    figures_h = f"({n} * ({narrow} ? 57 : 38) + 6)"
    bars_top = f"({figures_h} + {20 * math.ceil(n / 2) + 54})"  # the legend (two columns a row), then the x axis
    height = n * 57 + 6 + 20 * math.ceil(n / 2) + 54 + int(rows) * row_h + 8  # (the tallest: on a phone)
    colours = style.column_colours(n)
    value = "datum.after" if processed else "datum.p0"
    tooltip = [{"field": "name", "type": "nominal", "title": "column"},
               {"field": "label", "type": "nominal", "title": "token"},
               {"field": "shown", "type": "nominal", "title": "probability"},
               {"field": "value", "type": "quantitative", "title": "exact", "format": ".17g"}]
    bars = {
        "transform": [
            {"filter": "datum.kind == 0 && datum.on == 1"},  # the tokens on the shared axis
            SURVIVES,
            {"calculate": f"datum.survives ? datum.w / {ZA} : 0", "as": "after"},
            {"calculate": value, "as": "value"},
            {"calculate": f"{value} > 0 || !{str(processed).lower()} ? {percent_text(value)} : 'removed'", "as": "shown"},
        ],
        "params": control_params(anchor, controls),
        "mark": {"type": "bar"},
        "encoding": {
            "y": {"field": "label", "type": "nominal", "title": None,
                  "sort": {"field": "value", "op": "max", "order": "descending"},
                  "scale": {"range": [{"expr": bars_top}, {"expr": f"{bars_top} + {int(rows) * row_h}"}],
                            "paddingInner": 0.15, "paddingOuter": 0.1},
                  "axis": {"labelOverlap": False, "labelLimit": style.TOKEN_LABEL_LIMIT,
                           "labelFontSize": style.LABEL_SIZE}},
            "yOffset": {"field": "name", "type": "nominal", "sort": list(names),
                        "scale": {"domain": list(names), "paddingInner": 0.08}},
            "x": {"field": "value", "type": "quantitative", "stack": None, "scale": {"zero": True},
                  "title": "probability after the controls" if processed else "probability",
                  "axis": {"format": "%", "orient": "top", "offset": {"expr": f"6 - {bars_top}"}}},
            "color": {"field": "name", "type": "nominal", "scale": {"domain": list(names), "range": colours},
                      "legend": {"title": None, "orient": "none", "legendX": 0, "legendY": {"expr": figures_h},
                                 "direction": "horizontal", "columns": 2}},
            "tooltip": tooltip,
        },
    }
    transforms, unpacked = pipeline()
    chart = {
        "$schema": "https://vega.github.io/schema/vega-lite/v6.json",
        "params": signals(anchor, controls),
        "transform": transforms,
        "height": height,
        "layer": [unpacked, figures_layer(0, groups=True), bars],
        "resolve": {"scale": {"x": "independent", "y": "independent", "color": "independent"}},
        "autosize": {"type": "fit-x", "contains": "padding"}, "padding": style.PADDING,
        "config": style.CONFIG,
    }
    return chart if own else shared_controls(chart)
