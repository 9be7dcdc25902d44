"""Forward passes, the KV-cached token path behind the next-token page, streamed generation and
per-token scoring."""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, field
from typing import Iterator

import torch

from dashboard.sampling import Settings

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

    def __init__(self, model, prompt_ids: list[int]):
        if not prompt_ids:
            raise ValueError("`prompt_ids` must hold at least one token, got an empty list")
        from transformers import DynamicCache

        self.model = model
        self.prompt_ids = [int(i) for i in prompt_ids]
        self.steps: list[Step] = []
        self.cache = DynamicCache(config=model.config)
        self._logits: list[torch.Tensor] = []  # (vocab,) after prompt, after step 1, …
        self._forward(self.prompt_ids)

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

    def append(self, token_id: int, how: str) -> Step:
        """Append `token_id` (one incremental forward) and return the recorded step."""
        probs = torch.softmax(self.logits, -1)  # (vocab,)
        if not 0 <= token_id < probs.shape[0]:
            raise ValueError(f"`token_id` must be in 0…{probs.shape[0] - 1}, got {token_id!r}")
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
            self.cache.crop(-remove)  # transformers 5: a negative count of tokens to drop

    def undo(self) -> None:
        """Remove the last appended token."""
        if self.steps:
            self.truncate(len(self.steps) - 1)


# --------------------------------------------------------------------------- streamed generation


class _StopOnEvent:
    """StoppingCriteria that ends generation once `event` is set (the page's Stop button)."""

    def __init__(self, event: threading.Event):
        self.event = event

    def __call__(self, input_ids, scores, **kwargs):
        return torch.full((input_ids.shape[0],), self.event.is_set(), dtype=torch.bool)


@dataclass
class GenerationRun:
    """A generation running in a worker thread: iterate `chunks()` for text, `stop()` to end it early."""

    prompt_ids: list[int]
    settings: Settings
    stop_event: threading.Event = field(default_factory=threading.Event)
    output_ids: list[int] = field(default_factory=list)
    error: BaseException | None = None
    started: float = 0.0
    finished: float = 0.0
    thread: threading.Thread | None = None
    _streamer: object = None

    @property
    def new_ids(self) -> list[int]:
        """The generated ids (without the prompt)."""
        return self.output_ids[len(self.prompt_ids) :]

    @property
    def seconds(self) -> float:
        """Wall time of the generation so far."""
        return (self.finished or time.perf_counter()) - self.started

    @property
    def tokens_per_second(self) -> float:
        """New tokens per second of wall time."""
        return len(self.new_ids) / self.seconds if self.seconds > 0 else 0.0

    def chunks(self) -> Iterator[str]:
        """Decoded text pieces as the worker produces them (ends when it finishes or is stopped)."""
        for piece in self._streamer:
            yield piece
        if self.thread is not None:
            self.thread.join()

    def stop(self) -> None:
        """Ask the worker to stop after the current token and wait for it."""
        self.stop_event.set()
        if self.thread is not None:
            self.thread.join(timeout=30)


def start_generation(model, tokenizer, prompt_ids: list[int], settings: Settings) -> GenerationRun:
    """Start `model.generate` for `prompt_ids` with `settings` in a worker thread, streaming text."""
    from transformers import StoppingCriteriaList, TextIteratorStreamer

    if not prompt_ids:
        raise ValueError("`prompt_ids` must hold at least one token, got an empty list")
    run = GenerationRun([int(i) for i in prompt_ids], settings)
    streamer = TextIteratorStreamer(tokenizer, skip_prompt=True, timeout=120)
    run._streamer = streamer
    input_ids = torch.tensor([run.prompt_ids], dtype=torch.long)  # (1, seq)
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id

    def work():
        try:
            torch.manual_seed(settings.seed)  # sampling draws from torch's global generator
            with torch.inference_mode():
                out = model.generate(
                    input_ids=input_ids,
                    attention_mask=torch.ones_like(input_ids),
                    pad_token_id=pad,
                    streamer=streamer if settings.strategy != "beam" else None,
                    stopping_criteria=StoppingCriteriaList([_StopOnEvent(run.stop_event)]),
                    **settings.generate_kwargs(),
                )
            run.output_ids = out[0].tolist()
            if settings.strategy == "beam":  # beam search cannot stream: emit the result at once
                streamer.put(torch.tensor(run.output_ids))
                streamer.end()
        except BaseException as exc:  # reported to the page, never raised in the thread
            logger.exception("generation failed")
            run.error = exc
            streamer.end()
        finally:
            run.finished = time.perf_counter()

    run.started = time.perf_counter()
    run.thread = threading.Thread(target=work, name="tokenscope-generate", daemon=True)
    run.thread.start()
    return run


def generate_ids(model, tokenizer, prompt_ids: list[int], settings: Settings) -> list[int]:
    """Prompt plus generated ids, run to completion (the same code path as the streamed page)."""
    run = start_generation(model, tokenizer, prompt_ids, settings)
    for _ in run.chunks():
        pass
    if run.error is not None:
        raise run.error
    return run.output_ids


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
            )
        )
    return out


def perplexity(scores: list[TokenScore]) -> float:
    """Perplexity of the scored tokens (2 to the mean surprisal in bits)."""
    if not scores:
        return float("nan")
    return 2 ** (sum(s.surprisal for s in scores) / len(scores))
