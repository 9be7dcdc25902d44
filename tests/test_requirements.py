"""requirements.txt installs torch's CPU build on every supported platform x Python pair (Streamlit Community Cloud
would otherwise download ~2.7 GB of CUDA packages), and the Makefile's offline copy of it still does. Fast: no
network, no model. The facts about what PyTorch publishes, with their sources: tests/platforms.py."""

import re
import shutil
import subprocess

import pytest

from conftest import ROOT
from packaging.tags import Tag
from packaging.utils import parse_wheel_filename
from packaging.version import Version

import platforms
from platforms import PAIRS

CPU_INDEX = "https://download.pytorch.org/whl/cpu"
TORCH_CPU = 'torch==2.13.0+cpu ; sys_platform != "darwin"'
TORCH_MAC = 'torch==2.13.0 ; sys_platform == "darwin"'


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
    assert torch_pins == [TORCH_CPU, TORCH_MAC]  # the CPU build (a bare torch==2.13.0 is CUDA on Linux PyPI)


@pytest.mark.parametrize("pair", PAIRS, ids=lambda p: p.name)
def test_markers_select_the_build_pytorchs_cpu_index_publishes_for_each_pair(pair):
    """Exactly one torch line applies on each of the 12 pairs, and it names the file PyTorch's CPU index has for
    that pair: `+cpu` on Linux (x86_64 and aarch64) and Windows, the plain version on macOS."""
    req = platforms.torch_requirement(pair)
    (spec,) = req.specifier
    assert spec.operator == "=="
    name, version, _, tags = parse_wheel_filename(pair.cpu_index_wheel)
    assert (name, Version(spec.version)) == ("torch", version)
    assert (version.local == "cpu") is pair.platform.cpu_local_tag
    cp = "cp" + pair.python.replace(".", "")
    assert Tag(cp, cp, pair.platform.wheel_platform) in tags


def test_markers_are_evaluated_per_pair_not_on_this_machine():
    """The marker environments differ where they must: a requirement for macOS only, Windows only or aarch64 only
    applies on exactly that platform's three pairs."""
    from packaging.markers import Marker

    for marker, platform in (('sys_platform == "darwin"', "macOS arm64"), ('os_name == "nt"', "Windows x86_64"),
                             ('platform_machine == "aarch64"', "Linux aarch64")):
        hits = [p.name for p in PAIRS if Marker(marker).evaluate(p.environment)]
        assert hits == [f"{platform} / Python {v}" for v in platforms.PYTHONS], marker
    assert [p.python for p in PAIRS if Marker('python_version >= "3.12"').evaluate(p.environment)] == \
        ["3.12", "3.13"] * 4


def test_every_pair_gets_every_other_requirement():
    """Only torch depends on the platform: every other requirement applies on all 12 pairs."""
    names = {platforms.Requirement(l).name for l in platforms.requirement_lines()} - {"torch"}
    for pair in PAIRS:
        assert {r.name for r in platforms.selected(pair)} - {"torch"} == names, pair.name


def test_community_cloud_never_pulls_cuda():
    """Community Cloud is Linux x86_64 (Python 3.11, 3.12 or 3.13, the deployer's pick): the line it gets is the
    CPU index's +cpu build, and that build requires no nvidia-* or triton package."""
    for pair in PAIRS:
        if pair.platform.name == "Linux x86_64":
            assert str(platforms.torch_requirement(pair).specifier) == "==2.13.0+cpu"
    assert not [r for r in platforms.CPU_TORCH_REQUIRES if re.match(r"(nvidia|triton|cuda)", r, re.I)]


def test_cpu_wheel_on_disk_is_the_stated_one():
    """The CPU index's Linux x86_64 / 3.11 file lies on this machine: its name is the one the facts give for that
    pair, and its own requirements are CPU_TORCH_REQUIRES (what tests/test_resolution.py resolves for +cpu pairs)."""
    wheel = platforms.CPU_WHEEL_ON_DISK
    if not wheel.exists():
        pytest.skip(f"{wheel} is not on this machine")
    pair = next(p for p in PAIRS if p.platform.name == "Linux x86_64" and p.python == "3.11")
    assert wheel.name == pair.cpu_index_wheel
    assert sorted(platforms.wheel_requires(wheel)) == sorted(platforms.CPU_TORCH_REQUIRES)


def test_no_requirement_pins_a_cuda_build_or_nvidia_package():
    for name in ("requirements.txt", "requirements-test.txt"):
        for line in _lines((ROOT / name).read_text()):
            assert not re.search(r"\+cu\d+|nvidia|cuda|/whl/cu\d", line, re.I), f"{name}: {line}"


def test_makefile_offline_copy_drops_only_the_index_line(tmp_path):
    original = (ROOT / "requirements.txt").read_text()
    copy = _offline_copy(tmp_path)
    assert not [l for l in _lines(copy) if "--extra-index-url" in l or "download.pytorch.org" in l]
    assert TORCH_CPU in _lines(copy)  # satisfied by the local torch wheel where the index is out of reach
    assert TORCH_MAC in _lines(copy)
    assert _lines(copy) == [l for l in _lines(original) if not l.startswith("--extra-index-url")]
