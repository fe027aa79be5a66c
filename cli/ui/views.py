"""What the dashboard shows, as plain values: job rows with their money, loss curves drawn as SVG,
eval and port reports found on disk. No web framework here, so every piece is testable alone."""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from xml.sax.saxutils import escape

from tuneport.errors import redact
from tuneport.jobs.cost import job_cost
from tuneport.jobs.store import redact_config
from tuneport.pricing.table import PriceTable
from tuneport.schemas import JobEvent, JobRecord

# the keys of an eval report (tuneport.evaluate.run.EvalReport) and of a port report
_EVAL_KEYS = frozenset({"targets", "cases", "answers", "summary"})
REPORT_LIMIT_BYTES = 64 * 1024 * 1024  # a larger JSON file is not a report tuneport wrote


def usd(value: float | None) -> str:
    if value is None:
        return "—"
    return f"${value:,.2f}" if value >= 0.01 or value == 0 else f"${value:.4f}"


def count(value: int | None) -> str:
    return "—" if value is None else f"{value:,}"


def when(record: JobRecord, name: str) -> str:
    value = getattr(record, name)
    return value.strftime("%Y-%m-%d %H:%M") if value else ""


def job_row(record: JobRecord, prices: PriceTable | None = None) -> dict[str, Any]:
    """One job as the list shows it: estimate next to what was billed, money never silent."""
    cost = job_cost(record, prices=prices)
    if cost.own_hardware:
        actual = "own hardware"
    elif cost.cost_usd is not None:
        actual = usd(cost.cost_usd)
    elif cost.tokens is not None:
        actual = "unknown (no price)"
    else:
        actual = "—"
    return {
        "id": record.id,
        "provider": record.provider,
        "model": record.model,
        "method": record.method,
        "state": record.state.value,
        "terminal": record.state.terminal,
        "tuned_model": record.tuned_model or "",
        "estimate_tokens": count(record.estimate_tokens),
        "billed_tokens": count(cost.tokens),
        "estimate_cost": usd(record.estimate_cost_usd),
        "cost": actual,
        "created": when(record, "created_at"),
        "updated": when(record, "updated_at"),
        "updated_at": record.updated_at.isoformat(),
        "error": redact(record.error) if record.error else "",
    }


def job_detail(record: JobRecord) -> dict[str, Any]:
    """The settings and data of a job, secrets removed (the store never holds any; this is the
    second line of defence for what reaches a page)."""
    config = redact_config(record.config)
    return {
        "settings": json.dumps(config, indent=2, sort_keys=True, default=str),
        "data": str(config.get("data", "")) if isinstance(config, dict) else "",
        "sha256": record.dataset_sha256,
        "remote_id": record.remote_id or "",
        "remote_files": {k: redact(v) for k, v in record.remote_files.items()},
        "run_id": record.run_id,
        "parent_id": record.parent_id or "",
    }


@dataclass
class LossCurve:
    """Training (and validation) loss by step, from a job's metric events."""

    train: list[tuple[int, float]] = field(default_factory=list)
    valid: list[tuple[int, float]] = field(default_factory=list)

    @property
    def empty(self) -> bool:
        return not self.train and not self.valid


_VALID_KEYS = ("valid_loss", "eval_loss", "validation_loss", "full_valid_loss")


def _finite(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    number = float(value)
    return number if math.isfinite(number) else None


def loss_curve(events: Iterable[JobEvent]) -> LossCurve:
    """One point per step (the latest event for a step wins), in step order."""
    train: dict[int, float] = {}
    valid: dict[int, float] = {}
    for event in events:
        if event.step is None:
            continue
        loss = _finite(event.loss)
        if loss is not None:
            train[event.step] = loss
        for key in _VALID_KEYS:
            value = _finite(event.data.get(key))
            if value is not None:
                valid[event.step] = value
                break
    return LossCurve(sorted(train.items()), sorted(valid.items()))


def _scale(values: Sequence[float], lo: float, hi: float, size: float, pad: float) -> list[float]:
    span = (hi - lo) or 1.0
    return [pad + (v - lo) / span * (size - 2 * pad) for v in values]


def loss_svg(curve: LossCurve, *, width: int = 720, height: int = 280) -> str:
    """The loss curve as an inline SVG: one polyline per series, one point per step, axes with
    the first/last step and the loss range. The markup is built from numbers only."""
    if curve.empty:
        return '<p class="muted">No loss reported yet.</p>'
    pad = 36.0
    points = curve.train + curve.valid
    steps = [s for s, _ in points]
    losses = [v for _, v in points]
    s_lo, s_hi = min(steps), max(steps)
    l_lo, l_hi = min(losses), max(losses)
    parts = [
        f'<svg class="loss" viewBox="0 0 {width} {height}" width="100%" role="img" '
        f'aria-label="loss by step" xmlns="http://www.w3.org/2000/svg">',
        f'<line class="axis" x1="{pad}" y1="{height - pad}" x2="{width - pad}" '
        f'y2="{height - pad}"/>',
        f'<line class="axis" x1="{pad}" y1="{pad}" x2="{pad}" y2="{height - pad}"/>',
        f'<text x="{pad}" y="{height - 12}">step {s_lo:,}</text>',
        f'<text x="{width - pad}" y="{height - 12}" text-anchor="end">step {s_hi:,}</text>',
        f'<text x="4" y="{pad - 8}">{l_hi:.4g}</text>',
        f'<text x="4" y="{height - pad + 14}">{l_lo:.4g}</text>',
    ]
    for name, series in (("train", curve.train), ("valid", curve.valid)):
        if not series:
            continue
        xs = _scale([s for s, _ in series], s_lo, s_hi, width, pad)
        # loss grows downwards on screen: flip so a falling loss falls
        ys = [height - y for y in _scale([v for _, v in series], l_lo, l_hi, height, pad)]
        coords = " ".join(f"{x:.1f},{y:.1f}" for x, y in zip(xs, ys, strict=True))
        parts.append(
            f'<polyline class="series {name}" data-series="{name}" '
            f'data-points="{len(series)}" points="{coords}"/>'
        )
    legend = " · ".join(
        f'<tspan class="{n}">{n} ({len(s)} points)</tspan>'
        for n, s in (("train", curve.train), ("valid", curve.valid))
        if s
    )
    parts.append(f'<text x="{width - pad}" y="{pad - 8}" text-anchor="end">{legend}</text>')
    parts.append("</svg>")
    return "".join(parts)


def checkpoints(events: Iterable[JobEvent]) -> list[dict[str, str]]:
    """Checkpoints a job reported in its events (hosted backends and local runs both say so)."""
    found = []
    for event in events:
        data = event.data
        name = data.get("checkpoint") or data.get("fine_tuned_model_checkpoint")
        if isinstance(name, str) and name:
            found.append(
                {"step": "" if event.step is None else f"{event.step:,}", "name": redact(name)}
            )
    return found


# --- reports -----------------------------------------------------------------------------------


@dataclass
class Report:
    """An eval (or port) comparison found on disk, as table rows."""

    path: Path
    kind: str
    title: str
    columns: list[str]
    rows: list[list[str]]
    answers_header: list[str] = field(default_factory=list)
    answers: list[list[str]] = field(default_factory=list)


def _pct(value: Any) -> str:
    number = _finite(value)
    return "—" if number is None else f"{number:.1%}"


def read_report(path: Path) -> Report | None:
    """An eval report written by `tuneport eval -o` (its .json), or None when the file is not
    one (any other JSON in the folder is passed over, never an error)."""
    try:
        if path.stat().st_size > REPORT_LIMIT_BYTES:
            return None
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(data, dict) or not data.keys() >= _EVAL_KEYS:
        return None
    summary = data.get("summary")
    targets = data.get("targets")
    if not isinstance(summary, list) or not isinstance(targets, list):
        return None
    columns = ["model", "answered", "failed", "exact match", "token F1", "ROUGE-L", "mean s"]
    rows = []
    for s in summary:
        if not isinstance(s, dict):
            return None
        rows.append(
            [
                redact(str(s.get("spec", ""))),
                str(s.get("answered", "")),
                str(s.get("failed", "")),
                _pct(s.get("exact_match")),
                _pct(s.get("token_f1")),
                _pct(s.get("rouge_l")),
                f"{_finite(s.get('mean_seconds')) or 0:.2f}",
            ]
        )
    header = ["#", "reference"] + [redact(str(t.get("spec", ""))) for t in targets]
    answers = []
    cases = data.get("cases") or []
    for i, (case, row) in enumerate(zip(cases, data.get("answers") or [], strict=False)):
        cells = [str(i + 1), str(case.get("reference", ""))[:400]]
        for answer in row:
            text = answer.get("text") if isinstance(answer, dict) else None
            error = answer.get("error") if isinstance(answer, dict) else None
            cells.append(str(text)[:400] if text is not None else f"error: {error}")
        answers.append(cells)
    title = str(data.get("data") or path.stem)
    kind = "port" if "verdict" in data else "eval"
    return Report(path, kind, title, columns, rows, header, answers)


def find_reports(folders: Iterable[Path]) -> list[Report]:
    """The reports directly inside ``folders`` (and each port's folder), newest first."""
    seen: set[Path] = set()
    found: list[tuple[float, Report]] = []
    for folder in folders:
        candidates = list(folder.glob("*.json")) + list(folder.glob("*/report.json"))
        for path in candidates:
            real = path.resolve()
            if real in seen:
                continue
            seen.add(real)
            report = read_report(path)
            if report is not None:
                found.append((path.stat().st_mtime, report))
    return [r for _, r in sorted(found, key=lambda item: item[0], reverse=True)]


def escape_text(text: str) -> str:
    return escape(text)
