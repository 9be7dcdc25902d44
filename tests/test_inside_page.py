"""The Inside page through the app: the lens, where the answer forms, attention, attribution, selectors that
cost no forward, the state in the link, and a clear message for an architecture it cannot look into."""

import pytest
import torch

from dashboard import inside
from dashboard.tokens import encode

from conftest import ForwardCounter, move, open_page, texts

pytestmark = pytest.mark.app
FRANCE = "The capital of France is"


def test_the_lens_says_where_paris_forms(smollm, app_model):
    at = open_page("pages/inside.py", prompt=FRANCE)
    ids = encode(smollm.tokenizer, FRANCE)
    fwd = inside.run_forward(app_model, ids)
    track = inside.final_choice_track(inside.lens_last_position(app_model, fwd), int(fwd.logits.argmax()))
    formed = inside.forms_at(track)
    assert smollm.tokenizer.decode([int(fwd.logits.argmax())]) == " Paris"
    assert f"the answer forms at layer **{formed}** of 30" in texts(at)
    assert len(at.get("vega_lite_chart")) == 3  # where it forms, the heatmap, the chosen cell's distribution
    table = at.table[0].value  # the chosen cell (default: last layer, last position) = the model's own output
    assert table["token"].iloc[0] == "␣Paris"
    assert table["before"].iloc[0] == f"{float(torch.softmax(fwd.logits, -1).max()):.2%}"


def test_moving_a_selector_runs_no_forward(smollm, app_model):
    at = open_page("pages/inside.py", prompt=FRANCE)
    counter = ForwardCounter(app_model)
    try:
        at.selectbox(key="layer").set_value(3).run()
        at.selectbox(key="position").set_value(1).run()
        move(at, "temperature", 0.5)
    finally:
        counter.close()
    assert not at.exception and counter.n == 0
    assert "**Layer 3, after position 1**" in texts(at)


def test_attention_and_attribution_views(smollm, app_model):
    at = open_page("pages/inside.py", prompt=FRANCE, view="attention", layer="2", head="1", position="3")
    assert not at.exception, [e.value for e in at.exception]
    assert at.selectbox(key="layer").value == 2 and at.selectbox(key="head").value == 1
    assert "(position 3) looks" in texts(at)
    at.selectbox(key="head").set_value("mean").run()
    assert not at.exception
    at.segmented_control(key="view").set_value("attribution").run()
    assert not at.exception
    assert any("How to read it" in i.value for i in at.info)
    at.radio(key="in_method").set_value("gradient × input").run()
    assert not at.exception and any("first-order" in i.value for i in at.info)


def test_bad_inside_link_values_become_notices(smollm):
    at = open_page("pages/inside.py", prompt=FRANCE, view="nope", layer="99", position="-1", head="x")
    assert not at.exception
    notices = " ".join(at.session_state["_ts_notices"])
    assert "`view` = `'nope'`" in notices and "`layer` = `'99'` does not exist" in notices
    assert "`position` = `'-1'` is not a valid index" in notices and "`head` = `'x'`" in notices
    assert at.selectbox(key="layer").value == 30


def test_an_architecture_without_a_final_norm_gets_a_message(tmp_path, monkeypatch):
    from transformers import BertConfig, BertLMHeadModel

    from dashboard import models

    from dashboard.loaded import LOADED
    from dashboard.models import offline_gpt2_tokenizer

    folder = tmp_path / "bert-decoder"
    BertLMHeadModel(BertConfig(vocab_size=50257, hidden_size=32, num_hidden_layers=1, num_attention_heads=2,
                               intermediate_size=64, is_decoder=True)).save_pretrained(folder)
    offline_gpt2_tokenizer().save_pretrained(folder)
    monkeypatch.setenv("TOKENSCOPE_MODELS", str(folder))
    at = open_page("pages/inside.py", model="local-bert-decoder", prompt=FRANCE)
    assert not at.exception
    assert "cannot be looked inside here" in texts(at) and "no final norm" in texts(at)
    LOADED.clear()


def test_a_head_the_model_does_not_have_falls_back_to_the_mean(smollm):
    at = open_page("pages/inside.py", prompt=FRANCE, view="attention", head="999")
    assert not at.exception, [e.value for e in at.exception]
    assert at.selectbox(key="head").value == "mean"
    assert any("`head` = `'999'` does not exist" in n for n in at.session_state["_ts_notices"])


def test_a_long_prompt_is_cut_for_attention_and_attribution(smollm):
    from dashboard.ui.inside import MAX_ATTENTION_TOKENS

    long = " ".join(["one two three four five six seven eight nine ten"] * 12)  # ~120 tokens
    at = open_page("pages/inside.py", prompt=long, view="attention")
    assert not at.exception, [e.value for e in at.exception]
    assert f"reads the last {MAX_ATTENTION_TOKENS} of the" in texts(at)
    assert at.selectbox(key="position").options[-1] == str(MAX_ATTENTION_TOKENS - 1)
    at.segmented_control(key="view").set_value("attribution").run()
    assert not at.exception and "Attribution looks at the last 64 of the" in texts(at)
