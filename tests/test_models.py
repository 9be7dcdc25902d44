"""Model registry, Hub probing and the safetensors weight cache (tiny models, no network)."""

import time

import pytest
import torch

from dashboard import hub, models
from dashboard.generation import next_token_logits


def test_registry_has_the_bundled_default_and_gpt2():
    specs = models.registry()
    assert models.DEFAULT_MODEL == "smollm2-135m"
    assert models.default_model() == "smollm2-135m"  # installed by make test
    assert specs["smollm2-135m"].source == "bundled"
    assert specs["gpt2"].source == "hub" and specs["gpt2"].tokenizer_offline
    assert specs["distilgpt2"].source == "hub"


def test_without_the_bundled_package_gpt2_is_the_default(monkeypatch):
    monkeypatch.setattr(models, "bundled_gguf_path", lambda: None)
    assert models.default_model() == "gpt2"
    with pytest.raises(models.ModelUnavailable, match="not installed"):
        models.load_model("smollm2-135m")


@pytest.mark.parametrize("key", ["", "gpt3", "/etc/passwd", "../models", "https://evil.example/model", "GPT2"])
def test_unregistered_keys_are_refused(key):
    with pytest.raises(ValueError, match="unknown model"):
        models.get_spec(key)


def test_local_folders_come_from_the_environment(monkeypatch, tmp_path):
    folder = tmp_path / "My Model"
    folder.mkdir()
    monkeypatch.setenv(models.LOCAL_MODELS_ENV, f"{folder}:{tmp_path / 'other'}")
    specs = models.registry()
    assert specs["local-my-model"].location == str(folder)
    assert specs["local-other"].source == "local"


def test_local_folder_without_safetensors_is_refused(monkeypatch, tmp_path):
    (tmp_path / "pytorch_model.bin").write_bytes(b"not loaded")
    monkeypatch.setenv(models.LOCAL_MODELS_ENV, str(tmp_path))
    key = [k for k in models.registry() if k.startswith("local-")][0]
    with pytest.raises(models.ModelUnavailable, match="safetensors"):
        models.load_model(key)


def test_offline_env_answers_without_probing(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    ok, reason = hub.reachable()
    assert not ok and "HF_HUB_OFFLINE" in reason


def test_probe_of_a_dead_endpoint_fails_fast(monkeypatch):
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    sock = __import__("socket").socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()  # nothing listens there now
    monkeypatch.setenv("HF_ENDPOINT", f"http://127.0.0.1:{port}")
    start = time.perf_counter()
    ok, reason = hub.reachable(timeout=1.0)
    assert not ok and "127.0.0.1" in reason
    assert time.perf_counter() - start < 2


@pytest.mark.parametrize("key", ["gpt2", "distilgpt2"])
def test_hub_model_unavailable_offline_within_5_seconds(key):
    start = time.perf_counter()
    with pytest.raises(models.ModelUnavailable, match="Its weights come from the Hugging Face Hub, and this server runs offline"):
        models.load_model(key)
    assert time.perf_counter() - start < 5


def test_a_hub_that_accepts_connections_and_never_answers_gives_a_message_within_5_seconds(silent_hub, monkeypatch):
    """The probe's TCP connect succeeds (the port listens), so only the request timeout can end the wait."""
    import threading

    from dashboard import hub

    monkeypatch.setenv(hub.TIMEOUT_ENV, "2")
    outcome: dict = {}

    def load():
        try:
            outcome["loaded"] = models.load_model("gpt2")
        except Exception as exc:  # handed to the test thread
            outcome["error"] = exc

    start = time.perf_counter()
    worker = threading.Thread(target=load, daemon=True)
    worker.start()
    worker.join(15)  # far past the limit, but never the whole test timeout if the app waits forever
    seconds = time.perf_counter() - start
    assert not worker.is_alive(), "loading gpt2 from a Hub that never answers was still waiting after 15 s"
    error = outcome.get("error")
    assert isinstance(error, models.ModelUnavailable), outcome
    print(f"silent Hub: {seconds:.2f} s to: {error}")
    assert "did not answer within 2 s" in str(error)
    assert seconds < 5
    assert silent_hub, "nothing connected to the silent Hub: the test did not exercise the timeout"


def test_gpt2_tokenizer_works_offline():
    tok = models.load_tokenizer("gpt2")
    assert tok.decode([8300]) == " programming"
    assert len(tok) == 50257


@pytest.fixture
def written_cache(tmp_path, tiny_llama, gpt2_tokenizer):
    folder = tmp_path / "cache"
    models.write_weight_cache(folder, tiny_llama, gpt2_tokenizer)
    assert models.cache_problem(folder) is None  # verified once: later checks trust untouched files
    assert (folder / ".verified").is_file()
    return folder


def test_weight_cache_round_trip_gives_identical_logits(written_cache, tiny_llama):
    assert models.cache_problem(written_cache) is None
    assert not list(written_cache.parent.glob("*.tmp-*"))  # the temporary folder was renamed away
    model, tok = models._load_folder(written_cache)
    ids = [1, 5, 9, 300]
    torch.testing.assert_close(next_token_logits(model, ids), next_token_logits(tiny_llama, ids), rtol=0, atol=1e-6)
    for name, tensor in tiny_llama.state_dict().items():
        assert torch.equal(model.state_dict()[name], tensor), name
    assert model.get_output_embeddings().weight.data_ptr() == model.get_input_embeddings().weight.data_ptr()
    assert tok.decode([8300]) == " programming"


def _truncate(path):
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


def _flip_byte(path):
    data = bytearray(path.read_bytes())
    data[len(data) - 100] ^= 0xFF
    path.write_bytes(bytes(data))  # same size, new mtime: hashed again


@pytest.mark.parametrize(
    "damage, expected",
    [
        (lambda f: _truncate(f / "model.safetensors"), "truncated"),
        (lambda f: _flip_byte(f / "model.safetensors"), "corrupt"),
        (lambda f: (f / "manifest.json").unlink(), "no manifest"),
        (lambda f: (f / "manifest.json").write_text("{not json"), "unreadable"),
        (lambda f: (f / "config.json").unlink(), "missing"),
    ],
)
def test_damaged_cache_is_detected(written_cache, damage, expected):
    damage(written_cache)
    assert expected in models.cache_problem(written_cache)


def test_fast_weight_cache_model_equals_from_pretrained(written_cache):
    fast = models._prepare(models._cache_model(written_cache))  # the fast path itself (no fallback)
    slow, _ = models._load_folder(written_cache)
    assert type(fast) is type(slow)
    assert fast.state_dict().keys() == slow.state_dict().keys()
    for name, tensor in slow.state_dict().items():
        assert torch.equal(fast.state_dict()[name], tensor), name
    for (name, a), (_, b) in zip(fast.named_buffers(), slow.named_buffers()):
        assert torch.equal(a, b), name  # the rotary frequencies, computed rather than loaded
    assert not any(t.is_meta for t in [*fast.parameters(), *fast.buffers()])
    assert fast.get_output_embeddings().weight is fast.get_input_embeddings().weight
    assert fast.config.to_dict() == slow.config.to_dict()
    assert fast.generation_config.to_dict() == slow.generation_config.to_dict()
    assert not fast.training and not any(p.requires_grad for p in fast.parameters())
    ids = [1, 5, 9, 300]
    assert torch.equal(next_token_logits(fast, ids), next_token_logits(slow, ids))


TEXTS = ["Udacity is the best place to learn about generative", "", " ", "a\nb\r\nc\td", "  two  spaces  ",
         "Ünïcödé façade", "日本語のテキスト", "emoji 🔭🎲 👩‍👩‍👧", "<|im_start|>user\nhi<|im_end|>", "<|endoftext|>",
         "def f(x):\n    return x ** 2", "1234567890 3.14159", "\u200b\ufeff", "A" * 300]


def test_fast_weight_cache_tokenizer_equals_autotokenizer(smollm):
    from transformers import AutoTokenizer

    folder = models.bundled_cache_dir(models.bundled_gguf_path())
    fast = models._cache_tokenizer(folder)
    ref = AutoTokenizer.from_pretrained(folder, local_files_only=True)
    for text in TEXTS:
        for kwargs in ({}, {"add_special_tokens": False}):
            assert fast(text, **kwargs)["input_ids"] == ref(text, **kwargs)["input_ids"], text
        ids = ref(text, add_special_tokens=False)["input_ids"]
        for skip in (False, True):
            assert fast.decode(ids, skip_special_tokens=skip) == ref.decode(ids, skip_special_tokens=skip), text
        assert fast.convert_ids_to_tokens(ids) == ref.convert_ids_to_tokens(ids)
    for ids in ([0, 1, 2, 17, 3, 260], list(range(0, 49152, 997))):
        for skip in (False, True):
            assert fast.decode(ids, skip_special_tokens=skip) == ref.decode(ids, skip_special_tokens=skip)
    for attr in ("bos_token_id", "eos_token_id", "pad_token_id", "unk_token_id", "all_special_ids",
                 "model_max_length", "padding_side", "chat_template"):
        assert getattr(fast, attr) == getattr(ref, attr), attr
    assert len(fast) == len(ref) and fast.get_vocab() == ref.get_vocab()


def test_a_tokenizer_config_the_fast_path_does_not_know_goes_to_autotokenizer(written_cache):
    tok = models._cache_tokenizer(written_cache)  # tokenizer_class GPT2Tokenizer: AutoTokenizer's job
    assert type(tok).__name__ == "GPT2Tokenizer"
    assert tok.decode([8300]) == " programming"


def test_the_bundled_tokenizer_alone_equals_the_models_and_is_cached(smollm, monkeypatch, tmp_path):
    """Tokenize needs no weights: the bundled tokenizer read from the GGUF alone (then from its own cache) tokenizes
    exactly like the loaded model's; a damaged tokenizer cache is read from the GGUF again and rewritten."""
    from dashboard import weights

    monkeypatch.setenv(models.CACHE_ENV, str(tmp_path))  # no weight cache here: the GGUF is read
    gguf = models.bundled_gguf_path()
    seen = []
    first = models.bundled_tokenizer(gguf, progress=lambda text, fraction=None: seen.append(text))
    assert seen and "tokenizer" in seen[0]  # it said what it was doing
    folder = weights.tokenizer_cache_dir(gguf)
    assert weights.tokenizer_cache_problem(folder) is None
    seen.clear()
    second = models.bundled_tokenizer(gguf, progress=lambda text, fraction=None: seen.append(text))
    assert seen == []  # from the tokenizer cache, without reading the GGUF
    for tok in (first, second):
        for text in TEXTS:
            ids = smollm.tokenizer(text, add_special_tokens=False)["input_ids"]
            assert tok(text, add_special_tokens=False)["input_ids"] == ids, text
            assert tok.decode(ids) == smollm.tokenizer.decode(ids)
    (folder / "tokenizer.json").write_text("{}")  # damaged
    assert weights.tokenizer_cache_problem(folder) is not None
    third = models.bundled_tokenizer(gguf, progress=lambda text, fraction=None: seen.append(text))
    assert seen and weights.tokenizer_cache_problem(folder) is None
    assert third("Udacity is", add_special_tokens=False)["input_ids"] == smollm.tokenizer("Udacity is", add_special_tokens=False)["input_ids"]
