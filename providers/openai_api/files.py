"""Uploads over the OpenAI protocol: each file once (found again by its content-derived name
after a lost reply or on another machine), through the Uploads API in parts above the service's
one-request limit, waited on until processed where the service needs it; and their deletion."""

from __future__ import annotations

import io
from collections.abc import Iterable
from pathlib import Path

from tuneport.errors import InputError, NotFoundError, ProviderError, redact
from tuneport.progress import Progress
from tuneport.providers.base import PreparedData, UploadedData, export_prepared, oversized
from tuneport.providers.hosted import upload_pair
from tuneport.providers.openai_api.backend import ProtocolBackend
from tuneport.providers.openai_api.service import SEARCH_FILES
from tuneport.retry import outcome_unknown
from tuneport.schemas import AnyRecord, JobConfig, JobRef


class _ProgressFile(io.BufferedReader):
    """A binary file that reports every chunk the HTTP client reads to ``progress``."""

    def __init__(self, path: Path, progress: Progress) -> None:
        super().__init__(io.FileIO(path, "rb"))
        self._progress = progress

    def read(self, size: int | None = -1) -> bytes:
        chunk = super().read(size)
        if chunk:
            self._progress.advance(len(chunk))
        return chunk


class Files(ProtocolBackend):
    """Export, upload, wait for processing, delete."""

    def prepare(
        self, records: Iterable[AnyRecord], cfg: JobConfig, out_dir: Path, progress: Progress
    ) -> PreparedData:
        prepared = export_prepared(
            records, cfg, progress, out_dir, target="openai", title=self.service.export_title
        )
        most = self.service.limits().upload_bytes
        if big := oversized(prepared, most):
            path, size = big
            raise InputError(
                f"{path.name} is {size / 2**30:,.1f} GiB; {self.api.title} "
                f"takes fine-tuning files of at most {most / 2**30:g} GB",
                hint="split the data or shorten it (tuneport curate --sample N)",
            )
        return prepared

    def upload(self, prepared: PreparedData, cfg: JobConfig, progress: Progress) -> UploadedData:
        uploaded = upload_pair(prepared, lambda path, sha: self._upload_file(path, sha, progress))
        if self.service.wait_for_files:
            for file_id in (uploaded.training, uploaded.validation):
                if file_id is not None:
                    self.wait_for_file(file_id, progress)
        return uploaded

    def wait_for_file(self, file_id: str, progress: Progress, *, poll: float | None = None) -> None:
        """Wait until the service has processed ``file_id`` (a job created on a file still
        ``pending`` is refused); a file the service could not process is an InputError."""
        from tuneport.retry import default_interval

        step = poll if poll is not None else min(5.0, default_interval())
        waited = 0.0
        limit = float(getattr(self.options, "file_timeout", self.service.file_timeout))
        while True:
            remote = self._call(lambda: self.client.files.retrieve(file_id))
            status = str(getattr(remote, "status", ""))
            if status == "processed":
                return
            if status in ("error", "deleted", "deleting"):
                detail = getattr(remote, "status_details", None)
                raise InputError(
                    f"{self.api.title} could not process the uploaded file {file_id} ({status}"
                    + (f": {redact(str(detail))}" if detail else "")
                    + ")",
                    hint=f"run `tuneport validate DATA --provider {self.name}` and fix what it "
                    "reports",
                )
            if waited >= limit:
                raise ProviderError(
                    f"{self.api.title} has not processed {file_id} after {limit:g} s "
                    f"(status {status})",
                    hint="run the same command again later: the upload is reused",
                )
            progress.note(f"{file_id}: {status or 'not processed yet'}, waiting")
            self._sleep(step)
            waited += max(step, 0.5)  # $TUNEPORT_POLL_INTERVAL=0 (tests) still ends

    def _upload_file(self, path: Path, sha256: str, progress: Progress) -> tuple[str, bool]:
        """Upload ``path`` unless identical bytes are already there; ``(file id, reused)``."""
        filename = f"tuneport-{sha256[:16]}.jsonl"
        size = path.stat().st_size
        store = self._uploads()
        cached = store.upload_get(self.store_key, sha256)
        if cached is not None:
            try:
                remote = self._call(lambda: self.client.files.retrieve(cached))
            except NotFoundError:
                remote = None
            if (
                remote is not None
                and remote.status not in self.service.deleted_files
                and remote.bytes == size
            ):
                progress.note(f"{path.name}: identical bytes already uploaded as {cached}")
                return cached, True
            store.upload_forget(self.store_key, cached)
        # the store may be new (another machine): look for our content-named file
        found = self._find_file(filename, size)
        if found is not None:
            store.upload_put(self.store_key, sha256, found, filename=filename, size=size)
            progress.note(f"{path.name}: identical bytes already uploaded as {found}")
            return found, True

        def send() -> str:
            progress.start(f"upload {path.name}", total=size)
            with _ProgressFile(path, progress) as fh:
                created = self.client.files.create(
                    file=(filename, fh, "application/jsonl"), purpose="fine-tune"
                )
            progress.finish()
            file_id = getattr(created, "id", None)
            if not isinstance(file_id, str) or not file_id:
                raise self.unreadable("the upload")
            return file_id

        if size > self.service.limits().file_bytes:  # the Uploads API, in parts
            file_id = self._upload_in_parts(path, filename, size, progress)
        else:

            def settle(exc: BaseException) -> str | None:
                # the failed attempt may have stored the file (a lost reply): never upload twice
                return self._find_file(filename, size) if outcome_unknown(exc) else None

            try:
                file_id = self._call(send, before_retry=settle)
            except ProviderError as exc:
                if not exc.outcome_unknown:
                    raise
                found = self._find_file(filename, size)  # the last attempt's reply was lost too
                if found is None:
                    raise
                file_id = found
        store.upload_put(self.store_key, sha256, file_id, filename=filename, size=size)
        return file_id, False

    def _upload_in_parts(self, path: Path, filename: str, size: int, progress: Progress) -> str:
        """Upload a file over the service's one-request limit through the Uploads API (parts of
        :attr:`FileLimits.part_bytes`, each retried on its own); the id of the file it makes."""
        part_bytes = self.service.limits().part_bytes
        upload = self._call(
            lambda: self.client.uploads.create(
                bytes=size, filename=filename, mime_type="application/jsonl", purpose="fine-tune"
            )
        )
        part_ids: list[str] = []
        progress.start(f"upload {path.name} (Uploads API)", total=size)
        with path.open("rb") as fh:
            while chunk := fh.read(part_bytes):
                part_ids.append(self._upload_part(upload.id, chunk))
                progress.advance(len(chunk))
        progress.finish()
        done = self._call(lambda: self.client.uploads.complete(upload.id, part_ids=part_ids))
        if done.file is None:
            raise ProviderError(
                f"{self.api.title} completed upload {upload.id} without a file",
                hint="run the command again",
            )
        return done.file.id

    def _upload_part(self, upload_id: str, data: bytes) -> str:
        part = self._call(lambda: self.client.uploads.parts.create(upload_id, data=data))
        return part.id

    def _find_file(self, filename: str, size: int) -> str | None:
        deleted = self.service.deleted_files

        def scan() -> str | None:
            for i, item in enumerate(self.client.files.list(purpose="fine-tune")):
                if i >= SEARCH_FILES:
                    break
                if item.filename == filename and item.bytes == size and item.status not in deleted:
                    return item.id
            return None

        return self._call(scan)

    def cleanup(self, job: JobRef) -> list[str]:
        """Delete the uploaded training/validation files."""
        remote = self._call(lambda: self.client.fine_tuning.jobs.retrieve(job.remote_id))
        return self._delete_uploads(remote.training_file, remote.validation_file)

    def _delete_uploads(self, training: str | None, validation: str | None) -> list[str]:
        removed: list[str] = []
        for role, file_id in (("training", training), ("validation", validation)):
            if not file_id:
                continue
            try:
                self._delete_file(file_id)
                removed.append(f"uploaded {role} file {file_id}")
            except NotFoundError:  # already gone is fine
                pass
            self._uploads().upload_forget(self.store_key, file_id)
        return removed

    def _delete_file(self, file_id: str) -> None:
        self._call(lambda: self.client.files.delete(file_id))
