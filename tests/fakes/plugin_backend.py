"""A third-party backend as a plugin author writes one: ONE module exporting a descriptor.

Installed packages expose it through the ``tuneport.backends`` entry-point group::

    [project.entry-points."tuneport.backends"]
    echo = "my_package.echo_backend:BACKEND"

``tests/test_plugins.py`` registers it through entry-point metadata and drives validate →
estimate → plan → train → jobs → chat with the real CLI. Jobs live in a class-level table, as a
remote service's would (every command builds its own provider object).

It imports nothing of tuneport but ``tuneport.providers``: its ``__all__`` is the plugin
contract (``tests/test_plugins.py`` checks both).
"""

from __future__ import annotations

import hashlib
import itertools
from collections.abc import Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict

from tuneport.providers import (
    COMMON_CHAT,
    COMMON_PREFERENCE,
    GENERIC_SETTINGS,
    AnyRecord,
    Backend,
    ChatOptions,
    Check,
    JobConfig,
    JobEvent,
    JobRef,
    JobState,
    JobStatus,
    Message,
    NotFoundError,
    PreparedData,
    Progress,
    Rules,
    ScaledTextCounter,
    TokenCounter,
    UploadedData,
    export_prepared,
    parse_options,
)

NAME = "echo"


class EchoOptions(BaseModel):
    """``--set`` keys of this backend (unknown ones are refused with the list of these)."""

    model_config = ConfigDict(extra="forbid")

    greeting: str = "echo"


class EchoProvider:
    """Trains nothing; a job succeeds on its second poll; chat echoes the last user turn."""

    name = NAME
    jobs: ClassVar[dict[str, list[JobState]]] = {}
    uploads: ClassVar[dict[str, str]] = {}  # sha256 -> file id
    _ids = itertools.count(1)

    def __init__(self, *, store: object = None, **settings: Any) -> None:
        self.options = parse_options(EchoOptions, settings, NAME)

    def prepare(
        self, records: Iterable[AnyRecord], cfg: JobConfig, out_dir: Path, progress: Progress
    ) -> PreparedData:
        return export_prepared(
            records,
            cfg,
            progress,
            out_dir,
            target="canonical",
            ext="jsonl",
            title="writing echo JSONL",
        )

    def upload(self, prepared: PreparedData, cfg: JobConfig, progress: Progress) -> UploadedData:
        reused = prepared.sha256 in self.uploads
        file_id = self.uploads.setdefault(
            prepared.sha256, "file-" + hashlib.sha256(prepared.sha256.encode()).hexdigest()[:8]
        )
        return UploadedData(training=file_id, reused=reused)

    def preflight(self, cfg: JobConfig) -> None:
        """Nothing to check before the estimate: no credentials, and the options were parsed
        in the constructor (a backend with a key would say here that it is missing)."""

    def doctor(self, timeout: float) -> list[Check]:
        return []  # nothing to set up: `tuneport doctor` shows it as not configured

    def launch(self, uploaded: UploadedData, cfg: JobConfig, run_id: str) -> JobRef:
        remote = f"echo-{next(self._ids)}"
        self.jobs[remote] = [JobState.RUNNING, JobState.SUCCEEDED]
        return JobRef(provider=NAME, remote_id=remote, run_id=run_id)

    def status(self, job: JobRef) -> JobStatus:
        states = self.jobs.get(job.remote_id)
        if states is None:
            raise NotFoundError(f"echo job {job.remote_id} does not exist")
        state = states.pop(0) if len(states) > 1 else states[0]
        done = state == JobState.SUCCEEDED
        return JobStatus(
            remote_id=job.remote_id,
            state=state,
            raw_state=state.value,
            tuned_model=f"echo:{job.remote_id}" if done else None,
            trained_tokens=100 if done else None,
        )

    def events(self, job: JobRef, after: str | None = None) -> Iterator[JobEvent]:
        yield from ()

    def cancel(self, job: JobRef) -> None:
        self.jobs[job.remote_id] = [JobState.CANCELLED]

    def list_jobs(self, limit: int = 20) -> list[JobStatus]:
        refs = [JobRef(provider=NAME, remote_id=r, run_id=r) for r in list(self.jobs)[:limit]]
        return [self.status(ref) for ref in refs]

    def chat(self, model: str, messages: Sequence[Message], options: ChatOptions) -> Message:
        last = next((m.content or "" for m in reversed(messages) if m.role == "user"), "")
        return Message(role="assistant", content=f"{self.options.greeting}: {last}")

    def cleanup(self, job: JobRef) -> None:
        self.jobs.pop(job.remote_id, None)


def counter(model: str, settings: Mapping[str, Any]) -> TokenCounter:
    """No tokenizer of its own offline: o200k, labelled approximate."""
    return ScaledTextCounter(1.0, 0.2, "echo tokenizer offline")


BACKEND = Backend(
    name=NAME,
    title="Echo (example plugin)",
    implementation="tests.fakes.plugin_backend:EchoProvider",
    target="openai",
    rules=Rules(
        provider=NAME,
        min_examples=2,
        recommended_examples=10,
        token_limit=8192,
        token_limit_severity="error",
        chat=COMMON_CHAT,
        preference=COMMON_PREFERENCE,
        source="tests/fakes/plugin_backend.py",
        model_limits={"echo-small": 1024},
    ),
    counter=counter,
    # the generic job settings it sends (none: it trains nothing); every other one a user sets
    # is reported once in the estimate as ignored, with the reason given here
    uses=frozenset(),
    ignores=dict.fromkeys(GENERIC_SETTINGS, "the example plugin trains nothing"),
    model_prefixes=("echo:",),
    env=("ECHO_API_KEY",),
    secret_env=("ECHO_API_KEY",),  # redacted from every message once the plugin is loaded
    # a plugin's own section of the price table (prices.toml layout)
    prices={
        "epoch_rule": "fixed",
        "default_epochs": 2,
        "min_epochs": 1,
        "max_epochs": 10,
        "source": "tests/fakes/plugin_backend.py",
        "as_of": "2026-11-30",
        "models": {
            "echo-small": {"sft": {"training_per_million": 2.0}},
            "echo-large": {"sft": {"training_per_million": 8.0}},
        },
    },
    options=tuple(EchoOptions.model_fields),
)
