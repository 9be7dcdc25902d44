"""Every model's context respected: prompts cut from the left, generation and the token path stop at the
limit, long texts scored by their last window; on tiny models with 64 positions, and through every page."""

import pytest
import torch

from dashboard.generation import Generation, TokenPath, beam_search, score_ids, stream_ids
from dashboard.models import context_length
from dashboard.sampling import Settings
from dashboard.tokens import MAX_PROMPT_TOKENS, fit_context

from conftest import SEED_PROMPT, open_page, texts

LONG_PROMPT = " ".join(["the quick brown fox jumps over the lazy dog"] * 80)  # 720 words


@pytest.fixture(scope="module")
def gpt2_64():
    """A tiny GPT-2 with GPT-2's vocabulary and only 64 positions."""
    from transformers import GPT2Config, GPT2LMHeadModel

    torch.manual_seed(0)
    model = GPT2LMHeadModel(GPT2Config(n_layer=2, n_head=2, n_embd=32, n_positions=64, vocab_size=50257)).eval()
    for p in model.parameters():
        p.requires_grad_(False)
    return model


def test_context_length_reads_each_config_family(gpt2_64, tiny_llama):
    assert context_length(gpt2_64.config) == 64
    assert context_length(tiny_llama.config) == 256
    assert context_length({"max_position_embeddings": 8192}) == 8192


@pytest.mark.parametrize(
    "n, context, new, kept, dropped",
    [
        (10, 64, 1, 10, 0),
        (100, 64, 1, 63, 37),
        (100, 64, 20, 44, 56),
        (100, 64, 500, 1, 99),  # new tokens beyond the context are capped at context - 1
        (2000, 8192, 1, MAX_PROMPT_TOKENS, 2000 - MAX_PROMPT_TOKENS),  # the app's own cap
        (1000, 1024, 256, 768, 232),
    ],
)
def test_fit_context_keeps_the_end(n, context, new, kept, dropped):
    ids = list(range(n))
    out, notice = fit_context(ids, context, new)
    assert out == ids[n - kept:]
    assert (notice is None) == (dropped == 0)
    if dropped:
        assert f"first {dropped:,} tokens were dropped" in notice


def test_stream_stops_at_the_context(gpt2_64, gpt2_tokenizer):
    prompt = list(range(100, 160))  # 60 of 64 positions
    run = Generation(prompt, Settings(max_new_tokens=50))
    out = list(stream_ids(gpt2_64, gpt2_tokenizer, prompt, Settings(max_new_tokens=50), run))
    assert len(out) == 4 and run.reason == "context full"
    with pytest.raises(ValueError, match="whole context"):
        list(stream_ids(gpt2_64, gpt2_tokenizer, list(range(64)), Settings(max_new_tokens=5)))


def test_beam_search_is_capped_at_the_context(gpt2_64, gpt2_tokenizer):
    prompt = list(range(100, 160))
    run = beam_search(gpt2_64, gpt2_tokenizer, prompt, Settings(strategy="beam", num_beams=2, max_new_tokens=50))
    assert len(run.output_ids) <= 64


def test_token_path_fills_up_and_refuses_more(gpt2_64):
    path = TokenPath(gpt2_64, list(range(100, 162)))  # 62 tokens
    path.append(5, "picked")
    assert not path.full
    path.append(6, "picked")
    assert path.full
    with pytest.raises(ValueError, match="context of 64"):
        path.append(7, "picked")
    path.undo()
    assert not path.full


def test_token_path_does_not_keep_its_model_alive(tiny_llama):
    import gc
    import weakref

    from transformers import LlamaForCausalLM

    model = LlamaForCausalLM(tiny_llama.config).eval()
    path = TokenPath(model, [1, 2, 3])
    ref = weakref.ref(model)
    assert path.runs_on(model)
    del model
    gc.collect()
    assert ref() is None  # the session's path held no strong reference
    with pytest.raises(RuntimeError, match="evicted"):
        path.model


def test_scoring_window_is_the_text_end(gpt2_64):
    ids = list(range(1000, 1064))
    scores = score_ids(gpt2_64, ids)
    assert len(scores) == 63 and scores[-1].token_id == 1063
    with pytest.raises(IndexError):  # what the page avoids by scoring the last window
        score_ids(gpt2_64, list(range(1000, 1100)))


# --------------------------------------------------------------------------- through the pages


@pytest.fixture
def gpt2_64_folder(tmp_path, monkeypatch):
    """The operator's local tiny GPT-2 (64 positions) registered through TOKENSCOPE_MODELS."""
    from hubstub import make_tiny_gpt2

    from dashboard import models

    from dashboard.loaded import LOADED

    folder = make_tiny_gpt2(tmp_path / "gpt2-64", n_positions=64)
    monkeypatch.setenv("TOKENSCOPE_MODELS", str(folder))
    yield "local-gpt2-64"
    LOADED.clear()


@pytest.mark.app
def test_every_page_cuts_a_long_prompt_on_a_64_position_model(gpt2_64_folder):
    key = gpt2_64_folder
    at = open_page("pages/tokenize.py", model=key, prompt=LONG_PROMPT)
    assert "reads at most 64" in texts(at)

    at = open_page("pages/next-token.py", model=key, prompt=LONG_PROMPT)
    assert "tokens were dropped (the last 63 are used)" in texts(at)
    path = at.session_state["nt_path"]
    assert len(path.ids) == 63
    at.button(key="nt_append").click().run()
    assert not at.exception and at.session_state["nt_path"].full
    assert "fills the model's context of 64 tokens" in texts(at)
    assert at.button(key="nt_append").disabled and at.button(key="nt_sample").disabled

    at = open_page("pages/generate.py", model=key, prompt=LONG_PROMPT, max_new_tokens="256")
    assert "at most 63 new tokens" in texts(at)
    at.button(key="gen_go").click().run()
    assert not at.exception, [e.value for e in at.exception]
    run, _ = at.session_state["gen_last"]
    assert len(run.output_ids) <= 64 and run.new_ids

    at = open_page("pages/compare.py", model=key)
    at.text_area(key="cmp_prompt_0").input(LONG_PROMPT).run()
    assert not at.exception
    assert "Prompt 1: The prompt has" in texts(at)


@pytest.mark.app
def test_scoring_a_long_text_scores_its_last_window(gpt2_64_folder):
    at = open_page("pages/generate.py", model=gpt2_64_folder, prompt=SEED_PROMPT)
    at.text_area(key="score_text").input(LONG_PROMPT).run()
    assert not at.exception, [e.value for e in at.exception]
    assert "last window of 64 tokens is scored" in texts(at)
    metrics = {m.label: m.value for m in at.metric}
    assert float(metrics["Perplexity"]) > 1
