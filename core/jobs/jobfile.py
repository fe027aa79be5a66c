"""Job files (YAML) and flags → one validated :class:`~tuneport.schemas.JobConfig`.

A job file holds :class:`JobConfig` fields at the top level (``provider``, ``model``, ``data``,
``method``, ``validation``, ``epochs``, ``learning_rate_multiplier``, ``batch_size``,
``suffix``, ``seed``, ``max_cost``) plus ``options:`` for provider settings. Relative paths are
relative to the job file. Flags override file values; ``--set key=value`` adds options. Every
problem is reported at once in one :class:`ConfigError`.

A section named after a provider (``vertex:``, ``local:``, ...) holds settings that apply only
when that provider is chosen; they override the top-level ones (``options`` are merged). So one
job file serves every backend and switching needs only ``--provider``::

    provider: openai
    model: gpt-4.1-mini
    vertex:
      model: gemini-2.5-flash
      options: {project: my-proj, bucket: gs://my-bucket}
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from tuneport.errors import ConfigError, InputError, combine
from tuneport.schemas import JobConfig

PATH_FIELDS = ("data", "validation")
# how to set a field from the command line, for hints
FLAG_OF: dict[str, str] = {
    "provider": "--provider",
    "model": "--model",
    "data": "--data",
    "method": "--method",
    "validation": "--validation",
    "epochs": "--epochs",
    "learning_rate_multiplier": "--learning-rate-multiplier",
    "batch_size": "--batch-size",
    "suffix": "--suffix",
    "seed": "--seed",
    "max_cost": "--max-cost",
    "options": "--set key=value",
}


class _UniqueKeyLoader(yaml.SafeLoader):
    """PyYAML's safe loader, refusing a key given twice in one mapping (plain PyYAML keeps the
    last value silently: ``epochs: 3`` then ``epochs: 40`` would launch 40 epochs)."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: dict[Any, yaml.Node] = {}
        for key_node, _ in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":  # `<<: *defaults` may be overridden
                continue
            key = self.construct_object(key_node, deep=True)
            try:
                first = seen.setdefault(key, key_node)
            except TypeError:  # an unhashable key: the base loader names it
                continue
            if first is not key_node:
                raise yaml.constructor.ConstructorError(
                    None,
                    None,
                    f"the key {key!r} is given twice (first on line {first.start_mark.line + 1}); "
                    "tuneport does not pick one",
                    key_node.start_mark,
                )
        return super().construct_mapping(node, deep=deep)


def read_job_file(path: Path) -> dict[str, Any]:
    """The mapping in a YAML job file, with ``data``/``validation`` made relative to it."""
    if not path.is_file():
        raise InputError(f"{path}: no such job file", hint="check the path")
    try:
        loaded = yaml.load(path.read_text(encoding="utf-8"), Loader=_UniqueKeyLoader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark
        where = f"{path}:{mark.line + 1}" if mark is not None else str(path)
        twice = "given twice" in str(exc.problem)
        raise ConfigError(
            f"invalid YAML: {exc.problem}",
            where=where,
            hint="keep one of the two lines" if twice else "fix the YAML syntax",
        ) from None
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        raise ConfigError(
            f"{path}: cannot read the job file: {exc}",
            hint="save it as UTF-8 YAML (see fixtures/jobs/openai-sft.yaml)",
        ) from None
    except RecursionError:  # the YAML parser recurses once per level of nesting
        raise ConfigError(
            f"{path}: the job file nests too deeply to read (thousands of levels)",
            hint="a job file is a flat mapping of settings (see fixtures/jobs/openai-sft.yaml)",
        ) from None
    if loaded is None:
        loaded = {}
    if not isinstance(loaded, dict):
        raise ConfigError(
            f"{path}: a job file is a mapping of settings (provider:, model:, data:, ...)",
            hint="see fixtures/jobs/openai-sft.yaml for an example",
        )
    values = {str(k): v for k, v in loaded.items()}
    _resolve_paths(values, path.parent)
    for section in values.values():
        if isinstance(section, dict):
            _resolve_paths(section, path.parent)
    return values


def _resolve_paths(values: dict[Any, Any], base: Path) -> None:
    for key in PATH_FIELDS:
        value = values.get(key)
        if isinstance(value, str) and value and not Path(value).expanduser().is_absolute():
            values[key] = str(base / value)


def apply_provider_section(
    file_values: Mapping[str, Any], provider: str | None, providers: Iterable[str]
) -> dict[str, Any]:
    """Top-level values with the chosen provider's section laid over them; sections removed."""
    names = set(providers)
    bad = [n for n in sorted(names) if n in file_values and not isinstance(file_values[n], Mapping)]
    if bad:
        raise ConfigError(
            f"provider section {bad[0]}: must be a mapping of settings",
            hint=f"write e.g. `{bad[0]}:` then indented `model: ...` lines",
        )
    merged = {k: v for k, v in file_values.items() if k not in names}
    section = file_values.get(provider) if provider in names else None
    if isinstance(section, Mapping):
        base_options = merged.get("options")
        merged.update(section)
        if isinstance(base_options, Mapping) and isinstance(section.get("options"), Mapping):
            merged["options"] = {**base_options, **section["options"]}
    return merged


def _scalar(text: str) -> Any:
    """``--set`` values: YAML scalars (``3`` → int, ``0.1`` → float, ``true`` → bool)."""
    try:
        value = yaml.safe_load(text)
    except yaml.YAMLError:
        return text
    return value if isinstance(value, str | int | float | bool | list | dict) else text


def parse_set(items: Iterable[str]) -> dict[str, Any]:
    """``["bucket=gs://b", "lora.rank=16"]`` → ``{"bucket": "gs://b", "lora": {"rank": 16}}``."""
    options: dict[str, Any] = {}
    bad: list[str] = []
    for item in items:
        key, sep, raw = item.partition("=")
        key = key.strip()
        if not sep or not key:
            bad.append(item)
            continue
        target = options
        *parents, leaf = key.split(".")
        for part in parents:
            nested = target.setdefault(part, {})
            if not isinstance(nested, dict):
                bad.append(item)
                break
            target = nested
        else:
            target[leaf] = _scalar(raw)
    if bad:
        raise ConfigError(
            f"--set expects key=value, got {', '.join(repr(b) for b in bad)}",
            hint="e.g. --set bucket=gs://my-bucket",
        )
    return options


def _describe(err: Mapping[str, Any]) -> tuple[str, str]:
    """``(what is wrong, how to fix it)`` for one schema error, naming the flag to change."""
    loc = ".".join(str(p) for p in err["loc"]) or "job"
    kind = err["type"]
    top = str(err["loc"][0]) if err["loc"] else ""
    flag = FLAG_OF.get(top)
    if kind == "missing":
        where = f" ({flag} or `{loc}:` in the job file)" if flag else ""
        return f"{loc} is required{where}", "fix the job file or the flags"
    if kind == "extra_forbidden":
        return f"unknown setting {loc!r}", f"allowed settings: {', '.join(JobConfig.model_fields)}"
    fix = f"change {flag} (or `{top}:` in the job file)" if flag else "fix the job file"
    value = err.get("input")
    shown = isinstance(value, int | float | str) and "got" not in str(err["msg"])
    got = f", got {value!r}" if shown else ""
    return f"{loc}: {err['msg']}{got}", fix


def merge_values(
    file_values: Mapping[str, Any] | None = None,
    overrides: Mapping[str, Any] | None = None,
    options: Mapping[str, Any] | None = None,
    *,
    known_providers: Iterable[str] | None = None,
) -> dict[str, Any]:
    """Job-file values, the chosen provider's section, flag overrides (``None`` = not given)
    and ``--set`` options merged into the mapping :class:`JobConfig` validates."""
    names = list(known_providers) if known_providers is not None else None
    merged: dict[str, Any] = dict(file_values or {})
    if names is not None:
        chosen = (overrides or {}).get("provider") or merged.get("provider")
        merged = apply_provider_section(merged, chosen if isinstance(chosen, str) else None, names)
    merged.update({k: v for k, v in (overrides or {}).items() if v is not None})
    file_options = merged.get("options") or {}
    if isinstance(file_options, Mapping):
        merged["options"] = {**file_options, **(options or {})}
    return merged


def build_config(
    file_values: Mapping[str, Any] | None = None,
    overrides: Mapping[str, Any] | None = None,
    options: Mapping[str, Any] | None = None,
    *,
    source: str | None = None,
    known_providers: Iterable[str] | None = None,
) -> JobConfig:
    """Merge job-file values, flag overrides (``None`` = not given) and ``--set`` options.

    Every problem is one :class:`ConfigError` line (:func:`tuneport.errors.combine`)."""
    names = list(known_providers) if known_providers is not None else None
    merged = merge_values(file_values, overrides, options, known_providers=names)
    problems: list[tuple[str, str]] = []
    if not isinstance(merged.get("options", {}), Mapping):
        problems.append(
            ("options: must be a mapping of provider settings", "write `options: {key: value}`")
        )
        merged["options"] = dict(options or {})
    config: JobConfig | None = None
    try:
        config = JobConfig.model_validate(merged)
    except ValidationError as exc:
        problems.extend(_describe(e) for e in exc.errors())
    provider = merged.get("provider")
    if names is not None and isinstance(provider, str) and provider not in names:
        problems.append((f"unknown provider {provider!r}", f"choose --provider {'|'.join(names)}"))
    if problems or config is None:
        errors = [ConfigError(what, hint=fix, where=source) for what, fix in problems]
        raise combine(errors, where=source)
    return config


def lenient_config(merged: Mapping[str, Any]) -> JobConfig | None:
    """``merged`` as a :class:`JobConfig` without the settings that fail validation (they are
    reported already), so later checks (a backend's preflight) can still report theirs;
    ``None`` when a required setting is what fails."""
    values = dict(merged)
    for _ in range(2):
        try:
            return JobConfig.model_validate(values)
        except ValidationError as exc:
            bad = {e["loc"][0] for e in exc.errors() if e["loc"]}
            if not bad & values.keys():
                return None
            for key in bad:
                values.pop(str(key), None)
    return None
