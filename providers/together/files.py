"""Uploads through Together's checksum / presigned flow: identical bytes are sent once,
and a file is used only once Together has validated it."""

from __future__ import annotations

import contextlib
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tuneport.errors import NotFoundError, ProviderError, redact
from tuneport.progress import Progress
from tuneport.providers.base import PreparedData, UploadedData, export_prepared
from tuneport.providers.errormap import one_line
from tuneport.providers.hosted import upload_pair
from tuneport.providers.together.client import TogetherBase
from tuneport.providers.together.errors import sdk
from tuneport.providers.together.options import TARGET
from tuneport.schemas import AnyRecord, JobConfig

if TYPE_CHECKING:
    from together.types import FileResponse

FILE_DONE = "COMPLETED"
FILE_UNSTARTED = "PENDING"  # stored, validation not asked for (the SDK's preprocess call)
FILE_BROKEN = frozenset({"FAILED", "INVALID_FORMAT"})


class TogetherFiles(TogetherBase):
    """Prepare, upload and validate the data."""

    def prepare(
        self, records: Iterable[AnyRecord], cfg: JobConfig, out_dir: Path, progress: Progress
    ) -> PreparedData:
        """Together reads the OpenAI chat / preference JSONL layout without OpenAI's
        ``parallel_tool_calls`` (docs: data preparation, function calling)."""
        return export_prepared(
            records, cfg, progress, out_dir, target=TARGET, title="convert to Together JSONL"
        )

    def upload(self, prepared: PreparedData, cfg: JobConfig, progress: Progress) -> UploadedData:
        return upload_pair(prepared, lambda path, sha: self.upload_file(path, sha, progress))

    def upload_file(self, path: Path, sha256: str, progress: Progress) -> tuple[str, bool]:
        """Upload ``path`` unless identical bytes are there already; ``(file id, reused)``.

        Waits until Together has validated the file (``processing_status`` COMPLETED)."""
        size = path.stat().st_size
        index = self._uploads()
        cached = index.upload_get(self.store_key, sha256)
        if cached is not None:
            remote = self._file_or_none(cached)
            if (
                remote is not None
                and remote.bytes == size
                and remote.processing_status not in (FILE_BROKEN)
            ):
                progress.note(f"{path.name}: identical bytes already uploaded as {cached}")
                done = self._processed(remote, path.name, started=False)
                return done.id, True
            index.upload_forget(self.store_key, cached)

        remote, existed = self._send(path, size, progress)
        if existed and (remote.bytes != size or remote.processing_status in FILE_BROKEN):
            # a lost reply left an empty (or broken) file under this checksum: replace it
            with contextlib.suppress(NotFoundError):
                self._delete_file(remote.id)
            remote, existed = self._send(path, size, progress)
        if existed:
            progress.note(f"{path.name}: identical bytes already uploaded as {remote.id}")
        done = self._processed(remote, path.name, started=not existed)
        index.upload_put(self.store_key, sha256, done.id, filename=path.name, size=size)
        return done.id, existed

    def _send(self, path: Path, size: int, progress: Progress) -> tuple[FileResponse, bool]:
        from together.lib.resources.files import FileAlreadyExistsError
        from together.lib.types.error import FileTypeError

        def send() -> tuple[FileResponse, bool]:
            sent = [0]

            def advance(event: Any) -> None:
                done = int(getattr(event, "uploaded_bytes", 0))
                progress.advance(max(0, done - sent[0]))
                sent[0] = max(sent[0], done)

            progress.start(f"upload {path.name}", total=size)
            try:
                return (
                    self.client.files.upload(
                        file=path,
                        purpose="fine-tune",
                        check=True,
                        raise_if_already_exists=True,
                        progress_callback=advance,
                    ),
                    False,
                )
            except FileAlreadyExistsError as exc:  # same checksum known: that file
                return self.client.files.retrieve(exc.file_id), True
            except FileTypeError as exc:  # the SDK's local file check
                raise ProviderError(
                    f"the together SDK refused {path.name}: {one_line(str(exc), 200)}",
                    hint="run `tuneport validate DATA --provider together`",
                ) from None
            finally:
                progress.finish()

        return self._call(send)

    def _file_or_none(self, file_id: str) -> FileResponse | None:
        try:
            return self._call(lambda: self.client.files.retrieve(file_id))
        except NotFoundError:
            return None

    def _processed(self, remote: FileResponse, label: str, *, started: bool) -> FileResponse:
        """``remote`` once Together validated it; ProviderError if it refused the file.

        A file found again by its checksum (``started`` false) whose validation never began
        (its bytes went up but the reply was lost before the SDK's preprocess call) is sent to
        validation once, instead of waiting for a validation nobody asked for."""
        if not started and remote.processing_status == FILE_UNSTARTED:
            file_id = remote.id
            remote = self._call(
                lambda: self.client.post(
                    f"/v1/files/{file_id}/preprocess", cast_to=sdk().types.FileResponse
                )
            )

        def done(file: FileResponse) -> bool:
            if file.processing_status in FILE_BROKEN:
                report = file.validation_report
                why = (report.error if report is not None else None) or "no reason given"
                raise ProviderError(
                    f"Together refused {label} ({file.processing_status}): {redact(why)}",
                    hint="run `tuneport validate DATA --provider together` and fix what it reports",
                )
            return file.processing_status in (FILE_DONE, None)

        if done(remote):
            return remote
        file_id = remote.id
        return self._poll_upload(
            lambda: self.client.files.retrieve(file_id),
            done,
            timeout=self.options.processing_timeout,
            setting="processing_timeout",
            still=lambda file: f"Together is still validating {label} ({file.id})",
        )
