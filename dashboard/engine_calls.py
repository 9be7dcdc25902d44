"""The requests Tokenscope makes of an OpenAI-compatible engine: the top N after a text, a streamed completion with
the engine's sampler set like `generate`, a forced token's log-prob, and the engine's tokenizer. Each failure is
an EngineError in words (see engines.EngineClient.fail)."""

from __future__ import annotations

from typing import Iterator

from dashboard.engines import EngineError, EngineModel, client


def sampler_body(settings, model: EngineModel) -> dict:
    """The engine's own sampler set like transformers' `generate` for `settings`: every warper explicit (an engine's
    defaults, e.g. llama.cpp's top_k=40 and min_p=0.05, never sneak in), in generate's order where the engine
    lets us say so (llama.cpp's `samplers`)."""
    greedy = settings.greedy
    body = {
        "temperature": 0.0 if greedy else settings.temperature,
        "top_p": 1.0 if greedy else settings.top_p,
        "seed": int(settings.seed),
        "top_k": 0 if greedy else settings.top_k,
        "min_p": 0.0 if greedy else settings.min_p,
        "repetition_penalty": settings.repetition_penalty,  # vLLM, SGLang, TGI
    }
    if model.llama_cpp:
        body.update(repeat_penalty=settings.repetition_penalty, repeat_last_n=model.context, typical_p=1.0,
                    dry_multiplier=0.0, xtc_probability=0.0, top_n_sigma=-1.0,
                    samplers=["penalties", "temperature", "top_k", "top_p", "min_p"])
        del body["repetition_penalty"]
    return body


def token_id(entry: dict, model: EngineModel) -> int | None:
    """The token id of one log-prob entry: llama.cpp's `id`, or vLLM's "token_id:N" text."""
    if isinstance(entry.get("id"), int):
        return entry["id"]
    text = entry.get("token")
    if isinstance(text, str) and text.startswith("token_id:"):
        return int(text.split(":", 1)[1])
    return None


def entry_bytes(entry: dict) -> bytes | None:
    """The raw bytes of one log-prob entry's token, where the engine gives them."""
    raw = entry.get("bytes")
    if isinstance(raw, list) and all(isinstance(b, int) and 0 <= b < 256 for b in raw):
        return bytes(raw)
    return None


def top_logprobs(model: EngineModel, ids: list[int], n: int) -> list[tuple[int, float, bytes | None]]:
    """[(token id, log-prob, bytes)] of the top `n` next tokens after `ids`, most likely first: one completion of
    one token (greedy), asking for the log-probs of the top n."""
    c = client(model.engine)
    try:
        out = c.openai.completions.create(
            model=model.model_id, prompt=[list(ids)], max_tokens=1, logprobs=n, temperature=0.0,
            extra_body={"n_probs": n, "return_tokens_as_token_ids": True, "cache_prompt": True},
        ).to_dict()
        first = _stream_entries(out["choices"][0].get("logprobs") or {})[:1]  # the one generated token
        entries = (first[0].get("top_logprobs") or []) if first else []
        rows = []
        for e in entries:
            tid = token_id(e, model)
            if tid is None:
                raise ValueError("a log-prob entry without a token id")
            rows.append((tid, float(e["logprob"]), entry_bytes(e)))
        if not rows:
            raise ValueError("no log-probs in the answer")
    except EngineError:
        raise
    except Exception as exc:
        raise c.fail("the next-token distribution", exc) from None
    rows.sort(key=lambda r: -r[1])
    return rows[:n]


def _stream_entries(logprobs: dict) -> list[dict]:
    """An answer's (or a streamed chunk's) generated tokens as llama.cpp-shaped entries ({id or token, logprob, top_logprobs}), from either
    answer shape: llama.cpp's `content` list, or OpenAI's legacy parallel lists (vLLM: "token_id:N" tokens)."""
    if isinstance(logprobs.get("content"), list):
        return logprobs["content"]
    tokens = logprobs.get("tokens") or []
    lps = logprobs.get("token_logprobs") or []
    tops = logprobs.get("top_logprobs") or [None] * len(tokens)
    return [{"token": t, "logprob": lp, "top_logprobs": [{"token": k, "logprob": v} for k, v in (top or {}).items()]}
            for t, lp, top in zip(tokens, lps, tops)]


def prompt_logprobs(model: EngineModel, ids: list[int], n: int) -> list[tuple[float, list[tuple[int, float, None]]]]:
    """For each position j ≥ 1 of `ids`: (log-prob of ids[j] after ids[:j], its top n [(id, log-prob, None)]), from
    one request echoing the prompt with log-probs (OpenAI's `echo`, as vLLM gives it). EngineError with a
    `status` when the engine refuses echo (llama.cpp's server does)."""
    c = client(model.engine)
    try:
        out = c.openai.completions.create(
            model=model.model_id, prompt=[list(ids)], max_tokens=1, echo=True, logprobs=n, temperature=0.0,
            extra_body={"return_tokens_as_token_ids": True},
        ).to_dict()
        lp = out["choices"][0].get("logprobs") or {}
        if not isinstance(lp.get("tokens"), list):  # it answered, but without the prompt (llama.cpp ignores echo)
            refused = EngineError(f"engine {model.engine.name!r} does not echo prompt log-probs")
            refused.status = 200
            raise refused
        tokens, chosen, tops = lp["tokens"], lp["token_logprobs"], lp["top_logprobs"]
        if len(tokens) < len(ids) or any(token_id({"token": t}, model) != i for t, i in zip(tokens, ids)):
            raise ValueError("the echoed tokens are not the prompt's (no token ids)")
        rows = []
        for j in range(1, len(ids)):
            top = [(token_id({"token": k}, model), float(v), None) for k, v in (tops[j] or {}).items()]
            rows.append((float(chosen[j]), [t for t in top if t[0] is not None]))
        return rows
    except EngineError:
        raise
    except Exception as exc:
        raise c.fail("scoring the text", exc) from None


def stream_completion(model: EngineModel, ids: list[int], settings, max_tokens: int, n: int) -> Iterator[dict]:
    """The engine's streamed completion of `ids`, one dict per generated token: id, bytes, logprob and the top
    `n` [(id, logprob, bytes)] there; ends with {"finish_reason": …}. Closing it closes the connection, which
    stops the engine's work on it."""
    c = client(model.engine)
    try:
        stream = c.openai.completions.create(
            model=model.model_id, prompt=[list(ids)], max_tokens=max_tokens, stream=True, logprobs=n,
            extra_body={"n_probs": n, "return_tokens_as_token_ids": True, "cache_prompt": True,
                        **sampler_body(settings, model)},
        )
    except Exception as exc:
        raise c.fail("generation", exc) from None
    events = 0
    try:
        with stream:
            for chunk in stream:
                events += 1
                choice = chunk.to_dict()["choices"][0]
                for e in _stream_entries(choice.get("logprobs") or {}):
                    tid = token_id(e, model)
                    if tid is None:
                        raise ValueError("a streamed token without an id")
                    yield {"id": tid, "bytes": entry_bytes(e), "logprob": float(e["logprob"]),
                           "top": [(token_id(t, model), float(t["logprob"]), entry_bytes(t))
                                   for t in e.get("top_logprobs") or []]}
                if choice.get("finish_reason"):
                    yield {"finish_reason": choice["finish_reason"]}
                    return
    except (GeneratorExit, EngineError):
        raise
    except Exception as exc:
        raise c.fail("generation", exc) from None
    if not events:  # an answer, but not a stream of events
        raise c.fail("generation", ValueError("no events in the stream"))
    raise c.fail("generation", ConnectionError("the stream ended without a finish reason"))


def tokenize(model: EngineModel, text: str) -> tuple[list[int], list[bytes | None]]:
    """(token ids of `text`, no special tokens added; each token's bytes where the engine gives them, as
    llama.cpp does with `with_pieces`), from the engine's own tokenizer."""
    c = client(model.engine)
    try:
        out = c.post_json("/tokenize", {"content": text, "prompt": text, "model": model.model_id,
                                        "add_special": False, "add_special_tokens": False, "with_pieces": True})
        ids, pieces = [], []
        for t in out["tokens"]:
            if isinstance(t, dict):
                ids.append(int(t["id"]))
                piece = t.get("piece")
                pieces.append(piece.encode("utf-8") if isinstance(piece, str) else entry_bytes({"bytes": piece}))
            else:
                ids.append(int(t))
                pieces.append(None)
        return ids, pieces
    except Exception as exc:
        raise c.fail("tokenizing", exc) from None


def detokenize(model: EngineModel, ids: list[int]) -> str:
    """The text of `ids` from the engine's own tokenizer."""
    c = client(model.engine)
    try:
        out = c.post_json("/detokenize", {"tokens": [int(i) for i in ids], "model": model.model_id})
        text = out.get("content", out.get("prompt"))
        if not isinstance(text, str):
            raise ValueError("no text in the answer")
        return text
    except Exception as exc:
        raise c.fail("detokenizing", exc) from None


def forced_logprob(model: EngineModel, ids: list[int], token: int) -> float:
    """The log-prob of `token` after `ids` when it is outside the top N: a one-token completion that forces it
    (logit bias), whose reported log-prob is the raw one (the engine applies the bias in its sampler)."""
    c = client(model.engine)
    try:
        out = c.openai.completions.create(
            model=model.model_id, prompt=[list(ids)], max_tokens=1, logprobs=1, temperature=0.0,
            logit_bias={str(int(token)): 100}, extra_body={"n_probs": 1, "cache_prompt": True},
        ).to_dict()
        entry = out["choices"][0]["logprobs"]["content"][0]
        if token_id(entry, model) != int(token):
            raise ValueError("the engine did not take the forced token")
        return float(entry["logprob"])
    except Exception as exc:
        raise c.fail("scoring a token", exc) from None
