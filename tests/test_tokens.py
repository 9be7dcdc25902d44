"""Tokenization rows, visible whitespace, prompt cleaning and safe rendering."""

import pytest

from conftest import SEED_IDS, SEED_PROMPT, SEED_TOKENS
from dashboard.charts import chips_html, marked_text_html
from dashboard.tokens import (
    MAX_PROMPT_CHARS,
    clean_prompt,
    encode,
    markdown_literal,
    prompt_problem,
    safe_markdown,
    token_rows,
    visible,
)


def test_seed_sentence_gives_the_notebooks_ids_and_tokens(gpt2_tokenizer):
    rows = token_rows(gpt2_tokenizer, SEED_PROMPT)
    assert [r.id for r in rows] == SEED_IDS
    assert [r.text for r in rows] == SEED_TOKENS
    assert [r.index for r in rows] == list(range(12))
    assert rows[3].visible == "␣is"
    assert rows[3].bytes == "20 69 73"
    assert (rows[2].start, rows[2].end) == (2, 7)


@pytest.mark.parametrize(
    "text",
    [
        SEED_PROMPT,
        "héllo wörld",
        "emoji 🙂🚀 and 日本語のテキスト",
        "right-to-left: שלום עולם مرحبا",
        "tabs\tand\nnew lines\r\n",
        "<script>alert(1)</script>",
        "a",
    ],
)
def test_spans_cover_the_text_and_bytes_rebuild_it(gpt2_tokenizer, text):
    rows = token_rows(gpt2_tokenizer, text)
    assert b"".join(bytes.fromhex(r.bytes) for r in rows) == text.encode("utf-8")
    assert rows[0].start == 0 and rows[-1].end == len(text)
    for a, b in zip(rows, rows[1:]):
        assert a.start <= b.start and a.end <= b.end and b.start <= a.end
    assert [r.id for r in rows] == encode(gpt2_tokenizer, text)


def test_multibyte_character_split_across_tokens_keeps_its_span(gpt2_tokenizer):
    rows = token_rows(gpt2_tokenizer, "🙂")
    assert len(rows) > 1  # GPT-2 splits this emoji's 4 bytes over several tokens
    assert all((r.start, r.end) == (0, 1) for r in rows)


@pytest.mark.parametrize(
    "raw, shown",
    [(" the", "␣the"), ("\n", "↵"), ("\t", "→"), ("a\x00b", "a␀b"), ("", "∅"), ("\u200b", "\\u200b")],
)
def test_visible_marks_whitespace_and_control_characters(raw, shown):
    assert visible(raw) == shown


@pytest.mark.parametrize(
    "raw, cleaned, n_notices",
    [
        ("hello", "hello", 0),
        ("a\x00b\x07c", "abc", 1),
        ("keep\ttabs\nand lines", "keep\ttabs\nand lines", 0),
        ("x" * (MAX_PROMPT_CHARS + 10), "x" * MAX_PROMPT_CHARS, 1),
        (None, "", 0),
    ],
)
def test_clean_prompt(raw, cleaned, n_notices):
    text, notices = clean_prompt(raw)
    assert text == cleaned
    assert len(notices) == n_notices


@pytest.mark.parametrize("text, bad", [("", True), ("   \n\t", True), ("ok", False), (" x ", False)])
def test_prompt_problem(text, bad):
    assert (prompt_problem(text) is not None) == bad


def test_safe_markdown_never_forms_html_links_or_images():
    out = safe_markdown('<img src=x onerror="alert(1)"> [click](javascript:alert(1)) ![i](http://x/y.png)')
    assert "<" not in out and ">" not in out.replace("&gt;", "")
    assert "\\[click\\]" in out and "!\\[" not in out.replace("\\!\\[", "")


def test_chips_and_marked_text_escape_token_text(gpt2_tokenizer):
    rows = token_rows(gpt2_tokenizer, "<script>alert('x')</script>")
    html = chips_html(rows)
    assert "<script>" not in html and "&lt;" in html
    marked = marked_text_html("<b>bold</b>", ["<img src=x onerror=alert(1)>"])
    assert "<b>" not in marked and "<img" not in marked and "&lt;img" in marked


HOSTILE_CELLS = ["## heading", "# x", "**bold**", "__u__", "*i*", "_i_", "`code`", "[a](http://example.com)",
                 "![i](x.png)", "<b>x</b>", "<script>x</script>", "1. item", "2) item", "- item", "+ item", "> quote",
                 "---", "***", "~~s~~", "| a | b |", ":smile:", ":red[x]", "$x^2$", "&amp;", "a\\*b", "www.example.com",
                 "https://example.com", "=HYPERLINK(x)", "28.22%", "top-8 overlap", "␣the", "\\", "a\nb", "  - x"]


def _rendered_as_text(md, text: str) -> bool:
    from markdown_it.common.utils import escapeHtml

    return md.render(markdown_literal(text)).strip() == f"<p>{escapeHtml(text)}</p>"


def test_a_table_cell_reads_exactly_as_its_text_whatever_the_token(gpt2_tokenizer):
    """st.table renders cells as Markdown: every token of GPT-2's vocabulary (as the tables show it) and hostile
    text, escaped, renders to itself: no heading, emphasis, link, list, HTML or code."""
    from markdown_it import MarkdownIt

    md = MarkdownIt("commonmark").enable(["table", "strikethrough"])
    for text in HOSTILE_CELLS:
        shown = visible(text)  # the tables show token text with its whitespace made visible
        assert _rendered_as_text(md, shown), (text, markdown_literal(text), md.render(markdown_literal(text)))
    bad = [t for t in (visible(gpt2_tokenizer.decode([i])) for i in range(len(gpt2_tokenizer)))
           if not _rendered_as_text(md, t)]
    assert not bad, bad[:20]
    assert markdown_literal("28.22%") == "28.22%" and markdown_literal("top-8 overlap") == "top-8 overlap"
