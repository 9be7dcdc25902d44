"""The one Streamlit glue module: cached model loaders, the shared model picker, prompt box and notices."""

from __future__ import annotations

import logging
import threading

import streamlit as st

from dashboard import links, models
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
        page.run()
    except StopException:
        pass
    except EngineError as exc:  # an engine failed mid-page: say so where it happened; the sidebar still renders
        show_engine_error(exc, current_model_key())
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


def _load_with_progress(key: str) -> models.LoadedModel | None:
    """Load model `key` into the process-wide cache, showing progress here; None after showing why it can't be."""
    spec = models.get_spec(key)
    holder = st.empty()

    def progress(text: str, fraction: float | None = None) -> None:
        if fraction is None:
            holder.info(text, icon="⏳")
        else:
            holder.progress(max(0.0, min(1.0, fraction)), text=text)

    progress(f"Loading {spec.label}… (the bundled model's first start dequantizes it, ~30 s; later starts take seconds)")
    try:
        loaded = models.LOADED.get(key, progress)
    except models.ModelUnavailable as exc:
        holder.empty()
        st.error(f"**{spec.label} is not available here.** {exc}", icon="🔌")
        if key != models.default_model():
            st.info(f"Pick {models.get_spec(models.default_model()).label} in the sidebar to keep exploring.")
        return None
    except Exception:  # a broken model must not take the page down
        holder.empty()
        logger.exception("loading %s failed", key)
        st.error(f"{spec.label} failed to load; see the server log. Other models still work.")
        return None
    holder.empty()
    if loaded.how.startswith("downloaded"):
        st.toast(f"{spec.label}: {loaded.how}.", icon="📥")
    for notice in loaded.notices:
        st.toast(notice, icon="♻️")
    return loaded


def get_model(key: str) -> models.LoadedModel | None:
    """The loaded model `key` (one copy per process, shared by every session and page, never mutated), or None
    after showing why it is unavailable (the page goes on)."""
    loaded = models.LOADED.peek(key)
    if loaded is not None:
        return models.LOADED.get(key)  # marks it recently used
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
        return models.LOADED.get(f"{key}@bf16", make=lambda: models.bf16_copy(loaded))


@st.cache_resource(show_spinner=False)
def _load_tokenizer(key: str):
    """A weights-free tokenizer (GPT-2's offline vocabulary, the bundled model's tokenizer cache or GGUF, a local
    folder's tokenizer files), shared by every session."""
    return models.load_tokenizer(key)


def get_tokenizer(key: str):
    """The tokenizer of `key` without waiting for its weights where it can be had alone (GPT-2's, the bundled
    model's, a local folder's); else the loaded model's. None after showing why it is unavailable."""
    spec = models.get_spec(key)
    if spec.source == "engine":
        backend = get_backend(key)
        return backend.tokenizer if backend else None
    loaded = models.LOADED.peek(key)
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
    loaded = models.LOADED.peek(key)
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
    from dashboard.sampling import CONTROLS

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
    """SVG and PNG download buttons for an Altair chart, rendered only when pressed."""
    from dashboard.exports import chart_png, chart_svg

    row = st.container(horizontal=True)  # buttons as wide as their labels, wrapping on a narrow screen
    row.download_button("Chart as SVG", lambda: chart_svg(chart), file_name=f"{stem}.svg", mime="image/svg+xml",
                         key=f"{key}_svg", on_click="ignore")
    row.download_button("Chart as PNG", lambda: chart_png(chart), file_name=f"{stem}.png", mime="image/png",
                          key=f"{key}_png", on_click="ignore")


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
    params = {k: st.query_params.get_all(k) for k in st.query_params if k not in links.PAGE_FLAGS}
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
