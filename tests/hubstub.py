"""A stand-in Hugging Face Hub on 127.0.0.1 for the tests, spoken to by the real huggingface_hub and transformers.

It serves local folders as model repos, with the endpoints huggingface_hub 2.4 calls (checked in its source):

    GET  /api/models/{org}/{name}[/revision/{rev}][?blobs=True&expand=...]   HfApi.model_info / repo_info
    GET  /api/models/{org}/{name}/tree/{rev}[/{path}][?recursive=..&expand=..]  HfApi.list_repo_tree / list_repo_files
                                                            (snapshot_download; transformers' tokenizer loading)
    HEAD /{org}/{name}/resolve/{rev}/{path}                  hf_hub_download's metadata call (get_hf_file_metadata)
    GET  /{org}/{name}/resolve/{rev}/{path}                  hf_hub_download's body (http_get), with Range on resume
    GET  /api/agent-harnesses                                once per process, for the user-agent (3 s timeout)

and faults a real deployment meets: the Hub failing (500), hanging, dropping a transfer half-way, or a mirror
serving a truncated file under the full file's checksum. Folder builders make small deterministic repos.

    hub = StubHub().start()
    hub.add_repo("openai-community/gpt2", make_tiny_gpt2(tmp_path / "gpt2"))
    ... HF_ENDPOINT=hub.url ...
    hub.stop()
"""

from __future__ import annotations

import contextlib
import fnmatch
import hashlib
import json
import logging
import re
import socket
import struct
import threading
import time
import urllib.parse
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

logger = logging.getLogger("hubstub")

FAULTS = (None, "500", "hang", "drop", "truncate")
LFS_SUFFIXES = (".safetensors", ".bin", ".gguf", ".pt")
LAST_MODIFIED = "2024-01-01T00:00:00.000Z"  # fixed, so every answer is deterministic

# ---------------------------------------------------------------------------------------------------- repos


@dataclass(frozen=True)
class _File:
    """One repo file as the Hub describes it."""

    path: str
    data: bytes
    sha256: str  # of the content: the ETag and lfs oid of an LFS file
    git_sha1: str  # git blob id of the content: the ETag of a small file

    @property
    def is_lfs(self) -> bool:
        return self.path.endswith(LFS_SUFFIXES)


def _git_blob_sha1(data: bytes) -> str:
    """Git's object id of `data` (sha1 of "blob <size>\\0" + data), as the Hub reports for small files."""
    return hashlib.sha1(b"blob %d\x00" % len(data) + data).hexdigest()


def _lfs_pointer(sha256: str, size: int) -> bytes:
    """The git-lfs pointer file that stands in git for an LFS file (its blob id is the Hub's `blobId`)."""
    return f"version https://git-lfs.github.com/spec/v1\noid sha256:{sha256}\nsize {size}\n".encode()


def _safetensors_params(data: bytes) -> dict[str, int]:
    """Parameter count per dtype from a safetensors header ({} when `data` is not a safetensors file)."""
    counts: dict[str, int] = {}
    try:
        (length,) = struct.unpack("<Q", data[:8])
        for name, tensor in json.loads(data[8 : 8 + length]).items():
            if name != "__metadata__":
                n = 1
                for dim in tensor["shape"]:
                    n *= dim
                counts[tensor["dtype"]] = counts.get(tensor["dtype"], 0) + n
    except (struct.error, ValueError, TypeError, KeyError, AttributeError):
        return {}
    return counts


class _Repo:
    """A folder's files held in memory, at a commit sha derived from their names and contents."""

    def __init__(self, repo_id: str, folder: Path):
        self.repo_id = repo_id
        self.files: dict[str, _File] = {}
        for path in sorted(p for p in Path(folder).rglob("*") if p.is_file()):
            name = path.relative_to(folder).as_posix()
            data = path.read_bytes()
            self.files[name] = _File(name, data, hashlib.sha256(data).hexdigest(), _git_blob_sha1(data))
        digest = hashlib.sha1()
        for name, f in sorted(self.files.items()):
            digest.update(f"{name}\0{f.sha256}\n".encode())
        self.sha = digest.hexdigest()

    def config(self) -> dict:
        """config.json's architectures / model_type (what the Hub shows as `config`), or {}."""
        f = self.files.get("config.json")
        try:
            config = json.loads(f.data) if f else {}
        except ValueError:
            return {}
        return {k: config[k] for k in ("architectures", "model_type") if k in config}


# ---------------------------------------------------------------------------------------------------- server


class _Server(ThreadingHTTPServer):
    """ThreadingHTTPServer that knows its open connections and handler threads, so stop() can end them all."""

    daemon_threads = True
    block_on_close = False  # StubHub.stop() closes connections itself and then joins with a deadline

    def __init__(self, hub: "StubHub", port: int):
        self.hub = hub
        self.connections: set[socket.socket] = set()
        self.threads: set[threading.Thread] = set()
        self.lock = threading.Lock()
        super().__init__(("127.0.0.1", port), _Handler)

    def process_request(self, request, client_address):
        with self.lock:
            self.connections.add(request)
        super().process_request(request, client_address)

    def process_request_thread(self, request, client_address):
        threading.current_thread().name = f"hubstub-{self.server_address[1]}-connection"
        with self.lock:
            self.threads.add(threading.current_thread())
        try:
            super().process_request_thread(request, client_address)
        finally:
            with self.lock:
                self.threads.discard(threading.current_thread())

    def shutdown_request(self, request):
        with self.lock:
            self.connections.discard(request)
        super().shutdown_request(request)

    def handle_error(self, request, client_address):
        logger.debug("connection from %s ended with an error", client_address, exc_info=True)


_API = re.compile(r"^/api/models/([^/]+)/([^/]+)(?:/revision/([^/]+))?/?$")
_TREE = re.compile(r"^/api/models/([^/]+)/([^/]+)/tree/([^/]+)(?:/(.*))?$")
_RESOLVE = re.compile(r"^/([^/]+)/([^/]+)/resolve/([^/]+)/(.+)$")


class _Dropped(Exception):
    """The handler closed the connection on purpose (fault "drop", or the hub stopping)."""


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as huggingface_hub's httpx client expects from the Hub
    server: _Server

    def log_message(self, format, *args):
        logger.debug("%s " + format, self.client_address[0], *args)

    def do_GET(self):
        self._handle(body=True)

    def do_HEAD(self):
        self._handle(body=False)

    # ----------------------------------------------------------------------------------------- dispatch

    def _handle(self, body: bool) -> None:
        hub = self.server.hub
        hub._record(self.command, self.path)
        try:
            if hub.fault == "hang" and not self._hang():
                raise _Dropped
            if hub.fault == "500":
                return self._json(500, {"error": "Internal Error - We're working hard to fix this as soon as possible!"},
                                  body)
            path = urllib.parse.urlsplit(self.path).path
            if path == "/api/agent-harnesses":  # fetched once per process by huggingface_hub's user-agent code
                return self._json(200, {"standardEnvVars": [], "harnesses": {}}, body)
            if m := _TREE.match(path):
                return self._tree(*m.groups(), body=body, query=urllib.parse.urlsplit(self.path).query)
            if m := _API.match(path):
                return self._info(*m.groups(), body=body)
            if m := _RESOLVE.match(path):
                return self._resolve(*m.groups(), body=body)
            return self._json(404, {"error": "Sorry, we can't find the page you are looking for."}, body)
        except _Dropped:
            self.close_connection = True
        except (BrokenPipeError, ConnectionResetError) as exc:  # the client went away mid-answer
            logger.debug("client dropped %s %s: %s", self.command, self.path, exc)
            self.close_connection = True

    def _hang(self) -> bool:
        """Wait while the fault is "hang": True when it was cleared (answer normally), False when the hub stops."""
        hub = self.server.hub
        while hub.fault == "hang":
            if hub._stopping.wait(0.05):
                return False
        return True

    def _lookup(self, org: str, name: str, rev: str | None, body: bool) -> _Repo | None:
        """The repo at `rev` (None = main), or None after answering 404 the way the Hub does."""
        hub = self.server.hub
        repo = hub._repos.get(f"{urllib.parse.unquote(org)}/{urllib.parse.unquote(name)}")
        if repo is None:
            self._json(404, {"error": "Repository not found"}, body,
                       {"X-Error-Code": "RepoNotFound", "X-Error-Message": "Repository not found"})
            return None
        rev = urllib.parse.unquote(rev or "main")
        if rev not in ("main", repo.sha):
            self._json(404, {"error": f"Invalid rev id: {rev}"}, body,
                       {"X-Error-Code": "RevisionNotFound", "X-Error-Message": f"Invalid rev id: {rev}"})
            return None
        return repo

    # ----------------------------------------------------------------------------------------- api

    def _info(self, org: str, name: str, rev: str | None, body: bool) -> None:
        """model_info: the repo's metadata with every file's size, blob id and (LFS files) sha256."""
        repo = self._lookup(org, name, rev, body)
        if repo is None:
            return
        hub = self.server.hub
        siblings, params = [], {}
        for f in repo.files.values():
            size = len(hub._served_bytes(f))
            entry = {"rfilename": f.path, "size": size, "blobId": f.git_sha1}
            if f.is_lfs:
                pointer = _lfs_pointer(f.sha256, size)
                entry["blobId"] = _git_blob_sha1(pointer)
                entry["lfs"] = {"sha256": f.sha256, "size": size, "pointerSize": len(pointer)}
            siblings.append(entry)
            if f.path.endswith(".safetensors"):
                for dtype, n in _safetensors_params(f.data).items():
                    params[dtype] = params.get(dtype, 0) + n
        config = repo.config()
        info = {
            "_id": repo.sha[:24], "id": repo.repo_id, "modelId": repo.repo_id, "author": repo.repo_id.split("/")[0],
            "sha": repo.sha, "lastModified": LAST_MODIFIED, "createdAt": LAST_MODIFIED,
            "private": False, "disabled": False, "gated": False, "downloads": 0, "likes": 0,
            "library_name": "transformers", "pipeline_tag": "text-generation",
            "tags": ["transformers", *(["safetensors"] if params else []), *([config["model_type"]] if "model_type"
                     in config else []), "text-generation"],
            "config": config, "siblings": siblings,
        }
        if params:
            info["safetensors"] = {"parameters": params, "total": sum(params.values())}
        self._json(200, info, body)

    def _tree(self, org: str, name: str, rev: str, folder: str | None, body: bool, query: str) -> None:
        """list_repo_tree: files (and folders) under `folder`, recursively when ?recursive=True; one page."""
        repo = self._lookup(org, name, rev, body)
        if repo is None:
            return
        hub = self.server.hub
        prefix = urllib.parse.unquote(folder).strip("/") + "/" if folder else ""
        recursive = urllib.parse.parse_qs(query).get("recursive", ["false"])[0].lower() == "true"
        entries, folders = [], set()
        for f in repo.files.values():
            if not f.path.startswith(prefix):
                continue
            rest = f.path[len(prefix) :].split("/")
            for depth in range(1, len(rest)):  # the folders between `folder` and the file
                if depth == 1 or recursive:
                    folders.add(prefix + "/".join(rest[:depth]))
            if len(rest) > 1 and not recursive:
                continue
            size = len(hub._served_bytes(f))
            entry = {"type": "file", "oid": f.git_sha1, "size": size, "path": f.path}
            if f.is_lfs:
                pointer = _lfs_pointer(f.sha256, size)
                entry["oid"] = _git_blob_sha1(pointer)
                entry["lfs"] = {"oid": f.sha256, "size": size, "pointerSize": len(pointer)}
            entries.append(entry)
        if not entries and not folders:
            if prefix:
                self._json(404, {"error": f"{prefix.rstrip('/')} does not exist on \"{rev}\""}, body,
                           {"X-Error-Code": "EntryNotFound", "X-Repo-Commit": repo.sha})
                return
        entries += [{"type": "directory", "oid": hashlib.sha1(d.encode()).hexdigest(), "size": 0, "path": d}
                    for d in sorted(folders)]
        self._json(200, sorted(entries, key=lambda e: e["path"]), body)

    # ----------------------------------------------------------------------------------------- files

    def _resolve(self, org: str, name: str, rev: str, path: str, body: bool) -> None:
        """A file's bytes (GET, honouring Range) or only its headers (HEAD), with the Hub's ETag headers."""
        repo = self._lookup(org, name, rev, body)
        if repo is None:
            return
        hub = self.server.hub
        f = repo.files.get(urllib.parse.unquote(path))
        if f is None:
            self._json(404, {"error": "Entry not found"}, body,
                       {"X-Error-Code": "EntryNotFound", "X-Error-Message": "Entry not found", "X-Repo-Commit": repo.sha})
            return
        data = hub._served_bytes(f)
        size = len(data)
        start = _range_start(self.headers.get("Range"))
        if self.headers.get("Range"):
            logger.debug("%s %s Range: %s", self.command, f.path, self.headers["Range"])
        if start == 0 and size == 0:
            start = None  # nothing to range over: the whole (empty) file
        if start is not None and start >= size:
            return self._json(416, {"error": "Requested range not satisfiable"}, body, {"Content-Range": f"bytes */{size}"})
        etag = f'"{f.sha256 if f.is_lfs else f.git_sha1}"'
        headers = {"ETag": etag, "X-Repo-Commit": repo.sha, "Accept-Ranges": "bytes",
                   "Content-Type": "application/octet-stream" if f.is_lfs else "text/plain; charset=utf-8"}
        if f.is_lfs:  # the real Hub redirects LFS files to its CDN and names the target here
            headers.update({"X-Linked-Etag": etag, "X-Linked-Size": str(size)})
        status, first = (200, 0) if start is None else (206, start)
        if status == 206:
            headers["Content-Range"] = f"bytes {first}-{size - 1}/{size}"
        headers["Content-Length"] = str(size - first)
        self._start(status, headers)
        if not body:
            return
        if hub.fault == "drop" and hub._matches(f.path):
            # Send the file up to its middle, whatever the Range start, then end the connection mid-body (a FIN:
            # httpx raises RemoteProtocolError). huggingface_hub's http_get then sleeps 1 s and GETs again, 5 times,
            # the counter reset only by a whole DOWNLOAD_CHUNK_SIZE chunk received (10 MiB by default: a smaller file
            # restarts from 0 each time; with smaller chunks it resumes with "Range: bytes=<chunks done>-"). No retry
            # passes the middle, so a persistent drop always ends: RemoteProtocolError after 6 GETs, ~5 s (measured
            # 5.0-5.2 s here, for a 6.7 MB file).
            self._send_body(data[first : max(first, size // 2)])
            self.connection.shutdown(socket.SHUT_WR)
            raise _Dropped
        self._send_body(data[first:])

    # ----------------------------------------------------------------------------------------- writing

    def _start(self, status: int, headers: dict[str, str]) -> None:
        self.send_response(status)
        for key, value in headers.items():
            self.send_header(key, value)
        self.end_headers()

    def _json(self, status: int, payload, body: bool, extra: dict[str, str] | None = None) -> None:
        data = json.dumps(payload).encode()
        self._start(status, {"Content-Type": "application/json; charset=utf-8", "Content-Length": str(len(data)),
                             **(extra or {})})
        if body:
            self.wfile.write(data)

    def _send_body(self, data: bytes) -> None:
        """Write `data`, at hub.throttle_bps bytes per second when set; stops when the hub stops."""
        hub = self.server.hub
        sent, began = 0, time.monotonic()
        while sent < len(data):
            bps = hub.throttle_bps
            step = len(data) - sent if not bps else max(1, bps // 20)
            self.wfile.write(data[sent : sent + step])
            sent += step
            if bps:
                ahead = sent / bps - (time.monotonic() - began)
                if ahead > 0 and hub._stopping.wait(ahead):
                    raise _Dropped
            elif hub._stopping.is_set():
                raise _Dropped


def _range_start(header: str | None) -> int | None:
    """N from a "bytes=N-" (or "bytes=N-M": the end is ignored, the rest of the file is sent) Range header."""
    m = re.fullmatch(r"\s*bytes=(\d+)-\d*\s*", header or "")
    return int(m.group(1)) if m else None


class StubHub:
    """A Hugging Face Hub stand-in on 127.0.0.1 (see the module docstring for endpoints and faults).

    Attributes settable at any time (they apply from the next request, or the next body chunk for throttle_bps):
        fault: None | "500" | "hang" | "drop" | "truncate"
        fault_pattern: fnmatch pattern of repo file paths the file-level faults ("drop", "truncate") apply to
        throttle_bps: bytes per second for file bodies, or None for full speed
    Read-only: url, port, requests (every (method, raw path with query) received, in order).
    """

    def __init__(self, port: int = 0):
        self._port = port
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self._stopping = threading.Event()
        self._repos: dict[str, _Repo] = {}
        self._lock = threading.Lock()
        self.requests: list[tuple[str, str]] = []
        self._fault: str | None = None
        self.fault_pattern = "*.safetensors"
        self.throttle_bps: int | None = None

    # ----------------------------------------------------------------------------------------- lifecycle

    def start(self) -> "StubHub":
        """Listen and serve from a daemon thread; returns self. After stop(), start() listens on the same port
        again (the Hub coming back)."""
        self._stopping.clear()
        self._server = _Server(self, self._port)
        self._port = self._server.server_address[1]  # kept after stop(): url stays valid, a restart reuses it
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05},
                                        name=f"hubstub-{self.port}", daemon=True)
        self._thread.start()
        logger.info("stub hub listening on %s", self.url)
        return self

    def stop(self) -> None:
        """Close the listening socket and every open connection (hanging ones too); returns within ~1 s."""
        server = self._server
        if server is None:
            return
        self._stopping.set()
        server.shutdown()  # serve_forever returns: nothing new is accepted
        server.server_close()  # the port now refuses connections
        with server.lock:
            connections, threads = list(server.connections), list(server.threads)
        for conn in connections:
            try:
                conn.shutdown(socket.SHUT_RDWR)  # wakes a handler blocked reading the next keep-alive request
            except OSError:
                pass
        deadline = time.monotonic() + 1.0
        for thread in threads:
            thread.join(max(0.0, deadline - time.monotonic()))
        self._thread.join(1.0)
        self._server = None
        logger.info("stub hub on port %s stopped", server.server_address[1])

    def __enter__(self) -> "StubHub":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    @property
    def fault(self) -> str | None:
        """The fault in force: None, "500", "hang", "drop" or "truncate"."""
        return self._fault

    @fault.setter
    def fault(self, value: str | None) -> None:
        if value not in FAULTS:
            raise ValueError(f"unknown fault {value!r}; one of {FAULTS}")
        self._fault = value

    @property
    def port(self) -> int:
        """The port listened on (the given one, or the one the OS chose for port 0; the same after stop())."""
        return self._port

    @property
    def url(self) -> str:
        """The endpoint to give huggingface_hub (HF_ENDPOINT / endpoint=), e.g. "http://127.0.0.1:40123"."""
        return f"http://127.0.0.1:{self.port}"

    # ----------------------------------------------------------------------------------------- content

    def add_repo(self, repo_id: str, folder: Path) -> str:
        """Serve every file under `folder` as model repo `repo_id` ("org/name"); returns its commit sha."""
        if repo_id.count("/") != 1:
            raise ValueError(f"repo ids look like org/name, not {repo_id!r}")
        repo = _Repo(repo_id, Path(folder))
        with self._lock:
            self._repos[repo_id] = repo
        return repo.sha

    def sha(self, repo_id: str) -> str:
        """The commit sha `repo_id` is served at."""
        return self._repos[repo_id].sha

    def _record(self, method: str, path: str) -> None:
        with self._lock:
            self.requests.append((method, path))

    def _matches(self, path: str) -> bool:
        return fnmatch.fnmatch(path, self.fault_pattern)

    def _served_bytes(self, f: _File) -> bytes:
        """The bytes a file is served as: its first half under fault "truncate" when it matches, else all."""
        if self.fault == "truncate" and self._matches(f.path):
            return f.data[: len(f.data) // 2]
        return f.data


# ---------------------------------------------------------------------------------------------------- folders


@contextlib.contextmanager
def _seeded(seed: int):
    """Run the block with torch's global RNG seeded, restoring the caller's RNG state afterwards."""
    import torch

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        yield


def _tiny_gpt2_model(n_positions: int, n_layer: int, n_embd: int, n_head: int):
    from transformers import GPT2Config, GPT2LMHeadModel

    config = GPT2Config(n_positions=n_positions, n_layer=n_layer, n_embd=n_embd, n_head=n_head, vocab_size=50257)
    with _seeded(0):
        return GPT2LMHeadModel(config).eval()


def make_tiny_gpt2(folder: Path, n_positions: int = 1024, n_layer: int = 2, n_embd: int = 32, n_head: int = 2) -> Path:
    """`folder` holding a seeded GPT2LMHeadModel with GPT-2's 50,257-token vocabulary (model.safetensors,
    config.json, generation_config.json) and GPT-2's real tokenizer files; returns folder."""
    from dashboard.models import offline_gpt2_tokenizer

    folder = Path(folder)
    _tiny_gpt2_model(n_positions, n_layer, n_embd, n_head).save_pretrained(folder)
    offline_gpt2_tokenizer().save_pretrained(folder)
    return folder


_LLAMA_CORPUS = [
    "Udacity is the best place to learn about generative models.",
    "A language model writes text one token at a time.",
    "The quick brown fox jumps over the lazy dog.",
    "Temperature, top-k and top-p reshape the next-token distribution.",
] * 4


def _tiny_bpe_tokenizer():
    """A small byte-level BPE tokenizer (vocabulary of at most 320) trained on a fixed corpus, in transformers'
    PreTrainedTokenizerFast; deterministic."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=320, special_tokens=["<|endoftext|>"], show_progress=False,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tok.train_from_iterator(_LLAMA_CORPUS, trainer=trainer)
    return PreTrainedTokenizerFast(tokenizer_object=tok, bos_token="<|endoftext|>", eos_token="<|endoftext|>",
                                   unk_token="<|endoftext|>")


def make_tiny_llama(folder: Path, max_position_embeddings: int = 256) -> Path:
    """`folder` holding a seeded 2-layer LlamaForCausalLM (tied embeddings, vocabulary 512) as safetensors and a
    small byte-level BPE tokenizer (tokenizer.json, <= 320 tokens); returns folder."""
    from transformers import LlamaConfig, LlamaForCausalLM

    folder = Path(folder)
    tokenizer = _tiny_bpe_tokenizer()
    config = LlamaConfig(
        vocab_size=512, hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4,
        num_key_value_heads=2, max_position_embeddings=max_position_embeddings, tie_word_embeddings=True,
        bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id,
    )
    assert len(tokenizer) <= config.vocab_size
    with _seeded(0):
        model = LlamaForCausalLM(config).eval()
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


def make_bin_only(folder: Path) -> Path:
    """`folder` holding a tiny GPT-2 as ONLY a pickle checkpoint (pytorch_model.bin) plus config.json: a repo the
    app must refuse. Returns folder. (Writing a .bin is fine in a test; nothing may ever load it.)"""
    import torch

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    model = _tiny_gpt2_model(n_positions=1024, n_layer=2, n_embd=32, n_head=2)
    model.config.save_pretrained(folder)
    torch.save(model.state_dict(), folder / "pytorch_model.bin")
    return folder
