"""Commands ``estimate``, ``plan`` and ``prices``: token counts and dated costs before launch."""

from pathlib import Path
from typing import Annotated, Any

import typer

from tuneport.cli._console import print_json

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
    file is printed on its own line."""
    from tuneport.cli._console import err
    from tuneport.pricing.table import PriceTableError
    from tuneport.providers.registry import load_price_table

    try:
        return load_price_table(path, providers)
    except PriceTableError as exc:
        for line in exc.problems:
            err.print(f"error: {line}", markup=False)
        err.print(f"fix: {exc.hint}", markup=False)
        raise typer.Exit(exc.exit_code) from None


def _print_wide(table: Any) -> None:
    """Print a table at its natural width: never hide figures behind an ellipsis."""
    from rich.console import Console
    from rich.measure import Measurement

    from tuneport.cli._console import out

    natural = Measurement.get(out, out.options.update(width=1000), table).maximum
    if natural <= out.width:
        out.print(table)
        return
    wide = Console(
        file=out.file,
        width=natural,
        highlight=False,
        soft_wrap=True,
        force_terminal=out.is_terminal,
        color_system=out.color_system,  # type: ignore[arg-type]
        no_color=out.no_color,
    )
    wide.print(table)


def _print_estimate(est: Any, counter_label: str, auto_epochs: bool, rule: str) -> None:
    """Render a :class:`tuneport.schemas.Estimate` (schemas imported lazily: fast start)."""
    from rich.table import Table

    from tuneport.cli._console import out

    band = None if est.exact else est.error_band
    table = Table(show_header=False, box=None, pad_edge=False)
    table.add_column(style="bold")
    table.add_column()
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
    table.add_row("billed tokens", _tokens(est.billed_tokens, est.exact, band))
    if est.price_per_million_usd is not None:
        table.add_row(
            "price",
            f"{_rate(est.price_per_million_usd)} per 1M training tokens "
            f"(as of {est.price_as_of}; {est.price_source})",
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
    _print_wide(table)
    for warning in est.warnings:
        out.print(f"[yellow]warning:[/] {warning}", highlight=False)


def estimate_command(
    data: Annotated[Path, typer.Argument(help="Training data file (any supported format).")],
    provider: Annotated[str, typer.Option("--provider", "-p", help="openai|vertex|local")],
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
        bool, typer.Option("--online", help="Exact counts from the provider's API (Vertex).")
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
    from tuneport.cli._console import notice_once
    from tuneport.files import require_file
    from tuneport.jobs.jobfile import parse_set
    from tuneport.jobs.quote import estimate, quote_for
    from tuneport.pricing.budget import check_budget, resolve_budget
    from tuneport.schemas import JobConfig

    require_file(data)
    table = load_prices_or_exit(prices, [provider])
    settings = parse_set(sets or [])
    cfg = JobConfig(
        provider=provider,
        model=model,
        data=data,
        method=_method(method),
        epochs=epochs,
        validation=validation,
        batch_size=batch_size,
        max_cost=max_cost,
        options=settings,
    )
    quote = quote_for(
        provider, model, cfg.method, prices=table, online=online, settings=settings or None
    )
    budget = resolve_budget(max_cost, cfg)
    limit = budget.limit if budget is not None else None
    if quote.backend.notice and not as_json:
        notice_once(quote.backend.notice)
    est = estimate(cfg, quote=quote, fmt=fmt)
    if as_json:
        print_json(
            est.model_dump(mode="json")
            | {
                "token_counter": quote.counter.label,
                "epochs_auto": epochs is None,
                "epoch_rule": quote.price.epoch_rule,
                "price_unverified": quote.price.unverified,
                "max_cost_usd": limit,
            }
        )
    else:
        _print_estimate(est, quote.counter.label, epochs is None, quote.price.epoch_rule)
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
    from rich.table import Table

    from tuneport.cli._console import out
    from tuneport.files import require_file
    from tuneport.jobs.plan import as_json as plan_json
    from tuneport.jobs.plan import plan
    from tuneport.providers import registry

    require_file(data)
    table = load_prices_or_exit(prices, provider or registry.names())
    rows = plan(data, method=_method(method), prices=table, fmt=fmt, providers=provider)
    if as_json:
        print_json(plan_json(rows))
        return
    grid = Table(title=f"tuneport plan: {data} ({method})", title_justify="left")
    for name, justify in (
        ("provider", "left"),
        ("model", "left"),
        ("valid", "center"),
        ("problems", "right"),
        ("tokens", "right"),
        ("epochs", "right"),
        ("billed tokens", "right"),
        ("$/1M", "right"),
        ("cost", "right"),
    ):
        grid.add_column(name, justify=justify)  # type: ignore[arg-type]
    bands: set[str] = set()
    for r in rows:
        mark = "" if r.exact else "≈"
        if not r.exact and r.error_band is not None:
            bands.add(f"{r.provider}: {r.token_counter}")
        rate = _rate(r.price_per_million_usd)
        cost = mark + _money(r.cost_usd) if r.cost_usd is not None else "own GPU"
        if r.cost_unknown:
            cost = "unknown"
        grid.add_row(
            r.provider,
            "(any local model)" if r.model == "*" else r.model,
            "[green]yes[/]" if r.valid else "[red]no[/]",
            f"{r.problems} ({r.errors} err)" if r.problems else "0",
            f"{mark}{r.tokens:,}",
            str(r.epochs),
            f"{mark}{r.billed_tokens:,}",
            rate + ("*" if r.unverified and r.price_per_million_usd is not None else ""),
            cost,
        )
    _print_wide(grid)
    if bands:
        out.print("≈ approximate token counts: " + "; ".join(sorted(bands)), markup=False)
    dates = sorted({r.price_as_of for r in rows})
    out.print(
        f"prices as of {', '.join(dates)}; * = unverified (see `tuneport prices`, override "
        "with --prices FILE). Epochs: the provider's auto rule. "
        "Details: `tuneport validate DATA --provider P`, `tuneport estimate DATA -p P -m M`.",
        markup=False,
    )


def prices_command(
    provider: Annotated[
        str | None, typer.Option("--provider", "-p", help="Only this provider.")
    ] = None,
    prices: _Prices = None,
    as_json: _Json = False,
) -> None:
    """Show the price table with each entry's date and source."""
    from rich.table import Table

    from tuneport.cli._console import out
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
            "files": table.files,
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
    grid = Table(title="tuneport price table (USD per 1M tokens)", title_justify="left")
    for name in (
        "provider",
        "model",
        "method",
        "training",
        "tuned in/out",
        "epochs (auto)",
        "max tok/ex",
        "min ex",
        "as of",
    ):
        grid.add_column(name)
    sources: dict[str, str] = {}
    for e in entries:
        sources.setdefault(e.source, e.provider)
        inference = (
            f"{_rate(e.inference_input_per_million)}/{_rate(e.inference_output_per_million)}"
            if e.inference_input_per_million is not None
            and e.inference_output_per_million is not None
            else "—"
        )
        epochs = e.epoch_rule + (f" ({e.default_epochs})" if e.epoch_rule == "fixed" else "")
        limit, minimum = rules(e)
        grid.add_row(
            e.provider,
            ("(any)" if e.model == "*" else e.model)
            + (f" [dim]({', '.join(e.aliases)})[/]" if e.aliases else ""),
            e.method,
            _rate(e.training_per_million),
            inference,
            epochs,
            "—" if limit is None else f"{limit:,}",
            str(minimum),
            e.as_of
            + (" [yellow]unverified[/]" if e.unverified else "")
            + (f" [red]tuning ends {e.tuning_ends}[/]" if e.tuning_ends else ""),
        )
    _print_wide(grid)
    for source, prov in sources.items():
        out.print(f"source ({prov}): {source}", markup=False)
    ends: dict[tuple[str, str, str], list[str]] = {}
    for e in entries:
        if e.tuning_ends and e.tuning_ends_source:
            models = ends.setdefault((e.provider, e.tuning_ends, e.tuning_ends_source), [])
            models += [] if e.model in models else [e.model]
    for (prov, day, source), models in ends.items():
        out.print(f"tuning ends {day} ({prov} {', '.join(models)}): {source}", markup=False)
    for prov, found in facts.items():
        for fact, value, source in found:
            shown = f"{fact} = {value}" if value else fact
            out.print(f"rule ({prov}) {shown}: {source}", markup=False)
    out.print("files: " + ", ".join(table.files), markup=False)


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
