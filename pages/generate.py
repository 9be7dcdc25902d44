"""Generate: a whole continuation streamed token by token, then every token coloured by how surprising it was;
or score any pasted text the same way. A shared link with run=1 replays the generation on opening."""

import streamlit as st

from dashboard import ui

ui.page_guard()

from dashboard.ui import scored  # noqa: E402
from dashboard.backends import MAX_ENGINE_SCORE_TOKENS, EngineError  # noqa: E402
from dashboard.generation import Generation, coalesce, perplexity, stream_text  # noqa: E402
from dashboard.sampling import CONTROLS, Settings  # noqa: E402
from dashboard.tokens import MAX_PROMPT_TOKENS, fit_context, safe_markdown  # noqa: E402

SEED_TOTAL = 100  # the notebook's max_length=100: prompt plus new tokens

st.title("✍️ Generate")
st.caption(
    "`generate` repeats the next-token step for you. Greedy decoding always takes the most likely token; "
    "sampling draws from the processed distribution (seeded, so the same seed gives the same text)."
)

model_key = ui.current_model_key()
backend = ui.get_backend(model_key)


def controls(prompt_ids: list[int]) -> dict:
    """The decoding controls this strategy uses; new tokens start at a total of SEED_TOTAL, like the notebook.
    On an engine, what it cannot do (beam search, bf16) says why instead."""
    values = ui.decoding_controls(["strategy"], captions=False)
    names = {"sample": ["temperature", "top_k", "top_p", "min_p", "seed"], "beam": ["num_beams"]}
    values |= ui.decoding_controls(names.get(values["strategy"], []))
    c = CONTROLS["max_new_tokens"]
    room = backend.context_length - min(len(prompt_ids), MAX_PROMPT_TOKENS)  # what the context leaves
    start = max(c.low, min(c.high, SEED_TOTAL - len(prompt_ids), room))
    ui.following("max_new_tokens", start)  # prompt + new = 100 until the user moves it
    precision = [] if backend.unavailable("bf16") else ["precision"]
    values |= ui.decoding_controls(["repetition_penalty", *precision, "max_new_tokens"],
                                   defaults={"max_new_tokens": start})
    if backend.engine:
        st.caption(f"🛰️ Engine {backend.engine!r}: its own sampler runs with these settings. Precision: "
                   f"{backend.unavailable('bf16')}.")
    return values


def fitted(all_ids: list[int], values: dict) -> tuple[list[int], Settings]:
    """(prompt ids, settings) such that prompt plus new tokens fit the model's context, with notices."""
    context = backend.context_length
    new_tokens = min(values["max_new_tokens"], context - 1)
    if new_tokens < values["max_new_tokens"]:
        ui.context_notice(f"{backend.spec.label} reads at most {context:,} tokens, so at most {new_tokens:,} new "
                          f"tokens are generated (not {values['max_new_tokens']:,}).")
    prompt_ids, cut = fit_context(all_ids, context, new_tokens, backend.spec.label)
    ui.context_notice(cut)
    return prompt_ids, Settings(**{**values, "max_new_tokens": new_tokens})


def write(prompt_ids: list[int], settings: Settings, stop) -> None:
    """Generate now, streaming into the page; Stop (or leaving) ends the model loop and keeps what was written."""
    stop.button("Stop", key="gen_stop", help="Stops after the current token")
    run = Generation(prompt_ids, settings)
    st.session_state["gen_last"] = (run, None)  # stored first: Stop reruns the script mid-stream
    with st.container(border=True):
        st.markdown(f"**{safe_markdown(tok.decode(prompt_ids))}**")
        if settings.strategy == "beam":
            with st.spinner(f"Beam search with {settings.num_beams} beams…"):
                st.session_state["gen_last"] = (backend.beam(prompt_ids, settings), None)
        else:
            pieces = coalesce(stream_text(tok, backend.stream(prompt_ids, settings, run)))
            try:
                st.write_stream(safe_markdown(p) for p in pieces)
            except EngineError as exc:  # the engine died or stalled mid-stream: keep what was written
                run.reason = "engine failed"
                st.session_state["gen_error"] = str(exc)
            finally:
                pieces.close()  # ends the model loop (or the engine's stream) now, also when Stop interrupted
    st.rerun()


def result(prompt_ids: list[int], settings: Settings) -> None:
    """The last generation: figures, the rank-coloured text (scored once, by the model that wrote it)."""
    last = st.session_state.get("gen_last")
    failed = st.session_state.pop("gen_error", None)
    if failed:
        st.error(f"**The engine stopped answering mid-generation.** {failed} The tokens that arrived are kept "
                 "below; press Generate again once the engine is back.", icon="🛰️")
    if last and not last[0].new_ids and last[0].reason == "stopped":
        st.info("Stopped before the first token: nothing was written.", icon="⏹️")
    if not last or not last[0].new_ids:
        return
    run, scores = last
    if scores is None:  # an engine scored each token while writing; locally, one forward by the writing model
        scores = run.scores or backend.score(run.output_ids, start=len(run.prompt_ids),
                                             precision=run.settings.precision)
        st.session_state["gen_last"] = (run, scores)
    m1, m2, m3, m4 = st.columns(4)
    m1.metric("New tokens", len(run.new_ids))
    m2.metric("Tokens per second", f"{run.tokens_per_second:.1f}")
    m3.metric("First token after", f"{(run.first_token_at - run.started) * 1000:.0f} ms")
    m4.metric("Stopped by", run.reason or "—")
    as_markdown = st.toggle("Show as Markdown", key="gen_markdown", bind="query-params",
                            help="Markdown formatting only; HTML, links and images never render")
    ui.bound("gen_markdown", False)
    if as_markdown:
        with st.container(border=True):
            st.markdown(f"**{safe_markdown(tok.decode(run.prompt_ids))}**"
                        f"{safe_markdown(tok.decode(run.new_ids, skip_special_tokens=True))}")
    else:
        scored.scored_text(tok, run.prompt_ids, scores, key="gen", stem=f"tokens-{model_key}", top_n=backend.top_n)
    st.caption(f"{run.settings.strategy} · {run.settings.precision} · {len(run.output_ids)} tokens in total")
    if (run.prompt_ids, run.settings) == (prompt_ids, settings) and run.reason != "stopped":
        ui.share_extra({"run": ["1"]})  # the link replays exactly this text


def score_text() -> None:
    """Score pasted text: perplexity and every token coloured by rank (the last window of a long text)."""
    st.caption("Paste any text: each token is coloured by how likely the model found it, given the text before it.")
    raw = st.text_area("Text to score", value="", key="score_text", height=120, bind="query-params",
                       placeholder="The quick brown fox jumps over the lazy dog.")
    ui.bound("score_text", "")
    text = ui.checked_prompt(raw, "Paste or type some text to score it.")
    if text is None:
        return
    ids, window = backend.tokenize(text), min(backend.context_length, MAX_PROMPT_TOKENS + 1)
    if backend.engine:  # one request per token there
        window = min(window, MAX_ENGINE_SCORE_TOKENS)
    if len(ids) > window:  # one forward reads at most the model's context: score the text's end
        st.info(f"The text has {len(ids):,} tokens and one pass of {backend.spec.label} reads at most {window:,}, so "
                f"its last window of {window:,} tokens is scored; the first {len(ids) - window:,} are left out.", icon="✂️")
        ids = ids[-window:]
    if len(ids) < 2:
        st.info("The text needs at least two tokens: the first one has nothing before it to be predicted from.")
        return
    memo = st.session_state.get("score_memo")
    if not memo or memo[0] != (model_key, tuple(ids)):  # one forward per new text, none on other reruns
        memo = ((model_key, tuple(ids)), backend.score(ids, start=1))
        st.session_state["score_memo"] = memo
    st.metric("Perplexity", f"{perplexity(memo[1]):.2f}",
              help="2 to the mean surprisal: how many equally likely choices the model was torn between")
    scored.scored_text(tok, ids[:1], memo[1], key="score", stem=f"scores-{model_key}", top_n=backend.top_n)
    if backend.top_n is not None:
        st.caption(f"On the engine, ranks count within its top {backend.top_n}: grey (rank {backend.top_n + 1} in "
                   "the table) means below them; the probability itself is the engine's own.")


if backend is not None:
    tok = backend.tokenizer
    write_tab, score_tab = st.tabs(["Generate", "Score text"], key="gen_tab", bind="query-params")
    ui.bound("gen_tab", "Generate")
    with write_tab:  # both tabs run: a widget left undrawn would lose what was typed in it
        prompt = ui.prompt_box(ui.STORY_PROMPT, height=80)
        left, main = st.columns([1, 2.6], gap="large")
        all_ids = backend.tokenize(prompt) if prompt else []
        with left:
            values = controls(all_ids)
        prompt_ids, settings = fitted(all_ids, values)
        with main:
            go, stop, _ = st.columns([1, 1, 3])
            no_beam = settings.strategy == "beam" and backend.unavailable("beam")
            if no_beam:
                st.info(f"Beam search is not available here: {no_beam}.", icon="🛰️")
            clicked = go.button("Generate", type="primary", key="gen_go", disabled=prompt is None or bool(no_beam))
            replay = st.session_state.pop("_ts_link_run", False) and prompt is not None  # a run=1 link, once
            if (clicked or replay) and not no_beam:
                write(prompt_ids, settings, stop)
            result(prompt_ids, settings)
    with score_tab:
        score_text()
