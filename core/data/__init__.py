"""Reading, writing and validating datasets (pure functions over streams).

- :class:`Row`: ``(line, record | None, problems)`` — one input record with its 1-based source
  line (for JSON arrays: the line where the element starts; for Parquet/Arrow: the row number).
- :func:`detect_format` and :func:`read_records`: streamed importers; memory does not grow with
  file size. :func:`load_records` collects them, failing at the first unusable row.
- :func:`export_records`: exporters to ``openai``, ``vertex``, ``local``, ``canonical``; what a
  target cannot carry is counted in ``ExportResult.dropped``. ``to_*``/``from_*`` are the pure
  per-record functions.

The canonical file format is documented in :mod:`tuneport.data.rows`.
"""

from tuneport.data.detect import FORMATS, detect_format
from tuneport.data.exporters import (
    EXPORTERS,
    ExportResult,
    default_output,
    export_records,
    to_canonical,
    to_local,
    to_local_preference,
    to_openai,
    to_openai_dpo,
    to_vertex,
    to_vertex_preference,
)
from tuneport.data.importers import (
    IMPORTERS,
    from_alpaca,
    from_canonical,
    from_hf,
    from_openai,
    from_openai_dpo,
    from_sharegpt,
    from_sharegpt_preference,
    from_table,
    from_vertex,
    from_vertex_preference,
)
from tuneport.data.records import load_records, read_records, records_only
from tuneport.data.rows import KINDS, Row, canonical_dict

__all__ = [
    "EXPORTERS",
    "FORMATS",
    "IMPORTERS",
    "KINDS",
    "ExportResult",
    "Row",
    "canonical_dict",
    "default_output",
    "detect_format",
    "export_records",
    "from_alpaca",
    "from_canonical",
    "from_hf",
    "from_openai",
    "from_openai_dpo",
    "from_sharegpt",
    "from_sharegpt_preference",
    "from_table",
    "from_vertex",
    "from_vertex_preference",
    "load_records",
    "read_records",
    "records_only",
    "to_canonical",
    "to_local",
    "to_local_preference",
    "to_openai",
    "to_openai_dpo",
    "to_vertex",
    "to_vertex_preference",
]
