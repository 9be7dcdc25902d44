"""The bundled model's weight cache: config, tokenizer and fp32 safetensors written once, atomically, with a
checksummed manifest, so later starts skip dequantizing the GGUF."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import logging
import tempfile
import threading
from contextlib import contextmanager
from pathlib import Path

from dashboard.hub import file_sha256 as _file_sha256

logger = logging.getLogger(__name__)

CACHE_ENV = "TOKENSCOPE_CACHE"
CACHE_FORMAT = 2  # bump when the on-disk cache layout changes


def cache_root() -> Path:
    """Folder for Tokenscope's weight caches ($TOKENSCOPE_CACHE, else the user cache folder)."""
    env = os.environ.get(CACHE_ENV)
    if env:
        return Path(env).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "tokenscope"


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

    def fill(tmp: Path) -> None:
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

    _write_atomically(folder, fill)


def _write_atomically(folder: Path, fill) -> None:
    """Fill a temp folder beside `folder` (`fill(tmp)`), add a manifest of every file's size and sha256, then
    put it in place of `folder` in one rename; nothing half-written is ever left under the final name."""
    folder.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=folder.name + ".tmp-", dir=folder.parent))
    try:
        fill(tmp)
        files = {p.name: {"size": p.stat().st_size, "sha256": _file_sha256(p)} for p in sorted(tmp.iterdir())
                 if p.is_file()}
        (tmp / "manifest.json").write_text(json.dumps({"format": CACHE_FORMAT, "files": files}, indent=1))
        if folder.exists():
            shutil.rmtree(folder)
        os.replace(tmp, folder)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def tokenizer_cache_dir(gguf: Path) -> Path:
    """Cache folder for the bundled model's tokenizer alone (written by the first page that needs only tokens)."""
    return bundled_cache_dir(gguf).with_name(bundled_cache_dir(gguf).name + "-tokenizer")


def write_tokenizer_cache(folder: Path, tokenizer) -> None:
    """Write `tokenizer`'s files into `folder`, atomically (temp dir + rename), with a checksummed manifest."""
    _write_atomically(folder, tokenizer.save_pretrained)


def tokenizer_cache_problem(folder: Path) -> str | None:
    """Why a tokenizer cache folder cannot be used (missing, partial, corrupt), or None."""
    try:
        manifest = json.loads((folder / "manifest.json").read_text())
    except (OSError, ValueError) as exc:
        return f"no readable manifest ({exc.__class__.__name__})"
    for name, meta in manifest.get("files", {}).items():
        path = folder / name
        if not path.is_file() or path.stat().st_size != meta["size"] or _file_sha256(path) != meta["sha256"]:
            return f"{name} is missing or does not match its checksum"
    if "tokenizer.json" not in manifest.get("files", {}):
        return "manifest lists no tokenizer.json"
    return None


# --------------------------------------------------------------------------- the fast load


# tokenizer_config.json keys the fast tokenizer path understands; any other key sends it to AutoTokenizer.
_TOKENIZER_KWARGS = {"bos_token", "eos_token", "unk_token", "pad_token", "sep_token", "cls_token", "mask_token",
                     "model_max_length", "padding_side", "truncation_side", "clean_up_tokenization_spaces"}
_TOKENIZER_IGNORED = {"tokenizer_class", "backend", "is_local", "local_files_only", "name_or_path", "_commit_hash"}
_TOKENIZER_CLASSES = {"TokenizersBackend", "PreTrainedTokenizerFast"}


def _cache_tokenizer(folder: Path):
    """The weight cache's tokenizer straight from its tokenizer.json (the `tokenizers` library), wrapped in
    PreTrainedTokenizerFast as AutoTokenizer wraps it, with the special tokens of tokenizer_config.json;
    AutoTokenizer itself for any configuration this does not cover. Same ids and text as AutoTokenizer (checked
    by `make bench`)."""
    config = json.loads((folder / "tokenizer_config.json").read_text(encoding="utf-8"))
    plain = all(isinstance(v, (str, int, float, bool)) or v is None for v in config.values())
    if (config.get("tokenizer_class") not in _TOKENIZER_CLASSES or not plain
            or set(config) - _TOKENIZER_KWARGS - _TOKENIZER_IGNORED or not (folder / "tokenizer.json").is_file()):
        from transformers import AutoTokenizer

        return AutoTokenizer.from_pretrained(folder, local_files_only=True)
    from transformers import PreTrainedTokenizerFast

    kwargs = {k: v for k, v in config.items() if k in _TOKENIZER_KWARGS}
    # tokenizer_file= is tokenizers.Tokenizer.from_file; tokenizer_object= would deep-copy the parsed tokenizer,
    # which costs as much again as parsing it.
    tokenizer = PreTrainedTokenizerFast(tokenizer_file=str(folder / "tokenizer.json"), name_or_path=str(folder),
                                        **kwargs)
    template = folder / "chat_template.jinja"
    if template.is_file():
        tokenizer.chat_template = template.read_text(encoding="utf-8")
    return tokenizer


def _cache_model(folder: Path):
    """The weight cache's model without from_pretrained's machinery: built on the meta device from its config
    (no weight initialisation, no allocation), the safetensors state dict assigned (memory-mapped, as
    from_pretrained does), tied embeddings re-tied, the computed buffers (rotary frequencies) filled in."""
    import torch
    from safetensors.torch import load_file
    from transformers import AutoConfig, AutoModelForCausalLM, GenerationConfig

    config = AutoConfig.from_pretrained(folder, local_files_only=True)
    with torch.device("meta"):
        model = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    state = load_file(folder / "model.safetensors")
    missing, unexpected = model.load_state_dict(state, strict=False, assign=True)
    model.tie_weights()
    tied = set(getattr(model, "all_tied_weights_keys", None) or {})
    if unexpected or set(missing) - tied:
        raise ValueError(f"the weights do not fit the config (missing {sorted(missing)[:3]}, "
                         f"unexpected {sorted(unexpected)[:3]})")
    for name, buffer in list(model.named_buffers()):  # not in the state dict: computed at construction
        if buffer.is_meta:
            owner, _, attr = name.rpartition(".")
            module = model.get_submodule(owner)
            module._buffers[attr] = torch.empty_like(buffer, device="cpu")
            model._init_weights(module)
    still_meta = [n for n, t in [*model.named_parameters(), *model.named_buffers()] if t.is_meta]
    if still_meta:
        raise ValueError(f"{still_meta[0]} was not loaded")
    if (folder / "generation_config.json").is_file():
        model.generation_config = GenerationConfig.from_pretrained(folder, local_files_only=True)
    return model


# --------------------------------------------------------------------------- the tokenizer alone


def _log_progress(text: str, fraction: float | None = None) -> None:
    """The default progress report: a log line."""
    logger.info("%s%s", text, "" if fraction is None else f" ({fraction:.0%})")


def bundled_tokenizer(gguf: Path, progress=_log_progress):
    """The bundled model's tokenizer without its weights: from the weight cache or the tokenizer cache when
    either is intact, else read from the GGUF (~10 s) and written to the tokenizer cache for next time."""
    for folder, problem in ((bundled_cache_dir(gguf), cache_problem), (tokenizer_cache_dir(gguf), tokenizer_cache_problem)):
        if folder.exists() and problem(folder) is None:
            try:
                return _cache_tokenizer(folder)
            except Exception as exc:  # an unexpected layout: read the GGUF instead
                logger.warning("tokenizer cache %s unusable: %s", folder, exc)
    progress("Reading the bundled model's tokenizer from its GGUF file (first start only, ~10 s)…")
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
    try:
        write_tokenizer_cache(tokenizer_cache_dir(gguf), tokenizer)
    except OSError as exc:
        logger.warning("could not write the tokenizer cache: %s", exc)
    return tokenizer


@contextmanager
def gguf_progress(progress):
    """While active, transformers' GGUF dequantization reports each tensor to `progress` (its tqdm loop over
    the file's tensors is the only place that knows how far it is)."""
    from transformers import modeling_gguf_pytorch_utils as gguf_utils

    real = gguf_utils.tqdm

    def reporting(iterable, *args, **kwargs):
        items = list(iterable)
        for i, item in enumerate(items):
            progress(f"Dequantizing the bundled model's weights (first start only): tensor {i + 1:,} of "
                     f"{len(items):,}", i / max(len(items), 1))
            yield item

    with _GGUF_PATCH:  # one patch at a time (two sessions may load different GGUF-based models)
        gguf_utils.tqdm = reporting
        try:
            yield
        finally:
            gguf_utils.tqdm = real


_GGUF_PATCH = threading.Lock()
