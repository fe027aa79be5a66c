"""The install is locked: the README's install command takes requirements.lock, and the lock
holds an exact pin, inside pyproject's range, for every dependency pyproject names."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

ROOT = Path(__file__).resolve().parent.parent
TORCH_STACK = re.compile(r"^(torch|triton|nvidia-[a-z0-9-]+|cuda-[a-z0-9-]+)$")


def _readme_block(tag: str) -> str:
    lines = (ROOT / "README.md").read_text(encoding="utf-8").splitlines()
    start = lines.index(f"<!-- ci:{tag} -->")
    assert lines[start + 1].startswith("```")
    return lines[start + 2]


def _locked() -> dict[str, list[Version]]:
    pins: dict[str, list[Version]] = {}
    for line in (ROOT / "requirements.lock").read_text(encoding="utf-8").splitlines():
        if not line or line.startswith((" ", "#")):
            continue
        req = Requirement(line)
        (spec,) = req.specifier
        assert spec.operator == "==", f"not an exact pin: {line}"
        pins.setdefault(canonicalize_name(req.name), []).append(Version(spec.version))
    return pins


def _unlocked_extras() -> set[str]:
    """The extras .ci/relock leaves out of the lock (UNLOCKED_EXTRAS=(...))."""
    relock = (ROOT / ".ci" / "relock").read_text(encoding="utf-8")
    found = re.search(r"^UNLOCKED_EXTRAS=\(([^)]*)\)", relock, re.M)
    assert found, "UNLOCKED_EXTRAS missing from .ci/relock"
    return set(found.group(1).split())


def _declared() -> list[Requirement]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    reqs = [Requirement(r) for r in project["dependencies"]]
    unlocked = _unlocked_extras()
    for name, extra in project["optional-dependencies"].items():
        if name not in unlocked:
            reqs += [Requirement(r) for r in extra]
    return reqs


def test_only_the_sky_extra_is_left_out_of_the_lock() -> None:
    # installing the lock installs all it holds: SkyPilot stays out, for --on sky users only
    assert _unlocked_extras() == {"sky"}
    install = _readme_block("install")
    assert "sky" not in install.split("-e", 1)[1].split()[0]


def test_readme_install_takes_the_lock_with_uv_and_pins_torch() -> None:
    install = _readme_block("install")
    assert "uv pip install" in install and "-r requirements.lock" in install
    relock = (ROOT / ".ci" / "relock").read_text(encoding="utf-8")
    uv = re.search(r"^UV_VERSION=(\S+)", relock, re.M)
    torch = re.search(r"^TORCH=(\S+)", relock, re.M)
    assert uv and f'"uv=={uv.group(1)}"' in install
    assert torch and f'"torch=={torch.group(1)}"' in install


def test_every_declared_dependency_is_pinned_within_its_range() -> None:
    pins = _locked()
    for req in _declared():
        name = canonicalize_name(req.name)
        if TORCH_STACK.match(name):
            assert name not in pins  # pinned by the install command, not the lock
            continue
        assert name in pins, f"{req.name} is not in requirements.lock: run `bash .ci/relock`"
        assert any(req.specifier.contains(v, prereleases=True) for v in pins[name]), (
            f"requirements.lock pins {req.name} {pins[name]} outside {req.specifier}"
        )


def test_the_lock_leaves_the_cuda_stack_to_torch() -> None:
    assert not [name for name in _locked() if TORCH_STACK.match(name)]
