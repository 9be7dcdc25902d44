"""Generate's scored text: every token coloured by its rank under the model (GLTR), with GLTR's summary beside it
(rank buckets, frac-p, entropy), a token inspector, the per-token table and downloads."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from dashboard import gltr, ui
from dashboard.charts import rank_legend_html, ranked_text_html
from dashboard.numbers import probability
from dashboard.tokens import visible


def score_frame(tok, scores) -> pd.DataFrame:
    """Per-token table: position, token, id, probability, rank, surprisal, frac-p, entropy and the top 5."""
    return pd.DataFrame({
        "position": [s.index for s in scores],
        "token": [visible(tok.decode([s.token_id])) for s in scores],
        "id": [s.token_id for s in scores],
        "probability": [s.prob for s in scores],
        "rank": [s.rank for s in scores],
        "surprisal (bits)": [s.surprisal for s in scores],
        "frac-p": [gltr.frac_p(s) for s in scores],
        "entropy (bits)": [s.entropy for s in scores],
        "top 5": [" | ".join(visible(tok.decode([i])) for i in s.top_ids) for s in scores],
    })


def scored_text(tok, prefix_ids: list[int], scores, key: str, stem: str, top_n: int | None = None) -> None:
    """The coloured text with its legend and inspector, GLTR's summary beside it, then the per-token table
    (`top_n`: an engine's scores, whose ranks are known only within its top N)."""
    text, summary = st.columns([3, 2], gap="large")
    with text:
        alts = [", ".join(f"{visible(tok.decode([i]))} {probability(p)}" for i, p in zip(s.top_ids, s.top_probs))
                for s in scores]
        st.html(ranked_text_html(tok.decode(prefix_ids), [tok.decode([s.token_id]) for s in scores], scores, alts,
                                 top_n))
        st.html(rank_legend_html(top_n))
        inspector(tok, scores, key)
    with summary:
        gltr_summary(tok, scores, key, stem, top_n)
    frame = score_frame(tok, scores)
    with st.expander("Per-token table"):
        st.dataframe(frame.assign(probability=frame["probability"].map(probability)), hide_index=True,
                     width="stretch", column_config={
                         "surprisal (bits)": st.column_config.NumberColumn(format="%.2f"),
                         "frac-p": st.column_config.NumberColumn(format="%.3f"),
                         "entropy (bits)": st.column_config.NumberColumn(format="%.2f")})
        ui.download_buttons(frame, stem, key=key)


def inspector(tok, scores, key: str) -> None:
    """One token's probability, rank, surprisal and the model's top 5 there (its place is in the link)."""
    if not 0 <= (st.session_state.get(f"{key}_inspect") or 0) < len(scores):  # a link's, or an earlier text's
        st.session_state[f"{key}_inspect"] = 0
    pick = st.selectbox("Inspect a token", range(len(scores)), key=f"{key}_inspect",
                        format_func=lambda i: f"#{scores[i].index} {visible(tok.decode([scores[i].token_id]))} "
                                              f"(rank {scores[i].rank:,})")
    ui.bound(f"{key}_inspect", 0)  # the link carries the token's place (the label holds its rank)
    ui.in_url(f"{key}_inspect", pick, 0)
    s = scores[pick]
    st.write(f"Probability **{probability(s.prob)}**, rank **{s.rank:,}**, surprisal **{s.surprisal:.2f} bits**, "
             f"frac-p **{gltr.frac_p(s):.3f}**. Top 5 there:")
    ui.text_table(pd.DataFrame({"token": [visible(tok.decode([i])) for i in s.top_ids],
                                "id": [str(i) for i in s.top_ids], "probability": [probability(p) for p in s.top_probs]}))


def gltr_summary(tok, scores, key: str, stem: str, top_n: int | None) -> None:
    """GLTR's three views of the text: rank buckets, the frac-p histogram and the entropy at each token."""
    buckets = gltr.bucket_frame(scores, top_n)
    top10 = int(buckets["tokens"].iloc[0])
    st.markdown(f"**Summary** · {top10} of {len(scores)} tokens ({probability(top10 / max(len(scores), 1))}) were "
                "among the model's top 10 choices. Human writing usually has more yellow, red and purple than a "
                "model's own greedy or low-temperature text.")
    fracp, entropy = gltr.frac_p_frame(scores), gltr.entropy_frame(tok, scores, top_n)
    for chart in (gltr.bucket_chart(buckets), gltr.frac_p_chart(fracp), gltr.entropy_chart(entropy)):
        st.altair_chart(chart, width="stretch", theme=None)
    within = f" within the engine's top {top_n}" if top_n is not None else ""
    st.caption("frac-p is each token's probability divided by the top token's there (1: the model's first choice). "
               f"Entropy{within} says how torn the model was before each token: high where many tokens could "
               "follow.")
    ui.chart_downloads(gltr.summary_chart(buckets, fracp, entropy), f"{stem}-summary", key=f"{key}_summary")
