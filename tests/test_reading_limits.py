"""Reading never changes data silently and never grows without bound.

Duplicate keys and NaN/Infinity are errors at file:line in every layout (the fast parallel
validator included); a line or record over the 16 MiB cap stops reading with a one-line error;
pipes, FIFOs and devices are refused before anything is read.
"""

from __future__ import annotations

import json
import os
import threading
from pathlib import Path
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tuneport.cli.main import run
from tuneport.data import load_records, read_records
from tuneport.data.reading import STRICT_JSON, JsonIssue, json_issue
from tuneport.errors import InputError
from tuneport.files import MAX_RECORD_BYTES
from tuneport.providers.openai import RULES
from tuneport.tokens.bpe import TiktokenChatCounter
from tuneport.tokens.measure import count_path
from tuneport.validation.parallel import validate_parallel
from tuneport.validation.validate import validate_serial

GOOD = {"messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "yo"}]}
DUP_LINE = (
    '{"messages": [{"role": "user", "content": "a", "content": "b"}, '
    '{"role": "assistant", "content": "c"}]}'
)
PAIR = '[{"role": "user", "content": "a"}, {"role": "assistant", "content": "c"}]'


def _kinds(path: Path) -> dict[int, list[str]]:
    out: dict[int, list[str]] = {}
    for row in read_records(path, "openai"):
        for p in row.problems:
            out.setdefault(row.line, []).append(p.kind)
    return out


def test_duplicate_key_in_jsonl_is_an_error_at_its_line(tmp_path: Path) -> None:
    path = tmp_path / "d.jsonl"
    path.write_text(json.dumps(GOOD) + "\n" + DUP_LINE + "\n" + json.dumps(GOOD) + "\n")
    assert _kinds(path) == {2: ["duplicate_key"]}
    with pytest.raises(InputError) as info:
        load_records(path)
    assert info.value.where == f"{path}:2" and "'content' appears twice" in info.value.message


def test_duplicate_key_spelled_with_escapes_is_still_found(tmp_path: Path) -> None:
    # "\u003a" is a colon: the colon-count shortcut must not hide the duplicate
    line = (
        '{"messages": [{"role": "user", "content": "\\u003a", "content": "\\u003a"}, '
        '{"role": "assistant", "content": "c"}]}'
    )
    path = tmp_path / "e.jsonl"
    path.write_text(line + "\n")
    assert _kinds(path) == {1: ["duplicate_key"]}


def test_colons_in_text_are_no_false_alarm(tmp_path: Path) -> None:
    record = {
        "messages": [
            {"role": "user", "content": 'a: {"k": 1}'},
            {"role": "assistant", "content": "b:"},
        ]
    }
    path = tmp_path / "ok.jsonl"
    path.write_text(
        json.dumps(record) + "\n" + json.dumps(record, indent=None, separators=(",", " : ")) + "\n"
    )
    assert _kinds(path) == {}


class _NoCount(bytes):
    """Line bytes whose ``count`` must not be called (the colon-count fallback)."""

    def count(self, *args: Any) -> int:
        raise AssertionError("json_issue counted colons on a compact line")


def test_a_compact_line_is_checked_by_one_comparison() -> None:
    """The per-line key check on what big files hold (compact JSON, e.g. written by orjson or
    json.dumps(separators=(",", ":"))): the line is its value's own encoding, so no key was
    dropped; no colon counting, no strict re-parse (the cost behind the 0.60x benchmark)."""
    for raw in (orjson.dumps(GOOD) + b"\n", orjson.dumps(GOOD), orjson.dumps(GOOD) + b"\r\n"):
        assert json_issue(_NoCount(raw), orjson.loads(raw)) is None
    dup = DUP_LINE.replace(", ", ",").replace(": ", ":").encode()
    issue = json_issue(dup, orjson.loads(dup))
    assert issue is not None and issue.kind == "duplicate_key"


# spelled as JSON text: r"\u003a" is an escaped colon, r"\\" an escaped backslash
_KEY = st.sampled_from(["a", "b", "role", ":", r"\u003a", r"\u003A", "a:b", r"\\", r"\u0061"])
_SCALAR = st.one_of(st.integers(-5, 5), st.sampled_from(["x", ":", r"\u003a", r"a\"b", ""]))


def _json_text(
    draw: st.DrawFn, depth: int, sep: tuple[str, str]
) -> str:  # pairs drawn with repeats allowed: duplicate keys are common
    if depth > 2 or draw(st.booleans()):
        scalar = draw(_SCALAR)
        return str(scalar) if isinstance(scalar, int) else f'"{scalar}"'
    if draw(st.booleans()):
        items = [_json_text(draw, depth + 1, sep) for _ in range(draw(st.integers(0, 3)))]
        return "[" + sep[0].join(items) + "]"
    keys = draw(st.lists(_KEY, max_size=4))
    pairs = [f'"{k}"{sep[1]}{_json_text(draw, depth + 1, sep)}' for k in keys]
    return "{" + sep[0].join(pairs) + "}"


@st.composite
def _json_lines(draw: st.DrawFn) -> str:
    sep = draw(st.sampled_from([(",", ":"), (", ", ": "), (",", " : ")]))
    return _json_text(draw, 0, sep)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_json_lines())
def test_json_issue_finds_exactly_the_duplicates_the_strict_decoder_finds(text: str) -> None:
    """The shortcuts (same text, same colons) never hide a duplicate key, nor invent one."""
    try:
        STRICT_JSON.decode(text)
        expected = None
    except JsonIssue as exc:
        expected = exc.kind
    value = orjson.loads(text)
    for form in (text, text.encode(), text.encode() + b"\n"):
        issue = json_issue(form, value)
        assert (issue.kind if issue else None) == expected, (form, expected)


def test_nan_and_duplicates_in_a_json_array_are_errors(tmp_path: Path) -> None:
    path = tmp_path / "a.json"
    path.write_text(
        "[\n"
        + json.dumps(GOOD)
        + f',\n{{"messages": {PAIR}, "w": NaN}},\n'
        + f'{{"messages": {PAIR}, "w": -Infinity}},\n'
        + DUP_LINE
        + ",\n"
        + json.dumps(GOOD)
        + "\n]\n"
    )
    assert _kinds(path) == {
        3: ["non_finite_number"],
        4: ["non_finite_number"],
        5: ["duplicate_key"],
    }
    out = tmp_path / "out.jsonl"
    assert run(["convert", str(path), "--to", "openai", "-o", str(out)]) == 2
    assert not out.exists()  # nothing half-written, nothing silently turned into null


def test_nan_in_jsonl_names_the_value(tmp_path: Path) -> None:
    path = tmp_path / "n.jsonl"
    path.write_text('{"messages": [], "w": NaN}\n')
    assert _kinds(path) == {1: ["non_finite_number"]}


def test_deep_nesting_is_a_problem_not_a_crash(tmp_path: Path) -> None:
    arr = tmp_path / "deep.json"
    arr.write_text("[" + '{"a":' * 100_000 + "1" + "}" * 100_000 + "]")
    lines = tmp_path / "deep.jsonl"
    lines.write_text('{"a":' * 100_000 + "1" + "}" * 100_000 + "\n")
    mid = tmp_path / "mid.jsonl"  # deeper than orjson writes (255), shallower than it reads
    mid.write_text('{"messages": ' + "[" * 600 + "]" * 600 + "}\n")
    assert _kinds(arr) == {1: ["too_deep"]}
    assert _kinds(lines) == {1: ["too_deep"]}
    assert "too_deep" not in _kinds(mid).get(1, [])
    assert run(["validate", str(arr), "--from", "openai"]) == 1


def test_parallel_validation_reports_duplicates_like_the_serial_one(tmp_path: Path) -> None:
    path = tmp_path / "big.jsonl"
    lines = [json.dumps({**GOOD, "id": str(i)}) for i in range(3000)]
    lines[1234] = DUP_LINE
    path.write_text("\n".join(lines) + "\n")
    serial = validate_serial(path, RULES, fmt="openai")
    parallel = validate_parallel(path, RULES, fmt="openai", workers=2, min_bytes=0)
    assert parallel is not None
    assert [(p.kind, p.line) for p in parallel.problems] == [
        (p.kind, p.line) for p in serial.problems
    ]
    assert ("duplicate_key", 1235) in [(p.kind, p.line) for p in serial.problems]


def test_estimate_skips_a_duplicate_key_line_in_every_layout(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Regression: estimate's JSONL fast path (and plan's, and validate's count cache) counted
    a line with a key given twice, with the last value; the importer path of every other layout
    leaves it out and names its line. Now the fast path does the same."""
    lines = [json.dumps(GOOD)] * 12 + [DUP_LINE]
    jsonl = tmp_path / "d.jsonl"
    jsonl.write_text("\n".join(lines) + "\n")
    array = tmp_path / "d.json"
    array.write_text("[" + ",\n".join(lines) + "]\n")
    counter = TiktokenChatCounter("o200k_base")
    fast = count_path(jsonl, counter, fmt="openai", workers=1)
    slow = count_path(array, counter, fmt="openai")
    assert fast.skipped == slow.skipped == [13]
    assert list(fast.tokens) == list(slow.tokens) and fast.examples == 12
    for path in (jsonl, array):
        assert run(["estimate", str(path), "-p", "openai", "-m", "gpt-4.1-mini", "--json"]) == 0
        assert json.loads(capsys.readouterr().out)["examples"] == 12
        assert run(["estimate", str(path), "-p", "openai", "-m", "gpt-4.1-mini"]) == 0
        out = " ".join(capsys.readouterr().out.split())
        assert "1 row(s) not counted" in out and "(line 13)" in out, out


def _long_line(path: Path, size: int) -> None:
    with path.open("wb") as fh:
        fh.write(b'{"messages": [{"role": "user", "content": "')
        fh.write(b"x" * size)
        fh.write(b'"}]}\n')


@pytest.mark.parametrize("suffix", [".jsonl", ".json", ".csv"])
def test_a_record_over_the_cap_stops_reading_with_one_line(tmp_path: Path, suffix: str) -> None:
    path = tmp_path / f"huge{suffix}"
    if suffix == ".json":
        path.write_bytes(b"[" + b'{"instruction": "' + b"x" * (MAX_RECORD_BYTES + 10) + b'"}]')
    elif suffix == ".csv":
        path.write_bytes(b"q,a\n" + b"x" * (MAX_RECORD_BYTES + 10) + b",y\n")
    else:
        _long_line(path, MAX_RECORD_BYTES + 10)
    with pytest.raises(InputError) as info:
        list(
            read_records(
                path,
                "alpaca" if suffix == ".json" else None,
                column_map={"q": "user", "a": "assistant"} if suffix == ".csv" else None,
            )
        )
    assert "longer than 16 MiB" in info.value.message
    assert info.value.where is not None and info.value.where.startswith(str(path))


def test_fast_counting_stops_at_the_cap_too(tmp_path: Path) -> None:
    path = tmp_path / "huge.jsonl"
    path.write_text(json.dumps(GOOD) + "\n")
    with path.open("ab") as fh:
        fh.write(b"y" * (MAX_RECORD_BYTES + 5))
    with pytest.raises(InputError, match="longer than 16 MiB"):
        count_path(path, TiktokenChatCounter("o200k_base"), fmt="openai", workers=1)


def test_a_big_file_is_counted_block_by_block(tmp_path: Path) -> None:
    """Counting in blocks gives the same numbers as one read (lines stay numbered)."""
    from tuneport.tokens.fast import count_chunk, count_lines

    path = tmp_path / "many.jsonl"
    rows = [
        json.dumps(
            {
                "messages": [
                    {"role": "user", "content": "w " * (i % 50)},
                    {"role": "assistant", "content": "z"},
                ]
            }
        )
        for i in range(5000)
    ]
    rows[17] = "not json"
    path.write_text("\n".join(rows) + "\n")
    counter = TiktokenChatCounter("o200k_base")
    import tuneport.tokens.fast as fast

    fast._worker_counter = counter
    whole = count_lines(counter, path.read_bytes())
    size = path.stat().st_size
    blocks = count_chunk((str(path), 0, size, counter.spec))
    assert list(blocks[0]) == list(whole[0]) and list(blocks[1]) == list(whole[1])
    assert blocks[2] == whole[2] == [18] and blocks[3] == whole[3]


def test_devices_fifos_and_stdin_are_refused_before_reading(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    zero = tmp_path / "zero.jsonl"
    zero.symlink_to("/dev/zero")
    fifo = tmp_path / "pipe.jsonl"
    os.mkfifo(fifo)
    writer = threading.Thread(target=lambda: fifo.write_text(json.dumps(GOOD) + "\n"), daemon=True)
    writer.start()
    for command in (
        ["validate", str(zero)],
        ["inspect", str(fifo)],
        ["estimate", str(zero), "-p", "openai", "-m", "gpt-4.1-mini"],
        ["convert", str(zero), "--to", "openai", "-o", str(tmp_path / "o.jsonl")],
    ):
        assert run(command) == 2
        err = capsys.readouterr().err
        assert (
            "not a regular file" in err
            and "Traceback" not in err
            and len(err.strip().splitlines()) == 1
        )
    with fifo.open() as fh:  # let the writer finish
        fh.read()
    assert not (tmp_path / "o.jsonl").exists()


def test_inspect_percentiles_from_a_histogram_match_the_sorted_values() -> None:
    """inspect keeps lengths as a histogram (flat memory); the percentiles stay exact."""
    import random
    from array import array
    from collections import Counter

    from tuneport.data.summary import percentile, percentile_of_counts

    rng = random.Random(5)
    for n in (1, 2, 7, 100, 1001):
        values = [rng.choice([0, 3, 3, 10, 250, 251, 9999]) for _ in range(n)]
        ordered = array("q", sorted(values))
        counts = Counter(values)
        for pct in (1, 50, 90, 99, 100):
            assert percentile_of_counts(counts, pct) == percentile(ordered, pct)
    assert percentile_of_counts(Counter(), 50) == 0
