"""``-`` as a file name: read the data from stdin, write the output to stdout.

tuneport's readers take paths (they detect the format, seek, count lines and read across all
cores), so stdin is streamed in 1 MiB chunks into a file in a private temporary folder (mode
0700, deleted afterwards) and read from there: memory stays flat whatever the size. Messages and
reports name it ``<stdin>``, never the temporary path. Output to ``-`` is written the usual way
(atomically, to a private temporary file) and then copied to stdout.
"""

from __future__ import annotations

import shutil
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

from tuneport.errors import ConfigError, InputError, TuneportError

STDIO = "-"
STDIN_NAME = "<stdin>"
STDOUT_NAME = "<stdout>"
CHUNK = 1 << 20

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
    folder = Path(tempfile.mkdtemp(prefix="tuneport-stdin-"))
    spool = folder / "stdin"
    try:
        source: Any = getattr(sys.stdin, "buffer", None)
        with spool.open("wb") as fh:
            if source is not None:
                shutil.copyfileobj(source, fh, CHUNK)
            else:  # a text-only stdin (embedding applications)
                for chunk in iter(lambda: sys.stdin.read(CHUNK), ""):
                    fh.write(chunk.encode("utf-8"))
        try:
            yield spool
        except TuneportError as exc:
            _rename(exc, str(spool), STDIN_NAME)
            raise
    finally:
        shutil.rmtree(folder, ignore_errors=True)


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
