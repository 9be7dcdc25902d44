"""Production configuration and code rules: no tracebacks for users, XSRF on, no remote code, no pickles."""

import re
import tomllib

from conftest import ROOT

CODE = [ROOT / "streamlit_app.py", *ROOT.glob("pages/*.py"), *ROOT.glob("dashboard/**/*.py")]


def test_production_config():
    config = tomllib.loads((ROOT / ".streamlit" / "config.toml").read_text())
    assert config["client"]["showErrorDetails"] == "none"
    assert config["server"]["enableXsrfProtection"] is True
    assert config["server"]["fileWatcherType"] == "none"
    assert config["browser"]["gatherUsageStats"] is False


def test_no_remote_code_and_no_pickle_loading():
    for path in CODE:
        text = path.read_text()
        assert not re.search(r"trust_remote_code\s*=\s*True", text), path
        assert "torch.load(" not in text and not re.search(r"import pickle|pickle\.load", text), path
        assert "unsafe_allow_html=True" not in text, path  # HTML goes through escaped st.html views only


def test_only_ui_and_pages_import_streamlit():
    for path in ROOT.glob("dashboard/*.py"):  # the Streamlit glue is the dashboard/ui package, not scanned here
        assert not re.search(r"^\s*(import streamlit|from streamlit)", path.read_text(), re.M), path


def _calls(name: str):
    """(path, call node) for every call of an attribute or function called `name` in the app's code."""
    import ast

    for path in CODE:
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Call):
                func = node.func
                called = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", None)
                if called == name:
                    yield path, node


def test_weights_load_only_from_safetensors_or_gguf():
    """The code itself, not its text: a comment or a string cannot satisfy this."""
    import ast

    model_loads = 0
    for path, call in _calls("from_pretrained"):
        receiver = ast.unparse(call.func.value)
        keywords = {k.arg: k.value for k in call.keywords}
        assert "trust_remote_code" not in keywords, f"{path}:{call.lineno} passes trust_remote_code"
        if "Tokenizer" in receiver or receiver.endswith("Config"):
            continue  # tokenizers and configs read JSON / vocab files, never weights
        model_loads += 1
        safe = keywords.get("use_safetensors")
        assert (isinstance(safe, ast.Constant) and safe.value is True) or "gguf_file" in keywords, (
            f"{path}:{call.lineno} {receiver}.from_pretrained passes neither use_safetensors=True nor gguf_file"
        )
    assert model_loads >= 2  # the GGUF and every safetensors folder (the cache, local folders, Hub snapshots)
    assert not list(_calls("load")) or all(ast.unparse(c.func) != "torch.load" for _, c in _calls("load"))


def test_hub_downloads_never_fetch_pickle_files():
    from dashboard import hub

    for suffix in (".bin", ".pt", ".pth", ".ckpt", ".pkl"):
        assert suffix in hub.PICKLE_SUFFIXES
        assert not suffix.endswith(hub.WEIGHT_SUFFIX)
    assert all(not name.endswith(hub.PICKLE_SUFFIXES) for name in hub.MODEL_FILES + hub.TOKENIZER_FILES)


def _dashboard_imports() -> dict[str, set[str]]:
    """{module: the dashboard modules it imports anywhere in its code}."""
    import ast

    graph = {}
    for path in (ROOT / "dashboard").rglob("*.py"):
        parts = path.relative_to(ROOT).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        deps = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("dashboard"):
                deps |= ({f"dashboard.{a.name}" for a in node.names} if node.module == "dashboard" else {node.module})
            elif isinstance(node, ast.Import):
                deps |= {a.name for a in node.names if a.name.startswith("dashboard")}
        graph[name] = deps - {name}
    return graph


def test_no_two_dashboard_modules_import_each_other():
    """One direction between any two modules (e.g. loaded.py builds on models.py, never the reverse); a package
    and its own submodule (ui and ui.linking, which re-exports it) are one unit."""
    graph = _dashboard_imports()
    assert "dashboard.models" in graph["dashboard.loaded"] and "dashboard.loaded" in graph["dashboard.backends"]
    mutual = sorted((a, b) for a in graph for b in graph[a] if a < b and a in graph.get(b, ())
                    and not b.startswith(a + "."))
    assert mutual == []


def test_pages_reach_models_only_through_backends_and_ui():
    for path in ROOT.glob("pages/*.py"):
        text = path.read_text()
        assert not re.search(r"from dashboard import [^\n]*\b(models|loaded|weights|hub)\b", text), path
        assert not re.search(r"from dashboard\.(models|loaded|weights|hub) import", text), path


def test_pages_import_nothing_heavy_before_their_guard():
    """A fresh server runs its first visitor's page once as a bare `pages/` script before ui.page_guard() reruns
    the entry: whatever a page imports above the guard (torch, pandas, the views: 2-4 s) delays the first bar of a
    first start by as much (seen here: the sidebar at 5.2 s instead of 1.8 s)."""
    import ast

    allowed = {"streamlit", "dashboard", "dashboard.ui"}
    for page in sorted((ROOT / "pages").glob("*.py")):
        tree = ast.parse(page.read_text())
        for node in tree.body:
            if isinstance(node, ast.Expr) and "page_guard" in ast.unparse(node):
                break
            if isinstance(node, ast.Import):
                names = {a.name for a in node.names}
            elif isinstance(node, ast.ImportFrom):
                names = {node.module} if node.module != "dashboard" else {f"dashboard.{a.name}" for a in node.names}
            else:
                continue
            assert names <= allowed, f"{page.name} imports {names - allowed} before ui.page_guard()"
        else:
            raise AssertionError(f"{page.name} never calls ui.page_guard()")
