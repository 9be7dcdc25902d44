"""Forward passes, the KV-cached token path, greedy generation and scoring on a tiny GPT-2."""

import threading
import time

import pytest
import torch

from conftest import SEED_IDS, ForwardCounter
from dashboard.generation import (
    TokenPath,
    generate_ids,
    greedy_steps,
    next_token_logits,
    perplexity,
    score_ids,
)
from dashboard.generation import Generation, beam_search, stream_ids, stream_text
from dashboard.sampling import Settings, top_tokens


def test_probabilities_sum_to_one(tiny_gpt2):
    probs = next_token_logits(tiny_gpt2, SEED_IDS).softmax(-1)
    assert probs.shape == (50257,)
    assert probs.sum().item() == pytest.approx(1.0, abs=1e-5)
    ids, values = top_tokens(probs, 5)
    assert values == sorted(values, reverse=True)
    assert ids[0] == int(probs.argmax())


def test_app_probabilities_equal_a_direct_forward(tiny_gpt2):
    path = TokenPath(tiny_gpt2, SEED_IDS)
    with torch.no_grad():
        direct = tiny_gpt2(torch.tensor([SEED_IDS])).logits[0, -1].softmax(-1)
    torch.testing.assert_close(path.logits.softmax(-1), direct, rtol=0, atol=1e-5)


@pytest.mark.parametrize("steps", [1, 5, 12])
def test_argmax_append_equals_greedy_generate(tiny_gpt2, steps):
    ours = greedy_steps(tiny_gpt2, SEED_IDS, steps)
    with torch.no_grad():
        ref = tiny_gpt2.generate(
            torch.tensor([SEED_IDS]), attention_mask=torch.ones(1, len(SEED_IDS), dtype=torch.long),
            max_new_tokens=steps, do_sample=False, pad_token_id=50256,
        )[0].tolist()
    assert ours == ref


def test_token_path_append_equals_greedy_and_fresh_forward(tiny_gpt2):
    path = TokenPath(tiny_gpt2, SEED_IDS)
    for _ in range(6):
        path.append(int(path.logits.argmax()), "most likely")
    assert path.ids == greedy_steps(tiny_gpt2, SEED_IDS, 6)
    assert all(s.rank == 1 for s in path.steps)
    torch.testing.assert_close(path.logits, next_token_logits(tiny_gpt2, path.ids), rtol=0, atol=1e-4)


def test_undo_and_branch_keep_cache_consistent(tiny_gpt2):
    path = TokenPath(tiny_gpt2, SEED_IDS)
    for t in [11, 290, 13]:
        path.append(t, "picked")
    path.undo()
    assert path.ids == SEED_IDS + [11, 290]
    path.append(287, "picked")
    torch.testing.assert_close(path.logits, next_token_logits(tiny_gpt2, path.ids), rtol=0, atol=1e-4)
    path.truncate(1)  # branch after the first step
    assert path.cache.get_seq_length() == len(SEED_IDS) + 1
    torch.testing.assert_close(path.logits, next_token_logits(tiny_gpt2, SEED_IDS + [11]), rtol=0, atol=1e-4)
    torch.testing.assert_close(path.logits_at(0), next_token_logits(tiny_gpt2, SEED_IDS), rtol=0, atol=1e-4)


@pytest.mark.parametrize("bad", [-1, 50257, 10**9])
def test_append_rejects_ids_outside_the_vocabulary(tiny_gpt2, bad):
    path = TokenPath(tiny_gpt2, SEED_IDS[:3])
    with pytest.raises(ValueError, match="token_id"):
        path.append(bad, "picked")
    assert path.ids == SEED_IDS[:3]


def test_empty_inputs_are_refused(tiny_gpt2):
    with pytest.raises(ValueError, match="ids"):
        next_token_logits(tiny_gpt2, [])
    with pytest.raises(ValueError, match="prompt_ids"):
        TokenPath(tiny_gpt2, [])


def test_streamed_greedy_generation_matches_the_argmax_loop_and_generate(tiny_gpt2, gpt2_tokenizer):
    settings = Settings(strategy="greedy", max_new_tokens=10)
    run = Generation(SEED_IDS, settings)
    text = "".join(stream_text(gpt2_tokenizer, stream_ids(tiny_gpt2, gpt2_tokenizer, SEED_IDS, settings, run)))
    assert run.output_ids == greedy_steps(tiny_gpt2, SEED_IDS, 10)
    assert text == gpt2_tokenizer.decode(run.new_ids)
    assert run.tokens_per_second > 0 and run.reason == "length"
    with torch.no_grad():
        ref = tiny_gpt2.generate(torch.tensor([SEED_IDS]), do_sample=False, max_new_tokens=10, pad_token_id=50256)
    assert run.output_ids == ref[0].tolist()


def test_repetition_penalty_greedy_matches_generate(tiny_gpt2, gpt2_tokenizer):
    settings = Settings(strategy="greedy", max_new_tokens=15, repetition_penalty=1.8)
    ours = generate_ids(tiny_gpt2, gpt2_tokenizer, SEED_IDS, settings)
    with torch.no_grad():
        ref = tiny_gpt2.generate(torch.tensor([SEED_IDS]), pad_token_id=50256, **settings.generate_kwargs())
    assert ours == ref[0].tolist()


def test_seeded_sampling_is_reproducible_and_seed_dependent(tiny_gpt2, gpt2_tokenizer):
    settings = Settings(strategy="sample", temperature=1.5, max_new_tokens=12, seed=7)
    a = generate_ids(tiny_gpt2, gpt2_tokenizer, SEED_IDS, settings)
    b = generate_ids(tiny_gpt2, gpt2_tokenizer, SEED_IDS, settings)
    c = generate_ids(tiny_gpt2, gpt2_tokenizer, SEED_IDS, Settings(strategy="sample", temperature=1.5, max_new_tokens=12, seed=8))
    assert a == b and a != c


def test_closing_the_stream_stops_the_work(tiny_gpt2, gpt2_tokenizer):
    run = Generation(SEED_IDS, Settings(max_new_tokens=200))
    stream = stream_ids(tiny_gpt2, gpt2_tokenizer, SEED_IDS, run.settings, run)
    next(stream)
    next(stream)
    stream.close()  # what happens when the page's script run is interrupted
    assert run.reason == "stopped" and len(run.new_ids) == 2 and run.finished


def test_generation_stops_at_end_of_text(tiny_gpt2, gpt2_tokenizer):
    eos_after = greedy_steps(tiny_gpt2, SEED_IDS, 3)[-1]
    class Tok:
        eos_token_id = eos_after  # pretend the third greedy token ends the text
    run = Generation(SEED_IDS, Settings(max_new_tokens=50))
    list(stream_ids(tiny_gpt2, Tok(), SEED_IDS, run.settings, run))
    assert len(run.new_ids) <= 3 and run.reason == "end of text"


def test_beam_search_matches_generate(tiny_gpt2, gpt2_tokenizer):
    settings = Settings(strategy="beam", num_beams=3, max_new_tokens=6)
    run = beam_search(tiny_gpt2, gpt2_tokenizer, SEED_IDS, settings)
    with torch.no_grad():
        ref = tiny_gpt2.generate(torch.tensor([SEED_IDS]), num_beams=3, max_new_tokens=6, early_stopping=True, pad_token_id=50256)
    assert run.output_ids == ref[0].tolist()


def test_stream_text_waits_for_whole_characters(gpt2_tokenizer):
    ids = gpt2_tokenizer("a 🙂 b", add_special_tokens=False)["input_ids"]
    pieces = list(stream_text(gpt2_tokenizer, iter(ids)))
    assert "".join(pieces) == "a 🙂 b"
    assert all("\ufffd" not in p for p in pieces)


def test_greedy_tokens_score_rank_one(tiny_gpt2):
    ids = generate_ids(tiny_gpt2, _tok(), SEED_IDS, Settings(max_new_tokens=8))
    assert ids == greedy_steps(tiny_gpt2, SEED_IDS, 8)
    scores = score_ids(tiny_gpt2, ids, start=len(SEED_IDS))
    assert [s.rank for s in scores] == [1] * 8
    assert all(s.top_ids[0] == s.token_id for s in scores)
    assert perplexity(scores) >= 1.0


def test_scores_match_log_softmax(tiny_gpt2):
    scores = score_ids(tiny_gpt2, SEED_IDS)
    with torch.no_grad():
        logp = tiny_gpt2(torch.tensor([SEED_IDS])).logits[0].log_softmax(-1)
    for s in scores:
        expected = logp[s.index - 1, s.token_id].exp().item()
        assert s.prob == pytest.approx(expected, rel=1e-5)
        assert s.rank == int((logp[s.index - 1] > logp[s.index - 1, s.token_id]).sum()) + 1


def _tok():
    from dashboard.models import offline_gpt2_tokenizer

    return offline_gpt2_tokenizer()


def test_closing_the_text_stream_closes_the_model_loop(tiny_gpt2, gpt2_tokenizer):
    run = Generation(SEED_IDS, Settings(max_new_tokens=100))
    pieces = stream_text(gpt2_tokenizer, stream_ids(tiny_gpt2, gpt2_tokenizer, SEED_IDS, run.settings, run))
    next(pieces)
    pieces.close()  # what the generate page does when Stop interrupts write_stream
    assert run.reason == "stopped" and run.finished and len(run.new_ids) < 100


def test_stopping_the_text_stream_ends_the_model_work_at_once(tiny_gpt2, gpt2_tokenizer):
    """What Stop does on the Generate page, without Streamlit: the page reads a few pieces of the text stream, then
    closes it. Every forward made a token that was handed out (no work ahead of the reader), no thread was started,
    and after the close nothing runs any more."""
    threads = threading.active_count()
    counter = ForwardCounter(tiny_gpt2)
    try:
        run = Generation(SEED_IDS, Settings(max_new_tokens=200))
        pieces = stream_text(gpt2_tokenizer, stream_ids(tiny_gpt2, gpt2_tokenizer, SEED_IDS, run.settings, run))
        for _ in range(4):
            next(pieces)
        assert counter.n == len(run.new_ids) > 0 and threading.active_count() == threads
        pieces.close()  # what the page does when Stop interrupts the stream
        produced, forwards = len(run.new_ids), counter.n
        assert run.reason == "stopped" and run.finished
        assert 4 <= produced < 200 and forwards == produced  # one forward per token handed out, none more
        time.sleep(0.5)  # call nothing: no model work may happen any more
        assert counter.n == forwards and len(run.new_ids) == produced
        assert threading.active_count() == threads
    finally:
        counter.close()


def test_coalesce_joins_fast_pieces_and_keeps_every_character():
    import time as clock

    from dashboard.generation import coalesce

    def fast():
        for ch in "abcdefghij":
            yield ch

    def slow():
        for ch in "xyz":
            clock.sleep(0.03)
            yield ch

    out = list(coalesce(fast(), every_s=10))
    assert out == ["a", "bcdefghij"]  # the first at once, the rest when the stream ends
    assert "".join(coalesce(slow(), every_s=0.02)) == "xyz" and len(list(coalesce(slow(), every_s=0.02))) == 3
    closed = []

    def tracked():
        try:
            yield from "abc"
        finally:
            closed.append(True)

    stream = coalesce(tracked(), every_s=0)
    next(stream)
    stream.close()
    assert closed == [True]  # Stop closes the model loop underneath
