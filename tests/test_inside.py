"""The "Inside the model" core (dashboard/inside.py): forward with hidden states and attentions, logit lens,
attention maps, occlusion and gradient × input — on tiny models, one hand-built model and the bundled SmolLM2.

`python tests/test_inside.py` prints timings on the bundled model (nothing is asserted there)."""

from __future__ import annotations

import copy
import math
import os
import sys
from pathlib import Path

if __name__ == "__main__":  # run as a script: import the app's package, use the tests' weight cache
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    os.environ.setdefault("TOKENSCOPE_CACHE", str(Path(__file__).resolve().parents[1] / ".tokenscope-cache"))

import pytest
import torch
import torch.nn.functional as F
from conftest import ForwardCounter

from dashboard.inside import (
    Forward, UnsupportedModel, attention_map, final_choice_track, final_norm, forms_at, grad_x_input,
    lens_last_position, lens_logits, lens_table, occlusion, output_head, run_forward, supported,
)

IDS = [52, 67, 4355, 318, 262, 1266, 1295, 284, 2193, 546, 1152, 876]  # the seed prompt (GPT-2 ids)
LLAMA_IDS = [i % 512 for i in IDS]


def _randomize_norms(model, seed: int):
    """A copy of `model` whose norm weights (and biases) are random: with the default 1 and 0, normalizing
    twice is nearly the same as once, and a lens that applies the final norm twice would go unnoticed."""
    model = copy.deepcopy(model)
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "ln_" in name or "norm" in name:
                p.copy_((1.0 if name.endswith("weight") else 0.0) + 0.5 * torch.randn(p.shape, generator=g))
    return model


@pytest.fixture(scope="module")
def gpt2(tiny_gpt2):
    """Tiny GPT-2 (2 blocks) with random norms; parameters do not require grad, as in the app."""
    return _randomize_norms(tiny_gpt2, 1)


@pytest.fixture(scope="module")
def llama(tiny_llama):
    """Tiny Llama (2 blocks, GQA, tied head) with random norms; its parameters still require grad."""
    return _randomize_norms(tiny_llama, 2)


@pytest.fixture(params=["gpt2", "llama"])
def case(request, gpt2, llama):
    """(model, ids) for each tiny architecture."""
    return (gpt2, IDS) if request.param == "gpt2" else (llama, LLAMA_IDS)


def _logits(model, ids) -> torch.Tensor:
    """The model's own logits (seq, vocab) from a plain forward."""
    with torch.no_grad():
        return model(torch.tensor([ids]), use_cache=False).logits[0]


def _cut(model, n_blocks: int):
    """A copy of `model` that keeps only its first `n_blocks` blocks (then its final norm and head)."""
    cut = copy.deepcopy(model)
    if hasattr(cut, "transformer"):
        cut.transformer.h = torch.nn.ModuleList(list(cut.transformer.h)[:n_blocks])
    else:
        cut.model.layers = torch.nn.ModuleList(list(cut.model.layers)[:n_blocks])
    cut.config.num_hidden_layers = n_blocks
    return cut


# --------------------------------------------------------------------------- forward and logit lens


def test_last_layer_lens_equals_the_models_own_logits(case):
    model, ids = case
    fwd = run_forward(model, ids)
    L, vocab = model.config.num_hidden_layers, output_head(model).weight.shape[0]
    assert fwd.hidden_states.shape == (L + 1, len(ids), model.config.hidden_size)
    assert fwd.attentions is None and fwd.final_normed is True  # HF stores the normed last hidden state
    own = _logits(model, ids)  # (seq, vocab)
    torch.testing.assert_close(fwd.logits, own[-1], rtol=0, atol=1e-5)
    lens = lens_logits(model, fwd)
    assert lens.shape == (L + 1, len(ids), vocab)
    torch.testing.assert_close(lens[-1], own, rtol=0, atol=1e-5)  # every position
    torch.testing.assert_close(lens_last_position(model, fwd), lens[:, -1], rtol=0, atol=1e-6)


def test_lens_is_right_when_the_last_hidden_state_comes_unnormed(case):
    """A model may store its last block's raw output as the last hidden state (config.tie_last_hidden_states =
    False): then the lens must apply the final norm there too, and still equal the model's own logits."""
    model, ids = case
    raw = copy.deepcopy(model)
    raw.config.tie_last_hidden_states = False
    fwd = run_forward(raw, ids)
    assert fwd.final_normed is False
    torch.testing.assert_close(lens_logits(raw, fwd)[-1], _logits(model, ids), rtol=0, atol=1e-5)


@pytest.mark.parametrize("layer", [0, 1])
def test_lens_at_layer_l_equals_the_model_cut_after_block_l(case, layer):
    """The lens of layer l is what the model would say with only its first l blocks (0 = embeddings only)."""
    model, ids = case
    lens = lens_logits(model, run_forward(model, ids))
    torch.testing.assert_close(lens[layer], _logits(_cut(model, layer), ids), rtol=0, atol=1e-5)


def test_lens_subsets_match_the_full_lens_and_bad_indices_are_refused(gpt2, monkeypatch):
    fwd = run_forward(gpt2, IDS)
    full = lens_logits(gpt2, fwd)
    part = lens_logits(gpt2, fwd, positions=[0, -1, 5], layers=[2, 0])
    torch.testing.assert_close(part, full[[2, 0]][:, [0, 11, 5]], rtol=0, atol=1e-6)
    for kwargs, name in [({"layers": [3]}, "layers"), ({"positions": [12]}, "positions"), ({"layers": []}, "layers"),
                         ({"positions": [True]}, "positions"), ({"layers": "0"}, "layers")]:
        with pytest.raises(ValueError, match=f"`{name}`"):
            lens_logits(gpt2, fwd, **kwargs)
    for bad in ([], [50257], [-1], [1.5], "abc"):
        with pytest.raises(ValueError, match="`ids`"):
            run_forward(gpt2, bad)
    monkeypatch.setattr("dashboard.inside.MAX_LENS_ELEMENTS", 3 * 12 * 50257 - 1)  # memory caps
    with pytest.raises(ValueError, match="`positions`"):
        lens_logits(gpt2, fwd)
    monkeypatch.setattr("dashboard.inside.MAX_ATTENTION_ELEMENTS", 2 * 2 * 12 * 12 - 1)
    with pytest.raises(ValueError, match="`attentions`"):
        run_forward(gpt2, IDS, attentions=True)



def test_negative_layer_indices_mean_the_same_layers_as_their_positive_twins(case):
    """layers=[-1] is layer L, already normed: its row is the model's own logits (the final norm is not applied
    a second time because the index came from the end)."""
    model, ids = case
    fwd = run_forward(model, ids)
    assert fwd.final_normed is True
    torch.testing.assert_close(lens_logits(model, fwd, layers=[-1])[0, -1], fwd.logits, rtol=0, atol=1e-5)
    torch.testing.assert_close(lens_logits(model, fwd, layers=[-1, -3], positions=[-1]),
                               lens_logits(model, fwd, layers=[2, 0], positions=[len(ids) - 1]), rtol=0, atol=0)


def test_attention_weights_exactly_at_the_memory_cap_are_allowed(gpt2, monkeypatch):
    monkeypatch.setattr("dashboard.inside.MAX_ATTENTION_ELEMENTS", 2 * 2 * 12 * 12)  # layers × heads × seq²
    fwd = run_forward(gpt2, IDS, attentions=True)
    assert fwd.attentions.shape == (2, 2, 12, 12)
    torch.testing.assert_close(fwd.attentions.sum(-1), torch.ones(2, 2, 12), rtol=0, atol=1e-5)

def test_supported_names_the_reason_and_lens_refuses_unsupported_models(gpt2):
    assert supported(gpt2) is None
    assert final_norm(gpt2) is gpt2.transformer.ln_f and output_head(gpt2) is gpt2.lm_head

    class Headless(torch.nn.Module):
        """A bare wrapper: no output head, no final norm."""

        def __init__(self):
            super().__init__()
            self.body = gpt2

    class NoNorm(torch.nn.Module):
        """A head but no final norm anywhere."""

        def __init__(self):
            super().__init__()
            self.lm_head = torch.nn.Linear(4, 8)

        def get_output_embeddings(self):
            return self.lm_head

    for model, word in [(Headless(), "final norm"), (NoNorm(), "final norm")]:
        assert word in supported(model)
        with pytest.raises(UnsupportedModel, match=word):
            lens_logits(model, run_forward(gpt2, IDS))
    assert issubclass(UnsupportedModel, ValueError)
    no_head = copy.deepcopy(gpt2)
    no_head.get_output_embeddings = lambda: None
    assert "output head" in supported(no_head)
    unfaithful = Forward(IDS, run_forward(gpt2, IDS).hidden_states, torch.zeros(50257), None, None)
    with pytest.raises(UnsupportedModel, match="reproduce"):
        lens_logits(gpt2, unfaithful)


# --------------------------------------------------------------------------- summaries


def test_lens_table_gives_top_token_text_and_probability(gpt2_tokenizer):
    lens = torch.zeros(2, 3, 50257)  # (layers, positions, vocab)
    lens[0, :, 464] = 5.0  # "The"
    lens[1, :, 318] = math.log(50256.0)  # " is" at probability 1/2
    table = lens_table(lens, gpt2_tokenizer, positions=[4, 5, 6])
    assert list(table.columns) == ["layer", "position", "top_id", "top_text", "probability"]
    assert len(table) == 6 and table["position"].tolist() == [4, 5, 6, 4, 5, 6]
    assert table["top_id"].tolist() == [464] * 3 + [318] * 3
    assert table["top_text"].tolist() == ["The"] * 3 + [" is"] * 3
    assert table["probability"].iloc[-1] == pytest.approx(0.5, abs=1e-6)
    with pytest.raises(ValueError, match="`positions`"):
        lens_table(lens, gpt2_tokenizer, positions=[1, 2])


def test_final_choice_track_and_where_the_answer_forms():
    rows = torch.zeros(5, 10)  # (layers, vocab); the final choice is token 7
    rows[:, 3] = 2.0  # token 3 leads until…
    rows[:, 7] = torch.tensor([0.0, 3.0, -1.0, 2.5, 4.0])  # …7 leads at layer 1, falls back, leads from layer 3 on
    track = final_choice_track(rows, 7)
    assert track["layer"].tolist() == [0, 1, 2, 3, 4]
    assert track["rank"].tolist() == [2, 1, 10, 1, 1]  # ties count in its favour: at layer 0 only token 3 is ahead
    assert track["top_id"].tolist() == [3, 7, 3, 7, 7]
    assert track["probability"].iloc[-1] == pytest.approx(float(torch.softmax(rows[-1].double(), -1)[7]))
    assert forms_at(track) == 3  # first layer from which it stays on top
    assert forms_at(final_choice_track(rows, 3)) is None  # not the model's final top token
    assert forms_at(final_choice_track(rows[[1, 3, 4]], 7, layers=[1, 3, 4])) == 1
    with pytest.raises(ValueError, match="`final_id`"):
        final_choice_track(rows, 10)


# --------------------------------------------------------------------------- attention


def _causal_softmax(q: torch.Tensor, k: torch.Tensor) -> torch.Tensor:
    """softmax(q kᵀ / √d + causal mask) for (heads, seq, d) q and k: (heads, seq, seq)."""
    seq, d = q.shape[1], q.shape[2]
    scores = q @ k.transpose(1, 2) / math.sqrt(d)
    future = torch.triu(torch.ones(seq, seq, dtype=torch.bool), 1)
    return scores.masked_fill(future, float("-inf")).softmax(-1)


def test_gpt2_attention_matches_a_hand_computation_and_the_shared_model_is_not_switched(gpt2):
    before = gpt2.config._attn_implementation
    fwd = run_forward(gpt2, IDS, attentions=True)
    assert gpt2.config._attn_implementation == before != "eager"
    H, d = gpt2.config.n_head, gpt2.config.n_embd // gpt2.config.n_head
    assert fwd.attentions.shape == (2, H, len(IDS), len(IDS))
    for layer, block in enumerate(gpt2.transformer.h):
        x = block.ln_1(fwd.hidden_states[layer])  # (seq, hidden): the block's own input, normed
        q, k, _ = block.attn.c_attn(x).split(gpt2.config.n_embd, dim=-1)  # (seq, hidden) each
        q, k = (t.view(len(IDS), H, d).transpose(0, 1) for t in (q, k))  # (heads, seq, d)
        hand = _causal_softmax(q, k)
        for h in range(H):
            torch.testing.assert_close(attention_map(fwd, layer, h), hand[h], rtol=0, atol=1e-5)
        torch.testing.assert_close(attention_map(fwd, layer), hand.mean(0), rtol=0, atol=1e-5)
    torch.testing.assert_close(fwd.hidden_states, run_forward(gpt2, IDS).hidden_states, rtol=0, atol=1e-5)


def _rotate(x: torch.Tensor, theta: float) -> torch.Tensor:
    """Rotary embedding by hand for (heads, seq, d) x at positions 0…seq-1 (Llama's half-split pairing)."""
    seq, d = x.shape[1], x.shape[2]
    inv_freq = 1.0 / theta ** (torch.arange(0, d, 2, dtype=torch.float) / d)  # (d/2,)
    angles = torch.arange(seq, dtype=torch.float)[:, None] * inv_freq  # (seq, d/2)
    cos, sin = angles.cos().repeat(1, 2), angles.sin().repeat(1, 2)  # (seq, d)
    x1, x2 = x[..., : d // 2], x[..., d // 2:]
    return x * cos + torch.cat([-x2, x1], -1) * sin


def test_llama_attention_matches_a_hand_computation_with_rotary_and_grouped_heads(llama):
    fwd = run_forward(llama, LLAMA_IDS, attentions=True)
    c = llama.config
    H, KV, d, seq = c.num_attention_heads, c.num_key_value_heads, c.head_dim, len(LLAMA_IDS)
    assert fwd.attentions.shape == (2, H, seq, seq)
    for layer, block in enumerate(llama.model.layers):
        x = block.input_layernorm(fwd.hidden_states[layer])  # (seq, hidden)
        q = block.self_attn.q_proj(x).view(seq, H, d).transpose(0, 1)  # (H, seq, d)
        k = block.self_attn.k_proj(x).view(seq, KV, d).transpose(0, 1)  # (KV, seq, d)
        q, k = _rotate(q, c.rope_parameters["rope_theta"]), _rotate(k, c.rope_parameters["rope_theta"])
        hand = _causal_softmax(q, k.repeat_interleave(H // KV, 0))  # head h reads kv head h // (H/KV)
        for h in range(H):
            amap = attention_map(fwd, layer, h)
            torch.testing.assert_close(amap, hand[h], rtol=0, atol=1e-5)
            torch.testing.assert_close(amap.sum(-1), torch.ones(seq), rtol=0, atol=1e-5)
            assert bool((amap.triu(1) == 0).all())  # causal: no weight on later positions


def test_attention_map_refuses_bad_indices(gpt2):
    fwd = run_forward(gpt2, IDS[:4], attentions=True)
    for layer, head, name in [(2, 0, "layer"), (-1, 0, "layer"), (0, 2, "head"), (0, -1, "head"), (0, 1.0, "head")]:
        with pytest.raises(ValueError, match=f"`{name}`"):
            attention_map(fwd, layer, head)
    with pytest.raises(ValueError, match="attentions=True"):
        attention_map(run_forward(gpt2, IDS[:4]), 0, 0)


# --------------------------------------------------------------------------- occlusion


V, E, GAIN = 8, 24, 4.0  # the hand-built model: 8 tokens, 24 dimensions, head gain


@pytest.fixture(scope="module")
def first_token_model():
    """A 1-block GPT-2 whose next-token prediction depends on the FIRST token only, weights set by hand.

    Dims 0–7 hold the token (one-hot), dim 8 marks position 0 (the only non-zero position embedding), dims
    9–16 a readout. The query is a constant s·e₀ and the key reads the marker, so every position puts all its
    attention on position 0 (score gap ≈ 700: the rest underflows to exactly 0); the value copies ln_1's token
    dims and the output projection writes them into the readout. The MLP writes nothing. The head reads only
    the readout, and since every token's one-hot has the same mean and variance, ln_f's statistics do not
    depend on the last token: logits = GAIN · ln_f(e_last + R(first))[9:17], a function of the first token."""
    from transformers import GPT2Config, GPT2LMHeadModel

    config = GPT2Config(vocab_size=V, n_embd=E, n_layer=1, n_head=1, n_positions=16, tie_word_embeddings=False)
    model = GPT2LMHeadModel(config).eval()
    with torch.no_grad():
        for p in model.parameters():
            p.zero_().requires_grad_(False)
        t, block = model.transformer, model.transformer.h[0]
        t.wte.weight[range(V), range(V)] = 1.0
        t.wpe.weight[0, 8] = 1.0
        for ln in (block.ln_1, block.ln_2, t.ln_f):
            ln.weight.fill_(1.0)
        block.attn.c_attn.bias[0] = 1000.0  # q = s·e₀
        block.attn.c_attn.weight[8, E] = 1.0  # k₀ = ln_1(x)[8], the position-0 marker
        block.attn.c_attn.weight[range(V), [2 * E + d for d in range(V)]] = 1.0  # v = ln_1(x)[0:8]
        block.attn.c_proj.weight[range(V), [9 + d for d in range(V)]] = 1.0  # readout[9:17] = v
        model.lm_head.weight[range(V), [9 + d for d in range(V)]] = GAIN
    return model


def _hand_logp(ids: list[int], target: int) -> float:
    """log p(target | ids) for the hand-built model, computed from its construction (no forward)."""
    x0 = torch.zeros(E)
    x0[ids[0]], x0[8] = 1.0, 1.0  # first token + position-0 marker
    h = torch.zeros(E)
    h[ids[-1]] = 1.0
    h[9:17] = F.layer_norm(x0, (E,))[:V]  # what attention (all on position 0) copies into the readout
    return float(torch.log_softmax(GAIN * F.layer_norm(h, (E,))[9:17], -1)[target])


def test_occlusion_finds_the_one_token_a_hand_built_model_depends_on(first_token_model):
    ids, target = [3, 5, 1, 6, 2], 3
    own = torch.log_softmax(_logits(first_token_model, ids)[-1], -1)  # (V,)
    assert own[target] == pytest.approx(_hand_logp(ids, target), abs=1e-5)  # the construction holds
    assert int(own.argmax()) == target
    drop = occlusion(first_token_model, ids, target)
    hand = torch.tensor([_hand_logp(ids, target) - _hand_logp(ids[:i] + ids[i + 1:], target) for i in range(5)])
    assert hand[0] > 1.0 and bool((hand[1:] == 0).all())  # only the first token matters
    torch.testing.assert_close(drop, hand, rtol=0, atol=1e-5)


def test_occlusion_equals_a_loop_of_single_forwards(case, monkeypatch):
    model, ids = case
    ids = ids[:8]
    target = int(_logits(model, ids)[-1].argmax())
    base = torch.log_softmax(_logits(model, ids)[-1], -1)[target]
    loop = torch.stack([base - torch.log_softmax(_logits(model, ids[:i] + ids[i + 1:])[-1], -1)[target]
                        for i in range(len(ids))])
    forwards = ForwardCounter(model)
    torch.testing.assert_close(occlusion(model, ids, target), loop, rtol=0, atol=1e-5)
    assert forwards.n == 1  # one padded batch of 9 rows
    monkeypatch.setattr("dashboard.inside.OCCLUSION_BATCH_TOKENS", 20)  # a long prompt: batches of 2 rows
    torch.testing.assert_close(occlusion(model, ids, target), loop, rtol=0, atol=1e-5)
    assert forwards.n == 1 + 5
    forwards.close()
    with pytest.raises(ValueError, match="`ids`"):
        occlusion(model, ids[:1], target)
    with pytest.raises(ValueError, match="`target_id`"):
        occlusion(model, ids, output_head(model).weight.shape[0])



def test_occlusion_of_a_prompt_longer_than_one_batch_row_still_works(gpt2, monkeypatch):
    """A batch budget smaller than one row (a very long prompt) still runs one row per forward."""
    ids = IDS[:4]
    target = int(_logits(gpt2, ids)[-1].argmax())
    whole = occlusion(gpt2, ids, target)
    monkeypatch.setattr("dashboard.inside.OCCLUSION_BATCH_TOKENS", 2)  # fewer tokens than one 4-token row
    forwards = ForwardCounter(gpt2)
    torch.testing.assert_close(occlusion(gpt2, ids, target), whole, rtol=0, atol=1e-5)
    assert forwards.n == len(ids) + 1  # one row per forward
    forwards.close()

# --------------------------------------------------------------------------- gradient × input


def _fp64(model):
    """An fp64 copy of `model` that computes in fp64 throughout: Llama's RMSNorm casts to fp32 inside, which
    would add fp32 rounding noise to every finite difference, so its norms get the same formula in fp64."""
    double = copy.deepcopy(model).double()
    for module in double.modules():
        if type(module).__name__.endswith("RMSNorm"):
            module.forward = lambda x, n=module: n.weight * x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True)
                                                                            + n.variance_epsilon)
    return double


def test_grad_x_input_equals_finite_differences_and_leaves_the_model_alone(case):
    model, ids = case
    ids = ids[:6]
    flags = {n: p.requires_grad for n, p in model.named_parameters()}
    weights = {n: p.detach().clone() for n, p in model.named_parameters()}
    target = int(_logits(model, ids)[-1].argmax())
    gxi = grad_x_input(model, ids, target)
    assert gxi.shape == (len(ids),)
    assert {n: p.requires_grad for n, p in model.named_parameters()} == flags
    assert all(p.grad is None for p in model.parameters())
    assert all(torch.equal(p, weights[n]) for n, p in model.named_parameters())

    double = _fp64(model)  # finite differences in fp64: d/dt logp(emb + t·emb_i) at t = 0
    exact = grad_x_input(double, ids, target)
    emb = double.get_input_embeddings()(torch.tensor([ids])).detach()  # (1, seq, hidden)

    def logp(t: float, i: int) -> float:
        moved = emb.clone()
        moved[0, i] *= 1.0 + t
        with torch.no_grad():
            return float(torch.log_softmax(double(inputs_embeds=moved).logits[0, -1], -1)[target])

    eps = 1e-5
    fd = torch.tensor([(logp(eps, i) - logp(-eps, i)) / (2 * eps) for i in range(len(ids))], dtype=torch.float64)
    torch.testing.assert_close(exact, fd, rtol=1e-5, atol=1e-7)
    torch.testing.assert_close(gxi.double(), exact, rtol=1e-3, atol=1e-4)  # the fp32 model agrees


# --------------------------------------------------------------------------- the bundled model


@pytest.mark.real
def test_real_model_says_paris_and_shows_where_it_forms(smollm):
    model, tok = smollm.model, smollm.tokenizer
    ids = tok.encode("The capital of France is")
    fwd = run_forward(model, ids)
    probs = fwd.logits.softmax(-1)
    top = int(probs.argmax())
    assert tok.decode([top]) == " Paris"
    assert float(probs[top]) == pytest.approx(0.7725, abs=0.01)
    last = lens_last_position(model, fwd)  # (31, vocab)
    torch.testing.assert_close(last[-1], fwd.logits, rtol=0, atol=1e-4)
    track = final_choice_track(last, top)
    layer = forms_at(track)
    print(f"\n' Paris' ({float(probs[top]):.4f}) forms at layer {layer} of {fwd.n_layers}")
    assert layer is not None and 1 <= layer <= 30


# --------------------------------------------------------------------------- timings (not a test)


def _timings(rounds: int = 9) -> None:
    """Print timings on the bundled model: forward with/without hidden states, lens, occlusion. Every
    measurement runs once per round, rounds interleaved, and the best round counts (the machine is shared).
    With one torch thread the clock is this process's CPU time, which other processes on the machine disturb
    far less than wall time; with more threads it is wall time."""
    import time

    from dashboard.loaded import LOADED

    model = LOADED.get("smollm2-135m").model
    ids = list(range(1000, 1032))  # 32 tokens
    fwd = run_forward(model, ids)

    def plain(n):
        with torch.inference_mode():
            model(input_ids=torch.tensor([ids[:n]]), use_cache=False, logits_to_keep=1)

    jobs = {
        "plain32": lambda: plain(32), "hidden32": lambda: run_forward(model, ids),
        "attn32": lambda: run_forward(model, ids, attentions=True), "lens": lambda: lens_logits(model, fwd),
        "last": lambda: lens_last_position(model, fwd), "plain12": lambda: plain(12),
        "occ12": lambda: occlusion(model, ids[:12], 0), "gxi12": lambda: grad_x_input(model, ids[:12], 0),
    }
    clock = time.process_time if torch.get_num_threads() == 1 else time.perf_counter
    best = {k: math.inf for k in jobs}
    for _ in range(rounds):
        for name, job in jobs.items():
            start = clock()
            job()
            best[name] = min(best[name], (clock() - start) * 1e3)
    b = best
    print(f"32 tokens: plain forward {b['plain32']:.0f} ms, with hidden states {b['hidden32']:.0f} ms "
          f"({b['hidden32'] / b['plain32']:.2f}x), with attentions {b['attn32']:.0f} ms "
          f"({b['attn32'] / b['plain32']:.2f}x)")
    print(f"lens, all {fwd.n_layers + 1} layers x 32 positions: {b['lens']:.0f} ms ({b['lens'] / b['plain32']:.2f}x "
          f"a plain forward); last position only {b['last']:.1f} ms")
    print(f"12 tokens: plain forward {b['plain12']:.0f} ms, occlusion {b['occ12']:.0f} ms "
          f"({b['occ12'] / b['plain12']:.2f}x), grad x input {b['gxi12']:.0f} ms ({b['gxi12'] / b['plain12']:.2f}x)")


if __name__ == "__main__":  # python tests/test_inside.py [threads]
    if len(sys.argv) > 1:
        torch.set_num_threads(int(sys.argv[1]))
    print(f"{torch.get_num_threads()} torch threads ({'CPU' if torch.get_num_threads() == 1 else 'wall'} time)")
    _timings()
