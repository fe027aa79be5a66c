"""The causes of the tracebacks a hostile pass found (issue 20 #6, #7), one test per cause.

Every input is generated here. Each must end in one ``error:`` line with a fix and a
documented exit code: never a traceback (an exception escaping ``run`` fails the test).
"""

from __future__ import annotations

import errno
import json
import sqlite3
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from tests.fakes.openai_server import FakeOpenAI, serving_openai
from tuneport.cli.main import run

KEY = "sk-test-CAUSES0123456789"
SAMPLE = Path(__file__).resolve().parent.parent / "fixtures" / "sample" / "chat.jsonl"


@pytest.fixture
def fake(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeOpenAI]:
    with serving_openai(monkeypatch, KEY, poll_now=True) as server:
        yield server


def one_error(code: int, err: str, *, allowed: set[int]) -> str:
    """The one ``error:`` line (with a fix) of a failed command."""
    assert code in allowed, err
    assert "Traceback" not in err, err
    errors = [line for line in err.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "(fix: " in errors[0], err
    return errors[0]


# --- damaged row contents in the job store -----------------------------------------------------


def _store_with_a_job() -> tuple[Path, str]:
    from tuneport.jobs.store import open_store
    from tuneport.schemas import JobEvent, JobRecord

    store = open_store()
    now = datetime.now(UTC)
    store.add(
        JobRecord(id="tp-hurt1", run_id="run-d", provider="openai", model="gpt-4.1-mini",
                  dataset_sha256="x", remote_id="ftjob-1", created_at=now, updated_at=now)
    )  # fmt: skip
    store.add_events("tp-hurt1", [JobEvent(id="e1", message="hello", data={})])
    return store.path, "tp-hurt1"


@pytest.mark.parametrize(
    "sql",
    [
        "UPDATE jobs SET config = '{x'",
        "UPDATE jobs SET remote_files = 'not json'",
        "UPDATE jobs SET config = '[1, 2]'",
        "UPDATE jobs SET state = 'exploded'",
        "UPDATE jobs SET created_at = 'yesterday'",
        "UPDATE events SET data = '{x'",
        "UPDATE events SET created_at = 'soon'",
    ],
)
def test_damaged_row_contents_are_named_by_every_jobs_command(
    sql: str, fake: FakeOpenAI, capsys: pytest.CaptureFixture[str]
) -> None:
    path, job_id = _store_with_a_job()
    with sqlite3.connect(path) as db:
        db.execute(sql)
    before = path.read_bytes()
    shown: set[str] = set()
    for argv in (
        ["jobs", "list"],
        ["jobs", "show", job_id],
        ["jobs", "show", job_id, "--json"],
        ["jobs", "watch", job_id],
        ["jobs", "cancel", job_id],
        ["jobs", "cleanup", job_id, "--yes"],
        ["jobs", "resume", job_id],
        ["chat", job_id, "--message", "hi"],
    ):
        code = run(argv)
        err = capsys.readouterr().err
        assert "Traceback" not in err, err
        if "events" in sql and "has a damaged" not in err:
            if code:  # a command that does not read the events fails for its own reason
                one_error(code, err, allowed={1, 3, 4})
            continue
        line = one_error(code, err, allowed={3})
        assert str(path) in line and "damaged" in line and job_id in line, argv
        shown.add(argv[1])
    assert "show" in shown
    assert path.read_bytes() == before


# --- flags `estimate` must check the way `train` does ------------------------------------------


@pytest.mark.parametrize(
    ("flags", "named"),
    [
        (["--epochs", "0"], "epochs"),
        (["--epochs", "-5"], "epochs"),
        (["--batch-size", "0"], "batch_size"),
        (["--max-cost", "nan"], "max_cost"),
        (["--max-cost", "-1"], "max_cost"),
    ],
)
def test_estimate_checks_its_flags_like_train(
    flags: list[str],
    named: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    for command in (["estimate", str(SAMPLE)], ["train", "--data", str(SAMPLE), "--no-watch"]):
        code = run([*command, "-p", "openai", "-m", "gpt-4.1-mini", *flags])
        line = one_error(code, capsys.readouterr().err, allowed={3})
        assert named in line and flags[0] in line, line


# --- timeouts too large for the socket layer ---------------------------------------------------


@pytest.mark.parametrize("provider", ["openai", "together", "fireworks", "vertex"])
def test_an_infinite_timeout_setting_is_refused(
    provider: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    for env in ("OPENAI_API_KEY", "TOGETHER_API_KEY", "FIREWORKS_API_KEY"):
        monkeypatch.setenv(env, KEY)
    monkeypatch.setenv("FIREWORKS_ACCOUNT_ID", "acme")
    monkeypatch.setenv("TUNEPORT_VERTEX_ACCESS_TOKEN", "ya29.CAUSES-0123456789")
    monkeypatch.setenv("GOOGLE_CLOUD_PROJECT", "p")
    code = run(["chat", "-p", provider, "-m", "m", "--message", "hi", "--set", "timeout=1e400"])
    line = one_error(code, capsys.readouterr().err, allowed={3})
    assert "'timeout'" in line and "86400" in line
    code = run(["doctor", "-p", provider, "--timeout", "1e400"])
    err = capsys.readouterr().err
    assert code == 2 and "Traceback" not in err and "--timeout" in err, err


# --- a full disk while writing -----------------------------------------------------------------


@pytest.mark.parametrize(
    "argv",
    [
        ["convert", "{data}", "--to", "openai", "-o", "{out}/c.jsonl"],
        ["curate", "{data}", "-o", "{out}/c.jsonl"],
    ],
)
def test_a_full_disk_while_writing_is_one_line_and_leaves_nothing(
    argv: list[str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    import os

    out = tmp_path / "out"
    out.mkdir()
    real_open = Path.open

    class Full:  # a file on a disk with no room left: every write fails
        def __init__(self, fh: Any) -> None:
            self.fh = fh

        def write(self, data: Any) -> int:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

        def __getattr__(self, name: str) -> Any:
            return getattr(self.fh, name)

        def __enter__(self) -> Full:
            return self

        def __exit__(self, *exc: object) -> None:
            self.fh.close()

    def open_(self: Path, mode: str = "r", *args: Any, **kwargs: Any) -> Any:
        fh = real_open(self, mode, *args, **kwargs)
        return Full(fh) if "w" in mode and str(self).startswith(str(out)) else fh

    monkeypatch.setattr(Path, "open", open_)
    code = run([a.format(data=SAMPLE, out=out) for a in argv])
    monkeypatch.undo()
    line = one_error(code, capsys.readouterr().err, allowed={2, 3})
    assert "No space left on device" in line, line
    assert list(out.iterdir()) == []


_ = json  # used by the generators below
