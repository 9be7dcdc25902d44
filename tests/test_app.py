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
    assert len(at.get("vega_lite_chart")) == 1
    path = at.session_state["nt_path"]
    top = int(path.logits.argmax())
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["Tokens left"] == "49,152" and metrics["Mass kept"] == "100.0%"
    at.button(key="nt_append").click().run()
    assert not at.exception
    path = at.session_state["nt_path"]
    assert path.ids[-1] == top and [s.how for s in path.steps] == ["most likely"]
    history = at.dataframe[0].value
    assert history["id"].tolist() == [top] and history["rank"].tolist() == [1]
    at.button(key="nt_undo").click().run()
    assert len(at.session_state["nt_path"].steps) == 0


@pytest.fixture
def app_model(smollm):
    """The model object the running app uses: the process-wide loaded copy, not a test's own."""
    from dashboard import models

    return models.LOADED.get("smollm2-135m").model


class ForwardCounter:
    """Counts forward calls of the shared model while active."""

    def __init__(self, model):
        self.n = 0
        self.handle = model.register_forward_hook(self._hook)

    def _hook(self, *args):
        self.n += 1

    def close(self):
        self.handle.remove()


@pytest.mark.parametrize(
    "slider, value, changed, prompt",
    [
        ("temperature", 0.5, "Entropy after", SEED_PROMPT),
        ("top_k", 5, "Tokens left", SEED_PROMPT),
        ("top_p", 0.5, "Tokens left", SEED_PROMPT),
        ("min_p", 0.2, "Tokens left", SEED_PROMPT),
        ("repetition_penalty", 1.5, "Entropy after", "one two one two one two one"),  # the likely " two" repeats
    ],
)
def test_moving_a_slider_changes_after_figures_without_a_forward(app_model, slider, value, changed, prompt):
    at = open_page("pages/next-token.py", prompt=prompt)
    assert at.session_state["nt_path"].model is app_model
    before = {m.label: m.value for m in at.metric}
    counter = ForwardCounter(app_model)
    try:
        at.slider(key=slider).set_value(value).run()
    finally:
        counter.close()
    after = {m.label: m.value for m in at.metric}
    assert not at.exception
    assert counter.n == 0  # only the cheap processing reruns
    counter = ForwardCounter(app_model)
    try:
        at.button(key="nt_append").click().run()
    finally:
        counter.close()
    assert counter.n == 1  # an append is one incremental forward (the counter does count)
    assert after[changed] != before[changed]
    assert after["Entropy before"] == before["Entropy before"]


def test_sample_undo_branch_keep_path_and_cache_consistent(smollm):
    import torch

    from dashboard.generation import next_token_logits

    at = open_page("pages/next-token.py")
    at.number_input(key="seed").set_value(5).run()
    at.button(key="nt_sample").click().run()
    first = at.session_state["nt_path"].steps[0].token_id
    at.button(key="nt_append").click().run()
    at.button(key="nt_sample").click().run()
    path = at.session_state["nt_path"]
    assert [s.how.split(" ")[0] for s in path.steps] == ["sampled", "most", "sampled"]
    torch.testing.assert_close(path.logits, next_token_logits(smollm.model, path.ids), rtol=0, atol=1e-4)
    at.selectbox(key="nt_branch_at").set_value(2).run()
    at.button(key="nt_branch").click().run()
    path = at.session_state["nt_path"]
    assert len(path.steps) == 1 and path.steps[0].token_id == first
    assert path.cache.get_seq_length() == len(path.ids)
    torch.testing.assert_close(path.logits, next_token_logits(smollm.model, path.ids), rtol=0, atol=1e-4)
    at.button(key="nt_reset").click().run()
    at.button(key="nt_sample").click().run()
    assert at.session_state["nt_path"].steps[0].token_id == first  # same seed, same draw


def test_where_is_reports_rank_and_probability(smollm):
    at = open_page("pages/next-token.py")
    at.text_input(key="nt_find").set_value(" AI").run()
    path = at.session_state["nt_path"]
    probs = path.logits.softmax(-1)
    ai = smollm.tokenizer(" AI", add_special_tokens=False)["input_ids"][0]
    rank = int((probs > probs[ai]).sum()) + 1
    assert f"rank **{rank}**" in texts(at)


def test_tokens_shown_slider(smollm):
    at = open_page("pages/next-token.py")
    at.slider(key="nt_show").set_value(5).run()
    assert not at.exception and at.slider(key="nt_show").value == 5


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


def test_generate_greedy_writes_text_with_speed_and_ranks(smollm):
    at = open_page("pages/generate.py")
    n_prompt = len(encode(smollm.tokenizer, "Once upon a time, generative models"))
    assert at.slider(key="max_new_tokens").value == 100 - n_prompt  # a total of 100, like max_length=100
    at.slider(key="max_new_tokens").set_value(12).run()
    at.button(key="gen_go").click().run()
    assert not at.exception
    run, scores = at.session_state["gen_last"]
    assert len(run.new_ids) == 12 and run.reason == "length"
    assert [s.rank for s in scores] == [1] * 12  # greedy tokens are all the model's top choice
    values = {m.label: m.value for m in at.metric}
    assert values["New tokens"] == "12" and float(values["Tokens per second"]) > 0


@pytest.mark.parametrize("strategy, precision", [("sample", "fp32"), ("beam", "fp32"), ("greedy", "bf16")])
def test_generate_other_strategies(smollm, strategy, precision):
    at = open_page("pages/generate.py")
    at.radio(key="strategy").set_value(strategy).run()
    at.radio(key="precision").set_value(precision).run()
    at.slider(key="max_new_tokens").set_value(8).run()
    at.button(key="gen_go").click().run()
    assert not at.exception
    run, scores = at.session_state["gen_last"]
    assert run.settings.strategy == strategy and run.settings.precision == precision
    assert 1 <= len(run.new_ids) <= 8 and len(scores) == len(run.new_ids)
    if strategy == "greedy":
        assert all(s.rank == 1 for s in scores)  # scored by the model that wrote it


def test_score_text_gives_perplexity_and_table(smollm):
    at = open_page("pages/generate.py")
    at.text_area(key="score_text").set_value("The quick brown fox jumps over the lazy dog.").run()
    assert not at.exception
    metrics = {m.label: m.value for m in at.metric}
    assert float(metrics["Perplexity"]) > 1
    table = at.dataframe[-1].value
    assert table["position"].iloc[0] == 1 and (table["rank"] >= 1).all()
