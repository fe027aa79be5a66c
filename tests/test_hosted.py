"""The base every hosted backend stands on (providers/hosted.py) and the generic error rules
(errormap.generic_rules), tested apart from any backend."""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest

from tuneport.errors import (
    AuthError,
    ConfigError,
    NotFoundError,
    ProviderError,
    QuotaError,
    TuneportError,
)
from tuneport.providers.errormap import apply_rules, generic_rules
from tuneport.providers.hosted import HostedBackend, HostedOptions
from tuneport.retry import RetryPolicy

RULES = generic_rules(
    "Acme",
    status_url="https://status.acme.test",
    key_fix="set ACME_API_KEY",
    denied_fix="ask for access",
)


@pytest.mark.parametrize(
    ("status", "kind", "words"),
    [
        (401, AuthError, "Acme rejected the API key"),
        (403, AuthError, "Acme denied access: boom"),
        (429, QuotaError, "Acme rate limit still hit after retries: boom"),
        (404, NotFoundError, "Acme: not found: boom"),
        (503, ProviderError, "Acme server error 503 (still failing after retries): boom"),
        (418, ProviderError, "Acme refused the request (418): boom"),
        (None, ProviderError, "Acme refused the request (?): boom"),
    ],
)
def test_generic_rules_cover_every_status(status: int | None, kind: type, words: str) -> None:
    error = apply_rules(RULES, status=status, code=None, message="boom")
    assert type(error) is kind
    assert str(error).startswith(words)


def test_generic_rules_take_a_service_s_own_wording() -> None:
    rules = generic_rules(
        "Acme",
        status_url="https://status.acme.test",
        key_fix="k",
        denied_fix="d",
        key_message="Acme rejected the key (or the account has no credit): {msg}",
        rate_status=frozenset({429, 402}),
    )
    assert "no credit): nope" in str(apply_rules(rules, status=401, code=None, message="nope"))
    assert isinstance(apply_rules(rules, status=402, code=None, message="x"), QuotaError)
    hint = apply_rules(rules, status=500, code=None, message="x").hint
    assert hint == "retry later; see https://status.acme.test"


class Boom(Exception):
    def __init__(self, status: int) -> None:
        super().__init__(f"status {status}")
        self.status_code = status


class Acme(HostedBackend[object]):
    name = "acme"
    options_model = HostedOptions

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(sleep=lambda _s: None, **kwargs)
        self.made = 0

    def _make_client(self) -> object:
        self.made += 1
        time.sleep(0.05)  # a slow first build: other threads must wait, not build again
        return object()

    def _translate(self, exc: BaseException) -> TuneportError | None:
        if isinstance(exc, Boom):
            return ProviderError(f"acme failed ({exc.status_code})", hint="retry later")
        return None

    def _where(self) -> str:
        return "Acme at https://acme.test"


def test_the_client_is_built_once_however_many_threads_ask() -> None:
    backend = Acme()
    seen: list[object] = []
    threads = [threading.Thread(target=lambda: seen.append(backend.client)) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert backend.made == 1
    assert len({id(c) for c in seen}) == 1


def test_settings_are_checked_by_the_options_model() -> None:
    with pytest.raises(ConfigError, match="unknown option 'bucket' for provider acme"):
        Acme(bucket="b")


def test_a_lost_reply_is_marked_outcome_unknown_and_a_refusal_is_not() -> None:
    backend = Acme(max_attempts=2)
    assert backend._policy == RetryPolicy(attempts=2)

    def fail(status: int) -> Any:
        def call() -> None:
            raise Boom(status)

        return call

    with pytest.raises(ProviderError) as lost:
        backend._call(fail(503))
    assert lost.value.outcome_unknown
    with pytest.raises(ProviderError) as refused:
        backend._call(fail(400))
    assert not refused.value.outcome_unknown
    with pytest.raises(KeyError):  # not the service's: let through
        backend._call(lambda: {}["x"])


def test_create_once_looks_the_run_up_after_a_lost_reply() -> None:
    backend = Acme(max_attempts=1)
    created: list[str] = []

    def create() -> str:
        created.append("job-1")
        raise Boom(502)  # the service made it, the reply was lost

    assert backend._create_once(create, lambda: created[-1] if created else None) == "job-1"
    assert created == ["job-1"]


def test_the_upload_index_defaults_to_memory() -> None:
    backend = Acme()
    index = backend._uploads()
    index.upload_put("acme", "sha", "file-1")
    assert backend._uploads().upload_get("acme", "sha") == "file-1"


def test_poll_backs_off_until_done_and_says_when_it_took_too_long(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Waits ``first`` seconds, then twice as long each time up to ``most``; past the timeout
    the caller's error names the last state seen; ``done`` may end the wait with an error."""
    monkeypatch.delenv("TUNEPORT_POLL_INTERVAL", raising=False)
    now = [0.0]
    slept: list[float] = []

    def sleep(seconds: float) -> None:
        slept.append(seconds)
        now[0] += seconds

    backend = Acme()
    backend._sleep, backend._clock = sleep, lambda: now[0]
    states = iter(["CREATING", "CREATING", "CREATING", "CREATING", "READY"])
    got = backend._poll(lambda: next(states), lambda s: s == "READY", timeout=60,
                        too_long=lambda s: ProviderError(s), first=1.0, most=3.0)  # fmt: skip
    assert got == "READY" and slept == [1.0, 2.0, 3.0, 3.0]
    with pytest.raises(ProviderError, match="still CREATING"):
        backend._poll(lambda: "CREATING", lambda s: False, timeout=5,
                      too_long=lambda s: ProviderError(f"still {s}"))  # fmt: skip

    def failed(state: str) -> bool:
        raise ProviderError(f"it is {state}")

    with pytest.raises(ProviderError, match="it is FAILED"):
        backend._poll(lambda: "FAILED", failed, timeout=5, too_long=lambda s: ProviderError(s))
