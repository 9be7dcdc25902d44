"""Decoding settings: every control's bounds, default, help and caption in one place, an immutable Settings, and
total parsing of untrusted values (links) into valid ones. No torch here: the entry script imports it before any
page needs a model."""

from __future__ import annotations

import math
import re
from dataclasses import asdict, dataclass, fields, replace
from typing import Any, Mapping

STRATEGIES = ("greedy", "sample", "beam")
PRECISIONS = ("fp32", "bf16")


@dataclass(frozen=True)
class Control:
    """Bounds, default and help of one decoding control (sliders take all of it from here)."""

    name: str
    label: str
    kind: type  # int, float or str
    default: Any
    low: Any = None
    high: Any = None
    step: Any = None
    help: str = ""
    caption: str = ""  # one plain-language sentence for learners
    choices: tuple = ()


CONTROLS: dict[str, Control] = {
    c.name: c
    for c in [
        Control(
            "strategy", "Strategy", str, "greedy", choices=STRATEGIES,
            help="greedy: always the most likely token; sample: draw from the processed distribution; "
            "beam: keep the best few partial texts.",
            caption="How the next token is chosen from the distribution.",
        ),
        Control(
            "precision", "Precision", str, "fp32", choices=PRECISIONS,
            help="fp32: exact, the same numbers every other page shows. bf16: a half-size copy of the weights, "
            "about twice as fast on this kind of CPU, with next-token probabilities off by up to a few "
            "hundredths, so its text can differ.",
            caption="Exact or fast: bf16 trades a little accuracy for speed.",
        ),
        Control(
            "temperature", "Temperature", float, 1.0, 0.0, 2.0, 0.05,
            help="Divides the logits before softmax. 0 means greedy (all mass on the top token); "
            "below 1 sharpens, above 1 flattens.",
            caption="Low temperature makes the model confident and repetitive; high makes it adventurous.",
        ),
        Control(
            "top_k", "Top-k", int, 0, 0, 200, 1,
            help="Keep only the k most likely tokens (0 = off). k larger than the vocabulary keeps everything.",
            caption="Only the k favourite tokens stay in the running.",
        ),
        Control(
            "top_p", "Top-p (nucleus)", float, 1.0, 0.01, 1.0, 0.01,
            help="Keep the smallest set of most likely tokens whose probabilities add up to at least p "
            "(1 = off). At least one token always survives.",
            caption="Keep the favourites until together they cover p of the probability.",
        ),
        Control(
            "min_p", "Min-p", float, 0.0, 0.0, 1.0, 0.01,
            help="Drop tokens whose probability is below min_p × the top token's probability (0 = off).",
            caption="Drop tokens that are far less likely than the favourite.",
        ),
        Control(
            "repetition_penalty", "Repetition penalty", float, 1.0, 1.0, 2.0, 0.05,
            help="Divides positive logits (multiplies negative ones) of tokens already in the text "
            "(1 = off), as in CTRL.",
            caption="Makes tokens that already appeared less likely to appear again.",
        ),
        Control(
            "seed", "Seed", int, 0, 0, 2**31 - 1, 1,
            help="Random seed for sampling: the same seed, text and settings give the same tokens.",
            caption="Same seed, same dice rolls.",
        ),
        Control(
            "max_new_tokens", "Max new tokens", int, 88, 1, 256, 1,
            help="How many tokens to generate at most (generation also stops at end-of-text).",
            caption="How long the continuation may get.",
        ),
        Control(
            "num_beams", "Beams", int, 4, 2, 8, 1,
            help="Beam search keeps this many partial continuations and returns the most likely one.",
            caption="How many candidate texts beam search keeps alive.",
        ),
    ]
}


@dataclass(frozen=True)
class Settings:
    """Every decoding control in one immutable object."""

    strategy: str = CONTROLS["strategy"].default
    precision: str = CONTROLS["precision"].default
    temperature: float = CONTROLS["temperature"].default
    top_k: int = CONTROLS["top_k"].default
    top_p: float = CONTROLS["top_p"].default
    min_p: float = CONTROLS["min_p"].default
    repetition_penalty: float = CONTROLS["repetition_penalty"].default
    seed: int = CONTROLS["seed"].default
    max_new_tokens: int = CONTROLS["max_new_tokens"].default
    num_beams: int = CONTROLS["num_beams"].default

    def __post_init__(self):
        for f in fields(self):
            check_value(f.name, getattr(self, f.name))

    @property
    def greedy(self) -> bool:
        """True when the next token is always the argmax (greedy strategy or temperature 0)."""
        return self.strategy == "greedy" or self.temperature == 0

    def as_dict(self) -> dict:
        """The settings as a plain dict."""
        return asdict(self)

    def generate_kwargs(self) -> dict:
        """Keyword arguments for `model.generate` that apply exactly these settings."""
        kwargs: dict[str, Any] = {
            "max_new_tokens": self.max_new_tokens,
            "repetition_penalty": self.repetition_penalty,
            "do_sample": False,
            "num_beams": 1,
        }
        if self.strategy == "beam":
            kwargs.update(num_beams=self.num_beams, early_stopping=True)
        elif not self.greedy:
            # every warper given explicitly, so a model's own generation_config never sneaks in
            kwargs.update(
                do_sample=True,
                temperature=self.temperature,
                top_k=self.top_k,
                top_p=self.top_p,
                min_p=self.min_p if self.min_p > 0 else None,
            )
        return kwargs


def check_value(name: str, value: Any) -> None:
    """Raise ValueError naming `name` and `value` when it is outside its control's bounds."""
    control = CONTROLS[name]
    if control.kind is str:
        if value not in control.choices:
            raise ValueError(f"`{name}` must be one of {control.choices}, got {value!r}")
        return
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ValueError(f"`{name}` must be a number, got {value!r}")
    if control.kind is int and int(value) != value:
        raise ValueError(f"`{name}` must be a whole number, got {value!r}")
    if not math.isfinite(value) or not control.low <= value <= control.high:
        raise ValueError(f"`{name}` must be between {control.low} and {control.high}, got {value!r}")


_SPACE = " \t\n\r\f\v"  # stripped around a link's number (a `+` in a query string is a space)
_NUMBER = re.compile(r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")  # ASCII digits only
_SPECIAL = {"inf": math.inf, "infinity": math.inf, "nan": math.nan}


def _read_number(text: str) -> float | None:
    """The number a plain decimal spelling (or inf / nan) says, else None. Total: float() only ever sees
    ASCII text it accepts, which it reads without a length limit (a huge one becomes ±inf or 0)."""
    word = text.strip(_SPACE)
    if _NUMBER.fullmatch(word):
        return float(word)
    body = word[1:] if word[:1] in ("+", "-") else word
    special = _SPECIAL.get(body.lower()) if body.isascii() and len(body) <= 8 else None
    return None if special is None else (-special if word[:1] == "-" else special)


def shown(text: str, n: int = 40) -> str:
    """`text` cut to `n` characters and quoted, in an inline code span: a notice (Markdown) shows it as it is,
    never as a link, emphasis or markup."""
    quoted = repr(text if len(text) <= n else text[:n] + "…")
    fence = "`" * (max(map(len, re.findall(r"`+", quoted)), default=0) + 1)
    return f"{fence}{quoted}{fence}"


def coerce(name: str, raw: Any) -> tuple[Any, str | None]:
    """(valid value, notice or None) for untrusted input: parsed, clamped into bounds, or the default."""
    return coerce_to(CONTROLS[name], raw)


def coerce_to(control: Control, raw: Any) -> tuple[Any, str | None]:
    """(valid value of `control`, notice or None) for untrusted input, never raising. A choice matches with any
    case; a number must be spelled with ASCII digits (sign, point, exponent, inf and nan allowed): anything else
    gives the default. Out-of-range numbers are clamped, whole-number controls rounded, each with a notice."""
    name, text = control.name, raw if isinstance(raw, str) else str(raw)
    if control.kind is str:
        word = text.strip(_SPACE)
        folded = word.lower()
        match = [c for c in control.choices if c == word] or [c for c in control.choices if c.lower() == folded]
        if match:
            return match[0], None
        return control.default, (f"`{name}` = {shown(text)} is not one of {', '.join(control.choices)}; "
                                 f"using {control.default!r}.")
    number = _read_number(text)
    if number is None:
        return control.default, f"`{name}` = {shown(text)} is not a number; using {control.default}."
    if math.isnan(number):
        return control.default, f"`{name}` = NaN is not a number; using {control.default}."
    clamped = min(max(number, control.low), control.high) + 0.0  # + 0.0: -0 becomes 0
    value = int(round(clamped)) if control.kind is int else clamped
    if clamped != number:
        return value, f"`{name}` = {shown(text)} is outside {control.low}…{control.high}; using {value}."
    if value != number:
        return value, f"`{name}` = {shown(text)} is not a whole number; using {value}."
    return value, None


def settings_from(values: Mapping[str, Any], base: Settings | None = None) -> tuple[Settings, list[str]]:
    """(settings, notices) from untrusted values by control name; unknown names are ignored."""
    base = base or Settings()
    changes, notices = {}, []
    for name in CONTROLS:
        if name in values and values[name] is not None:
            value, notice = coerce(name, values[name])
            changes[name] = value
            if notice:
                notices.append(notice)
    return replace(base, **changes), notices
