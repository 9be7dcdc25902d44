"""Every page through Streamlit's AppTest, on the bundled model (and GPT-2's offline tokenizer)."""

import pytest
from streamlit.testing.v1 import AppTest

from dashboard.tokens import encode
from conftest import ROOT, SEED_IDS, SEED_PROMPT, SEED_TOKENS

pytestmark = pytest.mark.app


@pytest.fixture(autouse=True)
def _navigation_mode(monkeypatch):
    """AppTest re-detects Streamlit's legacy `pages/` mode before every run; a real server does so once and
    ui.page_guard() switches it off for good (a deep link's first run), which the browser tests cover.
    Here every run starts where a real server is after that first run."""
    from streamlit.runtime.pages_manager import PagesManager

    original = PagesManager.__init__

    def init(self, *args, **kwargs):
        original(self, *args, **kwargs)
        PagesManager.uses_pages_directory = False

    monkeypatch.setattr(PagesManager, "__init__", init)
TIMEOUT = 180  # the first run may load the model


def open_page(page: str, **params) -> AppTest:
    """A fresh session opened on a link: the entry runs with the query params, then the page."""
    at = AppTest.from_file(str(ROOT / "streamlit_app.py"), default_timeout=TIMEOUT)
    for key, value in params.items():
        at.query_params[key] = value
    at.run()  # AppTest resolves st.navigation's url paths only after a first run
    if page:
        at.switch_page(page)
        at.run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def texts(at) -> str:
    parts = [m.value for m in at.markdown] + [e.value for e in at.info] + [e.value for e in at.warning]
    parts += [e.value for e in at.error]
    return "\n".join(str(p) for p in parts)


def test_home_page_links_every_page(smollm):
    at = open_page("")
    assert "one token at a time" in at.title[0].value


def test_tokenize_gpt2_link_shows_the_seed_ids():
    at = open_page("pages/tokenize.py", model="gpt2", prompt=SEED_PROMPT)
    table = at.dataframe[0].value
    assert table["id"].tolist() == SEED_IDS
    assert table["token"].tolist() == [t.replace(" ", "␣") for t in SEED_TOKENS]
    assert at.metric[1].value == "12"
    assert at.session_state["model"] == "gpt2"


def test_tokenize_bundled_model_by_default(smollm):
    at = open_page("pages/tokenize.py")
    table = at.dataframe[0].value
    assert len(table) == 11  # SmolLM2 has a single token for " generative"
    assert at.text_area(key="prompt").value == SEED_PROMPT


def test_next_token_shows_real_distribution_and_append_changes_text(smollm):
    at = open_page("pages/next-token.py")
    frame = at.dataframe[0].value
    assert frame["probability"].is_monotonic_decreasing and len(frame) == 10
    assert len(at.get("vega_lite_chart")) == 1
    top = frame["id"].iloc[0]
    at.button(key="nt_append").click().run()
    assert not at.exception
    path = at.session_state["nt_path"]
    assert path.ids[-1] == top and len(path.steps) == 1
    assert "1 appended" in texts(at) or any("1 appended" in c.value for c in at.caption)
    at.button(key="nt_undo").click().run()
    assert len(at.session_state["nt_path"].steps) == 0


def test_next_token_k_slider_changes_rows(smollm):
    at = open_page("pages/next-token.py")
    at.slider(key="nt_show").set_value(3).run()
    assert len(at.dataframe[0].value) == 3


@pytest.mark.parametrize("page", ["pages/tokenize.py", "pages/next-token.py", "pages/generate.py"])
@pytest.mark.parametrize("prompt, expected", [("", "empty"), ("   \n  ", "only whitespace")])
def test_bad_prompt_gets_a_message_not_an_error(smollm, page, prompt, expected):
    at = open_page(page)
    at.text_area(key="prompt").set_value(prompt).run()
    assert not at.exception
    assert expected in texts(at)
    assert at.text_area(key="prompt").value == prompt  # nothing the user typed is lost


@pytest.mark.parametrize("bad", ["/etc/passwd", "https://evil.example/m", "gpt-17", "<script>x</script>"])
def test_unknown_model_in_link_falls_back_with_notice(smollm, bad):
    at = open_page("", model=bad)
    assert at.session_state["model"] == "smollm2-135m"
    assert "not one of the registered models" in texts(at)
    assert "<script>" not in "".join(w.value for w in at.warning).replace("'<script>x</script>'", "")


def test_gpt2_weights_unavailable_offline_shows_message(smollm):
    at = open_page("pages/next-token.py", model="gpt2")
    assert "not available here" in texts(at)


def test_generate_greedy_writes_text_with_speed(smollm):
    at = open_page("pages/generate.py")
    n_prompt = len(encode(smollm.tokenizer, "Once upon a time, generative models"))
    assert at.slider(key="gen_max_tokens").value == 100 - n_prompt  # a total of 100, like max_length=100
    at.slider(key="gen_max_tokens").set_value(12).run()
    at.button(key="gen_go").click().run()
    assert not at.exception
    run = at.session_state["gen_run"]
    assert len(run.new_ids) == 12 and run.error is None
    values = {m.label: m.value for m in at.metric}
    assert values["New tokens"] == "12"
    assert float(values["Tokens per second"]) > 0
    assert "Once upon a time, generative models" in texts(at)
