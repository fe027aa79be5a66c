"""`tuneport doctor` against fakes on 127.0.0.1: keys present and accepted, servers reachable,
Vertex credentials/project/bucket, packages for local, price-table age; no secret printed."""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from datetime import date
from pathlib import Path

import pytest

from tests.fakes.openai_server import FakeOpenAI
from tests.fakes.vertex_server import running_fake_vertex
from tuneport.cli.main import run
from tuneport.jobs.doctor import STALE_AFTER_DAYS, diagnose, price_age
from tuneport.providers import registry
from tuneport.providers.base import Diagnosable

KEY = "sk-test-DOCTOR123456789"
TOKEN = "ya29.doctor-token-0123456789"


@pytest.fixture
def no_gcloud(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No gcloud ADC file from the machine running the tests."""
    monkeypatch.setenv("CLOUDSDK_CONFIG", str(tmp_path / "gcloud"))


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _doctor(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, dict[str, object]]:
    code = run(["doctor", "--json", "--timeout", "2", *args])
    out, err = capsys.readouterr()
    assert KEY not in out + err and TOKEN not in out + err
    doc: dict[str, object] = json.loads(out)
    return code, doc


def _checks(doc: dict[str, object], name: str) -> dict[str, str]:
    backends = doc["backends"]
    assert isinstance(backends, list)
    (backend,) = [b for b in backends if b["name"] == name]
    return {c["name"]: c["status"] for c in backend["checks"]}


@pytest.fixture
def fake_openai(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeOpenAI]:
    with FakeOpenAI(api_key=KEY) as server:
        monkeypatch.setenv("OPENAI_BASE_URL", server.base_url)
        yield server


@pytest.mark.usefixtures("no_gcloud")
def test_unconfigured_backends_do_not_fail(capsys: pytest.CaptureFixture[str]) -> None:
    code, doc = _doctor(capsys, "-p", "openai", "-p", "vertex")
    assert code == 0 and doc["ok"] is True
    assert _checks(doc, "openai") == {"API key": "skip"}
    assert _checks(doc, "vertex") == {"credentials": "skip"}
    assert run(["doctor", "-p", "openai"]) == 0
    out = capsys.readouterr().out
    assert "openai (OpenAI): not configured" in out and "export OPENAI_API_KEY" in out
    assert "OPENAI_API_KEY unset" in out


def test_openai_key_accepted_rejected_or_server_unreachable(
    fake_openai: FakeOpenAI, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    code, doc = _doctor(capsys, "-p", "openai")
    assert code == 0 and _checks(doc, "openai") == {"API key": "ok", "server": "ok", "prices": "ok"}
    assert fake_openai.calls("GET", "/models")

    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-WRONG0000000000")
    code, doc = _doctor(capsys, "-p", "openai")
    assert code == 1 and _checks(doc, "openai")["server"] == "fail"
    assert run(["doctor", "-p", "openai"]) == 1
    out = capsys.readouterr().out
    assert "rejected the key (401)" in out and "WRONG" not in out

    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    monkeypatch.setenv("OPENAI_BASE_URL", f"http://127.0.0.1:{_closed_port()}/v1")
    code, doc = _doctor(capsys, "-p", "openai")
    assert code == 1 and _checks(doc, "openai")["server"] == "fail"


@pytest.mark.usefixtures("no_gcloud")
def test_vertex_credentials_project_bucket_and_server(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    with running_fake_vertex() as server:
        monkeypatch.setenv("GOOGLE_VERTEX_BASE_URL", server.url)
        monkeypatch.setenv("TUNEPORT_VERTEX_ACCESS_TOKEN", TOKEN)
        code, doc = _doctor(capsys, "-p", "vertex")
        checks = _checks(doc, "vertex")
        assert code == 1 and checks["credentials"] == "ok" and checks["project"] == "fail"
        monkeypatch.setenv("GOOGLE_CLOUD_PROJECT", "p")
        code, doc = _doctor(capsys, "-p", "vertex")
        checks = _checks(doc, "vertex")
        assert code == 0, doc
        assert checks["project"] == "ok" and checks["server"] == "ok"
        assert checks["bucket"] == "warn"  # train needs one; other commands do not
    monkeypatch.setenv("GOOGLE_VERTEX_BASE_URL", f"http://127.0.0.1:{_closed_port()}/")
    code, doc = _doctor(capsys, "-p", "vertex")
    assert code == 1 and _checks(doc, "vertex")["server"] == "fail"


def test_local_checks_packages_and_hardware(capsys: pytest.CaptureFixture[str]) -> None:
    code, doc = _doctor(capsys, "-p", "local")
    checks = _checks(doc, "local")
    assert code == 0
    assert checks["torch"] == "ok" and checks["libraries"] == "ok"
    assert checks["GPU"] in ("ok", "warn") and checks["bitsandbytes"] in ("ok", "warn")
    assert checks["runs folder"] == "ok"


def test_price_table_age_and_backends_without_checks() -> None:
    fresh = price_age("openai", date(2026, 12, 1))
    assert fresh.status == "ok" and "as of 2026-11-23" in fresh.detail
    stale = price_age(
        "openai", date.fromordinal(date(2026, 11, 23).toordinal() + STALE_AFTER_DAYS + 1)
    )
    assert stale.status == "warn" and stale.fix and "--prices" in stale.fix
    with registry.registered("echo", "tests.fakes.plugin_backend:BACKEND"):
        (health,) = diagnose(["echo"])
    assert not health.configured and health.verdict == "not configured"
    assert all(isinstance(registry.get(n), Diagnosable) for n in ("openai", "vertex", "local"))
