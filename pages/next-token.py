"""Next token: the distribution over the next token, what the sampling controls do to it, one draw, stepping."""

import streamlit as st

from dashboard import ui

ui.page_guard()

import torch  # noqa: E402
from dashboard.ui import views  # noqa: E402
from dashboard.charts import VIEWS, before_after_chart, before_after_frame, marked_text_html  # noqa: E402
from dashboard.settings import CONTROLS  # noqa: E402
from dashboard.ui import instrument as ui_instrument  # noqa: E402
from dashboard.draw import draw_chart, draw_frame, draw_sentence, one_draw, table_text, top_table  # noqa: E402
from dashboard.generation import TokenPath  # noqa: E402
from dashboard.numbers import probability  # noqa: E402
from dashboard.sampling import Settings, distribution  # noqa: E402

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


def held() -> Settings:
    """The settings the controls hold now (read when a button is pressed: a move may have settled since)."""
    return Settings(strategy="sample", seed=int(st.session_state.get("seed", CONTROLS["seed"].default)),
                    **ui_instrument.current())


def append_top(path: TokenPath) -> None:
    """Button callback: append the most likely token (after the repetition penalty, as greedy would)."""
    path.append(int(after(path, held()).scores.argmax()), "most likely")


def append_drawn(path: TokenPath) -> None:
    """Button callback: append the token the shown draw picks (u from the seed and the step, inverse CDF)."""
    settings = held()
    draw = one_draw(after(path, settings), settings.seed, len(path.steps))
    path.append(draw.token_id, f"sampled (seed {settings.seed})")


def stepping(path: TokenPath) -> None:
    """The buttons and the text so far, appended tokens highlighted."""
    b1 = b2 = b3 = b4 = st.container(horizontal=True)  # one row, wrapping on a phone
    b1.button("Append most likely", type="primary", key="nt_append", help="Adds the token the model finds most likely to the text (the notebook's step 3)",
              on_click=append_top, args=(path,), disabled=path.full)
    b2.button("Sample", key="nt_sample", help="Append the token the draw below picks", on_click=append_drawn,
              args=(path,), disabled=path.full)
    b3.button("Undo", key="nt_undo", disabled=not path.steps, on_click=path.undo)
    b4.button("Reset", key="nt_reset", disabled=not path.steps, on_click=path.truncate, args=(0,))
    if path.full:
        st.warning(f"The text fills the model's context of {path.context:,} tokens, so nothing more can be "
                   "appended. Undo, or branch back, to choose other tokens.", icon="🧱")
    st.html(marked_text_html(tok.decode(path.prompt_ids), [tok.decode([s.token_id]) for s in path.steps]))


def engine_note(path: TokenPath) -> None:
    """On an engine: the distribution is its top N, and the share of probability they hold."""
    if not path.partial:
        return
    held = float(path.logits.exp().sum())  # the engine's own probabilities of its top N
    st.info(f"**On the engine {backend.engine!r}:** the distribution is its top {backend.top_n} tokens, which "
            f"hold {probability(held)} of its probability; the other {probability(1 - held)} (the rest of the "
            f"{backend.vocab_size:,}-token vocabulary) is not sent. Probabilities here are shares of the top "
            f"{backend.top_n}, and the sampling controls act on them; Generate uses the engine's own sampler "
            "with the same settings over its whole vocabulary.", icon="🛰️")


def instrument(path: TokenPath) -> Settings:
    """The controls and the distribution they reshape, redrawn in the browser at every move (a click on a bar
    appends that token); the settings it holds now."""
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
    settings = ui_instrument.show(path, tok, held().seed, view, log_scale, n_show,
                                  on_pick=lambda token_id: pick(path, token_id))
    st.caption("Move a control: the chart follows at once. Click a bar to append that token.")
    ui_instrument.controls_help()
    return settings


def pick(path: TokenPath, token_id: int) -> None:
    """A clicked bar: append that token (a token outside the vocabulary is ignored)."""
    if not path.full and 0 <= token_id < path.logits.shape[-1]:
        path.append(token_id, "picked")


def table(dist) -> None:
    """The same numbers as a table (after a move settles), its downloads, and the chart's."""
    st.markdown(f"**The top {min(n_shown(), dist.probs.shape[0])} tokens** (ranked before the controls; *cumulative "
                "after* runs in the order a draw lays tokens out)")
    shown = table_text(top_table(tok, dist, n_shown()))
    ui.text_table(shown)
    top_export = backend.top_n or TOP_EXPORT
    ui.download_buttons(lambda: top_table(tok, dist, top_export), f"top-{top_export}-{model_key}", key="nt_top")
    view = st.session_state.get("nt_view") or VIEWS[0]
    ui.chart_downloads(lambda: before_after_chart(before_after_frame(tok, dist, n_shown()), view,
                                                  bool(st.session_state.get("nt_log")) and view == "probability"),
                       f"next-token-{model_key}", key="nt_chart")


def n_shown() -> int:
    """Tokens the chart and the table show."""
    n = int(st.session_state.get("nt_show") or 15)
    return min(n, backend.top_n) if backend.top_n is not None else n


def draw_view(path: TokenPath, settings: Settings, dist) -> None:
    """One draw in words (the chart shows where u lands), the seed behind it, and the draw's own export."""
    st.markdown("**One draw, made visible** (the bar under the chart)")
    draw = one_draw(dist, settings.seed, len(path.steps))
    st.markdown(draw_sentence(tok, draw, float(dist.after.max())))
    ui.decoding_controls(["seed"])
    ui.chart_downloads(lambda: draw_chart(draw_frame(tok, dist, draw), draw), f"draw-{model_key}", key="nt_draw")


@st.fragment
def explore(path: TokenPath) -> None:
    """Everything the controls move; reruns alone when a move settles (the sidebar and prompt stay)."""
    with ui.engine_faults():
        explore_sections(path)


def explore_sections(path: TokenPath) -> None:
    """The fragment's sections (an engine's failure inside them becomes a message)."""
    st.markdown("**Text so far** (appended tokens highlighted)")
    stepping(path)
    engine_note(path)
    settings = instrument(path)
    dist = after(path, settings)
    table(dist)
    draw_view(path, settings, dist)
    views.find_token(tok, dist)
    views.why_not_top(path, settings)
    views.step_history(tok, path, f"steps-{model_key}")
    views.keep_path_in_link(path)
    views.keep_text_so_far(tok, path)  # the next page opens on the text so far


if prompt is not None and backend is not None:
    tok = backend.tokenizer
    explore(views.token_path(backend, prompt))
