"""Inside the model: where the next token forms — logit lens, attention and attribution, from one forward."""

import streamlit as st

from dashboard import ui

ui.page_guard()

from dashboard.ui import inside as views  # noqa: E402
from dashboard.ui import instrument as ui_instrument  # noqa: E402
from dashboard.ui.views import fingerprint  # noqa: E402
from dashboard import inside  # noqa: E402
from dashboard.charts import before_after_chart, before_after_frame  # noqa: E402
from dashboard.draw import table_text, top_table  # noqa: E402
from dashboard.inside_charts import attention_heatmap, bars_over_tokens, lens_heatmap, track_chart  # noqa: E402
from dashboard.links import INSIDE_VIEWS  # noqa: E402
from dashboard.sampling import distribution  # noqa: E402
from dashboard.tokens import visible  # noqa: E402

st.title("🔬 Inside the model")
st.caption("Where does the next token come from? Each layer's guess (the logit lens), what each token looks at "
           "(attention), and which input tokens drove the prediction (attribution) — all from one forward pass.")

model_key = ui.current_model_key()
prompt = ui.prompt_box(ui.SEED_PROMPT, height=80)
backend = ui.get_backend(model_key)


def lens_section(study: views.Study) -> None:
    """Where the answer forms (last position first), the layers × positions heatmap, and one cell's distribution."""
    final = int(study.fwd.logits.argmax())
    track = study.track()
    formed = inside.forms_at(track)
    n_layers = study.fwd.n_layers
    where = (f"the answer forms at layer **{formed}** of {n_layers}" if formed is not None else
             f"it is not the top token at any run of layers up to the last ({n_layers})")
    st.markdown(f"The model's next token is `{visible(study.tok.decode([final]))}`: {where}.")
    chart = track_chart(track, study.tok.decode([final]))
    st.altair_chart(chart, width="stretch", theme=None)
    ui.chart_downloads(chart, f"forms-{model_key}", key="in_track")
    table, positions = study.lens_table()
    heat = lens_heatmap(table, [study.tok.decode([i]) for i in study.ids])
    st.altair_chart(heat, width="stretch", theme=None, selection_mode="cell", key="in_heat",
                    on_select=views.on_click("in_heat", "cell", views.CELL_CLICK))
    st.caption(f"Each cell: the token that layer would predict after that position (last {len(positions)} "
               "positions), darker = more probable. Click a cell to see its whole distribution below.")
    ui.chart_downloads(heat, f"lens-{model_key}", key="in_heat")
    ui.download_buttons(table, f"lens-{model_key}", key="in_lens")
    layer, position = views.layer_and_position(n_layers, len(study.ids), first_layer=0)
    cell(study, layer, position)


@st.fragment
def cell(study: views.Study, layer: int, position: int) -> None:
    """One cell's distribution under the sampling controls (redrawn in the browser; the table and the downloads
    follow a move by rerunning this alone)."""
    st.markdown(f"**Layer {layer}, after position {position}** "
                f"(`{visible(study.tok.decode([study.ids[position]]))}`): move a control and the chart follows at once")
    row = study.lens_row(layer, position)
    settings = ui_instrument.show_logits("in", (model_key, layer, position, fingerprint(row)), row, study.tok)
    dist = distribution(row, settings)  # the table and the downloads: when a move settles
    ui.chart_downloads(lambda: before_after_chart(before_after_frame(study.tok, dist, 12)), f"lens-cell-{model_key}",
                       key="in_cell")
    ui.text_table(table_text(top_table(study.tok, dist, 12)))


def attention_section(study: views.Study) -> None:
    """One layer and head (or the mean of heads) over the tokens; a row shows where that token looks."""
    fwd = study.with_attention()
    if len(study.attention_ids) < len(study.ids):
        st.info(f"The attention view reads the last {len(study.attention_ids)} of the {len(study.ids)} tokens "
                "(the map grows with the square of the length).", icon="✂️")
    layer, position = views.layer_and_position(fwd.n_layers, len(study.attention_ids), first_layer=1)
    heads = ["mean", *range(fwd.attentions.shape[1])]
    views.keep_valid("head", heads, "mean")
    head = st.selectbox("Head (or the mean of heads)", heads, key="head", bind="query-params")  # no format_func:
    # a bound widget writes what it shows into the link
    ui.bound("head", "mean")
    weights = inside.attention_map(fwd, layer - 1, None if head == "mean" else int(head))  # layer l = block l-1
    tokens = [study.tok.decode([i]) for i in study.attention_ids]
    heat = attention_heatmap(weights, tokens)
    st.altair_chart(heat, width="stretch", theme=None, selection_mode="row", key="in_att",
                    on_select=views.on_click("in_att", "row", views.ROW_CLICK))
    ui.chart_downloads(heat, f"attention-{model_key}", key="in_att")
    looks = bars_over_tokens(weights[position, : position + 1], tokens[: position + 1], "attention weight")
    st.markdown(f"**Where `{visible(tokens[position])}` (position {position}) looks** — click a row above to pick "
                "another token")
    st.altair_chart(looks, width="stretch", theme=None)
    ui.chart_downloads(looks, f"looks-{model_key}", key="in_looks")
    ui.download_buttons(views.attention_frame(weights, tokens), f"attention-{model_key}-L{layer}-{head}", key="in_att")


def attribution_section(study: views.Study) -> None:
    """Which input tokens drove a chosen next token, by occlusion or by gradient × input."""
    target = views.target_picker(study)
    method = st.radio("Method", ["occlusion", "gradient × input"], horizontal=True, key="in_method",
                      bind="query-params")
    ui.bound("in_method", "occlusion")
    scores = study.attribution(target, method)
    if len(study.attribution_ids) < len(study.ids):
        st.info(f"Attribution looks at the last {len(study.attribution_ids)} of the {len(study.ids)} tokens "
                "(occlusion runs one variant per token).", icon="✂️")
    tokens = [study.tok.decode([i]) for i in study.attribution_ids]
    title = ("drop in log-probability when left out" if method == "occlusion" else "gradient × input")
    chart = bars_over_tokens(scores, tokens, title)
    st.altair_chart(chart, width="stretch", theme=None)
    ui.chart_downloads(chart, f"attribution-{model_key}", key="in_attr")
    ui.download_buttons(views.attribution_frame(scores, tokens, study.attribution_ids), f"attribution-{model_key}",
                        key="in_attr")
    st.info(views.ATTRIBUTION_NOTE[method], icon="📖")


if prompt is not None and backend is not None:
    reason = backend.unavailable("inside")
    if reason:
        st.warning(f"{backend.spec.label} cannot be looked inside here: {reason.rstrip('.')}. Pick a model that runs in this "
                   "process (the bundled SmolLM2, GPT-2) to see its layers.", icon="🔬")
    else:
        study = views.study(backend.inside(), prompt)
        views.keep_valid("view", list(INSIDE_VIEWS), INSIDE_VIEWS[0])
        view = st.segmented_control("View", INSIDE_VIEWS, default=INSIDE_VIEWS[0], required=True, key="view",
                                    bind="query-params") or INSIDE_VIEWS[0]
        ui.bound("view", INSIDE_VIEWS[0])
        {"lens": lens_section, "attention": attention_section, "attribution": attribution_section}[view](study)
