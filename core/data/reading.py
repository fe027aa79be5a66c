"""Streamed readers: JSONL, JSON arrays, CSV/TSV, Parquet and Arrow folders → raw rows.

Each reader yields :class:`RawRow` values (source line, decoded JSON value or :data:`NO_VALUE`,
problems)
and never holds more than one record (plus one read buffer) in memory. Byte-level issues — BOM,
CRLF, blank lines, non-UTF-8 bytes, JSON syntax — become problems located to ``file:line``, and
so do what JSON readers would otherwise change silently: a key given twice in one object (the
last one would win), ``NaN``/``Infinity`` (not JSON; they would become ``null``) and nesting
deeper than the readers allow. A line or record longer than
:data:`~tuneport.files.MAX_RECORD_BYTES` stops reading with an :class:`InputError`.
"""

from __future__ import annotations

import codecs
import csv
import json
import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, NamedTuple

import orjson

from tuneport.data.rows import problem
from tuneport.errors import InputError
from tuneport.files import MAX_RECORD_BYTES, line_too_long, read_line
from tuneport.schemas import Problem

_BOM = b"\xef\xbb\xbf"
_CHUNK = 1 << 20
_SURROGATE = re.compile("[\udc80-\udcff]")
# How close to the end of the buffer a JSON error may be and still mean "read more".
_TAIL = 8

Advance = Callable[[int], None]


class _NoValue:
    """Marks a row that holds no JSON value (blank line, syntax error); JSON null is ``None``."""

    def __repr__(self) -> str:
        return "NO_VALUE"


NO_VALUE: Any = _NoValue()


class RawRow(NamedTuple):
    """A decoded JSON value (or table row as a dict) before it becomes a record."""

    line: int
    value: Any
    problems: list[Problem]


def _noop(_: int) -> None:
    pass


class JsonIssue(ValueError):
    """A JSON text that parses but would lose or change data (a problem ``kind`` + message)."""

    def __init__(self, kind: str, message: str) -> None:
        super().__init__(message)
        self.kind = kind
        self.message = message


def _unique_pairs(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    obj = dict(pairs)
    if len(obj) != len(pairs):
        seen: set[str] = set()
        for key, _ in pairs:
            if key in seen:
                raise JsonIssue(
                    "duplicate_key", f"key {key!r} appears twice in one object (the last would win)"
                )
            seen.add(key)
    return obj


def _no_constant(name: str) -> Any:
    raise JsonIssue("non_finite_number", f"{name} is not a JSON number (it would become null)")


# The stdlib decoder, strict: duplicate keys and NaN/Infinity raise JsonIssue.
STRICT_JSON = json.JSONDecoder(object_pairs_hook=_unique_pairs, parse_constant=_no_constant)
_TOO_DEEP = "nested deeper than JSON readers allow"


def json_issue(text: str | bytes, value: Any, *, constants: bool = False) -> JsonIssue | None:
    """What a lenient decoder lost or changed in decoding ``text`` to ``value``: a duplicate
    key (orjson and the stdlib keep the last one silently) or, with ``constants``, a
    ``NaN``/``Infinity`` (the stdlib accepts them); ``None`` when nothing.

    Cheap for the common case, without a second parse. ``value`` re-encoded has no duplicate
    key, so when ``text`` is exactly that encoding (compact JSON as orjson and most writers of
    big files produce it; one comparison) nothing was dropped. Else a dropped duplicate takes
    at least its ``:`` with it, so when the re-encoding has as many colons as ``text`` (and
    ``text`` spells no colon as a ``\\u003a`` escape) nothing was dropped either. Otherwise
    the strict decoder decides. (orjson itself refuses ``NaN``/``Infinity`` and nesting
    deeper than 1024, so those cost nothing here for JSONL lines.)
    """
    if value.__class__ is not dict and value.__class__ is not list:
        return None
    suspect = constants and (
        (b"NaN" in text or b"Infinity" in text)
        if isinstance(text, bytes)
        else ("NaN" in text or "Infinity" in text)
    )
    if not suspect:
        try:
            again = orjson.dumps(value)
        except TypeError:  # nested deeper than orjson writes: decide with the strict decoder
            pass
        else:
            if isinstance(text, bytes):
                if text.startswith(again) and not text[len(again) :].strip():
                    return None  # the same JSON text: no key was dropped
                colons, escaped = text.count(b":"), b"\\u003" in text
            else:
                colons, escaped = text.count(":"), "\\u003" in text
            if again.count(b":") == colons and not escaped:
                return None
    if isinstance(text, bytes):
        text = text.decode("utf-8", errors="replace")
    try:
        STRICT_JSON.decode(text)
    except JsonIssue as exc:
        return exc
    except RecursionError:
        return JsonIssue("too_deep", _TOO_DEEP)
    except ValueError:  # pragma: no cover - orjson accepted it
        return None
    return None


def _bad_json(exc: orjson.JSONDecodeError, text: str, *, file: str, line: int) -> Problem:
    """A problem for an orjson syntax error (NaN/Infinity and deep nesting get their kind)."""
    rest = text[exc.pos : exc.pos + 9].lstrip("-")
    if rest.startswith(("NaN", "Infinity")):
        name = "NaN" if rest.startswith("NaN") else "Infinity"
        return problem(
            "non_finite_number",
            f"{name} is not a JSON number (it would become null)",
            file=file,
            line=line,
            column=exc.colno,
        )
    if "depth limit" in exc.msg or "recursion" in exc.msg:
        return problem("too_deep", _TOO_DEEP, file=file, line=line)
    if "infinity when parsed" in exc.msg:  # 1e400: too large for a double
        return problem(
            "non_finite_number",
            "a number too large for a double (e.g. 1e400; it would become Infinity)",
            file=file,
            line=line,
            column=exc.colno,
        )
    return _syntax(exc.msg, file=file, line=line, column=exc.colno)


def _decode_line(raw: bytes, *, file: str, line: int, problems: list[Problem]) -> str:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        bad = raw[exc.start : exc.start + 1].hex().upper()
        problems.append(
            problem(
                "non_utf8",
                f"byte 0x{bad} is not valid UTF-8",
                file=file,
                line=line,
                column=exc.start + 1,
            )
        )
        return raw.decode("utf-8", errors="replace")


def _line_issues(raw: bytes, *, file: str, line: int, seen_crlf: bool) -> list[Problem]:
    problems: list[Problem] = []
    if line == 1 and raw.startswith(_BOM):
        problems.append(problem("bom", "file starts with a UTF-8 BOM", file=file, line=1))
    if not seen_crlf and raw.endswith(b"\r\n"):
        problems.append(
            problem("crlf", "CRLF line endings (first at this line)", file=file, line=line)
        )
    return problems


def iter_jsonl(
    path: Path,
    *,
    file: str,
    advance: Advance = _noop,
    start: int = 0,
    end: int | None = None,
    first_line: int = 1,
) -> Iterator[RawRow]:
    """One JSON value per line; blank lines are reported and skipped.

    ``start``/``end``/``first_line``: read only the whole lines in that byte range, numbered
    from ``first_line`` (used by :mod:`tuneport.validation.parallel` to validate big files in
    chunks).
    """
    seen_crlf = False
    with path.open("rb") as fh:
        fh.seek(start)
        pos = start
        number = first_line
        while end is None or pos < end:
            raw = read_line(fh, where=f"{file}:{number}")
            if not raw:
                break
            pos += len(raw)
            advance(len(raw))
            yield jsonl_row(raw, number, file=file, seen_crlf=seen_crlf)
            seen_crlf = seen_crlf or raw.endswith(b"\r\n")
            number += 1


def jsonl_row(raw: bytes, number: int, *, file: str, seen_crlf: bool) -> RawRow:
    """One JSONL line (with its line end) as a :class:`RawRow`; ``seen_crlf``: an earlier line
    of the file ended in CRLF (only the first one is reported)."""
    problems = _line_issues(raw, file=file, line=number, seen_crlf=seen_crlf)
    body = raw[3:] if number == 1 and raw.startswith(_BOM) else raw
    if not body.strip():
        problems.append(problem("blank_line", "blank line", file=file, line=number))
        return RawRow(number, NO_VALUE, problems)
    before = len(problems)
    text = _decode_line(body, file=file, line=number, problems=problems).rstrip("\r\n")
    try:
        value: Any = orjson.loads(text)
    except orjson.JSONDecodeError as exc:
        problems.append(_bad_json(exc, text, file=file, line=number))
        return RawRow(number, NO_VALUE, problems)
    # the bytes when they are the text (valid UTF-8): json_issue compares them without encoding
    issue = json_issue(body if len(problems) == before else text, value)
    if issue is not None:
        problems.append(problem(issue.kind, issue.message, file=file, line=number))
        value = NO_VALUE
    return RawRow(number, value, problems)


def _syntax(msg: str, *, file: str, line: int, column: int) -> Problem:
    return problem("json_syntax", f"invalid JSON: {msg}", file=file, line=line, column=column)


class _ArrayReader:
    """Incremental reader of a top-level JSON array: ``raw_decode`` over buffered chunks."""

    def __init__(self, path: Path, *, file: str, advance: Advance) -> None:
        self._fh = path.open("rb")
        self._decoder = codecs.getincrementaldecoder("utf-8")(errors="surrogateescape")
        self._json = json.JSONDecoder()  # lenient and fast; _array_element checks what it lost
        self._file = file
        self._advance = advance
        self.buf = ""
        self.pos = 0
        self.line = 1
        self.eof = False
        self.chunk = _CHUNK
        self.bom = False

    def close(self) -> None:
        self._fh.close()

    def fill(self) -> bool:
        """Append one more chunk (dropping what was consumed); false at end of file."""
        if self.eof:
            return False
        data = self._fh.read(self.chunk)
        self._advance(len(data))
        if not self.buf and self.pos == 0 and data.startswith(_BOM) and not self.bom:
            self.bom = True
            data = data[3:]
        self.buf = self.buf[self.pos :] + self._decoder.decode(data, final=not data)
        self.pos = 0
        self.eof = not data
        return True

    def skip_ws(self) -> str:
        """Skip whitespace (counting lines); the next character or '' at end of file."""
        while True:
            while self.pos < len(self.buf) and self.buf[self.pos] in " \t\r\n":
                if self.buf[self.pos] == "\n":
                    self.line += 1
                self.pos += 1
            if self.pos < len(self.buf):
                return self.buf[self.pos]
            if not self.fill():
                return ""

    def column(self, pos: int) -> int:
        return pos - self.buf.rfind("\n", 0, pos)

    def syntax(self, msg: str, pos: int) -> Problem:
        line = self.line + self.buf.count("\n", self.pos, pos)
        return _syntax(msg, file=self._file, line=line, column=self.column(pos))

    def decode_value(self) -> tuple[Any, int]:
        """Decode the value at ``pos``, reading more until it is complete; its end index."""
        while True:
            try:
                value, end = self._json.raw_decode(self.buf, self.pos)
            except json.JSONDecodeError as exc:
                incomplete = exc.pos >= len(self.buf) - _TAIL or exc.msg.startswith(
                    "Unterminated string"
                )
                if incomplete and not self.eof:
                    self.grow()
                    continue
                raise
            if end - self.pos > MAX_RECORD_BYTES:
                raise line_too_long(f"{self._file}:{self.line}")
            if end < len(self.buf) or self.eof:
                self.chunk = _CHUNK
                return value, end
            self.grow()

    def grow(self) -> None:
        """Read more of the current value; an error once it passes the one-record limit."""
        if len(self.buf) - self.pos > MAX_RECORD_BYTES:
            raise line_too_long(f"{self._file}:{self.line}")
        self.chunk = min(self.chunk * 2, MAX_RECORD_BYTES)
        self.fill()


def _array_element(reader: _ArrayReader, file: str) -> RawRow:
    start_line = reader.line
    problems: list[Problem] = []
    value, end = reader.decode_value()
    segment = reader.buf[reader.pos : end]
    if _SURROGATE.search(segment):
        raw = segment.encode("utf-8", "surrogateescape")
        _decode_line(raw, file=file, line=start_line, problems=problems)
        segment = raw.decode("utf-8", errors="replace")
        value = json.loads(segment)
    reader.line += segment.count("\n")
    reader.pos = end
    issue = json_issue(segment, value, constants=True)
    if issue is not None:
        problems.append(problem(issue.kind, issue.message, file=file, line=start_line))
        value = NO_VALUE
    return RawRow(start_line, value, problems)


def iter_json_array(path: Path, *, file: str, advance: Advance = _noop) -> Iterator[RawRow]:
    """Elements of a top-level JSON array, each with the line where it starts."""
    reader = _ArrayReader(path, file=file, advance=advance)
    try:
        yield from _array_rows(reader, file)
    finally:
        reader.close()


def _array_rows(reader: _ArrayReader, file: str) -> Iterator[RawRow]:
    reader.fill()
    if reader.bom:
        yield RawRow(
            1, NO_VALUE, [problem("bom", "file starts with a UTF-8 BOM", file=file, line=1)]
        )
    if reader.skip_ws() != "[":
        raise InputError(
            "not a JSON array",
            where=f"{file}:{reader.line}",
            hint="a .json dataset is one array of records ([{...}, {...}]); use .jsonl for one "
            "record per line",
        )
    reader.pos += 1
    first = True
    while True:
        char = reader.skip_ws()
        if char == "]":
            reader.pos += 1
            trailing = reader.skip_ws()
            if trailing:
                yield RawRow(
                    reader.line, NO_VALUE, [reader.syntax("extra data after ']'", reader.pos)]
                )
            return
        if not first:
            if char != ",":
                msg = "unexpected end of file" if not char else "expected ',' or ']'"
                yield RawRow(reader.line, NO_VALUE, [reader.syntax(msg, reader.pos)])
                return
            reader.pos += 1
            reader.skip_ws()
        first = False
        try:
            row = _array_element(reader, file)
        except json.JSONDecodeError as exc:
            yield RawRow(reader.line, NO_VALUE, [reader.syntax(exc.msg, exc.pos)])
            return
        except RecursionError:  # where the element ends is unknown: report it and stop
            yield RawRow(
                reader.line, NO_VALUE, [problem("too_deep", _TOO_DEEP, file=file, line=reader.line)]
            )
            return
        yield row


# --- tables ------------------------------------------------------------------------------------


def _decoded_lines(path: Path, file: str, problems: list[Problem]) -> Iterator[str]:
    with path.open("rb") as fh:
        number = 1
        while raw := read_line(fh, where=f"{file}:{number}"):
            body = raw[3:] if number == 1 and raw.startswith(_BOM) else raw
            yield _decode_line(body, file=file, line=number, problems=problems)
            number += 1


def iter_delimited(
    path: Path, *, file: str, delimiter: str, advance: Advance = _noop
) -> Iterator[RawRow]:
    """CSV/TSV rows as dicts keyed by the header; line = the row's first source line."""
    pending: list[Problem] = []
    if csv.field_size_limit() < MAX_RECORD_BYTES:  # the default, 128 KiB, is less than one record
        csv.field_size_limit(MAX_RECORD_BYTES)
    reader = csv.DictReader(
        _decoded_lines(path, file, pending), delimiter=delimiter, restkey=_EXTRA, restval=_SHORT
    )
    start = 2
    checked = False
    while True:
        try:
            row = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:  # e.g. a quoted field that never ends
            raise InputError(
                f"cannot read the table: {exc}",
                where=f"{file}:{start}",
                hint='check the quoting of that row (a field opened with " must close with ")',
            ) from None
        if not checked:
            _unique_columns(list(reader.fieldnames or []), f"{file}:1")
            checked = True
        problems = [p for p in pending if p.line is not None and p.line < reader.line_num + 1]
        pending[:] = [p for p in pending if p not in problems]
        value = dict(row)
        extra = value.pop(_EXTRA, None)
        short = [k for k, v in value.items() if v is _SHORT]
        if extra is not None or short:
            width = len(reader.fieldnames or [])
            got = width + len(extra) if extra is not None else width - len(short)
            problems.append(
                problem(
                    "row_width",
                    f"the row has {got} field{'' if got == 1 else 's'}, the header {width}"
                    + (f" (left over: {extra!r})" if extra is not None else ""),
                    file=file,
                    line=start,
                )
            )
            value = {k: (None if v is _SHORT else v) for k, v in value.items()}
        yield RawRow(start, value, problems)
        start = reader.line_num + 1


# DictReader's place-holders for the fields of a row longer / shorter than the header
_EXTRA = "\0extra"
_SHORT: Any = object()


def _unique_columns(names: list[str], where: str) -> None:
    """Refuse a table whose header names a column twice (a reader would keep only the last)."""
    twice = [name for i, name in enumerate(names) if name in names[:i]]
    if twice:
        raise InputError(
            f"the column name {twice[0]!r} is used twice; only one of those columns could be read",
            where=where,
            hint="rename the columns so that each name appears once",
        )


def iter_parquet(path: Path, *, file: str, advance: Advance = _noop) -> Iterator[RawRow]:
    """Parquet rows in batches (line = 1-based row number)."""
    import pyarrow.parquet as pq

    try:
        parquet = pq.ParquetFile(path)
    except Exception as exc:  # pyarrow raises several types for a bad file
        raise _unreadable_table("Parquet file", exc, file) from None
    _unique_columns(list(parquet.schema_arrow.names), file)
    number = 0
    batches = parquet.iter_batches(batch_size=1024)
    while True:
        try:
            batch = next(batches)
        except StopIteration:
            return
        except Exception as exc:  # a damaged row group
            raise _unreadable_table("Parquet file", exc, f"{file}:{number + 1}") from None
        for value in batch.to_pylist():
            number += 1
            yield RawRow(number, value, [])
        advance(batch.nbytes)


def _unreadable_table(what: str, exc: Exception, where: str) -> InputError:
    detail = " ".join(str(exc).split())[:200]
    return InputError(
        f"not a readable {what} ({detail})",
        where=where,
        hint="check that the file is complete (re-download or re-export it)",
    )


def _json_file(path: Path) -> Any:
    """A small JSON metadata file of a dataset folder, or an :class:`InputError` naming it."""
    try:
        return orjson.loads(path.read_bytes())
    except (OSError, orjson.JSONDecodeError) as exc:
        raise _unreadable_table("dataset metadata file", exc, str(path)) from None


def _arrow_files(folder: Path) -> list[Path]:
    if (folder / "dataset_dict.json").exists():
        info = _json_file(folder / "dataset_dict.json")
        splits = info.get("splits", []) if isinstance(info, dict) else []
        if not isinstance(splits, list) or not all(isinstance(x, str) for x in splits):
            splits = []
        name = "train" if "train" in splits else (splits[0] if splits else "")
        folder = folder / name
    state = folder / "state.json"
    if not state.exists():
        raise InputError(
            "folder is not a Hugging Face dataset (no state.json)",
            where=str(folder),
            hint="save it with Dataset.save_to_disk or pass a data file",
        )
    info = _json_file(state)
    files = info.get("_data_files", []) if isinstance(info, dict) else []
    names: list[str] = []
    for entry in files if isinstance(files, list) else []:
        name = entry.get("filename") if isinstance(entry, dict) else None
        if isinstance(name, str) and name:
            names.append(name)
    if not names or len(names) != len(files):
        raise InputError(
            "dataset folder lists no usable data files in state.json",
            where=str(state),
            hint="save the dataset again with Dataset.save_to_disk",
        )
    return [folder / n for n in names]


def iter_arrow_folder(path: Path, *, file: str, advance: Advance = _noop) -> Iterator[RawRow]:
    """Rows of a ``datasets`` ``save_to_disk`` folder (train split), batch by batch."""
    import pyarrow as pa

    number = 0
    for arrow in _arrow_files(path):
        try:
            source = pa.memory_map(str(arrow))
            stream = pa.ipc.open_stream(source)
        except Exception as exc:  # missing, empty or not an Arrow stream
            raise _unreadable_table("Arrow data file", exc, str(arrow)) from None
        with source:
            while True:
                try:
                    batch = stream.read_next_batch()
                except StopIteration:
                    break
                except Exception as exc:
                    raise _unreadable_table("Arrow data file", exc, str(arrow)) from None
                for value in batch.to_pylist():
                    number += 1
                    yield RawRow(number, value, [])
                advance(batch.nbytes)
