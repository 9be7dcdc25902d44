"""URL state: one table of every link parameter with its total parser, the next-token path, share links."""

from __future__ import annotations

import logging
import re
import unicodedata
import urllib.parse
from dataclasses import dataclass, field

from dashboard.settings import CONTROLS, Control, coerce_to, shown
from dashboard.tokens import MAX_PROMPT_CHARS

logger = logging.getLogger("dashboard")

MAX_PATH_STEPS = 256  # appended tokens a link may carry
MAX_COLUMNS = 4  # prompts on the compare page
MIN_COLUMNS = 2
PAGE_FLAGS = ("run",)  # run=1: Generate replays the shared generation once on opening
PRIVATE_PARAMS = ("learner",)  # a Class learner's own id: in their own URL, never in a share link
INSIDE_VIEWS = ("lens", "attention", "attribution")
INSIDE_INDEXES = ("layer", "head", "position")  # checked against the model by the Inside page itself
MAX_INDEX = 100_000
MAX_TOKEN_ID = 9_999_999  # the largest token id a link may name (7 digits); the page checks its vocabulary
MAX_FIND_CHARS = 100  # Next token's "Where is…" box
HOW_CODES = {"m": "most likely", "s": "sampled", "p": "picked"}
NEXT_TOKEN_VIEWS = ("probability", "log-probability", "logit")  # = charts.VIEWS (charts needs altair)
GENERATE_TABS = ("Generate", "Score text")
ATTRIBUTION_METHODS = ("occlusion", "gradient × input")
NO_TOKENIZER = "(none)"  # Tokenize's "compare with another tokenizer": none
COMPARE_SIDEBAR = "(sidebar model)"  # a compare column that uses the sidebar's model
OWN_OFF = "-"  # a compare column without its own settings, in ?ctemp= / ?ctop_p=
OWN_PARAMS = (("ctemp", "temperature"), ("ctop_p", "top_p"))  # per-column parameter → decoding control
TRUE_WORDS = ("true", "1", "yes", "on")  # "true"/"false": what a bound toggle writes
FALSE_WORDS = ("false", "0", "no", "off")
_SPACE = " \t\n\r\f\v"  # ignored around a number, an index or a word (a `+` in a query string is a space)


@dataclass(frozen=True)
class Param:
    """One link parameter: the kind of value it holds, its bounds or choices, its default, how many values."""

    name: str
    kind: str  # number, choice, model, bool, text, index, path or flag (see _PARSERS)
    default: object = None  # None: a bad value is dropped and the page's own default applies
    control: Control | None = None  # number and choice: bounds or choices (read by sampling.coerce_to)
    choices: tuple = ()  # model: the accepted keys
    limit: int = 0  # text: most characters; index: largest value
    words: tuple = ()  # index and number: words taken as they are ("mean" heads, "-" for no own setting)
    label: str = ""  # text: what a notice calls it ("the prompt in the link"); index: what a valid value is
    columns: int = 1  # how many values the link may carry (one per compare column)

    def parse(self, raw: str) -> tuple[object, str | None]:
        """(valid value or None, notice or None) for one untrusted value; never raises."""
        return _PARSERS[self.kind](self, raw if isinstance(raw, str) else str(raw))

    def text(self, value) -> str | None:
        """`value` as the URL writes it (None: left out of the URL)."""
        if value is None:
            return None
        if self.kind == "bool":
            return "true" if value else "false"  # what a bound st.toggle writes
        if self.kind == "flag":
            return "1"
        return str(value)


def _short(raw: str, n: int = 40) -> str:
    """`raw` cut for a notice."""
    return raw if len(raw) <= n else raw[:n] + "…"


def _number(p: Param, raw: str) -> tuple[object, str | None]:
    """A decoding-style number: clamped, rounded or defaulted by sampling.coerce_to."""
    if raw in p.words:
        return raw, None
    return coerce_to(p.control, raw)


def _choice(p: Param, raw: str) -> tuple[object, str | None]:
    """One of a fixed set of words (any case), else the default."""
    return coerce_to(p.control, raw)


def _model(p: Param, raw: str) -> tuple[object, str | None]:
    """A registered model key (exactly), else the default: a link can only pick registered models."""
    if raw in p.choices:
        return raw, None
    return p.default, (f"The link asked for model {shown(raw)}, which is not one of the registered models; "
                       f"using {p.default!r} instead.")


def _bool(p: Param, raw: str) -> tuple[object, str | None]:
    """true/false (what a bound toggle writes), 1/0, yes/no, on/off in any case, else the default."""
    word = raw.strip(_SPACE).lower() if raw.isascii() else ""
    if word in TRUE_WORDS or word in FALSE_WORDS:
        return word in TRUE_WORDS, None
    return p.default, f"`{p.name}` = {shown(raw)} is not true or false; using {str(p.default).lower()}."


def clean_text(raw: str, limit: int) -> tuple[str, int, int]:
    """(`raw` without control characters (tabs and newlines stay) or lone surrogates, cut to `limit`
    characters; how many were removed; its length before the cut)."""
    kept = "".join(ch for ch in raw if ch in "\n\t" or unicodedata.category(ch) not in ("Cc", "Cs"))
    return kept[:limit], len(raw) - len(kept), len(kept)


def _text(p: Param, raw: str) -> tuple[object, str | None]:
    """Text cut to its limit, without control characters: what the box and the URL then hold."""
    text, removed, length = clean_text(raw, p.limit)
    parts = []
    if length > p.limit:
        parts.append(f"{p.label[:1].upper()}{p.label[1:]} had {len(raw):,} characters; it was cut to the first "
                     f"{p.limit:,}.")
    if removed:
        parts.append(f"{removed:,} control character(s) were removed from {p.label}.")
    return text, " ".join(parts) or None


def _index(p: Param, raw: str) -> tuple[object, str | None]:
    """A whole number from 0 to the limit in ASCII digits (or one of the words), else None: ignored."""
    word = raw.strip(_SPACE)
    if word in p.words:
        return word, None
    digits = word.lstrip("0") or "0"  # int() only sees a few digits: no int-conversion limit
    if word.isascii() and word.isdigit() and len(digits) <= len(str(p.limit)) and int(digits) <= p.limit:
        return int(digits), None
    return None, f"`{p.name}` = {shown(raw)} is not a valid {p.label}; it was ignored."


def _path(p: Param, raw: str) -> tuple[object, str | None]:
    """The next-token path's valid first steps, written the way encode_path writes them (None: no steps)."""
    steps, notice = path_steps(raw, MAX_TOKEN_ID + 1)
    return (",".join(f"{t}{code}" for t, code in steps) or None), notice


def _flag(p: Param, raw: str) -> tuple[object, str | None]:
    """run=1, else ignored."""
    if raw == "1":
        return True, None
    return None, f"`{p.name}` = {shown(raw)} is not 1; the link's generation is not replayed."


_PARSERS = {"number": _number, "choice": _choice, "model": _model, "bool": _bool, "text": _text, "index": _index,
            "path": _path, "flag": _flag}


def _own(name: str, label: str, kind: type, default, low=None, high=None, choices: tuple = ()) -> Control:
    """A Control for a link parameter that is not a decoding control (its bounds, default or choices)."""
    return Control(name, label, kind, default, low, high, 1 if kind is int else None, choices=choices)


def link_params(models: list[str], default_model: str, multi_prompt: bool = False) -> dict[str, Param]:
    """Every link parameter by name (the URL key, which is also the widget key), for these registered models;
    `multi_prompt`: the compare page, where `prompt` repeats once per column."""
    params = [
        Param("model", "model", default_model, choices=tuple(models)),
        *(Param(name, "choice" if c.kind is str else "number", c.default, control=c) for name, c in CONTROLS.items()),
        Param("prompt", "text", None, limit=MAX_PROMPT_CHARS, label="the prompt in the link",
              columns=MAX_COLUMNS if multi_prompt else 1),
        Param("path", "path"),
        Param("run", "flag"),
        # Next token
        Param("nt_view", "choice", NEXT_TOKEN_VIEWS[0],
              control=_own("nt_view", "Show", str, NEXT_TOKEN_VIEWS[0], choices=NEXT_TOKEN_VIEWS)),
        Param("nt_show", "number", 15, control=_own("nt_show", "Tokens shown", int, 15, 5, 50)),
        Param("nt_log", "bool", False),
        Param("nt_find", "text", "", limit=MAX_FIND_CHARS, label="the “Where is…” text in the link"),
        # Tokenize
        Param("tok_compare", "model", NO_TOKENIZER, choices=(NO_TOKENIZER, *models)),
        # Generate
        Param("gen_tab", "choice", GENERATE_TABS[0],
              control=_own("gen_tab", "Tab", str, GENERATE_TABS[0], choices=GENERATE_TABS)),
        Param("gen_markdown", "bool", False),
        Param("score_text", "text", "", limit=MAX_PROMPT_CHARS, label="the text to score in the link"),
        *(Param(name, "index", limit=MAX_INDEX, label="token place") for name in ("gen_inspect", "score_inspect")),
        # Compare: one value per column
        Param("cmodel", "model", COMPARE_SIDEBAR, choices=(COMPARE_SIDEBAR, *models), columns=MAX_COLUMNS),
        *(Param(name, "number", OWN_OFF, control=CONTROLS[control], words=(OWN_OFF,), columns=MAX_COLUMNS)
          for name, control in OWN_PARAMS),
        Param("cmp_k", "number", 8, control=_own("cmp_k", "Top tokens per column", int, 8, 3, 20)),
        Param("cmp_processed", "bool", False),
        # Inside the model
        Param("view", "choice", INSIDE_VIEWS[0],
              control=_own("view", "View", str, INSIDE_VIEWS[0], choices=INSIDE_VIEWS)),
        *(Param(name, "index", limit=MAX_INDEX, label="index", words=("mean",) if name == "head" else ())
          for name in INSIDE_INDEXES),
        Param("in_target", "index", limit=MAX_TOKEN_ID, label="token id"),
        Param("in_method", "choice", ATTRIBUTION_METHODS[0],
              control=_own("in_method", "Method", str, ATTRIBUTION_METHODS[0], choices=ATTRIBUTION_METHODS)),
    ]
    return {p.name: p for p in params}


def parse_value(p: Param, raw: str) -> tuple[object, str | None]:
    """p.parse(raw), and should a parser ever fail, the parameter ignored with a notice instead of a crash."""
    try:
        return p.parse(raw)
    except Exception:  # a bug must not take the page down: it is logged and the link value dropped
        logger.exception("link parameter %s: parsing %r failed", p.name, _short(str(raw)))
        return p.default, f"`{p.name}` in the link could not be read; using the default."


@dataclass
class LinkState:
    """Link parameters after validation: clean values by name, a notice for each correction, and the URL text
    of every parameter whose text changes."""

    values: dict[str, object] = field(default_factory=dict)
    notices: list[str] = field(default_factory=list)
    changed: set[str] = field(default_factory=set)  # names whose value differs from the link's
    query: dict[str, list[str] | None] = field(default_factory=dict)  # name → its new URL values (None: removed)

    def note(self, name: str, notice: str) -> None:
        """Record a correction of `name`."""
        self.notices.append(notice)
        self.changed.add(name)


def _too_many(p: Param, n: int) -> str:
    """The notice for a parameter repeated more often than it may be."""
    if p.columns == 1:
        return f"`{p.name}` appeared {n} times in the link; using the first."
    if p.name == "prompt":
        return f"The link had {n} prompts; the compare page shows at most {p.columns}."
    return f"`{p.name}` appeared {n} times in the link; the compare page has at most {p.columns} columns."


def check_prompt(raw: str, limit: int = MAX_PROMPT_CHARS) -> tuple[str, str | None]:
    """(prompt cut to `limit` characters, without control characters; notice or None)."""
    return _text(Param("prompt", "text", limit=limit, label="the prompt in the link"), raw)


def check_params(params: dict[str, list[str]], models: list[str], default_model: str,
                 multi_prompt: bool = False) -> LinkState:
    """Validate raw query parameters (each a list of values, as in the URL).

    Every parameter of link_params() is parsed by its parser: only registered model keys pass; numbers are
    parsed, clamped or defaulted; prompts are cut to the documented limit; a repeated single-valued key keeps
    its first value. `query` gives each one whose URL text must change; unknown keys are left alone."""
    table = link_params(models, default_model, multi_prompt)
    state = LinkState()
    for name, raw_values in params.items():
        p = table.get(name)
        if p is None or not raw_values:
            continue
        raw_values = [v if isinstance(v, str) else str(v) for v in raw_values]
        if len(raw_values) > p.columns:
            state.note(name, _too_many(p, len(raw_values)))
        parsed = []
        for i, raw in enumerate(raw_values[: p.columns]):
            value, notice = parse_value(p, raw)
            if notice:
                state.note(name, f"Column {i + 1}: {notice}" if p.columns > 1 else notice)
            parsed.append(value)
        if p.columns > 1:
            state.values[name] = parsed
        elif parsed[0] is not None:
            state.values[name] = parsed[0]
        url = [t for t in map(p.text, parsed) if t is not None]
        if url != raw_values:
            state.query[name] = url or None
    return state


_STEP = re.compile(r"([0-9]{1,7})([msp]?)")


def encode_path(steps) -> str:
    """The appended tokens of a path as `id` + how-code (m most likely, s sampled, p picked), comma-separated."""
    codes = {v: k for k, v in HOW_CODES.items()}
    return ",".join(f"{s.token_id}{codes.get(s.how.split(' (')[0], 'p')}" for s in steps)


def path_steps(raw: str, vocab_size: int) -> tuple[list[tuple[int, str]], str | None]:
    """([(token id, how-code)], notice or None) from a link's `path`; stops at the first bad entry."""
    out: list[tuple[int, str]] = []
    if not raw:
        return out, None
    for n, item in enumerate(raw.split(",", MAX_PATH_STEPS)):
        if n >= MAX_PATH_STEPS:
            return out, f"The link's token path was cut to {MAX_PATH_STEPS} steps."
        m = _STEP.fullmatch(item.strip(_SPACE))
        if not m or int(m.group(1)) >= vocab_size:
            return out, f"The link's token path has an invalid entry {shown(item)} (step {n + 1}); it was cut there."
        out.append((int(m.group(1)), m.group(2) or "p"))
    return out, None


def decode_path(raw: str, vocab_size: int) -> tuple[list[tuple[int, str]], str | None]:
    """([(token id, how)], notice or None) from a link's `path`; stops at the first bad entry."""
    steps, notice = path_steps(raw, vocab_size)
    return [(t, HOW_CODES[code] + " (from link)") for t, code in steps], notice


def path_text(steps: list[tuple[int, str]]) -> str:
    """decode_path's steps written back as a `path` value."""
    codes = {v: k for k, v in HOW_CODES.items()}
    return ",".join(f"{t}{codes.get(how.split(' (')[0], 'p')}" for t, how in steps)


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
