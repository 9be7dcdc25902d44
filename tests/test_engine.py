"""The engine back-end against the official llama.cpp llama-server (built by `make engine`) serving the bundled
GGUF: the same tokens as the local model, agreeing distributions, the app's greedy text equal to the raw engine's,
and every fault — down, dying mid-stream, slow, malformed, 4xx, 5xx — a message in seconds, then recovery."""

from __future__ import annotations

import logging
import math
import time

import pytest
import torch

from bench.engine_server import completions
from conftest import ENGINE_KEY, SEED_PROMPT, use_engine
from dashboard import backends, engine_calls, engines, models
from dashboard.loaded import known_context_length
from dashboard.generation import Generation, generate_ids
from dashboard.sampling import Settings
from faultproxy import FaultProxy

KEY = "class/smollm2"


def backend() -> backends.EngineBackend:
    return backends.engine_backend(models.get_spec(KEY))


# --------------------------------------------------------------------------- configuration (no engine needed)


def test_engines_parse_names_urls_and_key_variables():
    found, problems = engines.parse_engines(
        "class=http://10.0.0.5:8080/v1, gpu=https://gpu.example:8000 ,bad, x=ftp://h, class=http://a/v1",
        "gpu=GPU_KEY,class=not a name!")
    assert [(e.name, e.base_url, e.key_env) for e in found] == [
        ("class", "http://10.0.0.5:8080/v1", None), ("gpu", "https://gpu.example:8000/v1", "GPU_KEY")]
    assert found[1].root == "https://gpu.example:8000"
    assert len(problems) == 4  # the key entry, 'bad', the ftp URL, the repeated name
    assert any("'bad'" in p for p in problems) and any("twice" in p for p in problems)


def test_engine_sampler_is_set_like_generate_with_every_warper_explicit():
    model = engines.EngineModel(engines.Engine("c", "http://h/v1"), "m", 4096, 100, llama_cpp=True)
    body = engine_calls.sampler_body(Settings(strategy="sample", temperature=0.7, top_k=5, top_p=0.9, min_p=0.1,
                                         repetition_penalty=1.3, seed=11), model)
    assert body["temperature"] == 0.7 and body["top_k"] == 5 and body["top_p"] == 0.9 and body["min_p"] == 0.1
    assert body["repeat_penalty"] == 1.3 and body["repeat_last_n"] == 4096 and body["seed"] == 11
    assert body["samplers"] == ["penalties", "temperature", "top_k", "top_p", "min_p"]  # generate's order
    greedy = engine_calls.sampler_body(Settings(strategy="greedy", top_k=5), model)
    assert greedy["temperature"] == 0.0 and greedy["top_k"] == 0 and greedy["min_p"] == 0.0  # no engine defaults
    other = engine_calls.sampler_body(Settings(repetition_penalty=1.2), engines.EngineModel(
        engines.Engine("v", "http://h/v1"), "m", 4096, None, llama_cpp=False))
    assert other["repetition_penalty"] == 1.2 and "samplers" not in other


def test_engine_score_counts_rank_within_the_top_n():
    top = [(5, math.log(0.5), None), (7, math.log(0.3), None), (9, math.log(0.1), None)]
    assert backends._score(4, 7, math.log(0.3), top).rank == 2
    outside = backends._score(4, 11, math.log(0.01), top)
    assert outside.rank == 4 and outside.prob == pytest.approx(0.01) and outside.top_ids == (5, 7, 9)


# --------------------------------------------------------------------------- the real engine


def test_engine_models_join_the_registry_under_engine_slash_model(engine):
    registry = models.registry()
    assert KEY in registry and registry[KEY].source == "engine"
    model = engines.find(KEY)
    assert model.llama_cpp and model.vocab_size == 49152 and model.context >= 2048
    assert known_context_length(KEY) == model.context
    assert models.registry_problems() == []


def test_engine_tokens_equal_the_local_tokenizer(engine, smollm):
    b = backend()
    for text in (SEED_PROMPT, "naïve café 😀 — ok\n\ttabs", "   spaces"):
        ids = b.tokenize(text)
        assert ids == smollm.tokenizer(text, add_special_tokens=False)["input_ids"]
        assert b.detokenize(ids) == text
        assert [b.tokenizer.decode([i]) for i in ids] == [smollm.tokenizer.decode([i]) for i in ids]
    from dashboard.tokens import token_rows

    text = "Udacity é 😀"
    assert [(r.id, r.bytes, r.start, r.end) for r in token_rows(b.tokenizer, text)] == \
        [(r.id, r.bytes, r.start, r.end) for r in token_rows(smollm.tokenizer, text)]


def test_engine_next_tokens_agree_with_local_fp32(engine, smollm):
    b, local = backend(), backends.LocalBackend(smollm)
    ids = b.tokenize(SEED_PROMPT)
    engine_probs = b.next_logits([ids])[0].exp()  # (vocab,) the engine's own probabilities, 0 outside its top N
    local_probs = torch.softmax(local.next_logits([ids])[0], -1)  # (vocab,)
    e_top, l_top = engine_probs.topk(2), local_probs.topk(2)
    assert set(e_top.indices.tolist()) == set(l_top.indices.tolist())
    for tid in l_top.indices.tolist():
        assert abs(float(engine_probs[tid]) - float(local_probs[tid])) <= 0.06, (tid, engine_probs[tid], local_probs[tid])
    assert int((engine_probs > 0).sum()) == b.top_n
    assert 0.5 < float(engine_probs.sum()) < 1.0  # the top N hold most, not all, of the mass: the rest is "other"



def test_engine_top_logprobs_come_most_likely_first(engine):
    model = engines.find(KEY)
    ids = backend().tokenize(SEED_PROMPT)
    rows = engine_calls.top_logprobs(model, ids, 5)
    lps = [lp for _, lp, _ in rows]
    assert len(rows) == 5 and lps == sorted(lps, reverse=True) and lps[0] > lps[-1]
    settings = Settings(strategy="greedy", max_new_tokens=1)
    greedy = list(backend().stream(ids, settings, Generation(ids, settings)))
    assert rows[0][0] == greedy[0]  # the first row is the token greedy decoding takes

def test_engine_greedy_text_through_the_app_equals_the_raw_engine_answer(engine, smollm):
    b = backend()
    ids = b.tokenize(SEED_PROMPT)
    settings = Settings(strategy="greedy", max_new_tokens=40)
    run = Generation(ids, settings)
    app_ids = list(b.stream(ids, settings, run))
    raw = completions(engine.base_url, {"model": "smollm2", "prompt": ids, "max_tokens": 40, "temperature": 0},
                      api_key=ENGINE_KEY)
    assert b.detokenize(app_ids) == raw["choices"][0]["text"]
    assert len(app_ids) == 40 and run.reason == "length" and len(run.scores) == 40
    assert all(s.rank == 1 for s in run.scores)  # greedy: every token the engine's top one
    local = generate_ids(smollm.model, smollm.tokenizer, ids, settings)[len(ids):]
    assert app_ids[:8] == local[:8]  # quantized arithmetic may part ways later, not at the start


def test_engine_sampling_is_seeded_and_follows_the_settings(engine):
    b = backend()
    ids = b.tokenize(SEED_PROMPT)
    s = Settings(strategy="sample", temperature=1.2, top_k=3, seed=7, max_new_tokens=24)
    first, second = (list(b.stream(ids, s, Generation(ids, s))) for _ in range(2))
    assert first == second
    other = list(b.stream(ids, Settings(**{**s.as_dict(), "seed": 8}), Generation(ids, s)))
    assert other != first
    run = Generation(ids, s)
    list(b.stream(ids, s, run))
    assert all(score.rank <= 3 for score in run.scores)  # top_k=3 in the engine's sampler


def test_engine_path_appends_undoes_and_scores(engine, smollm):
    b = backend()
    ids = b.tokenize(SEED_PROMPT)
    path = b.path(ids)
    top = int(path.logits.argmax())
    step = path.append(top, "most likely")
    assert step.rank == 1 and 0.1 < step.prob < 0.5 and path.ids == ids + [top]
    path.undo()
    assert path.ids == ids and len(path._logits) == 1
    scores = b.score(ids, start=1)
    local = backends.LocalBackend(smollm).score(ids, start=1)
    assert [s.token_id for s in scores] == [s.token_id for s in local]
    for e, l in zip(scores, local):  # outside the top N the probability comes from a forced token: still exact-ish
        assert abs(e.prob - l.prob) < 0.06 and (e.rank == l.rank or min(e.rank, l.rank) > 3)


def test_engine_stream_ends_at_end_of_text_like_the_local_model(engine, smollm):
    b = backend()
    ids = b.tokenize("<|im_start|>user\nSay yes.<|im_end|>\n<|im_start|>assistant\n")
    assert ids == smollm.tokenizer("<|im_start|>user\nSay yes.<|im_end|>\n<|im_start|>assistant\n",
                                   add_special_tokens=False)["input_ids"]  # special tokens parsed alike
    run = Generation(ids, Settings(max_new_tokens=60))
    new = list(b.stream(ids, Settings(max_new_tokens=60), run))
    assert run.reason == "end of text" and len(new) < 10
    assert b.detokenize(new).strip().startswith("Yes")


def test_engine_stream_stops_at_max_new_tokens_and_closing_it_stops(engine):
    b = backend()
    ids = b.tokenize(SEED_PROMPT)
    run = Generation(ids, Settings(max_new_tokens=5))
    assert len(list(b.stream(ids, Settings(max_new_tokens=5), run))) == 5 and run.reason == "length"
    run = Generation(ids, Settings(max_new_tokens=200))
    stream = b.stream(ids, Settings(max_new_tokens=200), run)
    next(stream), next(stream)
    stream.close()  # Stop pressed: the HTTP stream is closed, the engine stops
    assert run.reason == "stopped" and len(run.new_ids) == 2 and run.finished


# --------------------------------------------------------------------------- faults


def _fails(fn, *words, within: float = 3.0) -> str:
    start = time.monotonic()
    with pytest.raises(engines.EngineError) as info:
        fn()
    took = time.monotonic() - start
    message = str(info.value)
    assert took < within, (took, message)
    for w in words:
        assert w in message, message
    return message


@pytest.mark.parametrize("mode, words", [
    ("500", ["HTTP 500", "injected fault"]),
    ("400", ["HTTP 400"]),
    ("garbage", ["malformed"]),
    ("hang", ["did not answer within 1 s"]),
])
def test_engine_faults_give_a_clear_message_in_seconds_then_recover(engine_proxy, mode, words):
    b = backend()  # listed while the engine answers
    ids = b.tokenize(SEED_PROMPT)
    engine_proxy.mode = mode
    _fails(lambda: b.next_logits([ids + [1]]), "the next-token distribution", *words)
    _fails(lambda: list(b.stream(ids, Settings(max_new_tokens=4), Generation(ids, Settings()))), "generation", *words)
    engine_proxy.mode = "pass"  # the engine is back: the same back-end works again
    assert _recovered(lambda: b.next_logits([ids]))[0].isfinite().sum() == b.top_n


def _recovered(fn, within: float = 15.0):
    """fn() once the engine answers again: the 1 s timeout that makes the faults quick can be too short for a
    real answer while other jobs load the machine (seen: "did not answer within 1 s" after the fault had gone),
    so a timeout is retried until `within`; any other error fails at once."""
    deadline = time.monotonic() + within
    while True:
        try:
            return fn()
        except engines.EngineError as exc:
            if "did not answer within" not in str(exc) or time.monotonic() > deadline:
                raise


def test_engine_dying_mid_stream_keeps_the_tokens_that_arrived(engine_proxy):
    b = backend()
    ids = b.tokenize(SEED_PROMPT)
    engine_proxy.mode = "die"
    run = Generation(ids, Settings(max_new_tokens=30))
    got = []

    def consume():
        for token in b.stream(ids, Settings(max_new_tokens=30), run):
            got.append(token)

    _fails(consume, "generation", "broke off")
    assert len(got) == engine_proxy.die_after and run.new_ids == got


def test_engine_down_at_start_is_named_and_comes_back(monkeypatch, llama_server):
    p = FaultProxy(llama_server.base_url)  # not started: nothing listens on its port
    use_engine(monkeypatch, p.base_url, timeout=1)
    start = time.monotonic()
    assert KEY not in models.registry()
    problems = models.registry_problems()
    assert time.monotonic() - start < 3
    assert any("cannot be reached" in problem for problem in problems), problems
    p.start()
    try:
        time.sleep(engines.DOWN_TTL_S + 0.1)
        assert KEY in models.registry()  # the next listing finds it
    finally:
        p.stop()
        engines.forget_listings()


def test_engine_api_key_is_sent_but_never_shown_or_logged(monkeypatch, llama_server, caplog):
    caplog.set_level(logging.DEBUG)
    p = FaultProxy(llama_server.base_url).start()
    try:
        use_engine(monkeypatch, p.base_url, timeout=1)
        b = backend()
        ids = b.tokenize(SEED_PROMPT)
        assert any(h.get("Authorization") == f"Bearer {ENGINE_KEY}" for h in p.seen_headers)
        messages = []
        for mode in ("500", "400", "garbage", "hang"):
            p.mode = mode
            with pytest.raises(engines.EngineError) as info:
                b.next_logits([ids])
            messages.append(str(info.value))
        p.mode = "pass"
        use_engine(monkeypatch, p.base_url, key="wrong-key-1234")  # the engine refuses a wrong key: in words
        listed, problem = engines.list_models(engines.configured()[0][0], refresh=True)
        assert listed == [] and "HTTP 401" in problem
        messages.append(problem)
    finally:
        p.stop()
        engines.forget_listings()
    for text in messages + [r.getMessage() for r in caplog.records]:
        assert ENGINE_KEY not in text and "wrong-key-1234" not in text


def test_an_engines_ranks_past_its_top_n_are_grey_not_a_bucket():
    from dashboard.charts import BEYOND_TOP_N, rank_colour, rank_legend_html, ranked_text_html

    assert rank_colour(21) == rank_colour(50) != BEYOND_TOP_N  # local: GLTR's top-100 bucket
    assert rank_colour(21, top_n=20) == BEYOND_TOP_N and rank_colour(20, top_n=20) == rank_colour(20)
    legend = rank_legend_html(20)
    assert "top 20" in legend and "below the engine&#x27;s top 20" in legend and "top 1000" not in legend
    score = backends._score(3, 11, math.log(0.01), [(5, math.log(0.5), None)])
    shown = ranked_text_html("a", ["b"], [score], ["x"], top_n=1)
    assert BEYOND_TOP_N in shown and "below the top 1" in shown


# --------------------------------------------------------------------------- a vLLM-shaped engine (no llama.cpp extensions)


@pytest.fixture
def vllm(monkeypatch, smollm):
    """A vLLM-shaped stand-in computing with the bundled model itself, registered as engine `gpu`."""
    from vllmstub import VllmStub

    stub = VllmStub(smollm.model, smollm.tokenizer).start()
    use_engine(monkeypatch, stub.base_url, name="gpu", key=None)
    yield stub
    stub.stop()
    engines.forget_listings()


def test_a_vllm_style_engine_works_through_the_legacy_logprob_format(vllm, smollm):
    spec = models.get_spec("gpu/stub-smol")
    b = backends.engine_backend(spec)
    model = engines.find("gpu/stub-smol")
    assert not model.llama_cpp and model.context == 2048 and model.vocab_size is None
    ids = b.tokenize(SEED_PROMPT)
    assert ids == smollm.tokenizer(SEED_PROMPT, add_special_tokens=False)["input_ids"]
    local = backends.LocalBackend(smollm)
    # next token: the legacy top_logprobs dict of "token_id:N" → exactly the local model's top N
    engine_lp = b.next_logits([ids])[0]
    local_lp = torch.log_softmax(local.next_logits([ids])[0], -1)
    top = local_lp.topk(b.top_n)
    assert torch.allclose(engine_lp[top.indices], top.values, atol=1e-5)
    # streaming in the legacy format: greedy ids and scores as the local model gives them
    run = Generation(ids, Settings(max_new_tokens=6))
    streamed = list(b.stream(ids, Settings(max_new_tokens=6), run))
    assert streamed == generate_ids(smollm.model, smollm.tokenizer, ids, Settings(max_new_tokens=6))[len(ids):]
    assert b.detokenize(streamed) == smollm.tokenizer.decode(streamed)  # bytes from /detokenize, per id
    # scoring: one echo request gives every position's log-prob (no per-position requests)
    before = len(vllm.requests)
    scores = b.score(ids, start=1)
    assert vllm.requests[before:] == ["POST /v1/completions"]
    for e, l in zip(scores, local.score(ids, start=1)):
        assert e.token_id == l.token_id and e.prob == pytest.approx(l.prob, abs=1e-5)
        assert e.rank == (l.rank if l.rank <= 5 else 6)  # ranks known within the echoed top 5
