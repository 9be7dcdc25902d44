"""requirements.txt installs torch's CPU build (Streamlit Community Cloud would otherwise download ~2.7 GB of
CUDA packages), and the Makefile's offline copy of it still does. Fast: no network, no model."""

import re
import shutil
import subprocess

import pytest

from conftest import ROOT

CPU_INDEX = "https://download.pytorch.org/whl/cpu"
TORCH_CPU = "torch==2.13.0+cpu"


def _lines(text: str) -> list[str]:
    return [line.split("#")[0].strip() for line in text.splitlines() if line.split("#")[0].strip()]


def _offline_copy(tmp_path) -> str:
    """Run the Makefile's own rule that writes requirements.txt without the index line (into tmp_path)."""
    if shutil.which("make") is None:
        pytest.skip("make is not installed")
    target = tmp_path / "requirements-offline.txt"
    out = subprocess.run(
        ["make", "-s", "-C", str(ROOT), f"VENV={tmp_path}", str(target)],
        capture_output=True, text=True, timeout=60,
    )
    assert out.returncode == 0, out.stderr
    return target.read_text()


def test_requirements_install_torch_cpu_build_from_pytorch_cpu_index():
    lines = _lines((ROOT / "requirements.txt").read_text())
    assert TORCH_CPU in lines
    assert [l for l in lines if l.startswith("--")] == [f"--extra-index-url {CPU_INDEX}"]
    torch_pins = [l for l in lines if re.match(r"torch\s*[=<>!~@ ;\[]", l)]
    assert torch_pins == [TORCH_CPU]  # one pin, the CPU build (a bare torch==2.13.0 is CUDA on Linux PyPI)


def test_no_requirement_pins_a_cuda_build_or_nvidia_package():
    for name in ("requirements.txt", "requirements-test.txt"):
        for line in _lines((ROOT / name).read_text()):
            assert not re.search(r"\+cu\d+|nvidia|cuda|/whl/cu\d", line, re.I), f"{name}: {line}"


def test_makefile_offline_copy_drops_only_the_index_line(tmp_path):
    original = (ROOT / "requirements.txt").read_text()
    copy = _offline_copy(tmp_path)
    assert not [l for l in _lines(copy) if "--extra-index-url" in l or "download.pytorch.org" in l]
    assert TORCH_CPU in _lines(copy)  # satisfied by the local torch wheel where the index is out of reach
    assert _lines(copy) == [l for l in _lines(original) if not l.startswith("--extra-index-url")]
