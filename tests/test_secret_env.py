"""Credentials in the environment are never shown: each backend's descriptor names the
variables that hold them (``Backend.secret_env``) and the registry registers them with
:mod:`tuneport.errors` as it loads the descriptor, plugins included."""

from __future__ import annotations

import dataclasses

import pytest

from tuneport.errors import ProviderError, redact
from tuneport.providers import registry
from tuneport.providers.builtin import BUILTIN

# what each built-in backend (or the SDK it drives) reads a credential from; not secrets:
# GOOGLE_APPLICATION_CREDENTIALS (a file's path), project/account ids, base URLs
EXPECTED = {
    "openai": {"OPENAI_API_KEY"},
    "vertex": {"TUNEPORT_VERTEX_ACCESS_TOKEN", "GOOGLE_API_KEY", "GEMINI_API_KEY"},
    "local": {"HF_TOKEN", "HUGGING_FACE_HUB_TOKEN"},
    "together": {"TOGETHER_API_KEY"},
    "fireworks": {"FIREWORKS_API_KEY"},
    "azure": {"AZURE_OPENAI_API_KEY", "AZURE_MANAGEMENT_TOKEN"},
}
PLUGIN = "tests.fakes.plugin_backend"


def _declared() -> set[tuple[str, str]]:
    return {(b.name, env) for b in registry.backends() for env in getattr(b, "secret_env", ())}


PAIRS = sorted({(name, env) for name, envs in EXPECTED.items() for env in envs} | _declared())


def _value(env: str) -> str:
    # no known key shape (sk-, ya29., AIza): only the variable's registration can hide it
    return f"Q7v{env.lower().replace('_', '')}X93kd"


def test_every_built_in_backend_declares_its_credentials() -> None:
    assert set(EXPECTED) == set(BUILTIN)
    for name in BUILTIN:
        assert set(registry.backend(name).secret_env) == EXPECTED[name], name


@pytest.mark.parametrize(("name", "env"), PAIRS)
def test_a_credential_from_the_environment_is_redacted_from_errors(
    name: str, env: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    value = _value(env)
    monkeypatch.setenv(env, value)
    registry.backend(name)
    error = ProviderError(f"the server said: bad credential {value!r}", hint=f"check {env}")
    shown = error.one_line()
    assert value not in shown and "***" in shown and env in shown
    assert value not in redact(f"{env}={value}")


def test_a_plugins_declared_credential_is_redacted_once_it_is_loaded(
    echo_plugin: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    value = _value("ECHO_API_KEY_PLUGIN")
    monkeypatch.setenv("ECHO_API_KEY", value)
    assert registry.backend("echo").secret_env == ("ECHO_API_KEY",)
    assert value not in ProviderError(f"rejected key {value}").one_line()


def test_a_descriptor_registered_at_run_time_has_its_credential_redacted(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    embedded = dataclasses.replace(
        registry.backend("openai"), name="embedded", secret_env=("EMBEDDED_SERVICE_TOKEN",)
    )
    value = _value("EMBEDDED_SERVICE_TOKEN")
    monkeypatch.setenv("EMBEDDED_SERVICE_TOKEN", value)
    with registry.registered("embedded", embedded):
        assert value not in redact(f"token {value} refused")
