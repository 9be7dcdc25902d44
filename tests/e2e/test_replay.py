"""A shared generation link replays in a real browser: run=1 generates once on opening, with the link's settings."""

from __future__ import annotations

from urllib.parse import quote

import pytest
from playwright.sync_api import expect

from .conftest import open_app
from .test_pages import metric

pytestmark = pytest.mark.e2e
PROMPT = "The capital of France is"
NEW = 12


@pytest.fixture(scope="module")
def raw_text():
    """Raw transformers' greedy `generate` on the bundled model, in this process: prompt + continuation."""
    import torch

    from dashboard import models

    from dashboard.loaded import LOADED
    from dashboard.tokens import encode

    loaded = LOADED.get("smollm2-135m")
    tok = loaded.tokenizer
    ids = torch.tensor([encode(tok, PROMPT)])
    out = loaded.model.generate(input_ids=ids, attention_mask=torch.ones_like(ids), max_new_tokens=NEW,
                                do_sample=False, pad_token_id=tok.eos_token_id)
    return PROMPT, tok.decode(out[0, ids.shape[1]:].tolist())


def test_a_greedy_run_link_shows_exactly_raw_generates_text(page, base_url, raw_text):
    prompt, continuation = raw_text
    open_app(page, f"{base_url}/generate?prompt={quote(prompt)}&max_new_tokens={NEW}&run=1")
    expect(metric(page, "New tokens")).to_have_text(str(NEW), timeout=120_000)  # no button was pressed
    shown = page.get_by_test_id("stHtml").filter(has_text=prompt).first
    assert shown.text_content() == prompt + continuation
    spans = shown.locator("span[title]")
    expect(spans).to_have_count(NEW)
    colours = spans.evaluate_all("s => s.map(e => getComputedStyle(e).backgroundColor)")
    assert set(colours) == {"rgb(187, 247, 208)"}, colours  # greedy: every token is the model's top choice
    assert metric(page, "Stopped by").inner_text() == "length"
