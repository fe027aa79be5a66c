"""``tuneport port``: move a tuned model to another provider, with evidence it is as good.

A port is a resumable pipeline stored under ``TUNEPORT_HOME/ports/<id>/``. Each step writes its
output atomically and is skipped on a re-run when that output exists, so a crash, a kill or
Ctrl-C anywhere is followed by the same command continuing where it stopped:

1. **fetch** (``fetch/source.json``, ``fetch/training.jsonl``, ``fetch/validation.jsonl``): the
   source job's files byte for byte as the provider returns them (SHA-256 kept and checked on
   every re-run), its method and hyperparameters (:class:`~tuneport.providers.base.ReturnsData`).
2. **golden** (``golden/cases.json``, ``golden/answers.jsonl``): the held-out prompts (the first
   ``N`` validation examples, else ``N`` training examples chosen by the SHA-256 of their line,
   a split that never changes) and the *source* tuned model's answers, appended per case so a
   re-run never asks a recorded case again.
3. **plan** (``plan.json``): the same training priced on the target through
   :func:`tuneport.jobs.quote.estimate` with the settings mapped by :data:`MAPPING`, and what
   the target format cannot carry.
4. **train** (``train.json``): :func:`tuneport.jobs.launch.launch`, the path ``tuneport train``
   takes (one intended run is one paid job: its launch key finds an earlier attempt), then
   :func:`tuneport.jobs.watch.watch_job`.
5. **compare** (``target/answers.jsonl``, ``report.json|md|csv``): the target's tuned model asked
   the same prompts; both columns scored against the references
   (:mod:`tuneport.evaluate.metrics`), the target's agreement with the source, costs, and a
   verdict with a bootstrap confidence interval on the per-case token-F1 difference.

The cost of recording the golden answers, of the target training and of asking the target are
shown together before any of them starts (``confirm``), and ``max_cost`` caps their sum.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib
import json
import random
import secrets
import threading
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from tuneport.data.exporters import export_records
from tuneport.data.records import read_records
from tuneport.errors import BudgetError, ConfigError, InputError, NotFoundError, TuneportError
from tuneport.evaluate.metrics import exact_match, token_f1
from tuneport.evaluate.run import (
    Answer,
    CostEstimate,
    EvalCase,
    EvalOptions,
    EvalReport,
    EvalTarget,
    case_from_record,
    estimate_cost,
    render_csv,
    render_markdown,
    run_eval,
    summarize,
)
from tuneport.files import atomic_path, atomic_writer, sha256_file, try_lock
from tuneport.jobs.store import JobStore, open_store, redact_config
from tuneport.jobs.watch import WatchRenderer
from tuneport.paths import home
from tuneport.progress import NullProgress, Progress
from tuneport.providers import registry
from tuneport.providers.base import Provider, ReturnsData, SourceJob
from tuneport.schemas import Estimate, JobConfig, JobRecord, JobState

STEPS = ("fetch", "golden", "plan", "train", "compare")
DEFAULT_GOLDEN = 50
MARGIN = 0.05  # token-F1 points the target may lose and still be "as good"
BOOTSTRAP = 2000  # resamples for the confidence interval (fixed seed: same data, same interval)

# How a source job's settings become the target's (README "Leaving a provider" shows it).
MAPPING: tuple[tuple[str, str], ...] = (
    ("epochs", "kept as the source job reported them (its resolved count when it chose 'auto')"),
    (
        "learning_rate_multiplier",
        "kept as a multiplier: each target applies it to its own default rate (OpenAI, Azure "
        "and Vertex take the multiplier; Together, Fireworks and local multiply their default "
        "learning rate by it, unless --set learning_rate=R)",
    ),
    ("batch_size", "kept where the source set one (else the target's own default)"),
    ("method", "SFT kept; DPO kept where the target tunes DPO, else refused"),
    ("beta (DPO)", "not carried: set the target's own with --set where it has one"),
    ("lora_rank", "Fireworks' LoRA rank: not carried (set the target's own with --set)"),
    ("adapter_size", "Vertex's adapter size: not carried (set the target's own with --set)"),
)

Hook = Callable[[str], None]
Confirm = Callable[[list[str]], bool]


class PortSpec(BaseModel):
    """What a port moves where (``port.json``); never holds secrets."""

    model_config = ConfigDict(extra="forbid")

    id: str
    source: str
    source_provider: str
    target_provider: str
    target_model: str
    golden: int = Field(default=DEFAULT_GOLDEN, ge=1)
    max_tokens: int = Field(default=512, ge=1)
    concurrency: int = Field(default=4, ge=1, le=64)
    settings: dict[str, Any] = Field(default_factory=dict)  # target --set, secrets redacted
    created_at: str


class Fetched(BaseModel):
    """``fetch/source.json``: the source job and the checksums of the files kept."""

    model_config = ConfigDict(extra="forbid")

    job: SourceJob
    training_sha256: str
    training_rows: int
    validation_sha256: str | None = None
    validation_rows: int | None = None


class Golden(BaseModel):
    """``golden/cases.json``: the held-out prompts and where they came from."""

    model_config = ConfigDict(extra="forbid")

    origin: str  # "validation" | "training"
    cases: list[EvalCase]


class Plan(BaseModel):
    """``plan.json``: the target's job settings, its price and what it cannot carry."""

    model_config = ConfigDict(extra="forbid")

    config: dict[str, Any]
    estimate: Estimate
    mapping: list[dict[str, Any]]
    dropped: dict[str, int] = Field(default_factory=dict)
    golden_cost: CostEstimate
    target_answers_cost: CostEstimate


class PortState(BaseModel):
    """Which steps of a port are done (for ``port list`` / ``port show``)."""

    model_config = ConfigDict(extra="forbid")

    spec: PortSpec
    steps: dict[str, str]
    job_id: str | None = None
    verdict: str | None = None


# --- folders -----------------------------------------------------------------------------------


def ports_dir() -> Path:
    return home() / "ports"


def port_dir(port_id: str) -> Path:
    path = ports_dir() / port_id
    if not (path / "port.json").is_file():
        raise NotFoundError(
            f"no port {port_id!r} in {ports_dir()}", hint="see `tuneport port list` for the ids"
        )
    return path


def _write_json(path: Path, value: Any) -> None:
    with atomic_writer(path, force=True) as fh:
        fh.write(json.dumps(value, indent=2, sort_keys=True, default=str) + "\n")


def _read_json(path: Path) -> Any:
    return json.loads(path.read_text(encoding="utf-8"))


def _append(path: Path, value: Mapping[str, Any]) -> None:
    """One JSON line, flushed and synced (a kill loses at most the line being written)."""
    import os

    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a", encoding="utf-8", newline="\n") as fh:
        fh.write(json.dumps(value, sort_keys=True) + "\n")
        fh.flush()
        os.fsync(fh.fileno())


def _recorded(path: Path) -> dict[int, Answer]:
    """Answers appended so far, by case index (a torn last line from a kill is ignored)."""
    found: dict[int, Answer] = {}
    if not path.is_file():
        return found
    for line in path.read_text(encoding="utf-8").splitlines():
        with contextlib.suppress(ValueError):
            item = json.loads(line)
            found[int(item["index"])] = Answer.model_validate(item["answer"])
    return found


# --- sources and targets -----------------------------------------------------------------------


def returns_data(name: str) -> bool:
    """Whether backend ``name``'s implementation can give a job's data back."""
    module, _, attr = registry.backend(name).implementation.partition(":")
    cls = getattr(importlib.import_module(module), attr, None)
    return isinstance(cls, type) and all(
        callable(getattr(cls, m, None)) for m in ("source_job", "download")
    )


def data_sources() -> list[str]:
    return [name for name in registry.names() if returns_data(name)]


def resolve_source(
    source: str, source_provider: str | None, store: JobStore
) -> tuple[str, str, dict[str, Any]]:
    """``(provider, provider-side ref, settings)`` of a port's SOURCE: a tuneport job id (its
    remote job), a tuned model id (``ft:...``) or the provider's job id with ``--from``."""
    from tuneport.jobs.resolve import JOB_ID_PREFIX, settings_of

    record: JobRecord | None = None
    with contextlib.suppress(NotFoundError):
        record = store.get(source)
    if record is None and source.startswith(JOB_ID_PREFIX):
        raise NotFoundError(
            f"no job {source!r} in the job store", hint="see `tuneport jobs list` for the ids"
        )
    if record is not None:
        if record.remote_id is None:
            raise ConfigError(
                f"job {record.id} was never created at {record.provider}: nothing to port",
                hint="port a job that finished",
            )
        provider, ref, settings = record.provider, record.remote_id, settings_of(record)
    else:
        provider = source_provider or registry.provider_for_model(source) or ""
        ref, settings = source, {}
        if not provider:
            raise ConfigError(
                f"cannot tell which provider holds {source!r}",
                hint=f"pass --from {'|'.join(data_sources())}",
            )
    registry.backend(provider)  # unknown: a one-line ConfigError
    if not returns_data(provider):
        raise ConfigError(
            f"{provider} cannot give a job's training data back, so it cannot be a port source",
            hint=f"port from {', '.join(data_sources())}, or `tuneport train` again from your "
            "own copy of the data",
        )
    return provider, ref, settings


def parse_target(text: str) -> tuple[str, str]:
    """``PROVIDER[:MODEL]`` -> ``(provider, model)`` (the backend's default model if none)."""
    provider, _, model = text.partition(":")
    descriptor = registry.backend(provider.strip())
    model = model.strip() or (descriptor.default_model or "")
    if not model:
        raise ConfigError(
            f"--to {text!r} names no model and {descriptor.name} has no default",
            hint=f"write --to {descriptor.name}:MODEL",
        )
    return descriptor.name, model


# --- the steps ---------------------------------------------------------------------------------


def new_port(
    source: str,
    target: str,
    *,
    source_provider: str | None = None,
    golden: int = DEFAULT_GOLDEN,
    max_tokens: int = 512,
    concurrency: int = 4,
    settings: Mapping[str, Any] | None = None,
    store: JobStore | None = None,
) -> PortSpec:
    """The port of ``source`` to ``target``: the one started before with the same source,
    target and golden size (continued), else a new one with its own id and folder."""
    jobs = store or open_store()
    provider, ref, source_settings = resolve_source(source, source_provider, jobs)
    target_provider, target_model = parse_target(target)
    redacted = redact_config(dict(settings or {}))
    for existing in list_ports():
        s = existing.spec
        if (s.source, s.source_provider, s.target_provider, s.target_model, s.golden) == (
            source,
            provider,
            target_provider,
            target_model,
            golden,
        ):
            return s
    backend = registry.get(provider, source_settings, store=jobs)
    if isinstance(backend, ReturnsData):  # the job exists and can be ported: before any folder
        check_source(backend.source_job(ref))
    port_id = "port-" + secrets.token_hex(4)
    spec = PortSpec(
        id=port_id,
        source=source,
        source_provider=provider,
        target_provider=target_provider,
        target_model=target_model,
        golden=golden,
        max_tokens=max_tokens,
        concurrency=concurrency,
        settings=redacted if isinstance(redacted, dict) else {},
        created_at=datetime.now(UTC).isoformat(timespec="seconds"),
    )
    _write_json(ports_dir() / port_id / "port.json", spec.model_dump(mode="json"))
    return spec


def check_source(job: SourceJob) -> SourceJob:
    """``job`` if it can be ported: it produced a tuned model with a method tuneport moves."""
    if job.state != "succeeded" or not job.tuned_model:
        raise ConfigError(
            f"{job.provider} job {job.remote_id} has no tuned model (state {job.state})",
            hint="port a job that succeeded",
        )
    if job.method not in ("sft", "dpo"):
        raise ConfigError(
            f"{job.provider} job {job.remote_id} used method {job.method!r}, which tuneport "
            "cannot move to another provider",
            hint="port a supervised (SFT) or DPO job",
        )
    return job


def fetch(folder: Path, source: Provider, ref: str) -> Fetched:
    """Step 1: the source job's files and settings, kept with their checksums."""
    done = folder / "fetch" / "source.json"
    if done.is_file():
        fetched = Fetched.model_validate(_read_json(done))
        _check_sum(folder / "fetch" / "training.jsonl", fetched.training_sha256)
        if fetched.validation_sha256 is not None:
            _check_sum(folder / "fetch" / "validation.jsonl", fetched.validation_sha256)
        return fetched
    if not isinstance(source, ReturnsData):
        raise ConfigError(
            f"{source.name} cannot give a job's data back",
            hint=f"port from {', '.join(data_sources())}",
        )
    job = check_source(source.source_job(ref))
    sums: dict[str, tuple[str, int] | None] = {"training": None, "validation": None}
    for role, file_ref in (("training", job.training), ("validation", job.validation)):
        if file_ref is None:
            continue
        out = folder / "fetch" / f"{role}.jsonl"
        with atomic_path(out, force=True) as tmp:
            source.download(file_ref, tmp)
        rows = sum(1 for row in read_records(out) if row.record is not None)
        sums[role] = (sha256_file(out), rows)
    training = sums["training"]
    assert training is not None
    validation = sums["validation"]
    fetched = Fetched(
        job=job,
        training_sha256=training[0],
        training_rows=training[1],
        validation_sha256=validation[0] if validation else None,
        validation_rows=validation[1] if validation else None,
    )
    _write_json(done, fetched.model_dump(mode="json"))
    return fetched


def _check_sum(path: Path, expected: str) -> None:
    if not path.is_file() or sha256_file(path) != expected:
        raise InputError(
            f"{path}: the fetched data changed since it was fetched (SHA-256 differs)",
            hint=f"delete {path.parent} to fetch it again",
        )


def golden_cases(folder: Path, fetched: Fetched, n: int) -> Golden:
    """Step 2a: the held-out prompts (validation examples, else a fixed training split)."""
    done = folder / "golden" / "cases.json"
    if done.is_file():
        return Golden.model_validate(_read_json(done))
    origin = "validation" if fetched.validation_sha256 else "training"
    path = folder / "fetch" / f"{origin}.jsonl"
    rows = [(row.line, row.record) for row in read_records(path) if row.record is not None]
    if origin == "training":  # the N rows whose line hashes lowest: the same split every time
        keyed = sorted(
            rows,
            key=lambda lr: hashlib.sha256(
                json.dumps(lr[1].model_dump(mode="json"), sort_keys=True).encode()
            ).hexdigest(),
        )
        rows = sorted(keyed[:n], key=lambda lr: lr[0])
    cases = [
        case_from_record(i, line, record, where=f"{path}:{line}")
        for i, (line, record) in enumerate(rows[:n])
    ]
    if not cases:
        raise InputError(f"{path}: no examples to hold out", hint="the source data is empty")
    golden = Golden(origin=origin, cases=cases)
    _write_json(done, golden.model_dump(mode="json"))
    return golden


def source_target(fetched: Fetched, settings: Mapping[str, Any]) -> EvalTarget:
    job = fetched.job
    return EvalTarget(
        spec=f"source {job.tuned_model}",
        provider=job.provider,
        model=job.tuned_model or "",
        settings=dict(settings),
        price_model=job.model,
    )


def target_of(spec: PortSpec, model: str, settings: Mapping[str, Any]) -> EvalTarget:
    return EvalTarget(
        spec=f"target {model}",
        provider=spec.target_provider,
        model=model,
        settings=dict(settings),
        price_model=spec.target_model,
    )


def make_plan(
    folder: Path, spec: PortSpec, fetched: Fetched, golden: Golden, settings: Mapping[str, Any]
) -> Plan:
    """Step 3: the target's job config, its estimate, the mapping and what is dropped."""
    from tuneport.jobs.quote import estimate, quote_for

    done = folder / "plan.json"
    if done.is_file():
        return Plan.model_validate(_read_json(done))
    job = fetched.job
    method = "dpo" if job.method == "dpo" else "sft"
    table = registry.load_price_table(providers=[spec.target_provider])
    try:
        quote = quote_for(spec.target_provider, spec.target_model, method, prices=table)
    except ConfigError as exc:
        if method != "dpo":
            raise
        doing = [
            f"{p.provider}:{p.model}"
            for p in registry.load_price_table().tunable(method="dpo")
            if p.provider in registry.names()
        ]
        raise ConfigError(
            f"the source job used DPO and {spec.target_provider} {spec.target_model} does not "
            f"tune DPO ({exc.message})",
            hint=f"port to a target that does: {', '.join(doing)}",
        ) from None
    hyper = job.hyperparameters
    validation = folder / "fetch" / "validation.jsonl"
    cfg = JobConfig(
        provider=spec.target_provider,
        model=spec.target_model,
        data=folder / "fetch" / "training.jsonl",
        validation=validation if fetched.validation_sha256 else None,
        method=method,
        epochs=hyper.get("epochs"),
        learning_rate_multiplier=hyper.get("learning_rate_multiplier"),
        batch_size=hyper.get("batch_size"),
        options=dict(settings),
    )
    est = estimate(cfg, quote=quote)
    descriptor = registry.backend(spec.target_provider)
    preview = folder / "plan-preview" / "training"
    with atomic_path(preview, force=True) as tmp:
        exported = export_records(
            (r.record for r in read_records(cfg.data) if r.record is not None),
            descriptor.target,
            tmp,
            force=True,
            method=method,
        )
    target_values = {
        "epochs": cfg.epochs,
        "learning_rate_multiplier": cfg.learning_rate_multiplier,
        "batch_size": cfg.batch_size,
        "method": method,
        "beta (DPO)": None,
    }
    source_values = {**hyper, "method": job.method, "beta (DPO)": hyper.get("beta")}
    mapping = [
        {
            "setting": name,
            "source": source_values.get(name),
            "target": target_values.get(name),
            "rule": rule,
        }
        for name, rule in MAPPING
    ]
    plan = Plan(
        config=json.loads(cfg.model_dump_json()) | {"options": redact_config(dict(settings))},
        estimate=est,
        mapping=mapping,
        dropped=dict(exported.dropped),
        golden_cost=estimate_cost(
            golden.cases, [source_target(fetched, {})], max_tokens=spec.max_tokens
        ),
        target_answers_cost=estimate_cost(
            golden.cases, [target_of(spec, spec.target_model, {})], max_tokens=spec.max_tokens
        ),
    )
    _write_json(done, plan.model_dump(mode="json"))
    return plan


def record_answers(
    path: Path,
    cases: Sequence[EvalCase],
    target: EvalTarget,
    *,
    concurrency: int,
    max_tokens: int,
    provider: Provider | None = None,
    progress: Progress | None = None,
    sleep: Callable[[float], None] | None = None,
) -> dict[int, Answer]:
    """Ask ``target`` every case not yet in ``path`` (``concurrency`` at a time, each through
    :func:`~tuneport.evaluate.run.run_eval`: its retries, its scores) and append each answer
    the moment it is scored: a re-run after a kill asks only what was not recorded."""
    done = _recorded(path)
    # a failed answer (its error recorded) is asked again; a recorded answer never is
    todo = [c for c in cases if c.index not in done or done[c.index].error is not None]
    if not todo:
        return done
    options = EvalOptions(max_tokens=max_tokens, concurrency=1)
    providers = {target.spec: provider} if provider is not None else None
    extra: dict[str, Any] = {"sleep": sleep} if sleep is not None else {}
    lock = threading.Lock()
    bar = progress or NullProgress()
    bar.start(f"asking {target.spec} {len(todo)} prompt(s)", total=len(todo))

    stop = threading.Event()  # set by the first error: ask nothing more

    def ask(case: EvalCase) -> None:
        if stop.is_set():
            return
        try:
            report = run_eval([case], [target], options=options, providers=providers, **extra)
        except BaseException:
            stop.set()
            raise
        answer = report.answers[0][0]
        with lock:
            _append(path, {"index": case.index, "answer": answer.model_dump(mode="json")})
            done[case.index] = answer
            bar.advance()

    pool = ThreadPoolExecutor(max_workers=concurrency, thread_name_prefix="port")
    try:
        for future in [pool.submit(ask, c) for c in todo]:
            future.result()  # the first error stops the rest (recorded answers stay)
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
        bar.finish()
    return done


# --- the pipeline ------------------------------------------------------------------------------


def cost_lines(plan: Plan, golden_left: int, cases: int) -> tuple[list[str], float | None]:
    """What the paid steps still to run may cost, as lines, and their sum (``None``: unknown)."""
    lines: list[str] = []
    total: float | None = 0.0

    def add(what: str, line: Any, share: float) -> None:
        nonlocal total
        if line.cost_usd is not None:
            cost = line.cost_usd * share
            lines.append(f"{what}: ≈${cost:,.4f} at most ({line.note})")
            total = None if total is None else total + cost
        elif line.free:
            lines.append(f"{what}: no money figure (no provider charge)")
        else:
            lines.append(f"{what}: cost unknown ({line.note})")
            total = None

    if golden_left:
        add(
            f"record the source model's answers ({golden_left} prompts)",
            plan.golden_cost.lines[0],
            golden_left / max(1, cases),
        )
    est = plan.estimate
    if est.cost_usd is not None:
        approx = "" if est.exact else f" (±{(est.error_band or 0) * 100:.0f}%)"
        lines.append(
            f"train {est.provider} {est.model}: ≈${est.cost_usd:,.4f}{approx} "
            f"({est.billed_tokens:,} billed tokens, {est.epochs} epoch(s))"
        )
        total = None if total is None else total + est.cost_usd
    elif est.cost_unknown:
        lines.append(f"train {est.provider} {est.model}: cost unknown ({est.cost_unknown})")
        total = None
    else:
        lines.append(f"train {est.provider} {est.model}: no money figure (own hardware)")
    add(f"ask the target model ({cases} prompts)", plan.target_answers_cost.lines[0], 1.0)
    return lines, total


def run_port(
    spec: PortSpec,
    *,
    store: JobStore | None = None,
    confirm: Confirm | None = None,
    show: Callable[[str], None] | None = None,
    max_cost: float | None = None,
    providers: Mapping[str, Provider] | None = None,
    progress: Progress | None = None,
    after_step: Hook | None = None,
    sleep: Callable[[float], None] | None = None,
    settings: Mapping[str, Any] | None = None,
    source_settings: Mapping[str, Any] | None = None,
    renderer: WatchRenderer | None = None,
) -> PortState:
    """Run (or continue) the port ``spec`` to its report.

    ``providers`` maps ``"source"`` / ``"target"`` to ready backends (tests); ``settings`` are
    the target's (``--set``, secrets included: they are never written). ``after_step(name)`` is
    called after each step's output is written (tests inject a crash there).
    """
    jobs = store or open_store()
    folder = ports_dir() / spec.id
    shown = show or (lambda line: None)
    hook = after_step or (lambda step: None)
    bar = progress or NullProgress()
    target_settings = {**spec.settings, **dict(settings or {})}
    with try_lock(folder / ".lock") as mine:
        if not mine:
            raise ConfigError(
                f"another tuneport process is running port {spec.id} right now",
                hint="let it finish, then `tuneport port show " + spec.id + "`",
            )
        _, ref, stored_settings = resolve_source(spec.source, spec.source_provider, jobs)
        src_settings = {**stored_settings, **dict(source_settings or {})}
        given = dict(providers or {})
        source = given.get("source") or registry.get(spec.source_provider, src_settings, store=jobs)

        fetched = fetch(folder, source, ref)
        hook("fetch")
        golden = golden_cases(folder, fetched, spec.golden)
        plan = make_plan(folder, spec, fetched, golden, target_settings)
        hook("plan")

        answers_path = folder / "golden" / "answers.jsonl"
        golden_left = len(golden.cases) - len(_recorded(answers_path))
        launched = (folder / "train.json").is_file()
        if golden_left or not launched:
            lines, total = cost_lines(plan, golden_left, len(golden.cases))
            for line in lines:
                shown(line)
            if max_cost is not None:
                if total is None:
                    raise BudgetError(
                        f"cannot check --max-cost {max_cost}: a step's cost is unknown",
                        hint="drop --max-cost, or add the missing prices with --prices",
                    )
                if total > max_cost:
                    raise BudgetError(
                        f"the port may cost ≈${total:,.4f}, over --max-cost ${max_cost:,.2f}",
                        hint="raise --max-cost, or port with a smaller --golden",
                    )
            if confirm is not None and not confirm(lines):
                raise BudgetError("port declined at the prompt; nothing was sent")
        src_target = source_target(fetched, src_settings)
        record_answers(
            answers_path,
            golden.cases,
            src_target,
            concurrency=spec.concurrency,
            max_tokens=spec.max_tokens,
            provider=given.get("source") or source,
            progress=bar,
            sleep=sleep,
        )
        hook("golden")

        record = _train(
            folder, spec, plan, jobs, given.get("target"), target_settings, bar, max_cost
        )
        hook("train")
        record = _watch(record, jobs, given.get("target"), target_settings, sleep, renderer)
        if record.state is not JobState.SUCCEEDED or not record.tuned_model:
            from tuneport.jobs.watch import raise_for_outcome

            raise_for_outcome(record)
            raise ConfigError(f"job {record.id} has no tuned model", hint="see `jobs show`")
        tgt = target_of(spec, record.tuned_model, {**_record_settings(record), **target_settings})
        target_provider = given.get("target") or registry.get(
            tgt.provider, tgt.settings, store=jobs
        )
        record_answers(
            folder / "target" / "answers.jsonl",
            golden.cases,
            tgt,
            concurrency=spec.concurrency,
            max_tokens=spec.max_tokens,
            provider=target_provider,
            progress=bar,
            sleep=sleep,
        )
        report = compare(folder, spec, fetched, golden, plan, src_target, tgt, record)
        hook("compare")
    return PortState(
        spec=spec, steps=steps_of(folder), job_id=record.id, verdict=str(report["verdict"])
    )


def _record_settings(record: JobRecord) -> dict[str, Any]:
    from tuneport.jobs.resolve import settings_of

    return settings_of(record)


def _train(
    folder: Path,
    spec: PortSpec,
    plan: Plan,
    jobs: JobStore,
    provider: Provider | None,
    settings: Mapping[str, Any],
    progress: Progress,
    max_cost: float | None,
) -> JobRecord:
    """Step 4: one job on the target through the launch path of ``tuneport train``."""
    from tuneport.jobs.launch import launch

    done = folder / "train.json"
    if done.is_file():
        return jobs.get(str(_read_json(done)["job_id"]))
    cfg = JobConfig.model_validate({**plan.config, "options": dict(settings)})
    launched = launch(cfg, store=jobs, provider=provider, progress=progress, max_cost=max_cost)
    _write_json(done, {"job_id": launched.record.id, "resumed": launched.resumed})
    return launched.record


def _watch(
    record: JobRecord,
    jobs: JobStore,
    provider: Provider | None,
    settings: Mapping[str, Any],
    sleep: Callable[[float], None] | None,
    renderer: WatchRenderer | None = None,
) -> JobRecord:
    from tuneport.jobs.resolve import provider_for_record
    from tuneport.jobs.watch import watch_job

    if record.state.terminal and record.tuned_model:
        return record
    backend = provider or provider_for_record(record, jobs, settings=settings)
    return watch_job(record.id, store=jobs, provider=backend, sleep=sleep, renderer=renderer)


# --- compare -----------------------------------------------------------------------------------


def bootstrap_interval(diffs: Sequence[float], *, level: float = 0.95) -> tuple[float, float]:
    """Percentile bootstrap interval of the mean of ``diffs`` (fixed seed: reproducible)."""
    if not diffs:
        return (0.0, 0.0)
    rng = random.Random(0)
    n = len(diffs)
    means = sorted(sum(rng.choice(diffs) for _ in range(n)) / n for _ in range(BOOTSTRAP))
    low = means[int((1 - level) / 2 * BOOTSTRAP)]
    high = means[min(BOOTSTRAP - 1, int((1 + level) / 2 * BOOTSTRAP))]
    return (low, high)


def verdict_of(diffs: Sequence[float], interval: tuple[float, float]) -> str:
    mean = sum(diffs) / len(diffs) if diffs else 0.0
    low, high = interval
    figure = (
        f"token F1 target − source {mean:+.3f} (95% CI {low:+.3f} to {high:+.3f}, n={len(diffs)})"
    )
    if low >= -MARGIN:
        head = f"as good: the target loses at most {MARGIN} token F1 (95% bootstrap)"
    elif high < -MARGIN:
        head = f"worse: the target loses more than {MARGIN} token F1"
    else:
        head = "inconclusive: the interval is too wide to tell"
    return f"{head}; {figure}"


def caveats_of(n: int, origin: str, failed: int) -> list[str]:
    notes = [
        f"{n} held-out prompt(s): a small sample gives a wide interval"
        if n < 100
        else f"{n} held-out prompts",
        "answers at temperature 0; reference metrics are surface overlap, not judged quality",
    ]
    if origin == "training":
        notes.append(
            "the source job had no validation file: the prompts are a fixed split of the "
            "training data, which both models were trained on"
        )
    if failed:
        notes.append(f"{failed} answer(s) failed and score 0")
    return notes


def compare(
    folder: Path,
    spec: PortSpec,
    fetched: Fetched,
    golden: Golden,
    plan: Plan,
    source: EvalTarget,
    target: EvalTarget,
    record: JobRecord,
) -> dict[str, Any]:
    """Step 5: both models' answers side by side, with costs and a verdict."""
    from tuneport.jobs.cost import job_cost

    done = folder / "report.json"
    if done.is_file():
        value: dict[str, Any] = _read_json(done)
        return value
    src = _recorded(folder / "golden" / "answers.jsonl")
    tgt = _recorded(folder / "target" / "answers.jsonl")
    answers = [[src[c.index], tgt[c.index]] for c in golden.cases]
    targets = [source, target]
    options = EvalOptions(max_tokens=spec.max_tokens, concurrency=spec.concurrency)
    report = EvalReport(
        data=f"port {spec.id}: {fetched.job.provider} {fetched.job.tuned_model} -> "
        f"{spec.target_provider} {target.model}",
        options=options,
        targets=targets,
        cases=golden.cases,
        answers=answers,
        summary=summarize(targets, answers),
    )
    diffs = [b.token_f1 - a.token_f1 for a, b in answers]
    interval = bootstrap_interval(diffs)
    agree_em = [
        exact_match(b.text or "", a.text or "") if a.error is None and b.error is None else 0.0
        for a, b in answers
    ]
    agree_f1 = [
        token_f1(b.text or "", a.text or "") if a.error is None and b.error is None else 0.0
        for a, b in answers
    ]
    n = len(answers)
    target_cost = job_cost(record)
    source_price = _training_price(fetched.job.provider, fetched.job.model, fetched.job.method)
    trained = fetched.job.trained_tokens
    costs = {
        "source_training_usd": None
        if source_price is None or not isinstance(trained, int)
        else round(trained * source_price / 1e6, 6),
        "target_training_usd": target_cost.cost_usd,
        "target_training_estimate_usd": plan.estimate.cost_usd,
        "source_per_1000_requests_usd": _per_thousand(plan.golden_cost, n),
        "target_per_1000_requests_usd": _per_thousand(plan.target_answers_cost, n),
    }
    verdict = verdict_of(diffs, interval)
    failed = sum(s.failed for s in report.summary)
    body = report.model_dump(mode="json") | {
        "verdict": verdict,
        "caveats": caveats_of(n, golden.origin, failed),
        "interval": {"metric": "token_f1 target - source", "low": interval[0], "high": interval[1]},
        "agreement": {
            "exact_match": sum(agree_em) / n if n else 0.0,
            "token_f1": sum(agree_f1) / n if n else 0.0,
        },
        "costs": costs,
        "port": spec.model_dump(mode="json") | {"job_id": record.id},
    }
    md = render_markdown(report) + _markdown_tail(body)
    with atomic_writer(folder / "report.md", force=True) as fh:
        fh.write(md)
    with atomic_writer(folder / "report.csv", force=True) as fh:
        fh.write(render_csv(report))
    _write_json(done, body)  # last: its presence means the step is done
    return body


def _training_price(provider: str, model: str, method: str) -> float | None:
    try:
        price = registry.load_price_table(providers=[provider]).lookup(provider, model, method)
    except TuneportError:
        return None
    return price.training_per_million


def _per_thousand(cost: CostEstimate, n: int) -> float | None:
    line = cost.lines[0] if cost.lines else None
    if line is None or line.cost_usd is None or not n:
        return None
    return round(line.cost_usd / n * 1000, 4)


def _money(value: Any) -> str:
    return "unknown" if value is None else f"${value:,.4f}"


def _markdown_tail(body: Mapping[str, Any]) -> str:
    costs = body["costs"]
    agreement = body["agreement"]
    lines = [
        "",
        "## Verdict",
        "",
        str(body["verdict"]),
        "",
        "Caveats:",
        *(f"- {c}" for c in body["caveats"]),
        "",
        "## Agreement with the source model and costs",
        "",
        "| measure | value |",
        "|---|---:|",
        f"| target = source (exact match) | {agreement['exact_match']:.3f} |",
        f"| target vs source (token F1) | {agreement['token_f1']:.3f} |",
        f"| source training | {_money(costs['source_training_usd'])} |",
        f"| target training | {_money(costs['target_training_usd'])} |",
        "| source, per 1,000 requests (at most) | "
        f"{_money(costs['source_per_1000_requests_usd'])} |",
        "| target, per 1,000 requests (at most) | "
        f"{_money(costs['target_per_1000_requests_usd'])} |",
    ]
    return "\n".join(lines) + "\n"


# --- list / show -------------------------------------------------------------------------------


def steps_of(folder: Path) -> dict[str, str]:
    """``done`` / ``partial`` / ``pending`` per step, from the files each step writes."""
    golden_done = "pending"
    if (folder / "golden" / "cases.json").is_file():
        cases = len(Golden.model_validate(_read_json(folder / "golden" / "cases.json")).cases)
        have = len(_recorded(folder / "golden" / "answers.jsonl"))
        golden_done = "done" if have >= cases else f"partial ({have}/{cases} answers)"
    return {
        "fetch": "done" if (folder / "fetch" / "source.json").is_file() else "pending",
        "golden": golden_done,
        "plan": "done" if (folder / "plan.json").is_file() else "pending",
        "train": "launched" if (folder / "train.json").is_file() else "pending",
        "compare": "done" if (folder / "report.json").is_file() else "pending",
    }


def state_of(folder: Path) -> PortState:
    spec = PortSpec.model_validate(_read_json(folder / "port.json"))
    job_id = None
    if (folder / "train.json").is_file():
        job_id = str(_read_json(folder / "train.json").get("job_id"))
    verdict = None
    if (folder / "report.json").is_file():
        verdict = str(_read_json(folder / "report.json").get("verdict"))
    return PortState(spec=spec, steps=steps_of(folder), job_id=job_id, verdict=verdict)


def list_ports() -> list[PortState]:
    """Every port under ``TUNEPORT_HOME/ports``, newest first (unreadable folders skipped)."""
    root = ports_dir()
    found: list[PortState] = []
    for folder in sorted(root.iterdir()) if root.is_dir() else []:
        if (folder / "port.json").is_file():
            with contextlib.suppress(ValueError, OSError):
                found.append(state_of(folder))
    return sorted(found, key=lambda s: s.spec.created_at, reverse=True)
