"""Streamlit sections the pages are built from (the rest of the Streamlit glue is in ui.py): the next-token
path of a session, its history, token search, and the rank-coloured text of Generate."""

from __future__ import annotations

import weakref

import pandas as pd
import streamlit as st
import torch

from dashboard import links, ui
from dashboard.generation import TokenPath
from dashboard.links import decode_path, encode_path
from dashboard.numbers import probability
from dashboard.sampling import Settings, distribution
from dashboard.tokens import encode, fit_context, visible


def token_path(backend, prompt: str) -> TokenPath:
    """The session's token path for this model and prompt: one full forward when either changes (or the model
    was evicted and loaded again), none when only a control moves; a link's `path` is replayed once."""
    prompt_ids, cut = fit_context(backend.tokenize(prompt), backend.context_length, 1, backend.spec.label)
    ui.context_notice(cut)
    path: TokenPath | None = st.session_state.get("nt_path")
    if (path is not None and st.session_state.get("nt_path_for") == (backend.spec.key, tuple(prompt_ids))
            and backend.owns(path)):
        return path
    path = backend.path(prompt_ids)
    st.session_state["nt_path"] = path
    st.session_state["nt_path_for"] = (backend.spec.key, tuple(prompt_ids))
    raw = st.query_params.get("path")
    if raw and not st.session_state.get("nt_link_path_used"):
        st.session_state["nt_link_path_used"] = True
        replay, notice = decode_path(raw, backend.vocab_size)
        if notice:
            ui.add_notice(notice)
        for n, (token_id, how) in enumerate(replay):
            if path.full:
                ui.add_notice(f"The link's token path stops after {n} of {len(replay)} steps: that fills "
                              f"the model's context of {path.context:,} tokens.")
                break
            path.append(token_id, how)
    return path


def keep_path_in_link(path: TokenPath) -> None:
    """The URL carries the appended tokens, so a copied link reopens this exact path."""
    if path.steps:
        st.query_params["path"] = encode_path(path.steps)
    elif "path" in st.query_params:
        del st.query_params["path"]


def keep_text_so_far(tok, path: TokenPath) -> None:
    """The session's text is the prompt as typed plus the appended tokens: the next page opens on it, and Next
    token, opened again, takes back the prompt with its path."""
    typed = st.session_state.get(ui.PROMPT_KEY) or ""
    if path.steps:
        ui.keep_text(typed + tok.decode([s.token_id for s in path.steps]), base=typed)
    else:
        ui.keep_text(typed)


def find_token(tok, dist) -> None:
    """"Where is…": the rank and probabilities of any token the user types."""
    query = st.text_input("Where is…", placeholder="e.g.  cat (with its leading space)", key="nt_find",
                          bind="query-params")
    ui.bound("nt_find", "")
    if not query:
        return
    q_ids = encode(tok, query)
    if not q_ids:
        st.info("That text has no tokens.")
        return
    tid = q_ids[0]
    note = f" (it is {len(q_ids)} tokens; showing the first, {visible(tok.decode([tid]))!r})" if len(q_ids) > 1 else ""
    if not bool(dist.logits[tid].isfinite()):
        st.write(f"`{visible(tok.decode([tid]))}` (id {tid}) is not among the engine's top tokens here: its "
                 f"share is below the last of them ({probability(dist.probs[dist.probs > 0].min())}).{note}")
        return
    status = "survives the controls" if bool(dist.scores[tid].isfinite()) else "is removed by the controls"
    st.write(f"`{visible(tok.decode([tid]))}` (id {tid}) is rank **{dist.rank_of(tid):,}** with probability "
             f"**{probability(dist.probs[tid])}** before and **{probability(dist.after[tid])}** after; it {status}.{note}")


def why_not_top(path: TokenPath, settings: Settings) -> None:
    """After a sampled token that was not the top one, a sentence on why that happens."""
    last = path.steps[-1] if path.steps else None
    if last is None or not last.how.startswith("sampled") or last.rank == 1:
        return
    before = distribution(path.logits_at(len(path.steps) - 1), settings, torch.tensor(path.ids[:-1]))
    top_p = float(before.after.max())
    st.info(f"**Why wasn't the top token chosen?** Sampling draws at random from the processed distribution. The top "
            f"token had a {probability(top_p)} chance, so {probability(1 - top_p)} of draws pick something else; this "
            f"draw picked rank {last.rank} (probability {probability(last.prob)}). Lower the temperature or top-p to "
            "make that rarer.", icon="🎲")


def step_history(tok, path: TokenPath, stem: str) -> None:
    """The appended steps as a table, branching back to any step, and downloads."""
    if not path.steps:
        return
    st.markdown("**Steps**")
    history = pd.DataFrame({
        "step": range(1, len(path.steps) + 1),
        "token": [visible(tok.decode([s.token_id])) for s in path.steps],
        "id": [s.token_id for s in path.steps],
        "probability": [s.prob for s in path.steps],
        "rank": [s.rank for s in path.steps],
        "how": [s.how for s in path.steps],
    })
    st.dataframe(history.assign(probability=history["probability"].map(probability)), hide_index=True,
                 width="stretch", column_config={  # the downloads keep the exact numbers; widths fit a phone
                     "step": st.column_config.NumberColumn(width=40), "token": st.column_config.TextColumn(width=84),
                     "id": st.column_config.NumberColumn(width=54), "probability": st.column_config.TextColumn(width=70),
                     "rank": st.column_config.NumberColumn(width=44), "how": st.column_config.TextColumn(width=60)})
    c1, c2 = st.columns([3, 2])
    back_to = c1.selectbox("Branch: go back to just before step", list(range(1, len(path.steps) + 1)),
                           key="nt_branch_at", help="Drops that step and everything after it, so you can choose "
                           "another token there.")
    c2.button("Go back", key="nt_branch", on_click=path.truncate, args=(back_to - 1,))
    ui.download_buttons(history, stem, key="nt_history")


# --------------------------------------------------------------------------- Compare's columns

COMPARE_SIDEBAR = links.COMPARE_SIDEBAR  # a column on the sidebar's model
OWN_OFF = links.OWN_OFF  # a column without its own settings, in ?ctemp= / ?ctop_p=
OWN_PARAMS = links.OWN_PARAMS


def seed_columns_from_link(max_columns: int, min_columns: int) -> None:
    """Once per link: the columns' prompts, models and own temperature/top-p from ?prompt=…&cmodel=…&ctemp=…,
    each value read by its parser in links.link_params (apply_link has already corrected the URL)."""
    from dashboard import models

    link_prompts = st.session_state.pop("_ts_link_prompts", None)
    if not link_prompts:
        return
    st.session_state["cmp_n"] = max(min_columns, min(max_columns, len(link_prompts)))
    for i, p in enumerate(link_prompts[:max_columns]):
        st.session_state[f"cmp_prompt_{i}"] = p
    table = links.link_params(list(models.registry()), models.default_model(), multi_prompt=True)
    for i, m in _column_values(table["cmodel"], max_columns):
        st.session_state[f"cmp_model_{i}"] = m
    for param, control in OWN_PARAMS:
        for i, value in _column_values(table[param], max_columns):
            if value != OWN_OFF:
                st.session_state[f"cmp_own_{i}"] = True
                st.session_state[f"cmp_{control}_{i}"] = value


def _column_values(param: links.Param, max_columns: int) -> list[tuple[int, object]]:
    """[(column, value)] of a per-column link parameter, each value read by its parser, with a notice for each
    correction (untrusted: clamped or defaulted)."""
    out = []
    for i, raw in enumerate(st.query_params.get_all(param.name)[:max_columns]):
        value, notice = links.parse_value(param, raw)
        if notice:
            ui.add_notice(f"Column {i + 1}: {notice}")
        out.append((i, value))
    return out


def columns_to_link(n: int) -> None:
    """Keep the URL in step with the columns (repeated keys, one per column)."""
    st.query_params["prompt"] = [st.session_state[f"cmp_prompt_{i}"] for i in range(n)]
    chosen = [st.session_state[f"cmp_model_{i}"] for i in range(n)]
    if any(m != COMPARE_SIDEBAR for m in chosen):
        st.query_params["cmodel"] = chosen
    elif "cmodel" in st.query_params:
        del st.query_params["cmodel"]
    own = [bool(st.session_state.get(f"cmp_own_{i}")) for i in range(n)]
    for param, control in OWN_PARAMS:
        if any(own):  # one value per column, "-" where the column follows the shared controls
            st.query_params[param] = [str(st.session_state[f"cmp_{control}_{i}"]) if o else OWN_OFF
                                      for i, o in enumerate(own)]
        elif param in st.query_params:
            del st.query_params[param]


def column_inputs(i: int, default_prompt: str, shared: Settings, sidebar_model: str):
    """One column's prompt, model and own settings: (model key, cleaned prompt or None, settings or None)."""
    from dashboard import models
    from dashboard.sampling import CONTROLS

    raw = st.text_area(f"Prompt {i + 1}", value=default_prompt, key=f"cmp_prompt_{i}", height=110)
    choice = st.selectbox("Model", [COMPARE_SIDEBAR, *models.registry()], key=f"cmp_model_{i}")
    with st.expander("Own settings"):
        own = st.toggle("Use its own temperature and top-p", key=f"cmp_own_{i}",
                        help="Compare settings instead of prompts: e.g. the same prompt at two temperatures.")
        t, p = CONTROLS["temperature"], CONTROLS["top_p"]
        temp = st.slider(t.label, t.low, t.high, t.default, t.step, key=f"cmp_temperature_{i}", disabled=not own)
        top_p = st.slider(p.label, p.low, p.high, p.default, p.step, key=f"cmp_top_p_{i}", disabled=not own)
    settings = Settings(**{**shared.as_dict(), "temperature": temp, "top_p": top_p}) if own else None
    return (sidebar_model if choice == COMPARE_SIDEBAR else choice), ui.checked_prompt(raw), settings


def fingerprint(logits) -> str:
    """A short digest of a logits tensor: the same numbers, the same text (what an instrument's data is built for)."""
    import hashlib

    return hashlib.blake2b(logits.detach().cpu().numpy().tobytes(), digest_size=16).hexdigest()


def column_logits(entries: list[tuple[int, str, str]]) -> dict:
    """{column: (model key, tokenizer, next-token logits, partial)}: one padded batch forward per model (on an
    engine: concurrent requests it batches), kept in the session so moving a control runs no model."""
    by_model: dict[str, list] = {}
    for i, key, text in entries:
        by_model.setdefault(key, []).append((i, text))
    results, memo = {}, st.session_state.setdefault("cmp_memo", {})
    for key, items in by_model.items():
        backend = ui.get_backend(key)
        if backend is None:
            continue
        ids = []
        for i, text in items:
            kept, cut = fit_context(backend.tokenize(text), backend.context_length, 1, backend.spec.label)
            ui.context_notice(cut and f"Prompt {i + 1}: {cut}")
            ids.append(tuple(kept))
        handle = backend.handle  # the torch module, or the engine back-end
        if memo.get(key, (None,))[0] != ids or memo[key][2]() is not handle:  # new prompts, or reloaded
            logits = backend.next_logits([list(x) for x in ids])
            memo[key] = (ids, logits, weakref.ref(handle))  # a weak reference: eviction frees the model
        for row, (i, _) in enumerate(items):
            results[i] = (key, backend.tokenizer, memo[key][1][row], backend.top_n is not None)
    return results
