"""The one Streamlit glue module: cached model loaders, the shared model picker, prompt box and notices."""

from __future__ import annotations

import logging
import sys
import threading
import time

import streamlit as st

from dashboard import models, runtime
from dashboard.loaded import LOADED
from dashboard.tokens import clean_prompt, prompt_problem

logger = logging.getLogger("dashboard")
# Link values are seeded into bound widgets through Session State; Streamlit logs a warning for that.
logging.getLogger("streamlit.elements.lib.policies").setLevel(logging.ERROR)

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
    """Run the navigation's current page, marking that it runs under the entry script; a page's st.stop()
    ends only the page, so the sidebar and notices after it still render."""
    from streamlit.runtime.scriptrunner_utils.exceptions import StopException

    from dashboard.engines import EngineError

    _entry.active = True
    try:
        if page.url_path in MODEL_PAGES:
            _first_imports()
        page.run()
    except StopException:
        pass
    except EngineError as exc:  # an engine failed mid-page: say so where it happened; the sidebar still renders
        show_engine_error(exc, current_model_key())
    finally:
        _entry.active = False
        runtime.freeze_after_imports()  # what this run imported, out of Streamlit's per-run full collection


MODEL_PAGES = ("next-token", "generate", "compare", "inside", "class")  # the pages that need a model's weights


def _first_imports() -> None:
    """On a process's first model page, import torch under a bar (2-8 s here) rather than show a blank page
    until the page's own imports are done; the model's own bar follows (_load_with_progress)."""
    if _torch_imported():
        return
    holder = st.empty()
    holder.progress(0.0, text="Starting Tokenscope: importing torch (the first visit after a start, a few seconds)…")
    time.sleep(0.2)  # let the server send the page so far: loading torch's libraries holds the GIL for seconds
    import torch  # noqa: F401

    holder.empty()


def _torch_imported() -> bool:
    """True once torch's import has finished in this process; False while another session's thread is still
    inside it (the module is in sys.modules from its first line): that visitor gets the bar too, not a page
    without one until the import's lock lets its own page go on."""
    torch = sys.modules.get("torch")
    return torch is not None and not getattr(getattr(torch, "__spec__", None), "_initializing", False)


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


def _load_with_progress(key: str) -> models.LoadedModel | None:
    """Load model `key` into the process-wide cache, showing progress here; None after showing why it can't be.

    The load runs on a worker thread while this run redraws one bar every 0.25 s from LOADED.status (what is being
    done, how far, seconds so far), so the bar is there from the first second, a long step (the tokenizer, ~10 s)
    still shows time passing, and a second session that arrives mid-load shows the same bar. A run that stops
    (the user leaves the page) leaves the load going for the next one."""
    spec = models.get_spec(key)
    holder = st.empty()
    holder.progress(0.0, text=f"Loading {spec.label}… (the bundled model's first start dequantizes it, ~30 s; "
                              "later starts take seconds)")
    result: dict = {}

    def load() -> None:
        try:
            result["loaded"] = LOADED.get(key)
        except BaseException as exc:  # reported by the run below, on the page
            result["error"] = exc

    worker = threading.Thread(target=load, name=f"load {key}", daemon=True)
    worker.start()
    began, shown = time.monotonic(), None
    while True:
        worker.join(0.25)
        if not worker.is_alive():
            break
        status = LOADED.status(key)
        text, fraction = (status.text, status.fraction) if status else (f"Waiting to load {spec.label}…", 0.0)
        seconds = time.monotonic() - (status.started if status else began)
        line = f"{spec.label}: {text} ({seconds:.0f} s)"
        if (line, fraction) != shown:
            holder.progress(fraction, text=line)
            shown = (line, fraction)
    error = result.get("error")
    if isinstance(error, models.ModelUnavailable):
        holder.empty()
        st.error(f"**{spec.label} is not available here.** {error}", icon="🔌")
        if key != models.default_model():
            st.info(f"Pick {models.get_spec(models.default_model()).label} in the sidebar to keep exploring.")
        return None
    if error is not None:  # a broken model must not take the page down
        holder.empty()
        logger.error("loading %s failed", key, exc_info=error)
        st.error(f"{spec.label} failed to load; see the server log. Other models still work.")
        return None
    loaded = result["loaded"]
    holder.empty()
    if loaded.how.startswith("downloaded"):
        st.toast(f"{spec.label}: {loaded.how}.", icon="📥")
    for notice in loaded.notices:
        st.toast(notice, icon="♻️")
    return loaded


def get_model(key: str) -> models.LoadedModel | None:
    """The loaded model `key` (one copy per process, shared by every session and page, never mutated), or None
    after showing why it is unavailable (the page goes on)."""
    loaded = LOADED.peek(key)
    if loaded is not None:
        return LOADED.get(key)  # marks it recently used
    return _load_with_progress(key)


def get_backend(key: str):
    """The back-end the pages talk to for model `key` (backends.Backend): the loaded model in this process, or
    its engine; None after showing why it is unavailable (the page goes on)."""
    from dashboard import backends

    spec = models.get_spec(key)
    if spec.source == "engine":
        try:
            return backends.engine_backend(spec)
        except backends.EngineError as exc:
            show_engine_error(exc, key)
            return None
    loaded = get_model(key)
    if loaded is None:
        return None
    return backends.LocalBackend(loaded, precision_model=lambda precision: get_generation_model(key, precision))


def show_engine_error(exc: Exception, key: str | None = None) -> None:
    """An engine's failure in words, and how to keep going (nothing typed is lost; the page recovers by itself
    once the engine answers again)."""
    st.error(f"**The engine did not answer.** {exc} Everything you typed is kept: this page works again as soon "
             "as the engine answers (rerun it, or move any control).", icon="🛰️")
    default = models.default_model()
    if key != default:
        st.info(f"Meanwhile, pick {models.get_spec(default).label} in the sidebar to keep exploring in this process.")


class engine_faults:
    """`with ui.engine_faults():` shows an engine's failure inside the block as a message, not a traceback."""

    def __enter__(self):
        return self

    def __exit__(self, kind, exc, tb) -> bool:
        from dashboard.engines import EngineError

        if exc is not None and isinstance(exc, EngineError):
            show_engine_error(exc, current_model_key())
            return True
        return False


def get_generation_model(key: str, precision: str) -> models.LoadedModel | None:
    """The model generation runs on: the shared fp32 model, or its shared bf16 copy (loaded like a model)."""
    loaded = get_model(key)
    if loaded is None or precision == "fp32":
        return loaded
    with st.spinner("Making a bf16 copy of the weights for fast generation…"):
        return LOADED.get(f"{key}@bf16", make=lambda: models.bf16_copy(loaded))


@st.cache_resource(show_spinner=False)
def _load_tokenizer(key: str):
    """A weights-free tokenizer (GPT-2's offline vocabulary, the bundled model's tokenizer cache or GGUF, a local
    folder's tokenizer files), shared by every session. The heap is frozen after it (runtime.freeze_heap): a page
    that needs only a tokenizer (Tokenize, a Class learner's guess) otherwise pays Streamlit's full collection of
    torch's and transformers' objects, ~200 ms, after every run, until some session loads a model."""
    tokenizer = models.load_tokenizer(key)
    runtime.freeze_heap()
    return tokenizer


def get_tokenizer(key: str):
    """The tokenizer of `key` without waiting for its weights where it can be had alone (GPT-2's, the bundled
    model's, a local folder's); else the loaded model's. None after showing why it is unavailable."""
    spec = models.get_spec(key)
    if spec.source == "engine":
        backend = get_backend(key)
        return backend.tokenizer if backend else None
    loaded = LOADED.peek(key)
    if loaded is not None:
        return loaded.tokenizer
    if spec.tokenizer_offline or spec.source in ("bundled", "local"):
        try:
            with st.spinner(f"Loading {spec.label}'s tokenizer (its weights are not needed here)…", show_time=True):
                return _load_tokenizer(key)
        except models.ModelUnavailable as exc:
            st.error(f"**{spec.label}'s tokenizer is not available here.** {exc}", icon="🔌")
            return None
        except Exception:  # a broken tokenizer must not take the page down
            logger.exception("loading the tokenizer of %s failed", key)
            st.error(f"{spec.label}'s tokenizer failed to load; see the server log. Other models still work.")
            return None
    loaded = get_model(key)
    return loaded.tokenizer if loaded else None


def context_notice(notice: str | None) -> None:
    """Show that a prompt was cut to fit the model's context (nothing the user typed is changed)."""
    if notice:
        st.info(notice, icon="✂️")


# --------------------------------------------------------------------------- notices


def add_notice(text: str) -> None:
    """Remember a correction made to the user's input so every page shows it until dismissed."""
    notices = st.session_state.setdefault(_NOTICES, [])
    if text not in notices:
        notices.append(text)


def show_notices(box) -> None:
    """Show the remembered corrections (link values fixed, prompt cut, …) in `box`, at the top of the page,
    with a dismiss button."""
    notices = st.session_state.get(_NOTICES) or []
    if not notices:
        return
    with box.container(border=True):
        for text in notices:
            st.warning(text, icon="⚠️")
        if st.button("Dismiss", key="ts_dismiss_notices"):
            st.session_state[_NOTICES] = []
            st.rerun()


# --------------------------------------------------------------------------- shared widgets


def model_picker() -> str:
    """Sidebar model selectbox bound to `?model=` (apply_link has already replaced an unknown value)."""
    specs = models.registry()
    default = models.default_model()
    key = st.sidebar.selectbox(
        "Model",
        options=[default] + [k for k in specs if k != default],  # the first option is the default  # keys, not labels: a bound selectbox writes what it shows into the URL
        key=MODEL_KEY,
        bind="query-params",
        help="Every page uses this model. The bundled SmolLM2 works offline; GPT-2 and the operator's Hub models "
        "need the Hugging Face Hub for their first load (GPT-2's tokenizer works everywhere).",
    )
    spec = specs[key]
    loaded = LOADED.peek(key)
    memory = f" In memory: {loaded.how}, {loaded.load_seconds:.1f} s to load." if loaded else ""
    st.sidebar.caption(f"**{spec.label}**. {spec.about}{memory}")
    for problem in models.registry_problems():
        st.sidebar.warning(f"Operator's model list: {problem.rstrip('.')}.", icon="⚙️")
    return key


def current_model_key() -> str:
    """The model picked in the sidebar (the default before the picker has run)."""
    key = st.session_state.get(MODEL_KEY, models.default_model())
    return key if key in models.registry() else models.default_model()


def prompt_box(default: str, label: str = "Prompt", height: int = 100, keeps_path: bool = False) -> str | None:
    """Prompt text area bound to `?prompt=`; returns the cleaned prompt, or None after explaining a problem.

    Arriving from another page without a prompt in the link, the box holds the session's text (what the user
    typed elsewhere, or Next token's text so far; `keeps_path`: Next token itself takes back the prompt its
    token path grew from). What the user typed stays in the box untouched; only the copy sent to the model is
    cleaned."""
    st.session_state["_ts_prompt_default"] = default
    _rendered(PROMPT_KEY, default)
    if st.session_state.get("_ts_arrived") and PROMPT_KEY not in st.query_params:
        text, base = st.session_state.get(_TEXT), st.session_state.get(_TEXT_BASE)
        if keeps_path and base is not None:
            st.session_state[PROMPT_KEY] = base
        elif text is not None:
            st.session_state[PROMPT_KEY] = text
    raw = st.text_area(label, value=default, key=PROMPT_KEY, bind="query-params", height=height)
    same = raw == st.session_state.get(_TEXT)  # shown as it came: where it grew from still holds
    keep_text(raw, st.session_state.get(_TEXT_BASE) if same else None)
    return checked_prompt(raw)


def checked_prompt(raw: str, problem_text: str | None = None) -> str | None:
    """The cleaned copy of `raw` for the model, or None; shows what was cleaned and why it cannot run."""
    text, notices = clean_prompt(raw)
    for notice in notices:
        st.warning(notice, icon="✂️")
    problem = prompt_problem(text)
    if problem:
        st.info(problem_text or problem, icon="✏️")
        return None
    return text


def decoding_controls(names: list[str], captions: bool = True, defaults: dict | None = None) -> dict:
    """One widget per decoding control, bounds/help/caption from sampling.CONTROLS, bound to the URL by name.
    `defaults` overrides a control's default for this page (e.g. Generate's max_new_tokens follows the prompt)."""
    from dashboard.settings import CONTROLS

    values = {}
    for name in names:
        c = CONTROLS[name]
        default = (defaults or {}).get(name, c.default)
        _rendered(name, default)
        if c.kind is str:
            values[name] = st.radio(c.label, c.choices, index=c.choices.index(default), key=name,
                                    bind="query-params", help=c.help, horizontal=True)
        elif name == "seed":
            values[name] = int(st.number_input(c.label, c.low, c.high, default, c.step, key=name,
                                               bind="query-params", help=c.help))
        else:
            values[name] = st.slider(c.label, c.low, c.high, default, c.step, key=name,
                                     bind="query-params", help=c.help)
        if captions:
            st.caption(c.caption)
    return values


def text_table(frame) -> None:
    """A static table whose every cell reads exactly as its text: st.table renders cells as Markdown, so each
    cell is escaped first (a token "## x" or "[a](b)" is not a heading or a link). Headers are the app's own."""
    import pandas as pd

    from dashboard.tokens import markdown_literal

    frame = pd.DataFrame(frame)
    safe = frame.map(lambda v: markdown_literal(v) if isinstance(v, str) else v)
    st.table(safe, hide_index=True)


def download_buttons(frame, stem: str, key: str, records: list[dict] | None = None) -> None:
    """CSV (spreadsheet-safe) and JSON (exact text) download buttons for a table; JSON from `records` when given.
    `frame` may be a callable returning the table: it is then built only when a button is pressed."""
    from dashboard.exports import csv_bytes, json_bytes

    table = frame if callable(frame) else (lambda: frame)
    row = st.container(horizontal=True)  # buttons as wide as their labels, wrapping on a narrow screen
    row.download_button("Download CSV", lambda: csv_bytes(table()), file_name=f"{stem}.csv", mime="text/csv",
                         key=f"{key}_csv", on_click="ignore")
    row.download_button("Download JSON", lambda: json_bytes(records if records is not None else table()),
                          file_name=f"{stem}.json", mime="application/json", key=f"{key}_json", on_click="ignore")


def chart_downloads(chart, stem: str, key: str) -> None:
    """SVG and PNG download buttons for an Altair chart, or a callable building it: rendered (and built) only when
    a button is pressed."""
    from dashboard.exports import chart_png, chart_svg

    build = chart if callable(chart) else (lambda: chart)
    row = st.container(horizontal=True)  # buttons as wide as their labels, wrapping on a narrow screen
    row.download_button("Chart as SVG", lambda: chart_svg(build()), file_name=f"{stem}.svg", mime="image/svg+xml",
                        key=f"{key}_svg", on_click="ignore")
    row.download_button("Chart as PNG", lambda: chart_png(build()), file_name=f"{stem}.png", mime="image/png",
                        key=f"{key}_png", on_click="ignore")


# The URL and the session's text: links in and out, the share dialog, page links (Streamlit glue too, in its own
# module; re-exported so pages write ui.bound, ui.share_link, …).
from dashboard.ui.linking import (  # noqa: E402,F401
    _TEXT, _TEXT_BASE, _rendered, apply_link, begin_run, bound, carried_params, following, from_link, in_url,
    keep_text, link_params, share_extra, share_link, sidebar_navigation,
)
