"""The plugin contract: ``tuneport.providers.__all__`` is everything a backend author needs, the
example plugins import nothing else of tuneport, the Protocol holds what every backend does, and
every backend says which generic job settings it uses.
"""

from __future__ import annotations

import ast
import dataclasses
import importlib
import inspect
import subprocess
import sys
from pathlib import Path

import pytest

import tuneport.providers as contract
from tuneport.jobs.quote import ignored_settings
from tuneport.providers import base, registry
from tuneport.providers.builtin import BUILTIN
from tuneport.schemas import GENERIC_SETTINGS, JobConfig

ROOT = Path(__file__).resolve().parent.parent
# the backends written as a third party writes one (entry point or `registry.register`)
PLUGINS = {
    "tests.fakes.plugin_backend": ROOT / "tests" / "fakes" / "plugin_backend.py",
    "tests.fakes.fake_provider": ROOT / "tests" / "fakes" / "fake_provider.py",
}
# JobConfig fields that are no backend's choice to use or ignore: every backend acts on
# provider, model, data and method (or refuses the method in its preflight), max_cost is
# tuneport's own guard and options the backend's own settings. A new field goes here or in
# GENERIC_SETTINGS, and then every backend says whether it uses it.
NOT_GENERIC = {"provider", "model", "data", "method", "max_cost", "options"}
# optional capabilities every built-in backend has and that stay optional on purpose
OPTIONAL_BY_DESIGN = {
    # `tuneport port` names the backends that can be a source; a plugin may not be one
    "ReturnsData",
}


def test_every_name_in_all_resolves() -> None:
    assert len(contract.__all__) == len(set(contract.__all__))
    for name in contract.__all__:
        assert getattr(contract, name) is not None, name
    for name in ("Backend", "Provider", "parse_options", "export_prepared", "create_once"):
        assert name in contract.__all__
    with pytest.raises(AttributeError):
        _ = contract.NoSuchName


def test_the_contract_is_loaded_on_first_use() -> None:
    code = (
        "import sys, tuneport.providers as p, tuneport.providers.builtin; "
        "assert 'tuneport.providers.base' not in sys.modules, 'loaded at import'; "
        "p.Backend; assert 'tuneport.providers.base' in sys.modules"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=ROOT)


@pytest.mark.parametrize("module", sorted(PLUGINS))
def test_example_plugins_import_only_the_contract(module: str) -> None:
    tree = ast.parse(PLUGINS[module].read_text(encoding="utf-8"))
    outside = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            names = [node.module or ""] if not node.level else ["<relative>"]
        else:
            continue
        outside += [
            f"line {node.lineno}: {name}"
            for name in names
            if (name.startswith("tuneport") and name != "tuneport.providers")
            or name.startswith("tests")
            or name == "<relative>"
        ]
    assert outside == [], f"{module} must import tuneport only through tuneport.providers"
    imported = {
        alias.name
        for node in ast.walk(tree)
        if isinstance(node, ast.ImportFrom) and node.module == "tuneport.providers"
        for alias in node.names
    }
    assert imported <= set(contract.__all__)


def _implementations() -> dict[str, type]:
    found = {}
    for name in [*BUILTIN, "echo", "fake"]:
        described = (
            registry.backend(name)
            if name in BUILTIN
            else importlib.import_module(f"tests.fakes.{_FAKES[name]}").BACKEND
        )
        module, _, attr = described.implementation.partition(":")
        found[name] = getattr(importlib.import_module(module), attr)
    return found


_FAKES = {"echo": "plugin_backend", "fake": "fake_provider"}


def _members(protocol: type) -> set[str]:
    names = {n for n in vars(protocol) if not n.startswith("_")}
    return names | set(getattr(protocol, "__annotations__", {}))


def _has(cls: type, protocol: type) -> bool:
    return all(hasattr(cls, m) for m in _members(protocol))


def test_every_backend_implements_the_whole_protocol() -> None:
    members = _members(base.Provider) - {"name"}
    assert {"doctor", "preflight"} <= members  # folded in: every backend has them
    for name, cls in _implementations().items():
        missing = sorted(m for m in members if not callable(getattr(cls, m, None)))
        assert missing == [], f"{name}: {missing}"


def test_optional_capabilities_are_ones_some_backend_lacks() -> None:
    """A capability every built-in backend has belongs in Provider (no isinstance for it)."""
    protocols = [
        obj
        for name, obj in vars(base).items()
        if inspect.isclass(obj)
        and getattr(obj, "_is_runtime_protocol", False)
        and name not in ("Provider", "UploadIndex", "JobLookup")  # not capabilities
    ]
    assert len(protocols) >= 5
    built_in = {n: c for n, c in _implementations().items() if n in BUILTIN}
    everywhere = sorted(
        p.__name__ for p in protocols if all(_has(cls, p) for cls in built_in.values())
    )
    assert everywhere == sorted(OPTIONAL_BY_DESIGN)
    assert all(p in contract.__all__ for p in (p.__name__ for p in protocols))


# --- generic job settings: each backend says whether it uses each -------------------------------


def test_the_generic_settings_are_every_other_job_field() -> None:
    assert set(JobConfig.model_fields) - NOT_GENERIC == set(GENERIC_SETTINGS)
    assert all(JobConfig.model_fields[f].default is None for f in GENERIC_SETTINGS)


@pytest.mark.parametrize("name", [*BUILTIN, "echo", "fake"])
def test_every_backend_classifies_every_generic_setting(name: str) -> None:
    described = (
        registry.backend(name)
        if name in BUILTIN
        else importlib.import_module(f"tests.fakes.{_FAKES[name]}").BACKEND
    )
    unclassified = set(GENERIC_SETTINGS) - described.uses - set(described.ignores)
    assert unclassified == set(), f"{name} says neither uses nor ignores {sorted(unclassified)}"
    assert not described.uses & set(described.ignores)
    assert all(why.strip() for why in described.ignores.values())


def test_a_misspelled_setting_in_a_descriptor_is_refused() -> None:
    from tuneport.providers import openai

    with pytest.raises(ValueError, match=r"unknown generic settings \['batchsize'\]"):
        dataclasses.replace(openai.BACKEND, uses=frozenset({"batchsize"}))
    with pytest.raises(ValueError, match=r"\['seed'\] both used and ignored"):
        dataclasses.replace(openai.BACKEND, ignores={"seed": "no"})


def _cfg(provider: str, **settings: object) -> JobConfig:
    return JobConfig.model_validate(
        {"provider": provider, "model": "m", "data": "d.jsonl", **settings}
    )


def test_one_warning_per_ignored_setting_that_is_set() -> None:
    local, vertex, together = (registry.backend(n) for n in ("local", "vertex", "together"))
    everything = {
        "validation": "v.jsonl",
        "epochs": 2,
        "learning_rate_multiplier": 0.5,
        "batch_size": 8,
        "suffix": "mine",
        "seed": 3,
    }
    assert ignored_settings(together, _cfg("together", **everything)) == []
    assert ignored_settings(local, _cfg("local", **everything)) == [
        "--suffix is ignored by local QLoRA: a local run and its adapter are named by the run id"
    ]
    assert ignored_settings(local, _cfg("local", epochs=2)) == []  # not set: nothing to say
    warned = ignored_settings(vertex, _cfg("vertex", **everything))
    assert [w.split(" is ignored by ")[0] for w in warned] == ["--batch-size", "--seed"]
    assert all(" is ignored by Vertex AI (Gemini): " in w for w in warned)


def test_the_estimate_shows_the_ignored_settings() -> None:
    from tuneport.jobs.quote import estimate

    sample = ROOT / "fixtures" / "sample" / "chat.jsonl"
    cfg = JobConfig(
        provider="vertex", model="gemini-2.5-flash", data=sample, batch_size=8, suffix="x"
    )
    assert [w for w in estimate(cfg).warnings if "is ignored by" in w] == [
        "--batch-size is ignored by Vertex AI (Gemini): "
        + registry.backend("vertex").ignores["batch_size"]
    ]
