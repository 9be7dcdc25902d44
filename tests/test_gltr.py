"""GLTR's summary of a scored text: rank buckets, frac-p and entropy, on real scores of a tiny model."""

import math

import pytest
import torch

from dashboard import gltr
from dashboard.generation import score_ids
from dashboard.sampling import entropy_bits

from conftest import SEED_PROMPT, open_page


@pytest.fixture(scope="module")
def scored(tiny_gpt2, gpt2_tokenizer):
    ids = gpt2_tokenizer.encode(SEED_PROMPT + " models write text one token at a time, and people read it.")
    return ids, score_ids(tiny_gpt2, ids)


def test_buckets_count_every_token_once_in_gltr_order(scored):
    ids, scores = scored
    frame = gltr.bucket_frame(scores)
    assert frame["bucket"].tolist() == ["top 10", "top 100", "top 1000", "beyond 1000"]
    assert frame["tokens"].sum() == len(scores) == len(ids) - 1
    expect = [sum(1 for s in scores if lo < s.rank <= hi) for lo, hi in ((0, 10), (10, 100), (100, 1000),
                                                                          (1000, math.inf))]
    assert frame["tokens"].tolist() == expect
    assert sum(expect[1:]) > 0  # a random tiny model: not every token is a top-10 choice


def test_frac_p_is_the_tokens_probability_over_the_top_ones(scored, tiny_gpt2):
    ids, scores = scored
    logits = tiny_gpt2(torch.tensor([ids])).logits[0].float()  # (seq, vocab)
    for s in scores:
        probs = torch.softmax(logits[s.index - 1], -1)
        assert gltr.frac_p(s) == pytest.approx(float(probs[s.token_id] / probs.max()), rel=1e-4)
        assert (gltr.frac_p(s) == 1.0) == (s.rank == 1)
        assert s.entropy == pytest.approx(entropy_bits(probs), abs=1e-3)  # the whole distribution's entropy
    hist = gltr.frac_p_frame(scores)
    assert hist["tokens"].sum() == len(scores) and len(hist) == gltr.FRAC_P_BINS
    assert hist["tokens"].iloc[-1] == sum(1 for s in scores if gltr.frac_p(s) >= 0.9)


def test_an_engines_buckets_stop_at_its_top_n(scored):
    _, scores = scored
    frame = gltr.bucket_frame(scores, top_n=20)
    assert frame["bucket"].tolist() == ["top 10", "top 20", "below the top 20"]
    assert frame["tokens"].sum() == len(scores)
    assert frame["tokens"].iloc[-1] == sum(1 for s in scores if s.rank > 20)


def test_score_text_shows_the_summary_beside_the_colours(smollm):
    at = open_page("pages/generate.py", gen_tab="Score text",
                   score_text="The quick brown fox jumps over the lazy dog.")
    assert not at.exception
    assert any("were among the model's top 10 choices" in m.value for m in at.markdown)
    assert len(at.get("vega_lite_chart")) == 3  # rank buckets, frac-p, entropy
