"""A deterministic in-process backend for tests of model-facing commands (``tuneport eval``).

Register it in a test with ``registry.register("fake", "tests.fakes.fake_provider:FakeProvider")``
and address it as ``fake:MODEL``. ``chat`` behaves by model name:

- ``good``   — the parrot: answers the text after ``say:`` in the last user turn;
- ``bad``    — always ``I do not know.``;
- ``echo``   — the last user turn verbatim;
- ``flaky``  — fails the first ``fail_first`` calls for each prompt (a :class:`ProviderError`,
  which eval retries), then answers like ``good``;
- ``broken`` — always fails with a :class:`ProviderError`;
- ``locked`` — always fails with an :class:`AuthError` (eval stops at once);
- ``slow``   — like ``good`` after a short sleep; ``peak`` records the most calls in flight;
- anything else — :class:`NotFoundError`.

Every call is recorded in ``FakeProvider.calls`` (model, last user text, options) so tests can
check what was sent. Training methods work on a tiny in-memory job table so the class satisfies
the whole :class:`~tuneport.providers.base.Provider` protocol.
"""

from __future__ import annotations

import hashlib
import json
import threading
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, ClassVar

from tuneport.providers import (
    COMMON_CHAT,
    COMMON_PREFERENCE,
    GENERIC_SETTINGS,
    AnyRecord,
    AuthError,
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
    ProviderError,
    Rules,
    ScaledTextCounter,
    TokenCounter,
    UploadedData,
)


class FakeProvider:
    name = "fake"
    calls: ClassVar[list[tuple[str, str, ChatOptions]]] = []
    _lock: ClassVar[threading.Lock] = threading.Lock()
    # jobs outlive one provider object, as a remote service's do (each command builds its own)
    _jobs: ClassVar[dict[str, JobStatus]] = {}

    def __init__(
        self, fail_first: int = 2, max_concurrency: int | None = None, **settings: Any
    ) -> None:
        self.fail_first = fail_first
        if max_concurrency is not None:
            self.max_concurrency = max_concurrency
        self.active = 0
        self.peak = 0
        self.settings = settings
        self._failures: dict[tuple[str, str], int] = {}

    # --- chat ------------------------------------------------------------------------------
    def chat(self, model: str, messages: Sequence[Message], options: ChatOptions) -> Message:
        last_user = next((m.content or "" for m in reversed(messages) if m.role == "user"), "")
        with self._lock:
            FakeProvider.calls.append((model, last_user, options))
        parrot = last_user.split("say:", 1)[-1].strip()
        if model == "good":
            return Message(role="assistant", content=parrot)
        if model == "bad":
            return Message(role="assistant", content="I do not know.")
        if model == "echo":
            return Message(role="assistant", content=last_user)
        if model == "flaky":
            with self._lock:
                seen = self._failures.get((model, last_user), 0)
                self._failures[(model, last_user)] = seen + 1
            if seen < self.fail_first:
                raise ProviderError(f"fake transient failure {seen + 1}", hint="retry")
            return Message(role="assistant", content=parrot)
        if model == "slow":
            with self._lock:
                self.active += 1
                self.peak = max(self.peak, self.active)
            time.sleep(0.02)
            with self._lock:
                self.active -= 1
            return Message(role="assistant", content=parrot)
        if model == "broken":
            raise ProviderError("fake outage", hint="try later")
        if model == "locked":
            raise AuthError("fake credentials rejected", hint="set FAKE_KEY")
        raise NotFoundError(f"fake model {model!r} does not exist", hint="use good or bad")

    # --- training (minimal, in memory) -------------------------------------------------------
    def prepare(
        self, records: Iterable[AnyRecord], cfg: JobConfig, out_dir: Path, progress: Progress
    ) -> PreparedData:
        out_dir.mkdir(parents=True, exist_ok=True)
        path = out_dir / "train.jsonl"
        rows = [json.dumps(r.model_dump(mode="json", exclude_none=True)) for r in records]
        path.write_text("".join(row + "\n" for row in rows), encoding="utf-8")
        digest = hashlib.sha256(path.read_bytes()).hexdigest()
        return PreparedData(training=path, sha256=digest, examples=len(rows))

    def upload(self, prepared: PreparedData, cfg: JobConfig, progress: Progress) -> UploadedData:
        return UploadedData(training=str(prepared.training))

    def launch(self, uploaded: UploadedData, cfg: JobConfig, run_id: str) -> JobRef:
        remote = f"fakejob-{run_id}"
        self._jobs.setdefault(
            remote,
            JobStatus(
                remote_id=remote,
                state=JobState.SUCCEEDED,
                raw_state="done",
                tuned_model="fake:good",
                run_id=run_id,
                model=cfg.model,
            ),
        )
        return JobRef(provider=self.name, remote_id=remote, run_id=run_id)

    def status(self, job: JobRef) -> JobStatus:
        try:
            return self._jobs[job.remote_id]
        except KeyError:
            raise NotFoundError(f"fake job {job.remote_id} does not exist") from None

    def events(self, job: JobRef, after: str | None = None) -> Iterator[JobEvent]:
        self.status(job)
        yield from ()

    def cancel(self, job: JobRef) -> None:
        self.status(job)

    def list_jobs(self, limit: int = 20) -> list[JobStatus]:
        return list(self._jobs.values())[:limit]

    def cleanup(self, job: JobRef) -> None:
        self._jobs.pop(job.remote_id, None)

    def preflight(self, cfg: JobConfig) -> None:
        """Nothing to check."""

    def doctor(self, timeout: float) -> list[Check]:
        return []


# --- the descriptor: what a third-party backend module exports ---------------------------------


def _counter(model: str, settings: Mapping[str, Any]) -> TokenCounter:
    """Words of the record's JSON, labelled approximate (a backend's own tokenizer stand-in)."""
    return ScaledTextCounter(1.0, 0.5, "fake tokenizer")


RULES = Rules(
    provider="fake",
    min_examples=2,
    recommended_examples=4,
    token_limit=4096,
    token_limit_severity="error",
    chat=COMMON_CHAT,
    preference=COMMON_PREFERENCE,
    source="tests/fakes/fake_provider.py",
)

BACKEND = Backend(
    name="fake",
    title="Fake (tests)",
    implementation="tests.fakes.fake_provider:FakeProvider",
    target="canonical",
    rules=RULES,
    counter=_counter,
    uses=frozenset(),
    ignores=dict.fromkeys(GENERIC_SETTINGS, "the fake backend trains nothing"),
    model_prefixes=("fake-",),
)
