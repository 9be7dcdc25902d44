"""Comparing next-token distributions: one padded batch forward for many prompts, and divergences."""

from __future__ import annotations

import math

import torch

from dashboard.numbers import probability
from dashboard.tokens import visible


@torch.inference_mode()
def batched_next_logits(model, prompts: list[list[int]], pad_id: int = 0) -> torch.Tensor:
    """Next-token logits (n, vocab) for n prompts in one forward: left padding, attention mask and
    position ids counted from each prompt's first real token, so each row equals its own single forward."""
    if not prompts or any(len(p) == 0 for p in prompts):
        raise ValueError("`prompts` must be non-empty lists of token ids")
    width = max(len(p) for p in prompts)
    ids = torch.full((len(prompts), width), pad_id, dtype=torch.long)  # (n, width)
    mask = torch.zeros((len(prompts), width), dtype=torch.long)  # (n, width)
    for row, p in enumerate(prompts):
        ids[row, width - len(p):] = torch.tensor(p)
        mask[row, width - len(p):] = 1
    positions = (mask.cumsum(-1) - 1).clamp(min=0)  # (n, width): 0 at each prompt's first token
    out = model(input_ids=ids, attention_mask=mask, position_ids=positions, use_cache=False, logits_to_keep=1)
    return out.logits[:, -1, :].float()  # (n, vocab)


def kl_bits(p: torch.Tensor, q: torch.Tensor) -> float:
    """KL(p ‖ q) in bits; infinite when q gives zero to a token p does not."""
    support = p > 0
    if bool((q[support] == 0).any()):
        return math.inf
    return float((p[support].double() * (p[support].double() / q[support].double()).log2()).sum())


def js_bits(p: torch.Tensor, q: torch.Tensor) -> float:
    """Jensen–Shannon divergence in bits (0 = identical, 1 = disjoint)."""
    m = 0.5 * (p + q)
    return 0.5 * kl_bits(p, m) + 0.5 * kl_bits(q, m)


def top_overlap(p: torch.Tensor, q: torch.Tensor, k: int) -> float:
    """Share of the k most likely tokens the two distributions have in common (0…1)."""
    k = min(k, p.shape[-1])
    a = set(torch.topk(p, k).indices.tolist())
    b = set(torch.topk(q, k).indices.tolist())
    return len(a & b) / k


def biggest_shift(p: torch.Tensor, q: torch.Tensor) -> tuple[int, float, float]:
    """(token id, p there, q there) for the token whose probability grows most from p to q."""
    tid = int((q - p).argmax())
    return tid, float(p[tid]), float(q[tid])


def reading(name_q: str, p: torch.Tensor, q: torch.Tensor, decode) -> str:
    """One plain-language sentence on how q differs from p."""
    tid, before, after = biggest_shift(p, q)
    js = js_bits(p, q)
    if js < 0.01:
        return f"{name_q} barely changes the distribution (JS divergence {js:.3f} bits)."
    same_top = int(p.argmax()) == int(q.argmax())
    top_note = "the most likely token stays the same" if same_top else "the most likely token changes"
    return (
        f"{name_q} moves {probability(after - before)} of the probability to {visible(decode(tid))} "
        f"(from {probability(before)} to {probability(after)}); {top_note}."
    )


def closeness(js: float) -> str:
    """A learner's reading of a JS divergence in bits (0 = identical, 1 = nothing in common)."""
    if js < 0.01:
        return "practically the same"
    if js < 0.1:
        return "similar"
    if js < 0.4:
        return "clearly different"
    return "very different"


def divergence_row(pair: str, p: torch.Tensor | None, q: torch.Tensor | None, k: int) -> dict[str, str]:
    """One row of the divergence table as text: KL and JS in bits (3 decimals), top-1 agreement, top-k overlap
    as "k of N", and a reading; p or q None means the two columns use different vocabularies."""
    if p is None or q is None:
        return {"pair": pair, "KL (bits)": "—", "JS (bits)": "—", "same top token": "—",
                f"top-{k} overlap": "—", "reading": "different models: their vocabularies cannot be compared"}
    kl, js = kl_bits(p, q), js_bits(p, q)
    shared = round(top_overlap(p, q, k) * min(k, p.shape[-1]))
    return {
        "pair": pair,
        "KL (bits)": "∞" if math.isinf(kl) else f"{kl:.3f}",
        "JS (bits)": f"{js:.3f}",
        "same top token": "yes" if int(p.argmax()) == int(q.argmax()) else "no",
        f"top-{k} overlap": f"{shared} of {min(k, p.shape[-1])}",
        "reading": closeness(js),
    }


def shared_axis(columns: list[tuple[object, torch.Tensor]], k: int) -> tuple[list[str], list[dict[str, int]]]:
    """The union of every column's (tokenizer, scores) top-k tokens, matched by text: its visible labels (the first
    column's ranking first), and for each column {label: id} of the labels whose text is one token of its
    vocabulary."""
    from dashboard.tokens import encode

    union: dict[str, str] = {}  # visible label -> token text
    for tok, scores in columns:
        for t in scores.topk(min(k, int(torch.isfinite(scores).sum()))).indices.tolist():
            union.setdefault(visible(tok.decode([t])), tok.decode([t]))
    found = []
    for tok, _ in columns:
        ids = {}
        for label, text in union.items():
            q = encode(tok, text)
            if len(q) == 1 and tok.decode(q) == text:
                ids[label] = q[0]
        found.append(ids)
    return list(union), found


def shared_axis_frame(columns: list[tuple[str, object, torch.Tensor]], k: int):
    """Long table (token, column, probability) over the union of every column's top-k tokens, matched by text,
    so the same token lines up across columns (a text that is not one token in a column's vocabulary: 0)."""
    import pandas as pd

    labels, found = shared_axis([(tok, probs) for _, tok, probs in columns], k)
    return pd.DataFrame([{"token": label, "column": name,
                          "probability": float(probs[ids[label]]) if label in ids else 0.0}
                         for (name, _, probs), ids in zip(columns, found) for label in labels])


def instrument_frame(columns: list[tuple[str, object, torch.Tensor, object]], k: int):
    """Compare's instrument data (instrument_charts.compare_spec): for each column (name, tokenizer, raw logits, own
    settings or None) its payload as a group, with its own temperature and top-p (ot, op; none: the controls') and
    the union of every column's top-k tokens, matched by text (shared_axis), marked `on` under their shared label. A
    token's top-k place never changes with the controls (they keep the order), so the union is fixed per prompt."""
    import numpy as np
    import pandas as pd

    from dashboard import instrument
    from dashboard.payload import payload

    labels, found = shared_axis([(tok, logits) for _, tok, logits, _ in columns], k)
    frames = []
    for g, ((name, _, logits, own), ids) in enumerate(zip(columns, found)):
        on = {i: label for label, i in ids.items() if bool(torch.isfinite(logits[i]))}  # id -> label
        data = payload(logits, [], lambda xs: [on.get(i, "") for i in xs], top=k, extra=list(on))  # (only the
        # tokens on the axis are drawn: the rest may as well be bins, top-k past them unpacks its bin)
        frame = instrument.frame(data, group=g, name=name,
                                 ot=own.temperature if own else np.nan, op=own.top_p if own else np.nan)
        frames.append(frame.assign(on=frame["id"].isin(list(on)).astype(int)))
    return pd.concat(frames, ignore_index=True), len(labels)
