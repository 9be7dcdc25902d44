"""The Hugging Face Hub (or the mirror in HF_ENDPOINT): reachability, a budget check before any weights move,
downloads with progress and a stall watchdog, and checksums so a damaged file is never loaded."""

from __future__ import annotations

import hashlib
import json
import logging
import os
import socket
import threading
import time
import urllib.parse
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

logger = logging.getLogger(__name__)

TIMEOUT_ENV = "TOKENSCOPE_HUB_TIMEOUT_S"  # seconds to wait for the Hub to answer a request
BUDGET_ENV = "TOKENSCOPE_MAX_MODEL_MB"  # largest model (fp32 in memory) a download may bring
DEFAULT_TIMEOUT_S = 10.0
DEFAULT_BUDGET_MB = 1000  # two such models plus Streamlit fit Community Cloud's 2.7 GB
STALL_S = 3.0  # once a file's bytes flow, this long without a new byte means the transfer broke
CHUNK_BYTES = 1 << 20  # progress (and the stall watchdog) see the transfer in 1 MiB steps
PROBE_TIMEOUT_S = 2.5
PROBE_MEMO_S = 60.0  # a probe's answer is reused this long, so reruns never wait on the network again
_PROBES: dict[tuple[str, int], tuple[float, tuple[bool, str]]] = {}

WEIGHT_SUFFIX = ".safetensors"
PICKLE_SUFFIXES = (".bin", ".pt", ".pth", ".ckpt", ".pkl")  # never downloaded, never loaded
MODEL_FILES = ("config.json", "generation_config.json", "model.safetensors.index.json")
TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "vocab.json",
                   "merges.txt", "tokenizer.model", "added_tokens.json", "chat_template.jinja")

Progress = Callable[..., None]  # progress(text, fraction=None)


class HubError(RuntimeError):
    """The Hub could not give us a model (the message says why, for users)."""


def endpoint() -> str:
    """The Hub endpoint this process uses: HF_ENDPOINT (a mirror, or a stand-in in the tests) or huggingface.co."""
    return os.environ.get("HF_ENDPOINT", "https://huggingface.co").rstrip("/")


def timeout_s() -> float:
    """Seconds to wait for one answer from the Hub ($TOKENSCOPE_HUB_TIMEOUT_S, default 10)."""
    try:
        value = float(os.environ.get(TIMEOUT_ENV, DEFAULT_TIMEOUT_S))
    except ValueError:
        return DEFAULT_TIMEOUT_S
    return value if 0.1 <= value <= 600 else DEFAULT_TIMEOUT_S


def budget_mb() -> float:
    """Largest model, in MB of fp32 weights, that may be downloaded ($TOKENSCOPE_MAX_MODEL_MB, default 1000)."""
    try:
        value = float(os.environ.get(BUDGET_ENV, DEFAULT_BUDGET_MB))
    except ValueError:
        return DEFAULT_BUDGET_MB
    return value if value > 0 else DEFAULT_BUDGET_MB


def cache_dir() -> Path:
    """The Hugging Face cache folder, read now (not at import) from HF_HUB_CACHE / HF_HOME."""
    if os.environ.get("HF_HUB_CACHE"):
        return Path(os.environ["HF_HUB_CACHE"]).expanduser()
    home = os.environ.get("HF_HOME") or Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "huggingface"
    return Path(home).expanduser() / "hub"


def offline_reason() -> str | None:
    """Why this process must not use the network for the Hub (an offline variable is set), or None."""
    for var in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE"):
        if os.environ.get(var, "").strip().lower() in {"1", "true", "yes", "on"}:
            return f"this server runs offline ({var} is set)"
    return None


def reachable(timeout: float = PROBE_TIMEOUT_S) -> tuple[bool, str]:
    """(reachable, reason) from a short TCP probe of the endpoint; offline variables answer without the network."""
    reason = offline_reason()
    if reason:
        return False, reason
    url = urllib.parse.urlparse(endpoint())
    host, port = url.hostname or "", url.port or (443 if url.scheme == "https" else 80)
    memo = _PROBES.get((host, port))
    if memo and time.monotonic() - memo[0] < PROBE_MEMO_S:
        return memo[1]
    start = time.perf_counter()
    try:
        with socket.create_connection((host, port), timeout=timeout):
            pass
        answer = (True, "reachable")
        logger.info("Hub %s reachable in %.2f s", host, time.perf_counter() - start)
    except OSError as exc:
        answer = (False, _in_words(exc, host, timeout))
    _PROBES[(host, port)] = (time.monotonic(), answer)
    return answer


def _in_words(exc: OSError, host: str, timeout: float) -> str:
    """Why a connection to the Hub failed, in words (the exception's type name means nothing to a learner)."""
    if isinstance(exc, socket.gaierror):
        return f"this server cannot look up {host}: it has no network, or no name service"
    if isinstance(exc, ConnectionRefusedError):
        return f"{host} refused the connection"
    if isinstance(exc, (TimeoutError, socket.timeout)):
        return f"{host} did not answer within {timeout:g} s"
    return f"{host} could not be reached within {timeout:g} s ({exc.strerror or exc.__class__.__name__})"


# --------------------------------------------------------------------------- checksums


def file_sha256(path: Path) -> str:
    """Hex sha256 of a file, read in 4 MiB blocks."""
    digest = hashlib.sha256()
    with path.open("rb") as f:
        while block := f.read(4 << 20):
            digest.update(block)
    return digest.hexdigest()


def git_blob_sha1(path: Path) -> str:
    """Git's object id of a file (sha1 of "blob <size>\\0" + content): the Hub's id of a small file."""
    data = path.read_bytes()
    return hashlib.sha1(b"blob %d\x00" % len(data) + data).hexdigest()


@dataclass(frozen=True)
class RemoteFile:
    """One file of a Hub repo as its metadata describes it."""

    name: str
    size: int
    sha256: str | None  # LFS files (weights)
    blob_id: str | None  # git object id (small files)

    def problem(self, path: Path) -> str | None:
        """Why the local copy at `path` is not this file (missing, wrong size, wrong checksum), or None."""
        if not path.is_file():
            return f"{self.name} is missing"
        size = path.stat().st_size
        if size != self.size:
            return f"{self.name} has {size:,} bytes, expected {self.size:,}"
        if self.sha256 and file_sha256(path) != self.sha256:
            return f"{self.name} does not match its sha256 (corrupt)"
        if not self.sha256 and self.blob_id and git_blob_sha1(path) != self.blob_id:
            return f"{self.name} does not match its git id (corrupt)"
        return None


def _manifest_path(repo: str, sha: str) -> Path:
    """Where Tokenscope records the verified files of one repo revision (next to the HF cache's own folders)."""
    return cache_dir() / f"models--{repo.replace('/', '--')}" / "tokenscope" / f"{sha}.json"


def _snapshot(repo: str, sha: str) -> Path:
    """The HF cache's snapshot folder of `repo` at commit `sha`."""
    return cache_dir() / f"models--{repo.replace('/', '--')}" / "snapshots" / sha


def _stamp(path: Path) -> str:
    """A cheap identity of a file version (inode, mtime, size): a file rewritten since is checked again."""
    st = path.resolve().stat()
    return f"{st.st_ino}:{st.st_mtime_ns}:{st.st_size}"


def cached_snapshot(repo: str) -> Path | None:
    """The verified local snapshot of `repo` (no network), or None when there is none or it is damaged.

    A file is hashed fully once per version; later starts compare the stamp, so a 500 MB model costs no hashing."""
    ref = cache_dir() / f"models--{repo.replace('/', '--')}" / "refs" / "main"
    try:
        sha = ref.read_text().strip()
        manifest = json.loads(_manifest_path(repo, sha).read_text())
    except (OSError, ValueError):
        return None
    folder = _snapshot(repo, sha)
    stamps = manifest.get("stamps", {})
    for meta in manifest.get("files", []):
        remote = RemoteFile(**meta)
        path = folder / remote.name
        if not path.is_file():
            return None
        if stamps.get(remote.name) == _stamp(path):
            continue
        problem = remote.problem(path)
        if problem:
            logger.warning("cached %s unusable: %s", repo, problem)
            return None
        stamps[remote.name] = _stamp(path)
    manifest["stamps"] = stamps
    try:
        _manifest_path(repo, sha).write_text(json.dumps(manifest, indent=1))
    except OSError:  # a read-only cache still works; it is hashed every time
        pass
    return folder


# --------------------------------------------------------------------------- downloads


class _Counter:
    """Bytes received so far, shared between the download thread and the thread that reports progress."""

    def __init__(self):
        self.bytes = 0
        self.changed = time.monotonic()
        self.flowing = False  # the current file's body has started

    def add(self, n: int) -> None:
        self.bytes += n
        self.changed = time.monotonic()
        self.flowing = True


def _tqdm_class(counter: _Counter):
    """A tqdm that counts bytes into `counter` and prints nothing (huggingface_hub's progress hook)."""
    from tqdm.auto import tqdm

    class Counting(tqdm):
        def __init__(self, *args, **kwargs):
            kwargs["disable"] = True
            super().__init__(*args, **kwargs)

        def update(self, n=1):
            if n and n > 0:
                counter.add(int(n))
            return super().update(n)

    return Counting


def _fetch(repo: str, remote: RemoteFile, sha: str, counter: _Counter) -> Path:
    """Download one file into the HF cache through huggingface_hub (runs in a worker thread)."""
    from huggingface_hub import constants, hf_hub_download

    constants.DOWNLOAD_CHUNK_SIZE = CHUNK_BYTES  # progress and the watchdog see 1 MiB steps, not 10 MiB ones
    return Path(hf_hub_download(
        repo, remote.name, revision=sha, endpoint=endpoint(), cache_dir=str(cache_dir()),
        etag_timeout=timeout_s(), tqdm_class=_tqdm_class(counter),
    ))


def _watch(job: Callable[[], Path], counter: _Counter, what: str, report: Callable[[], None] | None = None) -> Path:
    """Run `job` in a worker thread and wait for it here, calling `report` (from this thread, where Streamlit
    may draw) after every step of bytes; give up when the Hub stops answering.

    Waiting for a first byte may take the stated timeout; once bytes flow, STALL_S without a new one ends it.
    huggingface_hub itself retries a broken transfer for seconds and a 5xx for longer: the page does not wait.
    A given-up worker ends on its own after those retries, and huggingface_hub removes its temporary file."""
    result: dict = {}

    def run():
        try:
            result["path"] = job()
        except BaseException as exc:  # handed to the waiting thread
            result["error"] = exc

    worker = threading.Thread(target=run, name=f"tokenscope-download-{what}", daemon=True)
    counter.flowing, counter.changed = False, time.monotonic()
    shown = counter.bytes
    worker.start()
    while worker.is_alive():
        worker.join(0.1)
        if report is not None and counter.bytes != shown:
            shown = counter.bytes
            report()
        idle = time.monotonic() - counter.changed
        limit = STALL_S if counter.flowing else timeout_s() + 1.0
        if worker.is_alive() and idle > limit:
            if counter.flowing:
                raise HubError(f"the transfer of {what} broke off: no data for {STALL_S:g} s")
            raise HubError(f"the Hub did not answer for {what} within {timeout_s():g} s")
    if "error" in result:
        exc = result["error"]
        if isinstance(exc, HubError):
            raise exc
        raise HubError(f"{what} could not be downloaded: {_describe(exc)}") from exc
    return result["path"]


def _describe(exc: Exception) -> str:
    """A short, user-facing reason for a failed Hub request (no traceback, no secrets)."""
    from huggingface_hub import errors

    if isinstance(exc, errors.RepositoryNotFoundError):
        return "the repository does not exist on the Hub (or is private)"
    if isinstance(exc, errors.EntryNotFoundError):
        return "a file is missing from the repository"
    status = getattr(getattr(exc, "response", None), "status_code", None)
    if status:
        return f"the Hub answered HTTP {status}"
    name = exc.__class__.__name__
    if "Timeout" in name:
        return f"the Hub did not answer within {timeout_s():g} s"
    return f"{name}: {str(exc).splitlines()[0][:200] if str(exc) else 'no details'}"


def remote_files(repo: str, with_tokenizer: bool) -> tuple[str, list[RemoteFile], list[str]]:
    """(commit sha, the files Tokenscope needs from `repo`, every file name) from the Hub's metadata."""
    from huggingface_hub import HfApi

    try:
        info = HfApi(endpoint=endpoint()).model_info(repo, files_metadata=True, timeout=timeout_s())
    except Exception as exc:
        raise HubError(f"its metadata could not be read: {_describe(exc)}") from exc
    wanted = set(MODEL_FILES) | (set(TOKENIZER_FILES) if with_tokenizer else set())
    files, names = [], []
    for s in info.siblings or []:
        names.append(s.rfilename)
        top_level = "/" not in s.rfilename
        if top_level and (s.rfilename in wanted or s.rfilename.endswith(WEIGHT_SUFFIX)):
            lfs = s.lfs
            files.append(RemoteFile(s.rfilename, int(s.size if s.size is not None else (lfs.size if lfs else 0)),
                                    lfs.sha256 if lfs else None, s.blob_id))
    return info.sha, files, names


def _fp32_mb(config_path: Path, weight_bytes: int) -> float:
    """MB the weights take once loaded in fp32 (half-precision files double)."""
    try:
        config = json.loads(config_path.read_text())
    except (OSError, ValueError):
        config = {}
    dtype = str(config.get("dtype") or config.get("torch_dtype") or "float32")
    factor = 2.0 if dtype in {"bfloat16", "float16"} else 1.0
    return weight_bytes * factor / 1e6


def download(repo: str, with_tokenizer: bool, progress: Progress) -> tuple[Path, str]:
    """(verified snapshot folder, how it went) for `repo`, downloaded now with progress reports.

    Refuses before any weights move when the repo has only pickle checkpoints or is over the memory budget.
    Every file is checked against the Hub's sha256 / git id; a damaged one is deleted and HubError raised."""
    start = time.perf_counter()
    progress(f"Reading {repo}'s file list from {endpoint()}…")
    sha, files, names = remote_files(repo, with_tokenizer)
    weights = [f for f in files if f.name.endswith(WEIGHT_SUFFIX)]
    if not weights:
        pickles = [n for n in names if n.endswith(PICKLE_SUFFIXES)]
        if pickles:
            raise HubError(f"it has only pickle checkpoints ({', '.join(pickles[:3])}), which Tokenscope never "
                           "loads (they can run code); it needs *.safetensors weights")
        raise HubError("it has no *.safetensors weights")
    if not any(f.name == "config.json" for f in files):
        raise HubError("it has no config.json")
    counter = _Counter()
    paths: dict[str, Path] = {}
    config = next(f for f in files if f.name == "config.json")
    paths["config.json"] = _watch(lambda: _fetch(repo, config, sha, counter), counter, "config.json")
    weight_bytes = sum(f.size for f in weights)
    need = _fp32_mb(paths["config.json"], weight_bytes)
    if need > budget_mb():
        raise HubError(f"it needs about {need:,.0f} MB of memory in fp32 ({weight_bytes / 1e6:,.0f} MB of weights), "
                       f"over this server's budget of {budget_mb():,.0f} MB ({BUDGET_ENV}); nothing was downloaded")
    total = sum(f.size for f in files)
    done = 0
    for remote in sorted(files, key=lambda f: (f.name.endswith(WEIGHT_SUFFIX), f.name)):
        if remote.name not in paths:
            base = counter.bytes

            def report(remote=remote, base=base):
                got = done + counter.bytes - base
                progress(f"Downloading {repo}: {remote.name} ({got / 1e6:,.1f} of {total / 1e6:,.1f} MB)",
                         min(1.0, got / max(total, 1)))

            report()
            paths[remote.name] = _watch(lambda r=remote: _fetch(repo, r, sha, counter), counter, remote.name, report)
        done += remote.size
        problem = remote.problem(paths[remote.name])
        if problem:
            _discard(paths[remote.name])
            raise HubError(f"{problem}; the damaged copy was deleted, so a retry downloads it again")
    folder = _snapshot(repo, sha)
    manifest = {"repo": repo, "sha": sha, "files": [f.__dict__ for f in files],
                "stamps": {f.name: _stamp(folder / f.name) for f in files}}
    path = _manifest_path(repo, sha)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(manifest, indent=1))
    os.replace(tmp, path)
    ref = cache_dir() / f"models--{repo.replace('/', '--')}" / "refs" / "main"  # files were fetched by commit sha,
    ref.parent.mkdir(parents=True, exist_ok=True)  # so point main at it, as a download of "main" would have
    ref.write_text(sha)
    seconds = time.perf_counter() - start
    logger.info("downloaded %s (%.1f MB) in %.2f s", repo, total / 1e6, seconds)
    return folder, f"downloaded {total / 1e6:,.1f} MB from {endpoint()} in {seconds:.1f} s"


def _discard(path: Path) -> None:
    """Delete a damaged cached file: the snapshot's link and the blob it points to."""
    try:
        blob = path.resolve()
        path.unlink(missing_ok=True)
        if blob != path:
            blob.unlink(missing_ok=True)
    except OSError as exc:
        logger.warning("could not delete damaged %s: %s", path, exc)
