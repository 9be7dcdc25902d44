"""Generate links that replay (run=1) and link notices at the top of the page, through the app."""

import urllib.parse

import pytest
import torch

from dashboard.tokens import encode

from conftest import open_page, texts

pytestmark = pytest.mark.app
STORY = "Once upon a time, generative models"


def share_params(at) -> dict:
    at.button(key="ts_share").click().run()
    link = [c.value for c in at.code if c.value.startswith("http")][-1]
    return urllib.parse.parse_qs(urllib.parse.urlsplit(link).query)


def raw_greedy(model, tok, prompt: str, n: int) -> list[int]:
    ids = torch.tensor([encode(tok, prompt)])
    out = model.generate(input_ids=ids, attention_mask=torch.ones_like(ids), max_new_tokens=n, do_sample=False,
                         pad_token_id=tok.eos_token_id)
    return out[0, ids.shape[1]:].tolist()


def test_a_run_link_generates_once_with_its_settings(smollm, app_model):
    at = open_page("pages/generate.py", max_new_tokens="8", run="1")
    run, scores = at.session_state["gen_last"]
    assert run.new_ids == raw_greedy(app_model, smollm.tokenizer, STORY, 8)  # greedy: exactly raw generate's text
    assert len(scores) == 8 and all(s.rank == 1 for s in scores)
    at.run()  # a rerun of the same session does not generate again
    assert at.session_state["gen_last"][0] is run


@pytest.mark.parametrize("extra", [{"strategy": "sample", "seed": "5", "temperature": "0.9"},
                                   {"strategy": "beam", "num_beams": "3"}], ids=["sample", "beam"])
def test_the_share_link_of_a_generation_replays_the_same_text(smollm, extra):
    at = open_page("pages/generate.py", max_new_tokens="10", **extra)
    at.button(key="gen_go").click().run()
    run = at.session_state["gen_last"][0]
    params = share_params(at)
    assert params["run"] == ["1"] and params["max_new_tokens"] == ["10"]
    fresh = open_page("pages/generate.py", **{k: v[0] for k, v in params.items()})
    again = fresh.session_state["gen_last"][0]
    assert again.new_ids == run.new_ids and again.settings == run.settings


def test_no_run_in_the_link_once_the_settings_moved_on(smollm):
    at = open_page("pages/generate.py", max_new_tokens="6", run="1")
    assert "run" in share_params(at)
    at.slider(key="max_new_tokens").set_value(7).run()
    assert "run" not in share_params(at)  # the shown text is no longer what the link would make
    assert "gen_last" not in open_page("pages/generate.py", max_new_tokens="6").session_state  # no run, no work


def test_a_bad_run_value_is_a_notice_not_a_generation(smollm):
    at = open_page("pages/generate.py", max_new_tokens="4", run="yes please")
    assert "`run` = `'yes please'` is not 1" in texts(at)
    assert "gen_last" not in at.session_state


def test_link_notices_sit_above_the_page(smollm):
    at = open_page("pages/next-token.py", temperature="nan", top_k="-3")
    nodes = list(at.main)  # every element of the main area, in page order
    notice = next(i for i, n in enumerate(nodes) if n.type == "warning" and "NaN is not a number" in n.value)
    title = next(i for i, n in enumerate(nodes) if n.type == "title" and "Next token" in n.value)
    assert notice < title  # above the content, not below the fold
