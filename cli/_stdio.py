"""``-`` as a file name: read the data from stdin, write the output to stdout.

tuneport's readers take paths (they detect the format, seek, count lines and read across all
cores), so stdin is streamed in 1 MiB chunks into a file in a private temporary folder (mode
0700, deleted afterwards) and read from there: memory stays flat whatever the size. Messages and
reports name it ``<stdin>``, never the temporary path. Output to ``-`` is written the usual way
(atomically, to a private temporary file) and then copied to stdout.
"""

from __future__ import annotations

import os
import re
import shutil
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any, TypeVar

from tuneport.errors import ConfigError, InputError, TuneportError
from tuneport.files import MAX_RECORD_BYTES, line_too_long

STDIO = "-"
STDIN_NAME = "<stdin>"
STDOUT_NAME = "<stdout>"
CHUNK = 1 << 20
# The most data ``-`` takes from a pipe (it is kept in a temporary file): an endless stream
# (`< /dev/zero`, `yes | ...`) stops here instead of filling the disk. A file has no such limit.
STDIN_MAX_ENV = "TUNEPORT_STDIN_MAX"
DEFAULT_STDIN_MAX = 4 << 30

M = TypeVar("M")


def is_stdio(path: Path | str | None) -> bool:
    return path is not None and str(path) == STDIO


def _rename(exc: TuneportError, old: str, new: str) -> None:
    exc.message = exc.message.replace(old, new)
    if exc.hint:
        exc.hint = exc.hint.replace(old, new)
    if exc.where:
        exc.where = exc.where.replace(old, new)
    for inner in getattr(exc, "separate", []):
        _rename(inner, old, new)


@contextmanager
def reading(path: Path) -> Iterator[Path]:
    """``path``, or for ``-`` a private spool file holding stdin (removed afterwards)."""
    if not is_stdio(path):
        yield path
        return
    if sys.stdin is None or sys.stdin.isatty():
        raise InputError(
            "'-' reads the data from stdin, but nothing is piped in",
            hint="pipe a file in, e.g. `cat data.jsonl | tuneport validate -`",
        )
    limit = stdin_limit()
    folder = Path(tempfile.mkdtemp(prefix="tuneport-stdin-"))
    spool = folder / "stdin"
    try:
        source: Any = getattr(sys.stdin, "buffer", None)
        if source is not None:
            chunks: Iterator[bytes] = iter(lambda: source.read(CHUNK), b"")
        else:  # a text-only stdin (embedding applications)
            chunks = (c.encode("utf-8") for c in iter(lambda: sys.stdin.read(CHUNK), ""))
        try:
            with spool.open("wb") as fh:
                _spool(chunks, fh, limit)
        except OSError as exc:
            raise InputError(
                f"cannot keep stdin in a temporary file: {exc.strerror or exc}",
                hint="free space in the temporary folder ($TMPDIR), or save the data to a file "
                "and pass its path",
            ) from None
        try:
            yield spool
        except TuneportError as exc:
            _rename(exc, str(spool), STDIN_NAME)
            raise
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def stdin_limit() -> int:
    """The most bytes ``-`` reads from stdin: ``$TUNEPORT_STDIN_MAX`` (bytes, or with a unit:
    ``512M``, ``8GiB``), default :data:`DEFAULT_STDIN_MAX`."""
    raw = os.environ.get(STDIN_MAX_ENV, "").strip()
    if not raw:
        return DEFAULT_STDIN_MAX
    match = re.fullmatch(r"(\d+)\s*([kmgt]?)(?:i?b)?", raw, re.IGNORECASE)
    if match is None or int(match.group(1)) <= 0:
        raise ConfigError(
            f"{STDIN_MAX_ENV}={raw!r} is not a size",
            hint=f"e.g. {STDIN_MAX_ENV}=8GiB (bytes, or with K, M, G or T)",
        )
    return int(match.group(1)) << (10 * " kmgt".index(match.group(2).lower() or " "))


def _spool(chunks: Iterator[bytes], fh: IO[bytes], limit: int) -> None:
    """Copy ``chunks`` to ``fh``, stopping with an :class:`InputError` past ``limit`` bytes in
    all, or (JSONL: data that does not open with ``[``) at a line over the record cap."""
    total = 0
    newlines = 0
    run = 0  # bytes since the last line end
    lines: bool | None = None  # JSONL-like (line cap applies); None until the first data byte
    for chunk in chunks:
        total += len(chunk)
        if total > limit:
            raise InputError(
                f"stdin holds more than {_size(limit)}, tuneport's limit for data read from a "
                "pipe; reading stopped",
                where=STDIN_NAME,
                hint=f"save the data to a file and pass its path, or raise {STDIN_MAX_ENV} "
                "(e.g. 16GiB)",
            )
        if lines is None and chunk.strip(b" \t\r\n\xef\xbb\xbf"):
            lines = not chunk.lstrip(b" \t\r\n\xef\xbb\xbf").startswith(b"[")
        first = chunk.find(b"\n")
        if first < 0:
            run += len(chunk)
        else:
            if lines and run + first > MAX_RECORD_BYTES:
                raise line_too_long(f"{STDIN_NAME}:{newlines + 1}")
            newlines += chunk.count(b"\n")
            run = len(chunk) - chunk.rfind(b"\n") - 1
        if lines and run > MAX_RECORD_BYTES:
            raise line_too_long(f"{STDIN_NAME}:{newlines + 1}")
        fh.write(chunk)


def _size(n: int) -> str:
    for unit, shift in (("GiB", 30), ("MiB", 20), ("KiB", 10)):
        if n >= 1 << shift and n % (1 << shift) == 0:
            return f"{n >> shift} {unit}"
    return f"{n:,} bytes"


def renamed(model: M, spool: Path, original: Path) -> M:
    """A pydantic result (report, summary) naming ``<stdin>`` instead of the spool file."""
    if not is_stdio(original):
        return model
    dump = getattr(model, "model_dump_json", None)
    if dump is None:
        return model
    text = dump().replace(str(spool), STDIN_NAME)
    result: M = type(model).model_validate_json(text)  # type: ignore[attr-defined]
    return result


def text(value: str, spool: Path, original: Path) -> str:
    return value.replace(str(spool), STDIN_NAME) if is_stdio(original) else value


@contextmanager
def writing(path: Path, *, folder_output: bool = False) -> Iterator[Path]:
    """``path``, or for ``-`` a private file whose bytes go to stdout once it is complete.

    ``folder_output``: the target writes a folder (a Hugging Face dataset), which cannot go to
    stdout.
    """
    if not is_stdio(path):
        yield path
        return
    if folder_output:
        raise ConfigError(
            "this target writes a folder (a Hugging Face dataset), not a stream",
            hint="pass -o FOLDER instead of -o -",
        )
    folder = Path(tempfile.mkdtemp(prefix="tuneport-stdout-"))
    try:
        out = folder / "stdout.jsonl"
        yield out
        sys.stdout.flush()
        target: Any = getattr(sys.stdout, "buffer", None)
        try:
            with out.open("rb") as fh:
                if target is not None:
                    shutil.copyfileobj(fh, target, CHUNK)
                    target.flush()
                else:
                    for chunk in iter(lambda: fh.read(CHUNK), b""):
                        sys.stdout.write(chunk.decode("utf-8"))
                    sys.stdout.flush()
        except BrokenPipeError:  # `... -o - | head`: the reader has what it wanted
            _quiet_stdout()
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def _quiet_stdout() -> None:
    """After a closed pipe, point stdout at /dev/null so the exit flush raises nothing."""
    import os

    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (OSError, ValueError):  # not a real file descriptor (tests): nothing to flush
        pass
