"""One format for a probability on every page."""

import math
import re

import pytest
import torch

from dashboard.numbers import probability


@pytest.mark.parametrize("p, text", [
    (1.0, "100.00%"), (0.28224, "28.22%"), (0.0031, "0.31%"), (0.001, "0.10%"), (0.00012, "0.012%"),
    (0.0001, "0.010%"), (3.1e-7, "3.1×10⁻⁷"), (9.96e-5, "1.0×10⁻⁴"), (2.5e-12, "2.5×10⁻¹²"), (0.0, "0%"),
])
def test_probability_reads_with_significant_figures(p, text):
    assert probability(p) == text


def test_no_probability_of_a_real_distribution_reads_as_zero(gpt2_tokenizer, tiny_gpt2):
    """Every one of a real distribution's 50,257 probabilities reads as a number that is not zero."""
    ids = torch.tensor([gpt2_tokenizer.encode("Udacity is the best place to learn about generative")])
    probs = torch.softmax(tiny_gpt2(ids).logits[0, -1].float() * 8, -1)  # sharpened: a long, tiny tail
    assert float(probs.min()) < 1e-7
    for p in probs.tolist():
        text = probability(p)
        assert text != "0%" and not re.fullmatch(r"0\.0+%", text), (p, text)
        if "×10" in text:  # the text gives the value back to two significant figures
            m, e = text.split("×10")
            e = int(e.translate(str.maketrans("⁻⁰¹²³⁴⁵⁶⁷⁸⁹", "-0123456789")))
            assert math.isclose(float(m) * 10 ** e, p, rel_tol=0.06), (p, text)


@pytest.mark.parametrize("bad", [-0.1, 1.5, math.nan, math.inf])
def test_a_value_that_is_no_probability_is_refused(bad):
    with pytest.raises(ValueError, match="`p`"):
        probability(bad)
