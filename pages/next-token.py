"""Next token: the distribution over the next token, what the sampling controls do to it, one draw, stepping."""

import streamlit as st
import torch

from dashboard import ui
from dashboard.ui import layout, views

ui.page_guard()

from dashboard.charts import VIEWS, before_after_chart, before_after_frame, marked_text_html  # noqa: E402
from dashboard.draw import draw_chart, draw_frame, draw_sentence, one_draw, table_text, top_table  # noqa: E402
from dashboard.generation import TokenPath  # noqa: E402
from dashboard.numbers import probability  # noqa: E402
from dashboard.sampling import Settings, distribution, entropy_bits  # noqa: E402

TOP_EXPORT = 1000  # tokens in the table's downloads

st.title("🎲 Next token")
st.caption(
    "The model gives every token in its vocabulary a probability of coming next. The sampling controls "
    "reshape that distribution before a token is drawn: grey bars are tokens they remove."
)

model_key = ui.current_model_key()
prompt = ui.prompt_box(ui.SEED_PROMPT, height=80, keeps_path=True)
backend = ui.get_backend(model_key)


def after(path: TokenPath, settings: Settings):
    """Raw and processed distributions for the token after `path` (no forward)."""
    return distribution(path.logits, settings, prev_ids=torch.tensor(path.ids))


def append_top(path: TokenPath, settings: Settings) -> None:
    """Button callback: append the most likely token (after the repetition penalty, as greedy would)."""
    path.append(int(after(path, settings).scores.argmax()), "most likely")


def append_drawn(path: TokenPath, settings: Settings) -> None:
    """Button callback: append the token the shown draw picks (u from the seed and the step, inverse CDF)."""
    draw = one_draw(after(path, settings), settings.seed, len(path.steps))
    path.append(draw.token_id, f"sampled (seed {settings.seed})")


def stepping(path: TokenPath, settings: Settings) -> None:
    """The buttons and the text so far, appended tokens highlighted."""
    b1 = b2 = b3 = b4 = st.container(horizontal=True)  # one row, wrapping on a phone
    b1.button("Append most likely", type="primary", key="nt_append", help="Adds the token the model finds most likely to the text (the notebook's step 3)",
              on_click=append_top, args=(path, settings), disabled=path.full)
    b2.button("Sample", key="nt_sample", help="Append the token the draw below picks", on_click=append_drawn,
              args=(path, settings), disabled=path.full)
    b3.button("Undo", key="nt_undo", disabled=not path.steps, on_click=path.undo)
    b4.button("Reset", key="nt_reset", disabled=not path.steps, on_click=path.truncate, args=(0,))
    if path.full:
        st.warning(f"The text fills the model's context of {path.context:,} tokens, so nothing more can be "
                   "appended. Undo, or branch back, to choose other tokens.", icon="🧱")
    st.html(marked_text_html(tok.decode(path.prompt_ids), [tok.decode([s.token_id]) for s in path.steps]))


def figures(path: TokenPath, dist) -> None:
    """Entropy before and after, mass kept and tokens left; on an engine also the share its top N hold."""
    row = st.container(horizontal=True)  # two to a row on a phone
    cols = [row.container(width=140) for _ in range(5 if path.partial else 4)]
    if path.partial:
        held = float(path.logits.exp().sum())  # the engine's own probabilities of its top N
        st.info(f"**On the engine {backend.engine!r}:** the distribution is its top {backend.top_n} tokens, which "
                f"hold {probability(held)} of its probability; the other {probability(1 - held)} (**other**: the rest of the "
                f"{backend.vocab_size:,}-token vocabulary) is not sent. Probabilities here are shares of the top "
                f"{backend.top_n}, and the sampling controls act on them; Generate uses the engine's own sampler "
                "with the same settings over its whole vocabulary.", icon="🛰️")
        cols[4].metric("Other", probability(1 - held), help=f"The engine's probability outside its top {backend.top_n}")
    within = f" (within the engine's top {backend.top_n})" if path.partial else ""
    cols[0].metric("Entropy before", f"{entropy_bits(dist.probs):.2f} bits",
                   help="Uncertainty of the raw distribution" + within)
    cols[1].metric("Entropy after", f"{entropy_bits(dist.after):.2f} bits",
                   help="Uncertainty of what sampling draws from")
    cols[2].metric("Mass kept", probability(min(dist.mass_kept, 1.0)), help="Raw probability of the tokens that survive" + within)
    cols[3].metric("Tokens left", f"{dist.kept:,}",
                   help=f"Out of {backend.top_n if path.partial else dist.probs.shape[0]:,}" + within)


def chart_and_table(path: TokenPath, dist) -> None:
    """The before→after chart (a click appends that token) and the same numbers as a table."""
    o1, o2, o3 = st.columns([3, 2, 1.3])
    view = o1.segmented_control("Show", VIEWS, default=VIEWS[0], key="nt_view", required=True,
                                bind="query-params") or VIEWS[0]
    n_show = o2.slider("Tokens shown", 5, 50, 15, key="nt_show", bind="query-params")
    if backend.top_n is not None:
        n_show = min(n_show, backend.top_n)  # the engine gave no more
    log_scale = o3.toggle("Log", key="nt_log", disabled=view != "probability", bind="query-params",
                          help="Log scale for probabilities")
    for name, default in (("nt_view", VIEWS[0]), ("nt_show", 15), ("nt_log", False)):
        ui.bound(name, default)
    chart = before_after_chart(before_after_frame(tok, dist, n_show), view, log_scale, selection="pick")
    event = st.altair_chart(chart, width="stretch", theme=None, on_select="rerun", selection_mode="pick",
                            key=f"nt_chart_{len(path.steps)}_{len(path.ids)}")  # one widget per step
    picked = (event.selection.get("pick") or [{}])[0].get("id") if event and event.selection else None
    if picked is not None and not path.full:
        path.append(int(picked), "picked")
        st.rerun(scope="fragment")
    st.caption("Click a bar to append that token.")
    ui.chart_downloads(chart, f"next-token-{model_key}", key="nt_chart")
    st.markdown(f"**The top {n_show} tokens** (ranked before the controls; *cumulative after* runs in the order "
                "a draw lays tokens out)")
    shown = table_text(top_table(tok, dist, n_show))
    ui.text_table(shown)
    top_export = backend.top_n or TOP_EXPORT
    ui.download_buttons(lambda: top_table(tok, dist, top_export), f"top-{top_export}-{model_key}", key="nt_top")


def draw_view(path: TokenPath, settings: Settings, dist) -> None:
    """One draw made visible: where u lands on the cumulative distribution after the controls."""
    st.markdown("**One draw, made visible**")
    draw = one_draw(dist, settings.seed, len(path.steps))
    chart = draw_chart(draw_frame(tok, dist, draw), draw)
    st.altair_chart(chart, width="stretch", theme=None)
    st.markdown(draw_sentence(tok, draw, float(dist.after.max())))
    ui.chart_downloads(chart, f"draw-{model_key}", key="nt_draw")


@st.fragment
def explore(path: TokenPath) -> None:
    """Controls and everything they move; reruns alone when a slider moves (the sidebar and prompt stay)."""
    with ui.engine_faults():
        explore_sections(path)


def explore_sections(path: TokenPath) -> None:
    """The fragment's sections (an engine's failure inside them becomes a message)."""
    controls, main = layout.beside("nt")  # on a phone the controls dock under the chart
    with controls:
        st.markdown("**Sampling controls**")
        settings = Settings(strategy="sample", **ui.decoding_controls(
            ["temperature", "top_k", "top_p", "min_p", "repetition_penalty", "seed"]))
    with main:
        st.markdown("**Text so far** (appended tokens highlighted)")
        stepping(path, settings)
        dist = after(path, settings)
        figures(path, dist)
        chart_and_table(path, dist)
        draw_view(path, settings, dist)
        views.find_token(tok, dist)
        views.why_not_top(path, settings)
    views.step_history(tok, path, f"steps-{model_key}")
    views.keep_path_in_link(path)
    views.keep_text_so_far(tok, path)  # the next page opens on the text so far


if prompt is not None and backend is not None:
    tok = backend.tokenizer
    explore(views.token_path(backend, prompt))
