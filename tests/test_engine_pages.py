"""Every page on the engine's model through AppTest: what each page shows there, what it cannot do (with the
reason), faults as messages that keep the prompt, and the API key nowhere in the page or its link."""

from __future__ import annotations

import time

import pytest

from bench.engine_server import completions
from conftest import ENGINE_KEY, SEED_IDS, SEED_PROMPT, figures, move, open_page, texts, use_engine
from dashboard import engines
from faultproxy import FaultProxy

KEY = "class/smollm2"
SMOL_SEED_IDS = [69, 84, 12680, 314, 260, 1450, 1379, 288, 835, 563, 44097]


def everything(at) -> str:
    """Every value in the page's element tree (texts, widget values, tables) and the URL's parameters."""
    parts = [texts(at)]
    for kind in ("caption", "code", "metric", "text_area", "text_input", "selectbox", "table", "dataframe",
                 "title", "toast", "exception"):
        for element in getattr(at, kind, []):
            for attr in ("value", "label", "body", "proto"):
                if hasattr(element, attr):
                    parts.append(str(getattr(element, attr)))
    parts.append(str(dict(at.query_params)))
    return "\n".join(parts)


def test_tokenize_on_the_engine_shows_the_engines_ids(engine):
    at = open_page("pages/tokenize.py", model=KEY)
    table = at.dataframe[0].value
    assert table["id"].tolist() == SMOL_SEED_IDS
    assert table["token"].tolist()[:3] == ["U", "d", "acity"]
    assert at.metric[1].value == "11"


def test_next_token_on_the_engine_shows_its_top_n_and_steps(engine, smollm):
    at = open_page("pages/next-token.py", model=KEY)
    assert "On the engine 'class'" in texts(at) and "top 20 tokens" in texts(at)
    table = at.table[0].value
    assert len(table) == 15 and table["token"].iloc[0] == "␣advers"
    metrics = figures(at)
    held = float(at.session_state["nt_path"].logits.exp().sum())
    assert f"the other {1 - held:.2%}" in texts(at) and 0.05 < 1 - held < 0.5  # the engine's mass beyond its top 20
    assert metrics["Entropy before"] == metrics["Entropy after"]  # neutral controls change nothing
    assert metrics["Mass kept"] == "100.00%" and metrics["Tokens left"] == "20"
    top = float(table["before"].iloc[0].rstrip("%")) / 100
    assert top == pytest.approx(0.2525 / held, abs=0.002)  # a share of the top 20
    assert at.button(key="nt_append").disabled is False
    at.button(key="nt_append").click().run()
    assert not at.exception
    path = at.session_state["nt_path"]
    assert path.ids == SMOL_SEED_IDS + [9264] and path.steps[0].rank == 1
    move(at, "top_k", 3)  # the controls act on the engine's top N
    assert figures(at)["Tokens left"] == "3"
    assert at.table[0].value["after"].tolist()[3:] == ["removed"] * 12


def test_generate_on_the_engine_writes_the_raw_engines_greedy_text(engine):
    at = open_page("pages/generate.py", model=KEY, max_new_tokens="24", prompt=SEED_PROMPT)
    assert "its own sampler" in "\n".join(c.value for c in at.caption)
    assert not [r for r in at.radio if r.label == "Precision"]  # bf16 is the app's, not the engine's
    at.button(key="gen_go").click().run()
    assert not at.exception, [e.value for e in at.exception]
    run, scores = at.session_state["gen_last"]
    raw = completions(engine.base_url, {"model": "smollm2", "prompt": SMOL_SEED_IDS, "max_tokens": 24,
                                        "temperature": 0}, api_key=ENGINE_KEY)["choices"][0]["text"]
    from dashboard import backends, models

    assert backends.engine_backend(models.get_spec(KEY)).detokenize(run.new_ids) == raw
    assert len(scores) == 24 and all(s.rank == 1 for s in scores)  # scored while streaming
    legend = [h.proto.body for h in at.get("html") if "Rank of each token" in h.proto.body][0]
    assert "below the engine&#x27;s top 20" in legend or "below the engine's top 20" in legend
    assert [m.value for m in at.metric][0] == "24"


def test_generate_on_the_engine_disables_beam_search_with_the_reason(engine):
    at = open_page("pages/generate.py", model=KEY, strategy="beam")
    assert at.button(key="gen_go").disabled
    assert "Beam search is not available here" in texts(at) and "engine samples one continuation" in texts(at)


def test_score_text_on_the_engine(engine, smollm):
    at = open_page("pages/generate.py", model=KEY)
    at.text_area(key="score_text").set_value(SEED_PROMPT).run()
    assert not at.exception
    perplexity = float([m for m in at.metric if m.label == "Perplexity"][0].value)
    from dashboard.backends import LocalBackend
    from dashboard.generation import perplexity as ppl

    local = ppl(LocalBackend(smollm).score(SMOL_SEED_IDS, 1))
    assert abs(perplexity - local) / local < 0.15, (perplexity, local)


def test_compare_and_inside_on_the_engine(engine):
    at = open_page("pages/compare.py", model=KEY)
    assert "compare its top tokens only" in "\n".join(c.value for c in at.caption)
    assert at.table and "Prompt 1 → Prompt 2" in str(at.table[0].value)
    at = open_page("pages/inside.py", model=KEY)
    assert "cannot be looked inside here" in texts(at) and "only returns tokens" in texts(at)


def test_compare_puts_the_engine_beside_the_local_model(engine, smollm):
    at = open_page("pages/compare.py")
    at.selectbox(key="cmp_model_1").set_value(KEY).run()
    at.text_area(key="cmp_prompt_1").set_value(at.text_area(key="cmp_prompt_0").value).run()
    assert not at.exception
    assert "engine" in "\n".join(c.value for c in at.caption)


@pytest.fixture
def proxied(monkeypatch, engine_proxy):
    """The fault proxy with a 3 s timeout (a page run does more than one request)."""
    use_engine(monkeypatch, engine_proxy.base_url, timeout=3)
    return engine_proxy


@pytest.mark.parametrize("mode", ["500", "hang", "garbage"])
def test_a_failing_engine_is_a_message_the_prompt_stays_and_the_page_recovers(proxied, mode):
    at = open_page("pages/next-token.py", model=KEY, prompt="A brand new prompt about")
    assert not at.exception
    proxied.mode = mode
    at.text_area(key="prompt").set_value("A brand new prompt about cats and").run()
    assert not at.exception, [e.value for e in at.exception]
    shown = "\n".join(e.value for e in at.error)
    assert "The engine did not answer" in shown and "Everything you typed is kept" in shown
    assert at.text_area(key="prompt").value == "A brand new prompt about cats and"
    at.selectbox(key="model").set_value("smollm2-135m").run()  # the session keeps working on the local model
    assert not at.error and not at.exception and at.table[0].value["token"].iloc[0]
    proxied.mode = "pass"
    at.selectbox(key="model").set_value(KEY).run()  # and the engine page recovers once it answers again
    assert not at.error and "On the engine 'class'" in texts(at)


def test_an_engine_dying_mid_generation_keeps_the_written_tokens(proxied):
    at = open_page("pages/generate.py", model=KEY, max_new_tokens="40")
    proxied.mode = "die"
    at.button(key="gen_go").click().run()
    assert not at.exception, [e.value for e in at.exception]
    run, _ = at.session_state["gen_last"]
    assert run.reason == "engine failed" and len(run.new_ids) == proxied.die_after
    assert "stopped answering mid-generation" in "\n".join(e.value for e in at.error)
    proxied.mode = "pass"
    at.button(key="gen_go").click().run()
    assert at.session_state["gen_last"][0].reason == "length"


def test_an_engine_down_at_start_is_named_and_the_link_falls_back(monkeypatch, llama_server):
    p = FaultProxy(llama_server.base_url)  # nothing listens yet
    use_engine(monkeypatch, p.base_url, timeout=1)
    start = time.monotonic()
    at = open_page("pages/next-token.py", model=KEY, prompt="Kept prompt")
    assert time.monotonic() - start < 30
    assert not at.exception
    warnings = "\n".join(w.value for w in at.warning)
    assert "engine 'class' failed: it cannot be reached" in warnings
    assert at.text_area(key="prompt").value == "Kept prompt"
    p.start()
    try:
        time.sleep(engines.DOWN_TTL_S + 0.1)
        at.run()  # the engine is back: the next run lists its model
        assert "cannot be reached" not in "\n".join(w.value for w in at.warning)
        at.selectbox(key="model").set_value(KEY).run()
        assert not at.exception and "On the engine 'class'" in texts(at)
    finally:
        p.stop()
        engines.forget_listings()


def test_the_api_key_is_nowhere_in_any_page_or_its_link(engine):
    for page in ("pages/tokenize.py", "pages/next-token.py", "pages/generate.py", "pages/compare.py",
                 "pages/inside.py"):
        at = open_page(page, model=KEY)
        at.button(key="ts_share").click().run()
        shown = everything(at)
        assert "class/smollm2" in shown  # the check reads the page: the model's key is there
        assert ENGINE_KEY not in shown and "CLASS_ENGINE_KEY" not in shown, page


def test_the_gpt2_seed_ids_are_untouched_by_engines(engine):
    """The engine list adds models; the built-in ones and their links stay as they were."""
    at = open_page("pages/tokenize.py", model="gpt2")
    assert at.dataframe[0].value["id"].tolist() == SEED_IDS
