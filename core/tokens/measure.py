"""The one counting path: per-example token counts of a data file of any layout.

``validate``, ``estimate``, ``plan``, ``train`` and ``eval`` all count through
:func:`count_path`. A JSONL file of canonical or OpenAI chat/DPO lines with a counter that reads
raw lines (tiktoken, the o200k approximation) takes the fast path: worker processes for big
files and the counts ``validate --model`` left in the count cache. Every other layout (JSON
array, Alpaca/ShareGPT JSON, CSV/TSV/Parquet, HF folders) and counter reads records through the
importers. Both give the same numbers for the same records (tests/test_counting_path.py).
A counter that counts whole files (:class:`~tuneport.tokens.counter.FileCounter`, e.g. an online
counter that asks the provider) gets the file itself.
"""

from __future__ import annotations

from pathlib import Path

import orjson

from tuneport.data.detect import container
from tuneport.data.reading import iter_jsonl
from tuneport.data.records import read_records, resolve_format
from tuneport.errors import InputError
from tuneport.tokens import cache
from tuneport.tokens.counter import Counts, FileCounter, TokenCounter, uses_tools
from tuneport.tokens.fast import count_jsonl, fast_counter

# Record formats whose JSONL lines the raw counters understand (same numbers as the records).
FAST_FORMATS = ("canonical", "openai", "openai-dpo")


def count_path(
    path: Path,
    counter: TokenCounter,
    *,
    fmt: str | None = None,
    workers: int | None = None,
    column_map: dict[str, str] | None = None,
    system: str | None = None,
) -> Counts:
    """Per-example token counts of the data file ``path`` (any supported layout)."""
    if not path.exists():
        raise InputError(f"{path}: no such file", hint="check the path")
    name = resolve_format(path, fmt, column_map)
    if column_map is None and system is None:
        exact = cache.remembered(path, counter)  # an earlier `estimate --online` of this file
        if exact is not None:
            return exact
    if isinstance(counter, FileCounter) and column_map is None and system is None:
        return counter.count_file(path, name)  # counts the file as a whole (online counters)
    fast = fast_counter(counter)
    if (
        fast is not None
        and name in FAST_FORMATS
        and path.is_file()
        and container(path) is iter_jsonl  # the file layout, not only the record format
    ):
        cached = cache.load(path, fast.spec)
        if cached is not None:
            return cached
        before = path.stat()
        sha256 = cache.file_sha256(path)
        counts = count_jsonl(path, fast, workers=workers)
        if counts.skipped and _kto_row(path, counts.skipped):  # refused by the readers
            return _count_records(path, counter, name, column_map, system)
        after = path.stat()
        if (after.st_size, after.st_mtime_ns) == (before.st_size, before.st_mtime_ns):
            cache.save(path, fast.spec, counts, sha256=sha256)
        return counts
    return _count_records(path, counter, name, column_map, system)


def _kto_row(path: Path, skipped: list[int]) -> bool:
    """Whether one of the ``skipped`` lines of ``path`` is a KTO row (a true/false
    ``label``), which the fast path leaves out and the readers refuse."""
    wanted = set(skipped)
    last = max(wanted)
    with path.open("rb") as fh:
        for number, raw in enumerate(fh, 1):
            if number in wanted and b'"label"' in raw:
                try:
                    obj = orjson.loads(raw.removeprefix(b"\xef\xbb\xbf"))
                except orjson.JSONDecodeError:
                    continue
                if isinstance(obj, dict) and isinstance(obj.get("label"), bool):
                    return True
            if number >= last:
                break
    return False


def _count_records(
    path: Path,
    counter: TokenCounter,
    name: str,
    column_map: dict[str, str] | None,
    system: str | None,
) -> Counts:
    counts = Counts()
    for row in read_records(path, name, column_map=column_map, system=system):
        if row.record is None:
            counts.skipped.append(row.line)
            continue
        counts.tokens.append(counter.count(row.record))
        counts.lines.append(row.line)
        counts.tool_examples += uses_tools(row.record)
    return counts
