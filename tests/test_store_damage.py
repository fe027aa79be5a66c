"""A damaged, empty, read-only or vanished job store is named and never silently replaced."""

from __future__ import annotations

import os
import sqlite3
from datetime import UTC, datetime
from pathlib import Path

import pytest

from tuneport.cli.main import run
from tuneport.jobs.store import (
    MIGRATIONS,
    JobStore,
    StoreError,
    StoreVanishedError,
    new_job_id,
)
from tuneport.schemas import JobRecord, JobState


def _record(**extra: object) -> JobRecord:
    now = datetime.now(UTC)
    job_id = new_job_id()
    fields: dict[str, object] = {
        "id": job_id,
        "run_id": f"run-{job_id}",
        "provider": "openai",
        "model": "gpt-4.1-mini",
        "dataset_sha256": "ab" * 32,
        "created_at": now,
        "updated_at": now,
    }
    fields.update(extra)
    return JobRecord.model_validate(fields)


def _filled(path: Path, jobs: int = 40) -> list[str]:
    store = JobStore(path)
    ids = [store.add(_record(config={"note": "x" * 2000})).id for _ in range(jobs)]
    store.close()
    return ids


def _cli_error(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str]:
    code = run(list(argv))
    err = capsys.readouterr().err
    assert "Traceback" not in err
    return code, err


def test_garbage_file_is_named_and_left_alone(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("TUNEPORT_HOME", str(tmp_path))
    path = tmp_path / "jobs.sqlite3"
    path.write_bytes(b"this is not sqlite" * 100)
    before = path.read_bytes()
    code, err = _cli_error(capsys, "jobs", "list")
    assert code == 3 and f"the job store {path.resolve()} is damaged" in err
    assert "mv " in err and len(err.strip().splitlines()) == 1
    assert path.read_bytes() == before


def test_truncated_store_is_damage(tmp_path: Path) -> None:
    path = tmp_path / "s.db"
    _filled(path)
    data = path.read_bytes()
    assert len(data) > 8192
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(StoreError, match="damaged"):
        store = JobStore(path)
        store.list_jobs(1000)


def test_empty_file_is_not_taken_for_a_new_store(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("TUNEPORT_HOME", str(tmp_path))
    path = tmp_path / "jobs.sqlite3"
    path.write_bytes(b"")
    code, err = _cli_error(capsys, "jobs", "list")
    assert code == 3 and "is empty (0 bytes)" in err and "no jobs yet" not in err
    assert path.stat().st_size == 0


def test_a_new_store_appears_whole(tmp_path: Path) -> None:
    """Built aside and linked in: never a 0-byte or half-migrated file at the path."""
    path = tmp_path / "new.db"
    store = JobStore(path)
    assert store.schema_version == len(MIGRATIONS)
    assert path.stat().st_size > 0
    assert [p.name for p in tmp_path.iterdir() if p.name.endswith(".tmp")] == []


def test_read_only_store_is_named(tmp_path: Path) -> None:
    """SQLite refusing to write (a read-only file; root cannot provoke that with chmod, so the
    connection is made query-only) becomes one line naming the file and the fix."""
    path = tmp_path / "s.db"
    _filled(path, 2)
    store = JobStore(path)
    store._conn.execute("PRAGMA query_only = ON")
    with pytest.raises(StoreError) as info:
        store.add(_record())
    assert "is read-only" in info.value.message and str(path) in info.value.message
    assert f"chmod u+w {path}" in (info.value.hint or "")


def test_migration_keeps_a_backup_first(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    conn = sqlite3.connect(path)
    for migration in MIGRATIONS[:2]:
        conn.executescript(migration)
    conn.execute("PRAGMA user_version = 2")
    now = datetime.now(UTC).isoformat()
    conn.execute(
        "INSERT INTO jobs (id, run_id, provider, model, method, dataset_sha256, config, "
        "remote_files, state, created_at, updated_at) VALUES "
        "('tp-old', 'run-old', 'openai', 'm', 'sft', 'x', '{}', '{}', 'queued', ?, ?)",
        (now, now),
    )
    conn.commit()
    conn.close()
    store = JobStore(path)
    assert store.schema_version == len(MIGRATIONS)
    assert store.get("tp-old").launch_key is None
    backup = tmp_path / "old.db.v2.bak"
    copy = sqlite3.connect(backup)
    assert copy.execute("PRAGMA user_version").fetchone()[0] == 2
    assert copy.execute("SELECT id FROM jobs").fetchall() == [("tp-old",)]


def test_a_deleted_store_is_noticed_and_restored_whole(tmp_path: Path) -> None:
    path = tmp_path / "s.db"
    ids = _filled(path, 5)
    store = JobStore(path)
    watched = store.get(ids[0])
    path.unlink()
    for suffix in ("-wal", "-shm"):
        path.with_name(path.name + suffix).unlink(missing_ok=True)
    with pytest.raises(StoreVanishedError, match="deleted"):
        store.update(watched.id, state=JobState.RUNNING)
    note = store.recover([watched])
    assert "restored" in note
    store.update(watched.id, state=JobState.RUNNING)
    reopened = JobStore(path)
    assert sorted(j.id for j in reopened.list_jobs(100)) == sorted(ids)
    assert reopened.get(watched.id).state is JobState.RUNNING


def test_a_replaced_store_gets_the_watched_job(tmp_path: Path) -> None:
    path = tmp_path / "s.db"
    ids = _filled(path, 3)
    store = JobStore(path)
    watched = store.get(ids[0])
    other = tmp_path / "other.db"
    JobStore(other).close()
    os.replace(other, path)
    with pytest.raises(StoreVanishedError, match="replaced"):
        store.update(watched.id, state=JobState.RUNNING)
    note = store.recover([watched])
    assert "replaced" in note and watched.id in note
    assert [j.id for j in JobStore(path).list_jobs()] == [watched.id]


def test_a_store_deleted_under_its_journal_is_not_replaced_silently(tmp_path: Path) -> None:
    path = tmp_path / "s.db"
    store = JobStore(path)
    store.add(_record())  # WAL mode: the change sits in s.db-wal while the store is open
    wal = tmp_path / "s.db-wal"
    assert wal.stat().st_size > 0
    path.unlink()
    with pytest.raises(StoreError, match="missing but its journal"):
        JobStore(path)
    assert not path.exists()
