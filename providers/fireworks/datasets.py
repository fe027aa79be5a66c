"""Datasets: named by the SHA-256 of their bytes, so identical bytes are found again instead of
uploaded twice; small files go up in one request, large ones through a signed URL."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tuneport.errors import ProviderError, redact
from tuneport.progress import Progress
from tuneport.providers.base import PreparedData, UploadedData, export_prepared
from tuneport.providers.errormap import one_line
from tuneport.providers.fireworks.client import FireworksBase
from tuneport.providers.fireworks.errors import sdk
from tuneport.providers.fireworks.ids import dataset_id
from tuneport.retry import call_with_retry
from tuneport.schemas import AnyRecord, JobConfig

if TYPE_CHECKING:
    from fireworks.types import Dataset


def count_lines(path: Path) -> int:
    with path.open("rb") as fh:
        return sum(1 for line in fh if line.strip())


class Datasets(FireworksBase):
    """Upload the prepared files as Fireworks datasets (``prepare``, ``upload``)."""

    def prepare(
        self, records: Iterable[AnyRecord], cfg: JobConfig, out_dir: Path, progress: Progress
    ) -> PreparedData:
        """Fireworks reads OpenAI chat / DPO JSONL as it is (docs: managed fine-tuning)."""
        return export_prepared(
            records,
            cfg,
            progress,
            out_dir,
            target="openai",
            ext="fireworks.jsonl",
            title="convert to Fireworks JSONL",
        )

    def upload(self, prepared: PreparedData, cfg: JobConfig, progress: Progress) -> UploadedData:
        training, reused = self.upload_file(
            prepared.training, prepared.sha256, prepared.examples, cfg.method, progress
        )
        validation = None
        if prepared.validation is not None and prepared.validation_sha256 is not None:
            validation, v_reused = self.upload_file(
                prepared.validation,
                prepared.validation_sha256,
                count_lines(prepared.validation),
                cfg.method,
                progress,
            )
            reused = reused and v_reused
        return UploadedData(training=training, validation=validation, reused=reused)

    def upload_file(
        self, path: Path, sha256: str, examples: int, method: str, progress: Progress
    ) -> tuple[str, bool]:
        """The dataset holding ``path`` (named by its SHA-256); uploaded unless it is there.

        Returns ``(dataset name, reused)`` once the dataset is READY."""
        ds_id = dataset_id(sha256)
        existing = self._get_or_none(lambda: self.client.datasets.get(ds_id))
        if existing is not None and existing.state == "READY":
            self._check_dataset(existing, path.name)
            progress.note(f"{path.name}: identical bytes already uploaded as {existing.name}")
            return str(existing.name), True
        if existing is None:
            spec: dict[str, Any] = {
                "display_name": f"tuneport {path.stem} {sha256[:12]}",
                "example_count": str(examples),
                "user_uploaded": {},
            }
            if method == "sft":
                spec["format"] = "CHAT"

            def create() -> Dataset:
                try:
                    return self.client.datasets.create(dataset_id=ds_id, dataset=spec)  # type: ignore[arg-type]
                except sdk().ConflictError:  # created by an attempt whose reply was lost
                    return self.client.datasets.get(ds_id)

            self._call(create)
        self._send(ds_id, path, progress)
        ready = self._wait_dataset(ds_id, path.name)
        return str(ready.name), False

    def _send(self, ds_id: str, path: Path, progress: Progress) -> None:
        size = path.stat().st_size
        progress.start(f"upload {path.name}", total=size)
        try:
            if size <= self.options.direct_upload_max:
                self._call(
                    lambda: self.client.datasets.upload(ds_id, file=path),
                    before_retry=lambda _exc: self._received(ds_id),
                )
            else:
                self._send_signed(ds_id, path, size)
            progress.advance(size)
        finally:
            progress.finish()

    def _received(self, ds_id: str) -> object | None:
        """Before re-sending bytes whose reply went wrong: the dataset if Fireworks has them
        already (no longer UPLOADING), else ``None`` (send again)."""
        try:
            dataset = self.client.datasets.get(ds_id)
        except Exception:  # unknown: sending the same bytes again is safe
            return None
        return dataset if dataset.state not in (None, "UPLOADING", "STATE_UNSPECIFIED") else None

    def _send_signed(self, ds_id: str, path: Path, size: int) -> None:
        """Large files: a signed URL per file (``getUploadEndpoint``), PUT without credentials,
        then ``validateUpload``."""
        import httpx

        reply = self._call(
            lambda: self.client.datasets.get_upload_endpoint(
                ds_id, filename_to_size={path.name: str(size)}
            )
        )
        url = (reply.filename_to_signed_urls or {}).get(path.name)
        if not url:
            raise ProviderError(
                f"Fireworks gave no upload URL for {path.name}", hint="run the command again"
            )

        def put() -> None:
            with path.open("rb") as fh:
                response = httpx.put(
                    url,
                    content=fh,
                    headers={
                        "Content-Type": "application/octet-stream",
                        "X-Goog-Content-Length-Range": f"{size},{size}",
                    },
                    timeout=self.options.timeout,
                )
            response.raise_for_status()

        try:
            call_with_retry(
                put, policy=self._policy, sleep=self._sleep, where="Fireworks upload storage"
            )
        except httpx.HTTPStatusError as exc:
            raise ProviderError(
                f"the signed upload of {path.name} failed with HTTP {exc.response.status_code}",
                hint="run the command again (signed URLs last one hour)",
            ) from None
        except httpx.TransportError as exc:
            raise ProviderError(
                f"the signed upload of {path.name} failed: {one_line(redact(str(exc)), 200)}",
                hint="check the network and run the command again",
            ) from None
        self._call(lambda: self.client.datasets.validate_upload(ds_id, body={}))

    def _wait_dataset(self, ds_id: str, label: str) -> Dataset:
        def ready(dataset: Dataset) -> bool:
            if dataset.state != "READY":
                return False
            self._check_dataset(dataset, label)
            return True

        return self._poll_upload(
            lambda: self.client.datasets.get(ds_id),
            ready,
            timeout=self.options.dataset_timeout,
            setting="dataset_timeout",
            still=lambda ds: f"Fireworks is still processing {label} ({ds.name}, {ds.state})",
        )

    @staticmethod
    def _check_dataset(dataset: Dataset, label: str) -> None:
        status = dataset.status
        code = str((status.code if status else None) or "OK")
        if code not in ("OK", "0"):
            why = redact(one_line(str((status.message if status else None) or code)))
            raise ProviderError(
                f"Fireworks refused {label}: {why}",
                hint="run `tuneport validate DATA --provider fireworks` and fix what it reports",
            )
