"""The guessing game's pure part (dashboard/guessing.py): a typed guess as GPT-2's token after the text, the score
worked out by hand on a tiny example, who was closest; and one whole game through the rooms store on SQLite and on
the real PostgreSQL (tests/pg.py)."""

from __future__ import annotations

import math

import pytest

from dashboard import guessing, rooms_schema
from dashboard.guessing import Round, class_probability, closest, map_guess, score
from dashboard.rooms import RoomStore
from pg import db_url, pg_server, pg_url  # noqa: F401  (fixtures)

PARIS, SPACE_PARIS, SPACE_THE = 40313, 6342, 262
FRANCE = "The capital of France is"


# --------------------------------------------------------------------------- a guess as the model's token


def test_a_word_after_a_word_is_the_token_with_its_leading_space(gpt2_tokenizer):
    m = map_guess(gpt2_tokenizer, FRANCE, "Paris")
    assert (m.token_id, m.shown, m.n_tokens) == (SPACE_PARIS, "␣Paris", 1)
    assert "space" in m.note


def test_after_a_space_or_at_the_start_no_space_is_added(gpt2_tokenizer):
    for text in (FRANCE + " ", "", "Hello\n"):
        m = map_guess(gpt2_tokenizer, text, "Paris")
        assert (m.token_id, m.shown, m.note) == (PARIS, "Paris", ""), text


def test_punctuation_after_a_word_takes_no_space(gpt2_tokenizer):
    assert map_guess(gpt2_tokenizer, FRANCE, ".").shown == "."
    assert map_guess(gpt2_tokenizer, "The cat", "'s").shown == "'s"


def test_a_guess_of_several_tokens_counts_its_first_and_says_so(gpt2_tokenizer):
    m = map_guess(gpt2_tokenizer, "He said", "  Parisian ")
    assert (m.typed, m.token_id, m.shown, m.n_tokens) == ("Parisian", SPACE_PARIS, "␣Paris", 2)
    assert "2 tokens here (␣Paris·ian): the first, ␣Paris, counts" in m.note


@pytest.mark.parametrize("text, guess, shown, n_tokens", [
    ("Hello", ",", ",", 1), ("(see", ")", ")", 1), ("x = ", "42", "42", 1), ("Tabs\t", "go", "go", 1),
    ("naïve", "café", "␣café", 1), ("über", "alles", "␣all", 2), ("She said", '"yes', '␣"', 2),
    (FRANCE + " ", "Paris Hilton", "Paris", 2),  # the text's final space token merges with the guess: taken alone
])
def test_the_mapping_is_the_token_the_model_would_write_next(gpt2_tokenizer, text, guess, shown, n_tokens):
    """The mapped token is the first one GPT-2 writes after the text's own tokens for the guess as written."""
    m = map_guess(gpt2_tokenizer, text, guess)
    assert (m.shown, m.n_tokens) == (shown, n_tokens)
    context = gpt2_tokenizer(text, add_special_tokens=False)["input_ids"]
    form = guess if shown[0] != "␣" else " " + guess
    whole = gpt2_tokenizer(text + form, add_special_tokens=False)["input_ids"]
    if whole[: len(context)] == context:  # no merge across the boundary: the token after the text's tokens
        assert whole[len(context)] == m.token_id


@pytest.mark.parametrize("text, guess, name", [(FRANCE, "", "guess"), (FRANCE, "   ", "guess"), (FRANCE, None, "guess"),
                                               (None, "Paris", "text")])
def test_bad_guesses_name_the_argument(gpt2_tokenizer, text, guess, name):
    with pytest.raises(ValueError, match=f"^{name}: "):
        map_guess(gpt2_tokenizer, text, guess)


# --------------------------------------------------------------------------- the score, by hand


def test_the_score_of_a_tiny_game_worked_out_by_hand():
    """V = 10, alpha = 0.5. Round 1: A and B guess 3, C guesses 5, true 3: p = (2 + .5) / (3 + 5) = 0.3125,
    1.678 bits; the model's p = 0.5, 1 bit. Round 2: A 1, B no token, C 2, true 7: p = .5 / 8 = 0.0625, 4 bits; the
    model 0.125, 3 bits. Round 3 has no true token: not scored. Class (1.678 + 4) / 2 = 2.839, model 2.0 bits/token."""
    rounds = [Round({"A": 3, "B": 3, "C": 5}, 3, 0.5), Round({"A": 1, "B": None, "C": 2}, 7, 0.125),
              Round({"A": 4}, None, None)]
    s = score(rounds, vocab_size=10, alpha=0.5)
    assert s.per_round[0]["class_p"] == pytest.approx(0.3125) and s.per_round[1]["class_p"] == pytest.approx(0.0625)
    assert s.class_bits == pytest.approx((math.log2(1 / 0.3125) + 4) / 2) == pytest.approx(2.8390359525)
    assert s.model_bits == pytest.approx(2.0)
    assert (s.n_scored, s.hits, s.per_round[2]) == (2, {"A": 1, "B": 1, "C": 0}, {"round": 3, "scored": False})


def test_the_default_smoothing_is_one_guess_spread_over_the_vocabulary():
    """alpha = 1/V: round 1 above gives (2 + .1) / (3 + 1) = 0.525; a unanimous hit of 30 with GPT-2's vocabulary
    costs log2(31/30) bits, a round nobody got log2(31 * 50257) = 20.57 bits."""
    assert class_probability([3, 3, 5], 3, 10) == pytest.approx(0.525)
    assert -math.log2(class_probability([5] * 30, 5, 50257)) == pytest.approx(math.log2(31 / 30), abs=1e-5)
    assert -math.log2(class_probability([6] * 30, 5, 50257)) == pytest.approx(20.5712, abs=1e-4)
    assert score([Round({"A": 1}, 1)], 10).alpha == pytest.approx(0.1)


def test_a_game_with_no_true_token_is_not_scored():
    s = score([Round({"A": 1}), Round({})], vocab_size=10)
    assert (s.class_bits, s.model_bits, s.n_scored, s.hits) == (None, None, 0, {"A": 0})


@pytest.mark.parametrize("call, name", [
    (lambda: score([Round({"A": 1}, 1)], 0), "vocab_size"),
    (lambda: score([Round({"A": 1}, 1)], 10, alpha=0), "alpha"),
    (lambda: score([Round({"A": 1}, 1)], 10, alpha=float("nan")), "alpha"),
    (lambda: score([Round({"A": 1}, 10)], 10), "true_id"),
    (lambda: score([Round({"A": -1}, 1)], 10), "guesses"),
    (lambda: score([Round({"A": 1}, 1, 0.0)], 10), r"rounds\[0\].model_p_true"),
    (lambda: score([Round({"A": 1}, 1, 1.5)], 10), r"rounds\[0\].model_p_true"),
    (lambda: score([{"A": 1}], 10), r"rounds\[0\]"),
    (lambda: closest({"A": -1}, [0.5, 0.5]), "guesses"),
    (lambda: closest({"A": 5}, [0.5, 0.5]), "model_probs"),
    (lambda: closest([1, 2], [0.5, 0.5]), "guesses"),
])
def test_bad_inputs_name_the_argument(call, name):
    with pytest.raises(ValueError, match=f"^{name}: "):
        call()


def test_closest_is_who_hit_the_true_token_else_whose_guess_the_model_likes_most():
    probs = [0.05, 0.2, 0.3, 0.3, 0.15]
    assert closest({"A": 3, "B": 3, "C": 1}, probs, true_id=3) == guessing.Closest(["A", "B"], 3, "hit", 0.3)
    assert closest({"A": 1, "B": None, "C": 4}, probs, true_id=0) == guessing.Closest(["A"], 1, "model", 0.2)
    assert closest({"A": 2, "B": 3}, probs).learners == ["A", "B"]  # a tie: both
    assert closest({"A": None}, probs) == guessing.Closest([], None, "none")
    assert closest({"A": 1}, {1: 0.9}).p == 0.9  # a mapping of probabilities works too


# --------------------------------------------------------------------------- a whole game through the store


def test_a_game_through_the_store_is_scored_from_its_export(db_url, gpt2_tokenizer):  # noqa: F811
    eng = rooms_schema.make_engine(db_url)
    store = RoomStore(eng)
    store.migrate()
    passage = gpt2_tokenizer(" the city of light", add_special_tokens=False)["input_ids"]
    prompt = gpt2_tokenizer(FRANCE, add_special_tokens=False)["input_ids"]
    code, key = store.create_room("gpt2", FRANCE, prompt, passage)
    players = {name: store.join(code, name)[0] for name in ("Ana", "Bo", "Cy")}
    typed = [{"Ana": "the", "Bo": "Paris", "Cy": "the"}, {"Ana": "city", "Bo": "capital"}]
    for i, guesses in enumerate(typed):
        text = store.public_state(code)["text"]
        for name, guess in guesses.items():
            m = map_guess(gpt2_tokenizer, text, guess)
            store.guess(code, players[name], i, guess, m.token_id, m.shown)
        store.reveal(code, key, i)
        true_id = store.public_state(code)["true_id"]
        store.next_round(code, key, i, true_id, gpt2_tokenizer.decode([true_id]), "true")
    assert store.public_state(code)["text"] == FRANCE + " the city"
    rows = store.export_rows(code, key)
    rounds = [Round({r["name"]: r["token_id"] for r in rows if r["round"] == n},
                    next(r["true_id"] for r in rows if r["round"] == n), 0.25) for n in (1, 2)]
    s = score(rounds, vocab_size=len(gpt2_tokenizer), alpha=0.5)
    v = 50257 * 0.5
    assert rounds[0].true_id == SPACE_THE and s.hits == {"Ana": 2, "Bo": 0, "Cy": 1}
    assert s.class_bits == pytest.approx((math.log2((3 + v) / 2.5) + math.log2((2 + v) / 1.5)) / 2)
    assert s.model_bits == pytest.approx(2.0)
    eng.dispose()
