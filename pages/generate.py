"""Generate: a whole continuation streamed token by token, then every token coloured by how surprising it was;
or score any pasted text the same way."""

import pandas as pd
import streamlit as st

from dashboard import ui

ui.page_guard()

from dashboard.charts import rank_legend_html, ranked_text_html  # noqa: E402
from dashboard.generation import Generation, beam_search, perplexity, score_ids, stream_ids, stream_text  # noqa: E402
from dashboard.sampling import CONTROLS, Settings  # noqa: E402
from dashboard.tokens import MAX_PROMPT_TOKENS, encode, fit_context, safe_markdown, visible  # noqa: E402

SEED_TOTAL = 100  # the notebook's max_length=100: prompt plus new tokens

st.title("✍️ Generate")
st.caption(
    "`generate` repeats the next-token step for you. Greedy decoding always takes the most likely token; "
    "sampling draws from the processed distribution (seeded, so the same seed gives the same text)."
)

model_key = ui.current_model_key()
loaded = ui.get_model(model_key)


def show():
    """Everything below the title (returns early, keeping the sidebar, when the model is unavailable)."""
    if loaded is None:
        return
    tok = loaded.tokenizer


    def score_frame(scores) -> pd.DataFrame:
        """Per-token table: position, token, id, probability, rank, surprisal and the top-5 alternatives."""
        return pd.DataFrame(
            {
                "position": [s.index for s in scores],
                "token": [visible(tok.decode([s.token_id])) for s in scores],
                "id": [s.token_id for s in scores],
                "probability": [s.prob for s in scores],
                "rank": [s.rank for s in scores],
                "surprisal (bits)": [s.surprisal for s in scores],
                "top 5": [" | ".join(visible(tok.decode([i])) for i in s.top_ids) for s in scores],
            }
        )


    def show_scored(prefix_ids: list[int], scores, key: str) -> None:
        """Text coloured by rank with a legend, a token inspector, the per-token table and downloads."""
        alts = [", ".join(f"{visible(tok.decode([i]))} {p:.0%}" for i, p in zip(s.top_ids, s.top_probs)) for s in scores]
        st.html(ranked_text_html(tok.decode(prefix_ids), [tok.decode([s.token_id]) for s in scores], scores, alts))
        st.html(rank_legend_html())
        frame = score_frame(scores)
        pick = st.selectbox(
            "Inspect a token", range(len(scores)), key=f"{key}_inspect",
            format_func=lambda i: f"#{scores[i].index} {frame['token'][i]} (rank {scores[i].rank})",
        )
        s = scores[pick]
        st.write(f"Probability **{s.prob:.4f}**, rank **{s.rank:,}**, surprisal **{s.surprisal:.2f} bits**. Top 5 there:")
        st.dataframe(
            pd.DataFrame({"token": [visible(tok.decode([i])) for i in s.top_ids], "id": list(s.top_ids),
                          "probability": list(s.top_probs)}),
            hide_index=True, column_config={"probability": st.column_config.NumberColumn(format="%.4f")},
        )
        with st.expander("Per-token table"):
            st.dataframe(frame, hide_index=True, width="stretch",
                         column_config={"probability": st.column_config.NumberColumn(format="%.4f"),
                                        "surprisal (bits)": st.column_config.NumberColumn(format="%.2f")})
            ui.download_buttons(frame, f"tokens-{model_key}", key=key)


    write_tab, score_tab = st.tabs(["Generate", "Score text"])

    with write_tab:
        prompt = ui.prompt_box(ui.STORY_PROMPT, height=80)
        controls, main = st.columns([1, 2.6], gap="large")
        with controls:
            values = ui.decoding_controls(["strategy"], captions=False)
            strategy = values["strategy"]
            if strategy == "sample":
                values |= ui.decoding_controls(["temperature", "top_k", "top_p", "min_p", "seed"])
            elif strategy == "beam":
                values |= ui.decoding_controls(["num_beams"])
            values |= ui.decoding_controls(["repetition_penalty", "precision"])
            all_ids = encode(tok, prompt) if prompt else []
            c = CONTROLS["max_new_tokens"]
            ui._rendered("max_new_tokens")
            values["max_new_tokens"] = st.slider(
                c.label, c.low, c.high, max(c.low, min(c.high, SEED_TOTAL - len(all_ids[-MAX_PROMPT_TOKENS:]))), c.step,
                key="max_new_tokens", bind="query-params",
                help=c.help + f" Starts at a total of {SEED_TOTAL} tokens, like the notebook's max_length=100.",
            )
        # prompt plus new tokens must fit the model's context: cap the new tokens, then cut the prompt's start
        context = loaded.context_length
        new_tokens = min(values["max_new_tokens"], context - 1)
        if new_tokens < values["max_new_tokens"]:
            ui.context_notice(f"{loaded.spec.label} reads at most {context:,} tokens, so at most {new_tokens:,} new "
                              f"tokens are generated (not {values['max_new_tokens']:,}).")
        prompt_ids, cut = fit_context(all_ids, context, new_tokens, loaded.spec.label)
        ui.context_notice(cut)
        settings = Settings(**{**values, "max_new_tokens": new_tokens})
        runner = ui.get_generation_model(model_key, settings.precision)

        with main:
            go, stop, _ = st.columns([1, 1, 3])
            clicked = go.button("Generate", type="primary", key="gen_go", disabled=prompt is None)
            if clicked:
                stop.button("Stop", key="gen_stop", help="Stops after the current token")
                run = Generation(prompt_ids, settings)
                # Stored before streaming: Stop reruns the script mid-stream, and what was written is kept.
                st.session_state["gen_last"] = (run, None)
                with st.container(border=True):
                    st.markdown(f"**{safe_markdown(tok.decode(prompt_ids))}**")
                    if settings.strategy == "beam":
                        with st.spinner(f"Beam search with {settings.num_beams} beams…"):
                            run = beam_search(runner.model, tok, prompt_ids, settings)
                            st.session_state["gen_last"] = (run, None)
                    else:
                        # Streams in this script run: pressing Stop (or leaving) interrupts the run, which closes
                        # the generator and ends the model loop; no thread is left behind.
                        pieces = stream_text(tok, stream_ids(runner.model, tok, prompt_ids, settings, run))
                        try:
                            st.write_stream(safe_markdown(p) for p in pieces)
                        finally:
                            pieces.close()  # ends the model loop now, also when Stop interrupted the stream
                st.rerun()

            last = st.session_state.get("gen_last")
            if last and last[0].new_ids and last[1] is None:
                # ranks under the model that wrote the text, so greedy tokens are rank 1 (one forward, once)
                run = last[0]
                writer = ui.get_generation_model(model_key, run.settings.precision) or runner
                last = (run, score_ids(writer.model, run.output_ids, start=len(run.prompt_ids)))
                st.session_state["gen_last"] = last
            if last and last[0].new_ids:
                run, scores = last
                m1, m2, m3, m4 = st.columns(4)
                m1.metric("New tokens", len(run.new_ids))
                m2.metric("Tokens per second", f"{run.tokens_per_second:.1f}")
                m3.metric("First token after", f"{(run.first_token_at - run.started) * 1000:.0f} ms")
                m4.metric("Stopped by", run.reason or "—")
                as_markdown = st.toggle("Show as Markdown", key="gen_markdown",
                                        help="Markdown formatting only; HTML, links and images never render")
                if as_markdown:
                    with st.container(border=True):
                        st.markdown(f"**{safe_markdown(tok.decode(run.prompt_ids))}**"
                                    f"{safe_markdown(tok.decode(run.new_ids, skip_special_tokens=True))}")
                elif scores:
                    show_scored(run.prompt_ids, scores, key="gen")
                st.caption(f"{run.settings.strategy} · {run.settings.precision} · {len(run.output_ids)} tokens in total")

    with score_tab:
        st.caption("Paste any text: each token is coloured by how likely the model found it, given the text before it.")
        raw = st.text_area("Text to score", value="", key="score_text", height=120,
                           placeholder="The quick brown fox jumps over the lazy dog.")
        text = ui.checked_prompt(raw, "Paste or type some text to score it.")
        if text is not None:
            ids = encode(tok, text)
            window = min(loaded.context_length, MAX_PROMPT_TOKENS + 1)
            if len(ids) > window:  # one forward reads at most the model's context: score the text's end
                st.info(f"The text has {len(ids):,} tokens and one pass of {loaded.spec.label} reads at most "
                        f"{window:,}, so its last window of {window:,} tokens is scored; the first "
                        f"{len(ids) - window:,} are left out.", icon="✂️")
                ids = ids[-window:]
            if len(ids) < 2:
                st.info("The text needs at least two tokens: the first one has nothing before it to be predicted from.")
            else:
                memo = st.session_state.get("score_memo")
                if not memo or memo[0] != (model_key, tuple(ids)):  # one forward per new text, none on other reruns
                    memo = ((model_key, tuple(ids)), score_ids(loaded.model, ids, start=1))
                    st.session_state["score_memo"] = memo
                scored = memo[1]
                st.metric("Perplexity", f"{perplexity(scored):.2f}",
                          help="2 to the mean surprisal: how many equally likely choices the model was torn between")
                show_scored(ids[:1], scored, key="score")


show()
