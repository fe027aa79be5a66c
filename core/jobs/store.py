"""The local job store: one SQLite file under the user data dir (``TUNEPORT_HOME`` overrides).

Safe with several tuneport processes at once: WAL journal, a busy timeout and short
``BEGIN IMMEDIATE`` write transactions. The schema evolves through an ordered list of
migrations tracked in ``PRAGMA user_version``; before migrating an existing store, a copy is
kept beside it (``jobs.sqlite3.v<N>.bak``). Nothing secret is ever written: job configs pass
through :func:`redact_config` first.

Nothing is lost silently: a new store is built aside and moved into place whole, so an empty
(0-byte) or unreadable file at the store's path is damage and is reported with its path
(:class:`StoreError`), never replaced by an empty store. A store deleted or replaced while a
command runs is noticed at the next write (:class:`StoreVanishedError`); ``watch`` then restores
it (:meth:`JobStore.recover`) and says so.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
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
from tuneport.files import clean_stale_temps
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
    """
    ALTER TABLE jobs ADD COLUMN launch_key TEXT;
    CREATE INDEX jobs_launch ON jobs(launch_key, created_at);
    """,
    """
    ALTER TABLE jobs ADD COLUMN billed_usd REAL;
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


def run_id_for(launch_key: str, *, fresh: bool = False) -> str:
    """The run id of the launch identified by ``launch_key`` (the same key, the same id, so
    a re-run finds what a crashed run created); ``fresh`` adds a random part (``--new-run``)."""
    base = f"run-{hashlib.sha256(launch_key.encode()).hexdigest()[:16]}"
    return f"{base}-{secrets.token_hex(3)}" if fresh else base


class StoreError(ConfigError):
    """The job store file is damaged, empty, read-only, locked or gone (its path is named)."""


class StoreVanishedError(StoreError):
    """The store file was deleted or replaced while this process had it open."""


_DAMAGED = ("malformed", "not a database", "disk image", "encrypted", "file is not")


def _store_error(path: Path, exc: sqlite3.Error) -> StoreError:
    text = str(exc)
    low = text.lower()
    backups = sorted(path.parent.glob(f"{path.name}.v*.bak"))
    restore = f"restore {backups[-1]}, or " if backups else ""
    if "readonly" in low or "read-only" in low:
        return StoreError(
            f"the job store {path} is read-only ({text})",
            hint=f"make it writable (chmod u+w {path}) or set TUNEPORT_HOME to another folder",
        )
    if "locked" in low or "busy" in low:
        return StoreError(
            f"the job store {path} is locked by another process ({text})",
            hint="wait for the other tuneport command to finish, then run this one again",
        )
    if any(word in low for word in _DAMAGED):
        return StoreError(
            f"the job store {path} is damaged ({text}); tuneport did not change it",
            hint=f"{restore}move it aside (mv {path} {path}.damaged) to start a new, empty "
            "store; remote jobs keep running (see `tuneport jobs list --remote --provider P`)",
        )
    return StoreError(
        f"the job store {path} cannot be used ({text})",
        hint="check the file and its folder (permissions, free space), or set TUNEPORT_HOME",
    )


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
        self._identity: tuple[int, int] | None = None  # (device, inode) of the open file
        self._size = 0  # its size when last seen: a store file never shrinks, unless truncated
        self._conn = self._open()

    def _open(self) -> sqlite3.Connection:
        """Connect (building a new store aside first if there is none) and migrate."""
        try:
            size = self.path.stat().st_size
        except FileNotFoundError:
            self._create()
            size = self.path.stat().st_size
        except OSError as exc:
            raise StoreError(
                f"cannot read the job store {self.path}: {exc.strerror}",
                hint="check the file's permissions, or set TUNEPORT_HOME",
            ) from None
        if size == 0:
            raise StoreError(
                f"the job store {self.path} is empty (0 bytes): the jobs it held are lost or "
                "were never written; tuneport did not replace it",
                hint=f"restore a copy if you have one, or delete it (rm {self.path}) to start a "
                "new store; remote jobs keep running (`tuneport jobs list --remote --provider P`)",
            )
        try:
            # checked before the switch to WAL, which rewrites the header: a damaged or newer
            # store is left exactly as it was
            conn = self._connect(self.path, wal=False)
            info = os.stat(self.path)
            self._identity = (info.st_dev, info.st_ino)
            self._size = info.st_size
            self._conn = conn
            row = conn.execute("PRAGMA quick_check(1)").fetchone()
            if row is None or row[0] != "ok":
                raise sqlite3.DatabaseError(f"database disk image is malformed ({row[0]})")
            self._refuse_newer()
            self._enable_wal()
            self.migrate()
        except sqlite3.Error as exc:
            with contextlib.suppress(Exception):
                conn.close()
            raise _store_error(self.path, exc) from None
        return conn

    def _connect(self, path: Path, *, wal: bool = True) -> sqlite3.Connection:
        conn = sqlite3.connect(
            path, timeout=BUSY_TIMEOUT_MS / 1000, isolation_level=None, check_same_thread=False
        )
        conn.row_factory = sqlite3.Row
        conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
        self._conn = conn
        if wal:
            self._enable_wal()
        conn.execute("PRAGMA synchronous = NORMAL")
        conn.execute("PRAGMA foreign_keys = ON")
        return conn

    def _create(self) -> None:
        """Build a new, migrated store beside the path and move it in whole (a process that
        loses the race keeps the winner's file), so no half-made store is ever at the path."""
        clean_stale_temps(self.path.parent)
        journal = [p for p in (self.path.with_name(self.path.name + "-wal"),) if p.exists()]
        if journal and journal[0].stat().st_size > 0:
            raise StoreError(
                f"the job store {self.path} is missing but its journal {journal[0].name} is "
                "there: the store was deleted or moved while in use; tuneport did not start a "
                "new one",
                hint=f"restore {self.path.name}, or remove {journal[0]} (and -shm) to start a new "
                "store",
            )
        tmp = self.path.with_name(f".{self.path.name}.tp{os.getpid()}-{secrets.token_hex(4)}.tmp")
        self._identity = None
        try:
            self._conn = self._connect(tmp)
            self.migrate(backup=False)
            self._conn.close()
            with contextlib.suppress(FileExistsError):
                os.link(tmp, self.path)
        except sqlite3.Error as exc:
            raise _store_error(self.path, exc) from None
        except OSError as exc:
            raise StoreError(
                f"cannot create the job store {self.path}: {exc.strerror}",
                hint="set TUNEPORT_HOME to a writable folder",
            ) from None
        finally:
            for suffix in ("", "-wal", "-shm"):
                with contextlib.suppress(OSError):
                    tmp.with_name(tmp.name + suffix).unlink()

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

    def _check_file(self) -> None:
        """A :class:`StoreVanishedError` if the file was deleted or replaced since it was opened
        (SQLite would keep writing to the deleted file, losing every change)."""
        if self._identity is None:  # being built aside
            return
        try:
            info = os.stat(self.path)
        except FileNotFoundError:
            raise StoreVanishedError(
                f"the job store {self.path} was deleted while tuneport was using it",
                hint="restore it, or run the command again to start a new store",
            ) from None
        except OSError:
            return
        if (info.st_dev, info.st_ino) != self._identity:
            raise StoreVanishedError(
                f"the job store {self.path} was replaced while tuneport was using it",
                hint="run the command again to use the new file",
            )
        if info.st_size < self._size:  # SQLite never shrinks it (tuneport does not VACUUM)
            raise StoreVanishedError(
                f"the job store {self.path} was truncated while tuneport was using it "
                f"({self._size:,} -> {info.st_size:,} bytes)",
                hint="restore it from a copy, or run the command again to start a new store",
            )
        self._size = info.st_size

    def recover(self, keep: Sequence[JobRecord] = ()) -> str:
        """After :class:`StoreVanishedError`: put the store back and say what was done.

        A deleted store is rebuilt from this process's open handle (which still reads the
        deleted file), so no job is lost; a replaced one is reopened and ``keep`` (the records
        this process is working on) are added to it if missing.
        """
        with self._lock:
            old = self._conn
            try:
                info: os.stat_result | None = os.stat(self.path)
            except OSError:
                info = None
            if info is not None and (info.st_dev, info.st_ino) == self._identity:
                # truncated in place: what it held is gone; keep the remains, start anew
                with contextlib.suppress(sqlite3.Error):
                    old.close()
                stamp = now().strftime("%Y%m%dT%H%M%S")
                aside = self.path.with_name(f"{self.path.name}.truncated-{stamp}")
                for suffix in ("", "-wal", "-shm"):
                    with contextlib.suppress(FileNotFoundError):
                        os.replace(f"{self.path}{suffix}", f"{aside}{suffix}")
                what = (
                    f"was truncated while in use (its remains are kept as {aside.name}); "
                    "tuneport started a new store (other jobs' records are not in it; remote "
                    "jobs keep running: `tuneport jobs list --remote --provider P`)"
                )
            elif info is None:
                self.path.parent.mkdir(parents=True, exist_ok=True)  # rm -rf $TUNEPORT_HOME
                tmp = self.path.with_name(
                    f".{self.path.name}.tp{os.getpid()}-{secrets.token_hex(4)}.tmp"
                )
                try:
                    with contextlib.closing(sqlite3.connect(tmp)) as dest:
                        old.backup(dest)  # the open handle still reads the deleted file
                        dest.execute("PRAGMA journal_mode = WAL")
                    with contextlib.suppress(sqlite3.Error):
                        old.close()  # before the new file appears: it removes the old -wal
                    with contextlib.suppress(FileExistsError):
                        os.link(tmp, self.path)
                except (sqlite3.Error, OSError) as exc:
                    raise StoreError(
                        f"the job store {self.path} was deleted and could not be restored: {exc}",
                        hint="run the command again to start a new store",
                    ) from None
                finally:
                    for suffix in ("", "-wal", "-shm"):
                        with contextlib.suppress(OSError):
                            tmp.with_name(tmp.name + suffix).unlink()
                what = "was deleted; tuneport restored it from its open copy"
            else:
                with contextlib.suppress(sqlite3.Error):
                    old.close()
                what = "was replaced; tuneport now uses the new file"
            self._conn = self._open()
            added = [r.id for r in keep if self._add_missing(r)]
        if added:
            what += f" and added job {', '.join(added)} to it"
        return f"the job store {self.path} {what}"

    def _add_missing(self, record: JobRecord) -> bool:
        if self._get_row(record.id) is not None:
            return False
        self.add(record)
        return True

    def __enter__(self) -> JobStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        """A short write transaction that takes the write lock up front (no upgrade deadlocks)."""
        with self._lock:
            self._check_file()
            try:
                self._conn.execute("BEGIN IMMEDIATE")
            except sqlite3.Error as exc:
                raise _store_error(self.path, exc) from None
            try:
                yield self._conn
            except sqlite3.IntegrityError:
                self._conn.execute("ROLLBACK")
                raise
            except sqlite3.Error as exc:
                with contextlib.suppress(sqlite3.Error):
                    self._conn.execute("ROLLBACK")
                raise _store_error(self.path, exc) from None
            except BaseException:
                self._conn.execute("ROLLBACK")
                raise
            try:
                self._conn.execute("COMMIT")
            except sqlite3.Error as exc:
                raise _store_error(self.path, exc) from None

    def _read(self, sql: str, params: Sequence[Any] | Mapping[str, Any] = ()) -> list[sqlite3.Row]:
        """Rows of one query; SQLite errors become a :class:`StoreError` naming the file."""
        with self._lock:
            try:
                return list(self._conn.execute(sql, params).fetchall())
            except sqlite3.Error as exc:
                raise _store_error(self.path, exc) from None

    @property
    def schema_version(self) -> int:
        return int(self._read("PRAGMA user_version")[0][0])

    def _refuse_newer(self) -> None:
        if self.schema_version > len(MIGRATIONS):
            raise StoreError(
                f"the job store {self.path} was written by a newer tuneport "
                f"(schema {self.schema_version}); tuneport did not change it",
                hint="upgrade tuneport or point TUNEPORT_HOME elsewhere",
            )

    def migrate(self, *, backup: bool = True) -> None:
        """Apply the migrations this database has not seen yet (each in its own transaction),
        after copying an existing store to ``<store>.v<N>.bak``."""
        self._refuse_newer()
        while True:
            version = self.schema_version
            if version >= len(MIGRATIONS):
                return
            if backup and version > 0:
                self._backup(version)
            with self._write() as conn:
                # re-read inside the lock: another process may have migrated meanwhile
                version = int(conn.execute("PRAGMA user_version").fetchone()[0])
                if version >= len(MIGRATIONS):
                    return
                for statement in MIGRATIONS[version].split(";"):
                    if statement.strip():
                        conn.execute(statement)
                conn.execute(f"PRAGMA user_version = {version + 1}")

    def backup_path(self, version: int) -> Path:
        return self.path.with_name(f"{self.path.name}.v{version}.bak")

    def _backup(self, version: int) -> None:
        """Copy the store (schema ``version``) aside before migrating it; kept, never replaced."""
        dest = self.backup_path(version)
        if dest.exists():
            return
        tmp = dest.with_name(f".{dest.name}.tp{os.getpid()}-{secrets.token_hex(4)}.tmp")
        try:
            with contextlib.closing(sqlite3.connect(tmp)) as copy:
                self._conn.backup(copy)
            with contextlib.suppress(FileExistsError):
                os.link(tmp, dest)
        except OSError as exc:
            raise StoreError(
                f"cannot back up the job store to {dest} before upgrading it: {exc.strerror}",
                hint="free some space or make the folder writable, then run the command again",
            ) from None
        finally:
            with contextlib.suppress(OSError):
                tmp.unlink()

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

    def _damaged_row(self, what: str, job_id: object, detail: str) -> StoreError:
        """A row whose contents tuneport cannot read (edited by hand, or a damaged page)."""
        shown = str(job_id)[:80]
        return StoreError(
            f"the job store {self.path} has a damaged {what} for job {shown!r} ({detail}); "
            "tuneport did not change it",
            hint=f"delete that job's row (sqlite3 {self.path} \"DELETE FROM jobs WHERE id = "
            f"'{shown}'\") or move the store aside (mv {self.path} {self.path}.damaged)",
        )

    def _from_row(self, row: sqlite3.Row) -> JobRecord:
        from pydantic import ValidationError

        data = {key: row[key] for key in _COLUMNS}
        for key in _JSON_FIELDS:
            try:
                data[key] = json.loads(data[key])
            except (TypeError, ValueError, RecursionError) as exc:
                detail = f"column {key} is not JSON: {type(exc).__name__}"
                raise self._damaged_row("row", data.get("id"), detail) from None
        # masked again on the way out: rows an older tuneport wrote may hold a password in a
        # base URL (`--set base_url=http://user:pw@host`), which is never shown
        data["config"] = redact_config(data["config"])
        try:
            return JobRecord.model_validate(data)
        except (ValidationError, RecursionError) as exc:
            lines = str(exc).splitlines()[:3]
            raise self._damaged_row("row", data.get("id"), " ".join(lines)[:200]) from None

    def add(self, record: JobRecord) -> JobRecord:
        row = self._to_row(record)
        cols = ", ".join(_COLUMNS)
        marks = ", ".join(f":{c}" for c in _COLUMNS)
        with self._write() as conn:
            conn.execute(f"INSERT INTO jobs ({cols}) VALUES ({marks})", row)
        return self.get(record.id)

    def _get_row(self, job_id: str) -> sqlite3.Row | None:
        rows = self._read("SELECT * FROM jobs WHERE id = ?", (job_id,))
        return rows[0] if rows else None

    def get(self, job_id: str) -> JobRecord:
        """The job with local id ``job_id`` (a unique prefix or its remote id also works)."""
        row = self._get_row(job_id)
        if row is None:
            rows = self._read(
                "SELECT * FROM jobs WHERE remote_id = ? OR id LIKE ? ESCAPE '\\' LIMIT 2",
                (job_id, job_id.replace("%", r"\%").replace("_", r"\_") + "%"),
            )
            row = rows[0] if len(rows) == 1 else None
        if row is None:
            raise NotFoundError(
                f"no job {job_id!r} in the job store ({self.path})",
                hint="see `tuneport jobs list` for the ids",
            )
        return self._from_row(row)

    def find_launch(self, launch_key: str) -> JobRecord | None:
        """The newest job launched with ``launch_key`` (:func:`tuneport.jobs.launch.launch_key`)."""
        rows = self._read(
            "SELECT * FROM jobs WHERE launch_key = ? ORDER BY created_at DESC, rowid DESC LIMIT 1",
            (launch_key,),
        )
        return self._from_row(rows[0]) if rows else None

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
        return [self._from_row(r) for r in self._read(sql, params)]

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
        rows = self._read(sql, params)
        try:
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
        except (TypeError, ValueError, RecursionError) as exc:  # pydantic's error is a ValueError
            detail = f"{type(exc).__name__}: {str(exc).splitlines()[0][:160]}"
            raise self._damaged_row("event", job_id, detail) from None

    def last_event_id(self, job_id: str) -> str | None:
        rows = self._read(
            "SELECT event_id FROM events WHERE job_id = ? ORDER BY seq DESC LIMIT 1", (job_id,)
        )
        return str(rows[0][0]) if rows else None

    # --- uploads -----------------------------------------------------------------------------

    def upload_get(self, provider: str, sha256: str) -> str | None:
        """The remote file id of bytes with ``sha256`` already uploaded to ``provider``."""
        rows = self._read(
            "SELECT remote_id FROM uploads WHERE provider = ? AND sha256 = ?", (provider, sha256)
        )
        return str(rows[0][0]) if rows else None

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
