"""Bad input on every page: the page renders, says what it corrected, keeps what was typed, and shows any
HTML in the text as text."""

import html.parser
import re
import time

import pytest

from dashboard.tokens import MAX_PROMPT_CHARS
from conftest import open_page, texts

pytestmark = pytest.mark.app

PROMPTS = {
    "empty": "",
    "spaces": "     ",
    "newlines": "\n\n\t\n",
    "huge": "lorem ipsum " * 5000,  # 60,000 characters
    "nul": "before\x00after",
    "controls": "bell\x07 escape\x1b[31m red \x7f",
    "emoji": "🦄🚀 unicorns 👩‍👩‍👧 family",
    "rtl": "שלום עולם مرحبا بالعالم",
    "script": "<script>window.__xss=1</script>",
    "img": '<img src=x onerror="window.__xss=1">',
    "svg": "<svg onload=alert(1)>",
    "js-link": '<a href="javascript:alert(1)">click</a>',
    "md-link": "[click me](javascript:alert(1)) and [site](https://evil.example)",
    "md-image": "![pixel](https://evil.example/track.png)",
    "html-entities": "&lt;script&gt; &amp; &#x3C;b&#x3E;",
    "zero-width": "in\u200bvisible\u2060joiners\ufeff",
}
PAGES = ["pages/tokenize.py", "pages/next-token.py", "pages/generate.py"]
ALLOWED_TAGS = {"div", "span", "mark"}
ALLOWED_ATTRS = {"title", "style"}


class TagAudit(html.parser.HTMLParser):
    """Collects tags and attributes of an HTML fragment."""

    def __init__(self):
        super().__init__()
        self.tags, self.attrs = set(), set()

    def handle_starttag(self, tag, attrs):
        self.tags.add(tag)
        self.attrs.update(a for a, _ in attrs)


def html_bodies(at) -> list[str]:
    """Every st.html body that shows text (the app's own style sheets, a lone <style> with no markup, are not)."""
    return [e.proto.body for e in at.get("html") if not re.fullmatch(r"<style>[^<]*</style>", e.proto.body)]


@pytest.mark.parametrize("page", PAGES)
@pytest.mark.parametrize("name", list(PROMPTS))
def test_bad_prompt(smollm, page, name):
    prompt = PROMPTS[name]
    at = open_page(page)
    start = time.perf_counter()
    at.text_area(key="prompt").set_value(prompt).run()
    assert time.perf_counter() - start < 60  # bounded work, even for 60,000 characters
    assert not at.exception
    assert at.text_area(key="prompt").value == prompt  # nothing the user typed is lost
    shown = texts(at)
    if not prompt.strip():
        assert "empty" in shown or "whitespace" in shown
    if name == "huge":
        assert f"cut to its first {MAX_PROMPT_CHARS:,}" in shown
    if name in ("nul", "controls"):
        assert "control character" in shown
    for body in html_bodies(at):
        audit = TagAudit()
        audit.feed(body)
        assert audit.tags <= ALLOWED_TAGS, audit.tags
        assert audit.attrs <= ALLOWED_ATTRS, audit.attrs
        assert "<script" not in body and "<img" not in body and "<svg" not in body


@pytest.mark.parametrize("name", ["script", "img", "md-link", "md-image"])
def test_generated_and_scored_text_is_never_html(smollm, name):
    at = open_page("pages/generate.py")
    at.text_area(key="score_text").set_value(PROMPTS[name]).run()
    assert not at.exception
    for body in html_bodies(at):
        audit = TagAudit()
        audit.feed(body)
        assert audit.tags <= ALLOWED_TAGS and audit.attrs <= ALLOWED_ATTRS
    at.text_area(key="prompt").set_value(PROMPTS[name]).run()
    at.slider(key="max_new_tokens").set_value(3).run()
    at.button(key="gen_go").click().run()
    assert not at.exception
    for body in html_bodies(at):  # the rank-coloured view
        audit = TagAudit()
        audit.feed(body)
        assert audit.tags <= ALLOWED_TAGS and audit.attrs <= ALLOWED_ATTRS
    at.toggle(key="gen_markdown").set_value(True).run()
    assert not at.exception
    markdown = "\n".join(m.value for m in at.markdown)
    assert "<img" not in markdown and "<script" not in markdown and "](" not in markdown.replace("\\](", "")


def test_compare_column_with_bad_prompt_keeps_the_others(smollm):
    at = open_page("pages/compare.py")
    at.text_area(key="cmp_prompt_1").set_value("   ").run()
    assert not at.exception
    assert "whitespace" in texts(at)
    assert len(at.get("vega_lite_chart")) == 1  # the other column is still shown


def test_broken_local_model_shows_an_error_panel_and_other_models_work(smollm, monkeypatch, tmp_path):
    folder = tmp_path / "broken"
    folder.mkdir()
    (folder / "config.json").write_text('{"model_type": "llama"}')
    (folder / "model.safetensors").write_bytes(b"\x00" * 64)  # not a safetensors file
    monkeypatch.setenv("TOKENSCOPE_LOCAL_MODELS", str(folder))
    at = open_page("pages/next-token.py", model="local-broken")
    assert at.session_state["model"] == "local-broken"
    assert "could not be loaded" in texts(at) or "not available" in texts(at)
    at = open_page("pages/tokenize.py")  # the bundled model still works
    assert len(at.dataframe) == 1
