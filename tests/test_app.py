"""Every page through Streamlit's AppTest, on the bundled model (and GPT-2's offline tokenizer)."""

import re

import pytest
import torch

from dashboard.loaded import LOADED
from dashboard.tokens import encode
from conftest import SEED_IDS, SEED_PROMPT, SEED_TOKENS, ForwardCounter, control, figures, move, open_page, texts

pytestmark = pytest.mark.app


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
    assert len(at.get("vega_lite_chart")) == 1  # the instrument: distribution, figures and draw in one chart
    path = at.session_state["nt_path"]
    top = int(path.logits.argmax())
    metrics = figures(at)
    assert metrics["Tokens left"] == "49,152" and metrics["Mass kept"] == "100.00%"
    at.button(key="nt_append").click().run()
    assert not at.exception
    path = at.session_state["nt_path"]
    assert path.ids[-1] == top and [s.how for s in path.steps] == ["most likely"]
    history = at.dataframe[0].value
    assert history["id"].tolist() == [top] and history["rank"].tolist() == [1]
    at.button(key="nt_undo").click().run()
    assert len(at.session_state["nt_path"].steps) == 0


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
    before = figures(at)
    counter = ForwardCounter(app_model)
    try:
        move(at, slider, value)
    finally:
        counter.close()
    after = figures(at)
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
    """One plain message: the model named once, why in words (no exception class), and what still works."""
    from dashboard import models

    at = open_page("pages/next-token.py", model="gpt2")
    error = " ".join(e.value for e in at.error)
    label = models.get_spec("gpt2").label
    assert "not available here" in error and error.count(label) == 1, error
    assert "offline" in error and "tokenizer works offline" in error
    assert not re.search(r"\((gaierror|\w+Error|timeout)\)", error), error


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


def test_generate_new_tokens_follow_the_prompt_to_a_total_of_100_until_moved(smollm):
    """The notebook's max_length=100: prompt plus new tokens make 100 whatever prompt is typed, until the person
    moves the slider; from then on their value stays."""
    at = open_page("pages/generate.py")
    count = lambda text: len(encode(smollm.tokenizer, text))  # noqa: E731
    at.text_area(key="prompt").input(SEED_PROMPT).run()
    assert at.slider(key="max_new_tokens").value == 100 - count(SEED_PROMPT) == 89
    other = "A much longer prompt, with quite a few more tokens in it than the seed sentence has"
    at.text_area(key="prompt").input(other).run()
    assert at.slider(key="max_new_tokens").value == 100 - count(other)
    at.slider(key="max_new_tokens").set_value(30).run()
    at.text_area(key="prompt").input(SEED_PROMPT).run()
    assert at.slider(key="max_new_tokens").value == 30  # moved by the person: theirs now
    assert not at.exception


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


# --------------------------------------------------------------------------- features with real values


def vega_chart(at, param: str | None = None):
    """(spec, rows) of the first Vega-Lite chart on the page (with selection parameter `param`, when given): the
    spec as a dict, and its data as a DataFrame (Streamlit ships the data apart from the spec, as Arrow)."""
    import json

    import pyarrow as pa

    for chart in at.get("vega_lite_chart"):
        spec = json.loads(chart.proto.spec)
        if param is None or any(p.get("name") == param for p in spec.get("params", [])):
            frames = [pa.ipc.open_stream(d.data.data).read_pandas() for d in chart.proto.datasets]
            return spec, frames[0] if frames else None
    raise AssertionError(f"no Vega-Lite chart with parameter {param!r} on the page")


@pytest.fixture
def tiny_local_gpt2(tmp_path, monkeypatch):
    """The operator's local tiny GPT-2 (GPT-2's vocabulary, random weights) registered through TOKENSCOPE_MODELS;
    its model key. Loaded models are forgotten afterwards."""
    from hubstub import make_tiny_gpt2

    from dashboard import models

    folder = make_tiny_gpt2(tmp_path / "tiny-gpt2")
    monkeypatch.setenv(models.MODELS_ENV, str(folder))
    yield "local-tiny-gpt2"
    LOADED.clear()


def test_compare_across_two_models_says_different_models_and_uses_each_models_numbers(smollm, tiny_local_gpt2):
    import torch

    from dashboard import models
    from dashboard.generation import next_token_logits

    at = open_page("pages/compare.py")
    at.button(key="cmp_add").click().run()  # three columns: bundled, tiny GPT-2, bundled
    at.selectbox(key="cmp_model_1").select(tiny_local_gpt2).run()
    assert not at.exception, [e.value for e in at.exception]
    assert at.query_params["cmodel"] == ["(sidebar model)", tiny_local_gpt2, "(sidebar model)"]
    tiny = LOADED.peek(tiny_local_gpt2)
    assert tiny is not None  # the column really ran on the other model

    rows = at.table[0].value
    by_pair = {r["pair"]: r for r in rows.to_dict("records")}
    assert set(by_pair) == {"Prompt 1 → Prompt 2", "Prompt 1 → Prompt 3", "Prompt 2 → Prompt 3"}
    for pair in ("Prompt 1 → Prompt 2", "Prompt 2 → Prompt 3"):  # a different vocabulary: nothing to compare
        assert by_pair[pair]["reading"].startswith("different models"), by_pair[pair]
        assert by_pair[pair]["KL (bits)"] == "—" and by_pair[pair]["JS (bits)"] == "—"
    same = by_pair["Prompt 1 → Prompt 3"]  # both on the bundled model: real divergences
    assert float(same["JS (bits)"]) > 0 and not same["reading"].startswith("different models")

    # Each column's bars are its own model's probabilities: Prompt 2's top token as the tiny GPT-2 gives it.
    prompt2 = at.text_area(key="cmp_prompt_1").value
    probs = next_token_logits(tiny.model, encode(tiny.tokenizer, prompt2)).softmax(-1)
    top = int(probs.argmax())
    import pyarrow as pa

    from dashboard.tokens import visible

    chart = next(c for c in at.get("vega_lite_chart") if "datum.on == 1" in c.proto.spec)  # the instrument's
    data = pa.ipc.open_stream(chart.proto.data.data).read_pandas()  # what the browser gets: a group per column
    shown = data[data["on"] == 1]
    bar = shown[(shown["name"] == "Prompt 2") & (shown["label"] == visible(tiny.tokenizer.decode([top])))]
    assert len(bar) == 1 and bar["p0"].iloc[0] == pytest.approx(float(probs[top]), abs=1e-5)
    assert bar["vocab"].iloc[0] == tiny.model.config.vocab_size
    smol_probs = next_token_logits(smollm.model, encode(smollm.tokenizer, at.text_area(key="cmp_prompt_0").value)).softmax(-1)
    smol_top = int(smol_probs.argmax())
    bar = shown[(shown["name"] == "Prompt 1") & (shown["label"] == visible(smollm.tokenizer.decode([smol_top])))]
    assert len(bar) == 1 and bar["p0"].iloc[0] == pytest.approx(float(smol_probs[smol_top]), abs=1e-4)
    assert not torch.equal(probs[:100], smol_probs[:100])


def test_compare_remove_a_column_shrinks_the_columns_and_the_link(smollm):
    at = open_page("pages/compare.py")
    assert at.button(key="cmp_remove").disabled  # two columns is the minimum
    at.button(key="cmp_add").click().run()
    at.text_area(key="cmp_prompt_2").set_value("Paris is the capital of").run()
    assert at.session_state["cmp_n"] == 3
    assert len(at.query_params["prompt"]) == 3 and at.query_params["prompt"][2] == "Paris is the capital of"
    assert len(at.table[0].value) == 3  # every pair of three columns
    at.button(key="cmp_remove").click().run()
    assert not at.exception
    assert at.session_state["cmp_n"] == 2
    assert [t.key for t in at.text_area if t.key.startswith("cmp_prompt_")] == ["cmp_prompt_0", "cmp_prompt_1"]
    assert at.query_params["prompt"] == [at.text_area(key="cmp_prompt_0").value, at.text_area(key="cmp_prompt_1").value]
    assert len(at.table[0].value) == 1  # one pair left
    assert at.button(key="cmp_remove").disabled


def test_tokenize_second_tokenizer_shows_both_counts(smollm, gpt2_tokenizer):
    import re

    prompt = "Tokenizers split unbelievably long words into subwords, 1234567 digits and émojis 🦄."
    at = open_page("pages/tokenize.py", prompt=prompt)
    assert [k for k in at.selectbox(key="tok_compare").options if k == "smollm2-135m"] == []  # not itself
    at.selectbox(key="tok_compare").select("gpt2").run()
    assert not at.exception
    metrics = {m.label: m.value for m in at.metric}
    n_smol = len(encode(smollm.tokenizer, prompt))
    n_gpt2 = len(encode(gpt2_tokenizer, prompt))
    assert n_smol != n_gpt2  # the two tokenizers split this text differently
    assert metrics["smollm2-135m: tokens"] == f"{n_smol:,}" and metrics["gpt2: tokens"] == f"{n_gpt2:,}"
    assert metrics["Tokens"] == f"{n_smol:,}"  # the page's own tokenizer is still the sidebar's
    # the second column's chips carry GPT-2's ids, in order
    bodies = [e.proto.body for e in at.get("html")]
    chip_ids = [[int(i) for i in re.findall(r'title="#\d+ id (\d+):', b)] for b in bodies]
    assert encode(gpt2_tokenizer, prompt) in chip_ids and encode(smollm.tokenizer, prompt) in chip_ids


def test_next_token_keeps_the_last_1024_tokens_of_a_longer_prompt(smollm):
    letters = "abcdefghijklmnopqrstuvwxyz"
    prompt = " ".join(letters[(i * i + 3 * i) % 26] for i in range(1500))  # ~1,500 tokens in 2,999 characters
    ids = encode(smollm.tokenizer, prompt)
    assert len(ids) > 1024 and len(prompt) <= 4000
    at = open_page("pages/next-token.py", prompt=prompt)
    path = at.session_state["nt_path"]
    assert path.prompt_ids == ids[-1024:]
    assert (f"The prompt has {len(ids):,} tokens; prompts are limited to their last 1,024 tokens, so its first "
            f"{len(ids) - 1024:,} tokens were dropped (the last 1,024 are used).") in texts(at)
    assert at.text_area(key="prompt").value == prompt  # what the user typed is kept whole


def instrument_bars(at):
    """(spec of the instrument's bars layer, the rows it starts from) of Next token's instrument."""
    import json

    import pyarrow as pa

    chart = next(c for c in at.get("vega_lite_chart") if c.key.startswith("nt_inst_"))
    spec = json.loads(chart.proto.spec)
    bars = next(layer for layer in spec["layer"] if any(p.get("name") == "pick" for p in layer.get("params", [])))
    return bars, pa.ipc.open_stream(chart.proto.data.data).read_pandas()  # (Streamlit ships the rows as Arrow)


def test_next_token_view_and_log_scale_change_the_chart(smollm):
    import math

    at = open_page("pages/next-token.py")
    path = at.session_state["nt_path"]
    probs = path.logits.double().softmax(-1)  # float32's is off by ~1e-5 here
    top = int(probs.argmax())

    bars, rows = instrument_bars(at)
    assert bars["encoding"]["x"]["title"] == "probability" and bars["encoding"]["x"]["scale"] == {"zero": True}
    first = rows[rows["id"] == top].iloc[0]  # what the browser draws "before" from: the raw probability
    assert first["p0"] == pytest.approx(float(probs[top]), rel=1e-5) and first["i"] == 0
    assert {"calculate": "datum.p0", "as": "vb"} in bars["transform"]
    assert not at.toggle(key="nt_log").disabled

    at.toggle(key="nt_log").set_value(True).run()
    bars, _ = instrument_bars(at)
    assert bars["encoding"]["x"]["scale"] == {"type": "log"}
    assert any("datum.value > 0" in t.get("filter", "") for t in bars["transform"])  # no zero on a log scale

    at.segmented_control(key="nt_view").set_value("log-probability").run()
    bars, _ = instrument_bars(at)
    assert bars["encoding"]["x"]["title"] == "log-probability (natural log)"
    assert bars["encoding"]["x"]["scale"] == {"zero": False}  # no log scale for a log-probability
    assert at.toggle(key="nt_log").disabled
    assert {"calculate": "log(datum.p0)", "as": "vb"} in bars["transform"]
    assert math.log(first["p0"]) == pytest.approx(math.log(float(probs[top])), abs=1e-4)

    at.segmented_control(key="nt_view").set_value("logit").run()
    bars, rows = instrument_bars(at)
    assert bars["encoding"]["x"]["title"] == "logit" and {"calculate": "datum.l", "as": "vb"} in bars["transform"]
    assert rows[rows["id"] == top].iloc[0]["l"] == pytest.approx(float(path.logits[top]), abs=1e-4)


def test_dismiss_removes_the_notices_of_a_bad_link(smollm):
    at = open_page("pages/next-token.py", temperature="nan")
    notice = "`temperature` = NaN is not a number; using 1.0."
    assert notice in [w.value for w in at.warning]
    assert control(at, "temperature") == 1.0
    at.button(key="ts_dismiss_notices").click().run()
    assert not at.exception
    assert notice not in [w.value for w in at.warning]
    assert not at.session_state["_ts_notices"]
    assert [b for b in at.button if b.key == "ts_dismiss_notices"] == []
    move(at, "top_k", 5)  # the next run does not bring them back
    assert notice not in [w.value for w in at.warning]


# A read-only weight cache. Tests run as root here, and root writes through chmod: the folders are made
# immutable instead (chattr +i, which stops root too); as another user, chmod is enough. Where neither is
# possible (root without CAP_LINUX_IMMUTABLE, or a file system without the attribute), the unwritable spots are
# made with what root cannot write through either: a directory where the app writes a file (.verified), and a
# regular file where it makes a folder (the cache root).


def _lock(folder) -> bool:
    """Make `folder` unwritable for this process (no entry can be added, removed or renamed); False if impossible."""
    import os
    import subprocess

    if os.geteuid() != 0:
        folder.chmod(0o555)
    else:
        subprocess.run(["chattr", "+i", str(folder)], capture_output=True)
    probe = folder / ".write-probe"
    try:
        probe.write_text("x")
    except OSError:
        return True
    probe.unlink()
    _unlock(folder)
    return False


def _unlock(folder) -> None:
    import os
    import subprocess

    if os.geteuid() == 0:
        subprocess.run(["chattr", "-i", str(folder)], capture_output=True)
    folder.chmod(0o755)


@pytest.fixture
def own_cache(smollm, tmp_path, monkeypatch):
    """(cache root, cache folder): a copy of the valid weight cache under tmp_path, without its .verified stamp,
    made the app's cache (TOKENSCOPE_CACHE) with no model loaded; whatever was locked is unlocked afterwards."""
    import shutil

    from dashboard import models

    source = models.bundled_cache_dir(models.bundled_gguf_path())
    assert models.cache_problem(source) is None
    root = tmp_path / "cache"
    folder = root / source.name
    shutil.copytree(source, folder)
    (folder / ".verified").unlink(missing_ok=True)
    monkeypatch.setenv(models.CACHE_ENV, str(root))
    assert models.bundled_cache_dir(models.bundled_gguf_path()) == folder
    LOADED.clear()
    yield root, folder
    for path in (folder, root):
        if path.is_dir():
            _unlock(path)
    LOADED.clear()


def test_a_read_only_weight_cache_still_loads_without_a_notice(own_cache):
    from dashboard import models, weights

    root, folder = own_cache
    # In a writable copy the check writes its stamp: a read-only cache really takes the failing write.
    assert weights.cache_problem(folder) is None and (folder / ".verified").is_file()
    (folder / ".verified").unlink()
    listing = sorted(p.name for p in folder.iterdir())
    if not _lock(folder):
        (folder / ".verified").mkdir()  # writing the stamp file fails (IsADirectoryError), even for root
        listing = sorted(p.name for p in folder.iterdir())

    at = open_page("pages/next-token.py")
    assert not at.exception and not at.error, [e.value for e in at.error]
    loaded = LOADED.peek("smollm2-135m")
    assert loaded.how == "weight cache" and loaded.notices == []
    assert [t.value for t in at.toast] == []
    assert len(at.session_state["nt_path"].ids) == 11 and figures(at)["Entropy before"].endswith(" bits")
    assert sorted(p.name for p in folder.iterdir()) == listing and not (folder / ".verified").is_file()


def test_a_damaged_read_only_weight_cache_is_rebuilt_in_memory_with_a_notice(own_cache, monkeypatch):
    from dashboard import models

    root, folder = own_cache
    weights_file = folder / "model.safetensors"
    weights_file.write_bytes(weights_file.read_bytes()[:1000])  # truncated, as after a crash mid-write
    if _lock(root) and _lock(folder):
        rebuilt_notice = True  # the damaged cache is there to be found, and nothing can be written next to it
    else:
        _unlock(root)
        blocked = root.parent / "cache-is-a-file"
        blocked.write_text("not a folder")
        monkeypatch.setenv(models.CACHE_ENV, str(blocked))  # no cache can be read or written there
        rebuilt_notice = False

    at = open_page("pages/next-token.py")  # dequantizes the GGUF (~30-60 s), then fails to write the cache
    assert not at.exception and not at.error, [e.value for e in at.error]
    loaded = LOADED.peek("smollm2-135m")
    assert loaded.how == "dequantized GGUF"
    toasts = [t.value for t in at.toast]
    assert any(t.startswith("The weight cache could not be written (") and "the next start will be slow too" in t
               for t in toasts), toasts
    if rebuilt_notice:
        assert any("was rebuilt" in t and "truncated" in t for t in toasts), toasts
        assert weights_file.stat().st_size == 1000 and sorted(p.name for p in root.iterdir()) == [folder.name]
    assert len(at.session_state["nt_path"].ids) == 11  # the page works on the rebuilt model


def test_tokenize_never_waits_for_the_weights(monkeypatch, smollm):
    """A process where no model is loaded yet: Tokenize shows the bundled model's tokens without loading it."""
    from dashboard import loaded, models, ui
    from dashboard.loaded import LoadedModels

    def refuse(key, progress=None):
        raise AssertionError(f"Tokenize loaded the weights of {key}")

    empty = LoadedModels()  # nothing in memory
    monkeypatch.setattr(loaded, "LOADED", empty)
    monkeypatch.setattr(ui, "LOADED", empty)
    monkeypatch.setattr(models, "load_model", refuse)
    at = open_page("pages/tokenize.py")
    assert len(at.dataframe[0].value) == 11
    assert at.metric[1].value == "11"
    assert empty.keys() == []


def test_the_text_so_far_follows_to_generate_and_back(smollm):
    """The notebook's flow: append on Next token, then Generate opens on the text so far (prompt + appended);
    back on Next token the prompt and its appended path are still there."""
    at = open_page("pages/next-token.py")
    at.button(key="nt_append").click().run()
    at.button(key="nt_append").click().run()
    path = at.session_state["nt_path"]
    so_far = SEED_PROMPT + smollm.tokenizer.decode([s.token_id for s in path.steps])
    at.switch_page("pages/generate.py")
    at.run()
    assert at.text_area(key="prompt").value == so_far
    assert at.slider(key="max_new_tokens").value == 100 - len(encode(smollm.tokenizer, so_far))
    at.switch_page("pages/tokenize.py")
    at.run()
    assert at.text_area(key="prompt").value == so_far
    at.switch_page("pages/next-token.py")
    at.run()
    assert at.text_area(key="prompt").value == SEED_PROMPT
    assert len(at.session_state["nt_path"].steps) == 2
    assert not at.exception


def test_where_is_gives_a_small_probability_in_significant_figures(smollm):
    """A token far down the distribution reads as a number, not as 0.0000%."""
    from dashboard.numbers import probability

    at = open_page("pages/next-token.py")
    at.text_input(key="nt_find").input(" Paris").run()
    assert not at.exception
    sentence = next(m.value for m in at.markdown if "is rank" in m.value)
    path = at.session_state["nt_path"]
    p = float(torch.softmax(path.logits.float(), -1)[encode(smollm.tokenizer, " Paris")[0]])
    assert p < 1e-4 and probability(p) in sentence and "0.0000%" not in sentence
