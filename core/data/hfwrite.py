"""Write exported rows as a Hugging Face ``datasets`` folder (``save_to_disk`` layout).

Rows go to Parquet in batches (bounded memory), then ``datasets`` turns that into a memory-mapped
dataset saved at the output path. ``datasets`` is imported here, lazily, only for local export.
"""

from __future__ import annotations

from collections.abc import Iterator
from itertools import islice
from pathlib import Path
from typing import Any

from tuneport.errors import InputError
from tuneport.files import atomic_path

_BATCH = 1000


def _schema(columns: list[str]) -> Any:
    import pyarrow as pa

    message = pa.struct([("role", pa.string()), ("content", pa.string())])
    return pa.schema([(name, pa.list_(message)) for name in columns])


def write_hf(
    rows: Iterator[dict[str, Any]], out: Path, *, force: bool, inputs: tuple[Path, ...]
) -> int:
    """Write ``rows`` (all with the same list-of-message columns) to the folder ``out``."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    first = next(rows, None)
    if first is None:
        raise InputError("no examples to export", hint="check the input file")
    schema = _schema(list(first))
    count = 0
    with atomic_path(out, force=force, inputs=inputs) as tmp:
        tmp.mkdir()
        staging = tmp.parent / "rows.parquet"
        with pq.ParquetWriter(staging, schema) as writer:
            batch = [first]
            while batch:
                writer.write_table(pa.Table.from_pylist(batch, schema=schema))
                count += len(batch)
                batch = list(islice(rows, _BATCH))
        _save(staging, tmp)
    return count


def _save(staging: Path, folder: Path) -> None:
    import datasets

    datasets.disable_progress_bars()
    cache = staging.parent / "cache"
    dataset = datasets.Dataset.from_parquet(str(staging), cache_dir=str(cache))
    dataset.save_to_disk(str(folder))
