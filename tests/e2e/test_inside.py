"""The Inside page in a real browser: where the answer forms, a click on a lens cell, the attention view."""

from __future__ import annotations

import re
from urllib.parse import quote

import pytest
from playwright.sync_api import expect

from .conftest import open_app, wait_for_app

pytestmark = pytest.mark.e2e
FRANCE = "The capital of France is"


def test_lens_cell_click_and_attention(page, base_url):
    open_app(page, f"{base_url}/inside?prompt={quote(FRANCE)}")
    main = page.get_by_test_id("stMain")
    expect(main).to_contain_text(re.compile(r"The model's next token is ␣Paris: the answer forms at layer \d+ of 30"),
                                 timeout=120_000)
    cell = page.locator('g.mark-rect path[aria-label*="; layer: 12; position: 2: "]').first
    expect(cell).to_be_attached()
    cell.click()
    wait_for_app(page)
    expect(main).to_contain_text("Layer 12, after position 2")
    assert "layer=12" in page.url and "position=2" in page.url  # the clicked cell lives in the link

    main.get_by_text("attention", exact=True).first.click()
    wait_for_app(page)
    expect(main).to_contain_text(re.compile(r"Where ␣\w+ \(position 2\) looks"))
    assert "view=attention" in page.url

    link = page.url  # the view round-trips through its link in a fresh session
    page.context.clear_cookies()
    fresh = page.context.new_page()
    open_app(fresh, link)
    fresh_main = fresh.get_by_test_id("stMain")
    expect(fresh_main).to_contain_text(re.compile(r"Where ␣\w+ \(position 2\) looks"), timeout=120_000)
    assert fresh.get_by_test_id("stAlertContentWarning").count() == 0  # no value needed correcting
    fresh.close()
