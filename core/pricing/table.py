"""The dated price table (``prices.toml``) and its loader.

The built-in table ships inside the package (``tuneport/prices.toml``). A user file in the same
layout (``--prices FILE`` or ``$TUNEPORT_PRICES``) is merged over it key by key: change one price
and its ``as_of``, or add a provider/model. Every problem in a file is reported at once, one line
each naming the file and the key.
"""

from __future__ import annotations

import dataclasses
import os
import re
import stat
import tomllib
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from datetime import date
from importlib import resources
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from tuneport.errors import ConfigError

PRICES_ENV = "TUNEPORT_PRICES"
WILDCARD = "*"
_DATE_SUFFIX = re.compile(r"-\d{4}-\d{2}-\d{2}$|-\d{3}$")
MAX_PRICE_FILE_BYTES = 1 << 20  # a price table is a few KB; refuse anything absurd
# a price in USD per million tokens: finite, never negative (a negative price would pass any
# budget guard); strict: the table keeps the raw value, so a quoted "4" would reach the sums
Price = Field(default=None, ge=0, allow_inf_nan=False, strict=True)
Epochs = Field(default=None, ge=1, strict=True)


class _MethodFields(BaseModel):
    model_config = ConfigDict(extra="forbid")

    training_per_million: float | None = Price


class _Common(BaseModel):
    """Keys allowed both at provider level (defaults) and model level."""

    model_config = ConfigDict(extra="forbid")

    source: str | None = None
    as_of: date | None = None
    unverified: bool | None = None
    epoch_rule: str | None = None
    default_epochs: int | None = Epochs
    min_epochs: int | None = Epochs
    max_epochs: int | None = Epochs
    inference_input_per_million: float | None = Price
    inference_output_per_million: float | None = Price
    billing: str | None = None
    paid: bool | None = None  # false: no money figure (your own hardware)
    tuning_ends: date | None = None  # the provider stops (or stopped) tuning this model
    tuning_ends_source: str | None = None
    shutdown_date: date | None = None  # the model (and every fine-tune of it) stops working
    shutdown_source: str | None = None
    # a deployment/dedicated endpoint serving a tuned model, billed by the hour while it runs
    deployment_per_hour: float | None = Price
    deployment_source: str | None = None

    @field_validator("epoch_rule")
    @classmethod
    def _known_rule(cls, value: str | None) -> str | None:
        if value is not None and value not in EPOCH_RULES:
            raise ValueError(f"unknown epoch rule {value!r} (known: {', '.join(EPOCH_RULES)})")
        return value


class _ModelFields(_Common):
    aliases: list[str] = []
    sft: _MethodFields | None = None
    dpo: _MethodFields | None = None


class _ProviderFields(_Common):
    models: dict[str, _ModelFields] = {}


class _TableFile(BaseModel):
    model_config = ConfigDict(extra="forbid")

    schema_: int | None = None
    providers: dict[str, _ProviderFields] = {}


@dataclass(frozen=True)
class ModelPrice:
    """Everything tuneport knows about tuning one model with one method at one provider."""

    provider: str
    model: str
    method: str
    training_per_million: float | None
    source: str
    as_of: str
    unverified: bool
    epoch_rule: str
    default_epochs: int | None
    min_epochs: int
    max_epochs: int | None
    inference_input_per_million: float | None
    inference_output_per_million: float | None
    aliases: tuple[str, ...] = ()
    billing: str | None = None
    paid: bool = True  # False: the backend charges no money (local)
    listed: bool = True  # False: the model is not in the table (cost unknown)
    tuning_ends: str | None = None  # YYYY-MM-DD: tuning stops (or stopped) on this date
    tuning_ends_source: str | None = None
    shutdown_date: str | None = None  # YYYY-MM-DD: the model and its fine-tunes stop working
    shutdown_source: str | None = None
    deployment_per_hour: float | None = None  # USD per hour of a deployment serving it
    deployment_source: str | None = None

    @property
    def cost_unknown(self) -> str | None:
        """Why this entry gives no cost although the provider charges, else ``None``."""
        if not self.paid or self.training_per_million is not None:
            return None
        if not self.listed:
            return (
                f"{self.provider} model {self.model!r} is not in the price table, so its cost "
                "is unknown (the provider decides whether it can be tuned)"
            )
        return (
            f"the price table has no {self.method} training price for {self.provider} "
            f"{self.model} ({self.source}, as of {self.as_of}), so its cost is unknown"
        )

    def lifecycle(self, today: date | None = None) -> str:
        """``tuning ended 2026-10-23`` / ``tuning ends 2027-01-06, stops working 2027-01-14`` (each
        date the table has for the model), or ``""``: shown in the model's row."""
        return lifecycle_text(self.tuning_ends, self.shutdown_date, today)

    def auto_epochs(self, examples: int) -> int:
        """The epochs the provider picks for ``examples`` examples when epochs are "auto"."""
        return EPOCH_RULES[self.epoch_rule](examples, self)

    def resolve_epochs(self, examples: int, requested: int | None) -> int:
        """``requested`` checked against the bounds, or the auto rule's choice."""
        if requested is None:
            return self.auto_epochs(examples)
        if requested < self.min_epochs or (
            self.max_epochs is not None and requested > self.max_epochs
        ):
            top = self.max_epochs if self.max_epochs is not None else "∞"
            raise ConfigError(
                f"{self.provider} {self.model}: epochs must be {self.min_epochs}..{top}, "
                f"got {requested}",
                hint="pass --epochs in range, or leave it out for the provider's auto rule",
            )
        return requested

    def as_dict(self) -> dict[str, Any]:
        return {k: (list(v) if isinstance(v, tuple) else v) for k, v in self.__dict__.items()}


def openai_cookbook_epochs(n: int, price: ModelPrice | None = None) -> int:
    """OpenAI's auto epochs (cookbook heuristic) for ``n`` examples.

    3n < 100 → min(25, 100 // n); 3n > 25000 → max(1, 25000 // n); else 3.
    """
    if n <= 0:
        return 1
    if 3 * n < 100:
        return min(25, 100 // n)
    if 3 * n > 25_000:
        return max(1, 25_000 // n)
    return 3


def _fixed_epochs(n: int, price: ModelPrice) -> int:
    return price.default_epochs or 1


EPOCH_RULES: dict[str, Callable[[int, ModelPrice], int]] = {
    "openai-cookbook": openai_cookbook_epochs,
    "fixed": _fixed_epochs,
}

METHODS = ("sft", "dpo")
_REQUIRED = ("source", "as_of", "epoch_rule")


def _merge(base: dict[str, Any], over: Mapping[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in over.items():
        if isinstance(value, Mapping) and isinstance(out.get(key), dict):
            out[key] = _merge(out[key], value)
        else:
            out[key] = value
    return out


def _loc(loc: tuple[int | str, ...]) -> str:
    parts = []
    for p in loc:
        text = str(p)
        parts.append(f'"{text}"' if not re.fullmatch(r"[A-Za-z0-9_-]+", text) else text)
    return ".".join(parts).replace("schema_", "schema")


def _read(path: Path) -> dict[str, Any]:
    try:
        info = path.stat()
    except FileNotFoundError:
        raise ConfigError(
            f"{path}: no such price file", hint="check --prices / TUNEPORT_PRICES"
        ) from None
    except OSError as exc:
        raise ConfigError(
            f"{path}: cannot read it: {exc.strerror}", hint="check --prices"
        ) from None
    if not stat.S_ISREG(info.st_mode):
        raise ConfigError(
            f"{path}: not a regular file (a folder, pipe or device)",
            hint="give --prices / TUNEPORT_PRICES a TOML file",
        )
    if info.st_size > MAX_PRICE_FILE_BYTES:
        raise ConfigError(f"{path}: too big for a price table (over 1 MiB)", hint="check --prices")
    try:
        with path.open("rb") as fh:
            return tomllib.load(fh)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: invalid TOML: {exc}", hint="fix the TOML syntax") from None
    except UnicodeDecodeError as exc:
        raise ConfigError(
            f"{path}: not UTF-8 text (byte {exc.start}); TOML files are UTF-8",
            hint="re-save the price file as UTF-8",
        ) from None
    except RecursionError:
        raise ConfigError(
            f"{path}: nested too deeply to be a price table", hint="see the layout in the README"
        ) from None
    except OSError as exc:
        raise ConfigError(
            f"{path}: cannot read it: {exc.strerror}", hint="check --prices"
        ) from None


def _check(raw: Mapping[str, Any], name: str) -> list[str]:
    data = dict(raw)
    if "schema" in data:
        data["schema_"] = data.pop("schema")
    try:
        _TableFile.model_validate(data)
    except ValidationError as exc:
        return [f"{name}: {_loc(e['loc'])}: {e['msg']}" for e in exc.errors()]
    return []


class PriceTable:
    """Merged price entries: ``lookup``, ``tunable`` and the ``files`` they came from."""

    def __init__(self, data: Mapping[str, Any], files: list[str], origin: Mapping[str, str]):
        self._data = data
        self.files = files
        self._origin = origin  # "provider/model" -> file that defines it
        errors: list[str] = []
        self._entries: dict[tuple[str, str, str], ModelPrice] = {}
        self._aliases: dict[tuple[str, str], str] = {}
        for prov_name, prov in data.get("providers", {}).items():
            defaults = {k: v for k, v in prov.items() if k != "models"}
            for model_name, fields in prov.get("models", {}).items():
                merged = {**defaults, **{k: v for k, v in fields.items() if k not in METHODS}}
                where = self._origin.get(f"{prov_name}/{model_name}", files[0])
                key = f"providers.{prov_name}.models.{_loc((model_name,))}"
                missing = [r for r in _REQUIRED if merged.get(r) is None]
                errors += [f"{where}: {key}.{m}: required (here or in provider)" for m in missing]
                if missing:
                    continue
                methods = [m for m in METHODS if m in fields]
                if not methods:
                    errors.append(f"{where}: {key}: no [sft] or [dpo] table")
                for method in methods:
                    self._entries[(prov_name, model_name, method)] = _entry(
                        prov_name, model_name, method, merged, fields[method]
                    )
                for alias in merged.get("aliases", []):
                    self._aliases[(prov_name, alias)] = model_name
        if errors:
            raise PriceTableError(errors)

    # -- queries
    def providers(self) -> list[str]:
        return list(dict.fromkeys(p for p, _, _ in self._entries))

    def models(self, provider: str) -> list[str]:
        return list(dict.fromkeys(m for p, m, _ in self._entries if p == provider))

    def entries(self) -> Iterator[ModelPrice]:
        yield from self._entries.values()

    def tunable(self, provider: str | None = None, *, method: str = "sft") -> list[ModelPrice]:
        """The models that can be tuned with ``method`` (at ``provider``, or everywhere)."""
        return [
            e
            for (p, _, m), e in self._entries.items()
            if (provider is None or p == provider) and m == method
        ]

    def resolve(self, provider: str, model: str) -> str | None:
        """The table's name for ``model``: itself, alias, ``ft:`` base, undated id, or ``*``."""
        known = {m for p, m, _ in self._entries if p == provider}
        candidates = [model]
        if model.startswith("ft:"):
            candidates.append(model[3:].split(":", 1)[0])
        candidates += [c.rsplit("/", 1)[-1] for c in candidates if "/" in c]
        candidates += [_DATE_SUFFIX.sub("", c) for c in candidates]
        for cand in candidates:
            if cand in known:
                return cand
            if (provider, cand) in self._aliases:
                return self._aliases[(provider, cand)]
        return WILDCARD if WILDCARD in known else None

    def lookup(
        self, provider: str, model: str, method: str = "sft", *, unlisted_ok: bool = False
    ) -> ModelPrice:
        """The entry for ``model`` (a dated alias or ``ft:`` id is fine) and ``method``.

        A model the table does not know is a :class:`ConfigError`, or with ``unlisted_ok`` an
        entry with the provider's defaults, no price and ``listed=False``: estimates then
        count its tokens and mark the cost unknown, and the provider decides whether it tunes.
        """
        if provider not in self.providers():
            raise ConfigError(
                f"no prices for provider {provider!r}",
                hint=f"use one of {', '.join(self.providers())} or add it with --prices FILE",
            )
        name = self.resolve(provider, model)
        if name is None and unlisted_ok:
            return self.unlisted(provider, model, method)
        if name is None:
            raise ConfigError(
                f"unknown {provider} model {model!r}",
                hint=f"known: {', '.join(self.models(provider))}; or add it with --prices FILE",
            )
        try:
            return self._entries[(provider, name, method)]
        except KeyError:
            with_method = [e.model for e in self.tunable(provider, method=method)]
            raise ConfigError(
                f"{provider} {name} cannot be tuned with method {method!r}",
                hint=f"models with {method}: {', '.join(with_method) or 'none'}",
            ) from None

    def unlisted(self, provider: str, model: str, method: str) -> ModelPrice:
        """An entry for a model the table does not have: the provider's defaults, no price."""
        section = self._data.get("providers", {}).get(provider, {})
        defaults = {k: v for k, v in section.items() if k != "models"}
        defaults["unverified"] = True
        defaults["source"] = "not in the price table"
        entry = _entry(provider, model, method, defaults, {})
        return dataclasses.replace(entry, listed=False)


class PriceTableError(ConfigError):
    """Problems in price file(s); ``problems`` holds one ``file: key: what`` line each."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        n = len(problems)
        super().__init__(
            f"{n} problem{'s' if n != 1 else ''} in the price table: " + "; ".join(problems),
            hint="fix these keys in the price file (layout: `tuneport prices --help`)",
        )


def _entry(
    provider: str, model: str, method: str, f: Mapping[str, Any], m: Mapping[str, Any]
) -> ModelPrice:
    if not all(k in f for k in _REQUIRED):  # an unlisted model of a provider without defaults
        f = {"source": "not in the price table", "as_of": "-", "epoch_rule": "fixed", **f}
    as_of = f["as_of"]
    return ModelPrice(
        provider=provider,
        model=model,
        method=method,
        training_per_million=m.get("training_per_million"),
        source=f["source"],
        as_of=as_of.isoformat() if isinstance(as_of, date) else str(as_of),
        unverified=bool(f.get("unverified", False)),
        epoch_rule=f["epoch_rule"],
        default_epochs=f.get("default_epochs"),
        min_epochs=f.get("min_epochs") or 1,
        max_epochs=f.get("max_epochs"),
        inference_input_per_million=f.get("inference_input_per_million"),
        inference_output_per_million=f.get("inference_output_per_million"),
        aliases=tuple(f.get("aliases", ())),
        billing=f.get("billing"),
        paid=f.get("paid") is not False,
        tuning_ends=_iso(f.get("tuning_ends")),
        tuning_ends_source=f.get("tuning_ends_source"),
        shutdown_date=_iso(f.get("shutdown_date")),
        shutdown_source=f.get("shutdown_source"),
        deployment_per_hour=f.get("deployment_per_hour"),
        deployment_source=f.get("deployment_source"),
    )


def lifecycle_text(tuning_ends: str | None, shutdown: str | None, today: date | None = None) -> str:
    """The dates a provider stops tuning a model and stops serving it, past or future."""
    day = today or date.today()

    def when(iso: str, past: str, future: str) -> str:
        try:
            ended = date.fromisoformat(iso) <= day
        except ValueError:
            ended = False
        return f"{past if ended else future} {iso}"

    parts = []
    if tuning_ends:
        parts.append(when(tuning_ends, "tuning ended", "tuning ends"))
    if shutdown:
        parts.append(when(shutdown, "stopped working", "stops working"))
    return ", ".join(parts)


def _mapping(value: Any) -> Mapping[str, Any]:
    """``value`` if it is a table, else an empty one (its wrong shape is reported by _check)."""
    return value if isinstance(value, Mapping) else {}


def _iso(value: Any) -> str | None:
    if value is None:
        return None
    return value.isoformat() if isinstance(value, date) else str(value)


def builtin_path() -> Path:
    return Path(str(resources.files("tuneport.pricing").joinpath("prices.toml")))


def load_prices(
    path: Path | None = None, *, sections: Mapping[str, Mapping[str, Any]] | None = None
) -> PriceTable:
    """The built-in table merged with ``path`` (or ``$TUNEPORT_PRICES``) if given.

    ``sections`` adds provider sections (``{name: {...}}`` in the file's layout) that plugins
    ship with their descriptors; the built-in table and a user file take precedence.
    """
    base_path = builtin_path()
    base = _read(base_path)
    for name, section in (sections or {}).items():
        if name not in base.get("providers", {}):
            base.setdefault("providers", {})[name] = dict(section)
    files = [str(base_path)]
    errors = _check(base, str(base_path))
    origin = {
        f"{p}/{m}": str(base_path)
        for p, prov in _mapping(base.get("providers")).items()
        if isinstance(prov, dict)
        for m in _mapping(prov.get("models"))
    }
    env = os.environ.get(PRICES_ENV)
    override = path if path is not None else (Path(env).expanduser() if env else None)
    data = base
    if override is not None:
        user = _read(override)
        files.append(str(override))
        errors += _check(user, str(override))
        for p, prov in _mapping(user.get("providers")).items():
            if isinstance(prov, dict):
                for m in _mapping(prov.get("models")):
                    origin[f"{p}/{m}"] = str(override)
        data = _merge(base, user)
    if errors:
        raise PriceTableError(errors)
    return PriceTable(data, files, origin)
