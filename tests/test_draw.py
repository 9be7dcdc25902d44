"""The next-token numbers as a table and one draw made visible: inverse-CDF sampling with a seeded u, on
hand-made distributions and through the page."""

import pytest
import torch

from dashboard.draw import draw_frame, one_draw, table_text, top_table
from dashboard.numbers import probability
from dashboard.sampling import Settings, distribution, draw_order, draw_u, inverse_cdf, sample_token

from conftest import SEED_PROMPT, move, open_page, texts


def test_inverse_cdf_on_a_hand_made_distribution():
    after = torch.tensor([0.1, 0.0, 0.5, 0.4])  # laid out as id 2 [0, .5), id 3 [.5, .9), id 0 [.9, 1)
    order, cum = draw_order(after)
    assert order.tolist()[:3] == [2, 3, 0] and torch.allclose(cum[:3], torch.tensor([0.5, 0.9, 1.0], dtype=torch.float64))
    assert [inverse_cdf(after, u) for u in (0.0, 0.4999, 0.5, 0.8999, 0.9, 0.99999)] == [2, 2, 3, 3, 0, 0]
    with pytest.raises(ValueError, match="`u` must be in"):
        inverse_cdf(after, 1.0)


def test_removed_tokens_are_never_picked_even_by_rounding():
    after = torch.softmax(torch.tensor([5.0, 4.0, float("-inf"), float("-inf")]), -1)
    assert {inverse_cdf(after, u) for u in torch.linspace(0, 0.999999, 500).tolist()} == {0, 1}


def test_u_is_fixed_by_seed_and_step():
    assert draw_u(3, 7) == draw_u(3, 7)
    us = [draw_u(s, 0) for s in range(200)]
    assert all(0 <= u < 1 for u in us) and len(set(us)) == 200
    assert draw_u(3, 0) != draw_u(3, 1)


def test_sample_token_is_the_inverse_cdf_of_u_and_draws_the_distribution():
    after = torch.tensor([0.6, 0.3, 0.1])
    for seed in range(50):
        assert sample_token(after, seed, 2) == inverse_cdf(after, draw_u(seed, 2))
    counts = torch.bincount(torch.tensor([sample_token(after, s, 0) for s in range(4000)]), minlength=3) / 4000
    assert torch.allclose(counts, after, atol=0.03)


def test_top_table_and_draw_on_a_real_distribution(tiny_gpt2, gpt2_tokenizer):
    logits = tiny_gpt2(torch.tensor([[52, 67, 4355]])).logits[0, -1]
    dist = distribution(logits, Settings(strategy="sample", temperature=0.7, top_k=5))
    frame = top_table(gpt2_tokenizer, dist, 8)
    assert len(frame) == 8 and frame["rank"].tolist() == list(range(1, 9))
    assert frame["removed"].tolist() == [False] * 5 + [True] * 3  # top-k 5 removes ranks 6-8
    kept = frame[~frame["removed"]]
    assert kept["cumulative after"].is_monotonic_increasing and abs(kept["cumulative after"].iloc[-1] - 1) < 1e-6
    assert abs(sum(kept["probability after"]) - 1) < 1e-6
    shown = table_text(frame)
    assert shown["after"].tolist()[5:] == ["removed"] * 3
    assert shown["before"].tolist() == [probability(p) for p in frame["probability before"]]  # one format everywhere
    for seed in range(20):
        draw = one_draw(dist, seed, 0)
        assert draw.token_id == sample_token(dist.after, seed, 0)
        assert draw.start <= draw.u < draw.end and draw.token_id in frame["id"].tolist()[:5]
        stretches = draw_frame(gpt2_tokenizer, dist, draw)
        assert stretches["picked"].sum() == 1


# --------------------------------------------------------------------------- through the page


def test_the_page_shows_the_top_tokens_as_text(smollm):
    at = open_page("pages/next-token.py", prompt=SEED_PROMPT)
    table = at.table[0].value
    path = at.session_state["nt_path"]
    probs = torch.softmax(path.logits, -1)
    top = torch.topk(probs, 15)
    assert len(table) == 15 and table["id"].tolist() == [str(i) for i in top.indices.tolist()]
    assert table["before"].iloc[0] == f"{float(top.values[0]):.2%}"  # the numbers are text on the page
    at.slider(key="nt_show").set_value(7).run()
    assert len(at.table[0].value) == 7  # its length follows "Tokens shown"
    move(at, "top_k", 3)
    assert at.table[0].value["after"].tolist()[3:] == ["removed"] * 4


def test_sample_appends_the_token_the_draw_shows_and_a_slider_moves_the_pick(smollm):
    # a seed whose u is large: a cold temperature still picks the top token, a hot one must pick another
    seed = next(s for s in range(100) if draw_u(s, 0) > 0.97)
    at = open_page("pages/next-token.py", prompt=SEED_PROMPT, seed=str(seed), temperature="0.05")
    path = at.session_state["nt_path"]
    cold = one_draw(distribution(path.logits, Settings(strategy="sample", temperature=0.05, seed=seed),
                                 torch.tensor(path.ids)), seed, 0)
    assert cold.rank_after == 1 and "the most likely token" in texts(at)
    move(at, "temperature", 2.0)
    hot = one_draw(distribution(path.logits, Settings(strategy="sample", temperature=2.0, seed=seed),
                                torch.tensor(path.ids)), seed, 0)
    assert hot.token_id != cold.token_id and f"u = {hot.u:.4f}" in texts(at)
    assert f"(id {hot.token_id}," in texts(at)
    at.button(key="nt_sample").click().run()
    assert not at.exception
    assert at.session_state["nt_path"].steps[-1].token_id == hot.token_id  # exactly the token shown


def test_u_on_a_stretch_boundary_belongs_to_the_next_token():
    """Exactly representable probabilities put u on an edge: each token owns [start, end), so u = 0.5 is the
    second token's, 0.75 the third's (a `searchsorted` on the wrong side gives the token before)."""
    after = torch.tensor([0.5, 0.25, 0.25])  # stretches [0, .5), [.5, .75), [.75, 1)
    assert [inverse_cdf(after, u) for u in (0.0, 0.5, 0.75)] == [0, 1, 2]
    assert [inverse_cdf(after, u) for u in (0.49999, 0.74999, 0.99999)] == [0, 1, 2]
