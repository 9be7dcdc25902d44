"""Forward passes, the KV-cached token path behind the next-token page, streamed generation and
per-token scoring."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from typing import Iterator

import weakref

import torch

from dashboard.models import context_length
from dashboard.sampling import Settings, logits_processors

logger = logging.getLogger(__name__)


@torch.inference_mode()
def next_token_logits(model, ids: list[int]) -> torch.Tensor:
    """Raw logits (vocab,) for the token after `ids`, from one full forward pass."""
    if not ids:
        raise ValueError("`ids` must hold at least one token, got an empty list")
    input_ids = torch.tensor([ids], dtype=torch.long)  # (1, seq)
    out = model(input_ids=input_ids, use_cache=False, logits_to_keep=1)
    return out.logits[0, -1].float().clone()  # (vocab,)


@torch.inference_mode()
def greedy_steps(model, ids: list[int], steps: int) -> list[int]:
    """The seed notebook's Step 3 done `steps` times: forward, append the argmax, repeat (no cache)."""
    ids = list(ids)
    for _ in range(steps):
        ids.append(int(next_token_logits(model, ids).argmax()))  # most likely next token id
    return ids


@dataclass
class Step:
    """One token appended to the path: which, how likely, and how it was chosen."""

    token_id: int
    prob: float  # raw probability when chosen
    rank: int  # 1 = the argmax
    how: str  # "most likely", "sampled (seed 3)", "picked", …


class TokenPath:
    """A prompt and the tokens appended to it, with the KV cache of exactly that path.

    Lives in one user's session (never in a shared cached resource): appending costs one incremental
    forward; undo and branching crop the cache instead of recomputing it."""

    partial = False  # the logits cover the whole vocabulary (an engine's path: only its top N)

    def __init__(self, model, prompt_ids: list[int]):
        if not prompt_ids:
            raise ValueError("`prompt_ids` must hold at least one token, got an empty list")
        from transformers import DynamicCache

        self._model = weakref.ref(model)  # an evicted model is freed, not kept alive by a session's path
        self.context = context_length(model.config)
        self.prompt_ids = [int(i) for i in prompt_ids]
        self.steps: list[Step] = []
        self.cache = DynamicCache(config=model.config)
        self._logits: list[torch.Tensor] = []  # (vocab,) after prompt, after step 1, …
        self._forward(self.prompt_ids)

    @property
    def model(self):
        """The model this path runs on; RuntimeError once it was evicted from memory."""
        model = self._model()
        if model is None:
            raise RuntimeError("the model of this token path was evicted from memory; start a new path")
        return model

    def runs_on(self, model) -> bool:
        """Whether this path's cache belongs to `model` (False once its own model is gone or replaced)."""
        return self._model() is model

    @property
    def full(self) -> bool:
        """Whether the path fills the model's context, so no token can be appended."""
        return len(self.prompt_ids) + len(self.steps) >= self.context

    @property
    def ids(self) -> list[int]:
        """Prompt ids followed by the appended ids."""
        return self.prompt_ids + [s.token_id for s in self.steps]

    @property
    def logits(self) -> torch.Tensor:
        """Raw logits (vocab,) for the next token after the current path."""
        return self._logits[-1]

    def logits_at(self, step: int) -> torch.Tensor:
        """Raw logits (vocab,) that were in force when step `step` (0-based) was chosen."""
        return self._logits[step]

    @torch.inference_mode()
    def _forward(self, new_ids: list[int]) -> None:
        """Run `new_ids` through the model on top of the cache; keep the last position's logits."""
        input_ids = torch.tensor([new_ids], dtype=torch.long)  # (1, new)
        out = self.model(input_ids=input_ids, cache=self.cache, use_cache=True, logits_to_keep=1)  # grows the cache
        self._logits.append(out.logits[0, -1].float().clone())  # (vocab,)

    def raw_probs(self) -> torch.Tensor:
        """The model's probabilities (vocab,) for the next token."""
        return torch.softmax(self.logits, -1)

    def append(self, token_id: int, how: str) -> Step:
        """Append `token_id` (one incremental forward) and return the recorded step."""
        probs = self.raw_probs()  # (vocab,)
        if not 0 <= token_id < probs.shape[0]:
            raise ValueError(f"`token_id` must be in 0…{probs.shape[0] - 1}, got {token_id!r}")
        if self.full:
            raise ValueError(f"the path already fills the model's context of {self.context} tokens")
        rank = int((probs > probs[token_id]).sum()) + 1
        step = Step(int(token_id), float(probs[token_id]), rank, how)
        self._forward([int(token_id)])
        self.steps.append(step)
        return step

    def truncate(self, n_steps: int) -> None:
        """Keep only the first `n_steps` appended tokens (undo/branch): crop the cache, no forward."""
        if not 0 <= n_steps <= len(self.steps):
            raise ValueError(f"`n_steps` must be in 0…{len(self.steps)}, got {n_steps!r}")
        remove = len(self.steps) - n_steps
        del self.steps[n_steps:]
        del self._logits[n_steps + 1 :]
        if remove:
            self._crop(remove)

    def _crop(self, remove: int) -> None:
        """Drop the last `remove` positions from the KV cache."""
        self.cache.crop(-remove)  # transformers 5: a negative count of tokens to drop

    def undo(self) -> None:
        """Remove the last appended token."""
        if self.steps:
            self.truncate(len(self.steps) - 1)


# --------------------------------------------------------------------------- streamed generation


@dataclass
class Generation:
    """A generation in progress or done: the ids so far, timing, and why it ended."""

    prompt_ids: list[int]
    settings: Settings
    new_ids: list[int] = field(default_factory=list)
    started: float = field(default_factory=time.perf_counter)
    first_token_at: float = 0.0
    finished: float = 0.0
    reason: str = ""  # "length", "end of text", "stopped", "context full", "engine failed"
    scores: list | None = None  # per-token scores gathered while generating (engines), else scored afterwards

    @property
    def output_ids(self) -> list[int]:
        """Prompt ids followed by the generated ids."""
        return self.prompt_ids + self.new_ids

    @property
    def seconds(self) -> float:
        """Wall time from the start to the last token (or now)."""
        return (self.finished or time.perf_counter()) - self.started

    @property
    def tokens_per_second(self) -> float:
        """Generated tokens per second of wall time."""
        return len(self.new_ids) / self.seconds if self.seconds > 0 else 0.0


def _eos_ids(model, tokenizer) -> set[int]:
    """Every id that ends generation for this model (config and tokenizer end-of-text ids)."""
    ids = set()
    for source in (getattr(model, "generation_config", None), model.config, tokenizer):
        value = getattr(source, "eos_token_id", None) if source is not None else None
        if isinstance(value, int):
            ids.add(value)
        elif isinstance(value, (list, tuple)):
            ids.update(int(v) for v in value)
    return ids


@torch.inference_mode()
def stream_ids(model, tokenizer, prompt_ids: list[int], settings: Settings, run: Generation | None = None) -> Iterator[int]:
    """Generated token ids one at a time: a KV-cached loop applying the same logits processors as `generate`.

    Sampling draws from a private generator seeded with `settings.seed`, so concurrent sessions never
    disturb each other's random streams. Closing the iterator (page left, Stop pressed) ends the work."""
    from transformers import DynamicCache

    if not prompt_ids:
        raise ValueError("`prompt_ids` must hold at least one token, got an empty list")
    if settings.strategy == "beam":
        raise ValueError("`settings.strategy` 'beam' cannot stream; use beam_search()")
    run = run if run is not None else Generation(list(prompt_ids), settings)
    processors = logits_processors(settings)
    eos = _eos_ids(model, tokenizer)
    room = context_length(model.config) - len(prompt_ids)  # positions left in the model's context
    if room < 1:
        raise ValueError(f"`prompt_ids` has {len(prompt_ids)} tokens, the model's whole context; cut it first")
    rng = torch.Generator().manual_seed(int(settings.seed))
    cache = DynamicCache(config=model.config)
    ids = torch.tensor([prompt_ids], dtype=torch.long)  # (1, seq): everything so far, for the penalty
    feed = ids  # (1, new): what the model has not seen yet
    run.reason = "length"
    try:
        for _ in range(min(settings.max_new_tokens, room)):
            # 1. forward only the unseen tokens; the cache holds the rest
            logits = model(input_ids=feed, cache=cache, use_cache=True, logits_to_keep=1).logits[:, -1, :]  # (1, vocab)
            # 2. penalty and warpers, exactly as generate applies them
            scores = processors(ids, logits.float())  # (1, vocab)
            # 3. choose: argmax when greedy, else a draw from the processed distribution
            if settings.greedy:
                next_id = scores.argmax(dim=-1, keepdim=True)  # (1, 1)
            else:
                next_id = torch.multinomial(torch.softmax(scores, dim=-1), 1, generator=rng)  # (1, 1)
            # 4. append and hand the token out
            ids = torch.cat([ids, next_id], dim=-1)  # (1, seq + 1)
            feed = next_id
            token = int(next_id)
            run.new_ids.append(token)
            if not run.first_token_at:
                run.first_token_at = time.perf_counter()
            yield token
            if token in eos:
                run.reason = "end of text"
                break
        else:
            if settings.max_new_tokens > room:
                run.reason = "context full"
    except GeneratorExit:
        run.reason = "stopped"
        raise
    finally:
        run.finished = time.perf_counter()


def stream_text(tokenizer, ids: Iterator[int]) -> Iterator[str]:
    """Decoded text pieces for a stream of ids, holding back bytes of a character that is not complete yet."""
    new: list[int] = []
    shown = ""
    try:
        for token in ids:
            new.append(token)
            text = tokenizer.decode(new, skip_special_tokens=True)
            if text.endswith("\ufffd"):
                continue  # part of a multi-byte character: wait for the rest
            if len(text) > len(shown):
                yield text[len(shown):]
            shown = text
    finally:
        if hasattr(ids, "close"):
            ids.close()  # closing the text stream closes the token stream (and its model loop)


UPDATE_EVERY_S = 0.05  # the page redraws streamed text at most 20 times a second


def coalesce(pieces: Iterator[str], every_s: float = UPDATE_EVERY_S) -> Iterator[str]:
    """`pieces` joined so that at most one comes out per `every_s` seconds (the first at once): a fast engine's
    130 tokens a second become ~20 page updates, each a re-render in every browser, instead of 130."""
    pending, last = "", 0.0
    try:
        for piece in pieces:
            pending += piece
            now = time.perf_counter()
            if now - last >= every_s:
                yield pending
                pending, last = "", now
        if pending:
            yield pending
    finally:
        if hasattr(pieces, "close"):
            pieces.close()  # closing the page's stream closes the model loop (or the engine's stream)


@torch.inference_mode()
def beam_search(model, tokenizer, prompt_ids: list[int], settings: Settings) -> Generation:
    """Beam search through `model.generate` (it cannot stream): the finished Generation."""
    run = Generation(list(prompt_ids), settings)
    input_ids = torch.tensor([prompt_ids], dtype=torch.long)  # (1, seq)
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    kwargs = settings.generate_kwargs()
    kwargs["max_new_tokens"] = min(kwargs["max_new_tokens"], context_length(model.config) - len(prompt_ids))
    if kwargs["max_new_tokens"] < 1:
        raise ValueError(f"`prompt_ids` has {len(prompt_ids)} tokens, the model's whole context; cut it first")
    out = model.generate(
        input_ids=input_ids, attention_mask=torch.ones_like(input_ids), pad_token_id=pad, **kwargs,
    )  # (1, seq + new)
    run.new_ids = out[0, len(prompt_ids):].tolist()
    while run.new_ids and run.new_ids[-1] == pad and pad not in _eos_ids(model, tokenizer):
        run.new_ids.pop()
    run.finished = time.perf_counter()
    run.first_token_at = run.finished
    run.reason = "end of text" if run.new_ids and run.new_ids[-1] in _eos_ids(model, tokenizer) else "length"
    return run


def generate_ids(model, tokenizer, prompt_ids: list[int], settings: Settings) -> list[int]:
    """Prompt plus generated ids, run to completion (the same code path as the streamed page)."""
    if settings.strategy == "beam":
        return beam_search(model, tokenizer, prompt_ids, settings).output_ids
    return list(prompt_ids) + list(stream_ids(model, tokenizer, prompt_ids, settings))


# --------------------------------------------------------------------------- scoring


@dataclass(frozen=True)
class TokenScore:
    """How likely the model found one token of a text, given everything before it."""

    index: int
    token_id: int
    prob: float
    rank: int  # 1 = the model's top choice
    surprisal: float  # bits
    top_ids: tuple[int, ...]
    top_probs: tuple[float, ...]
    entropy: float = float("nan")  # bits, of the model's whole next-token distribution there (an engine's: of
    # its top N, renormalised)


@torch.inference_mode()
def score_ids(model, ids: list[int], start: int = 1, top: int = 5) -> list[TokenScore]:
    """Per-token probability, rank, surprisal and top alternatives for ids[start:], in one forward."""
    if len(ids) < 2:
        return []
    start = max(1, start)
    input_ids = torch.tensor([ids], dtype=torch.long)  # (1, seq)
    logits = model(input_ids=input_ids, use_cache=False).logits[0].float()  # (seq, vocab)
    logprobs = torch.log_softmax(logits[start - 1 : -1], -1)  # (n, vocab): predicts ids[start:]
    targets = input_ids[0, start:]  # (n,)
    chosen = logprobs.gather(-1, targets.unsqueeze(-1)).squeeze(-1)  # (n,)
    ranks = (logprobs > chosen.unsqueeze(-1)).sum(-1) + 1  # (n,)
    top_lp, top_ids = logprobs.topk(min(top, logprobs.shape[-1]), dim=-1)  # (n, top)
    entropy = -(logprobs.exp() * logprobs).nan_to_num().sum(-1) / 0.6931471805599453  # (n,) bits
    out = []
    for j in range(targets.shape[0]):
        lp = float(chosen[j])
        out.append(
            TokenScore(
                index=start + j,
                token_id=int(targets[j]),
                prob=float(torch.exp(chosen[j])),
                rank=int(ranks[j]),
                surprisal=-lp / 0.6931471805599453,
                top_ids=tuple(top_ids[j].tolist()),
                top_probs=tuple(torch.exp(top_lp[j]).tolist()),
                entropy=float(entropy[j]),
            )
        )
    return out


def perplexity(scores: list[TokenScore]) -> float:
    """Perplexity of the scored tokens (2 to the mean surprisal in bits)."""
    if not scores:
        return float("nan")
    return 2 ** (sum(s.surprisal for s in scores) / len(scores))
