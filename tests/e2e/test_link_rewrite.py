"""A corrected link value in a real browser: no exception, one notice, and the page and the address bar (so
every copied link) hold the value used: a bad index dropped, a long prompt cut."""

from __future__ import annotations

from urllib.parse import parse_qs, urlencode, urlsplit

import pytest

from .conftest import box_values, open_app

pytestmark = pytest.mark.e2e

CUT = "x" * 4_000
CASES = [  # (page, link parameters, the notice (as shown: no backticks), the parameter, its value in the URL
    # afterwards, text on the page)
    ("inside", {"view": "lens", "head": "xyz"}, "head = 'xyz' is not a valid index", "head", None, "Layer 30"),
    ("inside", {"layer": "²"}, "layer = '²' is not a valid index", "layer", None, "Layer 30, after position 10"),
    ("tokenize", {"prompt": "x" * 10_000}, "had 10,000 characters; it was cut to the first 4,000", "prompt", CUT,
     "4,000"),
]


@pytest.mark.parametrize("path, params, notice, key, value, text", CASES, ids=["head-word", "superscript", "long"])
def test_a_corrected_link_value_is_what_the_page_and_the_url_hold(page, base_url, path, params, notice, key, value,
                                                                  text):
    open_app(page, f"{base_url}/{path}?{urlencode(params)}")
    main = page.get_by_test_id("stApp")
    assert page.locator('[data-testid="stException"]').count() == 0
    warnings = page.get_by_test_id("stAlertContentWarning").all_inner_texts()
    assert len(warnings) == 1 and notice in warnings[0], warnings
    assert not [t for t in page.get_by_test_id("stAlertContentInfo").all_inner_texts() if "cut" in t]
    assert parse_qs(urlsplit(page.url).query).get(key) == (None if value is None else [value]), page.url[:300]
    if key == "prompt":  # the page counts the characters it uses
        assert text in page.get_by_test_id("stMetricValue").all_inner_texts()
    else:
        assert text in main.inner_text()
    if key == "prompt":
        assert CUT in box_values(page) and not [v for v in box_values(page) if len(v) > len(CUT)]


def test_a_notice_shows_the_link_value_as_text(page, base_url):
    bad = {"model": "[click](https://evil.example)", "temperature": "**bold** _x_", "seed": ":red[x] $x^2$ a``b"}
    open_app(page, f"{base_url}/tokenize?{urlencode(bad)}")
    alerts = page.get_by_test_id("stAlertContentWarning")
    shown = "\n".join(alerts.all_inner_texts())
    for value in bad.values():
        assert f"'{value}'" in shown, shown
    assert alerts.locator("a, strong, em, span[style*=color], .katex").count() == 0
    assert parse_qs(urlsplit(page.url).query) == {"temperature": ["1.0"], "seed": ["0"]}  # model: the default
