"""Production configuration and code rules: no tracebacks for users, XSRF on, no remote code, no pickles."""

import re
import tomllib

from conftest import ROOT

CODE = [ROOT / "streamlit_app.py", *ROOT.glob("pages/*.py"), *ROOT.glob("dashboard/*.py")]


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
    for path in ROOT.glob("dashboard/*.py"):
        if path.name == "ui.py":
            continue
        assert not re.search(r"^\s*(import streamlit|from streamlit)", path.read_text(), re.M), path


def test_weights_load_only_from_safetensors_or_gguf():
    text = (ROOT / "dashboard" / "models.py").read_text()
    assert text.count("use_safetensors=True") >= 3  # local folders, the cache and the Hub
