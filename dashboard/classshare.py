"""What the Class pages of a room share in this process, without Streamlit: the model's next-token probabilities
after a round's text (one forward per text) and a revealed round's view (the chart's spec, the model's top 10, the
true token, who was closest), each built once for every session that asks at the same time (rooms_guard.SharedReads,
single-flight)."""

from __future__ import annotations

import logging
import math
from concurrent.futures import ThreadPoolExecutor

from dashboard import classgame
from dashboard.guessing import closest
from dashboard.numbers import probability
from dashboard.rooms import RoomStore
from dashboard.rooms_guard import SharedReads

logger = logging.getLogger(__name__)
_PROBS = SharedReads(ttl_s=math.inf, size=64, copy=None)  # (model key, ids) -> probabilities, process-wide


def probs_after(backend, ids: list[int]):
    """The model's next-token probabilities after `ids` (an engine's top N: the others are 0): one forward per
    text for every session of this process (the forty learners who follow a reveal at once wait for the first's
    forward instead of each running one). Never changed by a caller."""
    ids = list(ids)[-max(1, backend.context_length - 1):]
    return _PROBS.get((backend.spec.key, tuple(ids)),
                      lambda: classgame.model_probs(backend.next_logits([ids])[0], backend.top_n is not None))


_PREFETCH = ThreadPoolExecutor(1, thread_name_prefix="class-prefetch")  # one forward ahead at a time; joined at
# exit (a daemon thread still inside torch's forward when the interpreter ended aborted the process: rc 134)


def prefetch(backend, ids: list[int]) -> None:
    """Queue the model's forward after `ids` on a worker thread (a kept answer returns at once), so the Reveal
    pressed later finds it done: while the class guesses, not while forty pages wait for the reveal (bench
    class40: the forward was 43% of the teacher's page runs). A failure is logged; the reveal then reads again."""
    def run():
        try:
            probs_after(backend, ids)
        except Exception:  # an engine or model fault: the reveal's own read reports it in the page
            logger.warning("prefetching the round's probabilities failed", exc_info=True)

    _PREFETCH.submit(run)


_SCORES = SharedReads(ttl_s=math.inf, size=64, copy=None)  # the score chart's spec by its rows, process-wide


def score_spec(per_round) -> dict:
    """The score chart's Vega-Lite spec for `per_round` (classgame.score_chart), built once per distinct table for
    every page of this process (Altair's construction and validation were 12% of the teacher's runs). Never
    changed by a caller."""
    key = tuple(map(tuple, per_round.itertuples(index=False)))
    return _SCORES.get((tuple(per_round.columns), key), lambda: classgame.score_chart(per_round).to_dict())


_REVEALS = SharedReads(ttl_s=math.inf, size=256, copy=None)  # a revealed round as its pages show it, process-wide


def shared_reveal(store: RoomStore, code: str, state: dict, backend) -> dict:
    """What every page of the room shows of its revealed round (see _reveal), built once for all of this server's
    sessions: the forty learners who follow a reveal at once reuse the first one's chart instead of each building it
    (bench class40). Never changed by a caller."""
    counts = tuple((c["token_id"], c["shown"], c["n"]) for c in state.get("counts", []))
    key = (code, state["round"], state["model_key"], tuple(state["ids"]), counts, state.get("true_id"))
    return _REVEALS.get(key, lambda: _reveal(store, code, state, backend))


def _reveal(store: RoomStore, code: str, state: dict, backend) -> dict:
    """What every page shows of a revealed round: the chart's Vega-Lite spec (None: nobody guessed), the model's
    top 10 (probabilities as text), the true token's and the closest's lines (plain text, for the caller to escape),
    and the model's probabilities (for each learner's own guess). Who was closest: the best guessed token(s) from
    the counts, then store.who_guessed for their names alone (no one else's guess leaves the database)."""
    tok, true_id = backend.tokenizer, state.get("true_id")
    probs = probs_after(backend, state["ids"])
    frame = classgame.reveal_frame(state.get("counts", []), probs, true_id)
    top = classgame.top_frame(tok, probs)
    true = None
    if true_id is not None:
        p = float(probs[true_id])
        rated = f"the model gave it {probability(p)}" if p > 0 else f"not in the model's top {backend.top_n}"
        true = f"The passage's next token: {classgame.token_label(tok, true_id)} ({rated})"
    known = [int(i) for i in frame["id"].dropna() if 0 <= int(i) < probs.shape[-1]]
    best = closest({i: i for i in known}, probs, true_id)  # the best guessed token(s), then who guessed them
    named = store.who_guessed(code, state["round"], best.learners) if best.learners else []
    return {"spec": None if frame.empty else classgame.reveal_chart(frame).to_dict(),
            "top": top.assign(probability=top["probability"].map(probability)).drop(columns=["id"]),
            "true": true, "true_id": true_id, "probs": probs, "top_n": backend.top_n,
            "closest": classgame.closest_line(dict(enumerate(t for _, t in named)), probs, true_id,
                                              dict(enumerate(n for n, _ in named)), tok)}
