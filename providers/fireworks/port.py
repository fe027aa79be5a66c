"""``tuneport port``: a finished job given back (its datasets, method and settings) and a
dataset's bytes downloaded through its signed URLs."""

from __future__ import annotations

import functools
from pathlib import Path
from typing import TYPE_CHECKING

from tuneport.errors import NotFoundError, ProviderError, redact
from tuneport.providers.base import SourceJob, no_source_job, status_fields
from tuneport.providers.errormap import one_line
from tuneport.providers.fireworks import NAME
from tuneport.providers.fireworks.ids import short
from tuneport.providers.fireworks.jobs import METHODS, Jobs, dpo_loss, job_config, sft_job
from tuneport.providers.fireworks.options import DEFAULT_LEARNING_RATE
from tuneport.retry import call_with_retry

if TYPE_CHECKING:
    from tuneport.providers.fireworks.jobs import Job


class Port(Jobs):
    """ReturnsData: give a finished job's data back."""

    def source_job(self, ref: str) -> SourceJob:
        """The job ``ref`` (``accounts/A/supervisedFineTuningJobs/ID`` or ``.../dpoJobs/ID``)
        or the job that produced the tuned model ``ref`` (``accounts/A/models/ID``: its
        ``fineTuningJob``), with its datasets, method and settings (fireworks-ai 1.2.30
        ``SupervisedFineTuningJob`` / ``DpoJob``)."""
        name = ref if "Jobs/" in ref else self._job_of_model(ref)
        job = self._get_or_none(lambda: self._get_job(name))
        if job is None:
            raise no_source_job(f"Fireworks account {self.account}", ref, NAME)
        status = self._status(job)
        config = job_config(job)
        rate = config.learning_rate
        loss = dpo_loss(job)
        dpo = loss.dpo if loss else None
        sft = sft_job(job)
        return SourceJob(
            provider=NAME,
            remote_id=str(job.name),
            model=str(status.model or ""),
            method=self._method_of(job),
            **status_fields(status),
            hyperparameters={
                "epochs": config.epochs,
                # as a multiplier of the default rate tuneport sends (DEFAULT_LEARNING_RATE)
                "learning_rate_multiplier": rate / DEFAULT_LEARNING_RATE if rate else None,
                "batch_size": config.batch_size_samples,
                "lora_rank": config.lora_rank,
                "beta": dpo.beta if dpo else None,  # DPO jobs: lossConfig.dpo.beta
            },
            trained_tokens=status.trained_tokens,
            training=str(job.dataset),
            validation=(sft.evaluation_dataset if sft else None) or None,  # SFT only
        )

    def _job_of_model(self, model: str) -> str:
        found = self._get_or_none(lambda: self.client.models.get(short(model)))
        job = found.fine_tuning_job if found else None
        if not job:
            raise NotFoundError(
                f"Fireworks account {self.account} holds no tuned model {model!r} made by a "
                "fine-tuning job",
                hint="pass the job name (accounts/ACCOUNT/supervisedFineTuningJobs/ID) instead",
            )
        return str(job)

    def _method_of(self, job: Job) -> str:
        """``sft`` for a supervised job; a DPO job's loss method (unset means GRPO, the SDK's
        ``ReinforcementLearningLossConfig`` docstring), ``dpo`` when it is DPO."""
        if self._parse(str(job.name))[0] == METHODS["sft"][0]:
            return "sft"
        loss = dpo_loss(job)
        method = loss.method if loss else None
        word = str(method or "GRPO").lower()
        return "grpo" if word == "method_unspecified" else word

    def download(self, ref: str, out: Path) -> None:
        """The bytes of dataset ``ref`` (``accounts/A/datasets/ID``) written to ``out``: its
        files through the signed URLs of ``getDownloadEndpoint``, in filename order."""
        import httpx

        reply = self._get_or_none(lambda: self.client.datasets.get_download_endpoint(short(ref)))
        urls = dict((reply.filename_to_signed_urls if reply else None) or {})
        if not urls:
            raise NotFoundError(
                f"Fireworks account {self.account} no longer holds dataset {ref!r} (deleted?)",
                hint="port from a copy of the data instead: `tuneport train` with the file",
            )

        def get(url: str) -> bytes:
            response = httpx.get(url, timeout=self.options.timeout)
            response.raise_for_status()
            return response.content

        ended: bool | None = None  # whether the bytes written so far end a line
        with out.open("wb") as fh:
            for filename in sorted(urls):
                url = urls[filename]
                try:
                    blob = call_with_retry(
                        functools.partial(get, url),
                        policy=self._policy,
                        sleep=self._sleep,
                        where="Fireworks dataset storage",
                    )
                except (httpx.HTTPStatusError, httpx.TransportError) as exc:
                    why = one_line(redact(str(exc)), 200)
                    raise ProviderError(
                        f"the download of {filename} from dataset {ref} failed: {why}",
                        hint="run the command again (signed URLs last one hour)",
                    ) from None
                if ended is False:  # several files: each row on its own line
                    fh.write(b"\n")
                fh.write(blob)
                ended = not blob or blob.endswith(b"\n")
