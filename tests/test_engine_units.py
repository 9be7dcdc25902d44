"""Engine pieces that need no engine: failures in words with the operator's API key never in them (nor in the
log), whatever the engine or the network put into the error; the engine tokenizer's memory of texts."""

import logging

import httpx2
import openai
import pytest

from dashboard import backends, engines
from dashboard.engines import Engine, EngineClient

KEY = "sk-tokenscope-test-0123456789abcdef"


@pytest.fixture
def client(monkeypatch):
    monkeypatch.setenv("TOKENSCOPE_TEST_ENGINE_KEY", KEY)
    return EngineClient(Engine("class", "http://127.0.0.1:9/v1", key_env="TOKENSCOPE_TEST_ENGINE_KEY"))


def status_error(message: str, status: int = 401) -> openai.APIStatusError:
    request = httpx2.Request("POST", "http://127.0.0.1:9/v1/completions")
    response = httpx2.Response(status, request=request)
    return openai.APIStatusError("refused", response=response, body={"error": {"message": message}})


def leaked(text: str) -> bool:
    """Any 8 characters of the key in `text` (a cut key leaks too)."""
    return any(KEY[i:i + 8] in text for i in range(len(KEY) - 7))


def test_a_key_the_engine_echoes_in_its_error_is_cut_from_the_message_and_the_log(client, caplog):
    caplog.set_level(logging.WARNING, logger=engines.logger.name)
    error = client.fail("a completion", status_error(f"invalid api key {KEY} for this server"))
    assert "HTTP 401" in str(error) and "invalid api key" in str(error) and error.status == 401
    assert not leaked(str(error)) and not leaked(caplog.text)


def test_a_key_across_the_detail_cut_does_not_leak_its_first_characters(client, caplog):
    caplog.set_level(logging.WARNING, logger=engines.logger.name)
    for before in range(140, 165):  # the key straddles the 160 characters of detail kept
        error = client.fail("a completion", status_error("x" * before + KEY + " rest"))
        assert not leaked(str(error)), before
    assert not leaked(caplog.text)


def test_a_key_inside_any_other_exception_text_is_cut(client):
    error = client.fail("a stream", RuntimeError(f"the proxy said Authorization: Bearer {KEY}"))
    assert not leaked(str(error)) and "RuntimeError" in str(error)


def test_without_a_key_the_text_is_kept_whole(monkeypatch):
    monkeypatch.delenv("TOKENSCOPE_TEST_ENGINE_KEY", raising=False)
    c = EngineClient(Engine("open", "http://127.0.0.1:9/v1", key_env="TOKENSCOPE_TEST_ENGINE_KEY"))
    assert "model not found" in str(c.fail("a completion", status_error("model not found", 404)))


def test_the_engine_tokenizer_forgets_the_least_recently_used_text_first(monkeypatch):
    asked = []

    def tokenize(model, text):
        asked.append(text)
        return [len(text)], [text.encode()]

    monkeypatch.setattr(backends.calls, "tokenize", tokenize)
    tok = backends.EngineTokenizer(model=None)
    texts = [f"text {i}" for i in range(backends.ENCODED_KEPT)]
    for text in texts:
        tok(text)
    assert tok(texts[0])["input_ids"] == [len(texts[0])] and len(asked) == len(texts)  # remembered; now the newest
    tok("one more")  # over the limit: the least recently used (texts[1]) goes
    asked.clear()
    for text in ("one more", texts[0], texts[-1], texts[2]):
        tok(text)
    assert asked == []  # the newest, the one just used and the others are still known
    tok(texts[1])
    assert asked == [texts[1]]


# --------------------------------------------------------------------------- mutation audit: configuration and parsing


def test_a_four_character_key_is_cut_too(monkeypatch):
    monkeypatch.setenv("TOKENSCOPE_TEST_ENGINE_KEY", "k3Y9")
    c = EngineClient(Engine("class", "http://127.0.0.1:9/v1", key_env="TOKENSCOPE_TEST_ENGINE_KEY"))
    message = str(c.fail("a completion", status_error("bad key k3Y9 here")))
    assert "k3Y9" not in message and "bad key ••• here" in message


def test_top_n_is_clamped_to_1_through_100(monkeypatch):
    for value, expected in [("0", 1), ("-3", 1), ("1", 1), ("37", 37), ("100", 100), ("500", 100), ("x", 20)]:
        monkeypatch.setenv(engines.TOP_N_ENV, value)
        assert engines.top_n() == expected, value


def test_a_changed_engine_gets_a_new_client_and_an_unchanged_one_the_same(monkeypatch):
    engines.forget_listings()
    try:
        first = engines.client(Engine("class", "http://127.0.0.1:9/v1"))
        assert engines.client(Engine("class", "http://127.0.0.1:9/v1")) is first  # pools are shared
        moved = engines.client(Engine("class", "http://127.0.0.1:10/v1"))  # the operator pointed it elsewhere
        assert moved is not first and moved.engine.base_url == "http://127.0.0.1:10/v1"
        assert str(moved.openai.base_url).startswith("http://127.0.0.1:10/v1")
        keyed = engines.client(Engine("class", "http://127.0.0.1:10/v1", key_env="TOKENSCOPE_TEST_ENGINE_KEY"))
        assert keyed is not moved and keyed.engine.key_env == "TOKENSCOPE_TEST_ENGINE_KEY"
    finally:
        engines.forget_listings()


def test_key_entries_name_engines_case_insensitively_like_the_engine_list():
    found, problems = engines.parse_engines("Class=http://10.0.0.5:8080/v1,GPU=http://h:1",
                                            "CLASS=CLASS_KEY,gpu=GPU_KEY")
    assert problems == []
    assert [(e.name, e.key_env) for e in found] == [("class", "CLASS_KEY"), ("gpu", "GPU_KEY")]


def test_entry_bytes_takes_only_byte_values():
    from dashboard.engine_calls import entry_bytes

    assert entry_bytes({"bytes": [0, 104, 255]}) == b"\x00h\xff"
    assert entry_bytes({"bytes": [104, 256]}) is None and entry_bytes({"bytes": [-1]}) is None
    assert entry_bytes({"bytes": "h"}) is None and entry_bytes({}) is None


def test_greedy_sends_every_warper_neutral_whatever_the_settings_say():
    from dashboard.engine_calls import sampler_body
    from dashboard.sampling import Settings

    for llama in (True, False):
        model = engines.EngineModel(Engine("c", "http://h/v1"), "m", 4096, None, llama_cpp=llama)
        body = sampler_body(Settings(strategy="greedy", temperature=0.7, top_k=5, top_p=0.5, min_p=0.2), model)
        assert (body["temperature"], body["top_k"], body["top_p"], body["min_p"]) == (0.0, 0, 1.0, 0.0), llama
