"""One base for the hosted backends (OpenAI and Azure over the OpenAI protocol, Together,
Fireworks, Vertex AI): what they all do alike, written once.

:class:`HostedBackend` holds construction (settings parsed by the backend's ``extra="forbid"``
options model, injectable ``sleep`` / ``clock`` / ``client`` / ``store``), the client built
lazily once under a lock (``eval`` calls from several threads), the upload index, the retrying
call (the SDK's errors come out as one-line tuneport errors, a lost reply marked as an unknown
outcome) and create-once. :class:`SdkBackend` adds what backends over a Stainless-generated SDK
(``openai``, ``together``, ``fireworks-ai``) share through their :class:`~.sdk.Service`: the
key and base URL from a setting or the environment, every settings problem reported at once,
the error rules, and doctor's key and server checks.

A backend keeps only what is its own: how to build its client, its extra settings problems and
the values its error messages name.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, ClassVar, Generic, TypeVar

from pydantic import BaseModel, ConfigDict, Field, SecretStr

from tuneport.errors import ConfigError, ProviderError, TuneportError, register_secret
from tuneport.providers import sdk
from tuneport.providers.base import (
    MAX_WAIT_S,
    Check,
    MemoryUploads,
    PreparedData,
    UploadedData,
    UploadIndex,
    create_once,
    parse_options,
)
from tuneport.retry import RetryPolicy, call_with_retry, default_interval, outcome_unknown

T = TypeVar("T")
ClientT = TypeVar("ClientT")


class HostedOptions(BaseModel):
    """The settings every hosted backend takes (``--set key=value``); backends add theirs."""

    model_config = ConfigDict(extra="forbid")

    api_key: SecretStr | None = None  # default: the service's key variable
    base_url: str | None = None  # default: the service's URL variable, else its own host
    timeout: float = Field(default=120.0, gt=0, le=MAX_WAIT_S)
    max_attempts: int = Field(default=5, ge=1, le=20)


class HostedBackend(Generic[ClientT]):
    """Construction, the lazily built client, the upload index, the retrying call and
    create-once. Subclasses set :attr:`name` and :attr:`options_model` and implement
    :meth:`_make_client`, :meth:`_translate` and :meth:`_where`."""

    name: str
    options_model: ClassVar[type[BaseModel]]

    def __init__(
        self,
        *,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
        store: UploadIndex | None = None,
        client: ClientT | None = None,
        **settings: Any,
    ) -> None:
        self.options: Any = parse_options(self.options_model, settings, self.name)
        key = getattr(self.options, "api_key", None)
        if isinstance(key, SecretStr):
            register_secret(key.get_secret_value())
        self._sleep = sleep
        self._clock = clock
        self._store = store
        self._client = client
        self._client_lock = threading.Lock()
        self._policy = RetryPolicy(attempts=getattr(self.options, "max_attempts", 5))
        self._model = ""  # the model the current command is about (named in errors)

    # --- what a backend supplies ------------------------------------------------------------

    def _make_client(self) -> ClientT:
        """The SDK client for :attr:`options` (called once, under the lock)."""
        raise NotImplementedError

    def _translate(self, exc: BaseException) -> TuneportError | None:
        """The one-line tuneport error for ``exc``, or ``None`` to let it through."""
        raise NotImplementedError

    def _where(self) -> str:
        """The service and host retry notes name, e.g. ``Together AI at https://…``."""
        raise NotImplementedError

    def _retryable(self, exc: BaseException) -> bool:
        return sdk.retryable(exc)

    # --- shared plumbing ----------------------------------------------------------------------

    @property
    def client(self) -> ClientT:
        if self._client is not None:
            return self._client
        with self._client_lock:  # one client, however many threads ask first
            if self._client is None:
                self._client = self._make_client()
            return self._client

    def _uploads(self) -> UploadIndex:
        """The upload index the jobs layer passed (its job store), else one in memory."""
        if self._store is None:
            self._store = MemoryUploads()
        return self._store

    def _call(
        self,
        fn: Callable[[], T],
        *,
        before_retry: Callable[[BaseException], T | None] | None = None,
    ) -> T:
        """``fn()`` retried by the backend's policy; ``before_retry`` may look a create up
        again and return its result instead. A last error from the service is one line."""
        try:
            return call_with_retry(
                fn,
                policy=self._policy,
                retryable=self._retryable,
                sleep=self._sleep,
                before_retry=before_retry,
                where=self._where(),
            )
        except Exception as exc:
            error = self._translate(exc)
            if error is None:
                raise
            error.outcome_unknown = error.outcome_unknown or outcome_unknown(exc)
            raise error from None

    def _create_once(
        self,
        create: Callable[[], str],
        find: Callable[[], str | None],
        reconcile: Callable[[BaseException], str | None] | None = None,
    ) -> str:
        """The id ``create`` returns, made at most once per intended run (see
        :func:`~tuneport.providers.base.create_once`); ``reconcile`` defaults to ``find``."""
        return create_once(self._call, create, find, reconcile or (lambda _exc: find()))

    def _poll(
        self,
        get: Callable[[], T],
        done: Callable[[T], bool],
        *,
        timeout: float,
        too_long: Callable[[T], TuneportError],
        first: float = 2.0,
        most: float = 15.0,
    ) -> T:
        """``get()`` (through :meth:`_call`) until ``done`` holds for what it returns (``done``
        may raise, e.g. on a failed state), waiting ``first`` seconds (at most
        ``$TUNEPORT_POLL_INTERVAL``), then twice as long each time up to ``most``; after
        ``timeout`` seconds the error ``too_long`` makes of the last reply."""
        deadline = self._clock() + timeout
        delay = min(first, default_interval())
        while True:
            item = self._call(get)
            if done(item):
                return item
            if self._clock() > deadline:
                raise too_long(item)
            self._sleep(delay)
            delay = min(delay * 2, most)

    def _poll_upload(
        self,
        get: Callable[[], T],
        done: Callable[[T], bool],
        *,
        timeout: float,
        setting: str,
        still: Callable[[T], str],
    ) -> T:
        """:meth:`_poll` for an uploaded file the provider processes, ``timeout`` being the
        ``--set setting``: when it runs out, what ``still`` says of the last reply (``"X is
        still validating F"``) as an error."""

        def too_long(item: T) -> TuneportError:
            return ProviderError(
                f"{still(item)} after {timeout:g} s",
                hint="run the command again later (the upload is reused), or raise "
                f"--set {setting}=SECONDS",
            )

        return self._poll(get, done, timeout=timeout, too_long=too_long)


class SdkBackend(HostedBackend[ClientT]):
    """A hosted backend over a Stainless-generated SDK, described by one :attr:`api`."""

    api: ClassVar[sdk.Service]

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        register_secret(os.environ.get(self.api.key_env))  # before any message can show it

    # --- settings -----------------------------------------------------------------------------

    @property
    def base_url(self) -> str:
        return self.api.base_url(self.options.base_url)

    @property
    def store_key(self) -> str:
        """Provider key of the uploads index: file ids are only valid on one server."""
        return self.api.store_key(self.name, self.base_url)

    def _api_key(self) -> str | None:
        return self.api.api_key(self.options.api_key)

    def settings_problems(self) -> list[tuple[str, str]]:
        """Every missing or wrong setting as (what, fix); empty when the service can be
        called. Backends extend it with their own."""
        return [] if self._api_key() else [self.api.key_problem()]

    def _require_settings(self) -> None:
        problems = self.settings_problems()
        if problems:
            raise ConfigError(
                "; ".join(p for p, _ in problems), hint="; ".join(f for _, f in problems)
            )

    # --- calls --------------------------------------------------------------------------------

    def _error_values(self) -> dict[str, object]:
        """The values the backend's error rules name (``{model}`` by default)."""
        return {"model": self._model or "MODEL"}

    def _translate(self, exc: BaseException) -> TuneportError | None:
        if not self.api.owns(exc):
            return None
        return self.api.map_error(exc, base_url=self.base_url, **self._error_values())

    def _where(self) -> str:
        return f"{self.api.title} at {self.base_url}"

    # --- doctor ------------------------------------------------------------------------------

    def _server_checks(
        self,
        timeout: float,
        path: str = "/models",
        *,
        params: Mapping[str, str | int] | None = None,
        what: str = "key accepted",
    ) -> list[Check]:
        """The key (never shown), the backend's :meth:`_setup_checks`, then one authenticated
        GET of ``path`` (with ``params``) under the base URL; only the key check when no key is
        set (the backend is not configured), no GET when a setup check failed."""
        key_check = self.api.key_check(self.options.api_key)
        if key_check.status == "skip":
            return [key_check]
        checks = [key_check, *self._setup_checks()]
        if any(check.status == "fail" for check in checks):
            return checks
        probe = self.api.probe(
            f"{self.base_url}{path}", str(self._api_key()), timeout, params=params, what=what
        )
        return [*checks, probe]

    def _setup_checks(self) -> list[Check]:
        """What doctor checks between the key and the server (the SDK, settings); a ``fail``
        among them means the server is not asked. None by default."""
        return []

    def _sdk_check(self, load: Callable[[], Any], package: str) -> Check:
        """``ok`` with the version of the SDK ``load()`` imports, else ``fail`` naming what to
        install (``load`` raises the one-line ConfigError of :func:`~.sdk.import_sdk`)."""
        try:
            version = getattr(load(), "__version__", "?")
        except ConfigError as exc:
            return Check("SDK", "fail", exc.message, exc.hint)
        return Check("SDK", "ok", f"{package} {version}")


def upload_pair(
    prepared: PreparedData, upload: Callable[[Path, str], tuple[str, bool]]
) -> UploadedData:
    """The training file and the validation file (when there is one), each sent by
    ``upload(path, sha256) -> (file id, reused)``; reused when both were."""
    training, reused = upload(prepared.training, prepared.sha256)
    validation = None
    if prepared.validation is not None and prepared.validation_sha256 is not None:
        validation, v_reused = upload(prepared.validation, prepared.validation_sha256)
        reused = reused and v_reused
    return UploadedData(training=training, validation=validation, reused=reused)


__all__ = ["HostedBackend", "HostedOptions", "SdkBackend", "upload_pair"]
