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
from tuneport.jobs.store import JobStore
from tuneport.paths import home
from tuneport.providers import registry
from tuneport.providers.base import Provider
from tuneport.schemas import JobRecord

SCAN_JOBS = 10_000  # jobs of the same provider looked at for shared uploads


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


def cleanup_job(record: JobRecord, provider: Provider) -> list[str]:
    """Delete ``record``'s resources at its provider, then the files launch converted for it
    (``$TUNEPORT_HOME/runs/<job id>``); one line per thing deleted."""
    removed = list(provider.cleanup(ref_of(record)) or [])
    converted = converted_copy(record)
    if converted is not None:
        shutil.rmtree(converted)
        removed.append(f"converted copy {converted}")
    return removed


def converted_copy(record: JobRecord) -> Path | None:
    """The folder of provider-format files written for ``record`` at launch, if it is there."""
    runs = home() / "runs"
    path = runs / record.id
    if path.parent != runs or path.is_symlink() or not path.is_dir():
        return None  # an id that is not one plain name, or nothing to delete
    return path
