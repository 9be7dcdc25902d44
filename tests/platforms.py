"""The 12 platform x Python pairs Tokenscope supports, their marker environments, and what PyTorch publishes for
each: the facts the requirements tests check requirements.txt against (tests/test_requirements.py, offline) and
resolve it with (tests/test_resolution.py, against the package registry)."""

from __future__ import annotations

import re
import zipfile
from dataclasses import dataclass
from pathlib import Path

from packaging.requirements import Requirement

ROOT = Path(__file__).resolve().parent.parent
TORCH_VERSION = "2.13.0"
PYTHONS = ("3.11", "3.12", "3.13")


@dataclass(frozen=True)
class Platform:
    name: str
    markers: dict          # PEP 508 marker values a Python on this platform reports
    uv_target: str         # `uv pip compile --python-platform`
    wheel_platform: str    # the platform tag of torch's wheels for it (PyPI and the CPU index alike)
    cpu_local_tag: bool    # PyTorch's CPU index names the build `2.13.0+cpu` (else the plain version)


PLATFORMS = (
    Platform("Linux x86_64", {"sys_platform": "linux", "platform_system": "Linux", "platform_machine": "x86_64",
                              "os_name": "posix"}, "x86_64-manylinux_2_28", "manylinux_2_28_x86_64", True),
    Platform("Linux aarch64", {"sys_platform": "linux", "platform_system": "Linux", "platform_machine": "aarch64",
                               "os_name": "posix"}, "aarch64-manylinux_2_28", "manylinux_2_28_aarch64", True),
    Platform("macOS arm64", {"sys_platform": "darwin", "platform_system": "Darwin", "platform_machine": "arm64",
                             "os_name": "posix"}, "aarch64-apple-darwin", "macosx_14_0_arm64", False),
    Platform("Windows x86_64", {"sys_platform": "win32", "platform_system": "Windows", "platform_machine": "AMD64",
                                "os_name": "nt"}, "x86_64-pc-windows-msvc", "win_amd64", True),
)

# Where these facts come from (PyTorch's CPU index, https://download.pytorch.org/whl/cpu/torch/, cannot be reached
# from this machine, so they are stated here, with their sources):
# - Linux x86_64: the CPU index's file for Python 3.11 lies on this machine's disk,
#   /opt/wheels/torch-2.13.0+cpu-cp311-cp311-manylinux_2_28_x86_64.whl (test_cpu_wheel_on_disk_is_the_stated_one
#   reads it when it is there); its metadata requires no nvidia-* or triton package (CPU_TORCH_REQUIRES below).
# - Linux aarch64: the CPU index has tagged aarch64 builds `+cpu` since 2.6 (pytorch/pytorch#141619:
#   torch-2.6.0.dev20241126+cpu-cp310-cp310-manylinux_2_28_aarch64.whl); before that they carried no tag
#   (pytorch/pytorch#110791). PyPI's aarch64 torch 2.13.0 requires the nvidia-* packages (a CUDA build).
# - Windows: the CPU index has always named its Windows builds `+cpu` (torch-1.2.0+cpu-cp37-cp37m-win_amd64.whl ...).
# - macOS: "MacOS [binaries] do not have +cpu suffix" (pytorch/pytorch#110791, a PyTorch maintainer); the index
#   serves the same file as PyPI, whose torch 2.13.0 macOS wheels are macosx_14_0_arm64 for cp310-cp314 (read off the
#   registry's file list; there is no x86_64 macOS wheel since torch 2.3).
# - Wheel platform tags for 2.13.0 (manylinux_2_28_x86_64, manylinux_2_28_aarch64, macosx_14_0_arm64, win_amd64):
#   the registry's file list of torch 2.13.0, which tests/test_resolution.py resolves against.
CPU_TORCH_REQUIRES = (  # Requires-Dist of torch-2.13.0+cpu (the wheel on disk), extras left out
    "filelock", "typing-extensions>=4.10.0", "setuptools>=77.0.3", "sympy>=1.13.3", "networkx>=2.5.1", "jinja2",
    "fsspec>=0.8.5",
)
CPU_WHEEL_ON_DISK = Path("/opt/wheels/torch-2.13.0+cpu-cp311-cp311-manylinux_2_28_x86_64.whl")


@dataclass(frozen=True)
class Pair:
    platform: Platform
    python: str  # "3.12"

    @property
    def name(self) -> str:
        return f"{self.platform.name} / Python {self.python}"

    @property
    def environment(self) -> dict:
        """PEP 508 marker environment of a CPython `python` on this platform."""
        return {**self.platform.markers, "python_version": self.python, "python_full_version": f"{self.python}.0",
                "implementation_name": "cpython", "platform_python_implementation": "CPython",
                "implementation_version": f"{self.python}.0", "platform_release": "", "platform_version": ""}

    @property
    def cpu_index_wheel(self) -> str:
        """The file PyTorch's CPU index publishes for this pair (see the facts above)."""
        tag = f"cp{self.python.replace('.', '')}"
        version = TORCH_VERSION + ("+cpu" if self.platform.cpu_local_tag else "")
        return f"torch-{version}-{tag}-{tag}-{self.platform.wheel_platform}.whl"


PAIRS = tuple(Pair(p, py) for p in PLATFORMS for py in PYTHONS)


def requirement_lines(path: Path = ROOT / "requirements.txt") -> list[str]:
    """The requirement lines of `path` (no comments, no options)."""
    lines = [re.sub(r"\s+#.*$", "", line).strip() for line in path.read_text().splitlines()]
    return [line for line in lines if line and not line.startswith(("#", "-"))]


def selected(pair: Pair, path: Path = ROOT / "requirements.txt") -> list[Requirement]:
    """The requirements of `path` that apply on `pair` (their markers evaluated for it)."""
    reqs = [Requirement(line) for line in requirement_lines(path)]
    return [r for r in reqs if r.marker is None or r.marker.evaluate(pair.environment)]


def torch_requirement(pair: Pair) -> Requirement:
    """The one torch requirement that applies on `pair`."""
    torch = [r for r in selected(pair) if r.name == "torch"]
    assert len(torch) == 1, f"{pair.name}: {len(torch)} torch requirements apply: {[str(r) for r in torch]}"
    return torch[0]


def wheel_requires(wheel: Path) -> list[str]:
    """The Requires-Dist lines of a wheel that no extra asks for."""
    with zipfile.ZipFile(wheel) as zf:
        meta = next(n for n in zf.namelist() if n.endswith(".dist-info/METADATA"))
        text = zf.read(meta).decode()
    out = []
    for line in text.splitlines():
        if line.startswith("Requires-Dist:"):
            req = Requirement(line.split(":", 1)[1].strip())
            if req.marker is None or "extra" not in str(req.marker):
                out.append(str(req))
    return out
