"""Token counts of a data file remembered between commands (``$TUNEPORT_HOME/cache/counts``).

``tuneport validate FILE --model M`` already counts every example exactly (for the per-example
limit); it stores the counts here so that ``tuneport estimate FILE`` with the same counter does
not tokenize the file a second time. An entry holds what :func:`tuneport.tokens.count_jsonl`
returns for the file (one integer per example, the lines only when they are not simply
1..n, the skipped lines, the number of examples with tools) and is served only when the file's
size and full SHA-256 still match and the counter's ``spec`` is the same: any change to the file
means a recount. Entries are one small file per (path, counter); writing is best effort (a
read-only home just means no cache).
"""

from __future__ import annotations

import hashlib
import os
import sys
from array import array
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from tuneport import paths
from tuneport.tokens.counter import Counts


@dataclass(frozen=True)
class Remembered:
    """An exact online count (``estimate --online``) kept in this cache under ``spec``: a
    backend's offline counter names it (its ``remembered`` attribute) so that a later ``train``
    or ``estimate`` of the same, unchanged file uses the exact counts instead of approximating.
    Stands for the online counter in the estimate (exact, its label); counts nothing itself."""

    spec: tuple[Any, ...]
    label: str
    exact: bool = True
    error_band: float | None = None

    def count(self, record: Any) -> int:
        raise TypeError(f"{self.label} counts whole files only")

    def count_text(self, text: str) -> int:
        raise TypeError(f"{self.label} counts whole files only")


def remembered(path: Path, counter: Any) -> Counts | None:
    """The exact counts of ``path`` that ``counter``'s ``remembered`` online count left here,
    marked with it (``Counts.counted_by``), or ``None``."""
    spec: Remembered | None = getattr(counter, "remembered", None)
    if spec is None or not path.is_file():
        return None
    counts = load(path, spec.spec)
    if counts is not None:
        counts.counted_by = spec
    return counts


VERSION = 2  # bump when counting rules change: older entries are then ignored
_ITEM = array("q").itemsize


def cache_dir() -> Path:
    return paths.cache_dir("counts")


def file_sha256(path: Path) -> str:
    with path.open("rb") as fh:
        return hashlib.file_digest(fh, "sha256").hexdigest()


def _entry(path: Path, spec: tuple[Any, ...]) -> Path:
    key = orjson.dumps([str(path.resolve()), list(spec)])
    return cache_dir() / f"{hashlib.blake2b(key, digest_size=16).hexdigest()}.counts"


def _native(data: array[int]) -> bytes:
    if sys.byteorder != "little":
        data = array("q", data)
        data.byteswap()
    return data.tobytes()


def _from_native(raw: bytes) -> array[int]:
    data = array("q")
    data.frombytes(raw)
    if sys.byteorder != "little":
        data.byteswap()
    return data


def _consecutive(lines: array[int]) -> bool:
    """Whether ``lines`` is 1, 2, ..., n (compared in slices: no list of n ints)."""
    step = 1 << 16
    for start in range(0, len(lines), step):
        part = lines[start : start + step]
        if part != array("q", range(start + 1, start + 1 + len(part))):
            return False
    return True


def _write_native(fh: Any, data: array[int]) -> None:
    if sys.byteorder == "little":
        data.tofile(fh)  # no copy
    else:
        fh.write(_native(data))


def save(path: Path, spec: tuple[Any, ...], counts: Counts, *, sha256: str | None = None) -> None:
    """Remember ``counts`` of ``path`` (as it is now, or as hashed to ``sha256``)."""
    try:
        size = path.stat().st_size
        digest = sha256 or file_sha256(path)
        n = len(counts.tokens)
        consecutive = _consecutive(counts.lines)
        header = {
            "version": VERSION,
            "spec": list(spec),
            "size": size,
            "sha256": digest,
            "examples": n,
            "lines": not consecutive,
            "skipped": counts.skipped,
            "tool_examples": counts.tool_examples,
        }
        entry = _entry(path, spec)
        entry.parent.mkdir(parents=True, exist_ok=True)
        tmp = entry.with_name(f"{entry.name}.{os.getpid()}.tmp")
        with tmp.open("wb") as fh:  # written piece by piece: no second copy of the counts
            fh.write(orjson.dumps(header) + b"\n")
            _write_native(fh, counts.tokens)
            if not consecutive:
                _write_native(fh, counts.lines)
        tmp.replace(entry)
    except OSError:
        return


def load(path: Path, spec: tuple[Any, ...]) -> Counts | None:
    """The remembered counts of ``path`` for ``spec``, or ``None`` (none, or the file changed)."""
    try:
        raw = _entry(path, spec).read_bytes()
        size = path.stat().st_size
    except OSError:
        return None
    head, sep, body = raw.partition(b"\n")
    try:
        header = orjson.loads(head)
    except orjson.JSONDecodeError:
        return None
    if (
        not sep
        or not isinstance(header, dict)
        or header.get("version") != VERSION
        or header.get("spec") != list(orjson.loads(orjson.dumps(list(spec))))
        or header.get("size") != size
    ):
        return None
    n = header.get("examples")
    if not isinstance(n, int) or len(body) != n * _ITEM * (2 if header.get("lines") else 1):
        return None
    try:
        if header.get("sha256") != file_sha256(path):
            return None
    except OSError:
        return None
    tokens = _from_native(body[: n * _ITEM])
    lines = _from_native(body[n * _ITEM :]) if header["lines"] else array("q", range(1, n + 1))
    return Counts(
        tokens=tokens,
        lines=lines,
        skipped=[int(x) for x in header.get("skipped", [])],
        tool_examples=int(header.get("tool_examples", 0)),
    )
