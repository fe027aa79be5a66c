"""Third-party backends through the ``tuneport.backends`` entry-point group.

The example plugin (``tests/fakes/plugin_backend.py``) is registered the way an installed package
registers it — a ``*.dist-info/entry_points.txt`` on ``sys.path`` — and driven through the real
CLI: validate → estimate → plan → train → jobs → chat. Its module is imported only when the
``echo`` provider is named (or by ``plan``, which prices every backend), never for ``--help``.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from tuneport.cli.main import run
from tuneport.providers import registry

SAMPLE = Path(__file__).resolve().parent.parent / "fixtures" / "sample" / "chat.jsonl"
PLUGIN = "tests.fakes.plugin_backend"


def _json(capsys: pytest.CaptureFixture[str]) -> object:
    return json.loads(capsys.readouterr().out)


def test_the_plugin_is_listed_but_not_imported_until_named(
    echo_plugin: None, capsys: pytest.CaptureFixture[str]
) -> None:
    assert "echo" in registry.names()
    assert run(["--help"]) == 0
    assert run(["estimate", str(SAMPLE), "-p", "openai", "-m", "gpt-4.1-mini"]) == 0
    assert run(["validate", str(SAMPLE), "-p", "vertex"]) == 0
    assert PLUGIN not in sys.modules
    assert run(["validate", str(SAMPLE), "-p", "echo"]) == 0
    assert PLUGIN in sys.modules


def test_validate_estimate_plan_train_jobs_chat_through_the_plugin(
    echo_plugin: None, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TUNEPORT_POLL_INTERVAL", "0")
    # validate: the plugin's rules (a per-model limit of 1,024 tokens for echo-small)
    assert run(["validate", str(SAMPLE), "-p", "echo", "-m", "echo-small", "--json"]) == 0
    report = _json(capsys)
    assert isinstance(report, dict)
    assert report["provider"] == "echo" and report["token_limit"] == 1024

    # estimate: the plugin's counter and the price section it ships
    assert run(["estimate", str(SAMPLE), "-p", "echo", "-m", "echo-large", "--json"]) == 0
    est = _json(capsys)
    assert isinstance(est, dict)
    assert est["examples"] == 26 and est["epochs"] == 2 and est["price_per_million_usd"] == 8.0
    assert est["cost_usd"] == pytest.approx(est["tokens"] * 2 * 8.0 / 1e6)
    assert "echo tokenizer offline" in est["token_counter"]

    # plan: a row per plugin model, beside the built-in backends, with the same numbers
    assert run(["plan", str(SAMPLE), "--json"]) == 0
    rows = _json(capsys)
    assert isinstance(rows, list)
    echo = {r["model"]: r for r in rows if r["provider"] == "echo"}
    assert set(echo) == {"echo-small", "echo-large"}
    assert echo["echo-large"]["cost_usd"] == est["cost_usd"]
    assert {r["provider"] for r in rows} >= {"openai", "vertex", "local", "echo"}

    # train: validate, price, upload, launch and watch to the end
    argv = ["train", "--provider", "echo", "--data", str(SAMPLE), "--model", "echo-small"]
    assert run([*argv, "--yes", "--json"]) == 0
    record = _json(capsys)
    assert isinstance(record, dict)
    assert record["provider"] == "echo" and record["state"] == "succeeded"
    job_id = record["id"]
    assert record["tuned_model"] == f"echo:{record['remote_id']}"

    # jobs: list and show read the store; the provider answers status
    assert run(["jobs", "list", "--json"]) == 0
    listed = _json(capsys)
    assert isinstance(listed, list) and [j["id"] for j in listed] == [job_id]
    assert run(["jobs", "show", job_id, "--refresh", "--json"]) == 0
    shown = _json(capsys)
    assert isinstance(shown, dict) and shown["state"] == "succeeded"

    # chat: by job id, and by the tuned model id (its prefix names the plugin)
    assert run(["chat", job_id, "--message", "hello"]) == 0
    assert "echo: hello" in capsys.readouterr().out
    assert run(["chat", f"echo:{record['remote_id']}", "--message", "again"]) == 0
    assert "echo: again" in capsys.readouterr().out

    # a bad option is refused with the plugin's allowed keys
    assert run([*argv, "--yes", "--set", "colour=red"]) == 3
    assert "allowed options: greeting" in capsys.readouterr().err


def test_a_broken_entry_point_is_one_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    dist = tmp_path / "site" / "broken-0.1.dist-info"
    dist.mkdir(parents=True)
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: broken\nVersion: 0.1\n")
    (dist / "entry_points.txt").write_text("[tuneport.backends]\nbroken = no_such_module:BACKEND\n")
    monkeypatch.syspath_prepend(str(tmp_path / "site"))
    registry.refresh()
    try:
        assert run(["validate", str(SAMPLE), "-p", "broken"]) == 3
        err = capsys.readouterr().err
        assert "cannot load the 'broken' backend" in err and "Traceback" not in err
        assert run(["validate", str(SAMPLE), "-p", "openai"]) == 0  # others are unaffected
    finally:
        registry.refresh()
