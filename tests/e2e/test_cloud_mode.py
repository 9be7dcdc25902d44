"""Cloud mode in a real browser: the app as Streamlit Community Cloud runs it (no bundled model,
TOKENSCOPE_BUNDLED=0) with GPT-2 coming from a Hub, here the stand-in on 127.0.0.1 (tests/hubstub.py) that the
real huggingface_hub code downloads from through HF_ENDPOINT.

The tests run in file order on one server: the first one downloads gpt2, the last one stops the Hub and starts
a second server that must load gpt2 from the Hugging Face cache."""

from __future__ import annotations

import re
from urllib.parse import quote

import pytest

from .conftest import AppServer, expect, open_app, wait_for_app
from .test_pages import SEED_IDS, SEED_PROMPT, chip_ids, metric

pytestmark = pytest.mark.e2e

LONG_PROMPT = " ".join(["the quick brown fox jumps over the lazy dog,"] * 78)  # 702 words, ~790 GPT-2 tokens
LOAD_MS = 120_000


@pytest.fixture(scope="module")
def cloud(tmp_path_factory):
    """(stand-in Hub, the app served in Cloud mode, its environment)."""
    from hubstub import StubHub, make_tiny_gpt2

    root = tmp_path_factory.mktemp("cloud")
    stub = StubHub().start()
    stub.add_repo("openai-community/gpt2", make_tiny_gpt2(root / "gpt2"))
    stub.add_repo("tiny-org/gpt2-64", make_tiny_gpt2(root / "gpt2-64", n_positions=64))
    env = {
        "TOKENSCOPE_BUNDLED": "0", "HF_ENDPOINT": stub.url, "HF_HOME": str(root / "hf"), "HF_HUB_CACHE": None,
        "HF_HUB_OFFLINE": None, "TRANSFORMERS_OFFLINE": None, "TOKENSCOPE_MODELS": "tiny-org/gpt2-64",
        "TOKENSCOPE_CACHE": str(root / "ts"),
    }
    server = AppServer("cloud", env=env).start()
    yield stub, server, env
    server.stop()
    stub.stop()


def _safetensors_gets(stub, repo="openai-community/gpt2"):
    return [p for m, p in stub.requests if m == "GET" and p.startswith(f"/{repo}/resolve/") and p.endswith(".safetensors")]


def test_gpt2_downloads_once_with_progress_shown_in_the_page(cloud, page):
    stub, server, _ = cloud
    stub.throttle_bps = 2_000_000  # ~6.5 MB of weights: a few seconds, long enough to watch the bar move
    page.goto(server.base_url + "/next-token", wait_until="domcontentloaded")
    bar = page.get_by_test_id("stProgress")
    expect(bar).to_be_visible(timeout=LOAD_MS)
    expect(page.get_by_test_id("stMain")).to_contain_text(re.compile(r"Downloading openai-community/gpt2: model\.safetensors"))
    wait_for_app(page)
    stub.throttle_bps = None
    expect(page.get_by_test_id("stVegaLiteChart").locator("canvas, svg").first).to_be_visible(timeout=LOAD_MS)
    expect(bar).to_have_count(0)  # the bar is gone once the model is in
    assert len(_safetensors_gets(stub)) == 1


def test_every_page_opens_on_gpt2(cloud, page):
    stub, server, _ = cloud
    open_app(page, server.base_url + "/")
    expect(page.get_by_test_id("stSidebar")).to_contain_text("GPT-2 (124M, Hugging Face Hub)")

    open_app(page, f"{server.base_url}/tokenize?prompt={quote(SEED_PROMPT)}")
    assert chip_ids(page) == SEED_IDS

    open_app(page, server.base_url + "/next-token")
    expect(page.get_by_test_id("stVegaLiteChart").locator("canvas, svg").first).to_be_visible(timeout=LOAD_MS)
    expect(page.locator('[aria-label^="Figures: "]')).to_have_attribute("aria-label", re.compile(r"^Figures: tokens left: 50257;"))

    open_app(page, server.base_url + "/generate?max_new_tokens=12")
    page.get_by_role("button", name="Generate", exact=True).click()
    expect(metric(page, "New tokens")).to_be_visible(timeout=LOAD_MS)
    wait_for_app(page)
    assert 1 <= int(metric(page, "New tokens").inner_text()) <= 12

    open_app(page, server.base_url + "/compare")
    expect(page.get_by_test_id("stVegaLiteChart").first).to_be_visible(timeout=LOAD_MS)
    assert len(_safetensors_gets(stub)) == 1  # downloaded once, for every page and session


def test_a_700_word_prompt_with_256_new_tokens_generates_with_a_notice(cloud, page):
    stub, server, _ = cloud
    open_app(page, f"{server.base_url}/generate?max_new_tokens=256&prompt={quote(LONG_PROMPT)}")
    main = page.get_by_test_id("stMain")
    expect(main).to_contain_text(re.compile(r"reads at most 1,024 tokens, and 256 new tokens need room, so its first "
                                            r"[\d,]+ tokens were dropped \(the last 768 are used\)"))
    page.get_by_role("button", name="Generate", exact=True).click()
    expect(metric(page, "New tokens")).to_be_visible(timeout=LOAD_MS)
    wait_for_app(page)
    new = int(metric(page, "New tokens").inner_text())
    reason = metric(page, "Stopped by").inner_text()
    assert new == 256 or reason == "end of text", (new, reason)


def test_a_64_position_model_cuts_the_prompt_on_next_token(cloud, page):
    _, server, _ = cloud
    open_app(page, f"{server.base_url}/next-token?model=gpt2-64&prompt={quote(LONG_PROMPT)}")
    main = page.get_by_test_id("stMain")
    expect(main).to_contain_text("(the last 63 are used)", timeout=LOAD_MS)
    expect(page.get_by_test_id("stVegaLiteChart").locator("canvas, svg").first).to_be_visible()
    page.get_by_role("button", name=re.compile(r"^Append most likely")).click()
    wait_for_app(page)
    expect(main).to_contain_text("fills the model's context of 64 tokens")
    expect(page.get_by_role("button", name=re.compile(r"^Append most likely"))).to_be_disabled()


def test_a_second_server_loads_gpt2_from_the_cache_with_the_hub_stopped(cloud, page):
    stub, _, env = cloud
    stub.stop()
    second = AppServer("cloud-second", env=env).start()
    try:
        open_app(page, second.base_url + "/next-token")
        expect(page.get_by_test_id("stVegaLiteChart").locator("canvas, svg").first).to_be_visible(timeout=LOAD_MS)
        expect(page.get_by_test_id("stAlertContentError")).to_have_count(0)
        page.reload(wait_until="domcontentloaded")
        wait_for_app(page)
        expect(page.get_by_test_id("stSidebar")).to_contain_text("In memory: local Hub cache")
    finally:
        second.stop()
