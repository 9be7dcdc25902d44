"""Every link parameter is parsed totally. Property-based tests over links.link_params() — the one table of
link parameters, so a parameter added to it later is covered here without editing this file — then
check_params as a whole, decode_path and Compare's per-column values. Fast: no model, no Streamlit run."""

from __future__ import annotations

import math
import re
import unicodedata

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st
from hypothesis.configuration import set_hypothesis_home_dir

from conftest import ROOT
from dashboard import links

set_hypothesis_home_dir(ROOT / "tests" / "artifacts" / "hypothesis")  # its caches stay out of the checkout (ignored)

MODELS = ["smollm2-135m", "gpt2", "distilgpt2", "local-notes"]
DEFAULT = "smollm2-135m"
TABLES = {multi: links.link_params(MODELS, DEFAULT, multi_prompt=multi) for multi in (False, True)}
PARAMS = {**{p.name: p for p in TABLES[False].values()}, "prompt (compare)": TABLES[True]["prompt"]}
SPACE = " \t\n\r\f\v"
PROPERTY = settings(max_examples=150, deadline=None, database=None)

# ---------------------------------------------------------------------------------------------- hostile strings

ANY_CHAR = st.characters(exclude_categories=())  # every code point: NUL, controls, lone surrogates, unassigned
any_text = st.text(ANY_CHAR, max_size=40)
huge_text = st.builds(lambda piece, n: piece * n, st.text(ANY_CHAR, min_size=1, max_size=3), st.integers(1_000, 12_000))
digit_runs = st.one_of(st.integers(min_value=0).map(str), st.text("0123456789", min_size=1, max_size=6_000))


def _translate(s: str, zero: str) -> str:
    """`s` with its ASCII digits written in another script's digits (zero: that script's 0)."""
    return s.translate({ord("0") + i: ord(zero) + i for i in range(10)})


SUPERSCRIPT = str.maketrans("0123456789", "⁰¹²³⁴⁵⁶⁷⁸⁹")
SPELLINGS = [  # ways to write a whole number in a link, plain and not
    lambda s: s, lambda s: "+" + s, lambda s: "-" + s, lambda s: f" {s} ", lambda s: s + ".0", lambda s: s + "e0",
    lambda s: s + "e999", lambda s: s + "e-999", lambda s: "0x" + s, lambda s: "_".join(s), lambda s: s + "_0",
    lambda s: _translate(s, "０"), lambda s: _translate(s, "٠"), lambda s: _translate(s, "०"),
    lambda s: s.translate(SUPERSCRIPT), lambda s: "\x00" + s, lambda s: s + "\x00", lambda s: s + "\ud800",
    lambda s: "--" + s, lambda s: s + "%", lambda s: s + ",", lambda s: s + ".", lambda s: "." + s,
    lambda s: s + "\u200b", lambda s: "\u00a0" + s, lambda s: s + "\x1c", lambda s: s + "m", lambda s: s + "j",
]
spelled_numbers = st.builds(lambda digits, spell: spell(digits), digit_runs, st.sampled_from(SPELLINGS))
WORDS = sorted({
    "", " ", "\x00", "\ud800", "\udfff", "inf", "-inf", "+inf", "Infinity", "-infinity", "nan", "NaN", "-nan", "1e999",
    "-1e999", "1e-999", "-0", "-0.0", "+0", "0x10", "1_000", "１２", "٣", "²", "½", "Ⅻ", "mean", "MEAN", " mean",
    "true", "TRUE", "False", " yes", "on", "off", "no", "1", "0", "2", "-", "--", "(none)", "(sidebar model)",
    "gpt2", "GPT2", " gpt2", "lens", "Lens", " attention ", "Score text", "score text", "gradient × input",
    "gradient x input", "1m,2s,3p", "1,2,<b>", "9999999", "10000000", "<script>alert(1)</script>", "../../etc",
    *(c for p in PARAMS.values() for c in (*(p.control.choices if p.control else ()), *p.choices, *p.words)),
})
hostile = st.one_of(any_text, spelled_numbers, st.sampled_from(WORDS), huge_text, st.floats().map(repr),
                    st.integers().map(str))

# ---------------------------------------------------------------------------------------------- the oracle

_DECIMAL = re.compile(r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")
_ENTRY = re.compile(r"([0-9]{1,7})([msp]?)")
PLAIN_NOT = object()  # the raw text says no value plainly


def _bad_char(ch: str) -> bool:
    """A character no text value may keep: controls (tabs and newlines aside) and lone surrogates."""
    return ch not in "\n\t" and unicodedata.category(ch) in ("Cc", "Cs")


def _small_int(word: str) -> int | None:
    """The value of an ASCII digit string, or None when it is not one (or far too long to be an index)."""
    if not (word.isascii() and word.isdigit()):
        return None
    digits = word.lstrip("0") or "0"
    return int(digits) if len(digits) <= 20 else 10**20


def plain(p: links.Param, raw: str):
    """What `raw` plainly says as a value of `p`, or PLAIN_NOT: written independently of the parsers."""
    word = raw.strip(SPACE)
    if p.kind == "number":
        if raw in p.words:
            return raw
        return float(word) if _DECIMAL.fullmatch(word) else PLAIN_NOT
    if p.kind == "choice":
        match = [c for c in p.control.choices if c.lower() == word.lower()]
        return match[0] if len(match) == 1 else PLAIN_NOT
    if p.kind == "model":
        return raw if raw in p.choices else PLAIN_NOT
    if p.kind == "bool":
        said = {**dict.fromkeys(("true", "1", "yes", "on"), True), **dict.fromkeys(("false", "0", "no", "off"), False)}
        return said.get(word.lower(), PLAIN_NOT) if raw.isascii() else PLAIN_NOT
    if p.kind == "text":
        return raw if len(raw) <= p.limit and not any(_bad_char(ch) for ch in raw) else PLAIN_NOT
    if p.kind == "index":
        if word in p.words:
            return word
        n = _small_int(word)
        return n if n is not None and n <= p.limit else PLAIN_NOT
    if p.kind == "path":
        entries = raw.split(",") if raw else []
        ok = len(entries) <= links.MAX_PATH_STEPS and all(_ENTRY.fullmatch(e.strip(SPACE)) for e in entries)
        if not ok:
            return PLAIN_NOT
        steps = [_ENTRY.fullmatch(e.strip(SPACE)) for e in entries]
        return ",".join(f"{int(m[1])}{m[2] or 'p'}" for m in steps) or None
    if p.kind == "flag":
        return True if raw == "1" else PLAIN_NOT
    raise AssertionError(f"{p.name}: kind {p.kind!r} has no oracle here yet: add one")


def valid(p: links.Param, value) -> bool:
    """Whether `value` is one `p` may take (within bounds, one of the choices, a clean short text, …)."""
    if p.kind == "number":
        c = p.control
        if value in p.words:
            return True
        kind_ok = type(value) is int if c.kind is int else type(value) is float
        return kind_ok and math.isfinite(value) and c.low <= value <= c.high
    if p.kind == "choice":
        return value in p.control.choices
    if p.kind == "model":
        return value in p.choices
    if p.kind == "bool":
        return type(value) is bool
    if p.kind == "text":
        return type(value) is str and len(value) <= p.limit and not any(_bad_char(ch) for ch in value)
    if p.kind == "index":
        return value is None or value in p.words or (type(value) is int and 0 <= value <= p.limit)
    if p.kind == "path":
        if value is None:
            return True
        entries = value.split(",")
        return len(entries) <= links.MAX_PATH_STEPS and all(re.fullmatch(r"[0-9]{1,7}[msp]", e) for e in entries)
    if p.kind == "flag":
        return value in (None, True)
    raise AssertionError(f"{p.name}: kind {p.kind!r} has no validity check here yet: add one")


def _in_domain(p: links.Param, said) -> bool:
    """Whether a plainly said value needs no correction at all (in bounds, whole where it must be)."""
    if p.kind != "number" or said in p.words:
        return True
    c = p.control
    return c.low <= said <= c.high and (c.kind is not int or float(said).is_integer())


def with_examples(name: str, values: list[str]):
    """@example(name=v) for each of `values`: cases hypothesis always tries first."""
    def wrap(test):
        for value in reversed(values):
            test = example(**{name: value})(test)
        return test
    return wrap

# ---------------------------------------------------------------------------------------------- every parameter


@pytest.mark.parametrize("name", sorted(PARAMS))
@PROPERTY
@given(raw=hostile)
@with_examples("raw", ["²", "9" * 5_000, "1e999", "-0", "0x10", "１２", "1_0", " 7 ", "\x00", "\ud800", "nan", "inf",
                       "x" * 10_000, ""])
def test_every_link_parameter_parses_any_text_totally(name, raw):
    p = PARAMS[name]
    value, notice = p.parse(raw)  # never raises
    assert valid(p, value), (name, raw[:60], value)
    assert notice is None or (isinstance(notice, str) and notice)
    said = plain(p, raw)
    if said is PLAIN_NOT or not _in_domain(p, said):
        assert notice, f"{name}: {raw[:60]!r} became {value!r} without a notice"
    else:
        assert (value, notice) == (said, None), (name, raw[:60])
    if value is not None:  # what the URL then holds reads back as the same value, silently: no rerun loops
        assert p.parse(p.text(value)) == (value, None), (name, value)


@pytest.mark.parametrize("name", sorted(PARAMS))
def test_every_parameter_has_a_valid_default(name):
    p = PARAMS[name]
    assert p.default is None or valid(p, p.default)
    if p.default is not None:
        assert p.parse(p.text(p.default)) == (p.default, None)


def test_the_table_has_the_parameters_of_every_page_with_their_bounds_and_defaults():
    table = TABLES[False]

    def spec(name):
        p = table[name]
        c = p.control
        return p.kind, p.default, (c.low, c.high) if c and c.kind is not str else (c.choices if c else p.choices)

    assert spec("nt_view") == ("choice", "probability", ("probability", "log-probability", "logit"))
    assert spec("nt_show") == ("number", 15, (5, 50))
    assert spec("nt_log")[:2] == ("bool", False) and spec("cmp_processed")[:2] == ("bool", False)
    assert spec("gen_markdown")[:2] == ("bool", False)
    assert (table["nt_find"].kind, table["nt_find"].limit) == ("text", 100)
    assert spec("cmp_k") == ("number", 8, (3, 20))
    assert spec("tok_compare") == ("model", "(none)", ("(none)", *MODELS))
    assert (table["score_text"].kind, table["score_text"].limit) == ("text", 4_000)
    assert spec("gen_tab") == ("choice", "Generate", ("Generate", "Score text"))
    assert (table["in_target"].kind, table["in_target"].default) == ("index", None)
    assert spec("in_method") == ("choice", "occlusion", ("occlusion", "gradient × input"))
    assert spec("model") == ("model", DEFAULT, tuple(MODELS))
    assert {"layer", "head", "position", "view", "run", "path", "prompt", "cmodel", "ctemp", "ctop_p"} <= set(table)
    from dashboard.sampling import CONTROLS

    assert set(CONTROLS) <= set(table)
    assert [TABLES[True]["prompt"].columns, table["prompt"].columns] == [links.MAX_COLUMNS, 1]


def test_next_token_views_are_the_charts_views():
    from dashboard.charts import VIEWS

    assert links.NEXT_TOKEN_VIEWS == VIEWS


def test_bools_read_what_a_bound_toggle_writes():
    from streamlit.runtime.state.query_params import _coerce_value_for_query_url, parse_url_param

    for p in (p for p in PARAMS.values() if p.kind == "bool"):
        for value in (True, False):
            written = _coerce_value_for_query_url(value, "bool_value")  # Streamlit's own serialisation
            assert p.text(value) == written and p.parse(written) == (value, None)
            assert parse_url_param(p.text(value).upper(), "bool_value") is value
            assert p.parse(p.text(value).upper()) == (value, None)
        assert p.parse("maybe")[0] is p.default and p.parse("maybe")[1]


@pytest.mark.parametrize("raw, value", [("²", None), ("1" * 5_000, None), ("-0", None), ("0x10", None),
                                        ("１２", None), ("1_0", None), ("12", 12), (" 12 ", 12), ("0012", 12)])
def test_indexes_are_ascii_digits(raw, value):
    got, notice = TABLES[False]["layer"].parse(raw)
    assert got == value and (notice is None) == (value is not None)


@pytest.mark.parametrize("raw, value, noticed", [
    ("-0", 0.0, False), ("1e999", 1.0, True), ("-1e999", 0.0, True), ("1e-999", 0.0, False), ("0x10", 0.0, True),
    ("１", 0.0, True), ("1_0", 0.0, True), (" 0.5 ", 0.5, False), ("+0.5", 0.5, False), ("\x000.5", 0.0, True),
    ("9" * 5_000, 1.0, True), ("nan", 0.0, True),
])
def test_numbers_are_plain_ascii_decimals(raw, value, noticed):
    got, notice = TABLES[False]["min_p"].parse(raw)
    assert got == value and str(got) != "-0.0" and (notice is not None) == noticed


def test_a_long_prompt_is_cut_and_cleaned_with_one_notice():
    value, notice = TABLES[False]["prompt"].parse("a\x00b" + "x" * 10_000)
    assert value == ("ab" + "x" * 10_000)[:4_000]
    assert "10,003 characters" in notice and "cut to the first 4,000" in notice and "1 control character" in notice

# ---------------------------------------------------------------------------------------------- check_params

link_keys = st.one_of(st.sampled_from(sorted(TABLES[True])), any_text)
link_params = st.dictionaries(link_keys, st.lists(hostile, max_size=6), max_size=8)


def _apply(params: dict[str, list[str]], query: dict[str, list[str] | None]) -> dict[str, list[str]]:
    """`params` with check_params' URL corrections applied, as apply_link writes them."""
    out = dict(params)
    for name, values in query.items():
        if values is None:
            out.pop(name, None)
        else:
            out[name] = values
    return out


@PROPERTY
@given(params=link_params, multi=st.booleans())
@example(params={"layer": ["²"], "head": ["xyz"], "prompt": ["x" * 10_000]}, multi=False)
@example(params={"prompt": ["x" * 10_000, "b", "c", "d", "e"], "ctemp": ["nan", "-", "9"], "cmodel": ["evil"]},
         multi=True)
@example(params={"temperature": ["0.2", "1.8"], "seed": ["9" * 5_000], "run": ["yes"]}, multi=False)
def test_check_params_is_total_and_its_corrected_url_is_final(params, multi):
    state = links.check_params(params, MODELS, DEFAULT, multi_prompt=multi)
    table = TABLES[multi]
    for name, value in state.values.items():
        p = table[name]
        values = value if p.columns > 1 else [value]
        assert len(values) <= p.columns and all(valid(p, v) for v in values), (name, value)
    assert set(state.query) <= set(params) and set(state.query) <= set(table)  # unknown keys are left alone
    assert state.changed <= set(table)
    # the corrected URL is final: read again, it needs no correction and gives the same values
    again = links.check_params(_apply(params, state.query), MODELS, DEFAULT, multi_prompt=multi)
    assert (again.notices, again.query, again.values) == ([], {}, state.values)


def test_check_params_rewrites_each_corrected_value_and_drops_ignored_ones():
    state = links.check_params({"head": ["xyz"], "layer": ["²"], "temperature": ["0.2", "1.8"], "top_k": ["7"],
                                "prompt": ["x" * 10_000], "nt_show": ["٣"], "utm": ["<b>"]}, MODELS, DEFAULT)
    assert state.query == {"head": None, "layer": None, "temperature": ["0.2"], "prompt": ["x" * 4_000],
                           "nt_show": ["15"]}
    assert len(state.notices) == 5 and "head" not in state.values and state.values["top_k"] == 7


def test_compare_columns_are_read_one_by_one_with_the_column_named():
    state = links.check_params({"prompt": ["a", "x" * 5_000, "c", "d", "e"], "cmodel": ["gpt2", "evil"],
                                "ctemp": ["-", "nan", "0.3"], "ctop_p": ["<b>"]}, MODELS, DEFAULT, multi_prompt=True)
    assert state.values["prompt"] == ["a", "x" * 4_000, "c", "d"]
    assert state.values["cmodel"] == ["gpt2", links.COMPARE_SIDEBAR]
    assert state.values["ctemp"] == ["-", 1.0, 0.3] and state.values["ctop_p"] == [1.0]
    assert state.query == {"prompt": ["a", "x" * 4_000, "c", "d"], "cmodel": ["gpt2", links.COMPARE_SIDEBAR],
                           "ctemp": ["-", "1.0", "0.3"], "ctop_p": ["1.0"]}
    assert [n.split(":")[0] for n in state.notices if n.startswith("Column")] == ["Column 2"] * 3 + ["Column 1"]
    assert any("at most 4" in n for n in state.notices)

# ---------------------------------------------------------------------------------------------- the token path

path_entries = st.builds(lambda n, spell, code: spell(str(n)) + code, st.integers(min_value=0),
                         st.sampled_from(SPELLINGS[:6] + SPELLINGS[11:14]), st.sampled_from(["", "m", "s", "p", "x"]))
paths = st.one_of(any_text, st.lists(path_entries, max_size=12).map(",".join),
                  st.integers(0, 1_000).map(lambda n: ",".join(["1m"] * n)), huge_text)


@PROPERTY
@given(raw=paths, vocab=st.integers(min_value=1, max_value=10**8))
@example(raw="1,2,<b>", vocab=50_000)
@example(raw="99999999", vocab=50_000)
@example(raw="1m," * 300, vocab=5)
def test_decode_path_is_total(raw, vocab):
    steps, notice = links.decode_path(raw, vocab)
    assert len(steps) <= links.MAX_PATH_STEPS
    assert all(type(t) is int and 0 <= t < min(vocab, links.MAX_TOKEN_ID + 1) for t, _ in steps)
    assert all(how.endswith(" (from link)") for _, how in steps)
    entries = raw.split(",") if raw else []
    assert (notice is None) == (len(steps) == len(entries))
    assert links.decode_path(links.path_text(steps), vocab) == (steps, None)


@PROPERTY
@given(raw=hostile)
def test_a_notice_quotes_a_link_value_in_a_code_span_no_markdown_can_leave(raw):
    from dashboard.sampling import shown

    quoted = shown(raw)
    fence = re.match(r"`+", quoted)[0]
    inner = quoted[len(fence):-len(fence)]
    assert quoted.endswith(fence) and inner[:1] in "'\"" and inner[-1:] in "'\""  # repr's quotes, then the fence
    assert all(len(run) < len(fence) for run in re.findall(r"`+", inner))  # no backtick run closes the span early
    assert "\n" not in quoted and len(inner) <= 10 * 41 + 2  # at most 41 characters, each at most \UXXXXXXXX


@pytest.mark.parametrize("name", ["layer", "head", "position", "gen_inspect", "score_inspect"])
def test_an_index_up_to_max_index_is_kept_and_one_above_is_ignored(name):
    p = links.link_params(MODELS, DEFAULT)[name]
    assert p.limit == links.MAX_INDEX
    assert links.parse_value(p, str(links.MAX_INDEX)) == (links.MAX_INDEX, None)
    assert links.parse_value(p, "0" * 30 + "7") == (7, None)  # leading zeros are no way past the limit
    for raw in (str(links.MAX_INDEX + 1), "999999", "1" + "0" * 40):
        value, notice = links.parse_value(p, raw)
        assert value is None and f"`{name}`" in notice and "ignored" in notice, raw
    state = links.check_params({name: [str(links.MAX_INDEX + 1)]}, MODELS, DEFAULT)
    assert name not in state.values and state.query == {name: None} and len(state.notices) == 1
