"""The OpenAI files + fine-tuning + chat protocol, once, for every service that speaks it.

A backend built on it (``openai``, ``azure``) declares a :class:`Service`: who it is (its
:class:`~tuneport.providers.sdk.Service` holds the title, environment variables, base-URL and
error rules), how its SDK client is built (called once, lazily, under a lock), its job states,
request bounds, file limits and the extra body fields its create takes. The protocol does the
rest: uploads with lost-reply recovery (an upload is found again by its content-derived name),
create-once (the run id travels in the job's metadata), status / events / checkpoints, cancel,
pause / resume where the service has them, streamed chat with a non-streamed fallback, cleanup
of the uploaded files and the doctor's key and server checks.

Retries: the SDK client is built with ``max_retries=0``; :mod:`tuneport.retry` (tenacity) owns
every retry, so the two never multiply and a create is never repeated by the SDK behind
tuneport's back.
"""

from __future__ import annotations

import io
import math
import re
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, TypeVar

from pydantic import Field

from tuneport.errors import (
    ConfigError,
    InputError,
    NotFoundError,
    ProviderError,
    TuneportError,
    combine,
    redact,
)
from tuneport.progress import Progress
from tuneport.providers import sdk
from tuneport.providers.base import (
    Check,
    Checkpoint,
    PreparedData,
    SourceJob,
    UploadedData,
    export_prepared,
)
from tuneport.providers.chat import CompatChat
from tuneport.providers.hosted import HostedOptions, SdkBackend
from tuneport.retry import is_retryable, outcome_unknown
from tuneport.schemas import (
    AnyRecord,
    JobConfig,
    JobEvent,
    JobRef,
    JobState,
    JobStatus,
)

if TYPE_CHECKING:
    from openai import OpenAI

T = TypeVar("T")

RUN_ID_KEY = "tuneport_run_id"
SEARCH_JOBS = 100  # recent jobs scanned for a run id when the server ignores the filter
SEARCH_FILES = 500  # files scanned for an identical upload
STEP_OF_TOTAL = re.compile(r"^Step \d+/(\d+)\b")  # metric event messages: "Step 3/300: ..."
METHOD_TYPES: dict[str, str] = {"sft": "supervised", "dpo": "dpo"}
# tuneport JobConfig field -> OpenAI hyperparameter name
HYPERPARAMETERS: dict[str, str] = {
    "epochs": "n_epochs",
    "batch_size": "batch_size",
    "learning_rate_multiplier": "learning_rate_multiplier",
}


SEARCH_SOURCE_JOBS = 1000  # jobs scanned for the one that produced a tuned model (port)


class ProtocolOptions(HostedOptions):
    """The settings every service over the protocol takes (``--set key=value``): the hosted
    ones (api_key, base_url, timeout, max_attempts) and these."""

    beta: float | None = Field(default=None, gt=0)  # DPO only
    metadata: dict[str, str] = Field(default_factory=dict)  # extra job metadata


@dataclass(frozen=True)
class Bounds:
    """A service's request bounds (checked before anything is uploaded: the SDK checks none)."""

    source: str  # where they come from (shown in the rules' sources)
    suffix: tuple[int, int] = (1, 64)
    suffix_chars: str | None = None  # a regex the whole suffix must match, e.g. [A-Za-z0-9_-]+
    seed: tuple[int, int] = (0, 2_147_483_647)
    batch_size: tuple[int, int] = (1, 256)
    epochs: tuple[int, int] = (1, 50)
    max_beta: float = 2.0  # beta in (0, max_beta]
    max_metadata: int = 16  # key-value pairs per job, one is tuneport's run id
    max_metadata_key: int = 64
    max_metadata_value: int = 512


@dataclass(frozen=True)
class FileLimits:
    """``file_bytes``: one ``POST /files``; larger files go through the Uploads API in parts of
    ``part_bytes`` up to ``upload_bytes`` (``upload_bytes == file_bytes``: no Uploads API)."""

    file_bytes: int
    upload_bytes: int
    part_bytes: int


def _no_extra(options: Any, cfg: JobConfig) -> dict[str, Any]:
    return {}


@dataclass(frozen=True)
class Service:
    """One service speaking the OpenAI protocol: its facts, its client and what it adds."""

    name: str  # the provider name, e.g. "openai"
    api: sdk.Service  # title, env vars, base-URL rules, error rules, doctor checks
    options: type[ProtocolOptions]
    states: Mapping[str, JobState]  # raw job status -> normalized state
    bounds: Bounds
    limits: Callable[[], FileLimits]  # read at call time
    # the SDK client for the parsed options (built once per backend object, under a lock)
    client: Callable[[Any], OpenAI]
    # every missing credential or setting as (what, fix); empty when the service can be
    # called (None: the API key, from the setting or the service's variable)
    credential_problems: Callable[[Any], list[tuple[str, str]]] | None = None
    extra_body: Callable[[Any, JobConfig], dict[str, Any]] = _no_extra  # e.g. Azure trainingType
    wait_for_files: bool = False  # wait until an upload is `processed` before the create
    file_timeout: float = 1800.0  # at most this long (seconds; a `file_timeout` setting wins)
    export_title: str = "convert to OpenAI JSONL"
    unknown_state: JobState = JobState.RUNNING
    deleted_files: tuple[str, ...] = field(default=("error",))  # file states never reused


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


class OpenAIProtocol(SdkBackend["OpenAI"], CompatChat):
    """Fine-tune and chat through a service speaking the OpenAI API (:attr:`service`): the
    hosted base (:class:`~tuneport.providers.hosted.SdkBackend`) does construction, the lazy
    client, the upload index, retries and the doctor's checks."""

    service: ClassVar[Service]
    max_tokens_field = "max_completion_tokens"

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        service: Service | None = cls.__dict__.get("service")
        if service is not None:  # the service names the backend, its settings and its API
            cls.name, cls.api, cls.options_model = service.name, service.api, service.options

    # --- plumbing ----------------------------------------------------------------------------

    def _make_client(self) -> OpenAI:
        return self.service.client(self.options)

    def _retryable(self, exc: BaseException) -> bool:
        # a reply that is not JSON is not retried: it is unreadable (a create is looked up)
        return is_retryable(exc)

    def _error_values(self) -> dict[str, object]:
        return {"model": self._model or "?"}

    def _translate(self, exc: BaseException) -> TuneportError | None:
        """A reply of the wrong shape or not JSON is unreadable; other SDK errors by the
        service's rules; anything else goes through."""
        import openai

        if isinstance(exc, openai.APIResponseValidationError | ValueError):
            return self.unreadable("a request", exc)
        return super()._translate(exc) if isinstance(exc, openai.APIError) else None

    def unreadable(self, what: str, exc: BaseException | None = None) -> ProviderError:
        """A reply tuneport cannot read: a create must be looked up, not repeated."""
        return self.api.unreadable(what, exc)

    def settings_problems(self) -> list[tuple[str, str]]:
        if self.service.credential_problems is None:
            return super().settings_problems()
        return self.service.credential_problems(self.options)

    def _read_reply(self, what: str, read: Callable[[], T]) -> T:
        """``read()`` of an SDK object; a reply of the wrong shape is a one-line ProviderError."""
        try:
            return read()
        except (TypeError, ValueError, AttributeError, KeyError) as exc:
            raise self.unreadable(what, exc) from None

    # --- Provider protocol -------------------------------------------------------------------

    def preflight(self, cfg: JobConfig) -> None:
        """Credentials present and settings within the service's limits, all at once."""
        problems = self.settings_problems() + self.bound_problems(cfg)
        if problems:  # every one at once, one line each
            raise combine([ConfigError(what, hint=fix) for what, fix in problems])

    def bound_problems(self, cfg: JobConfig) -> list[tuple[str, str]]:
        """Every job setting outside the bounds of the service's spec (:class:`Bounds`)."""
        b = self.service.bounds
        title = self.api.title
        found: list[tuple[str, str]] = []

        def outside(name: str, value: int | None, span: tuple[int, int], fix: str) -> None:
            low, high = span
            if value is not None and not low <= value <= high:
                found.append((f"{name} {value} is outside {low:,}..{high:,}", fix))

        low, high = b.suffix
        if cfg.suffix is not None and not low <= len(cfg.suffix) <= high:
            found.append(
                (
                    f"suffix is {len(cfg.suffix)} characters; {title} takes {low}..{high}",
                    "shorten --suffix" if cfg.suffix else "drop the empty --suffix",
                )
            )
        elif cfg.suffix and b.suffix_chars and not re.fullmatch(b.suffix_chars, cfg.suffix):
            found.append(
                (
                    f"suffix {cfg.suffix!r} has characters {title} refuses",
                    f"use only letters, digits, '-' and '_' in --suffix ({b.suffix_chars})",
                )
            )
        outside("seed", cfg.seed, b.seed, f"pass --seed {b.seed[0]}..{b.seed[1]:,}")
        outside(
            "batch_size",
            cfg.batch_size,
            b.batch_size,
            f"pass --batch-size {b.batch_size[0]}..{b.batch_size[1]}",
        )
        outside("epochs", cfg.epochs, b.epochs, f"pass --epochs 1..{b.epochs[1]}")
        lr = cfg.learning_rate_multiplier
        if lr is not None and not (math.isfinite(lr) and lr > 0):
            found.append(
                (
                    f"learning_rate_multiplier {lr} must be greater than 0",
                    "pass a positive --learning-rate-multiplier",
                )
            )
        beta = self.options.beta
        if beta is not None and cfg.method != "dpo":
            found.append(("beta applies to --method dpo only", "use --method dpo or drop beta"))
        elif beta is not None and not 0 < beta <= b.max_beta:
            found.append(
                (f"beta {beta} is outside (0, {b.max_beta:g}]", f"set beta in (0, {b.max_beta:g}]")
            )
        metadata = {**self.options.metadata, RUN_ID_KEY: ""}
        if len(metadata) > b.max_metadata:
            found.append(
                (f"metadata holds more than {b.max_metadata - 1} pairs", "drop metadata pairs")
            )
        long_keys = [k for k in metadata if len(k) > b.max_metadata_key]
        long_values = [k for k, v in metadata.items() if len(v) > b.max_metadata_value]
        if long_keys:
            found.append(
                (
                    f"metadata key(s) longer than {b.max_metadata_key} characters: "
                    + ", ".join(repr(k[:20] + "…") for k in long_keys),
                    "shorten the metadata keys",
                )
            )
        if long_values:
            found.append(
                (
                    f"metadata value(s) longer than {b.max_metadata_value} characters for "
                    + ", ".join(map(repr, long_values)),
                    "shorten the metadata values",
                )
            )
        return found

    def prepare(
        self, records: Iterable[AnyRecord], cfg: JobConfig, out_dir: Path, progress: Progress
    ) -> PreparedData:
        prepared = export_prepared(
            records,
            cfg,
            progress,
            target="openai",
            train_out=out_dir / "train.openai.jsonl",
            validation_out=out_dir / "validation.openai.jsonl",
            title=self.service.export_title,
        )
        most = self.service.limits().upload_bytes
        for path in (prepared.training, prepared.validation):
            if path is not None and path.stat().st_size > most:
                raise InputError(
                    f"{path.name} is {path.stat().st_size / 2**30:,.1f} GiB; {self.api.title} "
                    f"takes fine-tuning files of at most {most / 2**30:g} GB",
                    hint="split the data or shorten it (tuneport curate --sample N)",
                )
        return prepared

    def upload(self, prepared: PreparedData, cfg: JobConfig, progress: Progress) -> UploadedData:
        training, reused = self._upload_file(prepared.training, prepared.sha256, progress)
        validation = None
        if prepared.validation is not None and prepared.validation_sha256 is not None:
            validation, v_reused = self._upload_file(
                prepared.validation, prepared.validation_sha256, progress
            )
            reused = reused and v_reused
        if self.service.wait_for_files:
            for file_id in (training, validation):
                if file_id is not None:
                    self.wait_for_file(file_id, progress)
        return UploadedData(training=training, validation=validation, reused=reused)

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

    def launch(self, uploaded: UploadedData, cfg: JobConfig, run_id: str) -> JobRef:
        self._model = cfg.model
        problems = self.bound_problems(cfg)
        if problems:  # preflight refuses these first; never send a request the service refuses
            raise ConfigError(
                "; ".join(w for w, _ in problems), hint="; ".join(f for _, f in problems)
            )
        existing = self.find_run(run_id)
        if existing is not None:
            return JobRef(provider=self.name, remote_id=existing, run_id=run_id)
        body = self.job_body(uploaded, cfg, run_id)
        extra = self.service.extra_body(self.options, cfg)

        def create() -> str:
            made = self.client.fine_tuning.jobs.create(**body, extra_body=extra or None)
            job_id = getattr(made, "id", None)
            if not isinstance(job_id, str) or not job_id:
                raise self.unreadable("the job create")
            return job_id

        # a failed attempt may have created the job: looked up, never a second paid one
        remote_id = self._create_once(create, lambda: self.find_run(run_id))
        return JobRef(provider=self.name, remote_id=remote_id, run_id=run_id)

    def job_body(self, uploaded: UploadedData, cfg: JobConfig, run_id: str) -> dict[str, Any]:
        """The keyword arguments of ``fine_tuning.jobs.create`` for ``cfg`` (the service's
        extra body fields are sent beside them)."""
        kind = METHOD_TYPES[cfg.method]
        hyper: dict[str, Any] = {
            api: getattr(cfg, field)
            for field, api in HYPERPARAMETERS.items()
            if getattr(cfg, field) is not None
        }
        if cfg.method == "dpo" and self.options.beta is not None:
            hyper["beta"] = self.options.beta
        body: dict[str, Any] = {
            "model": cfg.model,
            "training_file": uploaded.training,
            "method": {"type": kind, kind: {"hyperparameters": hyper}},
            "metadata": {**self.options.metadata, RUN_ID_KEY: run_id},
        }
        if uploaded.validation is not None:
            body["validation_file"] = uploaded.validation
        if cfg.suffix is not None:
            body["suffix"] = cfg.suffix
        if cfg.seed is not None:
            body["seed"] = cfg.seed
        return body

    def find_run(self, run_id: str) -> str | None:
        """The id of the job created for ``run_id``, if the server has one."""

        def search() -> str | None:
            page = self.client.fine_tuning.jobs.list(metadata={RUN_ID_KEY: run_id}, limit=20)
            for i, job in enumerate(page):  # auto-paginates; bounded below
                if (job.metadata or {}).get(RUN_ID_KEY) == run_id:
                    return job.id
                if i >= SEARCH_JOBS:
                    break
            return None

        return self._call(search)

    def status(self, job: JobRef) -> JobStatus:
        remote = self._call(lambda: self.client.fine_tuning.jobs.retrieve(job.remote_id))
        return self._read_reply(f"job {job.remote_id}", lambda: self._status(remote))

    def _status(self, job: Any) -> JobStatus:
        raw_state = str(job.status)
        error = None
        if job.error is not None and (job.error.message or job.error.code):
            error = redact(f"{job.error.message} ({job.error.code})")
        epochs = _int_or_none(getattr(job.hyperparameters, "n_epochs", None))
        if epochs is None and job.method is not None:
            section = getattr(job.method, str(job.method.type), None)
            hyper = getattr(section, "hyperparameters", None)
            epochs = _int_or_none(getattr(hyper, "n_epochs", None))
        return JobStatus(
            remote_id=job.id,
            state=self.service.states.get(raw_state, self.service.unknown_state),
            raw_state=raw_state,
            error=error,
            tuned_model=job.fine_tuned_model,
            trained_tokens=job.trained_tokens,
            epochs=epochs,
            run_id=(job.metadata or {}).get(RUN_ID_KEY),
            model=job.model,
            created_at=datetime.fromtimestamp(job.created_at, UTC),
            raw=job.model_dump(mode="json"),
        )

    def events(self, job: JobRef, after: str | None = None) -> Iterator[JobEvent]:
        """Events newer than ``after``, oldest first (the API lists newest first)."""

        from openai import omit

        def fetch() -> list[Any]:
            newest_first: list[Any] = []
            cursor: str | None = None
            while True:
                page = self.client.fine_tuning.jobs.list_events(
                    job.remote_id, limit=100, after=cursor if cursor else omit
                )
                for item in page.data:
                    if item.id == after:
                        return newest_first
                    newest_first.append(item)
                if not page.data or page.has_more is False:
                    return newest_first
                cursor = page.data[-1].id

        def event(item: Any) -> JobEvent:
            data = item.data if isinstance(item.data, dict) else {}
            step = data.get("step")
            loss = data.get("train_loss", data.get("loss"))
            total = data.get("total_steps")
            if not isinstance(total, int | float):  # "Step 12/300: training loss=..."
                found = STEP_OF_TOTAL.match(item.message)
                total = int(found.group(1)) if found else None
            return JobEvent(
                id=item.id,
                created_at=datetime.fromtimestamp(item.created_at, UTC),
                level=item.level,
                message=redact(item.message),
                step=int(step) if isinstance(step, int | float) else None,
                total_steps=int(total) if total is not None else None,
                loss=float(loss) if isinstance(loss, int | float) else None,
                data=data,
            )

        for item in reversed(self._call(fetch)):
            yield self._read_reply(f"the events of {job.remote_id}", partial(event, item))

    def checkpoints(self, job: JobRef) -> list[Checkpoint]:
        page = self._call(
            lambda: self.client.fine_tuning.jobs.checkpoints.list(job.remote_id, limit=100)
        )
        found = [
            Checkpoint(
                id=c.id,
                step=c.step_number,
                model=c.fine_tuned_model_checkpoint,
                metrics={
                    k: float(v)
                    for k, v in c.metrics.model_dump().items()
                    if isinstance(v, int | float) and k != "step"
                },
            )
            for c in page.data
        ]
        return sorted(found, key=lambda c: c.step)

    def cancel(self, job: JobRef) -> None:
        self._call(lambda: self.client.fine_tuning.jobs.cancel(job.remote_id))

    def list_jobs(self, limit: int = 20) -> list[JobStatus]:
        page = self._call(lambda: self.client.fine_tuning.jobs.list(limit=limit))
        return self._read_reply(
            "the job list", lambda: [self._status(j) for j in page.data[:limit]]
        )

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

    # --- ReturnsData: give a finished job's data back (`tuneport port`) ---------------------

    def source_job(self, ref: str) -> SourceJob:
        """The job ``ref`` (``ftjob-...``) or the job that produced the tuned model ``ref``
        (``ft:...``), with its files, method and hyperparameters."""
        job_id = ref if not ref.startswith("ft:") else self._job_of_model(ref)
        title = self.api.title
        try:
            job = self._call(lambda: self.client.fine_tuning.jobs.retrieve(job_id))
        except NotFoundError:
            raise NotFoundError(
                f"{title} at {self.base_url} holds no fine-tuning job {ref!r}",
                hint=f"see `tuneport jobs list --remote -p {self.name}` for the jobs it holds",
            ) from None
        return self._read_reply(f"job {job_id}", lambda: self._source_job(job))

    def _job_of_model(self, model: str) -> str:
        def search() -> str | None:
            for i, job in enumerate(self.client.fine_tuning.jobs.list(limit=100)):
                if job.fine_tuned_model == model:
                    return str(job.id)
                if i >= SEARCH_SOURCE_JOBS:
                    break
            return None

        found = self._call(search)
        if found is None:
            raise NotFoundError(
                f"no fine-tuning job at {self.api.title} ({self.base_url}) produced {model!r} "
                f"(searched the {SEARCH_SOURCE_JOBS} newest jobs)",
                hint="pass the job id (ftjob-...) instead",
            )
        return found

    def _source_job(self, job: Any) -> SourceJob:
        raw = job.model_dump(mode="json")
        method = raw.get("method") or {"type": "supervised"}
        kind = str(method.get("type") or "supervised")
        hyper = dict(raw.get("hyperparameters") or {})
        section: dict[str, Any] = method.get(kind) or {}
        hyper.update(
            {
                k: v
                for k, v in (section.get("hyperparameters") or {}).items()
                if v not in (None, "auto")
            }
        )
        names = {**{v: k for k, v in HYPERPARAMETERS.items()}, "beta": "beta"}
        kept = {names[k]: (None if v == "auto" else v) for k, v in hyper.items() if k in names}
        methods = {v: k for k, v in METHOD_TYPES.items()}
        return SourceJob(
            provider=self.name,
            remote_id=str(job.id),
            model=str(job.model),
            tuned_model=job.fine_tuned_model,
            state=str(job.status),
            method=methods.get(kind, kind),
            hyperparameters=kept,
            trained_tokens=job.trained_tokens,
            training=str(job.training_file),
            validation=job.validation_file or None,
            created_at=datetime.fromtimestamp(job.created_at, UTC).isoformat(),
        )

    def download(self, ref: str, out: Path) -> None:
        """The bytes of uploaded file ``ref`` (``GET /files/{id}/content``) written to ``out``."""
        read = partial(self._call, lambda: self.client.files.content(ref))
        sdk.download_file(read, out, title=self.api.title, base_url=self.base_url, ref=ref)

    def doctor(self, timeout: float) -> list[Check]:
        """Key present (never shown) and accepted by the server at the base URL."""
        return self._server_checks(timeout)


def key_from(api: sdk.Service, options: Any) -> str:
    """The API key (setting, else the service's variable), or a one-line ConfigError."""
    key = api.api_key(options.api_key)
    if not key:
        what, fix = api.key_problem()
        raise ConfigError(what, hint=fix)
    return key


def _int_or_none(value: object) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


__all__ = [
    "Bounds",
    "FileLimits",
    "OpenAIProtocol",
    "ProtocolOptions",
    "Service",
    "key_from",
]
