"""Decoding settings and every processing step, on hand-made tensors with exact answers, and against generate."""

import math

import pytest
import torch

from conftest import SEED_IDS
from dashboard.sampling import (
    CONTROLS,
    Settings,
    coerce,
    distribution,
    entropy_bits,
    process_logits,
    sample_token,
    settings_from,
    top_tokens,
)

LOGITS = torch.log(torch.tensor([0.5, 0.25, 0.125, 0.0625, 0.0625]))  # probabilities 1/2, 1/4, 1/8, 1/16, 1/16
INF = float("inf")


def kept(scores):
    return torch.isfinite(scores[0]).tolist()


def sampled(**kw):
    return Settings(strategy="sample", **kw)


@pytest.mark.parametrize(
    "settings, expected_kept",
    [
        (sampled(), [True] * 5),
        (sampled(top_k=2), [True, True, False, False, False]),
        (sampled(top_k=1), [True, False, False, False, False]),
        (sampled(top_k=200), [True] * 5),  # k larger than the vocabulary keeps everything
        (sampled(top_p=0.5), [True, False, False, False, False]),  # 0.5 alone reaches p
        (sampled(top_p=0.75), [True, True, False, False, False]),
        (sampled(top_p=0.8), [True, True, True, False, False]),
        (sampled(top_p=0.01), [True, False, False, False, False]),  # at least one token survives
        (sampled(min_p=0.25), [True, True, True, False, False]),  # keep p >= 0.125
        (sampled(min_p=0.3), [True, True, False, False, False]),
        (sampled(min_p=1.0), [True, False, False, False, False]),
        (sampled(top_k=3, top_p=0.7), [True, True, False, False, False]),
        (Settings(strategy="greedy"), [True, False, False, False, False]),
        (sampled(temperature=0.0), [True, False, False, False, False]),  # temperature 0 means greedy
    ],
)
def test_which_tokens_survive(settings, expected_kept):
    assert kept(process_logits(LOGITS, settings)) == expected_kept


@pytest.mark.parametrize("temperature", [0.5, 1.0, 2.0])
def test_temperature_divides_logits(temperature):
    out = process_logits(LOGITS, sampled(temperature=temperature))[0]
    torch.testing.assert_close(out, LOGITS / temperature)
    probs = torch.softmax(out, -1)
    expected = torch.tensor([0.5, 0.25, 0.125, 0.0625, 0.0625]) ** (1 / temperature)
    torch.testing.assert_close(probs, expected / expected.sum())


def test_kept_tokens_keep_their_relative_odds():
    d = distribution(LOGITS, sampled(top_k=2))
    torch.testing.assert_close(d.after, torch.tensor([2 / 3, 1 / 3, 0, 0, 0], dtype=torch.float64))
    assert d.kept == 2 and d.mass_kept == pytest.approx(0.75)


def test_repetition_penalty_on_seen_tokens_only():
    logits = torch.tensor([2.0, -2.0, 1.0, 0.5])
    out = process_logits(logits, sampled(repetition_penalty=2.0), prev_ids=torch.tensor([0, 1]))[0]
    torch.testing.assert_close(out, torch.tensor([1.0, -4.0, 1.0, 0.5]))  # positive halved, negative doubled


def test_repetition_penalty_applies_before_greedy_choice():
    logits = torch.tensor([2.0, 1.5, 0.0])
    out = process_logits(logits, Settings(strategy="greedy", repetition_penalty=2.0), prev_ids=torch.tensor([0]))
    assert kept(out) == [False, True, False]  # 2.0 / 2 = 1.0 < 1.5


def test_ties_in_greedy_pick_the_lowest_id_like_argmax():
    out = process_logits(torch.tensor([1.0, 3.0, 3.0, 0.0]), Settings(strategy="greedy"))
    assert kept(out) == [False, True, False, False]


def test_ties_at_the_top_k_boundary_are_all_kept():
    # transformers keeps every token whose logit equals the k-th largest
    out = process_logits(torch.tensor([3.0, 2.0, 2.0, 1.0]), sampled(top_k=2))
    assert kept(out) == [True, True, True, False]


def test_entropy_in_bits():
    assert entropy_bits(torch.tensor([0.5, 0.25, 0.125, 0.0625, 0.0625])) == pytest.approx(1.875)
    assert entropy_bits(torch.tensor([1.0, 0.0, 0.0])) == 0.0
    assert entropy_bits(torch.full((8,), 1 / 8)) == pytest.approx(3.0)


def test_distribution_figures_and_rank():
    d = distribution(LOGITS, sampled(top_p=0.75))
    assert d.rank_of(0) == 1 and d.rank_of(2) == 3
    assert entropy_bits(d.after) == pytest.approx(-(2 / 3 * math.log2(2 / 3) + 1 / 3 * math.log2(1 / 3)))


def test_top_tokens_clamps_k_and_refuses_nonpositive():
    ids, probs = top_tokens(torch.tensor([0.1, 0.6, 0.3]), 10)
    assert ids == [1, 2, 0] and probs == pytest.approx([0.6, 0.3, 0.1])
    with pytest.raises(ValueError, match="`k`"):
        top_tokens(torch.tensor([1.0]), 0)


def test_sample_token_is_seeded():
    probs = torch.softmax(torch.randn(1000, generator=torch.Generator().manual_seed(1)), -1)
    assert sample_token(probs, seed=3, step=0) == sample_token(probs, seed=3, step=0)
    draws = {sample_token(probs, seed=s, step=0) for s in range(20)}
    assert len(draws) > 5


@pytest.mark.parametrize(
    "field, value",
    [
        ("temperature", -0.1), ("temperature", float("nan")), ("temperature", float("inf")), ("top_k", 2.5),
        ("top_k", -1), ("top_p", 0.0), ("top_p", 1.5), ("min_p", -0.2), ("repetition_penalty", 0.5),
        ("strategy", "nucleus"), ("max_new_tokens", 0), ("seed", "7"), ("num_beams", True),
    ],
)
def test_bad_settings_raise_naming_the_argument(field, value):
    with pytest.raises(ValueError, match=f"`{field}`"):
        Settings(**{field: value})


@pytest.mark.parametrize(
    "name, raw, value, noticed",
    [
        ("temperature", "0.7", 0.7, False),
        ("temperature", "nan", 1.0, True),
        ("temperature", "inf", 2.0, True),
        ("temperature", "-3", 0.0, True),
        ("temperature", "hot", 1.0, True),
        ("top_k", "40", 40, False),
        ("top_k", "1e9", 200, True),
        ("top_k", "2.6", 3, True),
        ("top_p", "0", 0.01, True),
        ("strategy", "SAMPLE", "sample", False),
        ("strategy", "<script>", "greedy", True),
        ("max_new_tokens", "99999999", 256, True),
    ],
)
def test_coerce_untrusted_values(name, raw, value, noticed):
    got, notice = coerce(name, raw)
    assert got == value
    assert (notice is not None) == noticed
    if notice:
        assert f"`{name}`" in notice


def test_settings_from_mapping_ignores_unknown_names():
    settings, notices = settings_from({"temperature": "0.5", "top_k": "-4", "evil": "1"})
    assert settings.temperature == 0.5 and settings.top_k == 0 and len(notices) == 1


def test_every_control_has_bounds_help_and_caption():
    for c in CONTROLS.values():
        assert c.help and c.caption and c.label
        if c.kind is not str:
            assert c.low <= c.default <= c.high
        check = Settings()  # defaults are valid
        assert getattr(check, c.name) == c.default


# ---------------------------------------------------------------- what is shown is what generate samples

SETTINGS_TABLE = [
    Settings(strategy="sample", temperature=0.7),
    Settings(strategy="sample", top_k=5),
    Settings(strategy="sample", top_p=0.6),
    Settings(strategy="sample", min_p=0.1, temperature=1.3),
    Settings(strategy="sample", temperature=0.9, top_k=20, top_p=0.9, repetition_penalty=1.3),
]


@pytest.mark.parametrize("settings", SETTINGS_TABLE)
def test_processed_scores_equal_generates_output_scores(tiny_gpt2, settings):
    ids = torch.tensor([SEED_IDS])
    with torch.no_grad():
        out = tiny_gpt2.generate(
            ids, output_scores=True, output_logits=True, return_dict_in_generate=True,
            pad_token_id=50256, **{**settings.generate_kwargs(), "max_new_tokens": 1},
        )
    raw = out.logits[0][0]  # (vocab,) raw logits generate saw
    ours = process_logits(raw, settings, prev_ids=ids[0])[0]
    theirs = out.scores[0][0]
    assert torch.equal(torch.isfinite(ours), torch.isfinite(theirs))
    torch.testing.assert_close(ours[torch.isfinite(ours)], theirs[torch.isfinite(theirs)])


@pytest.mark.parametrize(
    "settings",
    [Settings(strategy="sample", top_k=8, temperature=1.5), Settings(strategy="sample", top_k=20, top_p=0.6, temperature=0.5)],
)
def test_generate_samples_match_the_shown_distribution(tiny_gpt2, settings):
    """2000 seeded draws through transformers' generate land on the shown distribution (total variation)."""
    from dashboard.generation import next_token_logits

    shown = distribution(next_token_logits(tiny_gpt2, SEED_IDS), settings, torch.tensor(SEED_IDS)).after
    n = 2000
    torch.manual_seed(0)
    batch = torch.tensor([SEED_IDS]).repeat(n, 1)  # (n, seq)
    with torch.no_grad():
        out = tiny_gpt2.generate(batch, attention_mask=torch.ones_like(batch), pad_token_id=50256, **{**settings.generate_kwargs(), "max_new_tokens": 1})
    drawn = out[:, -1]  # (n,)
    counts = torch.bincount(drawn, minlength=shown.shape[0]).float() / n
    assert set(drawn.tolist()) <= set(torch.nonzero(shown).flatten().tolist())  # never a removed token
    tv = 0.5 * (counts - shown).abs().sum().item()
    assert shown.count_nonzero() <= 20
    assert tv < 0.06, tv  # sampling noise alone gives ~0.02-0.03 for these supports at n=2000


def test_app_stream_samples_match_the_shown_distribution(tiny_gpt2, gpt2_tokenizer):
    """The app's own sampler (one token per seed) draws from exactly the shown distribution."""
    from dashboard.generation import generate_ids, next_token_logits

    settings = Settings(strategy="sample", top_k=6, temperature=1.2, max_new_tokens=1)
    shown = distribution(next_token_logits(tiny_gpt2, SEED_IDS), settings, torch.tensor(SEED_IDS)).after
    n = 300
    drawn = [generate_ids(tiny_gpt2, gpt2_tokenizer, SEED_IDS, Settings(**{**settings.as_dict(), "seed": s}))[-1] for s in range(n)]
    counts = torch.bincount(torch.tensor(drawn), minlength=shown.shape[0]).float() / n
    assert 0.5 * (counts - shown).abs().sum().item() < 0.12


GENERATE_ORDER = torch.log(torch.tensor([0.4, 0.3, 0.2, 0.1]))


@pytest.mark.parametrize("extra", [{}, {"top_k": 4}, {"temperature": 1.0, "top_k": 10}])
def test_min_p_acts_after_top_k_and_top_p_as_in_generate(extra):
    """generate's order: top-p 0.75 keeps [0.4, 0.3, 0.2]; min-p 0.3 of the renormalised 0.444 then keeps all
    three. min-p first would cut 0.1 from the raw distribution, and top-p on what is left would keep 2."""
    settings = sampled(top_p=0.75, min_p=0.3, **extra)
    assert kept(process_logits(GENERATE_ORDER, settings)) == [True, True, True, False]
    d = distribution(GENERATE_ORDER, settings)
    assert d.kept == 3
    assert d.after.tolist() == pytest.approx([4 / 9, 3 / 9, 2 / 9, 0.0], abs=1e-6)


def test_the_instruments_twin_keeps_generates_order_of_min_p_after_top_p():
    from dashboard.instrument import twin
    from dashboard.payload import payload

    logits = torch.full((300,), -30.0)
    logits[:4] = GENERATE_ORDER  # the rest carries ~1e-13 of the mass: the same four tokens decide
    settings = sampled(top_p=0.75, min_p=0.3)
    data = payload(logits, [], lambda ids: [f"t{i}" for i in ids])
    assert distribution(logits, settings).kept == twin(data, settings).kept == 3
