"""OpenAI-compatible inference engines (llama.cpp's server, vLLM, SGLang, TGI, Ollama): the operator's list in
$TOKENSCOPE_ENGINES, the models each one lists, and a client per engine whose API key never leaves it."""

from __future__ import annotations

import logging
import os
import re
import threading
import time
from dataclasses import dataclass
from typing import Any, Iterator

logger = logging.getLogger(__name__)

ENGINES_ENV = "TOKENSCOPE_ENGINES"  # name=base_url, comma-separated, e.g. class=http://10.0.0.5:8080/v1
KEYS_ENV = "TOKENSCOPE_ENGINE_KEYS"  # name=ENV_VAR, comma-separated: the variable that holds that engine's API key
TIMEOUT_ENV = "TOKENSCOPE_ENGINE_TIMEOUT_S"
TOP_N_ENV = "TOKENSCOPE_ENGINE_TOP_N"
DEFAULT_TIMEOUT_S = 5.0
DEFAULT_TOP_N = 20
LIST_TTL_S = 15.0  # a model listing is reused this long
DOWN_TTL_S = 2.0  # an engine that did not answer is asked again after this long (so a page recovers quickly)
_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{0,31}$")
_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,127}$")


class EngineError(RuntimeError):
    """An engine could not answer; the message is for users and never holds the API key."""


@dataclass(frozen=True)
class Engine:
    """One engine the operator named: where it is and which variable holds its key (never the key itself)."""

    name: str
    base_url: str  # ends in /v1
    key_env: str | None = None

    @property
    def root(self) -> str:
        """The server's root URL (llama.cpp's /tokenize, /detokenize and /props live there)."""
        return re.sub(r"/v1/?$", "", self.base_url)

    def api_key(self) -> str | None:
        """The API key from the operator's variable (read when needed, never stored or shown)."""
        return os.environ.get(self.key_env) if self.key_env else None


def parse_engines(value: str | None, keys_value: str | None = None) -> tuple[list[Engine], list[str]]:
    """(engines, problems) for $TOKENSCOPE_ENGINES ("name=base_url,…") and $TOKENSCOPE_ENGINE_KEYS
    ("name=ENV_VAR,…"); a malformed entry is skipped with a reason."""
    keys, problems = {}, []
    for raw in (keys_value or "").split(","):
        if raw.strip():
            name, _, env = raw.strip().partition("=")
            if _ENV_NAME.match(env.strip()):
                keys[name.strip().lower()] = env.strip()
            else:
                problems.append(f"{KEYS_ENV} entry for {name.strip()[:32]!r} does not name an environment variable")
    engines, seen = [], set()
    for raw in (value or "").split(","):
        raw = raw.strip()
        if not raw:
            continue
        name, sep, url = raw.partition("=")
        name, url = name.strip().lower(), url.strip().rstrip("/")
        if not sep or not _NAME.match(name):
            problems.append(f"{raw[:60]!r} in {ENGINES_ENV} is not name=base_url (name: letters, digits, - or _)")
            continue
        if not re.match(r"^https?://[^\s/?#]+(/[^\s?#]*)?$", url):
            problems.append(f"engine {name!r} in {ENGINES_ENV}: the base URL must be http(s)://host[:port]/v1")
            continue
        if name in seen:
            problems.append(f"engine {name!r} appears twice in {ENGINES_ENV}; the first is used")
            continue
        seen.add(name)
        engines.append(Engine(name, url if url.endswith("/v1") else url + "/v1", keys.get(name)))
    return engines, problems


def configured() -> tuple[list[Engine], list[str]]:
    """The engines this server is configured with, and problems with the configuration."""
    return parse_engines(os.environ.get(ENGINES_ENV), os.environ.get(KEYS_ENV))


def timeout_s() -> float:
    """Seconds an engine may take to answer (or, streaming, between two tokens) before the page says so."""
    try:
        return max(0.5, float(os.environ.get(TIMEOUT_ENV, DEFAULT_TIMEOUT_S)))
    except ValueError:
        return DEFAULT_TIMEOUT_S


def top_n() -> int:
    """How many top tokens an engine is asked for per position (engines cap it: vLLM at 20 by default)."""
    try:
        return max(1, min(100, int(os.environ.get(TOP_N_ENV, DEFAULT_TOP_N))))
    except ValueError:
        return DEFAULT_TOP_N


# --------------------------------------------------------------------------- one client per engine


def _redact(text: str, engine: Engine) -> str:
    """`text` with the engine's API key (if any) cut out, whatever put it there."""
    key = engine.api_key()
    return text.replace(key, "•••") if key and len(key) >= 4 else text


class EngineClient:
    """Talks to one engine: the `openai` client for /v1 (completions, streaming, models) and httpx for the
    server's own endpoints (/tokenize, /detokenize, /props). Every failure becomes an EngineError in words."""

    def __init__(self, engine: Engine):
        import httpx2
        import openai

        self.engine = engine
        t = timeout_s()
        timeout = httpx2.Timeout(t, connect=min(2.0, t))
        key = engine.api_key()
        # Idle connections are closed after 2 s: an engine's HTTP threads are few (llama.cpp: parallel + 2 by
        # default) and each kept-alive connection holds one until the server's own 5 s keep-alive runs out.
        limits = httpx2.Limits(max_connections=64, max_keepalive_connections=8, keepalive_expiry=2.0)
        self.openai = openai.OpenAI(base_url=engine.base_url, api_key=key or "none", timeout=timeout, max_retries=0,
                                    http_client=openai.DefaultHttpxClient(timeout=timeout, limits=limits))
        self.http = httpx2.Client(base_url=engine.root, timeout=timeout, limits=limits,
                                  headers={"Authorization": f"Bearer {key}"} if key else {})

    def fail(self, what: str, exc: BaseException) -> EngineError:
        """An EngineError saying what failed and why, in words (no key, no traceback)."""
        import httpx2
        import openai

        where = f"engine {self.engine.name!r}"
        if isinstance(exc, (openai.APITimeoutError, httpx2.TimeoutException)):
            why = f"it did not answer within {timeout_s():g} s"
        elif isinstance(exc, (openai.APIConnectionError, httpx2.TransportError)):
            cause = exc.__cause__ if isinstance(exc, openai.APIConnectionError) else exc
            why = ("it cannot be reached (is it running?)" if isinstance(cause, (httpx2.ConnectError, OSError))
                   else "the connection broke off before the answer was complete")
        elif isinstance(exc, openai.APIStatusError):
            why = f"it answered HTTP {exc.status_code}"
            detail = _error_detail(exc.body)
            if detail:
                why += f": {detail}"
        elif isinstance(exc, httpx2.HTTPStatusError):
            why = f"it answered HTTP {exc.response.status_code}"
        elif isinstance(exc, ConnectionError):
            why = "the stream broke off before the end"
        elif isinstance(exc, (ValueError, KeyError, TypeError, IndexError, AttributeError)):
            why = "its answer was not the JSON expected (malformed)"
        else:
            why = f"{exc.__class__.__name__}"
        message = _redact(f"{what} on {where} failed: {why}.", self.engine)
        logger.warning("%s", message)
        return EngineError(message)

    def get_json(self, path: str) -> Any:
        """GET a server endpoint's JSON."""
        response = self.http.get(path)
        response.raise_for_status()
        return response.json()

    def post_json(self, path: str, body: dict) -> Any:
        """POST JSON to a server endpoint, its JSON answer."""
        response = self.http.post(path, json=body)
        response.raise_for_status()
        return response.json()

    def close(self) -> None:
        """Close both HTTP connections pools."""
        self.openai.close()
        self.http.close()


def _error_detail(body: Any) -> str:
    """A short error text from an engine's error body (OpenAI's {"error": {"message": …}} and others)."""
    if isinstance(body, dict):
        inner = body.get("error", body)
        message = inner.get("message") if isinstance(inner, dict) else inner
        if isinstance(message, str):
            return message[:160]
    return ""


_CLIENTS: dict[str, EngineClient] = {}
_CLIENTS_LOCK = threading.Lock()


def client(engine: Engine) -> EngineClient:
    """The process's client for `engine` (connection pools are shared by every session)."""
    with _CLIENTS_LOCK:
        current = _CLIENTS.get(engine.name)
        if current is None or current.engine != engine:
            current = _CLIENTS[engine.name] = EngineClient(engine)
        return current


# --------------------------------------------------------------------------- what each engine serves


@dataclass(frozen=True)
class EngineModel:
    """One model an engine serves, with what the engine said about it."""

    engine: Engine
    model_id: str
    context: int  # tokens per request (llama.cpp: one slot's context)
    vocab_size: int | None
    llama_cpp: bool  # llama.cpp's server: /tokenize, /detokenize, n_probs, token ids in log-probs

    @property
    def key(self) -> str:
        """The registry key: engine name / model id."""
        return f"{self.engine.name}/{self.model_id}"


_LISTINGS: dict[str, tuple[float, list[EngineModel], str | None]] = {}
_LISTINGS_LOCK = threading.Lock()


def list_models(engine: Engine, refresh: bool = False) -> tuple[list[EngineModel], str | None]:
    """(models, problem): what `engine` lists at /v1/models, kept LIST_TTL_S; while it is down, the models it
    last listed (so open pages keep their choice) and the reason."""
    now = time.monotonic()
    with _LISTINGS_LOCK:
        cached = _LISTINGS.get(engine.name)
    if cached and not refresh and now - cached[0] < (LIST_TTL_S if cached[2] is None else DOWN_TTL_S):
        return cached[1], cached[2]
    c = client(engine)
    try:
        data = c.openai.models.list().to_dict().get("data") or []
        props = None
        try:
            props = c.get_json("/props")
        except Exception:  # not llama.cpp (or no /props): fine
            props = None
        models = [_engine_model(engine, m, props) for m in data if isinstance(m, dict) and m.get("id")]
        problem = None if models else f"engine {engine.name!r} lists no models"
    except Exception as exc:
        models, problem = (cached[1] if cached else []), str(c.fail("listing the models", exc))
    with _LISTINGS_LOCK:
        _LISTINGS[engine.name] = (time.monotonic(), models, problem)
    return models, problem


def _engine_model(engine: Engine, entry: dict, props: dict | None) -> EngineModel:
    """An EngineModel from a /v1/models entry (+ llama.cpp's /props)."""
    meta = entry.get("meta") if isinstance(entry.get("meta"), dict) else {}
    llama = entry.get("owned_by") == "llamacpp" or isinstance(props, dict) and "default_generation_settings" in props
    context = None
    if isinstance(props, dict):
        context = (props.get("default_generation_settings") or {}).get("n_ctx")
    context = context or entry.get("max_model_len") or meta.get("n_ctx") or meta.get("n_ctx_train") or 2048
    vocab = meta.get("n_vocab")
    return EngineModel(engine, str(entry["id"])[:128], int(context), int(vocab) if vocab else None, bool(llama))


def forget_listings() -> None:
    """Drop every cached listing and client (tests; an operator's reload)."""
    with _LISTINGS_LOCK:
        _LISTINGS.clear()
    with _CLIENTS_LOCK:
        for c in _CLIENTS.values():
            c.close()
        _CLIENTS.clear()


def all_models() -> tuple[list[EngineModel], list[str]]:
    """Every engine model (in the operator's order) and the problems: configuration, engines down."""
    engines, problems = configured()
    models = []
    for engine in engines:
        listed, problem = list_models(engine)
        models += listed
        if problem:
            problems.append(problem)
    return models, problems


def find(key: str) -> EngineModel | None:
    """The engine model registered under `key` ("engine/model"), or None."""
    name = key.split("/", 1)[0]
    for engine in configured()[0]:
        if engine.name == name:
            return next((m for m in list_models(engine)[0] if m.key == key), None)
    return None


# --------------------------------------------------------------------------- requests


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


def top_logprobs(model: EngineModel, ids: list[int], n: int) -> tuple[list[tuple[int, float, bytes | None]], dict]:
    """([(token id, log-prob, bytes)] of the top `n` next tokens after `ids`, most likely first; the raw
    answer): one completion of one token (greedy), asking for the log-probs of the top n."""
    c = client(model.engine)
    try:
        out = c.openai.completions.create(
            model=model.model_id, prompt=[list(ids)], max_tokens=1, logprobs=n, temperature=0.0,
            extra_body={"n_probs": n, "return_tokens_as_token_ids": True, "cache_prompt": True},
        ).to_dict()
        content = (out["choices"][0].get("logprobs") or {})
        entries = _top_entries(content)
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
    return rows[:n], out


def _top_entries(logprobs: dict) -> list[dict]:
    """The top log-prob entries of the first generated token, in either answer shape (llama.cpp's `content`
    list, or OpenAI's legacy `top_logprobs` dicts of token text → log-prob)."""
    if isinstance(logprobs.get("content"), list) and logprobs["content"]:
        return list(logprobs["content"][0].get("top_logprobs") or [])
    legacy = logprobs.get("top_logprobs")
    if isinstance(legacy, list) and legacy and isinstance(legacy[0], dict):
        return [{"token": k, "logprob": v} for k, v in legacy[0].items()]
    return []


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
                for e in (choice.get("logprobs") or {}).get("content") or []:
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
