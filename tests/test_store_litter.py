"""Litter and the store (issue 20 #9): a launch killed during its upload leaves no orphan, and
a damaged or newer store is not changed by opening it."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.fakes.openai_server import FakeOpenAI, serving_openai
from tuneport.cli.main import run

KEY = "sk-test-LITTER0123456789"
SAMPLE = Path(__file__).resolve().parent.parent / "fixtures" / "sample" / "chat.jsonl"
TRAIN = ["train", "-p", "openai", "-m", "gpt-4.1-mini", "--data", str(SAMPLE), "--yes",
         "--no-watch"]  # fmt: skip


@pytest.fixture
def fake(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeOpenAI]:
    with serving_openai(monkeypatch, KEY, poll_now=True) as server:
        yield server


def test_a_launch_killed_during_upload_is_rerun_in_the_same_folder(
    fake: FakeOpenAI, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from tuneport.paths import home
    from tuneport.providers.openai import OpenAIProvider

    real_upload = OpenAIProvider.upload
    killed: list[bool] = []

    def upload(self: Any, *args: Any, **kwargs: Any) -> Any:
        if not killed:
            killed.append(True)
            raise KeyboardInterrupt  # what a kill in the middle of the upload leaves
        return real_upload(self, *args, **kwargs)

    monkeypatch.setattr(OpenAIProvider, "upload", upload)
    assert run(TRAIN) == 130
    runs = home() / "runs"
    left = sorted(p.name for p in runs.iterdir())
    assert len(left) == 1 and (runs / left[0] / "train.openai.jsonl").exists()
    assert run(TRAIN) == 0, capsys.readouterr().err
    assert sorted(p.name for p in runs.iterdir()) == left  # the same folder, reused
    out = capsys.readouterr()
    assert run(["jobs", "list", "--json"]) == 0
    listed = capsys.readouterr().out
    assert left[0] in listed, (out, listed)  # the folder belongs to the job
    assert len(fake.calls("POST", "/fine_tuning/jobs")) == 1


def _rollback_store(path: Path, *, user_version: int) -> None:
    """A store as another tool (or a newer tuneport) may leave it: rollback journal, no WAL."""
    import sqlite3

    path.parent.mkdir(parents=True, exist_ok=True)
    db = sqlite3.connect(path)
    db.execute("PRAGMA journal_mode = DELETE")
    db.execute("CREATE TABLE jobs (id TEXT PRIMARY KEY, blob TEXT)")
    db.executemany("INSERT INTO jobs VALUES (?, ?)", [(f"j{i}", "x" * 900) for i in range(40)])
    db.execute(f"PRAGMA user_version = {user_version}")
    db.commit()
    db.close()


@pytest.mark.parametrize("damage", ["newer schema", "damaged page"])
def test_opening_a_damaged_or_newer_store_does_not_change_it(
    damage: str, capsys: pytest.CaptureFixture[str]
) -> None:
    from tuneport.paths import home

    store = home() / "jobs.sqlite3"
    _rollback_store(store, user_version=99 if damage == "newer schema" else 1)
    if damage == "damaged page":
        data = bytearray(store.read_bytes())
        data[4096 * 2 : 4096 * 2 + 200] = b"\xff" * 200  # a b-tree page's header
        store.write_bytes(bytes(data))
    before = store.read_bytes()
    assert before[18:20] == b"\x01\x01"  # rollback journal (WAL would be 2, 2)
    for argv in (["jobs", "list"], ["jobs", "show", "tp-1"]):
        code = run(argv)
        err = capsys.readouterr().err
        assert code == 3 and "Traceback" not in err, err
        assert "did not change it" in err, err
        assert store.read_bytes() == before, "the store was changed"
        assert not store.with_name(store.name + "-wal").exists()


@pytest.mark.parametrize("what", ["rm -rf home", "truncate"])
def test_the_store_lost_during_watch_is_restored_and_said(
    what: str,
    fake: FakeOpenAI,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    import os
    import shutil
    import sqlite3
    import time

    from tuneport.paths import home

    assert run(TRAIN) == 0
    capsys.readouterr()
    store = home() / "jobs.sqlite3"
    job_id = sqlite3.connect(store).execute("SELECT id FROM jobs").fetchone()[0]
    done: list[bool] = []

    def meanwhile(_: float) -> None:  # between two polls, the user does `what`
        if done:
            return
        done.append(True)
        if what == "rm -rf home":
            shutil.rmtree(home())
        else:
            os.truncate(store, 0)

    monkeypatch.setattr(time, "sleep", meanwhile)
    code = run(["jobs", "watch", job_id])
    err = capsys.readouterr().err
    assert done and code == 0 and "Traceback" not in err, err
    said = "restored it" if what == "rm -rf home" else "was truncated"
    assert said in " ".join(err.split()), err
    with sqlite3.connect(store) as db:  # a sound store that holds the job's outcome
        assert db.execute("PRAGMA quick_check").fetchone()[0] == "ok"
        state = db.execute("SELECT state FROM jobs WHERE id = ?", (job_id,)).fetchone()
    assert state == ("succeeded",)
    if what == "truncate":
        assert list(store.parent.glob("jobs.sqlite3.truncated-*"))  # the remains are kept
