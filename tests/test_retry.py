"""tuneport.retry: which errors are retried, how long we wait, reconcile before re-sending."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from typing import Any

import pytest

from tuneport.retry import (
    RetryPolicy,
    call_with_retry,
    error_code_of,
    is_retryable,
    outcome_unknown,
    retry_after,
)


class _Response:
    def __init__(self, status: int, headers: dict[str, str]) -> None:
        self.status_code = status
        self.headers = headers


class FakeAPIError(Exception):
    def __init__(
        self, status: int, *, code: str | None = None, headers: dict[str, str] | None = None
    ) -> None:
        super().__init__(f"status {status}")
        self.status_code = status
        self.response = _Response(status, headers or {})
        self.body: Any = {"error": {"code": code, "message": "m"}} if code else None


class APIConnectionError(Exception):  # recognised by class name, like the SDKs' own
    pass


def test_retry_after_headers() -> None:
    assert retry_after(FakeAPIError(429, headers={"retry-after-ms": "250"})) == 0.25
    assert retry_after(FakeAPIError(429, headers={"Retry-After": "3"})) == 3.0
    ms_wins = FakeAPIError(429, headers={"retry-after-ms": "10", "retry-after": "9"})
    assert retry_after(ms_wins) == 0.01
    assert retry_after(FakeAPIError(429, headers={"retry-after": "9999"})) is None  # capped
    assert retry_after(FakeAPIError(429, headers={"retry-after": "soon"})) is None
    assert retry_after(FakeAPIError(429)) is None
    assert retry_after(ValueError()) is None
    when = datetime.now(UTC) + timedelta(seconds=30)
    got = retry_after(FakeAPIError(503, headers={"retry-after": format_datetime(when)}))
    assert got is not None and 25 < got <= 31


@pytest.mark.parametrize(
    ("exc", "expected"),
    [
        (FakeAPIError(429), True),
        (FakeAPIError(429, code="insufficient_quota"), False),
        (FakeAPIError(500), True),
        (FakeAPIError(503), True),
        (FakeAPIError(408), True),
        (FakeAPIError(400), False),
        (FakeAPIError(401), False),
        (FakeAPIError(404), False),
        (APIConnectionError(), True),
        (TimeoutError(), True),
        (ValueError(), False),
    ],
)
def test_is_retryable(exc: BaseException, expected: bool) -> None:
    assert is_retryable(exc) is expected


def test_outcome_unknown_only_for_server_side_and_transport_errors() -> None:
    assert outcome_unknown(FakeAPIError(500))
    assert outcome_unknown(APIConnectionError())
    assert not outcome_unknown(FakeAPIError(429))
    assert not outcome_unknown(FakeAPIError(400))
    assert error_code_of(FakeAPIError(429, code="insufficient_quota")) == "insufficient_quota"


def test_backoff_grows_is_capped_and_jittered() -> None:
    policy = RetryPolicy(initial_delay=1, max_delay=10, jitter=0.5)
    assert [policy.backoff(n, rng=lambda: 0.0) for n in (1, 2, 3, 4, 5)] == [1, 2, 4, 8, 10]
    assert policy.backoff(1, rng=lambda: 1.0) == 1.5
    assert policy.backoff(9, rng=lambda: 1.0) == 10


def test_retries_then_succeeds_honouring_retry_after() -> None:
    slept: list[float] = []
    failures = [FakeAPIError(429, headers={"retry-after-ms": "5"}), FakeAPIError(502)]
    calls = 0

    def fn() -> str:
        nonlocal calls
        calls += 1
        if failures:
            raise failures.pop(0)
        return "ok"

    policy = RetryPolicy(attempts=5, initial_delay=1, jitter=0)
    assert call_with_retry(fn, policy=policy, sleep=slept.append) == "ok"
    assert calls == 3
    assert slept == [0.005, 2.0]  # server's hint, then exponential backoff (2nd retry)


def test_gives_up_after_attempts_with_the_last_error() -> None:
    slept: list[float] = []

    def fn() -> str:
        raise FakeAPIError(500)

    with pytest.raises(FakeAPIError):
        call_with_retry(fn, policy=RetryPolicy(attempts=3, jitter=0), sleep=slept.append)
    assert len(slept) == 2


def test_non_retryable_errors_raise_at_once() -> None:
    slept: list[float] = []
    calls = 0

    def fn() -> str:
        nonlocal calls
        calls += 1
        raise FakeAPIError(429, code="insufficient_quota")

    with pytest.raises(FakeAPIError):
        call_with_retry(fn, sleep=slept.append)
    assert (calls, slept) == (1, [])


def test_before_retry_reconciles_instead_of_resending() -> None:
    created: list[str] = []

    def create() -> str:
        created.append("job")  # the server did create it ...
        raise FakeAPIError(500)  # ... but the answer was lost

    def reconcile(exc: BaseException) -> str | None:
        assert isinstance(exc, FakeAPIError)
        return "job-1" if created else None

    notes: list[float] = []
    result = call_with_retry(
        create,
        sleep=lambda s: None,
        before_retry=reconcile,
        on_retry=lambda exc, delay: notes.append(delay),
    )
    assert result == "job-1"
    assert created == ["job"]
    assert len(notes) == 1
