"""The local job store: one SQLite file under the user data dir (``TUNEPORT_HOME`` overrides).

Safe with several tuneport processes at once: WAL journal, a busy timeout and short
``BEGIN IMMEDIATE`` write transactions. The schema evolves through an ordered list of
migrations tracked in ``PRAGMA user_version``. Nothing secret is ever written: job configs pass
through :func:`redact_config` first.
"""

from __future__ import annotations

import json
import re
import secrets
import sqlite3
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from tuneport.errors import ConfigError, NotFoundError, redact
from tuneport.paths import home
from tuneport.schemas import JobEvent, JobRecord, JobState

DB_NAME = "jobs.sqlite3"
BUSY_TIMEOUT_MS = 10_000

# Ordered: migration i brings the schema from user_version i to i + 1. Append, never edit.
MIGRATIONS: tuple[str, ...] = (
    """
    CREATE TABLE jobs (
        id TEXT PRIMARY KEY,
        run_id TEXT NOT NULL UNIQUE,
        provider TEXT NOT NULL,
        model TEXT NOT NULL,
        method TEXT NOT NULL,
        dataset_sha256 TEXT NOT NULL,
        config TEXT NOT NULL,
        remote_id TEXT,
        remote_files TEXT NOT NULL,
        state TEXT NOT NULL,
        raw_state TEXT,
        error TEXT,
        tuned_model TEXT,
        estimate_tokens INTEGER,
        estimate_cost_usd REAL,
        billed_tokens INTEGER,
        parent_id TEXT REFERENCES jobs(id),
        created_at TEXT NOT NULL,
        updated_at TEXT NOT NULL
    );
    CREATE INDEX jobs_created ON jobs(created_at);
    CREATE INDEX jobs_remote ON jobs(provider, remote_id);
    CREATE TABLE uploads (
        provider TEXT NOT NULL,
        sha256 TEXT NOT NULL,
        remote_id TEXT NOT NULL,
        filename TEXT,
        bytes INTEGER,
        created_at TEXT NOT NULL,
        PRIMARY KEY (provider, sha256)
    );
    """,
    """
    CREATE TABLE events (
        job_id TEXT NOT NULL REFERENCES jobs(id) ON DELETE CASCADE,
        seq INTEGER NOT NULL,
        event_id TEXT NOT NULL,
        created_at TEXT,
        level TEXT NOT NULL,
        message TEXT NOT NULL,
        step INTEGER,
        loss REAL,
        data TEXT NOT NULL,
        PRIMARY KEY (job_id, event_id)
    );
    CREATE INDEX events_seq ON events(job_id, seq);
    """,
)

_SECRET_KEY = re.compile(r"(?i)(api[_-]?key|secret|token|password|passwd|credential|auth)")
_JSON_FIELDS = ("config", "remote_files")
_COLUMNS = tuple(JobRecord.model_fields)


def new_job_id() -> str:
    """A short local job id, e.g. ``tp-1a2b3c4d``."""
    return f"tp-{secrets.token_hex(4)}"


def new_run_id() -> str:
    """A client-generated run id sent to the provider so launches are idempotent."""
    return f"run-{secrets.token_hex(8)}"


def now() -> datetime:
    return datetime.now(UTC)


def redact_config(value: Any) -> Any:
    """A copy of ``value`` with secret-looking keys dropped and secret-looking strings masked."""
    if isinstance(value, Mapping):
        return {
            str(k): redact_config(v) for k, v in value.items() if not _SECRET_KEY.search(str(k))
        }
    if isinstance(value, list | tuple):
        return [redact_config(v) for v in value]
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, Path):
        return str(value)
    return value


class JobStore:
    """Jobs, their events and the uploads cache in one SQLite database."""

    def __init__(self, path: Path | None = None) -> None:
        self.path = path if path is not None else home() / DB_NAME
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise ConfigError(
                f"cannot create the job store folder {self.path.parent}: {exc.strerror}",
                hint="set TUNEPORT_HOME to a writable folder",
            ) from None
        self._lock = threading.RLock()
        self._conn = sqlite3.connect(
            self.path, timeout=BUSY_TIMEOUT_MS / 1000, isolation_level=None, check_same_thread=False
        )
        self._conn.row_factory = sqlite3.Row
        self._conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
        self._enable_wal()
        self._conn.execute("PRAGMA synchronous = NORMAL")
        self._conn.execute("PRAGMA foreign_keys = ON")
        self.migrate()

    def _enable_wal(self) -> None:
        """Switch to WAL, retrying while another process holds the lock.

        SQLite does not call the busy handler for this switch when another connection is
        creating or switching the same new database at the same moment: it answers "database is
        locked" at once, so two tuneport processes starting together would make one fail.
        """
        deadline = time.monotonic() + BUSY_TIMEOUT_MS / 1000
        while True:
            try:
                self._conn.execute("PRAGMA journal_mode = WAL")
                return
            except sqlite3.OperationalError as exc:
                if "locked" not in str(exc) or time.monotonic() > deadline:
                    raise
                time.sleep(0.01)

    # --- plumbing ----------------------------------------------------------------------------

    def close(self) -> None:
        with self._lock:
            self._conn.close()

    def __enter__(self) -> JobStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        """A short write transaction that takes the write lock up front (no upgrade deadlocks)."""
        with self._lock:
            self._conn.execute("BEGIN IMMEDIATE")
            try:
                yield self._conn
            except BaseException:
                self._conn.execute("ROLLBACK")
                raise
            self._conn.execute("COMMIT")

    @property
    def schema_version(self) -> int:
        with self._lock:
            row = self._conn.execute("PRAGMA user_version").fetchone()
        return int(row[0])

    def migrate(self) -> None:
        """Apply the migrations this database has not seen yet (each in its own transaction)."""
        if self.schema_version > len(MIGRATIONS):
            raise ConfigError(
                f"the job store {self.path} was written by a newer tuneport "
                f"(schema {self.schema_version})",
                hint="upgrade tuneport or point TUNEPORT_HOME elsewhere",
            )
        while True:
            with self._write() as conn:
                # re-read inside the lock: another process may have migrated meanwhile
                version = int(conn.execute("PRAGMA user_version").fetchone()[0])
                if version >= len(MIGRATIONS):
                    return
                for statement in MIGRATIONS[version].split(";"):
                    if statement.strip():
                        conn.execute(statement)
                conn.execute(f"PRAGMA user_version = {version + 1}")

    # --- jobs --------------------------------------------------------------------------------

    @staticmethod
    def _to_row(record: JobRecord) -> dict[str, Any]:
        data = record.model_dump(mode="json")
        data["config"] = redact_config(data["config"])
        for key in _JSON_FIELDS:
            data[key] = json.dumps(data[key], sort_keys=True)
        if data.get("error"):
            data["error"] = redact(data["error"])
        return data

    @staticmethod
    def _from_row(row: sqlite3.Row) -> JobRecord:
        data = {key: row[key] for key in _COLUMNS}
        for key in _JSON_FIELDS:
            data[key] = json.loads(data[key])
        return JobRecord.model_validate(data)

    def add(self, record: JobRecord) -> JobRecord:
        row = self._to_row(record)
        cols = ", ".join(_COLUMNS)
        marks = ", ".join(f":{c}" for c in _COLUMNS)
        with self._write() as conn:
            conn.execute(f"INSERT INTO jobs ({cols}) VALUES ({marks})", row)
        return self.get(record.id)

    def get(self, job_id: str) -> JobRecord:
        """The job with local id ``job_id`` (a unique prefix or its remote id also works)."""
        with self._lock:
            row = self._conn.execute("SELECT * FROM jobs WHERE id = ?", (job_id,)).fetchone()
            if row is None:
                rows = self._conn.execute(
                    "SELECT * FROM jobs WHERE remote_id = ? OR id LIKE ? ESCAPE '\\' LIMIT 2",
                    (job_id, job_id.replace("%", r"\%").replace("_", r"\_") + "%"),
                ).fetchall()
                row = rows[0] if len(rows) == 1 else None
        if row is None:
            raise NotFoundError(
                f"no job {job_id!r} in the job store ({self.path})",
                hint="see `tuneport jobs list` for the ids",
            )
        return self._from_row(row)

    def find_by_run_id(self, run_id: str) -> JobRecord | None:
        with self._lock:
            row = self._conn.execute("SELECT * FROM jobs WHERE run_id = ?", (run_id,)).fetchone()
        return None if row is None else self._from_row(row)

    def update(self, job_id: str, **fields: Any) -> JobRecord:
        """Set ``fields`` (JobRecord field names) on a job and bump ``updated_at``."""
        unknown = set(fields) - set(_COLUMNS)
        if unknown:
            raise ValueError(f"unknown job fields: {sorted(unknown)}")
        current = self.get(job_id)
        merged = current.model_copy(update={**fields, "updated_at": now()})
        merged = JobRecord.model_validate(merged.model_dump())  # re-validate the new values
        row = self._to_row(merged)
        sets = ", ".join(f"{c} = :{c}" for c in [*fields, "updated_at"] if c != "id")
        with self._write() as conn:
            conn.execute(f"UPDATE jobs SET {sets} WHERE id = :id", {**row, "id": current.id})
        return merged

    def list_jobs(
        self,
        limit: int = 50,
        *,
        provider: str | None = None,
        states: Sequence[JobState] | None = None,
    ) -> list[JobRecord]:
        """Newest first."""
        sql = "SELECT * FROM jobs"
        where: list[str] = []
        params: list[Any] = []
        if provider:
            where.append("provider = ?")
            params.append(provider)
        if states:
            where.append(f"state IN ({', '.join('?' for _ in states)})")
            params.extend(s.value for s in states)
        if where:
            sql += " WHERE " + " AND ".join(where)
        sql += " ORDER BY created_at DESC, rowid DESC LIMIT ?"
        params.append(limit)
        with self._lock:
            rows = self._conn.execute(sql, params).fetchall()
        return [self._from_row(r) for r in rows]

    # --- events ------------------------------------------------------------------------------

    def add_events(self, job_id: str, events: Sequence[JobEvent]) -> int:
        """Append events (oldest first); already-known event ids are ignored. Returns new count."""
        if not events:
            return 0
        with self._write() as conn:
            seq = int(
                conn.execute(
                    "SELECT COALESCE(MAX(seq), 0) FROM events WHERE job_id = ?", (job_id,)
                ).fetchone()[0]
            )
            added = 0
            for event in events:
                seq += 1
                cur = conn.execute(
                    "INSERT OR IGNORE INTO events (job_id, seq, event_id, created_at, level, "
                    "message, step, loss, data) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (
                        job_id,
                        seq,
                        event.id,
                        event.created_at.isoformat() if event.created_at else None,
                        event.level,
                        redact(event.message),
                        event.step,
                        event.loss,
                        json.dumps(redact_config(event.data), sort_keys=True),
                    ),
                )
                added += cur.rowcount
        return added

    def events(self, job_id: str, limit: int | None = None) -> list[JobEvent]:
        """Stored events, oldest first (the last ``limit`` when given)."""
        sql = "SELECT * FROM events WHERE job_id = ? ORDER BY seq DESC"
        params: list[Any] = [job_id]
        if limit is not None:
            sql += " LIMIT ?"
            params.append(limit)
        with self._lock:
            rows = self._conn.execute(sql, params).fetchall()
        return [
            JobEvent(
                id=r["event_id"],
                created_at=datetime.fromisoformat(r["created_at"]) if r["created_at"] else None,
                level=r["level"],
                message=r["message"],
                step=r["step"],
                loss=r["loss"],
                data=json.loads(r["data"]),
            )
            for r in reversed(rows)
        ]

    def last_event_id(self, job_id: str) -> str | None:
        with self._lock:
            row = self._conn.execute(
                "SELECT event_id FROM events WHERE job_id = ? ORDER BY seq DESC LIMIT 1", (job_id,)
            ).fetchone()
        return None if row is None else str(row[0])

    # --- uploads -----------------------------------------------------------------------------

    def upload_get(self, provider: str, sha256: str) -> str | None:
        """The remote file id of bytes with ``sha256`` already uploaded to ``provider``."""
        with self._lock:
            row = self._conn.execute(
                "SELECT remote_id FROM uploads WHERE provider = ? AND sha256 = ?",
                (provider, sha256),
            ).fetchone()
        return None if row is None else str(row[0])

    def upload_put(
        self,
        provider: str,
        sha256: str,
        remote_id: str,
        *,
        filename: str | None = None,
        size: int | None = None,
    ) -> None:
        with self._write() as conn:
            conn.execute(
                "INSERT OR REPLACE INTO uploads (provider, sha256, remote_id, filename, bytes, "
                "created_at) VALUES (?, ?, ?, ?, ?, ?)",
                (provider, sha256, remote_id, filename, size, now().isoformat()),
            )

    def upload_forget(self, provider: str, remote_id: str) -> None:
        """Drop a cached upload (the remote file was deleted or is gone)."""
        with self._write() as conn:
            conn.execute(
                "DELETE FROM uploads WHERE provider = ? AND remote_id = ?", (provider, remote_id)
            )


_default: dict[Path, JobStore] = {}
_default_lock = threading.Lock()


def open_store(path: Path | None = None) -> JobStore:
    """The process-wide store for ``path`` (default: ``home()/jobs.sqlite3``), opened once."""
    resolved = (path if path is not None else home() / DB_NAME).resolve()
    with _default_lock:
        store = _default.get(resolved)
        if store is None:
            store = JobStore(resolved)
            _default[resolved] = store
        return store
