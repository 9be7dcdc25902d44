"""How numbers read on every page: one format for a probability, whatever its size."""

from __future__ import annotations

import math

_SUPERSCRIPT = str.maketrans("-0123456789", "⁻⁰¹²³⁴⁵⁶⁷⁸⁹")


def probability(p: float) -> str:
    """A probability as text: a percentage with two decimals ("28.22%", "0.31%"), three below 0.1% ("0.012%"),
    and below 0.01% two significant figures in powers of ten ("3.1×10⁻⁷"), so no small value reads as 0."""
    p = float(p)
    if not math.isfinite(p) or not -1e-9 <= p <= 1 + 1e-6:
        raise ValueError(f"`p` must be a probability in [0, 1], got {p!r}")
    p = min(max(p, 0.0), 1.0)
    if p == 0:
        return "0%"
    if p >= 0.001:
        return f"{p:.2%}"
    if p >= 0.0001:
        return f"{p:.3%}"
    mantissa, exponent = f"{p:.1e}".split("e")
    return f"{mantissa}×10{str(int(exponent)).translate(_SUPERSCRIPT)}"
