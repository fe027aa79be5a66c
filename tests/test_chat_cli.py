"""`tuneport chat` and target resolution (job id, ft:, local:, endpoint, base model)."""

from __future__ import annotations

import io
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from tests.fakes.openai_server import FakeOpenAI, serving_openai
from tuneport.cli.main import run
from tuneport.errors import ConfigError, NotFoundError
from tuneport.jobs.resolve import resolve_target
from tuneport.jobs.store import JobStore, open_store
from tuneport.schemas import JobRecord, JobState

KEY = "sk-test-SECRET123456"


@pytest.fixture
def fake(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeOpenAI]:
    with serving_openai(monkeypatch, KEY) as server:
        yield server


def _stored(store: JobStore, **extra: object) -> JobRecord:
    now = datetime.now(UTC)
    fields: dict[str, object] = {
        "id": "tp-00c0ffee",
        "run_id": "run-c",
        "provider": "openai",
        "model": "gpt-4.1-mini",
        "dataset_sha256": "x",
        "remote_id": "ftjob-77",
        "state": JobState.SUCCEEDED,
        "tuned_model": "ft:gpt-4.1-mini:org::77",
        "config": {"options": {"metadata": {"team": "a"}}},
        "created_at": now,
        "updated_at": now,
    }
    fields.update(extra)
    return store.add(JobRecord.model_validate(fields))


def test_resolve_targets(tmp_path: Path) -> None:
    store = JobStore(tmp_path / "j.db")
    _stored(store)
    expected = ("openai", "ft:gpt-4.1-mini:org::77", {"metadata": {"team": "a"}})
    assert resolve_target("tp-00c0ffee", store=store) == expected
    assert resolve_target("tp-00c0", store=store) == expected  # unique prefix
    assert resolve_target("ftjob-77", store=store) == expected  # remote id
    assert resolve_target("ft:gpt-4o:x::y", store=store) == ("openai", "ft:gpt-4o:x::y", {})
    assert resolve_target("local:tp-1", store=store)[0] == "local"
    endpoint = "projects/p/locations/us-central1/endpoints/123"
    assert resolve_target(endpoint, store=store) == ("vertex", endpoint, {})
    assert resolve_target("gemini-2.5-flash", store=store)[0] == "vertex"
    assert resolve_target("my-model", "local", store=store) == ("local", "my-model", {})
    with pytest.raises(ConfigError, match="cannot tell which provider"):
        resolve_target("mistral-7b", store=store)
    with pytest.raises(ConfigError, match="unknown provider"):
        resolve_target("gpt-4.1", "nope", store=store)
    with pytest.raises(NotFoundError, match="jobs list"):
        resolve_target("tp-deadbeef", store=store)


def test_job_without_tuned_model_says_to_wait(tmp_path: Path) -> None:
    store = JobStore(tmp_path / "j.db")
    _stored(store, state=JobState.RUNNING, tuned_model=None)
    with pytest.raises(NotFoundError, match="jobs watch tp-00c0ffee"):
        resolve_target("tp-00c0ffee", store=store)


def test_one_shot_with_a_tuned_model_id(
    fake: FakeOpenAI, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run(["chat", "ft:gpt-4.1-mini:org::abc", "--message", "hi", "--system", "be brief"]) == 0
    assert capsys.readouterr().out.strip() == "echo[ft:gpt-4.1-mini:org::abc]: hi"
    assert fake.chats[0]["messages"] == [
        {"role": "system", "content": "be brief"},
        {"role": "user", "content": "hi"},
    ]


def test_one_shot_with_a_stored_job_and_json(
    fake: FakeOpenAI, capsys: pytest.CaptureFixture[str]
) -> None:
    _stored(open_store())
    assert run(["chat", "tp-00c0ffee", "--message", "ping", "--json", "--temperature", "0"]) == 0
    out = capsys.readouterr().out
    assert '"role": "assistant"' in out and "ping" in out
    assert fake.chats[0]["model"] == "ft:gpt-4.1-mini:org::77"
    assert fake.chats[0]["temperature"] == 0.0


def test_base_model_needs_a_provider_when_unknown(
    fake: FakeOpenAI, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run(["chat", "mistral-7b", "--message", "hi"]) == 3
    assert "--provider" in capsys.readouterr().err
    assert run(["chat", "mistral-7b", "--message", "hi", "--provider", "openai"]) == 0
    assert fake.chats[-1]["model"] == "mistral-7b"


def test_repl_keeps_history_and_ends_on_exit(
    fake: FakeOpenAI, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("sys.stdin", io.StringIO("hello\n\nsecond\n/exit\nnever sent\n"))
    assert run(["chat", "ft:gpt-4.1-mini:o::1", "--system", "sys"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out == ["echo[ft:gpt-4.1-mini:o::1]: hello", "echo[ft:gpt-4.1-mini:o::1]: second"]
    assert len(fake.chats) == 2
    assert [m["role"] for m in fake.chats[1]["messages"]] == [
        "system",
        "user",
        "assistant",
        "user",
    ]


def test_repl_ends_on_eof(
    fake: FakeOpenAI, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("sys.stdin", io.StringIO("only\n"))
    assert run(["chat", "ft:gpt-4.1-mini:o::1"]) == 0
    assert len(fake.chats) == 1


def test_chat_errors_are_one_line(fake: FakeOpenAI, capsys: pytest.CaptureFixture[str]) -> None:
    fake.fail(
        "POST",
        "/chat/completions",
        404,
        message="The model `ft:x` does not exist",
        code="model_not_found",
    )
    assert run(["chat", "ft:x", "--message", "hi"]) == 4
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("error: ")


def test_short_flags_mean_provider_and_model(
    fake: FakeOpenAI, capsys: pytest.CaptureFixture[str]
) -> None:
    """-m is the model and -p the provider, as in every other command (the message is
    --message)."""
    assert run(["chat", "-m", "mistral-7b", "-p", "openai", "--message", "hi"]) == 0
    assert fake.chats[-1]["model"] == "mistral-7b"
    assert capsys.readouterr().out == "echo[mistral-7b]: hi\n"
    # the old `chat TARGET -m TEXT` now names two models: refused, pointing at --message
    assert run(["chat", "ft:gpt-4.1-mini:o::1", "-m", "hi"]) == 3
    assert "--message" in capsys.readouterr().err
    assert run(["chat", "--message", "hi"]) == 3
    assert "no model to chat with" in capsys.readouterr().err


def test_provider_colon_model_like_eval(
    fake: FakeOpenAI, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run(["chat", "openai:gpt-4.1-mini", "--message", "hi"]) == 0
    assert fake.chats[-1]["model"] == "gpt-4.1-mini"
    assert capsys.readouterr().out == "echo[gpt-4.1-mini]: hi\n"
    store = open_store()
    assert resolve_target("openai:mistral-7b", store=store) == ("openai", "mistral-7b", {})
    assert resolve_target("vertex:gemini-2.5-flash", store=store)[:2] == (
        "vertex",
        "gemini-2.5-flash",
    )
    assert resolve_target("local:tp-1", store=store) == ("local", "local:tp-1", {})


def test_replies_stream_where_the_backend_streams(
    fake: FakeOpenAI, capsys: pytest.CaptureFixture[str]
) -> None:
    """The OpenAI backend asks for stream=True and prints the pieces as they come; --json
    asks for the whole reply."""
    from tuneport.jobs.chat import open_chat

    assert run(["chat", "ft:gpt-4.1-mini:o::1", "--message", "hello there"]) == 0
    assert capsys.readouterr().out == "echo[ft:gpt-4.1-mini:o::1]: hello there\n"
    assert fake.chats[-1]["stream"] is True
    assert run(["chat", "ft:gpt-4.1-mini:o::1", "--message", "hi", "--json"]) == 0
    assert "stream" not in fake.chats[-1]

    session = open_chat("ft:gpt-4.1-mini:o::1")
    pieces: list[str] = []
    reply = session.send("one two three", on_text=pieces.append)
    assert len(pieces) > 3 and "".join(pieces) == reply.content
    assert reply.content == "echo[ft:gpt-4.1-mini:o::1]: one two three"
    assert [m.role for m in session.history] == ["user", "assistant"]


def test_a_server_answering_a_stream_with_json_is_read_whole(
    fake: FakeOpenAI, capsys: pytest.CaptureFixture[str]
) -> None:
    """Some compatible servers ignore stream=True and send one chat.completion as JSON; the
    SDK reads that as an event stream without events (an empty reply, exit 0). The reply is
    read whole instead."""
    fake.stream_as_json = True
    assert run(["chat", "ft:gpt-4.1-mini:o::1", "--message", "hello there"]) == 0
    assert capsys.readouterr().out == "echo[ft:gpt-4.1-mini:o::1]: hello there\n"
    assert fake.chats[-1]["stream"] is True


@pytest.mark.parametrize("as_json", [False, True])
@pytest.mark.parametrize("stream_as_json", [False, True])
def test_an_empty_reply_is_an_error(
    fake: FakeOpenAI, capsys: pytest.CaptureFixture[str], as_json: bool, stream_as_json: bool
) -> None:
    """An empty reply is never an empty line and exit 0: one line, exit 4 (README)."""
    fake.reply_text = ""
    fake.stream_as_json = stream_as_json
    args = ["chat", "ft:gpt-4.1-mini:o::1", "--message", "hello", *(["--json"] * as_json)]
    assert run(args) == 4
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.startswith("error: ft:gpt-4.1-mini:o::1 sent an empty reply")
    assert captured.err.count("\n") == 1


def test_a_repl_keeps_no_empty_turn(
    fake: FakeOpenAI, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from tuneport.errors import ProviderError
    from tuneport.jobs.chat import open_chat

    session = open_chat("ft:gpt-4.1-mini:o::1")
    fake.reply_text = ""
    with pytest.raises(ProviderError):
        session.send("hi", on_text=lambda _p: None)
    assert session.history == []  # the unanswered turn is not sent again as history


def test_stream_chunks_match_the_sdk_types(fake: FakeOpenAI) -> None:
    """The fake's stream is what the SDK's published chunk type describes."""
    import httpx
    from openai.types.chat import ChatCompletionChunk

    body = {"model": "m", "messages": [{"role": "user", "content": "a b"}], "stream": True}
    headers = {"authorization": f"Bearer {KEY}"}
    text = httpx.post(f"{fake.base_url}/chat/completions", json=body, headers=headers).text
    data = [line.removeprefix("data: ") for line in text.splitlines() if line]
    assert data[-1] == "[DONE]"
    chunks = [ChatCompletionChunk.model_validate_json(d) for d in data[:-1]]
    assert "".join(c.choices[0].delta.content or "" for c in chunks) == "echo[m]: a b"


def test_repl_uses_readline_history_on_a_terminal(
    fake: FakeOpenAI,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """On a terminal the REPL edits lines with readline and keeps a history file (0600)."""
    import readline

    from tuneport.paths import home

    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    monkeypatch.setattr("sys.stdin", Terminal("first question\n/exit\n"))
    monkeypatch.setattr("builtins.input", lambda prompt="": __import__("sys").stdin.readline()[:-1])
    readline.clear_history()
    assert run(["chat", "ft:gpt-4.1-mini:o::1"]) == 0
    history = home() / "chat_history"
    assert history.is_file() and oct(history.stat().st_mode & 0o777) == "0o600"
    # input() is replaced above, so readline saw no line; the file it wrote is readline's own
    readline.add_history("first question")
    readline.write_history_file(history)
    readline.clear_history()
    monkeypatch.setattr("sys.stdin", Terminal("/exit\n"))
    assert run(["chat", "ft:gpt-4.1-mini:o::1"]) == 0
    assert readline.get_history_item(readline.get_current_history_length()) == "first question"
