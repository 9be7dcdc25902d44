"""The URL and the session's text, as Streamlit glue: a link's parameters checked and applied before any widget
reads them (and rewritten to the values used), the share link and its dialog, the page links, the text that
follows the user from page to page, and defaults that follow other input."""

from __future__ import annotations

import streamlit as st

from dashboard import links, models
from dashboard.ui import MODEL_KEY, PROMPT_KEY, add_notice, logger

# --------------------------------------------------------------------------- the session's text

_TEXT, _TEXT_BASE = "_ts_text", "_ts_text_base"


def keep_text(text: str, base: str | None = None) -> None:
    """Remember the text the user works on, for the next page they open; `base`: the prompt it grew from by
    appended tokens (Next token), which that page takes back."""
    st.session_state[_TEXT] = text
    st.session_state[_TEXT_BASE] = base


def following(name: str, value) -> None:
    """Keep the widget `name` at `value`, a default that follows other input (Generate's new tokens follow the
    prompt), until the user (or a link) sets it to something else."""
    auto = f"_ts_auto_{name}"
    if name not in st.session_state or st.session_state[name] == st.session_state.get(auto):
        st.session_state[name] = value
    st.session_state[auto] = value


def in_url(name: str, value, default) -> None:
    """Mirror a widget that is not bound to the URL (its options are shown formatted) into the address bar:
    `?name=value`, or no parameter at its default."""
    if value == default or value is None:
        if name in st.query_params:
            del st.query_params[name]
    elif st.query_params.get(name) != str(value):
        st.query_params[name] = str(value)


# --------------------------------------------------------------------------- links and navigation


def apply_link(page_path: str) -> None:
    """Validate the URL's parameters before any widget reads them: corrected values seed the widgets, every
    correction becomes a notice, and the URL is rewritten to the values used (an ignored one left out). Runs
    once per new set of parameters; after a rewrite the run starts again, because a bound widget seeds itself
    from the URL the run started with."""
    params = {k: st.query_params.get_all(k) for k in st.query_params}
    signature = (page_path, tuple(sorted((k, tuple(v)) for k, v in params.items())))
    if st.session_state.get("_ts_link_seen") == signature:
        return
    st.session_state["_ts_link_seen"] = signature
    multi = page_path == "compare"
    state = links.check_params(params, list(models.registry()), models.default_model(), multi_prompt=multi)
    for notice in state.notices:
        add_notice(notice)
    for name, value in state.values.items():
        if name == "run":  # Generate replays the link's generation once, on this opening
            st.session_state["_ts_link_run"] = page_path == "generate"
            continue
        if multi and name == "prompt":
            if "cmp_prompt_0" not in st.session_state:  # columns already typed in win over the URL
                st.session_state["_ts_link_prompts"] = value  # the compare page seeds its columns from these
            continue
        if name in st.session_state:
            continue  # a widget already holds this value; the URL follows the widget
        st.session_state[name] = value
        st.session_state.setdefault(_FROM_LINK, set()).add(name)  # a page may still find it is not an option
    if _rewrite_link(state.query):
        st.rerun()  # the widgets below then seed themselves from the corrected URL


_FROM_LINK = "_ts_from_link"  # names whose value came from the link and was not checked by its page yet


def from_link(name: str) -> bool:
    """True (once) when `name`'s value came from the link just opened: a page checking it against what exists
    says so in a notice; a value left over from an earlier prompt is just replaced."""
    names = st.session_state.get(_FROM_LINK) or set()
    if name in names:
        names.discard(name)
        return True
    return False


def _rewrite_link(query: dict[str, list[str] | None]) -> bool:
    """Write corrected values into the URL (None: remove the parameter) in one step, so the browser's history
    gains one entry; True when the URL changed. A parameter bound to a widget earlier in this session is left
    to that widget, which writes the URL itself."""
    from streamlit.errors import StreamlitAPIException

    if not query:
        return False
    current = {k: st.query_params.get_all(k) for k in st.query_params}
    wanted = {k: v for k, v in {**current, **query}.items() if v is not None}
    try:
        st.query_params.from_dict({k: v if len(v) > 1 else v[0] for k, v in wanted.items()})
        return True
    except StreamlitAPIException:  # some are bound already: the others one by one
        pass
    changed = False
    for name, values in query.items():
        try:
            if values is None:
                if name in st.query_params:
                    del st.query_params[name]
                    changed = True
            else:
                st.query_params[name] = values if len(values) > 1 else values[0]
                changed = True
        except StreamlitAPIException:
            logger.info("link parameter %s is bound to a widget already; the widget keeps the URL", name)
    return changed


def carried_params() -> dict:
    """Parameters of this view a share link must carry besides its widgets: the prompt, when it was changed (the
    model is bound to the URL by the entry script)."""
    carry = {}
    prompt = st.session_state.get(PROMPT_KEY)
    if prompt and prompt != st.session_state.get("_ts_prompt_default"):
        carry["prompt"] = links.check_prompt(prompt)[0]
    return carry


def sidebar_navigation(box, pages: list) -> None:
    """The page links, in `box` (an st.empty: drawn before the page, so a page that loads a model still has
    them, and again after it). They carry the model; the user's text follows through the session (see
    prompt_box), so a link made before a fragment's rerun (Next token's appends) is never stale."""
    with box.container():
        for page in pages:
            st.page_link(page)


def begin_run(page_path: str) -> None:
    """Start a run: note whether the user just arrived on this page, and start the record of which URL-bound
    widgets the page renders (for the share link)."""
    st.session_state["_ts_arrived"] = st.session_state.get("_ts_page") != page_path
    st.session_state["_ts_page"] = page_path
    st.session_state["_ts_rendered"] = {MODEL_KEY: None}
    st.session_state["_ts_share_extra"] = {}


def _rendered(name: str, default=None) -> None:
    """Note that a URL-bound widget called `name`, whose default here is `default`, is on this page."""
    st.session_state.setdefault("_ts_rendered", {})[name] = default


def bound(name: str, default) -> None:
    """Note that the page drew a widget bound to ?`name`= whose default is `default` (for the share link)."""
    _rendered(name, default)


def share_extra(params: dict[str, list[str]]) -> None:
    """Parameters a page adds to its share link this run (e.g. Generate's run=1 when it shows a generation)."""
    st.session_state.setdefault("_ts_share_extra", {}).update(params)


def link_params() -> dict[str, list[str]]:
    """The view's state as link parameters: every URL-bound widget on this page that is not at its default,
    plus the parameters a page keeps in the URL itself (the token path, the compare columns)."""
    params = {k: st.query_params.get_all(k) for k in st.query_params
              if k not in links.PAGE_FLAGS and k not in links.PRIVATE_PARAMS}
    params.update({k: [v] for k, v in carried_params().items()})
    for name, default in st.session_state.get("_ts_rendered", {}).items():
        if name not in st.session_state:
            continue
        value = st.session_state[name]
        if name == MODEL_KEY:
            default = models.default_model()
        elif name == PROMPT_KEY:
            default = st.session_state.get("_ts_prompt_default")
        if value == default and name != "max_new_tokens":  # its default follows the prompt: always carried
            params.pop(name, None)
        else:
            params[name] = [str(value)]
    params.update(st.session_state.get("_ts_share_extra", {}))
    return params


@st.dialog("Share this view")
def _share_dialog(url: str) -> None:
    """The link in a code block with a copy button."""
    st.code(url, language=None, wrap_lines=True)
    st.caption("Use the copy button: the link opens this page with the same model, prompt and settings"
               " (and, on Generate, the same text).")


def share_link(box, page, pages: list) -> None:
    """A sidebar button that shows the current view as a link, computed when pressed, so it is always current
    (controls that rerun on their own, in a fragment, never leave it stale)."""
    if box.button("🔗 Share this view", key="ts_share", width="stretch",
                  help="A link that opens this page with the same model, prompt and settings"):
        _share_dialog(links.share_url(st.context.url, page.url_path, [p.url_path for p in pages], link_params()))
