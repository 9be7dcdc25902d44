"""Shannon's guessing game, the pure part: a typed guess mapped to the model's token after the text, and the score
(the class's cross-entropy from its guess frequencies against the model's, per-learner hits, who was closest)."""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass, field
from typing import Hashable, Mapping, Sequence

from dashboard.tokens import encode, visible

# No space goes before these after a word ("Paris." not "Paris ."); every other guess after a word gets one.
NO_SPACE_BEFORE = frozenset(".,;:!?)]}%…'’”»")


@dataclass(frozen=True)
class MappedGuess:
    """A typed guess as the model's token: its id, how it is shown (␣ for a leading space) and a note."""

    typed: str
    token_id: int
    shown: str
    n_tokens: int  # how many tokens the whole guess is after this text (the first one counts)
    note: str = ""  # "" when the guess is exactly one token as typed


def _written_form(text: str, guess: str) -> str:
    """`guess` as the model would write it after `text`: a leading space after a word, none after a space or
    before closing punctuation."""
    if not text or text[-1].isspace() or guess[0] in NO_SPACE_BEFORE or guess[0].isspace():
        return guess
    return " " + guess


def map_guess(tokenizer, text: str, guess: str) -> MappedGuess:
    """The model's token for `guess` typed after `text` (its first token when it is several), with a note."""
    if not isinstance(text, str):
        raise ValueError(f"text: expected a string, got {type(text).__name__}")
    if not isinstance(guess, str) or not guess.strip():
        raise ValueError(f"guess: expected a non-empty string, got {guess!r}")
    guess = guess.strip()
    form = _written_form(text, guess)
    context = encode(tokenizer, text) if text else []
    whole = encode(tokenizer, text + form)
    if whole[: len(context)] == context and len(whole) > len(context):
        ids = whole[len(context):]  # tokenized in place: what the model would have to write
    else:  # the text's last token merges with the guess (the text ends in a space, or mid-word): alone
        ids = encode(tokenizer, form)
    if not ids:
        raise ValueError(f"guess: {guess!r} gives no token")
    shown = visible(tokenizer.decode([ids[0]]))
    notes = []
    if form != guess:
        notes.append("a space goes before it after a word")
    if len(ids) > 1:
        parts = "·".join(visible(tokenizer.decode([i])) for i in ids[:6]) + ("·…" if len(ids) > 6 else "")
        notes.append(f"it is {len(ids)} tokens here ({parts}): the first, {shown}, counts")
    return MappedGuess(guess, int(ids[0]), shown, len(ids), "; ".join(notes))


# --------------------------------------------------------------------------- the score


@dataclass(frozen=True)
class Round:
    """One round's inputs to the score: each learner's guessed token id (None: no token), the true token id
    (None: not known, the round is not scored) and the model's probability of the true token."""

    guesses: Mapping[Hashable, int | None]
    true_id: int | None = None
    model_p_true: float | None = None


@dataclass(frozen=True)
class Score:
    """The game's score: bits/token of the class and of the model over the scored rounds, and hits."""

    class_bits: float | None  # mean -log2 p_class(true) over scored rounds (None: no round scored)
    model_bits: float | None  # mean -log2 p_model(true) over the scored rounds that have it
    n_scored: int
    alpha: float
    per_round: list[dict] = field(default_factory=list)
    hits: dict = field(default_factory=dict)  # learner -> rounds whose true token they guessed


def default_alpha(vocab_size: int) -> float:
    """The smoothing pseudo-count per token, 1 / vocab_size: one imaginary guess spread over the vocabulary."""
    return 1.0 / _positive_int(vocab_size, "vocab_size")


def _positive_int(value, name: str) -> int:
    """`value` as an int >= 1, or ValueError naming `name`."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{name}: expected an integer >= 1, got {value!r}")
    return value


def _token(value, name: str, vocab_size: int) -> int:
    """`value` as a token id in [0, vocab_size), or ValueError naming `name`."""
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value < vocab_size:
        raise ValueError(f"{name}: expected a token id in [0, {vocab_size}), got {value!r}")
    return value


def class_probability(guessed: Sequence[int | None], true_id: int, vocab_size: int, alpha: float | None = None) -> float:
    """The class's probability of `true_id` from its guesses, add-alpha smoothed over the vocabulary:
    p = (count(true_id) + alpha) / (n + alpha * vocab_size), n = number of guesses (a guess with no token counts
    in n, for no token). alpha defaults to 1 / vocab_size (see `score`)."""
    vocab_size = _positive_int(vocab_size, "vocab_size")
    _token(true_id, "true_id", vocab_size)
    alpha = default_alpha(vocab_size) if alpha is None else alpha
    if not (isinstance(alpha, (int, float)) and math.isfinite(alpha) and alpha > 0):
        raise ValueError(f"alpha: expected a finite number > 0, got {alpha!r}")
    guessed = list(guessed)
    for g in guessed:
        if g is not None:
            _token(g, "guesses", vocab_size)
    hits = sum(1 for g in guessed if g == true_id)
    return (hits + alpha) / (len(guessed) + alpha * vocab_size)


def score(rounds: Sequence[Round], vocab_size: int, alpha: float | None = None) -> Score:
    """The class's and the model's bits/token on the true tokens, per round and on average, and each learner's hits.

    Class: p = (count + alpha) / (n + alpha * V) per scored round (class_probability), bits = -log2 p, averaged.
    alpha = 1/V by default: the prior is worth one guess in total. Laplace's alpha = 1 (or 0.5) would be worth V
    (V/2) guesses, 25,128 for GPT-2's V = 50,257, and swamp a class of 30: a round all 30 got right would still cost
    log2((30 + 25128.5) / 30.5) = 9.7 bits, near a round nobody got (15.6), so the score could not tell them apart.
    With 1/V a unanimous hit of 30 costs log2(31 / 30) = 0.05 bits and a round nobody got log2(31 V) = 20.6 bits:
    a class that puts no mass on the true token pays for it, as a model would. Model: -log2 of its probability
    of the true token, averaged over the scored rounds that have it. Rounds without a true token are not scored."""
    vocab_size = _positive_int(vocab_size, "vocab_size")
    alpha = default_alpha(vocab_size) if alpha is None else alpha
    per_round, hits = [], Counter()
    class_total = model_total = 0.0
    n_model = 0
    for i, rnd in enumerate(rounds):
        if not isinstance(rnd, Round):
            raise ValueError(f"rounds[{i}]: expected a guessing.Round, got {type(rnd).__name__}")
        for learner in rnd.guesses:
            hits.setdefault(learner, 0)
        if rnd.true_id is None:
            per_round.append({"round": i + 1, "scored": False})
            continue
        p_class = class_probability(list(rnd.guesses.values()), rnd.true_id, vocab_size, alpha)
        row = {"round": i + 1, "scored": True, "n_guesses": len(rnd.guesses), "class_p": p_class,
               "class_bits": -math.log2(p_class), "model_p": rnd.model_p_true, "model_bits": None}
        hits.update(learner for learner, g in rnd.guesses.items() if g == rnd.true_id)
        class_total += row["class_bits"]
        if rnd.model_p_true is not None:
            p = rnd.model_p_true
            if not (isinstance(p, (int, float)) and 0 < p <= 1):
                raise ValueError(f"rounds[{i}].model_p_true: expected a probability in (0, 1], got {p!r}")
            row["model_bits"] = -math.log2(p)
            model_total += row["model_bits"]
            n_model += 1
        per_round.append(row)
    n = sum(1 for r in per_round if r["scored"])
    return Score(class_total / n if n else None, model_total / n_model if n_model else None, n, alpha,
                 per_round, dict(hits))


@dataclass(frozen=True)
class Closest:
    """Who was closest in a round: the learners, the token they guessed and why ("hit" or "model")."""

    learners: list
    token_id: int | None
    reason: str  # "hit": they guessed the true token; "model": the model gives their guess the most probability
    p: float | None = None  # the model's probability of that token


def closest(guesses: Mapping[Hashable, int | None], model_probs, true_id: int | None = None) -> Closest:
    """The learners who guessed the true token, else those whose guess the model finds most likely (ties: all);
    `model_probs[token_id]` is the model's probability (a list, array or mapping)."""
    if not isinstance(guesses, Mapping):
        raise ValueError(f"guesses: expected a mapping learner -> token id, got {type(guesses).__name__}")
    if true_id is not None:
        hit = [learner for learner, g in guesses.items() if g == true_id]
        if hit:
            return Closest(hit, true_id, "hit", _prob(model_probs, true_id))
    best, who = None, []
    for learner, g in guesses.items():
        if g is None:
            continue
        p = _prob(model_probs, g)
        if best is None or p > best[1]:
            best, who = (g, p), [learner]
        elif p == best[1]:
            who.append(learner)
    if best is None:
        return Closest([], None, "none")
    return Closest(who, best[0], "model", best[1])


def _prob(model_probs, token_id: int) -> float:
    """model_probs[token_id] as a float in [0, 1], or ValueError."""
    if isinstance(token_id, bool) or not isinstance(token_id, int) or token_id < 0:
        raise ValueError(f"guesses: a token id is an integer >= 0, got {token_id!r}")
    try:
        p = float(model_probs[token_id])
    except (IndexError, KeyError, TypeError):
        raise ValueError(f"model_probs: no probability for token {token_id!r}") from None
    if not 0 <= p <= 1:
        raise ValueError(f"model_probs: probability of token {token_id} is {p!r}, not in [0, 1]")
    return p
