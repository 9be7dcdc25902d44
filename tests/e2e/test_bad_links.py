"""Hostile links in a real browser: every page renders, says what it corrected, shows no traceback, and
runs no script from the URL, on every page and for every kind of bad value."""

from __future__ import annotations

from urllib.parse import urlencode

import pytest

from .conftest import open_app

pytestmark = pytest.mark.e2e

MARK = "window.__xss=1"
CASES = [
    ("next-token", {"temperature": "NaN"}, "not a number"),
    ("next-token", {"temperature": "inf"}, "outside"),
    ("next-token", {"temperature": "-4"}, "outside"),
    ("next-token", {"top_k": "1e12"}, "outside"),
    ("next-token", {"top_k": "ten"}, "not a number"),
    ("next-token", {"top_p": "0"}, "outside"),
    ("next-token", {"min_p": "-1"}, "outside"),
    ("next-token", {"repetition_penalty": "0"}, "outside"),
    ("next-token", {"seed": "-7"}, "outside"),
    ("next-token", {"path": "1,2,<script>" + MARK + "</script>"}, "invalid entry"),
    ("next-token", {"path": "99999999"}, "invalid entry"),
    ("next-token", {"model": "/etc/passwd"}, "not one of the registered models"),
    ("next-token", {"model": "https://evil.example/model"}, "not one of the registered models"),
    ("next-token", [("temperature", "0.2"), ("temperature", "1.8")], "appeared 2 times"),
    ("generate", {"max_new_tokens": "1000000"}, "outside"),
    ("generate", {"max_new_tokens": "0"}, "outside"),
    ("generate", {"strategy": "<img src=x onerror=" + MARK + ">"}, "is not one of"),
    ("generate", {"num_beams": "99"}, "outside"),
    ("generate", {"precision": "fp8"}, "is not one of"),
    ("generate", {"temperature": "1e308"}, "outside"),
    ("generate", {"seed": "abc"}, "not a number"),
    ("generate", {"model": "../../secret"}, "not one of the registered models"),
    ("tokenize", {"model": "gpt2", "prompt": "x" * 60_000}, "cut"),
    ("tokenize", {"model": "C:\\models\\evil"}, "not one of the registered models"),
    ("tokenize", {"prompt": "<svg onload=" + MARK + ">"}, None),
    ("tokenize", {"prompt": '<a href="javascript:' + MARK + '">x</a>'}, None),
    ("tokenize", {"prompt": "[click](javascript:alert(1)) ![i](https://evil.example/p.png)"}, None),
    ("tokenize", {"prompt": "\x00\x01\x02 control"}, "control character"),
    ("tokenize", {"prompt": "🦄 emoji and שלום RTL"}, None),
    ("tokenize", {"prompt": "   "}, "only whitespace"),
    ("tokenize", {"unknown": "1", "evil": "<script>" + MARK + "</script>"}, None),
    ("compare", [("prompt", "a"), ("prompt", "b"), ("prompt", "c"), ("prompt", "d"), ("prompt", "e")], "at most 4"),
    ("compare", [("prompt", "<img src=x onerror=" + MARK + ">"), ("prompt", "fine")], None),
    ("compare", {"top_p": "nan"}, "not a number"),
    ("compare", {"model": "gpt3"}, "not one of the registered models"),
    ("", {"model": "javascript:alert(1)"}, "not one of the registered models"),
    ("", {"temperature": "NaN", "top_k": "-1", "seed": "x"}, "not a number"),
    ("generate", {"prompt": "<script>" + MARK + "</script>", "max_new_tokens": "3"}, None),
    ("next-token", {"prompt": "<img src=x onerror=" + MARK + ">"}, None),
    ("next-token", {"prompt": "x" * 60_000}, "cut"),
]


@pytest.mark.parametrize("path, params, notice", CASES, ids=[f"{c[0] or 'home'}-{i}" for i, c in enumerate(CASES)])
def test_hostile_link(page, base_url, recorded, path, params, notice):
    query = urlencode(params, doseq=True)
    open_app(page, f"{base_url}/{path}?{query}")
    main = page.get_by_test_id("stApp").inner_text()
    assert "Traceback" not in main
    if notice:
        assert notice in main, main[-1500:]
    for frame in page.frames:
        assert frame.evaluate("typeof window.__xss") == "undefined", frame.url
        assert frame.evaluate("document.querySelectorAll('img[src=\"x\"], svg[onload], a[href^=\"javascript\"]').length") == 0
    assert recorded.dialogs == []
