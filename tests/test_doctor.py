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
from tuneport.providers.base import Provider

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
    assert all(isinstance(registry.get(n), Provider) for n in ("openai", "vertex", "local"))


TG_KEY = "tg-doctor-SECRET-0123456789"
FW_KEY = "fw-doctor-SECRET-0123456789"


def test_together_unconfigured_key_accepted_rejected_v1_url_and_unreachable(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from tests.fakes.together_server import FakeTogether

    monkeypatch.delenv("TOGETHER_API_KEY", raising=False)
    code, doc = _doctor(capsys, "-p", "together")
    assert code == 0 and _checks(doc, "together") == {"API key": "skip"}
    with FakeTogether(api_key=TG_KEY) as fake:
        monkeypatch.setenv("TOGETHER_BASE_URL", fake.base_url)
        monkeypatch.setenv("TOGETHER_API_KEY", TG_KEY)
        code, doc = _doctor(capsys, "-p", "together")
        assert code == 0, doc
        checks = _checks(doc, "together")
        assert checks == {"API key": "ok", "SDK": "ok", "server": "ok", "prices": checks["prices"]}
        assert fake.calls("GET", r"^/v1/fine-tunes/models/limits$")
        assert not fake.calls("POST", ".*")  # the doctor never creates anything

        monkeypatch.setenv("TOGETHER_API_KEY", "tg-doctor-WRONG-000000000")
        assert run(["doctor", "-p", "together"]) == 1
        out = " ".join(capsys.readouterr().out.split())  # the report wraps to the terminal
        assert "rejected the key (401)" in out and "WRONG" not in out

        monkeypatch.setenv("TOGETHER_API_KEY", TG_KEY)
        monkeypatch.setenv("TOGETHER_BASE_URL", fake.base_url + "/v1")
        code, doc = _doctor(capsys, "-p", "together")
        assert code == 1 and _checks(doc, "together")["base URL"] == "fail"
    monkeypatch.setenv("TOGETHER_BASE_URL", f"http://127.0.0.1:{_closed_port()}")
    code, doc = _doctor(capsys, "-p", "together")
    assert code == 1 and _checks(doc, "together")["server"] == "fail"
    assert TG_KEY not in json.dumps(doc)


def test_fireworks_account_server_and_deployments_still_billing(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from tests.fakes.fireworks_server import FakeFireworks
    from tuneport.providers.fireworks.provider import FireworksProvider

    for var in ("FIREWORKS_API_KEY", "FIREWORKS_ACCOUNT_ID"):
        monkeypatch.delenv(var, raising=False)
    code, doc = _doctor(capsys, "-p", "fireworks")
    assert code == 0 and _checks(doc, "fireworks") == {"API key": "skip"}
    with FakeFireworks(api_key=FW_KEY, account_id="acme") as fake:
        monkeypatch.setenv("FIREWORKS_BASE_URL", fake.base_url)
        monkeypatch.setenv("FIREWORKS_API_KEY", FW_KEY)
        code, doc = _doctor(capsys, "-p", "fireworks")
        assert code == 1 and _checks(doc, "fireworks")["account"] == "fail"

        monkeypatch.setenv("FIREWORKS_ACCOUNT_ID", "acme")
        code, doc = _doctor(capsys, "-p", "fireworks")
        checks = _checks(doc, "fireworks")
        assert code == 0, doc
        assert checks["server"] == "ok" and checks["deployments"] == "ok"
        assert fake.calls("GET", r"/accounts/acme/datasets$")

        model = "accounts/fireworks/models/llama-v3p1-8b-instruct"
        client = FireworksProvider().client
        client.deployments.create(base_model=model, deployment_id="tp-0123456789abcdef")
        client.deployments.create(base_model=model, deployment_id="mine")  # not tuneport's
        code, doc = _doctor(capsys, "-p", "fireworks")
        assert code == 0 and _checks(doc, "fireworks")["deployments"] == "warn"
        assert run(["doctor", "-p", "fireworks"]) == 0
        out = " ".join(capsys.readouterr().out.split())
        assert "1 tuneport deployment(s) still billing" in out and "tp-0123456789abcdef" in out
        assert "/mine" not in out and "tuneport jobs cleanup" in out
        assert not fake.calls("DELETE", ".*")  # the doctor reports; cleanup deletes

        monkeypatch.setenv("FIREWORKS_ACCOUNT_ID", "someone-else")
        code, doc = _doctor(capsys, "-p", "fireworks")
        assert code == 1 and _checks(doc, "fireworks")["server"] == "fail"
    assert FW_KEY not in json.dumps(doc)
