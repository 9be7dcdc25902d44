"""The bundled SmolLM2 for real: cache round trip, a plausible distribution, deterministic greedy text."""

import pytest
import torch

from conftest import BUNDLED_MISSING, SEED_PROMPT
from dashboard import models
from dashboard.generation import TokenPath, generate_ids, greedy_steps, next_token_logits, score_ids
from dashboard.sampling import Settings, top_tokens
from dashboard.tokens import encode

pytestmark = pytest.mark.real


def _top5(loaded):
    ids = encode(loaded.tokenizer, SEED_PROMPT)
    probs = next_token_logits(loaded.model, ids).softmax(-1)
    return top_tokens(probs, 5)


def test_fresh_load_then_cached_load_agree_and_damage_is_rebuilt(monkeypatch, tmp_path):
    if models.bundled_gguf_path() is None:
        pytest.fail(BUNDLED_MISSING, pytrace=False)
    monkeypatch.setenv(models.CACHE_ENV, str(tmp_path))
    fresh = models.load_model("smollm2-135m")
    assert fresh.how == "dequantized GGUF (cache written)" and not fresh.notices
    folder = models.bundled_cache_dir(models.bundled_gguf_path())
    assert models.cache_problem(folder) is None

    cached = models.load_model("smollm2-135m")
    assert cached.how == "weight cache"
    assert cached.vocab_size == 49152
    assert type(cached.model).__name__ == "LlamaForCausalLM"
    assert next(cached.model.parameters()).dtype == torch.float32
    ids_f, probs_f = _top5(fresh)
    ids_c, probs_c = _top5(cached)
    assert ids_f == ids_c
    assert probs_f == pytest.approx(probs_c, abs=1e-6)
    assert encode(fresh.tokenizer, SEED_PROMPT) == encode(cached.tokenizer, SEED_PROMPT)

    weights = folder / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:1000])  # a truncated cache, as after a crash mid-write
    rebuilt = models.load_model("smollm2-135m")
    assert rebuilt.how == "dequantized GGUF (cache written)"
    assert any("rebuilt" in n and "truncated" in n for n in rebuilt.notices)
    assert models.cache_problem(folder) is None
    assert _top5(rebuilt)[0] == ids_c


def test_seed_prompt_top5_is_sorted_and_plausible(smollm):
    ids, probs = _top5(smollm)
    words = [smollm.tokenizer.decode([i]) for i in ids]
    assert probs == sorted(probs, reverse=True)
    assert 0.05 < probs[0] < 1 and sum(probs) < 1
    # a real language model continues "learn about generative" with words, mostly about AI
    assert all(w.startswith(" ") and w.strip().isalpha() for w in words), words
    assert " AI" in words or " models" in words, words


def test_greedy_generation_is_deterministic_and_equals_the_argmax_loop(smollm):
    prompt_ids = encode(smollm.tokenizer, "Once upon a time, generative models")
    settings = Settings(strategy="greedy", max_new_tokens=12)
    first = generate_ids(smollm.model, smollm.tokenizer, prompt_ids, settings)
    second = generate_ids(smollm.model, smollm.tokenizer, prompt_ids, settings)
    assert first == second
    assert first == greedy_steps(smollm.model, prompt_ids, 12)


def test_token_path_matches_fresh_forward_on_the_real_model(smollm):
    ids = encode(smollm.tokenizer, SEED_PROMPT)
    path = TokenPath(smollm.model, ids)
    for _ in range(3):
        path.append(int(path.logits.argmax()), "most likely")
    torch.testing.assert_close(path.logits, next_token_logits(smollm.model, path.ids), rtol=0, atol=1e-4)


def test_scoring_generated_text_ranks_every_greedy_token_first(smollm):
    prompt_ids = encode(smollm.tokenizer, SEED_PROMPT)
    ids = greedy_steps(smollm.model, prompt_ids, 10)
    scores = score_ids(smollm.model, ids, start=len(prompt_ids))
    assert [s.rank for s in scores] == [1] * 10


ACCURACY_PROMPTS = [
    SEED_PROMPT, "Once upon a time, generative models", "The capital of France is", "def fibonacci(n):",
    "I love eating", "The quick brown fox", "In 1492, Columbus", "Water boils at",
]


def test_bf16_copy_stays_close_to_fp32_and_leaves_the_original_alone(smollm):
    fast = models.bf16_copy(smollm)
    assert next(fast.model.parameters()).dtype == torch.bfloat16
    assert next(smollm.model.parameters()).dtype == torch.float32
    worst, same_top = 0.0, 0
    for prompt in ACCURACY_PROMPTS:
        ids = encode(smollm.tokenizer, prompt)
        exact = next_token_logits(smollm.model, ids).softmax(-1)
        approx = next_token_logits(fast.model, ids).softmax(-1)
        top = exact.topk(5).indices
        worst = max(worst, float((exact[top] - approx[top]).abs().max()))
        same_top += int(exact.argmax() == approx.argmax())
    print(f"bf16: worst top-5 probability difference {worst:.4f}, same top token on {same_top}/8 prompts")
    # README (Performance): "its top-5 probabilities differ from fp32 by up to 0.036 (the top token agreed on all
    # eight)"; measured here: 0.030, 8/8.
    assert worst <= 0.04
    assert same_top == len(ACCURACY_PROMPTS)
