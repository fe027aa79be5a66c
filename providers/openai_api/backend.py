"""What every part of the protocol stands on (:class:`ProtocolBackend`): the hosted base
(:class:`~tuneport.providers.hosted.SdkBackend`: construction, the lazy client, the upload index,
retries, doctor's checks) and OpenAI-compatible chat, with the SDK's errors read the protocol's
way (a reply of the wrong shape or not JSON is unreadable: a create is looked up, not repeated).

Retries: the SDK client is built with ``max_retries=0``; :mod:`tuneport.retry` (tenacity) owns
every retry, so the two never multiply and a create is never repeated by the SDK behind
tuneport's back."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, ClassVar, TypeVar

from tuneport.errors import ConfigError, ProviderError, TuneportError, combine
from tuneport.providers.base import Check
from tuneport.providers.chat import CompatChat
from tuneport.providers.hosted import SdkBackend
from tuneport.providers.openai_api.service import Service, bound_problems
from tuneport.retry import is_retryable
from tuneport.schemas import JobConfig

if TYPE_CHECKING:
    from openai import OpenAI

T = TypeVar("T")


class ProtocolBackend(SdkBackend["OpenAI"], CompatChat):
    """A backend over the OpenAI protocol for :attr:`service`: plumbing, preflight, doctor."""

    service: ClassVar[Service]
    max_tokens_field = "max_completion_tokens"

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        service: Service | None = cls.__dict__.get("service")
        if service is not None:  # the service names the backend, its settings and its API
            cls.name, cls.api, cls.options_model = service.name, service.api, service.options

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

    def preflight(self, cfg: JobConfig) -> None:
        """Credentials present and settings within the service's limits, all at once."""
        problems = self.settings_problems() + self.bound_problems(cfg)
        if problems:  # every one at once, one line each
            raise combine([ConfigError(what, hint=fix) for what, fix in problems])

    def bound_problems(self, cfg: JobConfig) -> list[tuple[str, str]]:
        """Every job setting outside the bounds of the service's spec (:class:`Bounds`)."""
        return bound_problems(self.service.bounds, self.api.title, self.options, cfg)

    def doctor(self, timeout: float) -> list[Check]:
        """Key present (never shown) and accepted by the server at the base URL."""
        return self._server_checks(timeout)
