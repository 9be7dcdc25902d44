"""The Class page's pure part (dashboard/classgame.py): a passage made fit for a room, the model's probabilities on
a local model and an engine, the reveal table, the score over rounds and the export, and the charts exported."""

from __future__ import annotations

import json
import math
import re

import pytest
import torch

from dashboard import classgame
from dashboard.exports import chart_svg, csv_bytes


def test_a_passage_loses_line_breaks_and_invisible_characters_only():
    assert classgame.flatten_passage("It was\na dark\tnight.\u200b") == ("It was a dark night.", True)
    assert classgame.flatten_passage("Plain  text") == ("Plain  text", False)


def test_probabilities_are_a_softmax_locally_and_the_engines_own_on_an_engine():
    logits = torch.tensor([0.0, 1.0, 2.0])
    assert classgame.model_probs(logits, False).sum() == pytest.approx(1.0)
    engine = torch.tensor([math.log(0.5), float("-inf"), math.log(0.25)])
    assert classgame.model_probs(engine, True).tolist() == pytest.approx([0.5, 0.0, 0.25])


def test_the_reveal_table_counts_shares_and_the_models_probability():
    probs = torch.tensor([0.1, 0.6, 0.3])
    counts = [{"token_id": 2, "shown": "␣b", "n": 1}, {"token_id": 1, "shown": "␣a", "n": 3},
              {"token_id": None, "shown": "??", "n": 1}]
    frame = classgame.reveal_frame(counts, probs, true_id=2)
    assert frame["token"].tolist() == ["␣a", "␣b", "??"]
    assert frame["class share"].tolist() == [0.6, 0.2, 0.2]
    assert frame["model probability"].tolist()[:2] == pytest.approx([0.6, 0.3]) and frame["true"].tolist()[1]
    spec = json.loads(classgame.reveal_chart(frame).to_json())
    assert spec["encoding"]["yOffset"]["field"] == "who"
    assert b"<svg" in chart_svg(classgame.reveal_chart(frame)).lstrip()[:200]


def test_the_score_uses_the_passage_token_else_the_appended_one():
    probs = torch.tensor([0.5, 0.25, 0.25])
    rounds = [{"round": 0, "ids": [9], "state": "revealed", "true_id": 1, "chosen_id": 1, "chosen_by": "true"},
              {"round": 1, "ids": [9, 1], "state": "revealed", "true_id": None, "chosen_id": 0, "chosen_by": "model"},
              {"round": 2, "ids": [9, 1, 0], "state": "open", "true_id": None, "chosen_id": None, "chosen_by": None}]
    rows = [{"round": 1, "learner_id": 7, "token_id": 1}, {"round": 1, "learner_id": 8, "token_id": 2},
            {"round": 2, "learner_id": 7, "token_id": 2}]
    result, per_round, hits = classgame.game_score(rounds, rows, lambda ids: probs, 3, {7: "Ada", 8: "Bo"})
    alpha = 1 / 3
    class_bits = [-math.log2((1 + alpha) / (2 + 1)), -math.log2((0 + alpha) / (1 + 1))]
    assert per_round["class bits"].tolist() == pytest.approx(class_bits)
    assert per_round["model bits"].tolist() == pytest.approx([2.0, 1.0])
    assert per_round["scored on"].tolist() == ["passage", "model"]
    assert result.class_bits == pytest.approx(sum(class_bits) / 2)
    assert dict(zip(hits["learner"], hits["hits"])) == {"Ada": 1, "Bo": 0}
    assert b"<svg" in chart_svg(classgame.score_chart(per_round)).lstrip()[:200]
    spec = classgame.score_chart(per_round).to_dict()
    assert spec["encoding"]["x"]["axis"]["labelAngle"] == 0  # round numbers upright (Vega turns ordinals 90°)


def test_a_token_an_engine_did_not_send_has_no_model_bits():
    probs = torch.tensor([1.0, 0.0])
    rounds = [{"round": 0, "ids": [1], "state": "revealed", "true_id": 1, "chosen_id": 1, "chosen_by": "true"}]
    result, per_round, _ = classgame.game_score(rounds, [], lambda ids: probs, 2, {})
    assert result.model_bits is None and result.n_scored == 1 and per_round["model bits"].isna().all()


def test_the_export_marks_hits_and_neutralises_formulas_in_csv():
    rounds = [{"round": 0, "ids": [1], "state": "revealed", "true_id": 5, "chosen_id": 5, "chosen_by": "true"}]
    rows = [{"round": 1, "text": "So", "learner_id": 1, "name": "=cmd()", "guess": "+x", "shown": "␣x",
             "token_id": 5, "chosen_text": " x", "chosen_by": "true"}]
    frame = classgame.export_frame(rows, rounds, {1: "=cmd()"})
    assert frame["hit"].tolist() == [True]
    csv = csv_bytes(frame).decode()
    assert "'=cmd()" in csv and "'+x" in csv


def test_the_closest_line_writes_the_probability_as_every_page_does():
    class Tok:
        def decode(self, ids):
            return {0: " Paris", 1: " the", 2: " Lyon"}[ids[0]]

    probs = torch.tensor([0.7725, 0.2266, 0.0009])
    line = classgame.closest_line({10: 0, 11: 2, 12: 0}, probs, None, {10: "Ada", 12: "Ed"}, Tok())
    assert line == "Closest: Ada, Ed, with ␣Paris (the model gives it 77.25%)."
    assert classgame.closest_line({11: 2}, probs, 2, {11: "Cy"}, Tok()) == "Cy guessed the true token, ␣Lyon."
    assert classgame.closest_line({}, probs, None, {}, Tok()) == "Nobody guessed a token this round."


def test_the_live_count_is_one_bar_of_who_guessed_among_who_joined_and_the_same_bytes_while_it_stays():
    import vl_convert

    spec = classgame.count_spec(3, 5)
    assert [(v["who"], v["n"]) for v in spec["data"]["values"]] == [("guessed", 3), ("not yet", 2)]
    assert spec["encoding"]["x"]["title"] == "3 of 5 who joined have guessed"
    assert spec["encoding"]["x"]["scale"]["domain"] == [0, 5]
    assert json.dumps(spec) == json.dumps(classgame.count_spec(3, 5)) != json.dumps(classgame.count_spec(4, 5))
    assert classgame.count_spec(0, 0)["encoding"]["x"]["title"] == "Nobody has joined yet"
    svg = vl_convert.vegalite_to_svg(spec)  # a valid spec that Vega draws: two bars, 3/5 and 2/5 of the width
    widths = sorted(float(w) for w in re.findall(r'<path aria-label="[^"]*who: [^"]*"[^>]*d="M[\d.]+,[\d.]+h([\d.]+)', svg))
    assert len(widths) == 2 and widths[1] / widths[0] == pytest.approx(1.5, rel=0.02), widths


def test_the_learners_line_says_so_far_while_open_and_revealed_after():
    from dashboard.classgame import follow_line

    state = {"round": 2, "n_guesses": 7, "n_learners": 9, "state": "open", "closed": False}
    assert follow_line(state) == "Round 3 · 7 of 9 guessed so far"
    assert follow_line({**state, "state": "revealed"}) == "Round 3 · revealed: 7 of 9 guessed"
    assert follow_line({**state, "state": "revealed", "closed": True}) == "Round 3 · the room is closed"

