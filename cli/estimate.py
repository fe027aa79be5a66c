"""Commands ``estimate``, ``plan`` and ``prices``: token counts and dated costs before launch."""

from pathlib import Path
from typing import Annotated, Any

import typer

from tuneport.cli._console import print_json
from tuneport.cli._names import PROVIDER_HELP

_Prices = Annotated[
    Path | None,
    typer.Option(
        "--prices",
        help="TOML price file merged over the built-in table (or set TUNEPORT_PRICES).",
        dir_okay=False,
    ),
]
_Json = Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")]
_Method = Annotated[str, typer.Option("--method", help="sft (supervised) or dpo (preference).")]

# the tuning/shutdown dates wrap onto a second line rather than push figures out of a table
LIFECYCLE_WIDTH = 24


def _money(value: float | None, band: float | None = None) -> str:
    if value is None:
        return "—"
    text = f"${value:,.2f}" if value >= 0.01 or value == 0 else f"${value:.4f}"
    return f"≈{text} (±{band:.0%})" if band is not None else text


def _rate(value: float | None) -> str:
    return "—" if value is None else f"${value:,.2f}"


def _tokens(n: int, exact: bool, band: float | None) -> str:
    from tuneport.tokens import describe

    return describe(n, band=None if exact else (band or 0.0))


def _method(value: str) -> Any:
    from tuneport.errors import ConfigError
    from tuneport.pricing.table import METHODS

    if value not in METHODS:
        raise ConfigError(f"unknown method {value!r}", hint=f"use --method {'|'.join(METHODS)}")
    return value


def load_prices_or_exit(path: Path | None, providers: list[str] | None = None) -> Any:
    """The price table (with the sections plugin ``providers`` ship); every problem in a price
    file is printed on its own line, with its fix (as every other error)."""
    from tuneport.cli._console import err
    from tuneport.pricing.table import PriceTableError
    from tuneport.providers.registry import load_price_table

    try:
        return load_price_table(path, providers)
    except PriceTableError as exc:
        for line in exc.problems:
            err.print(f"error: {line} (fix: {exc.hint})", markup=False, soft_wrap=True)
        raise typer.Exit(exc.exit_code) from None


def _print_lines(*lines: str) -> None:
    """Plain notes under a table, wrapped at the terminal's width."""
    from tuneport.cli._console import out

    for line in lines:
        out.print(line, markup=False, soft_wrap=False)


def _print_estimate(est: Any, counter_label: str, auto_epochs: bool, rule: str) -> None:
    """Render a :class:`tuneport.schemas.Estimate` (schemas imported lazily: fast start)."""
    from rich.markup import escape
    from rich.table import Table

    from tuneport.cli._console import out

    band = None if est.exact else est.error_band
    table = Table(show_header=False, box=None, pad_edge=False)
    table.add_column(style="bold", no_wrap=True)
    table.add_column()  # long values wrap at spaces; the price's source (URLs) goes below
    table.add_row("provider / model", f"{est.provider} {est.model} ({est.method})")
    table.add_row("examples", f"{est.examples:,}")
    exactness = "exact" if est.exact else "approximate"
    table.add_row(
        "training tokens"
        if est.price_per_million_usd is not None or est.cost_unknown
        else "tokens per epoch",
        f"{_tokens(est.tokens, est.exact, band)}  [{counter_label}, {exactness}]",
    )
    if est.validation_tokens is not None:
        table.add_row(
            "validation tokens",
            f"{_tokens(est.validation_tokens, est.exact, band)} (not billed)",
        )
    table.add_row("epochs", f"{est.epochs}" + (f" (auto: {rule} rule)" if auto_epochs else ""))
    billed = est.price_per_million_usd is not None or est.cost_unknown  # else: own hardware
    table.add_row(
        "billed tokens" if billed else "trained tokens",
        _tokens(est.billed_tokens, est.exact, band),
    )
    if est.price_per_million_usd is not None:
        table.add_row(
            "price",
            f"{_rate(est.price_per_million_usd)} per 1M training tokens "
            f"(as of {est.price_as_of}; source below)",
        )
    elif est.cost_unknown:
        table.add_row("price", "unknown (see the warning)")
    else:
        table.add_row("price", "none (your own hardware)")
    table.add_row("estimated cost", "unknown" if est.cost_unknown else _money(est.cost_usd, band))
    if est.steps is not None:
        table.add_row("optimizer steps", f"{est.steps:,}")
    if est.gpu_memory_gib is not None:
        table.add_row("GPU memory (QLoRA)", f"≈{est.gpu_memory_gib:.1f} GiB")
    out.print(table)
    if est.price_per_million_usd is not None and est.price_source:
        # on its own line so a URL is never cut or broken by the table's column width
        out.print(f"price source: {escape(est.price_source)}", highlight=False)
    for note in est.notes:
        out.print(f"note: {escape(note)}", highlight=False, soft_wrap=False)
    for warning in est.warnings:
        out.print(f"[yellow]warning:[/] {escape(warning)}", highlight=False, soft_wrap=False)


def estimate_command(
    data: Annotated[
        Path, typer.Argument(help="Training data file (any supported format); - reads stdin.")
    ],
    provider: Annotated[str, typer.Option("--provider", "-p", help=PROVIDER_HELP)],
    model: Annotated[str, typer.Option("--model", "-m", help="Base model id, alias or path.")],
    method: _Method = "sft",
    epochs: Annotated[
        int | None, typer.Option("--epochs", help="Epochs (default: the provider's auto rule).")
    ] = None,
    validation: Annotated[
        Path | None, typer.Option("--validation", help="Validation file (counted, not billed).")
    ] = None,
    batch_size: Annotated[
        int | None, typer.Option("--batch-size", help="Local: per-device batch size.")
    ] = None,
    online: Annotated[
        bool,
        typer.Option(
            "--online",
            help="Exact counts: the provider's API (Vertex, Together), or the base model's "
            "tokenizer from the Hugging Face Hub (local, Fireworks).",
        ),
    ] = False,
    prices: _Prices = None,
    max_cost: Annotated[
        float | None,
        typer.Option("--max-cost", help="Fail (exit 5) if the estimate exceeds this many USD."),
    ] = None,
    fmt: Annotated[
        str | None, typer.Option("--from", help="Input format (default: detected from content).")
    ] = None,
    sets: Annotated[
        list[str] | None,
        typer.Option(
            "--set",
            help="Backend setting key=value for --online (repeatable), e.g. project=P.",
            show_default=False,
        ),
    ] = None,
    as_json: _Json = False,
) -> None:
    """Tokens, epochs, billed tokens and cost of a tuning run, before launching it."""
    from tuneport.cli._stdio import reading

    with reading(data) as source:
        _estimate(
            source,
            provider,
            model,
            method,
            epochs,
            validation,
            batch_size,
            online,
            prices,
            max_cost,
            fmt,
            sets,
            as_json,
        )


def _estimate(
    data: Path,
    provider: str,
    model: str,
    method: str,
    epochs: int | None,
    validation: Path | None,
    batch_size: int | None,
    online: bool,
    prices: Path | None,
    max_cost: float | None,
    fmt: str | None,
    sets: list[str] | None,
    as_json: bool,
) -> None:
    from tuneport.cli._console import notice_once
    from tuneport.files import require_file
    from tuneport.jobs.jobfile import build_config, parse_set
    from tuneport.jobs.quote import counted_with, estimate, quote_for
    from tuneport.pricing.budget import check_budget, resolve_budget
    from tuneport.tokens.approx import label_for

    require_file(data)
    table = load_prices_or_exit(prices, [provider])
    settings = parse_set(sets or [])
    flags = {
        "provider": provider,
        "model": model,
        "data": data,
        "method": _method(method),
        "epochs": epochs,
        "validation": validation,
        "batch_size": batch_size,
        "max_cost": max_cost,
    }
    cfg = build_config(overrides=flags, options=settings)  # the checks `train` makes, one line
    quote = quote_for(
        provider, model, cfg.method, prices=table, online=online, settings=settings or None
    )
    budget = resolve_budget(max_cost, cfg)
    limit = budget.limit if budget is not None else None
    notice = quote.backend.notice_text(settings)
    if notice and not as_json:
        notice_once(notice)
    est = estimate(cfg, quote=quote, fmt=fmt)
    if as_json:
        print_json(
            est.model_dump(mode="json")
            | {
                "token_counter": label_for(counted_with(quote, est), est.method),
                "epochs_auto": epochs is None,
                "epoch_rule": quote.price.epoch_rule,
                "price_unverified": quote.price.unverified,
                "max_cost_usd": limit,
            }
        )
    else:
        label = label_for(counted_with(quote, est), est.method)
        _print_estimate(est, label, epochs is None, quote.price.epoch_rule)
    if budget is not None:
        check_budget(est, budget.limit, source=budget.source)


def plan_command(
    data: Annotated[Path, typer.Argument(help="Training data file (any supported format).")],
    method: _Method = "sft",
    provider: Annotated[
        list[str] | None, typer.Option("--provider", "-p", help="Only these providers.")
    ] = None,
    prices: _Prices = None,
    fmt: Annotated[
        str | None, typer.Option("--from", help="Input format (default: detected from content).")
    ] = None,
    as_json: _Json = False,
) -> None:
    """Validate and price one dataset for every provider and model side by side."""
    from rich import box
    from rich.markup import escape
    from rich.table import Table

    from tuneport.cli._console import out
    from tuneport.cli._render import fit_table
    from tuneport.files import require_file
    from tuneport.jobs.plan import as_json as plan_json
    from tuneport.jobs.plan import plan
    from tuneport.providers import registry
    from tuneport.tokens.approx import label_for

    require_file(data)
    table = load_prices_or_exit(prices, provider or registry.names())
    rows = plan(data, method=_method(method), prices=table, fmt=fmt, providers=provider)
    if as_json:
        print_json(plan_json(rows))
        return
    bands: set[str] = set()
    for r in rows:
        if not r.exact and r.error_band is not None:
            bands.add(f"{r.provider}: {label_for(r.token_counter, _method(method))}")

    def check(r: Any) -> str:
        if not r.valid:
            return f"[red]no[/] ({r.errors} err)"
        warnings = r.problems - r.errors
        return "[green]yes[/]" + (f" ({warnings} warn)" if warnings else "")

    def mark(r: Any) -> str:
        return "" if r.exact else "≈"

    cells: dict[str, tuple[str, Any]] = {
        "provider": ("left", lambda r: r.provider),
        "model": (
            "left",
            lambda r: "(any local model)" if r.model == "*" else escape(r.model),
        ),
        # its own column that wraps at spaces, so a model id is never cut to make room for it
        "lifecycle": ("left", lambda r: r.lifecycle or ""),
        "valid": ("left", check),
        "tokens": ("right", lambda r: f"{mark(r)}{r.tokens:,}"),
        "epochs": ("right", lambda r: str(r.epochs)),
        "billed": ("right", lambda r: f"{mark(r)}{r.billed_tokens:,}"),
        "$/1M": (
            "right",
            lambda r: (
                _rate(r.price_per_million_usd)
                + ("*" if r.unverified and r.price_per_million_usd is not None else "")
            ),
        ),
        "cost": (
            "right",
            lambda r: (
                "unknown"
                if r.cost_unknown
                else "own GPU"
                if r.cost_usd is None
                else mark(r) + _money(r.cost_usd)
            ),
        ),
    }

    def build(columns: Any) -> Table:
        grid = Table(
            title=f"tuneport plan: {escape(str(data))} ({method})",
            title_justify="left",
            box=box.SIMPLE_HEAD,
            pad_edge=False,
            collapse_padding=True,
        )
        for name in columns:
            justify, _ = cells[name]
            # figures and names are never broken; only the prose columns' words wrap
            grid.add_column(
                name,
                justify="right" if justify == "right" else "left",
                no_wrap=name not in ("valid", "lifecycle"),
                max_width=LIFECYCLE_WIDTH if name == "lifecycle" else None,
            )
        for r in rows:
            grid.add_row(*(cells[name][1](r) for name in columns))
        return grid

    shown = fit_table(out, build, list(cells), ["tokens", "epochs", "$/1M"])
    out.print(shown)
    dropped = [c for c in cells if c not in [col.header for col in shown.columns]]
    notes = []
    if bands:
        notes.append("≈ approximate token counts: " + "; ".join(sorted(bands)))
    dates = sorted({r.price_as_of for r in rows})
    notes.append(
        f"billed = tokens × epochs; prices as of {', '.join(dates)}; * = unverified (see "
        "`tuneport prices`, override with --prices FILE). Epochs: the provider's auto rule."
        + (f" Not shown at this width: {', '.join(dropped)} (--json has all)." if dropped else "")
    )
    notes.append(
        "Details: `tuneport validate DATA --provider P`, `tuneport estimate DATA -p P -m M`."
    )
    _print_lines(*notes)


def prices_command(
    provider: Annotated[
        str | None, typer.Option("--provider", "-p", help="Only this provider.")
    ] = None,
    prices: _Prices = None,
    as_json: _Json = False,
) -> None:
    """Show the price table with each entry's date and source."""
    from rich import box
    from rich.markup import escape
    from rich.table import Table

    from tuneport.cli._console import out
    from tuneport.cli._render import fit_table
    from tuneport.errors import ConfigError
    from tuneport.providers import registry

    if provider is not None:
        registry.backend(provider)  # unknown provider: exit 3 like every other command
    table = load_prices_or_exit(prices)
    entries = [e for e in table.entries() if provider is None or e.provider == provider]

    def rules(e: Any) -> tuple[int | None, int]:
        """(per-example token limit, minimum examples) from the backend's rules."""
        described = registry.backend(e.provider)
        return described.limit_for(e.model), described.rules.min_examples

    if provider is not None and not entries:
        raise ConfigError(
            f"no prices for provider {provider!r}",
            hint=f"use one of {', '.join(table.providers())}",
        )
    facts = {
        p: _rule_facts(registry.backend(p).rules)
        for p in dict.fromkeys(e.provider for e in entries)
    }
    if as_json:
        doc = {
            "files": [shown_path(f) for f in table.files],
            "entries": [
                e.as_dict() | dict(zip(("token_limit", "min_examples"), rules(e), strict=True))
                for e in entries
            ],
            "rules": {
                p: [dict(zip(("fact", "value", "source"), f, strict=True)) for f in fs]
                for p, fs in facts.items()
            },
        }
        print_json(doc)
        return

    def inference(e: Any) -> str:
        if e.inference_input_per_million is None or e.inference_output_per_million is None:
            return "—"
        return f"{_rate(e.inference_input_per_million)}/{_rate(e.inference_output_per_million)}"

    def limit(e: Any) -> str:
        value = rules(e)[0]
        return "—" if value is None else f"{value:,}"

    cells: dict[str, Any] = {
        "provider": lambda e: e.provider,
        "model": lambda e: "(any)" if e.model == "*" else escape(e.model),
        "lifecycle": lambda e: e.lifecycle(),
        "aliases": lambda e: escape(", ".join(e.aliases)),
        "method": lambda e: e.method,
        "training": lambda e: _rate(e.training_per_million),
        "tuned in/out": inference,
        "epochs (auto)": lambda e: (
            e.epoch_rule + (f" ({e.default_epochs})" if e.epoch_rule == "fixed" else "")
        ),
        "max tok/ex": limit,
        "min ex": lambda e: str(rules(e)[1]),
        "as of": lambda e: e.as_of + ("*" if e.unverified else ""),
    }
    numeric = {"training", "tuned in/out", "max tok/ex", "min ex"}

    def build(columns: Any) -> Table:
        grid = Table(
            title="tuneport price table (USD per 1M tokens)",
            title_justify="left",
            box=box.SIMPLE_HEAD,
            pad_edge=False,
            collapse_padding=True,
        )
        for name in columns:
            grid.add_column(  # names and figures are never broken; aliases and rules wrap
                name,
                justify="right" if name in numeric else "left",
                no_wrap=name not in ("aliases", "epochs (auto)", "lifecycle"),
                max_width=LIFECYCLE_WIDTH if name == "lifecycle" else None,
            )
        for e in entries:
            grid.add_row(*(cells[name](e) for name in columns))
        return grid

    optional = ["aliases", "max tok/ex", "min ex", "epochs (auto)", "tuned in/out"]
    shown = fit_table(out, build, list(cells), optional)
    out.print(shown)
    headers = [col.header for col in shown.columns]
    dropped = [c for c in cells if c not in headers]
    sources: dict[str, str] = {}
    for e in entries:
        sources.setdefault(e.source, e.provider)
    notes = ["* = unverified: check the source before relying on it"]
    if dropped:
        notes.append(f"not shown at this width: {', '.join(dropped)} (--json has all)")
    notes += [f"source ({prov}): {source}" for source, prov in sources.items()]
    ends: dict[tuple[str, str, str], list[str]] = {}
    for e in entries:
        if e.tuning_ends and e.tuning_ends_source:
            models = ends.setdefault((e.provider, e.tuning_ends, e.tuning_ends_source), [])
            models += [] if e.model in models else [e.model]
    for (prov, day, source), models in ends.items():
        notes.append(f"tuning ends {day} ({prov} {', '.join(models)}): {source}")
    shutdowns: dict[tuple[str, str, str], list[str]] = {}
    for e in entries:
        if e.shutdown_date and e.shutdown_source:
            models = shutdowns.setdefault((e.provider, e.shutdown_date, e.shutdown_source), [])
            models += [] if e.model in models else [e.model]
    for (prov, day, source), models in shutdowns.items():
        notes.append(f"stops working {day} ({prov} {', '.join(models)}): {source}")
    for prov, found in facts.items():
        for fact, value, source in found:
            stated = f"{fact} = {value}" if value else fact
            notes.append(f"rule ({prov}) {stated}: {source}")
    notes.append("files: " + ", ".join(shown_path(f) for f in table.files))
    _print_lines(*notes)


def shown_path(path: str) -> str:
    """A price file as users know it: the source checkout's file (an editable install links
    ``build/__editable__...`` to it) relative to the current folder when inside it."""
    resolved = Path(path).resolve()
    try:
        return str(resolved.relative_to(Path.cwd()))
    except ValueError:
        return str(resolved)


def _rule_facts(rules: Any) -> list[tuple[str, str, str]]:
    """(fact, value, source) of a backend's validation rules, for ``tuneport prices``."""
    found = [
        ("min_examples", str(rules.min_examples), rules.source_of("min_examples")),
        (
            "recommended_examples",
            str(rules.recommended_examples),
            rules.source_of("recommended_examples"),
        ),
        ("token_limit", f"{rules.token_limit}", rules.source_of("token_limit")),
    ]
    for prefix, limit in rules.model_limits.items():
        found.append(
            (f"token_limit:{prefix}", str(limit), rules.source_of(f"token_limit:{prefix}"))
        )
    shown = {f for f, _, _ in found}
    found += [(k, "", v) for k, v in rules.sources.items() if k not in shown]
    return found


def register(app: typer.Typer) -> None:
    """Add ``estimate``, ``plan`` and ``prices`` to ``app``."""
    app.command("estimate")(estimate_command)
    app.command("plan")(plan_command)
    app.command("prices")(prices_command)
