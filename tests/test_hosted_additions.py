"""What the Together move added to the hosted base, apart from any backend: doctor's setup
checks between the key and the server (a failing one means the server is not asked), the SDK
check."""

from __future__ import annotations

from typing import Any, ClassVar

import pytest

from tuneport.errors import ConfigError
from tuneport.providers import sdk
from tuneport.providers.base import Check
from tuneport.providers.errormap import generic_rules
from tuneport.providers.hosted import HostedOptions, SdkBackend

API = sdk.Service(
    title="Demo",
    module="demo_sdk",
    key_env="DEMO_API_KEY",
    url_env="DEMO_BASE_URL",
    default_url="http://127.0.0.1:9",
    key_url="https://demo.example/keys",
    rules=generic_rules("Demo", status_url="u", key_fix="k", denied_fix="d"),
)


class Demo(SdkBackend[Any]):
    name = "demo"
    api = API
    options_model = HostedOptions
    setup: ClassVar[list[Check]] = []

    def _setup_checks(self) -> list[Check]:
        return list(self.setup)


@pytest.fixture(autouse=True)
def _key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DEMO_API_KEY", "demo-key-0123456789")
    monkeypatch.delenv("DEMO_BASE_URL", raising=False)


def test_a_failing_setup_check_means_the_server_is_not_asked(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    asked: list[tuple[str, Any, str]] = []

    def probe(self: sdk.Service, url: str, key: str, timeout: float, **kw: Any) -> Check:
        asked.append((url, kw.get("params"), kw.get("what")))
        return Check("server", "ok", "reachable")

    monkeypatch.setattr(sdk.Service, "probe", probe)
    monkeypatch.setattr(Demo, "setup", [Check("SDK", "ok", "demo 1.0")])
    checks = Demo()._server_checks(1.0, "/v1/limits", params={"m": "x"}, what="key works")
    assert [c.name for c in checks] == ["API key", "SDK", "server"]
    assert asked == [("http://127.0.0.1:9/v1/limits", {"m": "x"}, "key works")]
    monkeypatch.setattr(Demo, "setup", [Check("SDK", "ok", "1"), Check("URL", "fail", "bad")])
    assert [c.name for c in Demo()._server_checks(1.0)] == ["API key", "SDK", "URL"]
    assert len(asked) == 1
    monkeypatch.delenv("DEMO_API_KEY")  # not configured: the key check alone
    assert [(c.name, c.status) for c in Demo()._server_checks(1.0)] == [("API key", "skip")]


def test_the_sdk_check_names_the_version_or_what_to_install() -> None:
    class Module:
        __version__ = "3.1.1"

    def missing() -> Any:
        raise ConfigError("the SDK is not installed", hint="pip install 'tuneport[demo]'")

    ok = Demo()._sdk_check(lambda: Module, "demo")
    assert (ok.status, ok.detail) == ("ok", "demo 3.1.1")
    fail = Demo()._sdk_check(missing, "demo")
    assert (fail.status, fail.fix) == ("fail", "pip install 'tuneport[demo]'")
