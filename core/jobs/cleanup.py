"""`tuneport jobs cleanup`: what deleting a job's resources touches, and doing it.

Identical data is uploaded once and shared by every job trained on it (the upload index), so a
backend whose cleanup deletes uploaded files (``Backend.cleanup_deletes_uploads``) may delete a
file other jobs were launched with: :func:`shared_uploads` names them so the command can warn
before anything is deleted.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from tuneport.jobs.resolve import ref_of
from tuneport.jobs.store import JobStore, now
from tuneport.paths import home
from tuneport.providers import registry
from tuneport.providers.base import Provider
from tuneport.schemas import JobEvent, JobRecord

SCAN_JOBS = 10_000  # jobs of the same provider looked at for shared uploads
CLEANUP_EVENT = "cleanup"  # the ``data["tuneport"]`` of the event a cleanup stores


def shared_uploads(store: JobStore, record: JobRecord) -> dict[str, list[str]]:
    """``{uploaded file: [ids of other jobs launched with it]}`` for the uploads cleaning up
    ``record`` deletes (empty when its backend leaves uploads alone)."""
    if not registry.backend(record.provider).cleanup_deletes_uploads:
        return {}
    mine = set(record.remote_files.values())
    shared: dict[str, list[str]] = {}
    for other in store.list_jobs(SCAN_JOBS, provider=record.provider):
        if other.id == record.id:
            continue
        for upload in sorted(mine & set(other.remote_files.values())):
            shared.setdefault(upload, []).append(other.id)
    return shared


def cleaned_on(store: JobStore, job_id: str) -> str | None:
    """The day (``YYYY-MM-DD``) ``jobs cleanup`` deleted the job's resources, or ``None``."""
    done = [e for e in store.events(job_id) if e.data.get("tuneport") == CLEANUP_EVENT]
    if not done:
        return None
    when = done[-1].created_at
    return when.date().isoformat() if when else "an earlier day"


def cleanup_job(record: JobRecord, provider: Provider, store: JobStore | None = None) -> list[str]:
    """Delete ``record``'s resources at its provider, then the files launch converted for it
    (``$TUNEPORT_HOME/runs/<job id>``); one line per thing deleted. With ``store`` the cleanup
    is stored as one of the job's events (``chat`` then knows why its model is gone)."""
    removed = list(provider.cleanup(ref_of(record)) or [])
    converted = converted_copy(record)
    if converted is not None:
        shutil.rmtree(converted)
        removed.append(f"converted copy {converted}")
    if store is not None:
        stamp = now()
        what = ", ".join(removed) if removed else "nothing was left"
        event = JobEvent(
            id=f"tuneport-cleanup-{stamp.isoformat()}",
            created_at=stamp,
            message=f"cleaned up by `tuneport jobs cleanup`: deleted {what}",
            data={"tuneport": CLEANUP_EVENT, "removed": removed},
        )
        store.add_events(record.id, [event])
    return removed


def cleaned_up(store: JobStore, provider: str, model: str) -> str | None:
    """``job ID was cleaned up on DAY (deleted ...)`` when the job that made the tuned
    ``model`` of ``provider`` was cleaned up, else ``None``."""
    for job in store.list_jobs(SCAN_JOBS, provider=provider):
        if job.tuned_model != model:
            continue
        done = [e for e in store.events(job.id) if e.data.get("tuneport") == CLEANUP_EVENT]
        if done:
            last = done[-1]
            day = last.created_at.date().isoformat() if last.created_at else "an earlier day"
            removed = [str(r) for r in last.data.get("removed", [])]
            more = f" and {len(removed) - 3} more" if len(removed) > 3 else ""
            listed = f" (deleted {', '.join(removed[:3])}{more})" if removed else ""
            return f"job {job.id} was cleaned up on {day}{listed}"
    return None


def converted_copy(record: JobRecord) -> Path | None:
    """The folder of provider-format files written for ``record`` at launch, if it is there."""
    runs = home() / "runs"
    path = runs / record.id
    if path.parent != runs or path.is_symlink() or not path.is_dir():
        return None  # an id that is not one plain name, or nothing to delete
    return path
