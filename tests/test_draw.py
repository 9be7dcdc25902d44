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


# --------------------------------------------------------------------------- hand-made numbers (mutation audit)


def _hand_distribution():
    """Four tokens with after-probabilities 0.1, 0.2, 0.4, 0.3: a draw lays them out as id 2 [0, .4), id 3
    [.4, .7), id 1 [.7, .9), id 0 [.9, 1), an order unlike the ids'."""
    return distribution(torch.tensor([0.1, 0.2, 0.4, 0.3]).log(), Settings(strategy="sample"))


def test_top_table_cumulative_after_is_where_each_token_ends_on_the_draws_bar(gpt2_tokenizer):
    frame = top_table(gpt2_tokenizer, _hand_distribution(), 4)
    assert frame["id"].tolist() == [2, 3, 1, 0]
    assert frame["cumulative after"].tolist() == pytest.approx([0.4, 0.7, 0.9, 1.0], abs=1e-6)


def test_the_other_stretch_covers_exactly_what_the_shown_tokens_leave(gpt2_tokenizer):
    dist = _hand_distribution()
    draw = next(d for d in (one_draw(dist, seed, 0) for seed in range(100)) if d.u < 0.7)  # picks id 2 or 3
    assert (draw.token_id, draw.rank_after) in {(2, 1), (3, 2)}
    stretches = draw_frame(gpt2_tokenizer, dist, draw, n=2)
    other = stretches[stretches["id"] == -1]
    assert other["token"].tolist() == ["2 other tokens"]
    assert other["start"].tolist() == pytest.approx([0.7], abs=1e-6) and other["end"].tolist() == [1.0]
    assert stretches["probability"].sum() == pytest.approx(1.0, abs=1e-6)  # [0, 1] covered once, no gap


def test_the_draw_sentence_counts_steps_from_one(gpt2_tokenizer):
    from dashboard.draw import draw_sentence

    dist = _hand_distribution()
    draws = [one_draw(dist, seed, 0) for seed in range(100)]
    top = next(d for d in draws if d.rank_after == 1)
    assert f"With seed {top.seed}, step 1 draws u = {top.u:.4f}." in draw_sentence(gpt2_tokenizer, top, 0.4)
    assert draw_sentence(gpt2_tokenizer, top, 0.4).endswith(", the most likely token.")
    later = next(d for d in (one_draw(dist, seed, 4) for seed in range(100)) if d.rank_after == 3)
    shown = draw_sentence(gpt2_tokenizer, later, 0.4)
    assert "step 5 draws" in shown and "rank 3 after the controls with probability 20.00%" in shown
    assert f"from {later.start:.4f} to {later.end:.4f}" in shown and "0.7000 to 0.9000" in shown
