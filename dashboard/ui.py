"""The one Streamlit glue module: cached model loaders, the shared model picker, prompt box and notices."""

from __future__ import annotations

import logging
import threading

import streamlit as st

from dashboard import models
from dashboard.tokens import clean_prompt, prompt_problem

logger = logging.getLogger("dashboard")

SEED_PROMPT = "Udacity is the best place to learn about generative"
STORY_PROMPT = "Once upon a time, generative models"
MODEL_KEY = "model"  # widget key == URL parameter name
PROMPT_KEY = "prompt"
_NOTICES = "_ts_notices"


def configure_logging() -> None:
    """Send dashboard logs to the server's stderr once per process."""
    if not logger.handlers:
        handler = logging.StreamHandler()
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
        logger.addHandler(handler)
        logger.setLevel(logging.INFO)


# --------------------------------------------------------------------------- entry and page guard

_entry = threading.local()  # set while streamlit_app.py runs the current page (script runs are per-thread)


def run_page(page) -> None:
    """Run the navigation's current page, marking that it runs under the entry script."""
    _entry.active = True
    try:
        page.run()
    finally:
        _entry.active = False


def page_guard() -> None:
    """Make sure a page runs under streamlit_app.py, never as a bare `pages/` script.

    Streamlit treats a folder named `pages/` as a legacy multipage app until the entry script has called
    st.navigation once in the process: a fresh server's first visitor of /tokenize would get the page
    without the sidebar, model picker or link handling. Switching legacy mode off and rerunning runs the
    entry instead, which opens the same page (its url path is the file name, so the page hash matches)."""
    if getattr(_entry, "active", False):
        return
    from streamlit.runtime.pages_manager import PagesManager

    PagesManager.uses_pages_directory = False
    st.rerun()


# --------------------------------------------------------------------------- cached resources


@st.cache_resource(show_spinner="Loading the model… (the bundled model's first start dequantizes it, ~30 s; later starts take seconds)")
def _load_model(key: str) -> models.LoadedModel:
    """One LoadedModel per server process and key, shared by every page and session (never mutated)."""
    return models.load_model(key)


@st.cache_resource(show_spinner=False)
def _load_tokenizer(key: str):
    """A weights-free tokenizer (GPT-2's offline vocabulary), shared by every session."""
    return models.load_tokenizer(key)


def get_model(key: str) -> models.LoadedModel | None:
    """The loaded model `key`, or None after showing why it is unavailable (the page goes on)."""
    try:
        loaded = _load_model(key)
    except models.ModelUnavailable as exc:
        st.error(f"**{models.get_spec(key).label} is not available here.** {exc}", icon="🔌")
        if key != models.default_model():
            st.info("Pick the bundled SmolLM2 in the sidebar to keep exploring offline.")
        return None
    except Exception:  # a broken model must not take the page down
        logger.exception("loading %s failed", key)
        st.error(f"{models.get_spec(key).label} failed to load; see the server log. Other models still work.")
        return None
    for notice in loaded.notices:
        st.toast(notice, icon="♻️")
    return loaded


def get_tokenizer(key: str):
    """The tokenizer of `key`: offline when it has one (GPT-2), else the loaded model's; None if unavailable."""
    spec = models.get_spec(key)
    if spec.tokenizer_offline:
        return _load_tokenizer(key)
    loaded = get_model(key)
    return loaded.tokenizer if loaded else None


# --------------------------------------------------------------------------- notices


def add_notice(text: str) -> None:
    """Remember a correction made to the user's input so every page shows it until dismissed."""
    notices = st.session_state.setdefault(_NOTICES, [])
    if text not in notices:
        notices.append(text)


def show_notices() -> None:
    """Show the remembered corrections (link values fixed, prompt cut, …) with a dismiss button."""
    notices = st.session_state.get(_NOTICES) or []
    if not notices:
        return
    with st.container(border=True):
        for text in notices:
            st.warning(text, icon="⚠️")
        if st.button("Dismiss", key="ts_dismiss_notices"):
            st.session_state[_NOTICES] = []
            st.rerun()


# --------------------------------------------------------------------------- shared widgets


def model_picker() -> str:
    """Sidebar model selectbox bound to `?model=`; an unknown value falls back to the default with a notice."""
    specs = models.registry()
    raw = st.query_params.get(MODEL_KEY)
    if raw is not None and raw not in specs:
        add_notice(
            f"The link asked for model {raw[:60]!r}, which is not one of the registered models; "
            f"showing {specs[models.default_model()].label} instead."
        )
        if MODEL_KEY not in st.session_state:
            st.session_state[MODEL_KEY] = models.default_model()
    default = models.default_model()
    key = st.sidebar.selectbox(
        "Model",
        options=[default] + [k for k in specs if k != default],  # the first option is the default  # keys, not labels: a bound selectbox writes what it shows into the URL
        key=MODEL_KEY,
        bind="query-params",
        help="Every page uses this model. The bundled SmolLM2 works offline; GPT-2 needs the Hugging Face Hub "
        "for its weights (its tokenizer works everywhere).",
    )
    spec = specs[key]
    st.sidebar.caption(f"**{spec.label}**. {spec.about}")
    return key


def current_model_key() -> str:
    """The model picked in the sidebar (the default before the picker has run)."""
    key = st.session_state.get(MODEL_KEY, models.default_model())
    return key if key in models.registry() else models.default_model()


def prompt_box(default: str, label: str = "Prompt", height: int = 100) -> str | None:
    """Prompt text area bound to `?prompt=`; returns the cleaned prompt, or None after explaining a problem.

    What the user typed stays in the box untouched; only the copy sent to the model is cleaned."""
    raw = st.text_area(label, value=default, key=PROMPT_KEY, bind="query-params", height=height)
    text, notices = clean_prompt(raw)
    for notice in notices:
        st.warning(notice, icon="✂️")
    problem = prompt_problem(text)
    if problem:
        st.info(problem, icon="✏️")
        return None
    return text


def decoding_controls(names: list[str], captions: bool = True) -> dict:
    """One widget per decoding control, bounds/help/caption from sampling.CONTROLS, bound to the URL by name."""
    from dashboard.sampling import CONTROLS

    values = {}
    for name in names:
        c = CONTROLS[name]
        if c.kind is str:
            values[name] = st.radio(c.label, c.choices, index=c.choices.index(c.default), key=name,
                                    bind="query-params", help=c.help, horizontal=True)
        elif name == "seed":
            values[name] = int(st.number_input(c.label, c.low, c.high, c.default, c.step, key=name,
                                               bind="query-params", help=c.help))
        else:
            values[name] = st.slider(c.label, c.low, c.high, c.default, c.step, key=name,
                                     bind="query-params", help=c.help)
        if captions:
            st.caption(c.caption)
    return values


def download_buttons(frame, stem: str, key: str, records: list[dict] | None = None) -> None:
    """CSV and JSON download buttons for a table (JSON from `records` when given, else the frame)."""
    import json

    left, right = st.columns(2)
    left.download_button("Download CSV", frame.to_csv(index=False).encode("utf-8"), file_name=f"{stem}.csv",
                         mime="text/csv", key=f"{key}_csv")
    payload = json.dumps(records if records is not None else frame.to_dict(orient="records"), ensure_ascii=False, indent=1)
    right.download_button("Download JSON", payload.encode("utf-8"), file_name=f"{stem}.json",
                          mime="application/json", key=f"{key}_json")
