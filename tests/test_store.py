"""The SQLite job store: migrations, round trips, secrets, two writers at once."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
import threading
from datetime import UTC, datetime
from pathlib import Path

import pytest

from tuneport.errors import NotFoundError
from tuneport.jobs.store import MIGRATIONS, JobStore, new_job_id, open_store, redact_config
from tuneport.paths import home
from tuneport.schemas import JobEvent, JobRecord, JobState

SECRET = "sk-test-SECRET123456"


def _record(job_id: str | None = None, **extra: object) -> JobRecord:
    now = datetime.now(UTC)
    fields: dict[str, object] = {
        "id": job_id or new_job_id(),
        "run_id": f"run-{job_id or new_job_id()}",
        "provider": "openai",
        "model": "gpt-4.1-mini",
        "dataset_sha256": "ab" * 32,
        "config": {"epochs": 3, "options": {"api_key": SECRET, "note": f"key {SECRET}"}},
        "created_at": now,
        "updated_at": now,
    }
    fields.update(extra)
    return JobRecord.model_validate(fields)


def test_home_follows_tuneport_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TUNEPORT_HOME", str(tmp_path / "h"))
    assert home() == tmp_path / "h"
    store = open_store()
    assert store.path == (tmp_path / "h" / "jobs.sqlite3").resolve()
    assert open_store() is store


def test_fresh_store_is_at_latest_schema_in_wal_mode(tmp_path: Path) -> None:
    store = JobStore(tmp_path / "s.db")
    assert store.schema_version == len(MIGRATIONS)
    mode = sqlite3.connect(tmp_path / "s.db").execute("PRAGMA journal_mode").fetchone()[0]
    assert mode == "wal"
    store.close()
    assert JobStore(tmp_path / "s.db").schema_version == len(MIGRATIONS)  # reopen: no-op


def test_old_database_is_migrated_forward(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    conn = sqlite3.connect(path)
    conn.executescript(MIGRATIONS[0])
    conn.execute("PRAGMA user_version = 1")
    conn.execute(
        "INSERT INTO jobs VALUES ('tp-old', 'run-old', 'openai', 'm', 'sft', 'x', '{}', NULL, "
        "'{}', 'running', NULL, NULL, NULL, NULL, NULL, NULL, NULL, "
        "'2026-01-01T00:00:00+00:00', '2026-01-01T00:00:00+00:00')"
    )
    conn.commit()
    conn.close()
    store = JobStore(path)
    assert store.schema_version == len(MIGRATIONS)
    assert store.get("tp-old").state is JobState.RUNNING
    store.add_events("tp-old", [JobEvent(id="e1", message="hello")])  # table from migration 2
    assert [e.id for e in store.events("tp-old")] == ["e1"]


def test_newer_schema_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "new.db"
    conn = sqlite3.connect(path)
    conn.execute(f"PRAGMA user_version = {len(MIGRATIONS) + 1}")
    conn.close()
    with pytest.raises(Exception, match="newer tuneport"):
        JobStore(path)


def test_round_trip_update_and_lookup(tmp_path: Path) -> None:
    store = JobStore(tmp_path / "s.db")
    rec = store.add(_record("tp-0000abcd", remote_files={"training": "file-1"}))
    assert rec.remote_files == {"training": "file-1"}
    updated = store.update(
        "tp-0000abcd", state=JobState.SUCCEEDED, tuned_model="ft:x", billed_tokens=1234
    )
    assert updated.updated_at >= rec.updated_at
    again = store.get("tp-0000abcd")
    assert (again.state, again.tuned_model, again.billed_tokens) == (
        JobState.SUCCEEDED,
        "ft:x",
        1234,
    )
    store.update("tp-0000abcd", remote_id="ftjob-1")
    assert store.get("ftjob-1").id == "tp-0000abcd"  # by remote id
    assert store.get("tp-0000").id == "tp-0000abcd"  # by unique prefix
    with pytest.raises(NotFoundError, match="jobs list"):
        store.get("tp-missing")
    with pytest.raises(ValueError):
        store.update("tp-0000abcd", nonsense=1)


def test_list_newest_first_with_filters(tmp_path: Path) -> None:
    store = JobStore(tmp_path / "s.db")
    ids = []
    for i in range(3):
        rec = _record(provider="openai" if i % 2 == 0 else "vertex")
        store.add(rec)
        ids.append(rec.id)
    assert [r.id for r in store.list_jobs()] == list(reversed(ids))
    assert {r.provider for r in store.list_jobs(provider="vertex")} == {"vertex"}
    assert store.list_jobs(states=[JobState.SUCCEEDED]) == []
    assert len(store.list_jobs(limit=2)) == 2


def test_secrets_never_reach_the_database_file(tmp_path: Path) -> None:
    store = JobStore(tmp_path / "s.db")
    rec = store.add(_record(error=f"boom {SECRET}"))
    store.add_events(rec.id, [JobEvent(id="e", message=f"leak {SECRET}", data={"token": SECRET})])
    stored = store.get(rec.id)
    assert "api_key" not in stored.config["options"]
    assert SECRET not in stored.model_dump_json()
    store.close()
    raw = b"".join(p.read_bytes() for p in tmp_path.iterdir() if p.is_file())
    assert SECRET.encode() not in raw


def test_redact_config_drops_secret_keys_recursively() -> None:
    cleaned = redact_config(
        {"a": {"client_secret": "x", "n": [1, {"token": "t"}]}, "p": Path("/d")}
    )
    assert cleaned == {"a": {"n": [1, {}]}, "p": "/d"}


def test_events_are_deduplicated_and_ordered(tmp_path: Path) -> None:
    store = JobStore(tmp_path / "s.db")
    rec = store.add(_record())
    assert store.last_event_id(rec.id) is None
    assert (
        store.add_events(rec.id, [JobEvent(id="a", message="1"), JobEvent(id="b", message="2")])
        == 2
    )
    assert (
        store.add_events(
            rec.id, [JobEvent(id="b", message="2"), JobEvent(id="c", message="3", step=1, loss=0.5)]
        )
        == 1
    )
    assert [e.id for e in store.events(rec.id)] == ["a", "b", "c"]
    assert [e.id for e in store.events(rec.id, limit=2)] == ["b", "c"]
    assert store.events(rec.id)[-1].loss == 0.5
    assert store.last_event_id(rec.id) == "c"


def test_uploads_cache(tmp_path: Path) -> None:
    store = JobStore(tmp_path / "s.db")
    assert store.upload_get("openai", "h") is None
    store.upload_put("openai", "h", "file-1", filename="f.jsonl", size=3)
    assert store.upload_get("openai", "h") == "file-1"
    assert store.upload_get("openai@http://x", "h") is None
    store.upload_forget("openai", "file-1")
    assert store.upload_get("openai", "h") is None


def test_two_threads_write_at_once(tmp_path: Path) -> None:
    path = tmp_path / "s.db"
    JobStore(path).close()
    errors: list[BaseException] = []

    def writer(prefix: str) -> None:
        try:
            store = JobStore(path)  # its own connection, like another process
            for i in range(40):
                rec = store.add(_record(f"tp-{prefix}{i:07d}"))
                store.update(rec.id, state=JobState.RUNNING)
                store.add_events(rec.id, [JobEvent(id=f"e{i}", message="m")])
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=writer, args=(p,)) for p in "ab"]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert len(JobStore(path).list_jobs(limit=1000)) == 80


_PROC = """
import sys
from datetime import UTC, datetime
from pathlib import Path
from tuneport.schemas import JobRecord, JobState
from tuneport.jobs.store import JobStore
store = JobStore(Path(sys.argv[1]))
now = datetime.now(UTC)
for i in range(30):
    jid = f"tp-{sys.argv[2]}{i:07d}"
    store.add(JobRecord(id=jid, run_id="r" + jid, provider="openai", model="m",
                        dataset_sha256="x", created_at=now, updated_at=now))
    store.update(jid, state=JobState.SUCCEEDED)
    store.upload_put("openai", jid, "file-" + jid)
"""


def test_two_processes_write_at_once(tmp_path: Path) -> None:
    path = tmp_path / "s.db"
    procs = [subprocess.Popen([sys.executable, "-c", _PROC, str(path), p]) for p in ("a", "b")]
    assert [p.wait(timeout=120) for p in procs] == [0, 0]
    store = JobStore(path)
    jobs = store.list_jobs(limit=1000)
    assert len(jobs) == 60
    assert {j.state for j in jobs} == {JobState.SUCCEEDED}
    assert store.upload_get("openai", "tp-b0000029") == "file-tp-b0000029"


def test_wal_switch_retries_while_another_process_creates_the_store(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """SQLite answers "database is locked" at once (no busy handler) when two processes switch a
    new database to WAL together; the store retries instead of failing (seen in CI)."""
    import sqlite3

    real_connect = sqlite3.connect
    refusals = [2]

    class Conn:
        def __init__(self, conn: sqlite3.Connection) -> None:
            self._conn = conn

        def execute(self, sql: str, *args: object) -> object:
            if "journal_mode" in sql and refusals[0]:
                refusals[0] -= 1
                raise sqlite3.OperationalError("database is locked")
            return self._conn.execute(sql, *args)

        def __getattr__(self, name: str) -> object:
            return getattr(self._conn, name)

        def __setattr__(self, name: str, value: object) -> None:
            if name == "_conn":
                object.__setattr__(self, name, value)
            else:
                setattr(self._conn, name, value)

    monkeypatch.setattr(sqlite3, "connect", lambda *a, **k: Conn(real_connect(*a, **k)))
    store = JobStore(tmp_path / "s.db")
    assert refusals == [0]
    assert store.list_jobs() == []


def test_a_password_an_older_tuneport_stored_in_a_base_url_is_masked_on_read(
    tmp_path: Path,
) -> None:
    import json

    store = JobStore(tmp_path / "s.db")
    record = store.add(_record())
    url = "http://user:hunter2-SECRET@proxy.example/v1"
    store._conn.execute(  # a row written before URLs were masked on write
        "UPDATE jobs SET config = ? WHERE id = ?",
        (json.dumps({"options": {"base_url": url}}), record.id),
    )
    for read in (store.get(record.id), store.list_jobs()[0]):
        shown = json.dumps(read.model_dump(mode="json"))
        assert "hunter2-SECRET" not in shown and "proxy.example/v1" in shown
