"""The next-token instrument: its payload and its Python twin hold the exact figures of sampling.distribution over
a grid of settings (deep top-p cuts inside the tail's bins, min-p with top-p and top-k, temperatures above 1,
repetition penalty on a path), its spec compiles to what the page relies on, and the values a browser reports are
never trusted. What Chromium computes from the same spec: tests/e2e/test_instrument.py."""

from __future__ import annotations

import itertools
import json

import numpy as np
import pytest
import torch

from dashboard import instrument
from dashboard import payload as payload_mod
from dashboard.instrument import twin
from dashboard.instrument_charts import spec
from dashboard.payload import payload
from dashboard.sampling import Settings, distribution, entropy_bits
from dashboard.ui.instrument import picked_id, values_from_bridge, values_from_selection

GRID = [dict(temperature=t, top_k=k, top_p=p, min_p=mp, repetition_penalty=r)
        for t, k, p, mp, r in itertools.product((0.0, 0.05, 0.5, 1.0, 1.5, 2.0), (0, 5, 200), (1.0, 0.9, 0.5, 0.99),
                                                 (0.0, 0.01, 0.3), (1.0, 1.3, 2.0))]


def labels(ids):
    return [f"t{i}" for i in ids]


def check(data, logits, prev, settings):
    """Assert the twin's figures equal distribution()'s: 1e-6 for the token rows, tokens left exact."""
    d = distribution(logits, settings, prev_ids=torch.tensor(prev))
    f = twin(data, settings)
    rows = data.tokens["id"].tolist()
    err = max(abs(f.after[i] - float(d.after[i])) for i in rows)
    assert err < 1e-6, (settings, err)
    assert f.kept == d.kept, settings
    assert f.entropy_after == pytest.approx(entropy_bits(d.after), abs=0.005), settings
    assert f.entropy_before == pytest.approx(entropy_bits(d.probs), abs=1e-9)
    assert f.mass_kept == pytest.approx(d.mass_kept, abs=1e-9), settings


def model_logits(smollm, prompt):
    from dashboard.generation import TokenPath
    from dashboard.tokens import encode

    path = TokenPath(smollm.model, encode(smollm.tokenizer, prompt))
    return path.logits, path.ids


def test_the_twin_matches_distribution_on_the_real_model_over_the_grid(smollm):
    logits, ids = model_logits(smollm, "Udacity is the best place to learn about generative AI, and the best place")
    data = payload(logits, ids, labels)
    rows = data.rows
    assert (rows["kind"] == 1).sum() > 50 and ((rows["pen"] == 1) & (rows["i"] >= payload_mod.TOP_ROWS)).any()
    deep = 0
    for g in GRID:
        s = Settings(strategy="sample", **g)
        check(data, logits, ids, s)
        deep += twin(data, s).kept > payload_mod.TOP_ROWS
    assert deep >= 10  # many cuts fell inside the tail's bins, exactly


def test_a_cut_inside_a_bin_with_a_penalised_token_among_its_tokens_is_exact(smollm):
    """The case a binned tail gets wrong unless the bin is unpacked: the penalty moves a tail token in among the
    tokens of the bin the top-p cut falls in."""
    logits, ids = model_logits(smollm, "Udacity is the best place to learn about generative AI and the best place to "
                                       "learn about")
    data = payload(logits, ids, labels)
    for t, p, r in itertools.product((1.6, 2.0), (0.5, 0.8, 0.97), (1.3, 2.0)):
        check(data, logits, ids, Settings(strategy="sample", temperature=t, top_p=p, repetition_penalty=r))


def test_the_twin_on_an_engines_top_n_and_a_tiny_vocabulary():
    torch.manual_seed(0)
    logits = torch.full((300,), float("-inf"))
    logits[:20] = torch.randn(20) * 3  # an engine's top 20 log-probabilities, -inf elsewhere
    data = payload(logits, [3, 4], labels)
    assert data.vocab == 20 and (data.rows["kind"] == 1).sum() == 0
    for g in GRID[::7]:
        check(data, logits, [3, 4], Settings(strategy="sample", **g))
    small = torch.randn(5000) * 4
    data = payload(small, [1, 2, 4999], labels, top=50)  # (top-k up to 50 then)
    for g in [g for g in GRID[::5] if g["top_k"] <= 50]:
        check(data, small, [1, 2, 4999], Settings(strategy="sample", **g))


def test_breaking_the_order_of_min_p_and_top_p_is_caught():
    """The grid can fail: min-p decided on the mass before top-k instead of after changes a figure."""
    logits = torch.log(torch.tensor([0.4, 0.3, 0.2, 0.1]))
    data = payload(logits, [], labels)
    s = Settings(strategy="sample", top_p=0.75, min_p=0.3)
    assert twin(data, s).kept == distribution(logits, s).kept == 3


def test_payload_rows_bins_and_offsets_are_compact_and_unpack_to_the_logits():
    torch.manual_seed(1)
    logits = torch.randn(49_152) * 3
    data = payload(logits, [5, 7, 40_000], labels)
    rows = data.rows
    tokens, bins = rows[rows["kind"] == 0], rows[rows["kind"] == 1]
    assert len(tokens) == payload_mod.TOP_ROWS + 3 and tokens["i"].is_monotonic_increasing
    assert bins["c"].sum() + len(tokens) == 49_152 and bins["c"].max() <= payload_mod.BIN_COUNT
    assert ((bins["l"] - bins["lo"]) <= payload_mod.BIN_WIDTH + 1e-9).all()
    raw = np.sort(logits.numpy().astype(np.float64))[::-1]
    first = bins.iloc[0]
    unpacked = first["l"] - np.array(payload_mod.offsets(first["offs"])) * payload_mod.UNIT
    assert np.abs(unpacked - raw[payload_mod.TOP_ROWS:payload_mod.TOP_ROWS + len(unpacked)]).max() <= 5e-8
    assert len(json.dumps(rows.to_dict(orient="records"), default=str)) < 900_000
    # the offsets are base 36: 245 KB of text here, where decimal took 342 KB (the bulk of an Append's messages)
    text = "".join(bins["offs"])
    assert set(text) <= set("0123456789abcdefghijklmnopqrstuvwxyz,") and len(text) < 260_000


def test_the_spec_compiles_and_the_unpacked_layer_is_the_data_its_signals_read():
    """The figures read what the unpacked bins add through data('<name>'): that name is Vega-Lite's for the first
    layer's output; a compiler that named it otherwise would break the figures, so the name is checked here."""
    vlc = pytest.importorskip("vl_convert")
    torch.manual_seed(2)
    data = payload(torch.randn(3000) * 3, [1], labels, top=40)
    chart = spec(Settings(strategy="sample"))
    chart["data"] = {"values": json.loads(instrument.frame(data, 0.3, 0).to_json(orient="records"))}
    vega = vlc.vegalite_to_vega(chart)
    named = {d["name"]: d for d in vega["data"]}
    cut = named[instrument.CUT_DATA]
    assert "joinaggregate" in [t["type"] for t in cut["transform"]]
    assert any(t.get("type") == "flatten" for t in cut["transform"])
    signals = {s["name"] for s in vega["signals"]}
    assert {"T", "K", "P", "MP", "R", "cut_g", "cut_kept", *(f"{n}_v" for n in instrument.CONTROLLED)} <= signals


def test_the_spec_depends_on_the_starting_values_and_the_view_only():
    """Never on the path: along a path Streamlit swaps the chart's data in place (the inputs stay)."""
    a = json.dumps(spec(Settings(strategy="sample")))
    assert json.dumps(spec(Settings(strategy="sample"))) == a  # byte-identical rebuilt
    assert json.dumps(spec(Settings(strategy="sample", temperature=0.7))) != a
    assert json.dumps(spec(Settings(strategy="sample"), shown=20)) != a
    torch.manual_seed(3)
    one, two = payload(torch.randn(3000) * 3, [1], labels, top=40), payload(torch.randn(3000) * 3, [2], labels, top=40)
    assert not instrument.frame(one, 0.3, 0).equals(instrument.frame(two, 0.7, 1))
    with pytest.raises(ValueError, match="`view`"):
        spec(Settings(), view="bars")


@pytest.mark.parametrize("selection, expected", [
    ({"temperature": [{"v": 1.25}], "top_k": [{"v": 40}]}, {"temperature": 1.25, "top_k": 40}),
    ({"temperature": [{"v": 99}], "top_p": [{"v": -3}]}, {"temperature": 2.0, "top_p": 0.01}),  # clamped
    ({"top_k": [{"v": 7.6}], "min_p": [{"v": "nan"}]}, {"top_k": 8, "min_p": 0.0}),
    ({"temperature": {}, "top_k": [], "top_p": [{"x": 1}], "min_p": ["0.5"], "seed": [{"v": 3}]}, {}),
    ({"temperature": [{"v": "<script>"}]}, {"temperature": 1.0}),
    ("not a dict", {}), (None, {}),
])
def test_values_a_browser_reports_are_parsed_and_clamped(selection, expected):
    assert values_from_selection(selection) == expected


@pytest.mark.parametrize("values, expected", [
    ({"temperature": 1.25, "top_k": 40}, {"temperature": 1.25, "top_k": 40}),
    ({"temperature": 99, "top_p": -3, "repetition_penalty": 9}, {"temperature": 2.0, "top_p": 0.01,
                                                                  "repetition_penalty": 2.0}),  # clamped
    ({"top_k": 7.6, "min_p": float("nan")}, {"top_k": 8, "min_p": 0.0}),
    ({"temperature": "1.5", "top_k": True, "top_p": None, "min_p": [0.5], "seed": 3, "x": 1}, {}),  # not numbers
    ({"temperature": float("inf")}, {"temperature": 2.0}),
    ("not a dict", {}), (None, {}), ([1, 2], {}),
])
def test_values_the_bridge_reports_are_parsed_and_clamped(values, expected):
    assert values_from_bridge(values) == expected
    assert values_from_bridge(values, ("top_k",)) == {k: v for k, v in expected.items() if k == "top_k"}


@pytest.mark.parametrize("points, expected", [
    ([{"id": 17, "step": 2}], 17), ([{"id": 17.0, "step": 2.0}], 17), ([{"id": 17.5, "step": 2}], None),
    ([{"id": True, "step": 2}], None), ([{"id": -1, "step": 2}], None), ([{"id": 10**9, "step": 2}], None),
    ([{"id": "17", "step": 2}], None), ([{"id": 17, "step": 1}], None), ([{"id": 17}], None), ([], None),
    ({"id": 1}, None),
])
def test_a_clicked_bar_is_a_token_of_the_vocabulary_at_this_step_or_nothing(points, expected):
    """A click kept from an earlier step (the chart holds its last click while the controls move) appends nothing."""
    assert picked_id({"pick": points}, vocab=49_152, step=2) == expected


def test_an_app_session_keeps_the_spec_byte_identical_while_the_controls_move(smollm):
    """After a move settles the page reruns with the new values (as the on_select callback leaves them): the chart's
    spec, data and key stay the same, so the browser keeps its inputs; the table follows the new values."""
    from conftest import open_page

    at = open_page("pages/next-token.py")
    chart = next(c for c in at.get("vega_lite_chart") if c.key.startswith("nt_inst_"))
    before = (chart.key, chart.proto.spec, chart.proto.data.data)
    table = at.table[0].value
    at.session_state["temperature"] = 1.5  # what _moved writes
    at.session_state["nt_inst"]["current"]["temperature"] = 1.5
    at.run()
    chart = next(c for c in at.get("vega_lite_chart") if c.key.startswith("nt_inst_"))
    assert (chart.key, chart.proto.spec, chart.proto.data.data) == before
    assert not at.table[0].value["after"].equals(table["after"])
    at.button(key="nt_append").click().run()  # a new position: new data, the same chart (its inputs stay)
    chart = next(c for c in at.get("vega_lite_chart") if c.key.startswith("nt_inst_"))
    assert (chart.key, chart.proto.spec) == before[:2] and chart.proto.data.data != before[2]
    at.session_state["temperature"] = 0.5  # a value from elsewhere (a link): a new chart starting there
    at.run()
    chart = next(c for c in at.get("vega_lite_chart") if c.key.startswith("nt_inst_"))
    assert chart.key != before[0] and '"value": [{"v": 0.5}]' in chart.proto.spec
