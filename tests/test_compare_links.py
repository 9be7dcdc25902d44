"""Batched compare forward, divergences on hand-made distributions, and link validation."""

import math

import pytest
import torch

from conftest import SEED_IDS
from dashboard.compare import batched_next_logits, biggest_shift, js_bits, kl_bits, reading, top_overlap
from dashboard.generation import Step, next_token_logits
from dashboard.links import MAX_PATH_STEPS, check_params, decode_path, encode_path, share_url

MODELS = ["smollm2-135m", "gpt2", "distilgpt2"]


@pytest.mark.parametrize("model_name", ["tiny_gpt2", "tiny_llama"])
def test_batched_rows_equal_single_prompt_forwards(request, model_name):
    model = request.getfixturevalue(model_name)
    vocab = model.config.vocab_size
    prompts = [SEED_IDS, SEED_IDS[:3], [5, 9], SEED_IDS[2:9]]
    prompts = [[t % vocab for t in p] for p in prompts]
    batch = batched_next_logits(model, prompts, pad_id=0)
    assert batch.shape == (4, vocab)
    for row, p in enumerate(prompts):
        torch.testing.assert_close(batch[row], next_token_logits(model, p), rtol=0, atol=1e-4)


def test_batched_forward_is_one_forward(tiny_gpt2):
    calls = []
    handle = tiny_gpt2.register_forward_hook(lambda *a: calls.append(1))
    try:
        batched_next_logits(tiny_gpt2, [SEED_IDS, SEED_IDS[:4], SEED_IDS[:2], SEED_IDS[5:]])
    finally:
        handle.remove()
    assert len(calls) == 1


def test_batched_refuses_empty_prompts(tiny_gpt2):
    with pytest.raises(ValueError, match="prompts"):
        batched_next_logits(tiny_gpt2, [SEED_IDS, []])


P = torch.tensor([0.5, 0.5, 0.0, 0.0])
Q = torch.tensor([0.25, 0.25, 0.25, 0.25])
R = torch.tensor([0.0, 0.0, 0.5, 0.5])


@pytest.mark.parametrize(
    "fn, p, q, expected",
    [
        (kl_bits, P, Q, 1.0),  # sum 0.5*log2(0.5/0.25)*2
        (kl_bits, P, P, 0.0),
        (kl_bits, Q, P, math.inf),  # Q puts mass where P has none
        (js_bits, P, R, 1.0),  # disjoint supports
        (js_bits, P, P, 0.0),
        (js_bits, P, Q, 0.5 * (0.5 * math.log2(0.5 / 0.375) * 2) + 0.5 * (0.25 * math.log2(0.25 / 0.375) * 2 + 0.25 * math.log2(0.25 / 0.125) * 2)),
    ],
)
def test_divergences_on_hand_made_distributions(fn, p, q, expected):
    assert fn(p, q) == pytest.approx(expected)


def test_overlap_shift_and_reading():
    assert top_overlap(P, R, 2) == 0.0
    assert top_overlap(P, P, 2) == 1.0
    assert biggest_shift(P, R)[0] in (2, 3)
    p = torch.tensor([0.6, 0.3, 0.1])
    q = torch.tensor([0.2, 0.7, 0.1])
    sentence = reading("The second prompt", p, q, lambda t: ["a", " like", "b"][t])
    assert sentence.startswith("The second prompt moves 40.00% of the probability to ␣like ")  # as every page writes tokens
    assert "changes" in sentence


@pytest.mark.parametrize(
    "params, expect_values, n_notices",
    [
        ({"model": ["gpt2"]}, {"model": "gpt2"}, 0),
        ({"model": ["/etc/passwd"]}, {"model": "smollm2-135m"}, 1),
        ({"model": ["https://evil.example/x"]}, {"model": "smollm2-135m"}, 1),
        ({"model": ["gpt2", "distilgpt2"]}, {"model": "gpt2"}, 1),
        ({"temperature": ["NaN"]}, {"temperature": 1.0}, 1),
        ({"temperature": ["inf"]}, {"temperature": 2.0}, 1),
        ({"temperature": ["-inf"]}, {"temperature": 0.0}, 1),
        ({"temperature": ["-1"]}, {"temperature": 0.0}, 1),
        ({"temperature": ["0.3", "0.9"]}, {"temperature": 0.3}, 1),
        ({"top_k": ["1e12"]}, {"top_k": 200}, 1),
        ({"top_k": ["abc"]}, {"top_k": 0}, 1),
        ({"top_k": [""]}, {"top_k": 0}, 1),
        ({"top_p": ["0"]}, {"top_p": 0.01}, 1),
        ({"min_p": ["2"]}, {"min_p": 1.0}, 1),
        ({"repetition_penalty": ["0"]}, {"repetition_penalty": 1.0}, 1),
        ({"seed": ["-5"]}, {"seed": 0}, 1),
        ({"seed": ["99999999999999"]}, {"seed": 2**31 - 1}, 1),
        ({"max_new_tokens": ["0"]}, {"max_new_tokens": 1}, 1),
        ({"strategy": ["<script>alert(1)</script>"]}, {"strategy": "greedy"}, 1),
        ({"num_beams": ["3.7"]}, {"num_beams": 4}, 1),
        ({"prompt": ["x" * 60000]}, {"prompt": "x" * 4000}, 1),
        ({"prompt": ["<img src=x onerror=alert(1)>"]}, {"prompt": "<img src=x onerror=alert(1)>"}, 0),
        ({"unknown": ["1"], "utm_source": ["mail"]}, {}, 0),
    ],
)
def test_hostile_link_params_are_corrected_with_a_notice(params, expect_values, n_notices):
    state = check_params(params, MODELS, "smollm2-135m")
    for key, value in expect_values.items():
        assert state.values[key] == value
    assert len(state.notices) == n_notices, state.notices
    for notice in state.notices:
        assert "Traceback" not in notice


def test_compare_links_keep_up_to_four_prompts():
    state = check_params({"prompt": ["a", "b", "c", "d", "e"]}, MODELS, "smollm2-135m", multi_prompt=True)
    assert state.values["prompt"] == ["a", "b", "c", "d"] and len(state.notices) == 1


def test_path_round_trip_and_bad_paths():
    steps = [Step(5, 0.5, 1, "most likely"), Step(17, 0.1, 3, "sampled (seed 2)"), Step(9, 0.2, 2, "picked")]
    raw = encode_path(steps)
    assert raw == "5m,17s,9p"
    decoded, notice = decode_path(raw, vocab_size=100)
    assert [t for t, _ in decoded] == [5, 17, 9] and notice is None
    assert decoded[1][1].startswith("sampled")
    assert decode_path("5m,500m,3", vocab_size=100)[0] == [(5, "most likely (from link)")]
    assert "invalid" in decode_path("5m,500m", vocab_size=100)[1]
    assert "invalid" in decode_path("1,-2", vocab_size=100)[1]
    assert "invalid" in decode_path("<script>", vocab_size=100)[1]
    long, notice = decode_path(",".join(["1m"] * 300), vocab_size=100)
    assert len(long) == MAX_PATH_STEPS and "cut" in notice


def test_share_url_strips_the_page_and_repeats_lists():
    url = share_url("https://app.example/next-token", "compare", ["", "next-token", "compare"],
                    {"prompt": ["a b", "c&d"], "model": "gpt2", "empty": ""})
    assert url == "https://app.example/compare?prompt=a+b&prompt=c%26d&model=gpt2"
    assert share_url(None, "", [""], {}) == "http://localhost:8501/"
