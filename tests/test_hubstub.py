"""The stand-in Hub (tests/hubstub.py) against the real huggingface_hub and transformers: what they ask for is
answered as the Hub would, and every fault shows up the way it does against a real, failing Hub."""

from __future__ import annotations

import hashlib
import socket
import threading
import time
from pathlib import Path

import pytest

from hubstub import StubHub, make_bin_only, make_tiny_gpt2, make_tiny_llama

GPT2 = "openai-community/gpt2"
LLAMA = "tokenscope-tests/tiny-llama"
BIN_ONLY = "tokenscope-tests/bin-only"


@pytest.fixture(scope="module")
def folders(tmp_path_factory):
    """{"gpt2", "llama", "bin"}: the three builders' folders, made once for this file."""
    root = tmp_path_factory.mktemp("repos")
    return {
        "gpt2": make_tiny_gpt2(root / "gpt2"),
        "llama": make_tiny_llama(root / "llama"),
        "bin": make_bin_only(root / "bin"),
    }


@pytest.fixture
def hub(hub_online, folders):
    """The online stand-in serving the tiny GPT-2 as openai-community/gpt2, the tiny Llama and the pickle-only repo."""
    hub_online.add_repo(GPT2, folders["gpt2"])
    hub_online.add_repo(LLAMA, folders["llama"])
    hub_online.add_repo(BIN_ONLY, folders["bin"])
    return hub_online


def _sha256(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def _download(hub: StubHub, repo: str, filename: str, cache: Path, **kwargs) -> Path:
    from huggingface_hub import hf_hub_download

    return Path(hf_hub_download(repo, filename, endpoint=hub.url, cache_dir=str(cache), **kwargs))


# ------------------------------------------------------------------------------------------- plain service


def test_builders_are_deterministic_and_bin_only_has_no_safetensors(folders, tmp_path):
    again = make_tiny_llama(tmp_path / "llama")
    assert StubHub().add_repo(LLAMA, again) == StubHub().add_repo(LLAMA, folders["llama"])
    assert sorted(p.name for p in folders["bin"].iterdir()) == ["config.json", "pytorch_model.bin"]
    assert {"model.safetensors", "config.json", "tokenizer.json"} <= {p.name for p in folders["gpt2"].iterdir()}


def test_hf_hub_download_returns_the_folders_bytes(hub, folders, tmp_path):
    for name in ("config.json", "model.safetensors"):
        path = _download(hub, GPT2, name, tmp_path / "cache")
        assert path.read_bytes() == (folders["gpt2"] / name).read_bytes()
        assert path.parent.name == hub.sha(GPT2)  # snapshots/<commit sha>/<name>
    blob = (tmp_path / "cache" / "models--openai-community--gpt2" / "snapshots" / hub.sha(GPT2) / "model.safetensors")
    assert blob.resolve().name == _sha256(folders["gpt2"] / "model.safetensors")  # the ETag names the blob
    assert ("HEAD", f"/{GPT2}/resolve/main/model.safetensors") in hub.requests


def test_model_info_lists_sizes_and_checksums(hub, folders):
    from huggingface_hub import HfApi

    info = HfApi(endpoint=hub.url).model_info(GPT2, files_metadata=True)
    assert info.id == GPT2 and info.sha == hub.sha(GPT2) and len(info.sha) == 40
    assert info.private is False and info.gated is False
    files = {s.rfilename: s for s in info.siblings}
    assert set(files) == {p.name for p in folders["gpt2"].iterdir()}
    for name, sibling in files.items():
        assert sibling.size == (folders["gpt2"] / name).stat().st_size
    weights = files["model.safetensors"]
    assert weights.lfs.sha256 == _sha256(folders["gpt2"] / "model.safetensors")
    assert weights.lfs.size == weights.size
    config = (folders["gpt2"] / "config.json").read_bytes()
    assert files["config.json"].lfs is None
    assert files["config.json"].blob_id == hashlib.sha1(b"blob %d\0" % len(config) + config).hexdigest()
    assert info.safetensors.total > 50257 * 32  # parameter count read from the safetensors header
    assert HfApi(endpoint=hub.url).model_info(GPT2, revision=info.sha).sha == info.sha

    pickled = HfApi(endpoint=hub.url).model_info(BIN_ONLY, files_metadata=True)
    assert {s.rfilename: s.lfs is not None for s in pickled.siblings} == {"config.json": False,
                                                                           "pytorch_model.bin": True}
    assert pickled.safetensors is None


def test_transformers_downloads_through_the_stand_in(hub, folders):
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    remote = AutoModelForCausalLM.from_pretrained(GPT2).eval()
    local = AutoModelForCausalLM.from_pretrained(folders["gpt2"]).eval()
    ids = torch.tensor([[52, 67, 4355, 318, 262, 1266]])
    with torch.no_grad():
        assert torch.equal(remote(ids).logits, local(ids).logits)
    assert any(m == "GET" and p.endswith("/model.safetensors") for m, p in hub.requests)

    tokenizer = AutoTokenizer.from_pretrained(LLAMA)
    text = "Udacity is the best place to learn about generative models."
    assert tokenizer(text)["input_ids"] == AutoTokenizer.from_pretrained(folders["llama"])(text)["input_ids"]
    assert any("/tree/" in p for _, p in hub.requests)  # transformers lists the repo (chat templates, files)


def test_snapshot_download_uses_the_tree_listing(hub, folders):
    from huggingface_hub import snapshot_download

    folder = Path(snapshot_download(LLAMA))
    assert sorted(p.name for p in folder.iterdir()) == sorted(p.name for p in folders["llama"].iterdir())
    assert all((folder / p.name).read_bytes() == p.read_bytes() for p in folders["llama"].iterdir())


def test_missing_file_unknown_repo_and_unknown_revision(hub, tmp_path):
    from huggingface_hub import HfApi
    from huggingface_hub.errors import (EntryNotFoundError, RemoteEntryNotFoundError, RepositoryNotFoundError,
                                        RevisionNotFoundError)

    with pytest.raises(RemoteEntryNotFoundError) as caught:  # the Hub said so (not: "not in the local cache")
        _download(hub, GPT2, "no-such-file.json", tmp_path)
    assert isinstance(caught.value, EntryNotFoundError)
    with pytest.raises(RepositoryNotFoundError):
        _download(hub, "nobody/nothing", "config.json", tmp_path)
    with pytest.raises(RepositoryNotFoundError):
        HfApi(endpoint=hub.url).model_info("nobody/nothing")
    with pytest.raises(RevisionNotFoundError):
        HfApi(endpoint=hub.url).model_info(GPT2, revision="v9")


def test_stop_refuses_connections_and_start_comes_back_on_the_same_port():
    hub = StubHub().start()
    port = hub.port
    socket.create_connection(("127.0.0.1", port), timeout=1).close()
    hub.stop()
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", port), timeout=1)
    hub.start()
    try:
        assert hub.port == port
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
    finally:
        hub.stop()


# ------------------------------------------------------------------------------------------- faults


def test_fault_500_fails_model_info_and_clears(hub):
    from huggingface_hub import HfApi
    from huggingface_hub.errors import HfHubHTTPError

    hub.fault = "500"
    with pytest.raises(HfHubHTTPError) as caught:
        HfApi(endpoint=hub.url).model_info(GPT2, files_metadata=True)
    assert caught.value.response.status_code == 500
    hub.fault = None
    assert HfApi(endpoint=hub.url).model_info(GPT2).sha == hub.sha(GPT2)


def test_fault_hang_times_out_and_does_not_hold_up_stop(hub):
    import httpx2
    from huggingface_hub import HfApi

    api = HfApi(endpoint=hub.url)
    hub.fault = "hang"
    start = time.monotonic()
    with pytest.raises(httpx2.TimeoutException):
        api.model_info(GPT2, timeout=1)
    assert time.monotonic() - start < 2.0

    answers: list = []  # a hanging request is answered once the fault is cleared
    waiter = threading.Thread(target=lambda: answers.append(api.model_info(GPT2, timeout=10).sha))
    waiter.start()
    time.sleep(0.3)
    assert waiter.is_alive()
    hub.fault = None
    waiter.join(5)
    assert answers == [hub.sha(GPT2)]

    hub.fault = "hang"
    errors: list = []

    def hang():
        try:
            api.model_info(GPT2, timeout=30)
        except Exception as exc:
            errors.append(exc)

    hanging = threading.Thread(target=hang)
    hanging.start()
    time.sleep(0.3)
    start = time.monotonic()
    hub.stop()
    assert time.monotonic() - start < 1.5
    hanging.join(5)
    assert not hanging.is_alive() and len(errors) == 1  # the client sees the connection end, not a 30 s wait
    assert not [t for t in threading.enumerate() if t.name.startswith(f"hubstub-{hub.port}-")]  # no handler left


@pytest.mark.parametrize("chunk", [None, 1 << 20], ids=["default-chunks", "app-1MiB-chunks"])
def test_fault_drop_raises_and_leaves_no_blob(hub, folders, tmp_path, monkeypatch, caplog, chunk):
    """With 10 MiB chunks (the default) the 6.7 MB file restarts from 0 on every retry; with 1 MiB chunks (what
    the app sets) huggingface_hub resumes with a Range header. Either way the drop ends in an exception."""
    from huggingface_hub import constants

    # the library's default unless the case sets one (the app sets 1 MiB for the whole process once it downloads)
    monkeypatch.setattr(constants, "DOWNLOAD_CHUNK_SIZE", chunk or 10 * 1024 * 1024)
    hub.fault = "drop"
    cache = tmp_path / "cache"
    assert _download(hub, GPT2, "config.json", cache).read_bytes() == (folders["gpt2"] / "config.json").read_bytes()
    start = time.monotonic()
    with caplog.at_level("DEBUG", logger="hubstub"), pytest.raises(Exception) as caught:
        _download(hub, GPT2, "model.safetensors", cache)
    seconds = time.monotonic() - start
    print(f"persistent drop ({chunk or 'default'} chunks): hf_hub_download raised {caught.type.__name__} "
          f"after {seconds:.1f} s")
    assert seconds < 15
    gets = [p for m, p in hub.requests if m == "GET" and p.endswith("/model.safetensors")]
    assert len(gets) > 1  # huggingface_hub retried before giving up
    resumed = any("Range: bytes=" in r.getMessage() for r in caplog.records)
    assert resumed == bool(chunk)
    blobs = cache / "models--openai-community--gpt2" / "blobs"
    assert not (blobs / _sha256(folders["gpt2"] / "model.safetensors")).exists()
    assert not list(blobs.glob("*.incomplete"))


def test_range_requests_get_206(hub, folders):
    import httpx2

    data = (folders["gpt2"] / "model.safetensors").read_bytes()
    url = f"{hub.url}/{GPT2}/resolve/{hub.sha(GPT2)}/model.safetensors"
    r = httpx2.get(url, headers={"Range": "bytes=1000-"})
    assert r.status_code == 206 and r.content == data[1000:]
    assert r.headers["Content-Range"] == f"bytes 1000-{len(data) - 1}/{len(data)}"
    assert r.headers["X-Linked-Size"] == str(len(data)) and r.headers["ETag"] == f'"{hashlib.sha256(data).hexdigest()}"'
    assert httpx2.get(url, headers={"Range": f"bytes={len(data)}-"}).status_code == 416


def test_fault_truncate_is_detectable_by_checksum(hub, folders, tmp_path):
    from huggingface_hub import HfApi

    hub.fault = "truncate"
    full = folders["gpt2"] / "model.safetensors"
    info = HfApi(endpoint=hub.url).model_info(GPT2, files_metadata=True)
    weights = next(s for s in info.siblings if s.rfilename == "model.safetensors")
    assert weights.size == full.stat().st_size // 2 and weights.lfs.sha256 == _sha256(full)
    path = _download(hub, GPT2, "model.safetensors", tmp_path / "cache")  # sizes agree, so this succeeds
    assert path.read_bytes() == full.read_bytes()[: full.stat().st_size // 2]
    blob = path.resolve()
    assert blob.name == _sha256(full)  # the blob is named after the ETag ...
    assert _sha256(blob) != blob.name  # ... which its content does not match: the corruption is detectable


def test_throttle_slows_the_body(hub_online, tmp_path):
    folder = tmp_path / "big"
    folder.mkdir()
    (folder / "big.safetensors").write_bytes(bytes(range(256)) * 4096)  # 1 MiB
    hub_online.add_repo("tokenscope-tests/big", folder)
    hub_online.throttle_bps = 2_000_000
    start = time.monotonic()
    path = _download(hub_online, "tokenscope-tests/big", "big.safetensors", tmp_path / "cache")
    seconds = time.monotonic() - start
    assert path.stat().st_size == 1 << 20
    assert 0.4 <= seconds < 5, seconds
