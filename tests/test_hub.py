"""The Hub path through the stand-in (tests/hubstub.py) and the real huggingface_hub/transformers code:
downloads with progress, a verified local cache, faults with clear messages, pickle-only and oversized repos."""

import json
import subprocess
import sys
import textwrap
import time

import pytest

from dashboard import hub, models
from dashboard.loaded import LOADED

from conftest import ROOT, SEED_IDS, SEED_PROMPT, open_page, texts

GPT2_REPO = "openai-community/gpt2"
TIMEOUT_S = 2.0  # the stated Hub timeout in these tests (TOKENSCOPE_HUB_TIMEOUT_S)


@pytest.fixture(scope="session")
def repo_folders(tmp_path_factory):
    """Folders the stand-in serves: a tiny GPT-2 with GPT-2's vocabulary and 1,024 positions, a tiny Llama with
    its own tokenizer, a pickle-only repo."""
    from hubstub import make_bin_only, make_tiny_gpt2, make_tiny_llama

    root = tmp_path_factory.mktemp("repos")
    return {"gpt2": make_tiny_gpt2(root / "gpt2"), "llama": make_tiny_llama(root / "llama"),
            "bin": make_bin_only(root / "bin")}


@pytest.fixture
def online(hub_online, repo_folders, monkeypatch):
    """The stand-in Hub serving the three repos, a short stated timeout, an empty set of loaded models."""
    hub_online.add_repo(GPT2_REPO, repo_folders["gpt2"])
    hub_online.add_repo("tiny-org/tiny-llama", repo_folders["llama"])
    hub_online.add_repo("tiny-org/pickle-only", repo_folders["bin"])
    monkeypatch.setenv(hub.TIMEOUT_ENV, str(TIMEOUT_S))
    monkeypatch.setenv(models.MODELS_ENV, "tiny-org/tiny-llama,tiny-org/pickle-only")
    LOADED.clear()
    yield hub_online
    LOADED.clear()


def _gets(stub, suffix):
    return [p for m, p in stub.requests if m == "GET" and p.split("?")[0].endswith(suffix)]


def _blobs_intact(repo):
    """Every blob in the HF cache of `repo` has the content its name (its sha256 or git id) promises."""
    blobs = hub.cache_dir() / f"models--{repo.replace('/', '--')}" / "blobs"
    for blob in blobs.glob("*"):
        if blob.suffix in {".lock", ".incomplete"}:
            continue
        if len(blob.name) == 64:
            assert hub.file_sha256(blob) == blob.name, f"{blob} is damaged and still in the cache"
        elif len(blob.name) == 40:
            assert hub.git_blob_sha1(blob) == blob.name, f"{blob} is damaged and still in the cache"
    return True


def test_gpt2_downloads_once_with_progress_then_loads_from_the_cache(online):
    reports = []
    start = time.perf_counter()
    loaded = models.load_model("gpt2", progress=lambda text, fraction=None: reports.append((text, fraction)))
    seconds = time.perf_counter() - start
    print(f"tiny GPT-2 downloaded and loaded in {seconds:.2f} s: {loaded.how}")
    assert loaded.how.startswith("downloaded") and loaded.context_length == 1024
    assert loaded.tokenizer.encode(SEED_PROMPT) == SEED_IDS  # the offline GPT-2 vocabulary
    fractions = [f for _, f in reports if f is not None]
    assert fractions and fractions == sorted(fractions) and fractions[-1] > 0.9
    assert any("model.safetensors" in text for text, _ in reports)
    assert len(_gets(online, "model.safetensors")) == 1
    online.stop()  # a later load needs no Hub at all
    again = models.load_hub(models.get_spec("gpt2"))
    assert again.how == "local Hub cache"
    import torch

    ids = torch.tensor([SEED_IDS])
    torch.testing.assert_close(again.model(ids).logits, loaded.model(ids).logits, rtol=0, atol=0)


def test_a_second_process_loads_from_the_hf_cache_with_the_hub_stopped(online):
    models.load_model("gpt2")
    url = online.url
    online.stop()
    code = textwrap.dedent(
        """
        from dashboard import models
        loaded = models.load_model("gpt2")
        print(loaded.how)
        """
    )
    env = {"PATH": "/usr/bin:/bin", "HOME": "/tmp", "HF_ENDPOINT": url, "HF_HOME": str(hub.cache_dir().parent),
           "TOKENSCOPE_CACHE": str(hub.cache_dir().parent / "ts")}
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    assert out.stdout.strip().splitlines()[-1] == "local Hub cache"


def test_the_page_shows_download_progress_and_the_seed_distribution(online, monkeypatch):
    online.throttle_bps = 8_000_000  # ~6.5 MB of weights take most of a second
    at = open_page("pages/next-token.py", model="gpt2", prompt=SEED_PROMPT)
    assert [t.value for t in at.toast if "downloaded" in t.value], [t.value for t in at.toast]
    assert len(at.get("vega_lite_chart")) == 1  # the instrument: the distribution and the draw in one chart
    assert at.session_state["nt_path"].prompt_ids == SEED_IDS
    at.run()  # the sidebar, drawn before the page loaded the model, tells how it was had on the next run
    sidebar = " ".join(c.value for c in at.sidebar.caption)
    assert "In memory: downloaded" in sidebar


def test_an_operator_hub_model_brings_its_own_tokenizer(online, repo_folders):
    from transformers import AutoTokenizer

    at = open_page("pages/next-token.py", model="tiny-llama", prompt="hello world")
    assert not at.exception
    loaded = LOADED.peek("tiny-llama")
    assert loaded.spec.location == "tiny-org/tiny-llama"
    own = AutoTokenizer.from_pretrained(repo_folders["llama"])
    assert at.session_state["nt_path"].prompt_ids == own("hello world", add_special_tokens=False)["input_ids"]
    at = open_page("pages/tokenize.py", model="tiny-llama", prompt="hello world")
    assert at.dataframe[0].value["id"].tolist() == own("hello world", add_special_tokens=False)["input_ids"]


def test_a_pickle_only_repo_is_refused_and_nothing_is_downloaded(online):
    at = open_page("pages/next-token.py", model="pickle-only")
    assert "only pickle checkpoints (pytorch_model.bin)" in texts(at)
    assert not _gets(online, ".bin")


def test_a_model_over_the_memory_budget_is_refused_before_its_weights_move(online, monkeypatch):
    monkeypatch.setenv(hub.BUDGET_ENV, "1")
    at = open_page("pages/next-token.py", model="gpt2")
    assert "over this server's budget of 1 MB (TOKENSCOPE_MAX_MODEL_MB); nothing was downloaded" in texts(at)
    assert not _gets(online, ".safetensors")


FAULTS = [
    # (fault, what the page says, seconds allowed from the fault showing to the message)
    ("500", "the Hub answered HTTP 500", 5.0),
    ("hang", f"within {TIMEOUT_S:g} s", TIMEOUT_S + 3.0),
    ("drop", "broke off: no data for 3 s", 5.0),
    ("truncate", "does not match its sha256 (corrupt); the damaged copy was deleted", 5.0),
]


@pytest.mark.parametrize("fault, message, allowed", FAULTS, ids=[f[0] for f in FAULTS])
def test_hub_faults_give_a_clear_message_and_the_bundled_model_keeps_working(online, smollm, fault, message, allowed):
    online.fault = fault
    start = time.perf_counter()
    at = open_page("pages/next-token.py", model="gpt2", prompt=SEED_PROMPT)
    seconds = time.perf_counter() - start
    shown = texts(at)
    print(f"fault {fault}: message after {seconds:.2f} s: {[e.value for e in at.error]}")
    assert "GPT-2 (124M, Hugging Face Hub) is not available here" in shown and message in shown, shown
    assert seconds < allowed + 2.0  # page and model work included (the drop shows after ~half the file)
    assert LOADED.peek("gpt2") is None
    assert hub.cached_snapshot(GPT2_REPO) is None and _blobs_intact(GPT2_REPO)  # nothing half-written is kept

    # the bundled model keeps working in the same session
    at.sidebar.selectbox(key="model").select("smollm2-135m").run()
    assert not at.exception and len(at.get("vega_lite_chart")) == 1  # the instrument: distribution and draw

    # a retry after the fault clears succeeds
    online.fault = None
    at.sidebar.selectbox(key="model").select("gpt2").run()
    assert not at.exception, [e.value for e in at.exception]
    assert LOADED.peek("gpt2") is not None and len(at.get("vega_lite_chart")) == 1  # the instrument
    assert at.session_state["nt_path"].prompt_ids == SEED_IDS
    assert hub.cached_snapshot(GPT2_REPO) is not None and _blobs_intact(GPT2_REPO)


@pytest.mark.parametrize("config, mb", [
    ({"torch_dtype": "bfloat16"}, 200.0),  # half-precision files take twice their size once loaded in fp32
    ({"dtype": "float16"}, 200.0),
    ({"torch_dtype": "float32"}, 100.0),
    ({}, 100.0),
    (None, 100.0),  # an unreadable config: the files' own size
])
def test_the_memory_a_download_needs_counts_half_precision_weights_twice(tmp_path, config, mb):
    path = tmp_path / "config.json"
    path.write_text("{not json" if config is None else json.dumps(config))
    assert hub._fp32_mb(path, 100_000_000) == mb


# ------------------------------------------------------------------ mutation audit: budget, cache, probe, watchdog


def test_a_budget_that_is_not_positive_falls_back_to_the_default(monkeypatch):
    for value, expected in [("0", hub.DEFAULT_BUDGET_MB), ("-5", hub.DEFAULT_BUDGET_MB), ("x", hub.DEFAULT_BUDGET_MB),
                            ("250", 250.0), ("0.5", 0.5)]:
        monkeypatch.setenv(hub.BUDGET_ENV, value)
        assert hub.budget_mb() == expected, value


def test_a_model_exactly_at_the_budget_is_downloaded(online, repo_folders, monkeypatch):
    _, files, _ = hub.remote_files(GPT2_REPO, with_tokenizer=False)
    weight_bytes = sum(f.size for f in files if f.name.endswith(hub.WEIGHT_SUFFIX))
    need = hub._fp32_mb(repo_folders["gpt2"] / "config.json", weight_bytes)
    monkeypatch.setenv(hub.BUDGET_ENV, repr(need))
    assert hub.budget_mb() == need
    folder, how = hub.download(GPT2_REPO, False, lambda text, fraction=None: None)
    assert how.startswith("downloaded") and (folder / "model.safetensors").is_file()


def _downloaded(online):
    """The tiny GPT-2 downloaded through the stand-in, and its verified snapshot folder."""
    folder, _ = hub.download(GPT2_REPO, False, lambda text, fraction=None: None)
    assert hub.cached_snapshot(GPT2_REPO) == folder
    return folder


def test_a_cached_snapshot_missing_a_file_is_not_used(online):
    folder = _downloaded(online)
    (folder / "config.json").unlink()
    assert hub.cached_snapshot(GPT2_REPO) is None


def test_a_small_file_changed_in_place_fails_its_git_id(online):
    import os

    folder = _downloaded(online)
    path = (folder / "config.json").resolve()  # the blob the snapshot links to
    data = path.read_bytes()
    st = path.stat()
    path.write_bytes(data.replace(b'"', b"'", 1))  # same size, other content
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000_000))
    assert path.stat().st_size == st.st_size
    assert hub.cached_snapshot(GPT2_REPO) is None


def test_a_probe_answer_is_reused_for_its_memo_time_then_asked_again(hub_online, monkeypatch):
    assert hub.reachable() == (True, "reachable")
    hub_online.stop()
    assert hub.reachable() == (True, "reachable")  # within PROBE_MEMO_S: no new probe
    monkeypatch.setattr(hub, "PROBE_MEMO_S", 0.0)
    ok, reason = hub.reachable()
    assert not ok and "refused" in reason


def test_a_transfer_that_stops_is_given_up_after_the_stall_time_not_the_timeout(monkeypatch):
    monkeypatch.setenv(hub.TIMEOUT_ENV, "30")
    monkeypatch.setattr(hub, "STALL_S", 0.5)
    counter = hub._Counter()

    def job():
        counter.add(1 << 20)  # the body starts to flow…
        time.sleep(4)  # …then stops
        return hub.cache_dir()

    start = time.monotonic()
    with pytest.raises(hub.HubError, match="broke off: no data for 0.5 s"):
        hub._watch(job, counter, "model.safetensors")
    assert time.monotonic() - start < 2.5
