"""Validation of big JSONL files in worker processes, with the same report as one process.

:func:`validate_parallel` splits the file into byte ranges of whole lines (the ranges
:func:`tuneport.tokens.count_jsonl` uses), validates each range in a forked worker with the
serial code (``iter_jsonl`` → importer → provider rules → token limit), and merges in the parent
what only the whole file can tell: duplicates across ranges (by the same digest), the first CRLF
line, mixed record kinds and the example totals. The merged :class:`~tuneport.schemas.Report` is
identical to :func:`tuneport.data.validate_rows` over :func:`tuneport.data.read_records`
(tests/test_parallel_validate.py checks that on every fixture and on crafted files).

Used by :func:`validate_file` for JSONL files of ``PARALLEL_MIN_BYTES`` or more
when the platform can fork (workers inherit the token counter) and the counter is a local one
(characters/4, tiktoken, the o200k approximation); everything else stays serial.
"""

from __future__ import annotations

import io
import os
import threading
from array import array
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, NamedTuple

import orjson

from tuneport.data.detect import container
from tuneport.data.parsing import Options
from tuneport.data.reading import NO_VALUE, Advance, RawRow, iter_jsonl, json_issue, jsonl_row
from tuneport.data.records import resolve_format
from tuneport.data.rows import problem
from tuneport.files import line_blocks
from tuneport.schemas import Problem, Report
from tuneport.tokens.approx import CharCounter
from tuneport.tokens.bpe import TiktokenChatCounter
from tuneport.tokens.cache import file_sha256, save
from tuneport.tokens.counter import TokenCounter
from tuneport.tokens.fast import (
    Part,
    chunk_bounds,
    count_lines,
    default_workers,
    fast_counter,
    merge_parts,
    process_context,
    rebuild_counter,
)
from tuneport.tokens.measure import FAST_FORMATS
from tuneport.validation.rules import Rules
from tuneport.validation.validate import Validator, plain_shape, validate_serial

PARALLEL_MIN_BYTES = 8 << 20
_BUCKETS = 16
_BUCKET_MASK = _BUCKETS - 1
_CHUNK_TARGET = 4 << 20


class _ChunkValidator(Validator):
    """Validates one range; kinds and duplicates are only recorded, the parent decides."""

    def __init__(self, *args: Any) -> None:
        super().__init__(*args)
        # digests and their lines, split by the digest's first byte (see _duplicates)
        self.lines: list[array[int]] = [array("q") for _ in range(_BUCKETS)]
        self.digests = [bytearray() for _ in range(_BUCKETS)]
        self.next_tokens: int | None = None  # the current line's count, when counted already

    def line_tokens(self, line: int, value: Any, count_raw: Callable[[Any], int | None]) -> int:
        n = self.next_tokens
        return n if n is not None else super().line_tokens(line, value, count_raw)

    def _kind(self, kind: str, line: int) -> None:
        self.kinds.setdefault(kind, line)

    def _duplicate(self, key: bytes, line: int) -> None:
        b = key[0] & _BUCKET_MASK
        self.lines[b].append(line)
        self.digests[b] += key


class _Chunk(NamedTuple):
    problems: list[Problem]
    records: int
    kinds: dict[str, int]
    lines: list[array[int]]  # per digest bucket
    digests: list[bytes]
    counts: Part | None  # count_jsonl's part of this range, when asked to count


class _Job(NamedTuple):
    path: str
    start: int
    end: int
    first_line: int
    fmt: str
    rules: Rules
    limit: int | None
    column_map: dict[str, str]
    system: str | None
    counting: bool  # also count the tokens of every line as count_jsonl does (for the cache)
    spec: tuple[Any, ...] | None  # how a spawned worker rebuilds the counter (None: CharCounter)


_counter: TokenCounter | None = None  # set in the parent before forking


def _worker_counter(job: _Job) -> TokenCounter:
    """The parent's counter (forked workers inherit it), or one rebuilt from the job's spec."""
    global _counter
    if _counter is None:
        _counter = rebuild_counter(job.spec) if job.spec is not None else CharCounter()
    return _counter


def _validate_chunk(job: _Job) -> _Chunk:
    counter = _worker_counter(job)
    file = job.path
    state = _ChunkValidator(file, job.rules, counter, job.limit)
    opts = Options(column_map=dict(job.column_map), system=job.system)
    counting = _LineCounter(counter) if job.counting else None
    seen_crlf = False
    local = 0
    loads = orjson.loads
    first = job.first_line
    shape_of = plain_shape if job.fmt == "openai" else None
    # the common line, a plain OpenAI row, is counted and validated inline (same results as
    # the general path below: counting.line + state.shaped)
    count_plain = counting.count_plain if counting is not None and shape_of else None
    tokens = counting.tokens if counting is not None else array("q")
    token_lines = counting.lines if counting is not None else array("q")
    limited = job.limit is not None
    with open(job.path, "rb") as fh:
        for block in line_blocks(fh, job.start, job.end, file=file, first_line=first):
            for raw in io.BytesIO(block):
                local += 1
                number = first + local - 1
                row = None
                if number > 1 and not raw.endswith(b"\r\n"):
                    # an ordinary line: jsonl_row would find no problem and parse the same value
                    # (orjson refuses invalid UTF-8 and blank input, which take the full path
                    # below, and so does a line that loses a duplicate key)
                    try:
                        value = loads(raw)
                    except orjson.JSONDecodeError:
                        pass
                    else:
                        if json_issue(raw, value) is None:
                            if count_plain is not None and counting is not None:
                                shape = plain_shape(value)
                                if shape is not None:
                                    n = count_plain(value["messages"])
                                    tokens.append(n)
                                    token_lines.append(local)
                                    counting.tools += b'"tool' in raw
                                    state.plain(number, value, shape, n if limited else None)
                                    continue
                            row = RawRow(number, value, [])
                if row is None:
                    row = jsonl_row(raw, number, file=file, seen_crlf=seen_crlf)
                    seen_crlf = seen_crlf or raw.endswith(b"\r\n")
                # the plain-row shape once, for the count and the validator
                value = row.value
                shape = shape_of(value) if shape_of is not None and value is not NO_VALUE else None
                if counting is not None:
                    state.next_tokens = counting.line(local, raw, row, shape is not None)
                state.shaped(row, job.fmt, opts, shape)
    counts = None
    if counting is not None:
        counts = (counting.tokens, counting.lines, counting.skipped, local, counting.tools)
    return _Chunk(
        state.problems,
        state.records,
        state.kinds,
        state.lines,
        [bytes(d) for d in state.digests],
        counts,
    )


class _LineCounter:
    """Per-line token counts with exactly :func:`tuneport.tokens.count_jsonl`'s results,
    reusing the line's parsed value when its bytes parse the same (no BOM, valid UTF-8)."""

    def __init__(self, counter: TokenCounter) -> None:
        fast = fast_counter(counter)
        assert fast is not None
        self.counter = fast
        # a plain row (see plain_shape) counted from its messages, skipping count_raw's checks
        self.count_plain = fast.count_plain if type(fast) is TiktokenChatCounter else None
        self.tokens: array[int] = array("q")
        self.lines: array[int] = array("q")
        self.skipped: list[int] = []
        self.tools = 0

    def line(self, local: int, raw: bytes, row: RawRow, plain: bool = False) -> int | None:
        """The count of ``row`` (``plain``: it has a :func:`plain_shape`)."""
        if row.value is not NO_VALUE and not row.problems:
            if plain and self.count_plain is not None:
                n: int | None = self.count_plain(row.value["messages"])
            else:
                n = self.counter.count_raw(row.value)
            tools = b'"tool' in raw
        else:  # an unusual line: count_jsonl's own code on its bytes
            part = count_lines(self.counter, raw)
            n = part[0][0] if part[0] else None
            tools = bool(part[4])
            if part[2]:
                self.skipped.append(local)
            if n is None:
                return None
        if n is None:
            self.skipped.append(local)
            return None
        self.tokens.append(n)
        self.lines.append(local)
        self.tools += tools
        return n


def _hash_into(path: Path, out: list[str]) -> None:
    try:
        out.append(file_sha256(path))
    except OSError:  # no hash, no cache entry
        return


def _first_lines(path: Path, bounds: list[tuple[int, int]]) -> Iterator[int]:
    """The 1-based number of the first line of each range, range by range (the pool's task
    thread takes them as it hands out the jobs: the first ranges are being validated while
    the later ones are still being numbered)."""
    line = 1
    with path.open("rb") as fh:
        for start, end in bounds:
            yield line
            fh.seek(start)
            left = end - start
            while left > 0:
                block = fh.read(min(left, 8 << 20))
                if not block:
                    break
                line += block.count(b"\n")
                left -= len(block)


def _duplicates(chunks: list[_Chunk]) -> dict[int, int]:
    """Line of every duplicate example → line of its first occurrence, across all ranges.

    One bucket of digests at a time (by first byte), so the lookup table holds 1/16 of the
    examples: the parent's memory stays flat instead of growing by a dict entry per example.
    """
    dups: dict[int, int] = {}
    for b in range(_BUCKETS):
        seen: dict[bytes, int] = {}
        for chunk in chunks:  # ranges in file order, lines ascending: first = earliest
            digests = chunk.digests[b]
            for i, line in enumerate(chunk.lines[b]):
                first_line = seen.setdefault(digests[16 * i : 16 * i + 16], line)
                if first_line != line:
                    dups[line] = first_line
    return dups


def _merge(chunks: list[_Chunk], file: str) -> tuple[list[Problem], int]:
    """Problems in the serial order, with the whole-file checks redone across ranges."""
    kinds: dict[str, int] = {}
    mixed: dict[int, Problem] = {}
    dups: dict[int, Problem] = {}
    merged: list[Problem] = []
    crlf_seen = False
    records = 0
    for chunk in chunks:
        records += chunk.records
        for kind, line in sorted(chunk.kinds.items(), key=lambda kv: kv[1]):
            if kind not in kinds:
                first = next(iter(kinds), None)
                kinds[kind] = line
                if first is not None:
                    mixed[line] = problem(
                        "mixed_kinds",
                        f"{kind} example in a file of {first} examples",
                        file=file,
                        line=line,
                    )
        for p in chunk.problems:
            if p.kind == "crlf":  # each range reports its first CRLF; the file reports one
                if crlf_seen:
                    continue
                crlf_seen = True
            merged.append(p)

    for line, first_line in _duplicates(chunks).items():
        dups[line] = problem(
            "duplicate",
            f"exact duplicate of the example at line {first_line}",
            file=file,
            line=line,
        )
    out: list[Problem] = []
    extra = sorted(set(mixed) | set(dups))
    e = 0

    def emit(line: int, group: list[Problem]) -> None:
        if line in mixed:  # serial order within a row: ..., mixed_kinds, token_limit, duplicate
            at = next((j for j, p in enumerate(group) if p.kind == "token_limit"), len(group))
            group = [*group[:at], mixed[line], *group[at:]]
        if line in dups:
            group = [*group, dups[line]]
        out.extend(group)

    i = 0
    while i < len(merged):
        line = merged[i].line or 0
        j = i
        while j < len(merged) and (merged[j].line or 0) == line:
            j += 1
        while e < len(extra) and extra[e] < line:
            emit(extra[e], [])
            e += 1
        if e < len(extra) and extra[e] == line:
            e += 1
        emit(line, merged[i:j])
        i = j
    while e < len(extra):
        emit(extra[e], [])
        e += 1
    return out, records


def validate_parallel(
    path: Path,
    rules: Rules,
    *,
    model: str | None = None,
    fmt: str,
    counter: TokenCounter | None = None,
    token_limit: int | None = None,
    column_map: dict[str, str] | None = None,
    system: str | None = None,
    desirable_only: bool = False,
    advance: Advance | None = None,
    workers: int | None = None,
    min_bytes: int | None = None,
) -> Report | None:
    """The report of ``path`` validated in worker processes, or ``None`` when that does not
    apply (not JSONL, smaller than ``min_bytes``, one CPU, no ``fork``)."""
    workers = workers or default_workers()
    threshold = PARALLEL_MIN_BYTES if min_bytes is None else min_bytes
    if workers < 2 or not path.is_file() or desirable_only:  # KTO filtering: in this process
        return None
    if (
        counter is not None
        and not isinstance(counter, CharCounter)
        and fast_counter(counter) is None
    ):
        return None  # e.g. an online counter: its HTTP client must not cross a fork
    size = path.stat().st_size
    if size < threshold or container(path) is not iter_jsonl:
        return None
    limit = token_limit if token_limit is not None else rules.limit_for(model)
    parts = max(4 * workers, min(16 * workers, size // _CHUNK_TARGET))
    fast = fast_counter(counter) if counter is not None else None
    count = fast is not None and fmt in FAST_FORMATS  # exact counts: keep them for `estimate`
    before = os.stat(path)
    digest: list[str] = []
    hasher = None
    if count:  # the cache key, hashed while this thread numbers lines and loads the tokenizer
        hasher = threading.Thread(target=_hash_into, args=(path, digest), daemon=True)
        hasher.start()
    global _counter
    try:
        bounds = chunk_bounds(path, parts)
        _counter = counter or CharCounter()
        _counter.count_text("")  # a lazy tokenizer loads once here, not in every worker
    finally:
        if hasher is not None:
            hasher.join()  # no thread may be running when the workers fork
    sha256 = digest[0] if digest else None
    cmap = dict(column_map or {})
    spec = fast.spec if fast is not None else None
    jobs = (
        _Job(str(path), a, b, first, fmt, rules, limit, cmap, system, count, spec)
        for (a, b), first in zip(bounds, _first_lines(path, bounds), strict=True)
    )
    chunks: list[_Chunk] = []

    def received(results: Iterator[_Chunk]) -> Iterator[Part]:
        """Each range's result in file order; its counts are merged at once and not kept (the
        parent holds one merged copy of the counts, not two)."""
        for (a, b), chunk in zip(bounds, results, strict=True):
            if chunk.counts is not None:
                yield chunk.counts
            chunks.append(chunk._replace(counts=None))
            if advance is not None:
                advance(b - a)

    try:
        with process_context().Pool(min(workers, len(bounds))) as pool:
            counts = merge_parts(received(pool.imap(_validate_chunk, jobs)))
    finally:
        _counter = None
    problems, records = _merge(chunks, str(path))
    after = os.stat(path)
    unchanged = (after.st_size, after.st_mtime_ns) == (before.st_size, before.st_mtime_ns)
    if fast is not None and sha256 is not None and unchanged:
        save(path, fast.spec, counts, sha256=sha256)
    state = Validator(str(path), rules, counter or CharCounter(), limit)
    state.records = records
    state.finish()
    return Report(
        file=str(path),
        provider=rules.provider,
        model=model,
        format=fmt,
        records=records,
        problems=[*problems, *state.problems],
    )


def validate_file(
    path: Path,
    rules: Rules,
    model: str | None = None,
    fmt: str | None = None,
    counter: TokenCounter | None = None,
    token_limit: int | None = None,
    **read_kw: Any,
) -> Report:
    """Read and validate ``path`` under ``rules``: big JSONL files across all CPUs, the rest in
    this process (the same report either way). InputError if the file is unusable."""
    name = resolve_format(path, fmt, read_kw.get("column_map"))
    report = validate_parallel(
        path, rules, model=model, fmt=name, counter=counter, token_limit=token_limit, **read_kw
    )
    if report is not None:
        return report
    return validate_serial(
        path, rules, fmt=name, model=model, counter=counter, token_limit=token_limit, **read_kw
    )
