"""Small file helpers shared by every writer: atomic output, hashing, safe paths."""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO

from tuneport.errors import ConfigError, InputError

_CHUNK = 1 << 20


def sha256_file(path: Path) -> str:
    """Hex SHA-256 of a file's bytes, read in 1 MiB chunks."""
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        while chunk := fh.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def check_output(out: Path, *, force: bool, inputs: tuple[Path, ...] = ()) -> None:
    """Refuse to overwrite an input, or an existing output without ``force``."""
    resolved = out.resolve()
    for src in inputs:
        if src.exists() and src.resolve() == resolved:
            raise ConfigError(f"output {out} is the input file", hint="choose another path with -o")
    if out.exists() and not force:
        raise ConfigError(f"{out} already exists", hint="pass --force to overwrite it")


@contextmanager
def atomic_path(out: Path, *, force: bool = False, inputs: tuple[Path, ...] = ()) -> Iterator[Path]:
    """Yield a fresh temp path beside ``out`` (write a file or a folder there).

    On success it is renamed onto ``out`` (replacing an existing one only with ``force``); on
    any error it is removed and ``out`` is left untouched.
    """
    check_output(out, force=force, inputs=inputs)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", suffix=".tmp", dir=out.parent))
    target = tmp / out.name
    try:
        yield target
        if out.is_dir():
            old = tmp / ".old"
            os.replace(out, old)
        os.replace(target, out)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


@contextmanager
def atomic_writer(
    out: Path, *, force: bool = False, inputs: tuple[Path, ...] = ()
) -> Iterator[IO[str]]:
    """Open a UTF-8 text file (``\\n`` newlines) that appears at ``out`` only on success."""
    with (
        atomic_path(out, force=force, inputs=inputs) as tmp,
        tmp.open("w", encoding="utf-8", newline="\n") as fh,
    ):
        yield fh
        fh.flush()
        os.fsync(fh.fileno())


def require_file(path: Path) -> Path:
    """The path if it is a readable file, else an :class:`InputError` saying so."""
    if not path.exists():
        raise InputError(f"{path}: no such file", hint="check the path")
    if path.is_dir():
        return path
    if not os.access(path, os.R_OK):
        raise InputError(f"{path}: not readable", hint="check the file's permissions")
    return path
