"""Hostile links in a real browser: every page renders, says what it corrected, shows no traceback, and
runs no script from the URL, on every page and for every kind of bad value.

Markup in a link must stay text. For each markup payload the test checks three things that a page which turned
the payload into elements would fail: no element made from it is in the DOM (injected_elements), no request
leaves for the payload's address (XSS_URL, which nothing else on the page uses), and the payload's characters
are on the page as text.
"""

from __future__ import annotations

from urllib.parse import urlencode, urlsplit

import pytest

from .conftest import XSS_JS, XSS_SRC, XSS_URL, box_values, injected_elements, open_app, shown_text

pytestmark = pytest.mark.e2e

# Each payload would, if it became markup, request XSS_URL and/or run XSS_JS (window.__xss=1). Attribute values are
# quoted (Markdown's raw HTML needs that) and the address is protocol-relative (not autolinked by Markdown).
SCRIPT = f'<script src="{XSS_SRC}xss-script.js"></script><script>{XSS_JS}</script>'
IMG = f'<img src="{XSS_SRC}xss-img.png" onerror="{XSS_JS}">'
SVG = f'<svg onload="{XSS_JS}"><image href="{XSS_SRC}xss-svg.png"/></svg>'
IFRAME = f'<iframe src="{XSS_SRC}xss-frame.html"></iframe>'
JS_LINK = f'<a href="javascript:{XSS_JS}">x</a>'
MD = f"[click](javascript:{XSS_JS}) ![i]({XSS_SRC}xss-md.png)"
SHORT_IMG = f'<img src="{XSS_SRC}n.png">'  # whole within the 40 characters a notice quotes of a bad value

# (page, params, notice the page must show or None, where the payload must be shown as text: ("page", text) for
# the visible page outside text boxes, ("box", text) for a prompt box that holds it as typed, or None)
CASES = [
    ("next-token", {"temperature": "NaN"}, "not a number", None),
    ("next-token", {"temperature": "inf"}, "outside", None),
    ("next-token", {"temperature": "-4"}, "outside", None),
    ("next-token", {"top_k": "1e12"}, "outside", None),
    ("next-token", {"top_k": "ten"}, "not a number", None),
    ("next-token", {"top_p": "0"}, "outside", None),
    ("next-token", {"min_p": "-1"}, "outside", None),
    ("next-token", {"repetition_penalty": "0"}, "outside", None),
    ("next-token", {"seed": "-7"}, "outside", None),
    ("next-token", {"path": "1,2," + SHORT_IMG}, "invalid entry", ("page", SHORT_IMG)),
    ("next-token", {"path": "99999999"}, "invalid entry", None),
    ("next-token", {"model": "/etc/passwd"}, "not one of the registered models", None),
    ("next-token", {"model": "https://evil.example/model"}, "not one of the registered models", None),
    ("next-token", [("temperature", "0.2"), ("temperature", "1.8")], "appeared 2 times", None),
    ("generate", {"max_new_tokens": "1000000"}, "outside", None),
    ("generate", {"max_new_tokens": "0"}, "outside", None),
    ("generate", {"strategy": SHORT_IMG}, "is not one of", ("page", SHORT_IMG)),
    ("generate", {"num_beams": "99"}, "outside", None),
    ("generate", {"precision": "fp8"}, "is not one of", None),
    ("generate", {"temperature": "1e308"}, "outside", None),
    ("generate", {"seed": "abc"}, "not a number", None),
    ("generate", {"model": "../../secret"}, "not one of the registered models", None),
    ("tokenize", {"model": "gpt2", "prompt": "x" * 60_000}, "cut", None),
    ("tokenize", {"model": "C:\\models\\evil"}, "not one of the registered models", None),
    ("tokenize", {"prompt": SVG}, None, ("page", SVG)),
    ("tokenize", {"prompt": JS_LINK}, None, ("page", JS_LINK)),
    ("tokenize", {"prompt": MD}, None, ("page", MD)),
    ("tokenize", {"prompt": IFRAME}, None, ("page", IFRAME)),
    ("tokenize", {"prompt": "\x00\x01\x02 control"}, "control character", None),
    ("tokenize", {"prompt": "🦄 emoji and שלום RTL"}, None, None),
    ("tokenize", {"prompt": "   "}, "only whitespace", None),
    ("tokenize", {"unknown": "1", "evil": SCRIPT}, None, None),  # an unknown key is ignored: shown nowhere
    ("compare", [("prompt", "a"), ("prompt", "b"), ("prompt", "c"), ("prompt", "d"), ("prompt", "e")], "at most 4", None),
    ("compare", [("prompt", IMG), ("prompt", "fine")], None, ("box", IMG)),  # shown only in its box
    ("compare", {"top_p": "nan"}, "not a number", None),
    ("compare", {"model": "gpt3"}, "not one of the registered models", None),
    ("", {"model": "javascript:alert(1)"}, "not one of the registered models", None),
    ("", {"temperature": "NaN", "top_k": "-1", "seed": "x"}, "not a number", None),
    ("generate", {"prompt": SCRIPT, "max_new_tokens": "3"}, None, ("box", SCRIPT)),  # nothing generated yet
    ("next-token", {"prompt": IMG}, None, ("page", IMG)),
    ("next-token", {"prompt": SCRIPT + IFRAME}, None, ("page", SCRIPT + IFRAME)),
    ("next-token", {"prompt": "x" * 60_000}, "cut", None),
]


@pytest.mark.parametrize("path, params, notice, literal", CASES,
                         ids=[f"{c[0] or 'home'}-{i}" for i, c in enumerate(CASES)])
def test_hostile_link(page, base_url, recorded, requests_seen, path, params, notice, literal):
    query = urlencode(params, doseq=True)
    open_app(page, f"{base_url}/{path}?{query}")
    main = page.get_by_test_id("stApp").inner_text()
    assert "Traceback" not in main
    if notice:
        assert notice in main, main[-1500:]
    assert injected_elements(page) == []
    # the app's own requests go to base_url (a link's URL may carry "evil.example" in its query: that is fine)
    assert [u for u in requests_seen if u.startswith(XSS_URL) or urlsplit(u).hostname == "evil.example"] == []
    assert recorded.dialogs == []
    if literal:
        where, text = literal
        if where == "page":  # rendered as text by the page itself (chips, marked text, a notice), not only typed
            assert text in shown_text(page), shown_text(page)[-3000:]
        else:
            assert text in box_values(page)


MARKUP = {"script": SCRIPT, "img": IMG, "svg": SVG, "iframe": IFRAME, "js-link": JS_LINK, "short-img": SHORT_IMG}


@pytest.mark.parametrize("payload", list(MARKUP.values()), ids=list(MARKUP))
def test_the_checks_find_payloads_that_became_markup(page, base_url, recorded, requests_seen, payload):
    """The checks of test_hostile_link can fail: each payload, put into the page as markup (what a page that
    rendered it as HTML would do), is found as an element, and the ones with an address send a request there."""
    open_app(page, f"{base_url}/tokenize")
    assert injected_elements(page) == []
    page.evaluate("""(html) => { const box = document.createElement('div'); box.innerHTML = html;
                                 document.querySelector('[data-testid="stMain"]').appendChild(box); }""", payload)
    page.wait_for_timeout(1_000)  # let the browser try to load what the markup asks for
    assert injected_elements(page) != []
    if XSS_SRC in payload and "<script" not in payload:  # an inserted <script> is inert: it loads nothing
        assert [u for u in requests_seen if u.startswith(XSS_URL)], requests_seen
    recorded.page_errors.clear()  # a payload's error handler may have thrown: that is this test's doing
