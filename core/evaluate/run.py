"""Side-by-side evaluation of models on held-out data (``tuneport eval``).

Every held-out record becomes a :class:`EvalCase`: the *prompt* is every turn before the last
assistant turn, the *reference* is that last assistant turn's text (for a preference pair: the
prompt and the chosen reply). Each model (any backend: ``ft:...``, a Vertex endpoint,
``local:ID``, a job id from the store, or a base model as ``provider:model``) answers every
prompt through ``provider.chat`` with bounded concurrency and retries; answers are scored with
:mod:`tuneport.evaluate.metrics` and written as a Markdown + CSV (+ JSON) report.

Cost: before any remote call, :func:`estimate_cost` prices each model at
``prompt tokens × input price + prompts × max answer tokens × output price`` from the price
table's ``inference_*_per_million`` (the rates for tuned models, an upper bound for base
models); :func:`check_eval_budget` applies ``--max-cost`` through :mod:`tuneport.pricing.budget`.
"""

from __future__ import annotations

import csv
import io
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import FIRST_EXCEPTION, Future, ThreadPoolExecutor, wait
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from tuneport.curate.stats import message_text
from tuneport.errors import (
    AuthError,
    BudgetError,
    ConfigError,
    InputError,
    NotFoundError,
    ProviderError,
    TuneportError,
    UnreachableError,
)
from tuneport.evaluate.metrics import METRICS
from tuneport.files import atomic_writer, check_output
from tuneport.jobs.resolve import base_model_of, resolve_target
from tuneport.jobs.store import open_store
from tuneport.progress import NullProgress, Progress
from tuneport.providers import registry
from tuneport.providers.base import ChatOptions, ConcurrencyLimited, Provider
from tuneport.retry import RetryPolicy, call_with_retry
from tuneport.schemas import AnyRecord, Estimate, Example, Message

FATAL = (AuthError, NotFoundError, ConfigError, InputError, BudgetError, UnreachableError)
"""Errors that would hit every call alike (an unreachable model included): stop the whole run
instead of asking the next prompt."""


class EvalCase(BaseModel):
    """One held-out prompt and its reference answer."""

    model_config = ConfigDict(extra="forbid")

    index: int
    line: int
    prompt: list[Message]
    reference: str


class EvalTarget(BaseModel):
    """One model to evaluate: what the user typed and what it resolved to."""

    model_config = ConfigDict(extra="forbid")

    spec: str
    provider: str
    model: str
    settings: dict[str, Any] = Field(default_factory=dict, exclude=True)  # never written out
    # the model whose price applies: a tuned model's base model when a stored job made it
    price_model: str | None = None


class Answer(BaseModel):
    """One model's answer to one case, with its scores (0 when the call failed)."""

    model_config = ConfigDict(extra="forbid")

    text: str | None = None
    error: str | None = None
    attempts: int = 0
    seconds: float = 0.0
    exact_match: float = 0.0
    token_f1: float = 0.0
    rouge_l: float = 0.0


class ModelSummary(BaseModel):
    """Mean scores of one model over all cases (a failed answer scores 0)."""

    model_config = ConfigDict(extra="forbid")

    spec: str
    answered: int
    failed: int
    exact_match: float
    token_f1: float
    rouge_l: float
    mean_seconds: float


class EvalOptions(BaseModel):
    model_config = ConfigDict(extra="forbid")

    max_tokens: int = Field(default=512, ge=1)
    temperature: float | None = 0.0
    concurrency: int = Field(default=4, ge=1, le=64)
    attempts: int = Field(default=3, ge=1, le=10)  # first try included
    retry_delay: float = Field(default=1.0, ge=0)


class EvalReport(BaseModel):
    """Everything an eval run produced: cases × targets answers and per-model summaries."""

    model_config = ConfigDict(extra="forbid")

    data: str | None = None
    options: EvalOptions
    targets: list[EvalTarget]
    cases: list[EvalCase]
    answers: list[list[Answer]]  # [case][target]
    summary: list[ModelSummary]

    @property
    def failed(self) -> int:
        return sum(s.failed for s in self.summary)


# --- cases -------------------------------------------------------------------------------------


def case_from_record(index: int, line: int, record: AnyRecord, *, where: str) -> EvalCase:
    """Split a record into prompt and reference (see the module docstring)."""
    if isinstance(record, Example):
        last = next(
            (
                i
                for i in range(len(record.messages) - 1, -1, -1)
                if record.messages[i].role == "assistant"
            ),
            None,
        )
        if last is None:
            raise InputError(
                "held-out example has no assistant turn to use as the reference answer",
                hint="end each held-out example with the expected assistant reply",
                where=where,
            )
        prompt = list(record.messages[:last])
        reference = message_text(record.messages[last])
    else:
        prompt = list(record.prompt)
        reference = message_text(record.chosen)
    if not any(m.role == "user" for m in prompt):
        raise InputError(
            "held-out example has no user turn before its reference answer",
            hint="put the question in a user turn before the expected reply",
            where=where,
        )
    return EvalCase(index=index, line=line, prompt=prompt, reference=reference)


def cases_from_records(
    records: Iterable[tuple[int, AnyRecord]], *, source: str = "data", limit: int | None = None
) -> list[EvalCase]:
    """Cases for ``(line, record)`` pairs, the first ``limit`` only if given."""
    cases: list[EvalCase] = []
    for index, (line, record) in enumerate(records):
        if limit is not None and index >= limit:
            break
        cases.append(case_from_record(index, line, record, where=f"{source}:{line}"))
    if not cases:
        raise InputError(f"{source} holds no held-out examples", hint="pass a non-empty file")
    return cases


def prompt_text(case: EvalCase) -> str:
    """The prompt as one text: ``role: text`` per turn."""
    return "\n".join(f"{m.role}: {message_text(m)}" for m in case.prompt)


# --- model specs -------------------------------------------------------------------------------


def resolve_spec(spec: str) -> tuple[str, str, dict[str, Any]]:
    """``(provider, model, settings)`` for a ``--model`` spec.

    ``provider:model`` (``openai:gpt-4.1-mini``, ``vertex:gemini-2.5-flash``) names a base model
    at a provider; anything else (``ft:...``, ``local:ID``, a Vertex endpoint, a job id from the
    store) goes to :func:`tuneport.jobs.resolve.resolve_target`.
    """
    try:
        return resolve_target(spec)
    except ConfigError as exc:
        raise ConfigError(
            exc.message,
            hint="write a base model as provider:model, e.g. openai:gpt-4.1-mini, or pass a "
            "tuned model id (ft:..., local:ID, a Vertex endpoint) or a job id",
        ) from None


def resolve_targets(
    specs: Sequence[str], *, settings: Mapping[str, Any] | None = None
) -> list[EvalTarget]:
    """Resolve each ``--model`` spec to its provider, model id and provider settings
    (``settings``, from ``--set``, laid over each target's own)."""
    if not specs:
        raise ConfigError("no model to evaluate", hint="pass --model at least once")
    if len(set(specs)) != len(specs):
        raise ConfigError("the same --model is given twice", hint="list each model once")
    targets = []
    for spec in specs:
        provider, model, stored = resolve_spec(spec)
        targets.append(
            EvalTarget(
                spec=spec,
                provider=provider,
                model=model,
                settings={**stored, **dict(settings or {})},
                price_model=base_model_of(provider, model),
            )
        )
    return targets


# --- cost --------------------------------------------------------------------------------------


class CostLine(BaseModel):
    """The inference cost estimate of one model over all cases."""

    model_config = ConfigDict(extra="forbid")

    spec: str
    prompt_tokens: int | None = None
    max_output_tokens: int
    input_per_million: float | None = None
    output_per_million: float | None = None
    cost_usd: float | None = None  # None: unknown (no price) or free (local)
    free: bool = False
    exact: bool = True
    error_band: float | None = None
    note: str = ""


class CostEstimate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    lines: list[CostLine]

    @property
    def total_usd(self) -> float:
        return sum(line.cost_usd or 0.0 for line in self.lines)

    @property
    def unpriced(self) -> list[str]:
        return [line.spec for line in self.lines if line.cost_usd is None and not line.free]

    @property
    def paid(self) -> bool:
        return any(line.cost_usd for line in self.lines)


def estimate_cost(
    cases: Sequence[EvalCase],
    targets: Sequence[EvalTarget],
    *,
    max_tokens: int,
    prices: Any = None,
) -> CostEstimate:
    """Price each target: prompt tokens × input price + prompts × ``max_tokens`` × output price.

    A target whose price table entry has no inference prices (the local backend) is free; one
    the table does not know (an endpoint id, a custom backend) is unpriced.
    """
    table = (
        prices
        if prices is not None
        else registry.load_price_table(providers=sorted({t.provider for t in targets}))
    )
    lines: list[CostLine] = []
    max_out = max_tokens * len(cases)
    for target in targets:
        try:
            price = table.lookup(target.provider, target.price_model or target.model)
        except ConfigError as exc:
            lines.append(
                CostLine(spec=target.spec, max_output_tokens=max_out, note=f"unpriced: {exc}")
            )
            continue
        rate_in, rate_out = price.inference_input_per_million, price.inference_output_per_million
        if rate_in is None and rate_out is None and price.paid:
            lines.append(
                CostLine(
                    spec=target.spec,
                    max_output_tokens=max_out,
                    note=f"unpriced: no inference price for {price.provider} {price.model}",
                )
            )
            continue
        if rate_in is None and rate_out is None:
            lines.append(
                CostLine(
                    spec=target.spec,
                    max_output_tokens=max_out,
                    free=True,
                    note="runs on your own hardware",
                )
            )
            continue
        counter = registry.counter_for(target.provider, target.price_model or target.model)
        tokens = sum(counter.count(Example(messages=list(c.prompt))) for c in cases)
        cost = (tokens * (rate_in or 0.0) + max_out * (rate_out or 0.0)) / 1_000_000
        lines.append(
            CostLine(
                spec=target.spec,
                prompt_tokens=tokens,
                max_output_tokens=max_out,
                input_per_million=rate_in,
                output_per_million=rate_out,
                cost_usd=cost,
                exact=counter.exact,
                error_band=counter.error_band,
                note=f"{price.provider} {price.model} prices as of {price.as_of}",
            )
        )
    return CostEstimate(lines=lines)


def check_eval_budget(estimate: CostEstimate, max_cost: float | None) -> None:
    """:class:`BudgetError` when the run may cost more than ``max_cost`` USD, or when a model
    has no price so the limit cannot be guaranteed."""
    from tuneport.pricing.budget import check_budget

    if max_cost is None:
        return
    if estimate.unpriced:
        raise BudgetError(
            f"cannot check --max-cost: no inference price for {', '.join(estimate.unpriced)}",
            hint="add inference_*_per_million for it with --prices FILE, or drop --max-cost",
        )
    inexact = [line for line in estimate.lines if line.cost_usd and not line.exact]
    band = max((line.error_band or 0.0 for line in inexact), default=0.0)
    tokens = sum((line.prompt_tokens or 0) + line.max_output_tokens for line in estimate.lines)
    check_budget(
        Estimate(
            provider="eval",
            model=", ".join(line.spec for line in estimate.lines),
            method="inference",
            examples=len(estimate.lines),
            tokens=tokens,
            epochs=1,
            billed_tokens=tokens,
            price_per_million_usd=None,
            cost_usd=estimate.total_usd,
            exact=not inexact,
            error_band=band or None,
        ),
        max_cost,
    )


# --- running -----------------------------------------------------------------------------------


def _retryable(exc: BaseException) -> bool:
    return isinstance(exc, ProviderError) and not isinstance(exc, FATAL)


def score(answer: str, reference: str) -> dict[str, float]:
    return {name: fn(answer, reference) for name, fn in METRICS.items()}


def run_eval(
    cases: Sequence[EvalCase],
    targets: Sequence[EvalTarget],
    *,
    options: EvalOptions | None = None,
    providers: Mapping[str, Provider] | None = None,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.perf_counter,
    progress: Progress | None = None,
    data: str | None = None,
) -> EvalReport:
    """Ask every target every case (``options.concurrency`` calls at a time) and score.

    ``providers`` maps a target's spec to a ready provider (tests); otherwise each target gets
    ``registry.get(target.provider, target.settings)``. A provider with the
    :class:`~tuneport.providers.base.ConcurrencyLimited` capability gets at most
    ``max_concurrency`` calls at once, over all the targets of that backend. A call failing
    with a provider error is retried (``options.attempts`` tries, exponential backoff via
    ``sleep``); if it still fails the answer records the error and scores 0. Authentication,
    not-found and configuration errors stop the run at once.
    """
    opts = options or EvalOptions()
    progress = progress or NullProgress()
    built: dict[str, Provider] = dict(providers or {})
    for target in targets:
        if target.spec not in built:
            built[target.spec] = registry.get(target.provider, target.settings, store=open_store())
    chat_options = ChatOptions(temperature=opts.temperature, max_tokens=opts.max_tokens)
    policy = RetryPolicy(
        attempts=opts.attempts, initial_delay=opts.retry_delay, max_delay=30.0, jitter=0.0
    )
    answers: list[list[Answer]] = [[Answer() for _ in targets] for _ in cases]
    lock = threading.Lock()
    # A backend may cap its own parallelism (e.g. one local GPU): optional ``max_concurrency``,
    # one gate shared by every target of that backend (two local models: one reply at a time).
    caps: dict[str, int] = {}
    for provider in built.values():
        if isinstance(provider, ConcurrencyLimited):
            cap = max(1, int(provider.max_concurrency))
            caps[provider.name] = min(cap, caps.get(provider.name, cap))
    shared = {name: threading.Semaphore(cap) for name, cap in caps.items()}
    gates = {
        spec: shared[provider.name]
        for spec, provider in built.items()
        if isinstance(provider, ConcurrencyLimited)
    }

    def ask(ci: int, ti: int) -> None:
        case, target = cases[ci], targets[ti]
        provider = built[target.spec]
        tries = 0

        def call() -> Message:
            nonlocal tries
            tries += 1
            gate = gates.get(target.spec)
            if gate is None:
                return provider.chat(target.model, case.prompt, chat_options)
            with gate:
                return provider.chat(target.model, case.prompt, chat_options)

        start = clock()
        try:
            reply = call_with_retry(call, policy=policy, retryable=_retryable, sleep=sleep)
        except UnreachableError as exc:  # the first unreachable model ends the run, named
            exc.where = exc.where or target.spec
            raise
        except FATAL:
            raise
        except TuneportError as exc:
            result = Answer(error=exc.one_line(), attempts=tries, seconds=clock() - start)
        else:
            text = message_text(reply)
            result = Answer(
                text=text, attempts=tries, seconds=clock() - start, **score(text, case.reference)
            )
        with lock:
            answers[ci][ti] = result
        progress.advance()

    progress.start(
        f"asking {len(targets)} model(s) {len(cases)} prompt(s)", total=len(cases) * len(targets)
    )
    pool = ThreadPoolExecutor(max_workers=opts.concurrency, thread_name_prefix="eval")
    try:
        futures: list[Future[None]] = [
            pool.submit(ask, ci, ti) for ci in range(len(cases)) for ti in range(len(targets))
        ]
        wait(futures, return_when=FIRST_EXCEPTION)
        for future in futures:
            if future.done() and not future.cancelled() and future.exception() is not None:
                pool.shutdown(wait=True, cancel_futures=True)
                raise future.exception()  # type: ignore[misc]
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
    progress.finish()
    return EvalReport(
        data=data,
        options=opts,
        targets=list(targets),
        cases=list(cases),
        answers=answers,
        summary=summarize(targets, answers),
    )


def summarize(
    targets: Sequence[EvalTarget], answers: Sequence[Sequence[Answer]]
) -> list[ModelSummary]:
    """Mean metrics per target over all cases (failed answers count as 0)."""
    out: list[ModelSummary] = []
    n = len(answers)
    for ti, target in enumerate(targets):
        column = [row[ti] for row in answers]
        ok = [a for a in column if a.error is None]
        out.append(
            ModelSummary(
                spec=target.spec,
                answered=len(ok),
                failed=n - len(ok),
                exact_match=sum(a.exact_match for a in column) / n if n else 0.0,
                token_f1=sum(a.token_f1 for a in column) / n if n else 0.0,
                rouge_l=sum(a.rouge_l for a in column) / n if n else 0.0,
                mean_seconds=sum(a.seconds for a in ok) / len(ok) if ok else 0.0,
            )
        )
    return out


# --- reports -----------------------------------------------------------------------------------


def report_paths(out: Path) -> dict[str, Path]:
    """``-o report`` (or ``report.md``/``.csv``/``.json``) -> the three files written."""
    base = out.with_suffix("") if out.suffix in (".md", ".csv", ".json") else out
    return {ext: base.with_name(f"{base.name}.{ext}") for ext in ("md", "csv", "json")}


def _cell(text: str | None) -> str:
    if not text:
        return ""
    return (
        text.replace("\\", "\\\\").replace("|", "\\|").replace("\r\n", "\n").replace("\n", "<br>")
    )


def render_markdown(report: EvalReport) -> str:
    """Summary table, then one row per case with every model's answer and scores."""
    o = report.options
    lines = [
        f"# tuneport eval: {report.data or 'held-out data'}",
        "",
        f"{len(report.cases)} prompts · max answer tokens {o.max_tokens} · temperature "
        f"{o.temperature if o.temperature is not None else 'default'}",
        "",
        "| model | answered | failed | exact match | token F1 | ROUGE-L | mean s |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for s in report.summary:
        lines.append(
            f"| {_cell(s.spec)} | {s.answered} | {s.failed} | {s.exact_match:.3f} | "
            f"{s.token_f1:.3f} | {s.rouge_l:.3f} | {s.mean_seconds:.2f} |"
        )
    lines += [
        "",
        "Exact match: equal after lower-casing and removing punctuation and articles. "
        "Token F1: word overlap (SQuAD). ROUGE-L: longest common word subsequence F-measure. "
        "Failed answers score 0.",
        "",
        "## Answers",
        "",
        "| # | line | prompt | reference | "
        + " | ".join(_cell(t.spec) for t in report.targets)
        + " |",
        "|---:|---:|---|---|" + "---|" * len(report.targets),
    ]
    for case, row in zip(report.cases, report.answers, strict=True):
        cells = []
        for a in row:
            if a.error is not None:
                cells.append(f"**error:** {_cell(a.error)}")
            else:
                cells.append(
                    f"{_cell(a.text)}<br>_EM {a.exact_match:.0f} · F1 {a.token_f1:.2f} · "
                    f"RL {a.rouge_l:.2f}_"
                )
        lines.append(
            f"| {case.index + 1} | {case.line} | {_cell(prompt_text(case))} | "
            f"{_cell(case.reference)} | " + " | ".join(cells) + " |"
        )
    return "\n".join(lines) + "\n"


def render_csv(report: EvalReport) -> str:
    """One row per case: prompt, reference, then answer/scores/error per model."""
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    header = ["case", "line", "prompt", "reference"]
    for t in report.targets:
        header += [f"{t.spec} answer", f"{t.spec} exact_match", f"{t.spec} token_f1"]
        header += [f"{t.spec} rouge_l", f"{t.spec} error"]
    writer.writerow(header)
    for case, row in zip(report.cases, report.answers, strict=True):
        cells: list[str | int] = [case.index + 1, case.line, prompt_text(case), case.reference]
        for a in row:
            cells += [a.text or "", f"{a.exact_match:.4f}", f"{a.token_f1:.4f}"]
            cells += [f"{a.rouge_l:.4f}", a.error or ""]
        writer.writerow(cells)
    return buf.getvalue()


def write_report(report: EvalReport, out: Path, *, force: bool = False) -> dict[str, Path]:
    """Write ``<out>.md``, ``<out>.csv`` and ``<out>.json`` (checked first, each atomic)."""
    paths = report_paths(out)
    for path in paths.values():
        check_output(path, force=force)
    bodies = {
        "md": render_markdown(report),
        "csv": render_csv(report),
        "json": report.model_dump_json(indent=2) + "\n",
    }
    for ext, path in paths.items():
        with atomic_writer(path, force=force) as fh:
            fh.write(bodies[ext])
    return paths
