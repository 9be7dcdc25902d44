"""The README's commands for a machine without `make` work as written: the pip block runs line by line, exactly as
the README has it, in a fresh venv in a fresh copy of the repository; the app it starts answers, and the test command
runs tests. PowerShell cannot run here (Linux), so the Windows block is held to the same lines: its first two are
the Windows forms of the pip block's (the `py` launcher, Activate.ps1), the four after them are the pip block's own
lines, which this test runs. Needs the registry (it installs requirements.txt); ~3 minutes."""

import os
import re
import shutil
import signal
import socket
import subprocess
import time
import urllib.request

import pytest

from conftest import ROOT

pytestmark = pytest.mark.registry

WINDOWS_SETUP = ["py -3.11 -m venv .venv", r".venv\Scripts\Activate.ps1"]
POSIX_SETUP = ["python3 -m venv .venv", ". .venv/bin/activate"]


def _blocks() -> tuple[list[str], list[str]]:
    """(the PowerShell block's lines, the bash block's lines) of the README's "Without make" paragraph."""
    text = (ROOT / "README.md").read_text()
    section = text[text.index("**Without `make`**"):]
    ps = re.search(r"```powershell\n(.*?)```", section, re.S).group(1).strip().splitlines()
    sh = re.search(r"```bash\n(.*?)```", section, re.S).group(1).strip().splitlines()
    return ps, sh


def test_windows_block_is_the_pip_block_with_windows_setup():
    ps, sh = _blocks()
    assert ps[:2] == WINDOWS_SETUP and sh[:2] == POSIX_SETUP
    assert ps[2:] == sh[2:]
    assert sh[-2:] == ["streamlit run streamlit_app.py", "python -m pytest"]  # `make run`, `make test`


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.timeout(1800)
def test_the_pip_block_runs_as_written_in_a_fresh_venv(tmp_path):
    _, lines = _blocks()
    setup, run, test = lines[:-2], lines[-2], lines[-1]
    copy = tmp_path / "tokenscope"
    files = subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, text=True, check=True)
    for name in filter(None, files.stdout.split("\0")):
        (copy / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(ROOT / name, copy / name)
    env = {k: v for k, v in os.environ.items() if k not in ("VIRTUAL_ENV", "PYTHONPATH", "PYTEST_ADDOPTS")}
    env["PATH"] = os.pathsep.join(p for p in env["PATH"].split(os.pathsep) if ".venv" not in p)
    # PyTorch's CPU index is out of reach here: pip would retry it 5 times per package (~10 minutes in all); a
    # person's machine reaches it. torch's +cpu wheel then comes from this machine's find-links (/opt/wheels).
    env["PIP_RETRIES"] = "0"

    def bash(script: str, **kw):
        return subprocess.run(["bash", "-ec", script], cwd=copy, env={**env, **kw.pop("extra", {})},
                              capture_output=True, text=True, **kw)

    out = bash("\n".join(setup), timeout=1200)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    assert (copy / ".venv/bin/streamlit").exists()

    # `streamlit run streamlit_app.py`, as written, after the activation line: it serves the app.
    port = _free_port()
    server = subprocess.Popen(["bash", "-ec", f"{setup[1]}\nexec {run}"], cwd=copy, start_new_session=True,
                              env={**env, "STREAMLIT_SERVER_PORT": str(port), "STREAMLIT_SERVER_HEADLESS": "true"},
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        deadline, health = time.monotonic() + 90, None
        while time.monotonic() < deadline and server.poll() is None:
            try:
                health = urllib.request.urlopen(f"http://127.0.0.1:{port}/_stcore/health", timeout=2).read()
                break
            except OSError:
                time.sleep(0.5)
        assert health == b"ok", "the app did not come up"
        page = urllib.request.urlopen(f"http://127.0.0.1:{port}/next-token", timeout=5).read().decode()
        assert "<title>Streamlit</title>" in page or "streamlit" in page.lower()
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        log = server.communicate(timeout=30)[0]
    assert "Traceback" not in log, log[-3000:]

    # `python -m pytest`, as written: narrowed to the tokenizer tests through pytest's own PYTEST_ADDOPTS (the whole
    # suite is what `make test` runs around this test).
    out = bash(f"{setup[1]}\n{test}", timeout=600, extra={"PYTEST_ADDOPTS": "-q -p no:cacheprovider tests/test_tokens.py"})
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    assert re.search(r"\d+ passed", out.stdout), out.stdout[-2000:]
