"""Fast whole-file counting: raw JSONL lines counted in worker processes.

Large JSONL files in an OpenAI-shaped layout are counted by :func:`count_jsonl` in worker
processes, each over a byte range of whole lines (:func:`count_chunk`). Workers fork when this
process runs no other thread (they inherit the loaded encoding) and spawn otherwise (they rebuild
the counter from its ``spec``).
"""

from __future__ import annotations

import itertools
import os
import threading
from array import array
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, TypeAlias

import orjson

from tuneport.data.reading import json_issue
from tuneport.errors import InputError
from tuneport.files import line_blocks, read_line
from tuneport.tokens.approx import ScaledTextCounter
from tuneport.tokens.bpe import TiktokenChatCounter
from tuneport.tokens.counter import Counts, TokenCounter

if TYPE_CHECKING:
    from multiprocessing.context import BaseContext

PARALLEL_MIN_BYTES = 8 << 20
_CHUNK_TARGET = 4 << 20


class RawCounter(TokenCounter, Protocol):
    """A counter that also counts parsed JSONL lines and can be rebuilt from ``spec``."""

    spec: tuple[Any, ...]

    def count_raw(self, obj: Any) -> int | None: ...


def rebuild_counter(spec: tuple[Any, ...]) -> RawCounter:
    kind, *args = spec
    builders: dict[str, Callable[..., RawCounter]] = {
        "tiktoken": lambda name, exact, band, tools=None: TiktokenChatCounter(
            name, exact=exact, band=band, tools=tools
        ),
        "scaled": ScaledTextCounter,
    }
    return builders[kind](*args)


_worker_counter: RawCounter | None = None


def chunk_bounds(path: Path, parts: int) -> list[tuple[int, int]]:
    """Byte ranges of about equal size that start and end on line boundaries."""
    size = path.stat().st_size
    if parts <= 1 or size == 0:
        return [(0, size)]
    cuts = [0]
    with path.open("rb") as fh:
        for i in range(1, parts):
            pos = size * i // parts
            if pos <= cuts[-1]:
                continue
            fh.seek(pos)
            read_line(fh, where=f"{path} (byte {pos})")  # move to the next line start
            nxt = fh.tell()
            if nxt >= size:
                break
            if nxt > cuts[-1]:
                cuts.append(nxt)
    cuts.append(size)
    return list(itertools.pairwise(cuts))


Part: TypeAlias = "tuple[array[int], array[int], list[int], int, int]"


def count_lines(counter: RawCounter, data: bytes) -> Part:
    """Count each line of ``data``.

    Returns (tokens, their 1-based local lines, skipped lines, number of lines, examples with
    tools). A line is skipped when the readers would not make it a record: a KTO row (a
    true/false ``label``), not JSON (orjson
    also refuses ``NaN``/``Infinity`` and too deep nesting), no chat/preference layout, or a
    key given twice in one object (:func:`~tuneport.data.reading.json_issue`; the importer
    path refuses it too), so every layout and every command counts the same examples.
    """
    tokens: array[int] = array("q")
    lines: array[int] = array("q")
    skipped: list[int] = []
    tools = 0
    loads = orjson.loads
    issue = json_issue
    count_raw = counter.count_raw
    n_lines = 0
    for n_lines, raw in enumerate(data.split(b"\n"), 1):
        try:
            obj = loads(raw)
        except orjson.JSONDecodeError:
            if not raw.strip():  # blank line (orjson refuses empty input)
                continue
            if not raw.startswith(b"\xef\xbb\xbf"):
                skipped.append(n_lines)
                continue
            try:
                obj = loads(raw[3:])
            except orjson.JSONDecodeError:
                skipped.append(n_lines)
                continue
            if issue(raw[3:], obj) is not None:
                skipped.append(n_lines)
                continue
        else:
            if issue(raw, obj) is not None:  # a key given twice: no record (see the docstring)
                skipped.append(n_lines)
                continue
        # a KTO row (a true/false "label"): the readers refuse it or leave it out, never count it
        n = None if type(obj) is dict and type(obj.get("label")) is bool else count_raw(obj)
        if n is None:
            skipped.append(n_lines)
            continue
        tokens.append(n)
        lines.append(n_lines)
        if b'"tool' in raw:  # "tools" / "tool_calls" (or the text: an over-estimate, only a hint)
            tools += 1
    if data.endswith(b"\n"):
        n_lines -= 1
    return tokens, lines, skipped, n_lines, tools


def count_chunk(job: tuple[str, int, int, tuple[Any, ...]]) -> Part:
    path, start, end, spec = job
    global _worker_counter
    if _worker_counter is None or _worker_counter.spec != spec:
        _worker_counter = rebuild_counter(spec)
    tokens: array[int] = array("q")
    lines: array[int] = array("q")
    skipped: list[int] = []
    n_lines = tools = 0
    with open(path, "rb") as fh:  # block by block: memory stays flat however big the range
        for block in line_blocks(fh, start, end, file=path):
            b_tokens, b_lines, b_skipped, b_n, b_tools = count_lines(_worker_counter, block)
            tokens.extend(b_tokens)
            lines.extend(array("q", (n_lines + ln for ln in b_lines)) if n_lines else b_lines)
            skipped.extend(n_lines + ln for ln in b_skipped)
            n_lines += b_n
            tools += b_tools
    return tokens, lines, skipped, n_lines, tools


def merge_parts(parts: Iterable[Part]) -> Counts:
    counts = Counts()
    offset = 0
    for tokens, lines, skipped, n_lines, tools in parts:
        counts.tool_examples += tools
        counts.tokens.extend(tokens)
        counts.lines.extend(array("q", (offset + ln for ln in lines)) if offset else lines)
        counts.skipped.extend(offset + ln for ln in skipped)
        offset += n_lines
    return counts


def process_context() -> BaseContext:
    """``fork`` when this process runs no other thread (workers inherit the loaded encoding),
    else ``spawn``: forking a multi-threaded process can copy a lock some thread holds and
    deadlock the worker (seen with test servers running in threads)."""
    import multiprocessing as mp

    if "fork" in mp.get_all_start_methods() and threading.active_count() == 1:
        return mp.get_context("fork")
    return mp.get_context("spawn")


def default_workers() -> int:
    return max(1, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else 1)


def count_jsonl(path: Path, counter: RawCounter, *, workers: int | None = None) -> Counts:
    """Count a JSONL file of chat/preference records (canonical or OpenAI layout) fast.

    Files of :data:`PARALLEL_MIN_BYTES` or more are split into byte ranges of whole lines and
    counted in ``workers`` processes (default: the usable CPUs); smaller ones in this process.
    Lines that are not JSON records are listed in ``Counts.skipped``.
    """
    try:
        size = path.stat().st_size
    except OSError as exc:
        raise InputError(f"{path}: {exc.strerror}", hint="check the path") from None
    workers = workers or default_workers()
    global _worker_counter
    if workers <= 1 or size < PARALLEL_MIN_BYTES:
        _worker_counter = counter
        return merge_parts([count_chunk((str(path), 0, size, counter.spec))])
    # several chunks per worker (load balance on shared cores), ~4 MiB each for big files
    parts = max(4 * workers, min(16 * workers, size // _CHUNK_TARGET))
    bounds = chunk_bounds(path, parts)
    jobs = [(str(path), a, b, counter.spec) for a, b in bounds]
    counter.count_text("")  # load the encoding here: forked workers inherit it
    _worker_counter = counter  # inherited by forked workers: no second encoding load
    with process_context().Pool(min(workers, len(jobs))) as pool:
        return merge_parts(pool.imap(count_chunk, jobs))


def fast_counter(counter: TokenCounter) -> RawCounter | None:
    """``counter`` if it can count raw JSONL lines (:func:`count_jsonl`), else ``None``."""
    return counter if isinstance(counter, TiktokenChatCounter | ScaledTextCounter) else None
