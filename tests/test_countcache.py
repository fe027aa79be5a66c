"""Token counts kept by `validate --model` for `estimate`: identical, and never stale."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest

from tests.validation_helpers import rules
from tuneport import tokens
from tuneport.providers import registry
from tuneport.tokens import Counts, count_jsonl
from tuneport.tokens import cache as countcache
from tuneport.tokens.measure import count_path
from tuneport.validation.parallel import validate_parallel


def _file(path: Path) -> None:
    """OpenAI chat rows with every unusual line count_jsonl treats specially."""
    lines: list[bytes] = []
    for i in range(240):
        row: dict[str, object] = {
            "messages": [
                {"role": "user", "content": f"question number {i} " * (1 + i % 5)},
                {"role": "assistant", "content": f"answer {i % 40}"},
            ]
        }
        if i % 17 == 3:
            row["tools"] = [{"type": "function", "function": {"name": "f", "parameters": {}}}]
        line = orjson.dumps(row)
        if i in (30, 31):
            line += b"\r"
        if i == 50:
            line = b'{"messages": [oops'
        if i == 60:
            line = b""
        if i == 70:
            line = b'{"messages": [{"role": "user", "content": "caf\xe9"}]}'  # not UTF-8
        if i == 80:
            line = b"\xef\xbb\xbf" + orjson.dumps(row)  # a BOM inside the file
        if i == 90:
            line = b"[1, 2]"  # JSON, but no record
        if i == 100:
            line = b'{"messages": [{"role": "user", "content": "hi", "name": "bo"}]}'
        if i == 110:  # a key given twice: no record, as the importer path says
            line = b'{"messages": [{"role": "user", "content": "a", "content": "b"}]}'
        if i == 120:
            line = b'\xef\xbb\xbf{"messages": [], "messages": [{"role": "user", "content": "b"}]}'
        lines.append(line)
    path.write_bytes(b"\xef\xbb\xbf" + b"\n".join(lines) + b"\n")


def _same(a: Counts, b: Counts) -> None:
    assert list(a.tokens) == list(b.tokens)
    assert list(a.lines) == list(b.lines)
    assert a.skipped == b.skipped
    assert a.tool_examples == b.tool_examples


@pytest.fixture
def counter() -> tokens.TiktokenChatCounter:
    made = registry.counter_for("openai", "gpt-4.1")
    assert isinstance(made, tokens.TiktokenChatCounter)
    return made


def _validate(path: Path, counter: tokens.TokenCounter, workers: int = 3) -> None:
    report = validate_parallel(
        path, rules("openai"), fmt="openai", counter=counter, workers=workers, min_bytes=0
    )
    assert report is not None


@pytest.mark.parametrize("workers", [2, 3])
def test_validate_leaves_exactly_count_jsonls_counts(
    tmp_path: Path, counter: tokens.TiktokenChatCounter, workers: int
) -> None:
    path = tmp_path / "chat.jsonl"
    _file(path)
    fresh = count_jsonl(path, counter, workers=1)
    assert fresh.skipped and fresh.tool_examples and fresh.examples > 200
    assert {111, 121} <= set(fresh.skipped)  # the duplicate-key lines (file line = i + 1)
    assert countcache.load(path, counter.spec) is None
    _validate(path, counter, workers)
    cached = countcache.load(path, counter.spec)
    assert cached is not None
    _same(cached, fresh)


def test_estimate_reuses_them_without_counting(
    tmp_path: Path, counter: tokens.TiktokenChatCounter, monkeypatch: pytest.MonkeyPatch
) -> None:
    import tuneport.tokens.measure as est

    path = tmp_path / "chat.jsonl"
    _file(path)
    fresh = count_jsonl(path, counter, workers=1)
    _validate(path, counter)

    def refuse(*args: object, **kw: object) -> Counts:
        raise AssertionError("counted again")

    monkeypatch.setattr(est, "count_jsonl", refuse)
    _same(count_path(path, counter), fresh)


def test_a_changed_file_is_recounted(tmp_path: Path, counter: tokens.TiktokenChatCounter) -> None:
    path = tmp_path / "chat.jsonl"
    _file(path)
    _validate(path, counter)
    data = path.read_bytes()
    same_size = data.replace(b"answer 7", b"answer\\n", 1)  # same length, other tokens
    assert len(same_size) == len(data) and same_size != data
    path.write_bytes(same_size)
    assert countcache.load(path, counter.spec) is None
    recounted = count_path(path, counter)
    _same(recounted, count_jsonl(path, counter, workers=1))
    assert list(recounted.tokens) != list(count_jsonl_of(data, tmp_path, counter).tokens)
    cached = countcache.load(path, counter.spec)  # estimate kept the new counts
    assert cached is not None
    _same(cached, recounted)
    with path.open("ab") as fh:  # appended: recounted too
        fh.write(orjson.dumps({"messages": [{"role": "user", "content": "more"}]}) + b"\n")
    _same(count_path(path, counter), count_jsonl(path, counter, workers=1))


def count_jsonl_of(data: bytes, tmp_path: Path, counter: tokens.TiktokenChatCounter) -> Counts:
    other = tmp_path / "other.jsonl"
    other.write_bytes(data)
    return count_jsonl(other, counter, workers=1)


def test_other_counters_and_broken_entries_are_not_served(
    tmp_path: Path, counter: tokens.TiktokenChatCounter
) -> None:
    path = tmp_path / "chat.jsonl"
    _file(path)
    _validate(path, counter)
    approx = tokens.TiktokenChatCounter("o200k_base", exact=False, band=0.1)
    assert countcache.load(path, approx.spec) is None
    assert (
        validate_parallel(path, rules("openai"), fmt="openai", workers=2, min_bytes=0) is not None
    )
    entries = list(countcache.cache_dir().iterdir())
    assert len(entries) == 1  # validation without a model counts nothing
    entry = entries[0]
    entry.write_bytes(entry.read_bytes()[:-8])  # truncated
    assert countcache.load(path, counter.spec) is None
    entry.write_bytes(b"not json\n")
    assert countcache.load(path, counter.spec) is None


def test_validate_holds_one_copy_of_the_counts(
    tmp_path: Path, counter: tokens.TiktokenChatCounter
) -> None:
    """The parent merges each range's counts as it arrives instead of keeping every range's
    arrays until the end and then merging them (two copies, 16 bytes per example each): its
    peak was ~76 bytes per example on this file, now ~59 (digests, lines, one merged copy)."""
    import tracemalloc

    n = 60_000
    path = tmp_path / "many.jsonl"
    reply = {"role": "assistant", "content": "a"}
    with path.open("wb") as fh:
        for i in range(n):
            row = {"messages": [{"role": "user", "content": f"q {i}"}, reply]}
            fh.write(orjson.dumps(row) + b"\n")
    _validate(path, counter, workers=2)  # one-time allocations (imports, caches) first
    tracemalloc.start()
    try:
        _validate(path, counter, workers=2)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak / n < 66, f"{peak / n:.1f} bytes per example"
    cached = countcache.load(path, counter.spec)
    assert cached is not None and cached.examples == n
