"""Small file helpers shared by every writer and reader: atomic output, hashing, safe paths,
bounded line reading and advisory locks."""

from __future__ import annotations

import contextlib
import errno
import hashlib
import os
import re
import shutil
import signal
import stat
import tempfile
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import FrameType
from typing import IO, BinaryIO

from tuneport.errors import ConfigError, InputError

_CHUNK = 1 << 20
# The longest line (JSONL) or record (JSON array, CSV row) tuneport reads: 16 MiB. No provider
# takes an example anywhere near this (OpenAI: 65,536 tokens, about 0.3 MB of text), and the cap
# stops an endless input (a symlink to /dev/zero, a file without newlines) before it fills memory.
MAX_RECORD_BYTES = 16 << 20
MAX_RECORD_TEXT = "16 MiB"
# temp files and folders of atomic writes: ".<name>.tp<pid>-<random>.tmp" beside the output
_TMP_PREFIX = ".tp"
_STALE_TMP = re.compile(r"^\..*\.tp(\d+)-[A-Za-z0-9_]+\.tmp$")


def sha256_file(path: Path) -> str:
    """Hex SHA-256 of a file's bytes, read in 1 MiB chunks."""
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        while chunk := fh.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


# --- reading ------------------------------------------------------------------------------------


def require_file(path: Path) -> Path:
    """The path if it is a readable regular file (or a folder), else an :class:`InputError`.

    Pipes, FIFOs, sockets and devices (``/dev/stdin``, ``<(cat f)``, a ``.jsonl`` symlink to
    ``/dev/zero``) are refused: tuneport reads a dataset more than once (detect, validate,
    count), which a stream cannot give.
    """
    try:
        info = path.stat()
    except FileNotFoundError:
        raise InputError(f"{path}: no such file", hint="check the path") from None
    except OSError as exc:
        raise InputError(f"{path}: cannot read it: {exc.strerror}", hint="check the path") from None
    if stat.S_ISDIR(info.st_mode):
        return path
    if not stat.S_ISREG(info.st_mode):
        raise InputError(
            f"{path}: not a regular file (a pipe, FIFO, device or socket); tuneport reads a "
            "dataset more than once, which a stream cannot give",
            hint="save the data to a file first, e.g. `cat ... > data.jsonl`",
        )
    if not os.access(path, os.R_OK):
        raise InputError(f"{path}: not readable", hint="check the file's permissions")
    return path


def line_too_long(where: str) -> InputError:
    """The error for a line or record over :data:`MAX_RECORD_BYTES`."""
    return InputError(
        f"a single line or record is longer than {MAX_RECORD_TEXT} (tuneport's limit for one "
        "example); reading stopped",
        where=where,
        hint="split or shorten that example (no provider accepts one this large), or check "
        "that the file is a dataset",
    )


def read_line(fh: BinaryIO, *, where: str) -> bytes:
    """The next line of ``fh`` (with its end), ``b""`` at end of file; an :class:`InputError`
    naming ``where`` if it is longer than :data:`MAX_RECORD_BYTES`."""
    raw = fh.readline(MAX_RECORD_BYTES + 1)
    if len(raw) > MAX_RECORD_BYTES:
        raise line_too_long(where)
    return raw


def line_blocks(
    fh: BinaryIO, start: int, end: int, *, file: str, first_line: int = 1, block: int = 4 << 20
) -> Iterator[bytes]:
    """The bytes ``[start, end)`` of ``fh`` as blocks of whole lines of about ``block`` bytes.

    Memory stays at one block plus one line, however big the range; a line longer than
    :data:`MAX_RECORD_BYTES` raises an :class:`InputError` naming ``file:line``.
    """
    fh.seek(start)
    pos = start
    line = first_line
    carry = b""
    while pos < end:
        data = fh.read(min(block, end - pos))
        if not data:
            break
        pos += len(data)
        buf = carry + data if carry else data
        cut = buf.rfind(b"\n") + 1
        if cut == 0:
            carry = buf
            if len(carry) > MAX_RECORD_BYTES:
                raise line_too_long(f"{file}:{line}")
            continue
        if len(carry) + (data.find(b"\n") + 1) > MAX_RECORD_BYTES + 1:
            raise line_too_long(f"{file}:{line}")
        out = buf[:cut]
        carry = buf[cut:]
        line += out.count(b"\n")
        yield out
    if carry:
        if len(carry) > MAX_RECORD_BYTES:
            raise line_too_long(f"{file}:{line}")
        yield carry


# --- writing ------------------------------------------------------------------------------------


# What ``datasets.Dataset.save_to_disk`` writes (one dataset, as tuneport writes it): the only
# folder ``--force`` may replace, since replacing it loses nothing the next write does not remake.
_DATASET_FILES = re.compile(r"^(dataset_info\.json|state\.json|data-\d+-of-\d+\.arrow)$")


def is_saved_dataset(folder: Path) -> bool:
    """Whether ``folder`` holds exactly one saved Hugging Face dataset and nothing else."""
    try:
        entries = list(os.scandir(folder))
    except OSError:
        return False
    names = {e.name for e in entries}
    return (
        {"dataset_info.json", "state.json"} <= names
        and all(e.is_file(follow_symlinks=False) for e in entries)
        and all(_DATASET_FILES.match(name) for name in names)
    )


def _check_replaceable(out: Path, *, folder: bool) -> None:
    """Refuse (under ``--force``) to replace a folder that holds anything but a dataset that
    ``folder`` output would remake: ``--force`` replaces one output, never a folder of files."""
    if out.is_symlink() or not out.is_dir():
        return
    try:
        empty = next(os.scandir(out), None) is None
    except OSError as exc:
        raise _not_writable(out, exc) from None
    if empty or (folder and is_saved_dataset(out)):
        return
    what = "a dataset folder tuneport wrote" if folder else "a file"
    raise ConfigError(
        f"{out} is a folder with files in it; --force replaces only {what}, never a folder",
        hint="choose another output path with -o (e.g. a file name inside that folder)",
    )


def _check_writable(out: Path) -> None:
    """Refuse an output that cannot be written: the nearest existing folder above it must be a
    folder this process can create files in (tried for real where it is the output's own folder,
    so a read-only file system or a path under a file is refused before any work is done)."""
    parent = out.parent
    while not os.path.lexists(parent) and parent != parent.parent:
        parent = parent.parent
    if not parent.is_dir():
        raise ConfigError(
            f"cannot write {out}: {parent} is not a folder",
            hint="choose an output path in a folder you can write (-o PATH)",
        )
    if parent == out.parent:
        try:
            with tempfile.TemporaryFile(dir=parent, prefix=".tuneport-probe-"):
                pass
        except OSError as exc:
            raise _not_writable(out, exc) from None
    elif not os.access(parent, os.W_OK | os.X_OK):
        raise _not_writable(out, PermissionError(13, "Permission denied"))


def check_output(
    out: Path, *, force: bool, inputs: tuple[Path, ...] = (), folder: bool = False
) -> None:
    """Refuse to overwrite an input, an existing output without ``force``, a folder with files
    in it even with ``force`` (``folder``: the output is a dataset folder, which may replace one
    that :func:`is_saved_dataset`), and an output that cannot be written."""
    if out.name in ("", ".", ".."):
        raise ConfigError(
            f"output {str(out)!r} names a folder, not an output file",
            hint="name the output file, e.g. -o data.jsonl",
        )
    size = len(os.fsencode(out.name))
    if size > MAX_NAME_BYTES:
        raise ConfigError(
            f"the output name {out.name[:40]}... is {size} bytes long; at most {MAX_NAME_BYTES} "
            "(file names hold 255 bytes, and tuneport writes under a longer temp name first)",
            hint="choose a shorter output file name",
        )
    try:
        resolved = out.resolve()
        for src in inputs:
            if src.exists() and src.resolve() == resolved:
                raise ConfigError(
                    f"output {out} is the input file", hint="choose another path with -o"
                )
        exists = out.is_symlink() or out.exists()  # unlike os.path.lexists, these raise EACCES
    except OSError as exc:  # a folder on the way without search permission, a loop, ...
        raise _not_writable(out, exc) from None
    if exists:
        if not force:
            raise ConfigError(f"{out} already exists", hint="pass --force to overwrite it")
        _check_replaceable(out, folder=folder)
    _check_writable(out)


MAX_NAME_BYTES = 200
"""The longest output file name: 255 bytes (most file systems) less the temp name's extras."""


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        return True
    return True


def clean_stale_temps(folder: Path) -> list[Path]:
    """Remove what interrupted atomic writes left in ``folder`` (their process is gone).

    A SIGKILL (or a power cut) leaves a ``.NAME.tp<pid>-<random>.tmp`` file or folder; the next
    write into the same folder removes it. Returns what was removed.
    """
    removed: list[Path] = []
    try:
        entries = list(os.scandir(folder))
    except OSError:
        return removed
    for entry in entries:
        match = _STALE_TMP.match(entry.name)
        if match is None or int(match.group(1)) == os.getpid() or _alive(int(match.group(1))):
            continue
        target = Path(entry.path)
        if entry.is_dir(follow_symlinks=False):
            shutil.rmtree(target, ignore_errors=True)
        else:
            with contextlib.suppress(OSError):
                target.unlink()
        removed.append(target)
    return removed


def _not_writable(out: Path, exc: OSError) -> ConfigError:
    reason = exc.strerror or str(exc)
    if exc.errno in _FULL:
        return ConfigError(
            f"cannot write {out}: {reason}; nothing was written",
            hint=f"free space on {out.parent} or write elsewhere (-o PATH)",
        )
    return ConfigError(
        f"cannot write {out}: {reason}",
        hint="choose an output path in a folder you can write (-o PATH)",
    )


_FULL = {errno.ENOSPC, errno.EDQUOT, errno.EFBIG}
"""A write that failed for want of room (disk full, quota, file too large)."""


@contextmanager
def _terminate_as_exit() -> Iterator[None]:
    """While a file is being written, SIGTERM unwinds like an exception (so the temp file is
    removed) instead of killing the process on the spot."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    try:
        previous = signal.getsignal(signal.SIGTERM)
    except (ValueError, OSError):  # pragma: no cover - no signals here
        yield
        return
    if previous not in (signal.SIG_DFL, None):
        yield  # someone else handles SIGTERM
        return

    def stop(signum: int, frame: FrameType | None) -> None:
        raise SystemExit(128 + signum)

    signal.signal(signal.SIGTERM, stop)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


@contextmanager
def atomic_path(
    out: Path, *, force: bool = False, inputs: tuple[Path, ...] = (), folder: bool = False
) -> Iterator[Path]:
    """Yield a fresh temp path beside ``out`` (write a file or, with ``folder``, a folder there).

    On success it is renamed onto ``out`` (replacing an existing one only with ``force``, and
    never a folder with files in it, see :func:`check_output`); on any error, Ctrl-C or SIGTERM
    it is removed and ``out`` is left untouched. What a SIGKILL left behind is removed by the
    next write into the same folder.
    """
    check_output(out, force=force, inputs=inputs, folder=folder)
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        clean_stale_temps(out.parent)
        tmp = Path(
            tempfile.mkdtemp(
                prefix=f".{out.name}{_TMP_PREFIX}{os.getpid()}-", suffix=".tmp", dir=out.parent
            )
        )
    except OSError as exc:
        raise _not_writable(out, exc) from None
    target = tmp / out.name
    try:
        with _terminate_as_exit():
            try:
                yield target
            except OSError as exc:  # the disk filled up while writing
                if exc.errno not in _FULL:
                    raise
                raise _not_writable(out, exc) from None
            _check_replaceable(out, folder=folder)  # again: it may have changed meanwhile
            try:
                if out.is_dir():  # an empty or dataset folder, or a link (moved, not followed)
                    os.replace(out, tmp / ".old")
                os.replace(target, out)
            except OSError as exc:
                raise _not_writable(out, exc) from None
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


# --- locks --------------------------------------------------------------------------------------


@contextmanager
def try_lock(path: Path, *, remove: bool = False) -> Iterator[bool]:
    """Hold an exclusive advisory lock on ``path`` if no other process holds it.

    Yields ``True`` when this process got the lock (kept until the block ends; a killed process
    loses it at once), ``False`` when another process holds it. With ``remove`` the lock file is
    deleted when the block ends, so lock files do not pile up; a process that opened the old
    file meanwhile notices that it is no longer the one at ``path`` and takes the new one.
    Where the platform has no ``fcntl`` (Windows), always ``True``.
    """
    try:
        import fcntl
    except ImportError:  # pragma: no cover - Windows
        yield True
        return
    while True:
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
        except OSError as exc:  # a read-only folder, a full disk, a file where the folder goes
            raise ConfigError(
                f"cannot create the lock file {path}: {exc.strerror or exc}",
                hint=f"make {path.parent} writable (chmod u+w {path.parent}) or set "
                "TUNEPORT_HOME to a writable folder",
            ) from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            yield False
            return
        if still_at(fd, path):
            break
        os.close(fd)  # its holder removed it after we opened it: lock the current file
    try:
        yield True
    finally:
        if remove:  # unlinked while still held: nobody can lock a file that is gone
            with contextlib.suppress(FileNotFoundError):
                path.unlink()
        fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)


def still_at(fd: int, path: Path) -> bool:
    """Whether the open file ``fd`` is still the file at ``path`` (not removed or replaced)."""
    try:
        now = path.stat()
    except FileNotFoundError:
        return False
    mine = os.fstat(fd)
    return (mine.st_dev, mine.st_ino) == (now.st_dev, now.st_ino)
