"""Next token: the distribution over the next token, what the sampling controls do to it, and stepping."""

import pandas as pd
import streamlit as st
import torch

from dashboard import ui

ui.page_guard()

from dashboard.charts import VIEWS, before_after_chart, before_after_frame, marked_text_html  # noqa: E402
from dashboard.generation import TokenPath  # noqa: E402
from dashboard.links import decode_path, encode_path  # noqa: E402
from dashboard.sampling import Settings, distribution, entropy_bits, sample_token  # noqa: E402
from dashboard.tokens import encode, fit_context, visible  # noqa: E402

st.title("🎲 Next token")
st.caption(
    "The model gives every token in its vocabulary a probability of coming next. The sampling controls "
    "reshape that distribution before a token is drawn: grey bars are tokens they remove."
)

model_key = ui.current_model_key()
prompt = ui.prompt_box(ui.SEED_PROMPT, height=80)
loaded = ui.get_model(model_key)


def after_path(path: TokenPath, settings: Settings):
    """Raw and processed distributions for the token after `path` (no forward)."""
    return distribution(path.logits, settings, prev_ids=torch.tensor(path.ids))


def append_top(path: TokenPath, settings: Settings) -> None:
    """Button callback: append the most likely token (after the repetition penalty, as greedy would)."""
    path.append(int(after_path(path, settings).scores.argmax()), "most likely")


def append_sample(path: TokenPath, settings: Settings) -> None:
    """Button callback: append a token drawn from the processed distribution, seeded by seed and step."""
    dist = after_path(path, settings)
    path.append(sample_token(dist.after, settings.seed, len(path.steps)), f"sampled (seed {settings.seed})")


def show():
    """Everything below the prompt (returns early, keeping the sidebar, when there is nothing to show)."""
    if prompt is None or loaded is None:
        return

    tok = loaded.tokenizer

    controls, main = st.columns([1, 2.6], gap="large")
    with controls:
        st.markdown("**Sampling controls**")
        values = ui.decoding_controls(["temperature", "top_k", "top_p", "min_p", "repetition_penalty", "seed"])
    settings = Settings(strategy="sample", **values)

    # The session's token path: one full forward when the model or prompt changes, one incremental forward per
    # appended token, none when only a slider moves (the logits stay cached on the path).
    prompt_ids, cut = fit_context(encode(tok, prompt), loaded.context_length, 1, loaded.spec.label)
    ui.context_notice(cut)
    path: TokenPath | None = st.session_state.get("nt_path")
    if (path is None or st.session_state.get("nt_path_for") != (model_key, tuple(prompt_ids))
            or not path.runs_on(loaded.model)):  # a model evicted and loaded again is a new object
        path = TokenPath(loaded.model, prompt_ids)
        st.session_state["nt_path"] = path
        st.session_state["nt_path_for"] = (model_key, tuple(prompt_ids))
        # A link's appended tokens (?path=…) are replayed once, on the path the link opened.
        raw_path = st.query_params.get("path")
        if raw_path and not st.session_state.get("nt_link_path_used"):
            st.session_state["nt_link_path_used"] = True
            replay, notice = decode_path(raw_path, loaded.vocab_size)
            if notice:
                ui.add_notice(notice)
            for n, (token_id, how) in enumerate(replay):
                if path.full:
                    ui.add_notice(f"The link's token path stops after {n} of {len(replay)} steps: that fills "
                                  f"the model's context of {path.context:,} tokens.")
                    break
                path.append(token_id, how)



    with main:
        st.markdown("**Text so far** (appended tokens highlighted)")
        # Callbacks run before the next rerun draws the page, so every button's state is already current.
        b1, b2, b3, b4 = st.columns([1.6, 1, 1, 1])
        b1.button("Append most likely", type="primary", key="nt_append", help="Append the argmax token id",
                  on_click=append_top, args=(path, settings), disabled=path.full)
        b2.button("Sample", key="nt_sample", help="Draw from the processed distribution with the seed",
                  on_click=append_sample, args=(path, settings), disabled=path.full)
        if path.full:
            st.warning(f"The text fills the model's context of {path.context:,} tokens, so nothing more can be "
                       "appended. Undo, or branch back, to choose other tokens.", icon="🧱")
        b3.button("Undo", key="nt_undo", disabled=not path.steps, on_click=path.undo)
        b4.button("Reset", key="nt_reset", disabled=not path.steps, on_click=path.truncate, args=(0,))

        # the text (with any token appended above) first, then the distribution that continues it
        st.html(marked_text_html(tok.decode(path.prompt_ids), [tok.decode([s.token_id]) for s in path.steps]))
        dist = after_path(path, settings)
        m1, m2, m3, m4 = st.columns(4)
        m1.metric("Entropy before", f"{entropy_bits(dist.probs):.2f} bits", help="Uncertainty of the raw distribution")
        m2.metric("Entropy after", f"{entropy_bits(dist.after):.2f} bits", help="Uncertainty of what sampling draws from")
        m3.metric("Mass kept", f"{dist.mass_kept:.1%}", help="Raw probability of the tokens that survive")
        m4.metric("Tokens left", f"{dist.kept:,}", help=f"Out of {dist.probs.shape[0]:,} in the vocabulary")

        o1, o2, o3 = st.columns([3, 2, 1.3])
        view = o1.segmented_control("Show", VIEWS, default=VIEWS[0], key="nt_view") or VIEWS[0]
        n_show = o2.slider("Tokens shown", 5, 50, 15, key="nt_show")
        log_scale = o3.toggle("Log", key="nt_log", disabled=view != "probability", help="Log scale for probabilities")
        frame = before_after_frame(tok, dist, n_show)

        # One chart widget per step, so a click selects a token for this step only.
        event = st.altair_chart(
            before_after_chart(frame, view, log_scale, selection="pick"), width="stretch",
            on_select="rerun", selection_mode="pick", key=f"nt_chart_{len(path.steps)}_{len(path.ids)}",
        )
        picked = (event.selection.get("pick") or [{}])[0].get("id") if event and event.selection else None
        if picked is not None and not path.full:
            path.append(int(picked), "picked")
            st.rerun()
        st.caption("Click a bar to append that token.")

        query = st.text_input("Where is…", placeholder="e.g.  cat (with its leading space)", key="nt_find")
        if query:
            q_ids = encode(tok, query)
            if not q_ids:
                st.info("That text has no tokens.")
            else:
                tid = q_ids[0]
                note = f" (it is {len(q_ids)} tokens; showing the first, {visible(tok.decode([tid]))!r})" if len(q_ids) > 1 else ""
                status = "survives the controls" if bool(dist.scores[tid].isfinite()) else "is removed by the controls"
                st.write(
                    f"`{visible(tok.decode([tid]))}` (id {tid}) is rank **{dist.rank_of(tid):,}** with probability "
                    f"**{float(dist.probs[tid]):.4%}** before and **{float(dist.after[tid]):.4%}** after; it {status}.{note}"
                )

        last = path.steps[-1] if path.steps else None
        if last is not None and last.how.startswith("sampled") and last.rank > 1:
            before = distribution(path.logits_at(len(path.steps) - 1), settings, torch.tensor(path.ids[:-1]))
            top_p = float(before.after.max())
            st.info(
                f"**Why wasn't the top token chosen?** Sampling draws at random from the processed distribution. "
                f"The top token had a {top_p:.0%} chance, so {1 - top_p:.0%} of draws pick something else; this draw "
                f"picked rank {last.rank} (probability {last.prob:.2%}). Lower the temperature or top-p to make that rarer.",
                icon="🎲",
            )

    if path.steps:
        st.markdown("**Steps**")
        history = pd.DataFrame(
            {
                "step": range(1, len(path.steps) + 1),
                "token": [visible(tok.decode([s.token_id])) for s in path.steps],
                "id": [s.token_id for s in path.steps],
                "probability": [s.prob for s in path.steps],
                "rank": [s.rank for s in path.steps],
                "how": [s.how for s in path.steps],
            }
        )
        st.dataframe(history, hide_index=True, width="stretch",
                     column_config={"probability": st.column_config.NumberColumn(format="%.4f")})
        c1, c2 = st.columns([3, 2])
        back_to = c1.selectbox(
            "Branch: go back to just before step", list(range(1, len(path.steps) + 1)), key="nt_branch_at",
            help="Drops that step and everything after it, so you can choose another token there.",
        )
        c2.button("Go back", key="nt_branch", on_click=path.truncate, args=(back_to - 1,))
        ui.download_buttons(history, f"steps-{model_key}", key="nt_history")

    # The URL carries the appended tokens, so a copied link reopens this exact path.
    if path.steps:
        st.query_params["path"] = encode_path(path.steps)
    elif "path" in st.query_params:
        del st.query_params["path"]


show()
