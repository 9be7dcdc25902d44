"""Every page on an OpenAI-compatible inference engine, in a real browser: the app served with
TOKENSCOPE_ENGINES pointing at the real llama.cpp llama-server (tests/conftest.py's `llama_server`, serving the
bundled GGUF and demanding ENGINE_KEY), its model opened by a link as ?model=class/smollm2.

- every page opens on the engine model without an exception and shows what is particular to an engine;
- a greedy run=1 link shows exactly the raw engine's /v1/completions text;
- the engine's API key never reaches a page, the browser, a share link or the server's log.
"""

from __future__ import annotations

import re
from urllib.parse import parse_qs, quote, urlparse

import pytest

from conftest import ENGINE_KEY  # tests/conftest.py (the key the test engine demands)

from .conftest import AppServer, expect, open_app, share_link, wait_for_app
from .test_pages import chip_ids, chips, metric

pytestmark = pytest.mark.e2e

KEY = "class/smollm2"  # engine name / the model id llama-server lists (--alias smollm2)
SEED_PROMPT = "Udacity is the best place to learn about generative"
SEED_IDS = [69, 84, 12680, 314, 260, 1450, 1379, 288, 835, 563, 44097]  # SmolLM2's ids of SEED_PROMPT
GREEDY_PROMPT = "The capital of France is Paris, and the capital of Germany is"
GREEDY_NEW = 24
PAGES = ("tokenize", "next-token", "generate", "compare", "inside")
LOAD_MS = 120_000  # an engine page needs no weights here, but the machine is shared: be patient


@pytest.fixture(scope="module")
def engine_app(llama_server):
    """The app served with the real engine as `class`, its key in the operator's variable; stopped afterwards."""
    env = {
        "TOKENSCOPE_ENGINES": f"class={llama_server.base_url}",
        "CLASS_ENGINE_KEY": ENGINE_KEY,
        "TOKENSCOPE_ENGINE_KEYS": "class=CLASS_ENGINE_KEY",
    }
    server = AppServer("engine", env=env).start()
    yield server
    server.stop()


def engine_url(server: AppServer, path: str, **params: str) -> str:
    """A link to `path` on the engine model (?model=class/smollm2 written as a person would type it)."""
    extra = "".join(f"&{k}={quote(str(v), safe='')}" for k, v in params.items())
    return f"{server.base_url}/{path}?model={KEY}{extra}"


def assert_healthy_engine_page(page) -> None:
    """The engine model is the one picked, and nothing went wrong: no exception, no error, no link correction."""
    expect(page.get_by_test_id("stSidebar").get_by_role("combobox", name="Model")).to_have_value(KEY)
    expect(page.get_by_test_id("stException")).to_have_count(0)
    expect(page.get_by_test_id("stAlertContentError")).to_have_count(0)  # e.g. "The engine did not answer."
    warnings = page.get_by_test_id("stAlertContentWarning").all_inner_texts()
    assert not [w for w in warnings if "not one of the registered models" in w or "model list" in w], warnings


# --------------------------------------------------------------------------- 1. every page on the engine


def test_every_page_opens_on_the_engine_model_with_its_engine_content(engine_app, page):
    main = page.get_by_test_id("stMain")

    # Tokenize: the engine's own tokenizer splits the seed prompt into SmolLM2's ids.
    open_app(page, engine_url(engine_app, "tokenize"))
    expect(main.get_by_role("heading", level=1)).to_contain_text("Tokenize")
    expect(chips(page)).to_have_count(len(SEED_IDS), timeout=LOAD_MS)
    assert chip_ids(page) == SEED_IDS
    expect(metric(page, "Tokens")).to_have_text(str(len(SEED_IDS)))
    assert "".join(chips(page).all_inner_texts()).replace("␣", " ") == SEED_PROMPT
    assert_healthy_engine_page(page)

    # Next token: the engine's top-N distribution, said to be so, with its chart.
    open_app(page, engine_url(engine_app, "next-token"))
    expect(main).to_contain_text("On the engine 'class'", timeout=LOAD_MS)
    expect(main).to_contain_text(re.compile(r"the distribution is its top \d+ tokens, which hold \d+\.\d+% of its probability"))
    expect(page.get_by_test_id("stVegaLiteChart").locator("canvas, svg").first).to_be_visible(timeout=LOAD_MS)
    expect(page.get_by_test_id("stHtml").filter(has_text=SEED_PROMPT)).to_have_count(1)
    assert_healthy_engine_page(page)

    # Generate: the engine's own sampler, no precision choice (the engine computes in its own).
    open_app(page, engine_url(engine_app, "generate"))
    expect(main).to_contain_text("Engine 'class': its own sampler runs with these settings", timeout=LOAD_MS)
    expect(page.get_by_role("button", name="Generate", exact=True)).to_be_enabled()
    radios = page.get_by_test_id("stRadio")
    expect(radios.filter(has_text="Strategy")).to_have_count(1)
    expect(radios.filter(has_text="Precision")).to_have_count(0)  # bf16 is not offered on an engine
    assert_healthy_engine_page(page)

    # Compare: both columns on the engine, its chart drawn, said to compare the engine's top tokens only.
    open_app(page, engine_url(engine_app, "compare"))
    expect(page.get_by_test_id("stVegaLiteChart").locator("canvas, svg").first).to_be_visible(timeout=LOAD_MS)
    expect(main).to_contain_text(f"Columns on an engine ({KEY}) compare its top tokens only")
    expect(main.get_by_test_id("stTable")).to_contain_text("Prompt 1 → Prompt 2")  # the divergences
    assert_healthy_engine_page(page)

    # Inside: an engine returns tokens, not activations: the page says why it cannot look inside.
    open_app(page, engine_url(engine_app, "inside"))
    warning = page.get_by_test_id("stAlertContentWarning").filter(has_text="cannot be looked inside here")
    expect(warning).to_have_count(1, timeout=LOAD_MS)
    expect(warning).to_contain_text("smollm2 (engine class)")
    expect(page.get_by_test_id("stVegaLiteChart")).to_have_count(0)  # no lens was drawn
    assert_healthy_engine_page(page)


# --------------------------------------------------------------------------- 2. greedy text equals the raw engine's


@pytest.fixture(scope="module")
def raw_greedy(llama_server):
    """(prompt ids, the raw engine's greedy continuation): /v1/completions straight to llama-server, no app code."""
    from bench.engine_server import completions
    from dashboard.models import load_tokenizer

    ids = load_tokenizer("smollm2-135m")(GREEDY_PROMPT, add_special_tokens=False)["input_ids"]
    answer = completions(llama_server.base_url, {"model": "smollm2", "prompt": ids, "max_tokens": GREEDY_NEW,
                                                 "temperature": 0}, api_key=ENGINE_KEY)
    choice = answer["choices"][0]
    assert choice["finish_reason"] == "length", choice  # the prompt must not end before GREEDY_NEW tokens
    return ids, choice["text"]


def test_a_greedy_run_link_on_the_engine_shows_exactly_the_raw_engine_text(engine_app, page, raw_greedy):
    ids, continuation = raw_greedy
    assert continuation.strip(), "the raw engine wrote nothing"
    open_app(page, engine_url(engine_app, "generate", prompt=GREEDY_PROMPT, max_new_tokens=GREEDY_NEW,
                              strategy="greedy", run=1))
    expect(metric(page, "New tokens")).to_have_text(str(GREEDY_NEW), timeout=LOAD_MS)  # no button was pressed
    wait_for_app(page)
    shown = page.get_by_test_id("stHtml").filter(has_text=GREEDY_PROMPT).first
    assert shown.text_content() == GREEDY_PROMPT + continuation
    spans = shown.locator("span[title]")  # one per new token, coloured by its rank in the engine's top N
    expect(spans).to_have_count(GREEDY_NEW)
    assert "".join(spans.all_text_contents()) == continuation
    colours = spans.evaluate_all("s => s.map(e => getComputedStyle(e).backgroundColor)")
    assert set(colours) == {"rgb(187, 247, 208)"}, colours  # greedy: every token the engine's top one
    assert metric(page, "Stopped by").inner_text() == "length"
    expect(page.get_by_test_id("stMain")).to_contain_text(f"greedy · fp32 · {len(ids) + GREEDY_NEW} tokens in total")
    assert_healthy_engine_page(page)


# --------------------------------------------------------------------------- 3. the API key appears nowhere


def test_the_engine_api_key_appears_in_no_page_request_share_link_or_log(engine_app, llama_server, page,
                                                                        requests_seen):
    import urllib.error
    import urllib.request

    with pytest.raises(urllib.error.HTTPError) as refused:  # the key matters: the pages below work only with it
        urllib.request.urlopen(llama_server.base_url + "/models", timeout=30)
    assert refused.value.code == 401
    frames: list[str | bytes] = []  # every websocket message the server sent the browser
    page.on("websocket", lambda ws: ws.on("framereceived", lambda payload: frames.append(payload)))
    key = ENGINE_KEY
    visits = [(p, {}) for p in PAGES]
    visits.append(("generate", {"prompt": GREEDY_PROMPT, "max_new_tokens": 8, "strategy": "greedy", "run": 1}))
    links = []
    for path, params in visits:
        open_app(page, engine_url(engine_app, path, **params))
        if params.get("run"):
            expect(metric(page, "New tokens")).to_have_text("8", timeout=LOAD_MS)
            wait_for_app(page)
        assert_healthy_engine_page(page)
        for frame in page.frames:  # the rendered HTML of the page and of every frame in it
            assert key not in frame.content(), f"the API key is in the HTML of {path} ({frame.url})"
        stored = page.evaluate("() => document.cookie + JSON.stringify(localStorage) + JSON.stringify(sessionStorage)")
        assert key not in stored, f"the API key is in the browser's storage on {path}"

        link = share_link(page)
        links.append(link)
        query = parse_qs(urlparse(link).query)
        assert urlparse(link).path == f"/{path}" and query.get("model") == [KEY], link  # the engine view's link
        if params.get("run"):
            assert query.get("run") == ["1"], link
        assert key not in link, f"the API key is in the share link of {path}: {link}"
        assert key not in page.url

    assert len(links) == len(visits)
    assert requests_seen, "no request was recorded"
    assert [u for u in requests_seen if key in u] == [], "the API key is in a URL the browser requested"
    assert frames, "no websocket message was recorded"
    leaked = [f for f in frames if (key.encode() in f if isinstance(f, bytes) else key in f)]
    assert leaked == [], f"the API key was sent to the browser in {len(leaked)} websocket message(s)"

    log = engine_app.log_path.read_text("utf-8", errors="replace")
    assert "You can now view your Streamlit app" in log or "Local URL" in log, engine_app.log_tail()  # the right log
    assert key not in log, f"the API key is in the server log {engine_app.log_path}"
