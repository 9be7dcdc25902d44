"""Links through the app: state → URL → a fresh session with those params shows the same view;
hostile parameters give notices, never exceptions."""

import pytest

from conftest import ForwardCounter, control, figures, move, open_page, texts

pytestmark = pytest.mark.app


def url_params(at) -> dict:
    """The parameters of the share link the sidebar's button shows (lists for repeated keys)."""
    import urllib.parse

    at.button(key="ts_share").click().run()
    link = [c.value for c in at.code if c.value.startswith("http")][-1]
    return urllib.parse.parse_qs(urllib.parse.urlsplit(link).query, keep_blank_values=True)


def reopen(page, at):
    """A fresh session opened on the share link of `at`'s view."""
    params = url_params(at)
    return open_page(page, **{k: (v if len(v) > 1 else v[0]) for k, v in params.items()})


def test_next_token_view_round_trips_through_its_link(smollm):
    at = open_page("pages/next-token.py", prompt="The capital of France is")
    move(at, "temperature", 0.7)
    move(at, "top_k", 12)
    move(at, "top_p", 0.9)
    at.number_input(key="seed").set_value(3).run()
    at.button(key="nt_append").click().run()
    at.button(key="nt_sample").click().run()
    at.button(key="nt_sample").click().run()
    params = url_params(at)
    assert params["temperature"] == ["0.7"] and params["top_k"] == ["12"] and "path" in params
    fresh = reopen("pages/next-token.py", at)
    assert fresh.session_state["nt_path"].ids == at.session_state["nt_path"].ids
    for key in ("temperature", "top_k", "top_p"):
        assert control(fresh, key) == control(at, key)
    assert fresh.number_input(key="seed").value == 3
    assert figures(fresh) == figures(at)
    assert fresh.table[0].value.equals(at.table[0].value)


def test_generate_view_round_trips_and_sampling_reproduces(smollm):
    at = open_page("pages/generate.py", prompt="In a quiet village")
    at.radio(key="strategy").set_value("sample").run()
    at.slider(key="temperature").set_value(0.8).run()
    at.number_input(key="seed").set_value(11).run()
    at.slider(key="max_new_tokens").set_value(10).run()
    at.button(key="gen_go").click().run()
    first = at.session_state["gen_last"][0].new_ids
    fresh = reopen("pages/generate.py", at)
    assert fresh.radio(key="strategy").value == "sample"
    assert fresh.slider(key="max_new_tokens").value == 10
    fresh.button(key="gen_go").click().run()
    assert fresh.session_state["gen_last"][0].new_ids == first  # same link, same seed, same text


def test_tokenize_view_round_trips(smollm):
    at = open_page("pages/tokenize.py", model="gpt2")
    at.text_area(key="prompt").set_value("Hello links").run()
    fresh = reopen("pages/tokenize.py", at)
    assert fresh.session_state["model"] == "gpt2"
    assert fresh.dataframe[0].value["id"].tolist() == at.dataframe[0].value["id"].tolist()


def test_compare_view_round_trips(smollm):
    at = open_page("pages/compare.py")
    at.button(key="cmp_add").click().run()
    at.text_area(key="cmp_prompt_2").set_value("Paris is the capital of").run()
    params = url_params(at)
    assert len(params["prompt"]) == 3
    fresh = reopen("pages/compare.py", at)
    assert fresh.session_state["cmp_n"] == 3
    assert fresh.text_area(key="cmp_prompt_2").value == "Paris is the capital of"
    assert fresh.table[0].value.equals(at.table[0].value)  # the divergence table, as text


def test_compare_runs_four_prompts_in_one_forward(app_model):
    open_page("pages/compare.py")  # the model is loaded and the page warm
    counter = ForwardCounter(app_model)
    try:
        at = open_page("pages/compare.py", prompt=["a b c", "one two", "The cat sat on the", "Hello"])
    finally:
        counter.close()
    assert at.session_state["cmp_n"] == 4
    assert counter.n == 1  # one padded batch for all four columns
    assert len(at.table[0].value) == 6  # every pair of the four columns
    counter = ForwardCounter(app_model)
    try:
        at.slider(key="cmp_k").set_value(5).run()
        at.toggle(key="cmp_processed").set_value(True).run()
    finally:
        counter.close()
    assert counter.n == 0


HOSTILE = [
    {"temperature": "NaN"}, {"temperature": "inf"}, {"temperature": "-1"}, {"temperature": "1e308"},
    {"top_k": "-5"}, {"top_k": "ten"}, {"top_k": "3.5"}, {"top_p": "0"}, {"top_p": "7"}, {"min_p": "-0.1"},
    {"repetition_penalty": "nan"}, {"seed": "-1"}, {"seed": "1e40"}, {"max_new_tokens": "100000"},
    {"max_new_tokens": "-3"}, {"strategy": "evil"}, {"num_beams": "0"}, {"model": "/etc/passwd"},
    {"model": "https://evil.example/gpt"}, {"model": "../../models"}, {"temperature": ["0.2", "0.9"]},
    {"prompt": "<script>alert(1)</script>"}, {"prompt": "x" * 50_000}, {"path": "1,2,<b>"},
    {"path": "999999999"}, {"unknown": "1", "another": "<svg onload=alert(1)>"}, {"prompt": "\x00\x01 nul"},
]


@pytest.mark.parametrize("page", ["pages/next-token.py", "pages/generate.py", "pages/tokenize.py", "pages/compare.py"])
@pytest.mark.parametrize("params", HOSTILE, ids=lambda p: ",".join(p)[:30])
def test_hostile_params_never_raise(smollm, page, params):
    at = open_page(page, **params)  # open_page asserts no exception on both runs
    corrected = any(k in params for k in ("temperature", "top_k", "top_p", "min_p", "repetition_penalty", "seed",
                                          "max_new_tokens", "strategy", "num_beams", "model", "path"))
    if corrected and not ("prompt" in params and len(params) == 1):
        notices = at.session_state["_ts_notices"] if "_ts_notices" in at.session_state else []
        bad_path_only_elsewhere = "path" in params and page != "pages/next-token.py"
        if not bad_path_only_elsewhere:
            assert notices, params
    if "prompt" in params and len(params["prompt"]) > 4000:
        assert any("cut" in n for n in at.session_state["_ts_notices"])


def test_compare_columns_with_their_own_temperature(smollm):
    at = open_page("pages/compare.py")
    at.text_area(key="cmp_prompt_1").set_value(at.text_area(key="cmp_prompt_0").value).run()
    same = at.table[0].value
    assert same["JS (bits)"].iloc[0] == "0.000" and same["reading"].iloc[0] == "practically the same"
    assert same["top-8 overlap"].iloc[0] == "8 of 8" and same["same top token"].iloc[0] == "yes"
    at.toggle(key="cmp_own_1").set_value(True).run()
    at.slider(key="cmp_temperature_1").set_value(0.3).run()
    assert not at.exception
    hotter = at.table[0].value
    assert float(hotter["JS (bits)"].iloc[0]) > 0.01  # the same prompt at another temperature now differs
    assert hotter["reading"].iloc[0] != "practically the same"
    assert "Prompt 2" in texts(at)
    params = url_params(at)
    assert params["ctemp"] == ["-", "0.3"] and params["ctop_p"] == ["-", "1.0"]
    fresh = reopen("pages/compare.py", at)
    assert fresh.toggle(key="cmp_own_1").value and fresh.slider(key="cmp_temperature_1").value == 0.3
    assert not fresh.toggle(key="cmp_own_0").value
    assert fresh.table[0].value.equals(hotter)


def test_compare_column_settings_from_a_hostile_link(smollm):
    at = open_page("pages/compare.py", prompt=["a b", "c d"], ctemp=["nan", "9"], ctop_p=["-", "<b>"])
    assert at.slider(key="cmp_temperature_0").value == 1.0 and at.slider(key="cmp_temperature_1").value == 2.0
    notices = at.session_state["_ts_notices"]
    assert any(n.startswith("Column 1:") for n in notices) and any(n.startswith("Column 2:") for n in notices)
