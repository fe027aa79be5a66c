"""Format detection from a file's content (keys of its first records), not its name."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from itertools import islice
from pathlib import Path
from typing import Any

import orjson

from tuneport.data.reading import (
    Advance,
    RawRow,
    iter_arrow_folder,
    iter_delimited,
    iter_json_array,
    iter_jsonl,
    iter_parquet,
)
from tuneport.errors import InputError
from tuneport.files import read_line, require_file
from tuneport.schemas import FORMAT_VERSION, Problem

FORMATS = (
    "canonical",
    "openai",
    "openai-dpo",
    "vertex",
    "vertex-preference",
    "alpaca",
    "sharegpt",
    "sharegpt-preference",
    "table",
    "hf",
)

Container = Callable[..., Iterator[RawRow]]

_JSONL_SUFFIXES = {".jsonl", ".ndjson"}
_SHAREGPT_ONLY_ROLES = {"human", "gpt", "function_call", "observation"}
_PEEK_LINES = 20
_PEEK_ROWS = 5
_PEEK_MAJORITY = 100  # rows that vote between OpenAI and ShareGPT's role/content variant
_CHUNK = 1 << 20


def _first_content(path: Path) -> tuple[int, int]:
    """Byte offset and number of the first line that is not blank (``(0, 1)`` when the file
    starts with a BOM or is blank throughout): millions of leading blank lines cost one pass
    over bytes, not a row each."""
    offset, line = 0, 1
    with path.open("rb") as fh:
        while chunk := fh.read(_CHUNK):
            if offset == 0 and chunk.startswith(b"\xef\xbb\xbf"):
                return 0, 1
            stripped = chunk.lstrip(b" \t\r\n")
            if not stripped:
                offset += len(chunk)
                line += chunk.count(b"\n")
                continue
            start = chunk.rfind(b"\n", 0, len(chunk) - len(stripped)) + 1
            return offset + start, line + chunk.count(b"\n", 0, start)
    return 0, 1


def _first_char(path: Path, offset: int = 0) -> str:
    with path.open("rb") as fh:
        fh.seek(offset)
        head = fh.read(4096).removeprefix(b"\xef\xbb\xbf")
    stripped = head.lstrip()
    return chr(stripped[0]) if stripped else ""


_WIDE_BOMS = (
    (b"\xff\xfe\x00\x00", "UTF-32"),
    (b"\x00\x00\xfe\xff", "UTF-32"),
    (b"\xff\xfe", "UTF-16"),
    (b"\xfe\xff", "UTF-16"),
)


def _layout_problem(path: Path, offset: int) -> InputError | None:
    """A file-wide defect that makes every record unreadable alike: a UTF-16/32 encoding or
    CR-only line ends (the whole file reads as one line)."""
    with path.open("rb") as fh:
        head = fh.read(4)
        fh.seek(offset)
        text = fh.read(1 << 16)
    for bom, name in _WIDE_BOMS:
        if head.startswith(bom):
            return InputError(
                f"the file is {name} (it starts with a {name} byte-order mark); tuneport reads "
                "UTF-8",
                where=f"{path}:1",
                hint=f"re-save it as UTF-8 (an editor's save-as UTF-8, or iconv from {name} to "
                "UTF-8)",
            )
    if b"\n" not in text and b"\r" in text.strip():
        return InputError(
            "the lines end in CR only (old Mac line ends), so the file reads as one line",
            where=f"{path}:1",
            hint=f"convert the line ends to \\n (e.g. tr '\\r' '\\n' < {path.name} > "
            f"{path.stem}.lf{path.suffix})",
        )
    return None


def _looks_like_jsonl(path: Path) -> bool:
    with path.open("rb") as fh:
        for number in range(1, _PEEK_LINES + 1):
            raw = read_line(fh, where=f"{path}:{number}")
            if not raw:
                break
            try:
                if isinstance(orjson.loads(raw.removeprefix(b"\xef\xbb\xbf")), dict):
                    return True
            except orjson.JSONDecodeError:
                continue
    return False


def _delimited(delimiter: str) -> Container:
    def read(path: Path, *, file: str, advance: Advance) -> Iterator[RawRow]:
        return iter_delimited(path, file=file, delimiter=delimiter, advance=advance)

    return read


def container(path: Path) -> Container:
    """The reader for the file's physical layout (JSONL, JSON array, table, Arrow folder)."""
    require_file(path)
    if path.is_dir():
        return iter_arrow_folder
    suffix = path.suffix.lower()
    if suffix == ".parquet":
        return iter_parquet
    if suffix in (".csv", ".tsv"):
        return _delimited("\t" if suffix == ".tsv" else ",")
    if suffix in _JSONL_SUFFIXES:
        return iter_jsonl
    first = _first_char(path, _first_content(path)[0])
    if first == "[":
        return iter_json_array
    if first == "{" and _looks_like_jsonl(path):
        return iter_jsonl
    what = "a single JSON object, not a list of records" if first == "{" else "not JSON records"
    raise InputError(
        f"unknown format: {what}",
        where=f"{path}:1",
        hint="pass a JSONL/JSON-array/CSV/Parquet dataset (a registry such as LLaMA-Factory's "
        "dataset_info.json only names data files)",
    )


def _messages_format(rows: list[Any]) -> str:
    roles = {m.get("role") for m in rows if isinstance(m, dict)}
    return "sharegpt" if roles & _SHAREGPT_ONLY_ROLES else "openai"


def format_of(obj: dict[str, Any], *, tabular: bool = False) -> str | None:
    """The format a single record's keys belong to, or ``None``."""
    keys = set(obj)
    if obj.get("format") == FORMAT_VERSION:
        return "canonical"
    if {"input", "preferred_output"} <= keys:
        return "openai-dpo"
    if "contents" in keys:
        return "vertex-preference" if "completions" in keys else "vertex"
    if "conversations" in keys:
        return "sharegpt-preference" if {"chosen", "rejected"} <= keys else "sharegpt"
    if "instruction" in keys and keys & {"output", "chosen"}:
        return "alpaca"
    if tabular and keys & {"messages", "chosen", "completion"}:
        return "hf"
    if {"prompt", "chosen", "rejected"} <= keys:  # TRL preference rows
        return "hf"
    if {"prompt", "completion"} <= keys:  # TRL rows, or legacy prompt/completion text pairs
        return "hf" if isinstance(obj["prompt"], list) else "table"
    if isinstance(obj.get("messages"), list):
        if {"chosen", "rejected"} <= keys:
            return "sharegpt-preference"
        return _messages_format(obj["messages"])
    return None


def _confirm_openai(reader: Container, path: Path) -> str:
    """OpenAI or ShareGPT's role/content variant, by the majority of the first rows.

    A row votes ShareGPT when it uses a ShareGPT-only role (human, gpt, function_call,
    observation), OpenAI otherwise; a tie reads as ShareGPT (its reader also takes
    user/assistant). A lone ``"role": "human"`` in an OpenAI file is then a typo that validation
    reports at its line, not a reason to read the whole file as ShareGPT.
    """
    votes = {"openai": 0, "sharegpt": 0}
    for row in islice(reader(path, file=str(path), advance=lambda _: None), _PEEK_MAJORITY):
        if isinstance(row.value, dict) and isinstance(row.value.get("messages"), list):
            found = format_of(row.value)
            if found in votes:
                votes[found] += 1
    return "sharegpt" if votes["sharegpt"] >= max(1, votes["openai"]) else "openai"


def detect_format(path: Path) -> str:
    """The format name of a dataset file or folder (see :data:`FORMATS`), from its content."""
    reader = container(path)
    if reader is iter_arrow_folder:
        return "hf"
    tabular = reader is iter_parquet
    seen: list[str] = []
    first_line = 1
    skip: dict[str, int] = {}
    if reader in (iter_jsonl, iter_json_array):
        offset, line = _first_content(path)
        layout = _layout_problem(path, offset)
        if layout is not None:
            raise layout
        if reader is iter_jsonl and offset:
            skip = {"start": offset, "first_line": line}
    first_error: Problem | None = None
    rows = reader(path, file=str(path), advance=lambda _: None, **skip)
    for row in islice(rows, _PEEK_ROWS * 4):
        if not isinstance(row.value, dict):
            if first_error is None:
                first_error = next((p for p in row.problems if p.severity == "error"), None)
            continue
        found = format_of(row.value, tabular=tabular)
        if found == "openai":  # ShareGPT's role/content variant may show its roles later
            found = _confirm_openai(reader, path)
        if found:
            return found
        if reader not in (iter_jsonl, iter_json_array):
            return "table"
        if not seen:
            first_line = row.line
        seen.append(", ".join(sorted(row.value)[:8]))
        if len(seen) >= _PEEK_ROWS:
            break
    if not seen and first_error is not None:  # every row shares a defect: name the first
        raise InputError(
            f"no record could be read; the first problem: {first_error.message}",
            where=first_error.where,
            hint=first_error.fix,
        )
    keys = f" (keys: {seen[0]})" if seen else " (no JSON object records)"
    raise InputError(
        f"unknown format{keys}",
        where=f"{path}:{first_line}",
        hint="pass --from FORMAT, or --map col=user,col=assistant for a Q&A table",
    )
