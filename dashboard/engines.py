"""OpenAI-compatible inference engines (llama.cpp's server, vLLM, SGLang, TGI, Ollama): the operator's list in
$TOKENSCOPE_ENGINES, the models each one lists, and a client per engine whose API key never leaves it."""

from __future__ import annotations

import logging
import os
import re
import threading
import time
from dataclasses import dataclass
from typing import Any

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
    """An engine could not answer; the message is for users and never holds the API key. `status`: the HTTP
    status when the engine answered with an error (it is up, but refused this request)."""

    status: int | None = None


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


DETAIL_CHARS = 160  # of an engine's own error text, shown


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
        # Idle connections are closed after 2 s: an engine's HTTP threads are few (llama.cpp: parallel + 4 by
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
            detail = _redact(_error_detail(exc.body), self.engine)[:DETAIL_CHARS]  # cut after the key is out
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
        error = EngineError(message)
        if isinstance(exc, openai.APIStatusError):
            error.status = exc.status_code
        return error

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
    """The error text from an engine's error body (OpenAI's {"error": {"message": …}} and others), or ""."""
    if isinstance(body, dict):
        inner = body.get("error", body)
        message = inner.get("message") if isinstance(inner, dict) else inner
        if isinstance(message, str):
            return message
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
