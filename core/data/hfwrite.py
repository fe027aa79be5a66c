"""Write exported rows as a Hugging Face ``datasets`` folder (``save_to_disk`` layout).

Rows go to Parquet in batches (bounded memory), then ``datasets`` turns that into a memory-mapped
dataset saved at the output path. ``datasets`` is imported here, lazily, only for local export.
"""

from __future__ import annotations

from collections.abc import Iterator
from itertools import islice
from pathlib import Path
from typing import Any

from tuneport.errors import InputError, require_extra
from tuneport.files import atomic_path

_BATCH = 1000


def _message_fields() -> dict[str, Any]:
    import pyarrow as pa

    call = pa.struct(
        [
            ("id", pa.string()),
            ("type", pa.string()),
            ("function", pa.struct([("name", pa.string()), ("arguments", pa.string())])),
        ]
    )
    return {
        "role": pa.string(),
        "content": pa.string(),
        "weight": pa.int64(),
        "tool_calls": pa.list_(call),
        "tool_call_id": pa.string(),
        "name": pa.string(),
    }


def _schema(first: dict[str, Any]) -> Any:
    """One fixed Arrow type per column, taken from the first row's keys (every row of an export
    has the same keys, ``None`` where a value is absent): list columns are lists of message
    structs with the message keys of the first row, other columns are strings (JSON ``tools``).
    Fixed types keep all-null fields typed and let rows with and without tools mix."""
    import pyarrow as pa

    fields = _message_fields()
    keys = next(
        (
            list(v[0])
            for v in first.values()
            if isinstance(v, list) and v and isinstance(v[0], dict)
        ),
        list(fields) if "tools" in first else ["role", "content"],
    )
    unknown = [k for k in keys if k not in fields]
    if unknown:
        raise ValueError(f"no Arrow type for message field(s) {unknown}")
    message = pa.struct([(k, fields[k]) for k in keys])
    return pa.schema(
        [
            (name, pa.list_(message) if isinstance(value, list) else pa.string())
            for name, value in first.items()
        ]
    )


def write_hf(
    rows: Iterator[dict[str, Any]], out: Path, *, force: bool, inputs: tuple[Path, ...]
) -> int:
    """Write ``rows`` (same columns in every row: message lists or strings) to ``out``."""
    require_extra("datasets", "local", "--to local")
    import pyarrow as pa
    import pyarrow.parquet as pq

    first = next(rows, None)
    if first is None:
        raise InputError("no examples to export", hint="check the input file")
    schema = _schema(first)
    count = 0
    with atomic_path(out, force=force, inputs=inputs, folder=True) as tmp:
        tmp.mkdir()
        staging = tmp.parent / "rows.parquet"
        with pq.ParquetWriter(staging, schema) as writer:
            batch = [first]
            while batch:
                writer.write_table(pa.Table.from_pylist(batch, schema=schema))
                count += len(batch)
                batch = list(islice(rows, _BATCH))
        _save(staging, tmp, schema)
    return count


def _save(staging: Path, folder: Path, schema: Any) -> None:
    import datasets

    datasets.disable_progress_bars()
    cache = staging.parent / "cache"
    features = datasets.Features.from_arrow_schema(schema)
    dataset = datasets.Dataset.from_parquet(str(staging), cache_dir=str(cache), features=features)
    dataset.save_to_disk(str(folder))
