"""Hostile links opened on every page through AppTest, as a browser opens them (the page straight away, the
link's parameters in the URL of its first run): no exception, the notice shown once, every widget holding the
corrected value, and the URL (at.query_params) holding that value too, or no longer the parameter."""

from __future__ import annotations

import pytest

from conftest import control, open_page

pytestmark = pytest.mark.app

LONG = "x" * 10_000  # a prompt over the 4,000-character cap
CUT = "x" * 4_000


def open_link(page: str, params: dict):
    """A fresh session whose first run opens `page` (e.g. "pages/inside.py", "" for home) with `params`."""
    return open_page(page, **params)


def shown(at) -> list[str]:
    """Every warning and info text on the page (the notices at the top are warnings)."""
    return [str(e.value) for e in at.warning] + [str(e.value) for e in at.info]


def url(at, key):
    """The URL's value of `key` after the run (None when it is not in the URL)."""
    return at.query_params.get(key)


def noticed(at, *fragments) -> None:
    """Each fragment is in exactly one text shown on the page."""
    texts = shown(at)
    for fragment in fragments:
        hits = [t for t in texts if fragment in t]
        assert len(hits) == 1, (fragment, texts)


def test_home(smollm):
    at = open_link("", {"model": "/etc/passwd", "temperature": "1e999", "layer": "²", "run": "yes"})
    noticed(at, "'/etc/passwd'", "`temperature` = `'1e999'` is outside", "`layer` = `'²'` is not a valid index",
            "`run` = `'yes'` is not 1")
    assert at.selectbox(key="model").value == "smollm2-135m" and url(at, "model") in (None, "smollm2-135m")
    assert url(at, "temperature") == "2.0"  # not used on this page: the value the other pages would use
    assert url(at, "layer") is None and url(at, "run") is None


def test_tokenize_long_prompt_and_a_bad_tokenizer(smollm):
    at = open_link("pages/tokenize.py", {"prompt": LONG + "\x00", "tok_compare": "../../etc"})
    noticed(at, "had 10,001 characters; it was cut to the first 4,000", "'../../etc'")
    assert not [t for t in shown(at) if "cut to its first" in t]  # the box's own check finds nothing more to cut
    assert at.text_area(key="prompt").value == CUT and url(at, "prompt") == CUT
    assert at.selectbox(key="tok_compare").value == "(none)" and url(at, "tok_compare") in (None, "(none)")


def test_next_token_numbers(smollm):
    at = open_link("pages/next-token.py", {"temperature": ["0.2", "1.8"], "top_k": "１２", "seed": "9" * 5_000,
                                           "min_p": "-0", "top_p": "0x10", "path": "1,2,<b>", "nt_show": "²"})
    noticed(at, "`temperature` appeared 2 times", "`top_k` = `'１２'` is not a number", "`seed` = `'99999",
            "`top_p` = `'0x10'` is not a number", "invalid entry `'<b>'` (step 3)", "`nt_show` = `'²'` is not a number")
    assert control(at, "temperature") == 0.2 and url(at, "temperature") == "0.2"
    assert control(at, "top_k") == 0 and url(at, "top_k") in (None, "0")
    assert at.number_input(key="seed").value == 2**31 - 1 and url(at, "seed") == str(2**31 - 1)
    assert control(at, "min_p") == 0.0 and url(at, "min_p") in (None, "0.0", "0")
    assert control(at, "top_p") == 1.0 and url(at, "top_p") in (None, "1.0", "1")
    assert [s.token_id for s in at.session_state["nt_path"].steps] == [1, 2] and url(at, "path") == "1p,2p"
    assert at.slider(key="nt_show").value == 15 and url(at, "nt_show") in (None, "15")


def test_generate_words_and_flags(smollm):
    at = open_link("pages/generate.py", {"strategy": "SAMPLE", "max_new_tokens": "0x10", "seed": "inf",
                                         "run": "2", "gen_markdown": "maybe", "score_text": "a\x00b"})
    noticed(at, "`max_new_tokens` = `'0x10'` is not a number", "`seed` = `'inf'` is outside", "`run` = `'2'` is not 1",
            "`gen_markdown` = `'maybe'` is not true or false", "1 control character(s) were removed from the text")
    assert not [t for t in shown(at) if "SAMPLE" in t]  # a word in another case is read silently
    assert at.radio(key="strategy").value == "sample" and url(at, "strategy") == "sample"
    assert at.slider(key="max_new_tokens").value == 88 and url(at, "max_new_tokens") in (None, "88")
    assert at.number_input(key="seed").value == 2**31 - 1 and url(at, "seed") == str(2**31 - 1)
    assert at.text_area(key="score_text").value == "ab" and url(at, "score_text") in (None, "ab")
    assert url(at, "run") is None and url(at, "gen_markdown") in (None, "false")


def test_compare_columns(smollm):
    at = open_link("pages/compare.py", {"prompt": [LONG, "b c", "d e", "f g", "h i"], "cmodel": ["evil", "gpt2"],
                                        "ctemp": ["nan", "-"], "cmp_k": "99"})
    noticed(at, "The link had 5 prompts", "Column 1: The prompt in the link had 10,000 characters",
            "Column 1: The link asked for model `'evil'`", "Column 1: `temperature` = NaN is not a number",
            "`cmp_k` = `'99'` is outside 3…20; using 20")
    assert not [t for t in shown(at) if "cut to its first" in t]
    assert [at.text_area(key=f"cmp_prompt_{i}").value for i in range(4)] == [CUT, "b c", "d e", "f g"]
    assert at.query_params["prompt"] == [CUT, "b c", "d e", "f g"]
    assert at.selectbox(key="cmp_model_0").value == "(sidebar model)" and at.query_params["cmodel"][:2] == [
        "(sidebar model)", "gpt2"]
    assert at.toggle(key="cmp_own_0").value and at.slider(key="cmp_temperature_0").value == 1.0
    assert at.query_params["ctemp"] == ["1.0", "-", "-", "-"]
    assert at.slider(key="cmp_k").value == 20 and url(at, "cmp_k") in (None, "20")


@pytest.mark.parametrize("params, notice, key, value", [
    ({"layer": "²"}, "`layer` = `'²'` is not a valid index", "layer", 30),
    ({"layer": "99"}, "`layer` = `'99'` does not exist", "layer", 30),
    ({"position": "1" * 5_000}, "`position` = `'11111", "position", 10),
    ({"view": "attention", "head": "xyz"}, "`head` = `'xyz'` is not a valid index", "head", "mean"),
    ({"view": "attention", "head": "99"}, "`head` = `'99'` does not exist", "head", "mean"),
    ({"view": "lens", "head": "xyz"}, "`head` = `'xyz'` is not a valid index", None, None),
], ids=["superscript", "too-deep", "huge", "head-word", "no-such-head", "head-on-another-view"])
def test_inside_indexes(smollm, params, notice, key, value):
    at = open_link("pages/inside.py", params)
    noticed(at, notice)
    bad = next(k for k in params if k != "view")
    if key:
        assert at.selectbox(key=key).value == value
    assert url(at, bad) is None  # the value used is the default, which the URL leaves out


def test_inside_words_are_read_in_any_case(smollm):
    at = open_link("pages/inside.py", {"view": " Attribution", "in_method": "GRADIENT × INPUT", "in_target": "-1"})
    noticed(at, "`in_target` = `'-1'` is not a valid token id")
    assert at.session_state["view"] == "attribution" and url(at, "view") == "attribution"
    assert at.radio(key="in_method").value == "gradient × input" and url(at, "in_method") in (None, "gradient × input")
    assert url(at, "in_target") is None


def test_inside_path_keeps_only_the_steps_used(smollm):
    at = open_link("pages/inside.py", {"path": "1m,60000m,2m"})  # SmolLM2's vocabulary has 49,152 tokens
    noticed(at, "invalid entry `'60000m'` (step 2)")
    assert at.session_state["_in_study"].ids[-1] == 1 and url(at, "path") == "1m"
