"""An unreachable API fails fast and a slow one is never silent (issue 20 #10, issue 19).

A refused connection (or a host name that does not resolve) is not retried: the request never
left the machine. Other retries are announced on stderr, naming the service and its URL, and
``eval`` stops at the first model it cannot reach instead of asking it every prompt.
"""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.fakes.openai_server import FakeOpenAI, serving_openai
from tuneport.cli.main import run
from tuneport.retry import (
    RetryPolicy,
    call_with_retry,
    is_retryable,
    is_unreachable,
    outcome_unknown,
    retry_notes,
)

HELDOUT = Path(__file__).resolve().parent.parent / "fixtures" / "curate" / "heldout.jsonl"
KEY = "sk-test-UNREACHABLE0123456789"


@pytest.fixture
def closed_port() -> int:
    """A loopback port nothing listens on (connecting to it is refused at once)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
    return port


def _refused(port: int) -> BaseException:
    try:
        httpx.get(f"http://127.0.0.1:{port}/", timeout=2)
    except httpx.ConnectError as exc:
        return exc
    raise AssertionError("the port answered")


def test_a_refused_connection_is_not_retried(closed_port: int) -> None:
    exc = _refused(closed_port)
    assert is_unreachable(exc) and not is_retryable(exc)
    assert not outcome_unknown(exc)  # never sent: a create need not be looked up
    tries: list[int] = []
    waits: list[float] = []

    def call() -> None:
        tries.append(1)
        raise exc

    with pytest.raises(httpx.ConnectError):
        call_with_retry(call, sleep=waits.append, where="X at Y")
    assert tries == [1] and waits == []


def test_an_unknown_host_is_not_retried() -> None:
    error = httpx.ConnectError("[Errno -2] Name or service not known")
    error.__cause__ = socket.gaierror(-2, "Name or service not known")
    assert is_unreachable(error) and not is_retryable(error)


def test_a_timeout_is_still_retried_and_each_retry_is_announced() -> None:
    notes: list[str] = []
    waits: list[float] = []

    def call() -> None:
        raise httpx.ReadTimeout("slow")

    with retry_notes(notes.append), pytest.raises(httpx.ReadTimeout):
        call_with_retry(
            call,
            policy=RetryPolicy(attempts=3, jitter=0.0),
            sleep=waits.append,
            where="OpenAI at http://h/v1",
        )
    assert waits == [1.0, 2.0]
    assert notes == [  # the first note comes after the first try, before a 1 s wait
        "OpenAI at http://h/v1: timed out; retrying in 1 s (try 2 of 3)",
        "OpenAI at http://h/v1: timed out; retrying in 2 s (try 3 of 3)",
    ]


PROVIDERS = {
    "openai": ("OPENAI_BASE_URL", "gpt-4.1-mini", "OpenAI"),
    "together": ("TOGETHER_BASE_URL", "Qwen/Qwen3-8B", "Together"),
    "fireworks": ("FIREWORKS_BASE_URL", "accounts/fireworks/models/qwen3-8b", "Fireworks"),
    "vertex": ("GOOGLE_VERTEX_BASE_URL", "gemini-2.5-flash", "Vertex AI"),
}


@pytest.mark.parametrize("provider", sorted(PROVIDERS))
def test_chat_against_a_closed_port_says_cannot_reach_at_once(
    provider: str,
    closed_port: int,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    env, model, title = PROVIDERS[provider]
    for key in ("OPENAI_API_KEY", "TOGETHER_API_KEY", "FIREWORKS_API_KEY"):
        monkeypatch.setenv(key, KEY)
    monkeypatch.setenv("FIREWORKS_ACCOUNT_ID", "acme")
    monkeypatch.setenv("TUNEPORT_VERTEX_ACCESS_TOKEN", "ya29.UNREACHABLE-0123456789")
    monkeypatch.setenv("GOOGLE_CLOUD_PROJECT", "p")
    monkeypatch.setenv(env, f"http://127.0.0.1:{closed_port}")
    start = time.monotonic()
    code = run(["chat", "-p", provider, "-m", model, "--message", "hi"])
    took = time.monotonic() - start
    err = capsys.readouterr().err
    assert code == 4, err
    assert "Traceback" not in err and err.count("error:") == 1, err
    assert f"cannot reach {title} at" in err and f"127.0.0.1:{closed_port}" in err, err
    assert "retrying" not in err, err
    assert took < 5, f"{took:.1f} s to say cannot reach"  # was ~20 s (5 tries with backoff)


@pytest.fixture
def fake(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeOpenAI]:
    with serving_openai(monkeypatch, KEY, poll_now=True) as server:
        yield server


def test_cli_says_it_is_retrying_and_where(
    fake: FakeOpenAI, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(RetryPolicy, "backoff", lambda self, n, rng=None: 0.0)
    fake.fail("POST", "/chat/completions", 503, times=2)
    code = run(["chat", "-p", "openai", "-m", "gpt-4.1-mini", "--message", "hi"])
    err = capsys.readouterr().err
    assert code == 0, err
    notes = [line for line in err.splitlines() if "retrying" in line]
    assert len(notes) == 2, err
    assert notes[0].startswith(f"note: OpenAI at {fake.base_url}") and "HTTP 503" in notes[0]
    assert "try 2 of" in notes[0] and "try 3 of" in notes[1]


def test_eval_stops_at_the_first_unreachable_model(
    closed_port: int, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    monkeypatch.setenv("OPENAI_BASE_URL", f"http://127.0.0.1:{closed_port}")
    sleeps: list[float] = []
    monkeypatch.setattr(time, "sleep", sleeps.append)  # eval's own retry would wait here
    start = time.monotonic()
    code = run(
        ["eval", "--data", str(HELDOUT), "--model", "openai:gpt-4.1-nano", "--yes",
         "--concurrency", "1"]
    )  # fmt: skip
    took = time.monotonic() - start
    err = capsys.readouterr().err
    assert code == 4, err
    assert "Traceback" not in err and err.count("error:") == 1, err
    assert "openai:gpt-4.1-nano: cannot reach OpenAI at" in err, err
    assert sleeps == [] and took < 5, (sleeps, took)
