"""The one interface the pages use to talk to a model (after LLM Transparency Tool's `TransparentLlm`): tokenize,
detokenize, next-token distributions, a token path, streamed generation and scoring. Two back-ends:

- `LocalBackend`: transformers in this process; exact, full vocabulary, KV-cached path, beam search, the inside.
- `EngineBackend`: an OpenAI-compatible engine (llama.cpp's server, vLLM, …); distributions are the engine's top N,
  generation uses the engine's own sampler. `unavailable(feature)` says what it cannot do, and why.

A new back-end is one new class with these methods."""

from __future__ import annotations

import logging
import math
import threading
from collections import OrderedDict
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Iterator, Protocol

import torch

from dashboard import engine_calls as calls
from dashboard import engines, models
from dashboard.engines import EngineError, EngineModel  # noqa: F401  (re-exported for the pages)
from dashboard.generation import Generation, Step, TokenPath, TokenScore, beam_search, score_ids, stream_ids
from dashboard.loaded import known_context_length
from dashboard.models import LoadedModel, ModelSpec
from dashboard.tokens import encode

logger = logging.getLogger(__name__)

FEATURES = ("beam", "bf16", "inside", "full_vocab")
MAX_ENGINE_SCORE_TOKENS = 256  # Score text on an engine without prompt log-probs: one request per token


@dataclass(frozen=True)
class ModelFacts:
    """What a page may know of a registered model without loading it."""

    key: str
    label: str
    on_engine: bool  # tokenizes and predicts on an operator's engine, not in this process
    context_length: int | None  # positions it reads; None where only loading it would tell


def model_keys() -> list[str]:
    """Every registered model's key, in the picker's order."""
    return list(models.registry())


def facts(key: str) -> ModelFacts:
    """The facts of registered model `key` (no load, no request but an engine's cached model list)."""
    spec = models.get_spec(key)
    return ModelFacts(key, spec.label, spec.source == "engine", known_context_length(key))


class Backend(Protocol):
    """What every page needs from a model."""

    spec: ModelSpec
    tokenizer: object  # decode(ids), tokenizer(text)["input_ids"], piece bytes: see tokens.token_bytes
    context_length: int
    vocab_size: int
    top_n: int | None  # None: the whole vocabulary, exact; else the engine's top N per position
    handle: object  # what computes (the torch module, or the engine back-end): memos hold it weakly

    def unavailable(self, feature: str) -> str | None:
        """Why `feature` (one of FEATURES) cannot be had on this back-end, or None when it can."""

    def tokenize(self, text: str) -> list[int]:
        """Token ids of `text`, no special tokens added."""

    def detokenize(self, ids: list[int]) -> str:
        """The text of `ids`."""

    def path(self, prompt_ids: list[int]) -> TokenPath:
        """A new token path (prompt plus appended tokens) with the distribution after it."""

    def owns(self, path: TokenPath) -> bool:
        """Whether `path` was made by this back-end and is still usable."""

    def next_logits(self, prompts: list[list[int]]) -> list[torch.Tensor]:
        """Next-token log-weights (vocab,) after each prompt: logits (local) or top-N log-probs, -inf elsewhere."""

    def stream(self, prompt_ids: list[int], settings, run: Generation) -> Iterator[int]:
        """Generated token ids one at a time (closing the iterator stops the work)."""

    def beam(self, prompt_ids: list[int], settings) -> Generation:
        """A finished beam search."""

    def score(self, ids: list[int], start: int = 1) -> list[TokenScore]:
        """Per-token probability, rank and alternatives for ids[start:]."""

    def inside(self) -> LoadedModel:
        """The weights in this process, for the Inside views (only where unavailable("inside") is None)."""


# --------------------------------------------------------------------------- local: transformers in this process


class LocalBackend:
    """A model loaded in this process (exact, full vocabulary). `precision_model` gives the bf16 copy for Generate."""

    top_n = None
    engine = None

    def __init__(self, loaded: LoadedModel, precision_model=None):
        self.loaded = loaded
        self.spec = loaded.spec
        self.tokenizer = loaded.tokenizer
        self.context_length = loaded.context_length
        self.vocab_size = loaded.vocab_size
        self.handle = loaded.model
        self._precision_model = precision_model  # callable(precision) -> LoadedModel

    def unavailable(self, feature: str) -> str | None:
        if feature == "inside":
            from dashboard.inside import supported

            return supported(self.loaded.model)  # e.g. an architecture without a final norm to lens through
        return None

    def inside(self) -> LoadedModel:
        """The loaded weights, for the Inside views (lens, attention, attribution)."""
        return self.loaded

    def tokenize(self, text: str) -> list[int]:
        return encode(self.tokenizer, text)

    def detokenize(self, ids: list[int]) -> str:
        return self.tokenizer.decode(list(ids))

    def path(self, prompt_ids: list[int]) -> TokenPath:
        return TokenPath(self.loaded.model, prompt_ids)

    def owns(self, path) -> bool:
        return isinstance(path, TokenPath) and not isinstance(path, EnginePath) and path.runs_on(self.loaded.model)

    def next_logits(self, prompts: list[list[int]]) -> list[torch.Tensor]:
        from dashboard.compare import batched_next_logits

        pad = self.tokenizer.pad_token_id or 0
        return list(batched_next_logits(self.loaded.model, [list(p) for p in prompts], pad_id=pad))

    def _runner(self, settings):
        """The model generation runs on (the bf16 copy when asked and available)."""
        if settings.precision != "fp32" and self._precision_model is not None:
            return self._precision_model(settings.precision).model
        return self.loaded.model

    def stream(self, prompt_ids: list[int], settings, run: Generation) -> Iterator[int]:
        return stream_ids(self._runner(settings), self.tokenizer, prompt_ids, settings, run)

    def beam(self, prompt_ids: list[int], settings) -> Generation:
        return beam_search(self._runner(settings), self.tokenizer, prompt_ids, settings)

    def score(self, ids: list[int], start: int = 1, precision: str = "fp32") -> list[TokenScore]:
        model = self.loaded.model
        if precision != "fp32" and self._precision_model is not None:
            model = self._precision_model(precision).model
        return score_ids(model, ids, start=start)


# --------------------------------------------------------------------------- engines: OpenAI-compatible servers


ENCODED_KEPT = 64  # texts an engine tokenizer remembers the ids of (the least recently used go first)


class EngineTokenizer:
    """The engine's tokenizer seen through the interface the pages use (`tokenizer(text)["input_ids"]`, `decode`,
    `piece_bytes`). Token bytes are remembered per id (they come with every log-prob answer), so showing a table
    of tokens costs no request."""

    pad_token_id = None
    eos_token_id = None

    def __init__(self, model: EngineModel):
        self.model = model
        self._bytes: dict[int, bytes] = {}
        self._encoded: OrderedDict[str, list[int]] = OrderedDict()
        self._lock = threading.Lock()

    def remember(self, token_id: int | None, raw: bytes | None) -> None:
        """Note the bytes of `token_id` (from an answer that carried them)."""
        if token_id is not None and raw is not None:
            self._bytes[int(token_id)] = raw

    def __call__(self, text: str, add_special_tokens: bool = False) -> dict:
        with self._lock:
            if text in self._encoded:
                self._encoded.move_to_end(text)
                return {"input_ids": list(self._encoded[text])}
        ids, pieces = calls.tokenize(self.model, text) if text else ([], [])
        for token_id, raw in zip(ids, pieces):
            self.remember(token_id, raw)
        with self._lock:
            self._encoded[text] = ids
            while len(self._encoded) > ENCODED_KEPT:
                self._encoded.popitem(last=False)
        return {"input_ids": list(ids)}

    def piece_bytes(self, token_id: int) -> bytes:
        """The raw bytes token `token_id` stands for."""
        token_id = int(token_id)
        if token_id not in self._bytes:
            self._bytes[token_id] = calls.detokenize(self.model, [token_id]).encode("utf-8")
        return self._bytes[token_id]

    def convert_ids_to_tokens(self, token_id: int):
        return None  # token_bytes() asks piece_bytes instead

    def decode(self, ids, skip_special_tokens: bool = False) -> str:
        ids = [int(i) for i in ids]
        missing = [i for i in dict.fromkeys(ids) if i not in self._bytes]
        if len(missing) > 8:  # many unknown ids: one request for the whole text
            return calls.detokenize(self.model, ids)
        return b"".join(self.piece_bytes(i) for i in ids).decode("utf-8", errors="replace")


class EnginePath(TokenPath):
    """A token path on an engine: each step is one request for the top N after the whole path (the engine's
    prompt cache makes it incremental). Logits are the engine's log-probs, -inf outside its top N."""

    partial = True

    def __init__(self, backend: "EngineBackend", prompt_ids: list[int]):
        if not prompt_ids:
            raise ValueError("`prompt_ids` must hold at least one token, got an empty list")
        self._backend = backend
        self.context = backend.context_length
        self.prompt_ids = [int(i) for i in prompt_ids]
        self.steps: list[Step] = []
        self._logits: list[torch.Tensor] = []
        self._logits.append(backend.next_logits([self.prompt_ids])[0])

    @property
    def model(self):
        return self._backend

    def runs_on(self, model) -> bool:
        return model is self._backend

    def raw_probs(self) -> torch.Tensor:
        return self.logits.exp()  # (vocab,): the engine's probabilities, 0 outside its top N

    def _forward(self, new_ids: list[int]) -> None:
        self._logits.append(self._backend.next_logits([self.ids + list(new_ids)])[0])

    def _crop(self, remove: int) -> None:
        pass  # no cache here: the engine keeps its own prompt cache


class EngineBackend:
    """A model served by an OpenAI-compatible engine. One per model per process (its tokenizer's memory of
    token bytes is shared by every session)."""

    def __init__(self, spec: ModelSpec, model: EngineModel):
        self.spec = spec
        self.model = model
        self.engine = model.engine.name
        self.tokenizer = EngineTokenizer(model)
        self.context_length = model.context
        self.vocab_size = model.vocab_size or 262_144
        self.top_n = engines.top_n()
        self.handle = self
        self._echo: bool | None = None  # whether the engine echoes prompt log-probs (None: not tried yet)
        self._pool = ThreadPoolExecutor(max_workers=8, thread_name_prefix=f"engine-{self.engine}")

    def unavailable(self, feature: str) -> str | None:
        reasons = {
            "beam": "beam search runs in transformers' `generate`; an OpenAI-compatible engine samples one "
                    "continuation (use greedy or sample)",
            "bf16": "the engine computes in its own precision (its weights as it loaded them)",
            "inside": "looking inside needs the weights in this process; an engine only returns tokens and the "
                      f"top {self.top_n} probabilities",
            "full_vocab": f"an engine returns the top {self.top_n} tokens per position, not the whole vocabulary",
        }
        return reasons.get(feature)

    def tokenize(self, text: str) -> list[int]:
        return encode(self.tokenizer, text)

    def detokenize(self, ids: list[int]) -> str:
        return self.tokenizer.decode(ids)

    def path(self, prompt_ids: list[int]) -> EnginePath:
        return EnginePath(self, prompt_ids)

    def owns(self, path) -> bool:
        return isinstance(path, EnginePath) and path.runs_on(self)

    def _one(self, ids: list[int]) -> torch.Tensor:
        rows = calls.top_logprobs(self.model, ids, self.top_n)
        logits = torch.full((self.vocab_size,), float("-inf"))  # (vocab,)
        for token_id, logprob, raw in rows:
            if 0 <= token_id < self.vocab_size:
                logits[token_id] = max(logprob, -1e30)
                self.tokenizer.remember(token_id, raw)
        return logits

    def next_logits(self, prompts: list[list[int]]) -> list[torch.Tensor]:
        if len(prompts) == 1:
            return [self._one(prompts[0])]
        return list(self._pool.map(self._one, prompts))  # the engine batches concurrent requests

    def stream(self, prompt_ids: list[int], settings, run: Generation) -> Iterator[int]:
        """Generated ids from the engine's stream, with each token's score (prob, rank within the top N,
        alternatives) kept in `run.scores` as it arrives: no second pass is needed to colour the text."""
        import time

        room = self.context_length - len(prompt_ids)
        if room < 1:
            raise ValueError(f"`prompt_ids` has {len(prompt_ids)} tokens, the model's whole context; cut it first")
        run.scores = []
        run.reason = "length"
        pieces = calls.stream_completion(self.model, prompt_ids, settings, min(settings.max_new_tokens, room),
                                           min(self.top_n, 20))
        try:
            for item in pieces:
                if "finish_reason" in item:
                    run.reason = "end of text" if item["finish_reason"] == "stop" else run.reason
                    if item["finish_reason"] == "length" and settings.max_new_tokens > room:
                        run.reason = "context full"
                    break
                token = item["id"]
                self.tokenizer.remember(token, item["bytes"])
                for tid, _, raw in item["top"]:
                    self.tokenizer.remember(tid, raw)
                run.scores.append(_score(len(prompt_ids) + len(run.new_ids), token, item["logprob"], item["top"]))
                run.new_ids.append(token)
                if not run.first_token_at:
                    run.first_token_at = time.perf_counter()
                yield token
        except GeneratorExit:
            run.reason = "stopped"
            raise
        finally:
            pieces.close()  # closes the HTTP stream: the engine stops generating for it
            run.finished = time.perf_counter()

    def inside(self) -> LoadedModel:
        raise EngineError(f"{self.spec.label} cannot be looked inside: {self.unavailable('inside')}.")

    def beam(self, prompt_ids: list[int], settings) -> Generation:
        raise EngineError(f"Beam search is not available on engine {self.engine!r}: {self.unavailable('beam')}.")

    def score(self, ids: list[int], start: int = 1, precision: str = "fp32") -> list[TokenScore]:
        """Per-token scores: one request echoing the prompt's log-probs where the engine gives them (vLLM), else
        one top-N request per position (llama.cpp's server), a token outside the top N then getting its
        probability from a request that forces it (logit bias)."""
        start = max(1, start)
        if self._echo is not False and len(ids) > 1:  # one request, where the engine echoes prompt log-probs
            try:
                rows = calls.prompt_logprobs(self.model, ids, min(self.top_n, 5))
                self._echo = True
                return [_score(j, ids[j], *rows[j - 1]) for j in range(start, len(ids))]
            except EngineError as exc:
                if exc.status is None or self._echo:
                    raise  # down or slow: not a missing feature
                self._echo = False  # it refuses echo (llama.cpp): one request per position from now on
                logger.info("engine %s gives no prompt log-probs; scoring per position", self.engine)
        positions = list(range(start, len(ids)))

        def one(j: int) -> TokenScore:
            rows = calls.top_logprobs(self.model, ids[:j], self.top_n)
            for tid, _, raw in rows:
                self.tokenizer.remember(tid, raw)
            top = [(tid, lp, raw) for tid, lp, raw in rows]
            chosen = next((lp for tid, lp, _ in rows if tid == ids[j]), None)
            if chosen is None:
                chosen = calls.forced_logprob(self.model, ids[:j], ids[j])
            return _score(j, ids[j], chosen, top)

        return list(self._pool.map(one, positions))


def _score(index: int, token: int, logprob: float, top: list) -> TokenScore:
    """A TokenScore from an engine's answer: the rank counts within the top N (N + 1 means "below the top N")."""
    top = sorted(((tid, lp) for tid, lp, *_ in top if tid is not None), key=lambda r: -r[1])
    rank = next((k + 1 for k, (tid, _) in enumerate(top) if tid == token), len(top) + 1)
    held = sum(math.exp(lp) for _, lp in top)  # the top N's shares, renormalised, for the entropy
    entropy = -sum(math.exp(lp) / held * (lp - math.log(held)) for _, lp in top) / math.log(2) if held else math.nan
    return TokenScore(index=index, token_id=int(token), prob=math.exp(logprob), rank=rank,
                      surprisal=-logprob / math.log(2), top_ids=tuple(t for t, _ in top[:5]),
                      top_probs=tuple(math.exp(lp) for _, lp in top[:5]), entropy=entropy)


_ENGINE_BACKENDS: dict[str, EngineBackend] = {}
_LOCK = threading.Lock()


def engine_backend(spec: ModelSpec) -> EngineBackend:
    """The process's back-end for engine model `spec` (EngineError when the engine does not serve it now)."""
    model = engines.find(spec.key)
    if model is None:
        _, problems = engines.all_models()
        name = spec.key.split("/", 1)[0]
        why = next((p for p in problems if f"{name!r}" in p), f"engine {name!r} does not list {spec.location!r} now")
        raise EngineError(why)
    with _LOCK:
        current = _ENGINE_BACKENDS.get(spec.key)
        if current is None or current.model != model:
            current = _ENGINE_BACKENDS[spec.key] = EngineBackend(spec, model)
        return current
