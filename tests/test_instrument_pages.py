"""Compare's and the Inside cell's instruments: what Vega computes from their specs (rendered by vl-convert, read
from the marks' aria-labels) holds sampling.distribution's numbers column by column — a column's own temperature and
top-p, deep top-p cuts inside the tail's bins, min-p with top-k and top-p, greedy — and on the page the specs stay
byte-identical while the controls move, with the divergences and the table following. Chromium:
tests/e2e/test_instrument.py."""

from __future__ import annotations

import json
import re

import pytest
import torch

from dashboard import instrument, instrument_charts
from dashboard.compare import instrument_frame
from dashboard.payload import payload
from dashboard.sampling import Settings, distribution, entropy_bits
from dashboard.tokens import visible

from conftest import move, open_page

vlc = pytest.importorskip("vl_convert")

SETTINGS = [
    dict(temperature=1.0),
    dict(temperature=1.5, top_p=0.99),  # a cut thousands of tokens deep, inside a bin
    dict(temperature=2.0, top_p=0.97, top_k=0),
    dict(temperature=0.7, top_k=5, top_p=0.75, min_p=0.05),
    dict(temperature=1.3, min_p=0.002),  # a min-p cut in the tail
    dict(temperature=1.2, top_k=120, top_p=0.99),  # a top-k cut inside a bin (past the tokens sent one by one)
    dict(temperature=1.8, top_k=77, min_p=0.001),
    dict(temperature=0.0),
]
OWN = Settings(strategy="sample", temperature=0.6, top_p=0.8)  # the third column's own temperature and top-p


def rendered(spec: dict, frame) -> list[str]:
    """The aria-labels of the marks Vega draws for `spec` over `frame`."""
    spec = {**spec, "data": {"values": json.loads(frame.to_json(orient="records"))}, "width": 700}
    return re.findall(r'aria-label="([^"]*)"', vlc.vegalite_to_svg(json.dumps(spec)))


def fields(label: str) -> dict:
    """'a: 1; b: x' → {'a': '1', 'b': 'x'} (an aria-label's fields)."""
    return dict(part.split(": ", 1) for part in label.replace("&amp;", "&").split("; ") if ": " in part)


def figures(labels: list[str]) -> dict:
    """{column name: (tokens left, entropy after, mass kept)} from the figures' descriptions."""
    out = {}
    for label in labels:
        m = re.fullmatch(r"Figures: (?:(.+?): )?tokens left: (\d+); entropy after, bits: ([^;]+); mass kept: (.+)",
                         label)
        if m:
            out[m.group(1)] = (int(m.group(2)), float(m.group(3)), float(m.group(4)))
    return out


@pytest.fixture(scope="module")
def columns(smollm):
    from dashboard.generation import TokenPath
    from dashboard.tokens import encode

    prompts = ["Udacity is the best place to learn about generative", "The conference keynote was all about generative",
               "Udacity is the best place to learn about generative"]
    out = []
    for i, text in enumerate(prompts):
        path = TokenPath(smollm.model, encode(smollm.tokenizer, text))
        out.append((f"Prompt {i + 1}", smollm.tokenizer, path.logits, OWN if i == 2 else None))
    return out


@pytest.mark.parametrize("own", [True, False], ids=["a-column-with-its-own", "shared-only"])
@pytest.mark.parametrize("values", SETTINGS, ids=lambda v: ",".join(f"{k}={x}" for k, x in v.items()))
def test_compare_in_the_browser_matches_distribution_column_by_column(columns, values, own):
    columns = columns if own else columns[:2]  # (without own settings the spec reads the controls' signals only)
    frame, rows = instrument_frame(columns, 8)
    shared = Settings(strategy="sample", **values)
    names = [c[0] for c in columns]
    labels = rendered(instrument_charts.compare_spec(shared, names, rows, processed=True, own=own), frame)
    bars = [fields(x) for x in labels if "exact: " in x and "column: " in x]
    shown = figures(labels)
    assert len(bars) >= len(columns) * 8 and set(shown) == set(names)
    for name, tok, logits, own in columns:
        settings = Settings(**{**shared.as_dict(), "temperature": own.temperature, "top_p": own.top_p}) if own else shared
        d = distribution(logits, settings)
        mine = [b for b in bars if b["column"] == name]
        assert len(mine) >= 8
        by_label = {visible(tok.decode([i])): i for i in d.probs.topk(60).indices.tolist()}
        for b in mine:
            token_id = by_label[b["token"]]
            assert abs(float(b["exact"]) - float(d.after[token_id])) < 1e-6, (name, settings, b)
        kept, entropy, mass = shown[name]
        assert kept == d.kept, (name, settings)
        assert entropy == pytest.approx(entropy_bits(d.after), abs=0.005), (name, settings)
        assert mass == pytest.approx(d.mass_kept, abs=1e-6), (name, settings)


def test_compare_puts_every_columns_top_tokens_on_one_axis_matched_by_text(columns):
    frame, rows = instrument_frame(columns[:2], 8)
    union = set()
    for _, tok, logits, _ in columns[:2]:
        union |= {visible(tok.decode([i])) for i in logits.topk(8).indices.tolist()}
    assert rows == len(union) > 8  # the two prompts' top 8 differ
    on = frame[frame["on"] == 1]
    assert set(on["label"]) == union and on.groupby("g")["label"].nunique().tolist() == [len(union)] * 2
    # a token ranked far down in one column is sent one by one, not inside that column's tail bins
    for g, (_, tok, logits, _) in enumerate(columns[:2]):
        rows_g = frame[frame["g"] == g]
        assert rows_g["c"].sum() == logits.shape[-1]  # every token once: rows and bins
    assert frame["ot"].isna().all() and frame["op"].isna().all()  # no column has its own settings


def test_compares_raw_view_draws_the_raw_probabilities_and_has_no_inputs(columns):
    frame, rows = instrument_frame(columns[:2], 5)
    chart = instrument_charts.compare_spec(Settings(strategy="sample", temperature=0.3), ["Prompt 1", "Prompt 2"], rows,
                                    processed=False)
    assert "bind" not in json.dumps(chart)
    bars = [fields(x) for x in rendered(chart, frame) if "exact: " in x and "column: " in x]
    raw = torch.softmax(columns[0][2].double(), -1)
    top = raw.topk(5)
    mine = {b["token"]: float(b["exact"]) for b in bars if b["column"] == "Prompt 1"}
    for p, i in zip(top.values.tolist(), top.indices.tolist()):
        assert mine[visible(columns[0][1].decode([i]))] == pytest.approx(p, abs=1e-9)


def test_the_inside_cells_instrument_has_no_penalty_and_no_draw_and_matches_distribution(columns):
    tok, logits = columns[0][1], columns[0][2]
    data = payload(logits, [], lambda ids: [f"t{i}" for i in ids], top=50)
    controls = ("temperature", "top_k", "top_p", "min_p")
    for values in SETTINGS[1:4]:
        s = Settings(strategy="sample", **values)
        chart = instrument_charts.spec(s, shown=12, controls=controls, draw=False)
        text = json.dumps(chart)
        assert "Repetition penalty" not in text and "one draw" not in text and "Temperature" in text
        labels = rendered(chart, instrument.frame(data))
        d = distribution(logits, s)
        ((kept, entropy, _),) = figures(labels).values()
        assert kept == d.kept and entropy == pytest.approx(entropy_bits(d.after), abs=0.005)
        bars = [fields(x) for x in labels if "after, exact: " in x]
        assert len(bars) >= 12
        for b in bars:
            assert abs(float(b["after, exact"]) - float(d.after[int(b["id"])])) < 1e-6


def chart_of(at, prefix: str):
    """The page's instrument (the one chart whose spec unpacks tail bins; Compare's and the Inside cell's carry no
    key: they report through the bridge, not on_select)."""
    (chart,) = [c for c in at.get("vega_lite_chart") if '"cut_g"' in c.proto.spec]
    return chart


def test_compare_page_keeps_its_spec_while_the_controls_move_and_the_divergences_follow(smollm):
    at = open_page("pages/compare.py", cmp_processed="true")
    assert not at.exception
    chart = chart_of(at, "cmp")
    before = (chart.key, chart.proto.spec, chart.proto.data.data)
    js = at.table[0].value["JS (bits)"].iloc[0]
    at.session_state["cmp_inst"]["current"]["temperature"] = 0.3  # what the on_select callback writes
    move(at, "temperature", 0.3)
    chart = chart_of(at, "cmp")
    assert (chart.key, chart.proto.spec, chart.proto.data.data) == before  # the browser drew it already
    assert at.table[0].value["JS (bits)"].iloc[0] != js  # the divergences follow the settled value
    assert at.query_params["temperature"] in ("0.3", ["0.3"])
    at.toggle(key="cmp_own_1").set_value(True).run()  # a column's own settings: a spec that reads them per row,
    own = chart_of(at, "cmp").proto.spec  # its inputs starting where the controls are
    assert own != before[1] and '"value": [{"v": 0.3}]' in own and "datum.ot" in own and "datum.ot" not in before[1]
    at.slider(key="cmp_temperature_1").set_value(1.7).run()  # then moving them swaps the data only
    chart = chart_of(at, "cmp")
    assert chart.proto.spec == own and chart.proto.data.data != before[2]
    at.toggle(key="cmp_processed").set_value(False).run()  # own settings: still processed
    assert chart_of(at, "cmp").proto.spec == own
    at.toggle(key="cmp_own_1").set_value(False).run()  # raw: a chart without inputs
    (raw,) = [c for c in at.get("vega_lite_chart") if "datum.on == 1" in c.proto.spec]  # (no key: it reports nothing)
    assert '"bind"' not in raw.proto.spec and not at.exception


def test_inside_cell_keeps_its_spec_while_the_controls_move_and_the_table_follows(smollm):
    at = open_page("pages/inside.py")
    chart = chart_of(at, "in")
    before = (chart.key, chart.proto.spec, chart.proto.data.data)
    assert "Repetition penalty" not in chart.proto.spec
    after = at.table[0].value["after"].tolist()
    at.session_state["in_inst"]["current"]["top_k"] = 2
    move(at, "top_k", 2)
    chart = chart_of(at, "in")
    assert (chart.key, chart.proto.spec, chart.proto.data.data) == before
    now = at.table[0].value["after"].tolist()
    assert now != after and now[2:] == ["removed"] * 10, now
    at.selectbox(key="layer").set_value(20).run()  # another cell: new data, the same chart
    chart = chart_of(at, "in")
    assert (chart.key, chart.proto.spec) == before[:2] and chart.proto.data.data != before[2]
