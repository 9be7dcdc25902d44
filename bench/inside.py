"""Bench cases of the Inside page: one forward with hidden states, the whole logit lens, occlusion, and a
selector move through the page, each against a plain forward of the same prompt in the same run."""

from __future__ import annotations

import torch

from dashboard import inside
from dashboard.tokens import encode

LONG = ("The history of the city begins with a small fishing village on the river, where traders from the north "
        "came every spring to sell furs and buy salt, and by the")  # ~32 tokens
SHORT = "The capital of France is a city that many people visit every single"  # 12 tokens or more


@torch.inference_mode()
def _plain(model, ids):
    return model(input_ids=torch.tensor([ids]), use_cache=False, logits_to_keep=1)


def run(app, record, median_time, repeats: int, page_baseline: str) -> None:
    """Record the Inside cases (`record` and `median_time` are bench.run's)."""

    def _median_ms(fn, n):
        return median_time(fn, n) * 1000

    model, tok = app.model, app.tokenizer
    ids = encode(tok, LONG)[:32]
    plain = _median_ms(lambda: _plain(model, ids), repeats)
    hidden = _median_ms(lambda: inside.run_forward(model, ids), repeats)
    record("inside_hidden_states", hidden / plain, 1.1, "ratio", baseline="a plain forward (raw transformers)",
           note=f"one forward with hidden states {hidden:.0f} ms vs plain {plain:.0f} ms, {len(ids)} tokens")
    fwd = inside.run_forward(model, ids)
    last = _median_ms(lambda: inside.lens_last_position(model, fwd), repeats)
    whole = _median_ms(lambda: inside.lens_table(inside.lens_logits(model, fwd), tok), repeats)
    record("inside_lens", (hidden + whole) / plain, 4.0, "ratio", baseline="a plain forward (raw transformers)",
           note=f"forward + all {fwd.n_layers + 1} layers × {len(ids)} positions and the heatmap table {hidden + whole:.0f} ms;"
                f" the last position's rows ('where it forms', shown first) {last:.0f} ms")
    short = encode(tok, SHORT)[:12]
    plain_short = _median_ms(lambda: _plain(model, short), repeats)
    target = int(_plain(model, short).logits[0, -1].argmax())
    occ = _median_ms(lambda: inside.occlusion(model, short, target), repeats)
    record("inside_occlusion", occ / plain_short, 4.0, "ratio", baseline="a plain forward (raw transformers)",
           note=f"{len(short)} leave-one-out variants in one batch {occ:.0f} ms vs plain {plain_short:.0f} ms")
    grad = _median_ms(lambda: inside.grad_x_input(model, short, target), repeats)
    record("inside_grad_x_input", grad / plain_short, None, "ratio", baseline="a plain forward (raw transformers)",
           note=f"gradient × input {grad:.0f} ms")
    _selector(app, record, _median_ms, page_baseline)


def _selector(app, record, _median_ms, page_baseline: str) -> None:
    """Moving the layer selector on /inside through AppTest: forwards counted on the app's own model, and the
    page's own work for the new cell (its lens row, distribution, table and chart spec)."""
    from bench.page import open_page as open_app_page

    from dashboard.charts import before_after_chart, before_after_frame
    from dashboard.draw import table_text, top_table
    from dashboard.sampling import Settings, distribution

    at = open_app_page("pages/inside.py", prompt=LONG)
    calls = [0]
    handle = app.model.register_forward_hook(lambda *a: calls.__setitem__(0, calls[0] + 1))
    try:
        for layer in (3, 9, 17, 25):
            at.selectbox(key="layer").set_value(layer).run()
    finally:
        handle.remove()
    study = at.session_state["_in_study"]
    layers = iter(range(1, 31))

    def page_work():
        row = study.lens_row(next(layers), len(study.ids) - 1)  # a new cell: one (1, hidden) × head matmul
        dist = distribution(row, Settings(strategy="sample"))
        table_text(top_table(study.tok, dist, 12))
        before_after_chart(before_after_frame(study.tok, dist, 12)).to_dict()

    work = _median_ms(page_work, 9)
    record("inside_selector_forwards", calls[0], 0, "forwards", baseline=page_baseline,
           note="4 layer moves through AppTest on the app's own model")
    record("inside_selector_ms", work, 50, "ms", baseline=page_baseline,
           note="the page's own work for a new cell: its lens row, distribution, table and chart spec")
