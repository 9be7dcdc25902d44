"""Next-token distributions built with transformers' own logits processors, in the order `generate` applies
them — so what is shown is what `generate` samples from — and the seeded draw (the settings live in settings.py)."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import torch

from dashboard.settings import (  # noqa: F401  (re-exported: the settings are part of the sampling API)
    CONTROLS, PRECISIONS, STRATEGIES, Control, Settings, check_value, coerce, coerce_to, settings_from, shown,
)


# --------------------------------------------------------------------------- the processing pipeline


def logits_processors(settings: Settings):
    """transformers' LogitsProcessorList for `settings`, in `generate`'s order (penalty, then warpers)."""
    from transformers import (
        LogitsProcessorList,
        MinPLogitsWarper,
        RepetitionPenaltyLogitsProcessor,
        TemperatureLogitsWarper,
        TopKLogitsWarper,
        TopPLogitsWarper,
    )

    procs = LogitsProcessorList()
    if settings.repetition_penalty != 1.0:
        procs.append(RepetitionPenaltyLogitsProcessor(settings.repetition_penalty))
    if settings.greedy or settings.strategy == "beam":
        return procs  # warpers only run when sampling
    if settings.temperature != 1.0:
        procs.append(TemperatureLogitsWarper(settings.temperature))
    if settings.top_k != 0:
        procs.append(TopKLogitsWarper(top_k=settings.top_k))
    if settings.top_p < 1.0:
        procs.append(TopPLogitsWarper(top_p=settings.top_p))
    if settings.min_p > 0:
        procs.append(MinPLogitsWarper(min_p=settings.min_p))
    return procs


def process_logits(logits: torch.Tensor, settings: Settings, prev_ids: torch.Tensor | None = None,
                   dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """Processed scores (batch, vocab) for raw `logits` (batch, vocab) or (vocab,); removed tokens are -inf.
    `dtype`: float32 computes as `generate` does; float64 gives the same processors' exact values.

    Greedy (strategy or temperature 0) keeps only the argmax after the penalty: that is the token
    `generate` would pick."""
    if logits.dim() == 1:
        logits = logits.unsqueeze(0)  # (1, vocab)
    logits = logits.float().to(dtype)  # (the raw logits are float32 numbers either way)
    if prev_ids is None:
        prev_ids = torch.zeros((logits.shape[0], 0), dtype=torch.long)
    elif prev_ids.dim() == 1:
        prev_ids = prev_ids.unsqueeze(0)  # (1, seq)
    scores = logits_processors(settings)(prev_ids, logits.clone())  # (batch, vocab)
    if settings.greedy and settings.strategy != "beam":
        keep = scores.argmax(dim=-1, keepdim=True)  # (batch, 1)
        onehot = torch.full_like(scores, float("-inf"))
        scores = onehot.scatter(-1, keep, scores.gather(-1, keep))
    return scores


@dataclass(frozen=True)
class Distribution:
    """Raw and processed next-token probabilities over the whole vocabulary, with summary figures."""

    logits: torch.Tensor  # (vocab,) raw
    probs: torch.Tensor  # (vocab,) softmax of raw logits
    scores: torch.Tensor  # (vocab,) processed logits, -inf where removed
    after: torch.Tensor  # (vocab,) softmax of processed scores: what sampling draws from

    @cached_property
    def kept(self) -> int:
        """How many tokens survive processing."""
        return int(torch.isfinite(self.scores).sum())

    @cached_property
    def order(self) -> tuple[torch.Tensor, torch.Tensor]:
        """draw_order(after), computed once per distribution (the draw, its frame and Sample all read it)."""
        return draw_order(self.after)

    @cached_property
    def mass_kept(self) -> float:
        """Raw probability mass of the surviving tokens."""
        return float(self.probs[torch.isfinite(self.scores)].sum())

    def rank_of(self, token_id: int) -> int:
        """1-based rank of `token_id` under the raw distribution."""
        return int((self.probs > self.probs[token_id]).sum()) + 1


def entropy_bits(probs: torch.Tensor) -> float:
    """Shannon entropy in bits of a probability vector (zeros contribute nothing)."""
    p = probs[probs > 0].double()
    return float(-(p * p.log2()).sum())


def distribution(logits: torch.Tensor, settings: Settings, prev_ids: torch.Tensor | None = None) -> Distribution:
    """Raw and processed distributions for one position's `logits` (vocab,). An engine's top-N log-probs (-inf
    elsewhere) give the distribution within its top N: the shares add up to 1 there, as sampling sees them."""
    logits = logits.float().reshape(-1)  # (vocab,)
    # generate's processors, in float64: float32 rounds a logit divided by a low temperature by up to ~3e-5, and
    # its softmax over ~50k tokens is off by up to ~1e-6 (its probabilities add up to 1 + 8e-6). These are the
    # exact values of what generate computes; the browser's instrument computes them in float64 too.
    scores = process_logits(logits, settings, prev_ids, dtype=torch.float64)[0]  # (vocab,)
    return Distribution(logits, torch.softmax(logits.double(), -1), scores, torch.softmax(scores, -1))


def top_tokens(probs: torch.Tensor, k: int) -> tuple[list[int], list[float]]:
    """(ids, probabilities) of the k most likely tokens, most likely first; k is clamped to the vocabulary."""
    if k < 1:
        raise ValueError(f"`k` must be at least 1, got {k!r}")
    values, ids = torch.topk(probs, min(k, probs.shape[-1]))
    return ids.tolist(), values.tolist()


def draw_u(seed: int, step: int = 0) -> float:
    """The uniform number in [0, 1) behind the draw at `step` for `seed`: one fixed u per (seed, step)."""
    gen = torch.Generator().manual_seed(int(seed) * 1_000_003 + int(step))
    return float(torch.rand((), generator=gen, dtype=torch.float64))


def draw_order(after: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(ids by processed probability, most likely first (ties by id), cumulative probability at each) (vocab,)."""
    probs = after.double().reshape(-1)  # (vocab,)
    order = torch.argsort(-probs, stable=True)  # (vocab,)
    return order, torch.cumsum(probs[order], 0)  # (vocab,), (vocab,)


def inverse_cdf(after: torch.Tensor, u: float, order: tuple[torch.Tensor, torch.Tensor] | None = None) -> int:
    """The token where `u` lands on the cumulative processed distribution `after` (vocab,): a draw from it.

    Tokens are laid end to end, most likely first; each owns a stretch as long as its probability, and the
    token whose stretch holds u is picked. Removed tokens own nothing, so they are never picked. `order`:
    draw_order(after) when the caller has it already."""
    if not 0.0 <= u < 1.0:
        raise ValueError(f"`u` must be in [0, 1), got {u!r}")
    order, cum = order if order is not None else draw_order(after)
    kept = int((after.reshape(-1) > 0).sum())  # (past the last kept token only rounding error remains)
    index = int(torch.searchsorted(cum, torch.tensor([u * float(cum[-1])], dtype=torch.float64), right=True))
    return int(order[min(index, max(kept, 1) - 1)])


def sample_token(after: torch.Tensor, seed: int, step: int = 0) -> int:
    """A token drawn from `after` (vocab,) with the u of (seed, step): reproducible, and the token the page's
    "one draw" view shows."""
    return inverse_cdf(after, draw_u(seed, step))
