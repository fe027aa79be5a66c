"""Reading, writing and validating datasets (pure functions over streams).

Public API (implemented in the modules of this package):

- ``Row``: ``(line, record | None, problems)`` — one input record with its 1-based source line
  (for JSON arrays: the line where the element starts).
- ``detect_format(path) -> str`` and ``read_records(path, fmt=None, *, column_map=None,
  system=None) -> Iterator[Row]``: streamed importers; memory does not grow with file size.
- ``export(records, target, out, ...)``: exporters to ``openai``, ``vertex``, ``local``,
  ``canonical``; report what a target cannot carry.
- ``validate(path, provider, model) -> Report``: all problems, each with file:line.
"""
