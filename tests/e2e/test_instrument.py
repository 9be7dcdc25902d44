"""Next token's instrument in Chromium: the numbers the browser computes from the spec (read from the chart's SVG,
where each bar and the figures carry their exact values as their description) equal the server's distribution()
over a grid of settings: probabilities within 1e-6, tokens left exact, entropy within 0.005 bits. And a key press
redraws the chart without a script run; the rest of the page and the link follow after the move settles."""

from __future__ import annotations

import re
from urllib.parse import quote

import pytest
import torch

from .conftest import open_app, wait_for_app

pytestmark = pytest.mark.e2e
PROMPT = "Udacity is the best place to learn about generative AI and the best place to learn about"
INPUT = '.vega-bindings input[name="{}_v"]'
NEUTRAL = {"temperature": 1.0, "top_k": 0, "top_p": 1.0, "min_p": 0.0, "repetition_penalty": 1.0}
GRID = [  # temperature > 1, top-p cuts deep in the tail, min-p with top-p and top-k, penalty on a path, greedy
    {}, dict(temperature=1.5, top_p=0.95), dict(temperature=2.0, top_p=0.99), dict(temperature=0.5, top_k=5, top_p=0.6,
    min_p=0.1), dict(temperature=1.2, top_k=40, top_p=0.9, min_p=0.05), dict(temperature=1.9, top_p=0.99, min_p=0.01),
    dict(temperature=1.6, top_p=0.5, repetition_penalty=1.3), dict(temperature=2.0, top_p=0.97, repetition_penalty=2.0),
    dict(temperature=1.8, top_p=0.9, repetition_penalty=1.6, min_p=0.01), dict(temperature=0.0),
    dict(temperature=0.05, top_p=0.5), dict(temperature=1.4, repetition_penalty=1.3, min_p=0.02, top_k=200),
    dict(temperature=1.7, top_k=150, top_p=0.98, repetition_penalty=1.6),  # a top-k cut inside a tail bin
]

READ_JS = """() => {
  const all = (sel) => [...document.querySelectorAll(sel)].map(e => e.getAttribute('aria-label'));
  return {figures: all('[aria-label^="Figures: "]')[0] || null, bars: all('[aria-label*="; after, exact: "]'),
          draw: all('[aria-label^="Draw: "]')[0] || null};
}"""
SET_JS = """([selector, value]) => {
  const input = document.querySelector(selector);
  input.value = value;
  input.dispatchEvent(new Event('input', {bubbles: true}));
  return Number(input.value);
}"""


def read(page) -> dict:
    """What the chart shows now: (tokens left, entropy after, mass kept) and {id: probability after}."""
    r = page.evaluate(READ_JS)
    figures = dict(part.split(": ", 1) for part in r["figures"][len("Figures: "):].split("; "))
    after = {}
    for label in r["bars"]:  # "token: ␣A; id: 5646; rank: 3; …; after, exact: 0.12440…"
        after[int(re.search(r"; id: (\d+);", label).group(1))] = float(label.rsplit("after, exact: ", 1)[1])
    return {"kept": int(figures["tokens left"]), "entropy": float(figures["entropy after, bits"]),
            "mass": float(figures["mass kept"]), "after": after, "draw": r["draw"]}


def model_path(smollm):
    from dashboard.generation import TokenPath
    from dashboard.tokens import encode

    return TokenPath(smollm.model, encode(smollm.tokenizer, PROMPT))


def test_the_browser_computes_what_the_server_computes_over_a_grid(page, base_url, smollm):
    from dashboard.sampling import Settings, distribution, entropy_bits

    path = model_path(smollm)
    open_app(page, f"{base_url}/next-token?prompt={quote(PROMPT)}")
    page.locator(INPUT.format("temperature")).wait_for()
    for case in GRID:
        values = {**NEUTRAL, **case}
        for name, value in values.items():
            assert page.evaluate(SET_JS, [INPUT.format(name), value]) == pytest.approx(value)
        shown = read(page)
        d = distribution(path.logits, Settings(strategy="sample", **values), prev_ids=torch.tensor(path.ids))
        assert shown["kept"] == d.kept, case
        assert shown["entropy"] == pytest.approx(entropy_bits(d.after), abs=0.005), case
        assert shown["mass"] == pytest.approx(d.mass_kept, abs=1e-6), case
        assert len(shown["after"]) >= 1
        for token_id, p in shown["after"].items():
            assert p == pytest.approx(float(d.after[token_id]), abs=1e-6), (case, token_id)


def test_a_key_press_redraws_at_once_and_the_page_follows_when_the_move_settles(page, base_url):
    open_app(page, f"{base_url}/next-token")
    before = read(page)
    table = page.get_by_test_id("stTable").first.inner_text()
    page.locator(INPUT.format("top_k")).focus()
    page.evaluate("() => { window.__runs = 0; new MutationObserver(() => { window.__runs += 1; })"
                  ".observe(document.querySelector('[data-testid=\"stApp\"]'), "
                  "{attributes: true, attributeFilter: ['data-test-script-state']}); }")
    page.keyboard.press("ArrowRight")  # top-k 0 → 1
    page.wait_for_function("() => document.querySelector('[aria-label^=\"Figures: \"]').getAttribute('aria-label')"
                           ".startsWith('Figures: tokens left: 1;')", polling="raf", timeout=5000)
    assert page.evaluate("() => window.__runs") == 0  # redrawn in the browser: no script run started yet
    assert read(page)["kept"] == 1 and before["kept"] == 49_152
    wait_for_app(page)  # the move settles: the values go back to Python
    assert "top_k=1" in page.url
    assert page.get_by_test_id("stTable").first.inner_text() != table  # the table follows
    assert read(page)["kept"] == 1  # and the chart kept its inputs (the spec did not change)
    assert page.locator(INPUT.format("top_k")).input_value() == "1"
    link = page.url
    open_app(page, link)  # the link reopens the view: the input and the chart where they were
    page.locator(INPUT.format("top_k")).wait_for()
    assert page.locator(INPUT.format("top_k")).input_value() == "1" and read(page)["kept"] == 1


def test_clicking_a_bar_appends_that_token_and_again_after_an_undo(page, base_url):
    """Found by the bench: the chart keeps its last click, so clicking the same bar again after Undo used to be no
    change at all (nothing appended)."""
    open_app(page, f"{base_url}/next-token")
    bar = page.locator('[aria-label*="rank: 2;"][aria-label*="after, exact"]').first  # the second most likely token
    token_id = int(re.search(r"; id: (\d+);", bar.get_attribute("aria-label")).group(1))
    bar.click()
    wait_for_app(page)
    assert page.url.split("path=")[1].startswith(f"{token_id}")
    page.get_by_role("button", name="Undo", exact=True).click()
    wait_for_app(page)
    assert "path=" not in page.url
    page.locator('[aria-label*="rank: 2;"][aria-label*="after, exact"]').first.click()
    wait_for_app(page)
    assert page.url.split("path=")[1].startswith(f"{token_id}")


WATCH_RUNS_JS = ("() => { window.__runs = 0; new MutationObserver(() => { window.__runs += 1; })"
                 ".observe(document.querySelector('[data-testid=\"stApp\"]'), "
                 "{attributes: true, attributeFilter: ['data-test-script-state']}); }")
FIGURES_JS = "() => [...document.querySelectorAll('[aria-label^=\"Figures: \"]')].map(e => e.getAttribute('aria-label'))"


def test_compares_shared_controls_redraw_every_column_at_once_and_the_divergences_follow(page, base_url, smollm):
    """Compare's shared controls in the browser: one key press redraws every column (no script run), with the
    numbers the server computes for each column; then the divergences and the link follow."""
    from dashboard.compare import batched_next_logits
    from dashboard.sampling import Settings, distribution
    from dashboard.tokens import encode

    prompts = ["Udacity is the best place to learn about generative", "The conference keynote was all about generative"]
    open_app(page, f"{base_url}/compare?cmp_processed=true&" + "&".join(f"prompt={quote(p)}" for p in prompts))
    page.locator(INPUT.format("top_p")).wait_for()
    assert page.evaluate(FIGURES_JS) and all("tokens left: 49152;" in f for f in page.evaluate(FIGURES_JS))
    divergences = page.get_by_test_id("stTable").first.inner_text()
    page.locator(INPUT.format("top_k")).focus()
    page.evaluate(WATCH_RUNS_JS)
    for _ in range(3):
        page.keyboard.press("ArrowRight")  # top-k 0 → 3
    page.wait_for_function(f"() => ({FIGURES_JS})().every(f => f.includes('tokens left: 3;'))", polling="raf",
                           timeout=5000)
    assert page.evaluate("() => window.__runs") == 0  # both columns redrawn in the browser
    # the page reads its columns from one padded batch forward (backends.next_logits), whose float rounding differs
    # from a single prompt's forward by ~1e-6: compare with what the page computed from, column by column
    batch = batched_next_logits(smollm.model, [encode(smollm.tokenizer, text) for text in prompts],
                                pad_id=smollm.tokenizer.pad_token_id or 0)
    shown = [float(f.rsplit("mass kept: ", 1)[1]) for f in page.evaluate(FIGURES_JS)]  # in column order
    for mass, logits in zip(shown, batch):
        assert mass == pytest.approx(distribution(logits, Settings(strategy="sample", top_k=3)).mass_kept, abs=1e-6)
    wait_for_app(page)
    assert "top_k=3" in page.url
    assert page.get_by_test_id("stTable").first.inner_text() != divergences  # the divergences follow
    assert page.locator(INPUT.format("top_k")).input_value() == "3"  # the chart kept its inputs


def test_the_inside_cells_controls_redraw_at_once_and_the_table_follows(page, base_url):
    open_app(page, f"{base_url}/inside")
    page.locator(INPUT.format("temperature")).wait_for()
    assert page.locator(INPUT.format("repetition_penalty")).count() == 0  # no text to penalise in a layer's guess
    table = page.get_by_test_id("stTable").first.inner_text()
    page.locator(INPUT.format("top_k")).focus()
    page.evaluate(WATCH_RUNS_JS)
    page.keyboard.press("ArrowRight")
    page.keyboard.press("ArrowRight")  # top-k 2
    page.wait_for_function(f"() => ({FIGURES_JS})()[0].startsWith('Figures: tokens left: 2;')", polling="raf",
                           timeout=5000)
    assert page.evaluate("() => window.__runs") == 0
    wait_for_app(page)
    assert "top_k=2" in page.url
    assert page.get_by_test_id("stTable").first.inner_text() != table
    assert page.locator(INPUT.format("top_k")).input_value() == "2"
