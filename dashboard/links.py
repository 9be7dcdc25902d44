"""URL state: validate untrusted link parameters, encode the next-token path, build share links."""

from __future__ import annotations

import re
import urllib.parse
from dataclasses import dataclass, field

from dashboard.sampling import CONTROLS, coerce
from dashboard.tokens import MAX_PROMPT_CHARS

MAX_PATH_STEPS = 256  # appended tokens a link may carry
MAX_COLUMNS = 4  # prompts on the compare page
MIN_COLUMNS = 2
PAGE_FLAGS = ("run",)  # run=1: Generate replays the shared generation once on opening
INSIDE_VIEWS = ("lens", "attention", "attribution")
INSIDE_INDEXES = ("layer", "head", "position")  # checked against the model by the Inside page itself
MAX_INDEX = 100_000
SINGLE = ("model", *CONTROLS, *PAGE_FLAGS, "view", *INSIDE_INDEXES)  # parameters that take one value
HOW_CODES = {"m": "most likely", "s": "sampled", "p": "picked"}


@dataclass
class LinkState:
    """Link parameters after validation: clean values by name, and a notice for each correction."""

    values: dict[str, object] = field(default_factory=dict)
    notices: list[str] = field(default_factory=list)
    changed: set[str] = field(default_factory=set)  # names whose value differs from the link's

    def note(self, name: str, notice: str) -> None:
        """Record a correction of `name`."""
        self.notices.append(notice)
        self.changed.add(name)


def _short(raw: str, n: int = 40) -> str:
    """`raw` cut for a notice."""
    return raw if len(raw) <= n else raw[:n] + "…"


def check_prompt(raw: str, limit: int = MAX_PROMPT_CHARS) -> tuple[str, str | None]:
    """(prompt cut to `limit` characters, notice or None)."""
    if len(raw) > limit:
        return raw[:limit], f"The prompt in the link had {len(raw):,} characters; it was cut to the first {limit:,}."
    return raw, None


def check_params(params: dict[str, list[str]], models: list[str], default_model: str,
                 multi_prompt: bool = False) -> LinkState:
    """Validate raw query parameters (each a list of values, as in the URL).

    Only registered model keys pass; numbers are parsed, clamped or defaulted; prompts are cut to the
    documented limit; a repeated single-valued key keeps its first value; unknown keys are left alone."""
    state = LinkState()
    for name, raw_values in params.items():
        if not raw_values:
            continue
        if name in SINGLE and len(raw_values) > 1:
            state.note(name, f"`{name}` appeared {len(raw_values)} times in the link; using the first.")
        raw = raw_values[0]
        if name == "model":
            if raw in models:
                state.values["model"] = raw
            else:
                state.values["model"] = default_model
                state.note(name, 
                    f"The link asked for model {_short(raw)!r}, which is not one of the registered models; "
                    f"using {default_model!r} instead."
                )
        elif name in CONTROLS:
            value, notice = coerce(name, raw)
            state.values[name] = value
            if notice:
                state.note(name, notice)
        elif name == "view":
            if raw in INSIDE_VIEWS:
                state.values["view"] = raw
            else:
                state.values["view"] = INSIDE_VIEWS[0]
                state.note(name, f"`view` = {_short(raw)!r} is not one of {', '.join(INSIDE_VIEWS)}; using "
                                 f"{INSIDE_VIEWS[0]!r}.")
        elif name in INSIDE_INDEXES:
            if name == "head" and raw == "mean":
                state.values[name] = "mean"
            elif raw.isdigit() and int(raw) <= MAX_INDEX:
                state.values[name] = int(raw)
            else:
                state.note(name, f"`{name}` = {_short(raw)!r} is not a valid index; it was ignored.")
        elif name == "run":
            if raw == "1":
                state.values["run"] = True
            else:
                state.note(name, f"`run` = {_short(raw)!r} is not 1; the link's generation is not replayed.")
        elif name == "prompt":
            kept = raw_values[:MAX_COLUMNS] if multi_prompt else raw_values[:1]
            if multi_prompt and len(raw_values) > MAX_COLUMNS:
                state.note(name, f"The link had {len(raw_values)} prompts; the compare page shows at most {MAX_COLUMNS}.")
            elif not multi_prompt and len(raw_values) > 1:
                state.notices.append(f"`prompt` appeared {len(raw_values)} times in the link; using the first.")
            cut = [check_prompt(p) for p in kept]
            for _, notice in cut:
                if notice:
                    state.note(name, notice)
            state.values["prompt"] = [p for p, _ in cut] if multi_prompt else cut[0][0]
    return state


_STEP = re.compile(r"^(\d{1,7})([msp]?)$")


def encode_path(steps) -> str:
    """The appended tokens of a path as `id` + how-code (m most likely, s sampled, p picked), comma-separated."""
    codes = {v: k for k, v in HOW_CODES.items()}
    return ",".join(f"{s.token_id}{codes.get(s.how.split(' (')[0], 'p')}" for s in steps)


def decode_path(raw: str, vocab_size: int) -> tuple[list[tuple[int, str]], str | None]:
    """([(token id, how)], notice or None) from a link's `path`; stops at the first bad entry."""
    out: list[tuple[int, str]] = []
    if not raw:
        return out, None
    items = raw.split(",")
    for n, item in enumerate(items):
        if n >= MAX_PATH_STEPS:
            return out, f"The link's token path was cut to {MAX_PATH_STEPS} steps."
        m = _STEP.match(item.strip())
        if not m or int(m.group(1)) >= vocab_size:
            return out, f"The link's token path has an invalid entry {_short(item)!r} (step {n + 1}); it was cut there."
        out.append((int(m.group(1)), HOW_CODES.get(m.group(2) or "p", "picked") + " (from link)"))
    return out, None


def share_url(app_url: str | None, page_path: str, page_paths: list[str], params: dict[str, object]) -> str:
    """An absolute link to `page_path` with `params` (lists become repeated keys), based on the app's URL."""
    base = (app_url or "http://localhost:8501").split("?")[0].split("#")[0].rstrip("/")
    for p in page_paths:
        if p and base.endswith("/" + p):
            base = base[: -len(p) - 1]
            break
    query = urllib.parse.urlencode({k: v for k, v in params.items() if v not in (None, "", [])}, doseq=True)
    page = f"/{page_path}" if page_path else "/"
    return f"{base}{page}" + (f"?{query}" if query else "")
