"""Parallel validation gives exactly the serial report (problems, order, counts)."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest

from tests.validation_helpers import FIXTURES, jsonl_fixtures, rules, same_report, serial_report
from tuneport import tokens
from tuneport.providers import registry
from tuneport.schemas import Report
from tuneport.validation import validate_file
from tuneport.validation.parallel import validate_parallel


def _parallel(path: Path, provider: str, workers: int = 3, **kw: object) -> Report:
    from tuneport.data.records import resolve_format

    report = validate_parallel(
        path,
        rules(provider),
        fmt=resolve_format(path, None, None),
        workers=workers,
        min_bytes=0,
        **kw,  # type: ignore[arg-type]
    )
    assert report is not None
    return report


@pytest.fixture(autouse=True)
def _small_chunks(monkeypatch: pytest.MonkeyPatch) -> None:
    import tuneport.validation.parallel as par

    monkeypatch.setattr(par, "_CHUNK_TARGET", 1)  # as many ranges as the bounds allow


@pytest.mark.parametrize("path", jsonl_fixtures(), ids=lambda p: p.name)
@pytest.mark.parametrize("provider", ["openai", "vertex"])
def test_every_jsonl_fixture_gives_the_serial_report(path: Path, provider: str) -> None:
    try:
        serial = serial_report(path, provider)
    except Exception as exc:  # unusable input: both paths must refuse it
        with pytest.raises(type(exc)):
            _parallel(path, provider)
        return
    same_report(_parallel(path, provider), serial)


def _crafted(path: Path) -> None:
    chat = {
        "format": "tuneport/1",
        "kind": "chat",
        "messages": [
            {"role": "user", "content": "hello there"},
            {"role": "assistant", "content": "hi! how can I help?"},
        ],
    }
    pref = {
        "format": "tuneport/1",
        "kind": "preference",
        "prompt": [{"role": "user", "content": "pick one"}],
        "chosen": {"role": "assistant", "content": "a"},
        "rejected": {"role": "assistant", "content": "b"},
    }
    lines: list[bytes] = []
    for i in range(300):
        obj = dict(chat, messages=[*chat["messages"][:1], {"role": "assistant", "content": f"{i}"}])
        if i % 37 == 0:
            obj = chat  # exact duplicates spread over many ranges
        if i % 53 == 5:
            obj = dict(chat, messages=[{"role": "user", "content": "no reply " * (i % 400)}])
        line = orjson.dumps(obj)
        if i == 120:
            line = orjson.dumps(pref)  # a second record kind
        if i in (40, 41, 200):
            line += b"\r"  # CRLF in several ranges: one problem for the file
        if i == 77:
            line = b'{"messages": [oops'
        if i == 150:
            line = b""
        if i == 151:
            line = b"\xff\xfe not utf-8"
        lines.append(line)
    path.write_bytes(b"\xef\xbb\xbf" + b"\n".join(lines))  # BOM, no final newline


@pytest.mark.parametrize("provider", ["openai", "vertex", "local"])
@pytest.mark.parametrize("workers", [2, 3])
def test_crafted_file_with_cross_range_duplicates_kinds_crlf(
    tmp_path: Path, provider: str, workers: int
) -> None:
    path = tmp_path / "crafted.jsonl"
    _crafted(path)
    counter = registry.counter_for("openai", "gpt-4.1")
    serial = serial_report(path, provider, counter=counter, token_limit=40)
    kinds = serial.counts()
    assert kinds["duplicate"] >= 7 and kinds["crlf"] == 1 and kinds["mixed_kinds"] == 1
    assert kinds["token_limit"] >= 1 and kinds["json_syntax"] == 2 and kinds["bom"] == 1
    assert kinds["non_utf8"] == 1 and kinds["blank_line"] == 1
    parallel = _parallel(path, provider, workers=workers, counter=counter, token_limit=40)
    same_report(parallel, serial)


def test_validate_file_uses_it_for_big_jsonl_only(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import tuneport.validation.parallel as par

    path = tmp_path / "crafted.jsonl"
    _crafted(path)
    calls: list[Path] = []
    real = par.validate_parallel

    def spy(*args: object, **kw: object) -> Report | None:
        calls.append(args[0])  # type: ignore[arg-type]
        return real(*args, **kw)  # type: ignore[arg-type]

    monkeypatch.setattr(par, "validate_parallel", spy)
    small = validate_file(path, rules("openai"))  # below PARALLEL_MIN_BYTES: serial
    assert calls == [path]
    monkeypatch.setattr(par, "PARALLEL_MIN_BYTES", 0)
    same_report(validate_file(path, rules("openai")), small)

    class Online:
        exact, error_band, label = True, None, "remote countTokens"

        def count(self, record: object) -> int:
            return 1

        def count_text(self, text: str) -> int:
            return 1

    kw = {"fmt": "canonical", "min_bytes": 0, "workers": 2}
    assert validate_parallel(path, rules("openai"), counter=Online(), **kw) is None  # type: ignore[arg-type]
    json_array = tmp_path / "a.json"
    json_array.write_text("[" + ",".join(['{"instruction": "x", "output": "y"}'] * 3) + "]")
    assert (
        validate_parallel(json_array, rules("openai"), fmt="alpaca", min_bytes=0, workers=2) is None
    )


def test_workers_are_spawned_not_forked_while_other_threads_run(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Forking a multi-threaded process can deadlock a worker on a copied lock: with another
    thread alive the pool is spawned, and the report and the counts stay the same."""
    import threading

    from tuneport.providers.registry import counter_for
    from tuneport.tokens.fast import count_jsonl, process_context

    monkeypatch.setattr(
        tokens.fast, "PARALLEL_MIN_BYTES", 0
    )  # the small sample goes to the pool too
    path = FIXTURES / "sample" / "chat.jsonl"
    stop = threading.Event()
    other = threading.Thread(target=stop.wait, daemon=True)
    other.start()
    try:
        assert process_context().get_start_method() == "spawn"
        counter = counter_for("openai", "gpt-4.1-mini")
        same_report(
            _parallel(path, "openai", workers=2, counter=counter),
            serial_report(path, "openai", counter=counter),
        )
        fast = tokens.fast_counter(counter)
        assert fast is not None
        spawned = count_jsonl(path, fast, workers=2)
    finally:
        stop.set()
        other.join()
    assert list(spawned.tokens) == list(count_jsonl(path, fast, workers=1).tokens)
