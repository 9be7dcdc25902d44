"""Models an operator chooses (TOKENSCOPE_MODELS) and the bounded set of loaded models (TOKENSCOPE_MAX_LOADED)."""

import subprocess
import sys
import textwrap

import pytest

from dashboard import models
from dashboard.loaded import LOADED, LoadedModels, MAX_LOADED_ENV

from conftest import ROOT


def test_operator_list_registers_hub_repos_and_folders(monkeypatch, tmp_path):
    folder = tmp_path / "My Model"
    folder.mkdir()
    monkeypatch.setenv(models.MODELS_ENV, f"HuggingFaceTB/SmolLM2-360M-Instruct, Qwen/Qwen2.5-0.5B,{folder},"
                                          "openai-community/gpt2,other-org/gpt2")
    specs = models.registry()
    smol = specs["smollm2-360m-instruct"]
    assert smol.source == "hub" and smol.location == "HuggingFaceTB/SmolLM2-360M-Instruct"
    assert not smol.tokenizer_offline  # its own tokenizer files come with the repo
    assert specs["qwen2.5-0.5b"].location == "Qwen/Qwen2.5-0.5B"
    assert specs["local-my-model"].location == str(folder)
    # a name already taken gets its org as a prefix; GPT-2's family keeps the offline vocabulary
    assert specs["openai-community-gpt2"].tokenizer_offline
    assert specs["other-org-gpt2"].location == "other-org/gpt2" and not specs["other-org-gpt2"].tokenizer_offline
    assert models.registry_problems() == []


@pytest.mark.parametrize("entry", ["https://evil.example/model", "not a repo", "org/../../etc", "a/b/c", "javascript:x"])
def test_operator_list_skips_what_is_neither_repo_nor_folder(monkeypatch, entry):
    monkeypatch.setenv(models.MODELS_ENV, entry)
    before = set(models.registry())
    assert set(models.registry()) == {s.key for s in models._builtin_specs()} == before
    assert "neither a Hub repo id" in models.registry_problems()[0]


def test_a_link_still_selects_only_registered_keys(monkeypatch):
    monkeypatch.setenv(models.MODELS_ENV, "Qwen/Qwen2.5-0.5B")
    assert models.get_spec("qwen2.5-0.5b").source == "hub"
    for raw in ("Qwen/Qwen2.5-0.5B", "Qwen/Other", "/tmp", "../x"):
        with pytest.raises(ValueError, match="unknown model"):
            models.get_spec(raw)


def test_loaded_models_evict_the_least_recently_used(monkeypatch):
    monkeypatch.setenv(MAX_LOADED_ENV, "2")
    cache = LoadedModels()
    made = []

    def maker(name):
        def make():
            made.append(name)
            return models.LoadedModel(models.get_spec("gpt2"), object(), None, 0.0, name)
        return make

    cache.get("a", make=maker("a"))
    cache.get("b", make=maker("b"))
    cache.get("a")  # a is now the most recently used
    cache.get("c", make=maker("c"))
    assert cache.keys() == ["a", "c"] and cache.evicted == ["b"]
    cache.get("a")
    assert made == ["a", "b", "c"]  # a was never loaded twice


def test_three_models_in_turn_keep_memory_bounded(tmp_path):
    """Three ~130 MB models loaded in turn with TOKENSCOPE_MAX_LOADED=2 in a fresh process: the first is
    evicted and freed, and the resident memory grows by about two models, not three."""
    from hubstub import make_tiny_gpt2

    folders = [make_tiny_gpt2(tmp_path / f"m{i}", n_embd=512, n_layer=2, n_head=8) for i in range(3)]
    code = textwrap.dedent(
        """
        import gc, json, os, sys, weakref
        import torch
        from dashboard import models
        from dashboard.loaded import LOADED

        def rss_mb():
            return int([l.split()[1] for l in open("/proc/self/status") if l.startswith("VmRSS")][0]) / 1024

        keys = [k for k in models.registry() if k.startswith("local-m")]
        out = {"keys": keys, "rss": [rss_mb()]}
        refs = []
        for key in keys:
            loaded = LOADED.get(key)
            loaded.model(torch.tensor([[1, 2, 3]]))  # touches every weight (the tied head reads all rows)
            refs.append(weakref.ref(loaded.model))
            del loaded
            gc.collect()
            out["rss"].append(rss_mb())
        out["loaded"] = LOADED.keys()
        out["evicted"] = LOADED.evicted
        out["alive"] = [r() is not None for r in refs]
        print(json.dumps(out))
        """
    )
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "HF_HUB_OFFLINE": "1", "TOKENSCOPE_MAX_LOADED": "2",
           "TOKENSCOPE_MODELS": ",".join(str(f) for f in folders), "TOKENSCOPE_CACHE": str(tmp_path / "cache")}
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    import json

    result = json.loads(out.stdout.strip().splitlines()[-1])
    base, one, two, three = result["rss"]
    model_mb = (folders[0] / "model.safetensors").stat().st_size / 1e6
    print(f"model {model_mb:.0f} MB; RSS start {base:.0f}, after 1 {one:.0f}, 2 {two:.0f}, 3 {three:.0f} MB")
    assert result["loaded"] == result["keys"][1:] and result["evicted"] == result["keys"][:1]
    assert result["alive"] == [False, True, True]  # the evicted model was freed
    assert three - two < 0.5 * model_mb, (two, three, model_mb)  # a third model did not add a third copy
    assert two - one > 0.5 * model_mb  # sanity: a second model does take memory
