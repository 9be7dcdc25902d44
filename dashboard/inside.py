"""Inside the model: one forward pass with every layer's residual stream (and, on request, attention
weights), the logit lens over it, and two attributions of the next token to the prompt's tokens.

Every function is a pure function of its arguments (a model, token ids, a `Forward`): no global state, no
change to the model, so results can be cached by the page. Layers are numbered 0…L: 0 is the embedding
layer (the residual stream before the first block), l ≥ 1 is the residual stream after block l, and layer L
is what the model's own output head reads, so its lens row equals the model's own logits.
"""

from __future__ import annotations

import copy
import logging
import numbers
from dataclasses import dataclass

import torch

logger = logging.getLogger(__name__)

NORM_NAMES = ("norm", "ln_f", "final_layernorm", "final_layer_norm")  # where the final norm lives
MAX_LENS_ELEMENTS = 1 << 28  # 1 GB of fp32 logits: ask for fewer positions (or layers) beyond this
# 256 MB of fp32 attention weights (layers × heads × seq²; the forward peaks at twice that): seq ≤ 498 on SmolLM2
MAX_ATTENTION_ELEMENTS = 1 << 26
OCCLUSION_BATCH_TOKENS = 4096  # rows × width of one occlusion forward; longer prompts take several forwards


class UnsupportedModel(ValueError):
    """The logit lens cannot be built for this model (the message says why, for users)."""


@dataclass(frozen=True)
class Forward:
    """What one forward pass over `ids` leaves behind for the page."""

    ids: list[int]
    hidden_states: torch.Tensor  # (layers + 1, seq, hidden): [0] embeddings, [l] after block l
    logits: torch.Tensor  # (vocab,): the model's own logits for the token after the last position
    attentions: torch.Tensor | None  # (layers, heads, seq, seq) when asked for, else None
    final_normed: bool | None  # hidden_states[-1] already went through the final norm (None: lens unfaithful)

    @property
    def n_layers(self) -> int:
        """Number of blocks L (hidden_states holds L + 1 entries)."""
        return int(self.hidden_states.shape[0]) - 1

    @property
    def seq(self) -> int:
        """Number of input positions."""
        return int(self.hidden_states.shape[1])


# --------------------------------------------------------------------------- model parts


def final_norm(model) -> torch.nn.Module:
    """The base model's final norm module (Llama's `model.norm`, GPT-2's `transformer.ln_f`, …);
    UnsupportedModel when none of the known names is found."""
    bodies = []
    for get in (lambda: model.get_decoder(), lambda: model.base_model, lambda: model):
        try:
            body = get()
        except (AttributeError, NotImplementedError, ValueError):
            continue
        if isinstance(body, torch.nn.Module) and all(body is not b for b in bodies):
            bodies.append(body)
    for body in bodies:
        for name in NORM_NAMES:
            module = getattr(body, name, None)
            if isinstance(module, torch.nn.Module):
                return module
    raise UnsupportedModel(
        f"{type(model).__name__} has no final norm the logit lens knows (looked for {', '.join(NORM_NAMES)} on "
        "its decoder and base model)")


def output_head(model) -> torch.nn.Module:
    """The model's output head (`get_output_embeddings()`, a Linear from hidden to vocabulary);
    UnsupportedModel when it has none."""
    getter = getattr(model, "get_output_embeddings", None)
    head = getter() if callable(getter) else None
    if not isinstance(head, torch.nn.Module) or getattr(head, "weight", None) is None:
        raise UnsupportedModel(f"{type(model).__name__} has no output head (get_output_embeddings() gave {head!r})")
    return head


def supported(model) -> str | None:
    """None when the logit lens works on `model`, else the reason it does not (one sentence for users)."""
    try:
        final_norm(model)
        output_head(model)
    except UnsupportedModel as e:
        return str(e)
    return None


def _vocab(model) -> int:
    """Rows of the output head."""
    return int(output_head(model).weight.shape[0])


def _is_int(value) -> bool:
    """Whether `value` is an integer (Python or NumPy), not a bool."""
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def _check_ids(model, ids) -> list[int]:
    """`ids` as a list of ints, validated against the input embedding table."""
    if not isinstance(ids, (list, tuple)) or not ids:
        raise ValueError(f"`ids` must be a non-empty list of token ids, got {ids!r}")
    rows = int(model.get_input_embeddings().weight.shape[0])
    bad = [i for i in ids if not _is_int(i) or not 0 <= i < rows]
    if bad:
        raise ValueError(f"`ids` must hold token ids in 0…{rows - 1}, got {bad[:5]!r}")
    return [int(i) for i in ids]


def _check_target(model, target_id) -> int:
    """`target_id` validated against the vocabulary of the output head."""
    vocab = _vocab(model)
    if not _is_int(target_id) or not 0 <= target_id < vocab:
        raise ValueError(f"`target_id` must be a token id in 0…{vocab - 1}, got {target_id!r}")
    return int(target_id)


# --------------------------------------------------------------------------- the forward pass


def _eager_twin(model):
    """A copy of `model`'s module tree that shares every parameter and buffer (no weight memory) and runs
    eager attention, so attention weights can be returned without switching the shared model itself, which
    other threads may be running at the same moment (~35 ms for a 30-layer model)."""
    if not callable(getattr(model, "set_attn_implementation", None)):
        raise UnsupportedModel(f"{type(model).__name__} cannot switch to eager attention to return its weights")
    memo = {id(t): t for t in [*model.parameters(), *model.buffers()]}
    twin = copy.deepcopy(model, memo)
    twin.set_attn_implementation("eager")
    return twin


def _final_normed(model, last: torch.Tensor, logits: torch.Tensor) -> bool | None:
    """Whether `last` (hidden,) — the last hidden state at the last position — is already normed: True when
    the head alone reproduces `logits` (vocab,), False when norm + head does, None when neither does.
    A Linear head is checked on 16 vocabulary rows (its 8 largest logits and 8 spread ids), not all of them."""
    try:
        head, norm = output_head(model), final_norm(model)
    except UnsupportedModel:
        return None
    rows = slice(None)
    if isinstance(head, torch.nn.Linear):
        vocab = logits.shape[0]
        rows = torch.cat([logits.topk(min(8, vocab)).indices, torch.linspace(0, vocab - 1, 8).long()])  # (16,)

    def reproduces(x: torch.Tensor) -> bool:
        x = x.to(head.weight.dtype)  # (hidden,)
        if isinstance(head, torch.nn.Linear):
            bias = None if head.bias is None else head.bias[rows]
            got = torch.nn.functional.linear(x, head.weight[rows], bias)  # (16,)
        else:
            got = head(x)  # (vocab,)
        return torch.allclose(got.float(), logits[rows], rtol=1e-4, atol=1e-4)

    if reproduces(last):
        return True
    if reproduces(norm(last.to(head.weight.dtype))):
        return False
    logger.warning("%s: final norm + output head do not reproduce its logits; the logit lens is off",
                   type(model).__name__)
    return None


@torch.inference_mode()
def run_forward(model, ids: list[int], attentions: bool = False) -> Forward:
    """One forward pass over `ids` (use_cache=False) keeping every layer's hidden states, the last position's
    logits and, when `attentions`, every layer's attention weights (computed by an eager-attention twin of
    the model that shares its weights; the shared model is never switched)."""
    ids = _check_ids(model, ids)
    c = model.config
    size = getattr(c, "num_hidden_layers", 0) * getattr(c, "num_attention_heads", 0) * len(ids) ** 2
    if attentions and size > MAX_ATTENTION_ELEMENTS:
        raise ValueError(f"`attentions` for {len(ids)} tokens would hold {size:,} weights (more than "
                         f"{MAX_ATTENTION_ELEMENTS:,}); use fewer tokens")
    runner = model
    if attentions and getattr(c, "_attn_implementation", None) != "eager":
        runner = _eager_twin(model)
    out = runner(input_ids=torch.tensor([ids]), use_cache=False, logits_to_keep=1,
                 output_hidden_states=True, output_attentions=bool(attentions))
    hidden = torch.stack(out.hidden_states)[:, 0].float()  # (layers + 1, seq, hidden)
    logits = out.logits[0, -1].float()  # (vocab,)
    att = None
    if attentions:
        if not out.attentions or any(a is None for a in out.attentions):
            raise UnsupportedModel(f"{type(model).__name__} does not return attention weights")
        att = torch.stack(out.attentions)[:, 0].float()  # (layers, heads, seq, seq)
    return Forward(ids, hidden, logits, att, _final_normed(model, hidden[-1, -1], logits))


# --------------------------------------------------------------------------- logit lens


def _pick(values: list[int] | None, n: int, name: str) -> list[int]:
    """`values` (indices into 0…n-1, negatives from the end) as a validated list; all of them when None."""
    if values is None:
        return list(range(n))
    if not isinstance(values, (list, tuple)) or not values:
        raise ValueError(f"`{name}` must be a non-empty list of indices or None, got {values!r}")
    bad = [v for v in values if not _is_int(v) or not -n <= v < n]
    if bad:
        raise ValueError(f"`{name}` must hold indices in 0…{n - 1}, got {bad[:5]!r}")
    return [int(v) % n for v in values]


@torch.inference_mode()
def lens_logits(model, fwd: Forward, positions: list[int] | None = None,
                layers: list[int] | None = None) -> torch.Tensor:
    """Logit-lens logits (layers, positions, vocab): the final norm and the output head applied to the residual
    stream of each chosen layer (0 = embeddings … L = last block, whose rows equal the model's own logits) at
    each chosen position, as one matmul over all (layer, position) rows. Defaults: every layer, every position."""
    if not isinstance(fwd, Forward):
        raise ValueError(f"`fwd` must be a Forward from run_forward(), got {type(fwd).__name__}")
    reason = supported(model)
    if reason is not None:
        raise UnsupportedModel(reason)
    if fwd.final_normed is None:
        raise UnsupportedModel(f"{type(model).__name__}'s final norm and output head do not reproduce its own "
                               "logits (it may scale or cap them), so the logit lens would mislead")
    layers = _pick(layers, fwd.n_layers + 1, "layers")
    positions = _pick(positions, fwd.seq, "positions")
    vocab = _vocab(model)
    if len(layers) * len(positions) * vocab > MAX_LENS_ELEMENTS:
        raise ValueError(f"`positions` ({len(positions)}) × `layers` ({len(layers)}) × vocabulary ({vocab}) is more "
                         f"than {MAX_LENS_ELEMENTS:,} logits; ask for fewer positions or layers")
    hs = fwd.hidden_states[layers][:, positions]  # (n_layers, n_positions, hidden)
    head, norm = output_head(model), final_norm(model)
    dtype = head.weight.dtype
    last = torch.tensor([l == fwd.n_layers and fwd.final_normed for l in layers])  # (n_layers,): already normed
    rows = hs.to(dtype)
    if not bool(last.all()):
        normed = norm(rows[~last])  # (n_to_norm, n_positions, hidden)
        rows = torch.empty_like(rows)
        rows[~last] = normed
        rows[last] = hs[last].to(dtype)
    out = head(rows.reshape(-1, rows.shape[-1]))  # (n_layers * n_positions, vocab)
    return out.float().reshape(len(layers), len(positions), -1)  # (n_layers, n_positions, vocab)


def lens_last_position(model, fwd: Forward) -> torch.Tensor:
    """Logit-lens logits (layers + 1, vocab) of the last position only: where the next token forms, cheaply."""
    return lens_logits(model, fwd, positions=[fwd.seq - 1])[:, 0]  # (layers + 1, vocab)


# --------------------------------------------------------------------------- summaries for the page


def lens_table(lens: torch.Tensor, tokenizer, positions: list[int] | None = None,
               layers: list[int] | None = None):
    """Long DataFrame, one row per (layer, position) of `lens` (layers, positions, vocab): layer, position,
    top_id, top_text (raw decoded text: the page escapes it) and probability of that top token. `positions`
    and `layers` name what the lens's columns and rows stand for (default 0, 1, …)."""
    import pandas as pd

    if not isinstance(lens, torch.Tensor) or lens.ndim != 3:
        raise ValueError(f"`lens` must be a (layers, positions, vocab) tensor, got {getattr(lens, 'shape', lens)!r}")
    n_layers, n_positions, _ = lens.shape
    positions = list(range(n_positions)) if positions is None else list(positions)
    layers = list(range(n_layers)) if layers is None else list(layers)
    if len(positions) != n_positions:
        raise ValueError(f"`positions` must name the lens's {n_positions} positions, got {len(positions)}")
    if len(layers) != n_layers:
        raise ValueError(f"`layers` must name the lens's {n_layers} layers, got {len(layers)}")
    best, top = lens.max(-1)  # (layers, positions) each
    lse = torch.stack([torch.logsumexp(lens[l].float(), -1) for l in range(n_layers)])  # (layers, positions)
    probs = (best.float() - lse).exp()  # (layers, positions); a layer at a time bounds the temporary memory
    texts = {t: tokenizer.decode([t]) for t in set(top.flatten().tolist())}
    rows = [{"layer": layers[l], "position": positions[p], "top_id": int(top[l, p]),
             "top_text": texts[int(top[l, p])], "probability": float(probs[l, p])}
            for l in range(n_layers) for p in range(n_positions)]
    return pd.DataFrame(rows, columns=["layer", "position", "top_id", "top_text", "probability"])


def final_choice_track(last_rows: torch.Tensor, final_id: int, layers: list[int] | None = None):
    """DataFrame with one row per layer of `last_rows` (layers, vocab) — the last position's lens — giving
    rank (1 = top) and probability of `final_id` there, plus that layer's own top id and its probability."""
    import pandas as pd

    if not isinstance(last_rows, torch.Tensor) or last_rows.ndim != 2:
        got = getattr(last_rows, "shape", last_rows)
        raise ValueError(f"`last_rows` must be a (layers, vocab) tensor, got {got!r}")
    if not _is_int(final_id) or not 0 <= final_id < last_rows.shape[1]:
        raise ValueError(f"`final_id` must be a token id in 0…{last_rows.shape[1] - 1}, got {final_id!r}")
    layers = list(range(last_rows.shape[0])) if layers is None else list(layers)
    if len(layers) != last_rows.shape[0]:
        raise ValueError(f"`layers` must name the {last_rows.shape[0]} rows, got {len(layers)}")
    final_id = int(final_id)
    target = last_rows[:, final_id : final_id + 1]  # (layers, 1)
    ranks = (last_rows > target).sum(-1) + 1  # (layers,)
    probs = torch.softmax(last_rows.double(), -1)  # (layers, vocab)
    top_p, top = probs.max(-1)  # (layers,) each
    return pd.DataFrame({"layer": layers, "rank": ranks.tolist(), "probability": probs[:, final_id].tolist(),
                         "top_id": top.tolist(), "top_probability": top_p.tolist()})


def forms_at(track) -> int | None:
    """The first layer from which the final choice is the top token and stays top through the last layer
    (for "the answer forms at layer 17 of 30"); None when it is not the top token at the last layer."""
    if track is None or len(track) == 0:
        raise ValueError("`track` must be a non-empty final_choice_track() table")
    ranks, layers = track["rank"].tolist(), track["layer"].tolist()
    if ranks[-1] != 1:
        return None
    first = len(ranks) - 1
    while first > 0 and ranks[first - 1] == 1:
        first -= 1
    return int(layers[first])


# --------------------------------------------------------------------------- attention


def attention_map(fwd: Forward, layer: int, head: int | None = None) -> torch.Tensor:
    """Attention weights (seq, seq) of block `layer` (0-based) — row = query position, column = key position,
    rows summing to 1 — for `head`, or the mean over heads when `head` is None."""
    if fwd.attentions is None:
        raise ValueError("`fwd` holds no attention weights: make it with run_forward(..., attentions=True)")
    n_layers, n_heads = fwd.attentions.shape[:2]
    if not _is_int(layer) or not 0 <= layer < n_layers:
        raise ValueError(f"`layer` must be a block index in 0…{n_layers - 1}, got {layer!r}")
    if head is None:
        return fwd.attentions[layer].mean(0)  # (seq, seq)
    if not _is_int(head) or not 0 <= head < n_heads:
        raise ValueError(f"`head` must be None or a head index in 0…{n_heads - 1}, got {head!r}")
    return fwd.attentions[layer, head]  # (seq, seq)


# --------------------------------------------------------------------------- attribution


@torch.inference_mode()
def occlusion(model, ids: list[int], target_id: int) -> torch.Tensor:
    """Drop (seq,) in the log-probability of `target_id` as the next token when each input token is left
    out (positive: the token supported the target), from ONE padded batch forward of the full prompt and its
    len(ids) leave-one-out variants (left padding, attention mask, position ids: each row equals its own
    single forward). Prompts longer than ~63 tokens are split into several such batches of at most
    OCCLUSION_BATCH_TOKENS positions each, which bounds memory; the result is the same."""
    from dashboard.compare import batched_next_logits

    ids = _check_ids(model, ids)
    target_id = _check_target(model, target_id)
    if len(ids) < 2:
        raise ValueError(f"`ids` needs at least 2 tokens to leave one out, got {len(ids)}")
    prompts = [ids] + [ids[:i] + ids[i + 1:] for i in range(len(ids))]  # n + 1 rows
    per_batch = max(1, OCCLUSION_BATCH_TOKENS // len(ids))
    logp = torch.cat([torch.log_softmax(batched_next_logits(model, prompts[k:k + per_batch]), -1)[:, target_id]
                      for k in range(0, len(prompts), per_batch)])  # (n + 1,)
    return logp[0] - logp[1:]  # (seq,)


def grad_x_input(model, ids: list[int], target_id: int) -> torch.Tensor:
    """Gradient × input (seq,): the gradient of log p(`target_id` | ids) with respect to each input token's
    embedding, dotted with that embedding — the first-order change of the log-probability when the
    embedding is scaled, i.e. d/dt log p(emb + t·emb_i) at t = 0. Only the embeddings tensor takes a
    gradient: the model's parameters, their requires_grad and their .grad are left untouched."""
    ids = _check_ids(model, ids)
    target_id = _check_target(model, target_id)
    with torch.inference_mode(False), torch.enable_grad():
        with torch.no_grad():
            emb = model.get_input_embeddings()(torch.tensor([ids])).detach().clone()  # (1, seq, hidden)
        emb.requires_grad_(True)
        out = model(inputs_embeds=emb, use_cache=False, logits_to_keep=1)
        wide = torch.promote_types(out.logits.dtype, torch.float32)  # fp32 at least, fp64 stays fp64
        logp = torch.log_softmax(out.logits[0, -1].to(wide), -1)[target_id]  # scalar
        (grad,) = torch.autograd.grad(logp, emb)  # (1, seq, hidden); never accumulates into parameters
    return (grad[0] * emb.detach()[0]).sum(-1).to(wide)  # (seq,)
