"""The files of one local run, shared by the trainer process and the provider (no torch).

``RUN_DIR`` (``TUNEPORT_HOME/runs/<run_id>``) holds::

    config.json        the resolved recipe (RunConfig), written before the process starts
    data/ validation/  the training/validation datasets (``datasets.save_to_disk``)
    pid                the trainer's process id (written by the launcher)
    accelerate.yaml    the accelerate config of a run with several processes
    ranks/<RANK>       each rank's process id (several processes)
    status.json        RunStatus, rewritten atomically by the trainer
    metrics.jsonl      one JSON line per logged step (and a few messages), append-only
    train.log          stdout/stderr of the trainer process
    checkpoints/       Trainer checkpoints (checkpoint-<step>), used by ``resume``
    adapter/           the final LoRA adapter + tokenizer (+ tuneport.json)
    base/              the base with a parent adapter merged in, when continuing a run
    loss.png           the loss curve
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import tempfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

CONFIG = "config.json"
STATUS = "status.json"
METRICS = "metrics.jsonl"
LOG = "train.log"
PID = "pid"
ACCELERATE = "accelerate.yaml"
RANKS = "ranks"
CANCEL = "cancel_requested"
CHECKPOINTS = "checkpoints"
ADAPTER = "adapter"
BASE = "base"
DATA = "data"
VALIDATION = "validation"
LOSS_PNG = "loss.png"
ADAPTER_META = "tuneport.json"

Phase = Literal["queued", "loading", "training", "saving", "succeeded", "failed", "cancelled"]
TERMINAL_PHASES = ("succeeded", "failed", "cancelled")
# what a phase means, in words (the watch view and the phase events show these)
PHASE_WORDS: dict[str, str] = {
    "queued": "waiting for the trainer to start",
    "loading": "loading the model and data",
    "training": "training",
    "saving": "saving the adapter",
}


def utcnow() -> datetime:
    return datetime.now(UTC)


class RunStatus(BaseModel):
    """What the trainer process says about itself in ``status.json``."""

    model_config = ConfigDict(extra="forbid")

    phase: Phase
    pid: int | None = None
    step: int = 0
    max_steps: int | None = None
    epoch: float | None = None
    loss: float | None = None  # the latest logged training loss (the last step's at the end)
    trained_tokens: int | None = None
    tokens_per_s: float | None = None
    seconds: float | None = None  # how long the trainer has run, every attempt together
    device: str | None = None
    precision: str | None = None
    resumed_from: str | None = None
    error: str | None = None
    notes: list[str] = Field(default_factory=list)
    started_at: datetime | None = None
    updated_at: datetime = Field(default_factory=utcnow)
    finished_at: datetime | None = None

    @property
    def terminal(self) -> bool:
        return self.phase in TERMINAL_PHASES


def write_json_atomic(path: Path, data: Any) -> None:
    """Write JSON to ``path`` via a temp file + ``os.replace`` so readers never see half a file."""
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            json.dump(data, fh, indent=1, default=str)
            fh.write("\n")
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def write_status(run_dir: Path, status: RunStatus) -> None:
    status.updated_at = utcnow()
    write_json_atomic(run_dir / STATUS, status.model_dump(mode="json"))


def read_status(run_dir: Path) -> RunStatus | None:
    try:
        text = (run_dir / STATUS).read_text(encoding="utf-8")
        return RunStatus.model_validate_json(text)
    except (OSError, ValidationError, ValueError):
        return None


def append_event(run_dir: Path, event: dict[str, Any]) -> None:
    """Append one JSON line to ``metrics.jsonl`` (flushed, so ``watch`` sees it at once)."""
    line = json.dumps(event, default=str, separators=(",", ":"))
    with (run_dir / METRICS).open("a", encoding="utf-8") as fh:
        fh.write(line + "\n")
        fh.flush()


def read_events(run_dir: Path) -> list[dict[str, Any]]:
    """All complete lines of ``metrics.jsonl`` (a half-written last line is skipped)."""
    try:
        text = (run_dir / METRICS).read_text(encoding="utf-8")
    except OSError:
        return []
    events = []
    for line in text.splitlines():
        try:
            value = json.loads(line)
        except ValueError:
            continue
        if isinstance(value, dict):
            events.append(value)
    return events


def truncate_events(run_dir: Path, max_step: int) -> None:
    """Drop metric lines logged after ``max_step`` (they are redone when resuming)."""
    kept = [e for e in read_events(run_dir) if int(e.get("step") or 0) <= max_step]
    path = run_dir / METRICS
    fd, tmp = tempfile.mkstemp(prefix=".metrics.", suffix=".tmp", dir=run_dir)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        for event in kept:
            fh.write(json.dumps(event, default=str, separators=(",", ":")) + "\n")
    os.replace(tmp, path)


def event_key(event_id: str) -> tuple[int, int]:
    """Order of event ids: ``"12"`` is step 12's metrics, ``"12.1"`` a message after it."""
    step, _, sub = event_id.partition(".")
    try:
        return int(step), int(sub or 0)
    except ValueError:
        return -1, 0


def read_pid(run_dir: Path) -> int | None:
    try:
        return int((run_dir / PID).read_text().strip())
    except (OSError, ValueError):
        return None


def rank_pids(run_dir: Path) -> dict[int, int]:
    """``{rank: pid}`` written by the ranks of a run with several processes."""
    found: dict[int, int] = {}
    root = run_dir / RANKS
    for path in root.iterdir() if root.is_dir() else []:
        with contextlib.suppress(OSError, ValueError):
            found[int(path.name)] = int(path.read_text().strip())
    return found


def pid_alive(pid: int) -> bool:
    """Whether ``pid`` runs (a zombie child counts as dead; it is reaped when it is ours)."""
    try:
        done, _ = os.waitpid(pid, os.WNOHANG)
        if done == pid:
            return False
    except ChildProcessError:
        pass  # not our child: ask the kernel below
    except OSError:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True  # no /proc (macOS): kill(0) said it exists
    state = stat.rpartition(")")[2].split()[:1]
    return state != ["Z"]


def last_log_line(run_dir: Path, limit: int = 300) -> str | None:
    """The last non-empty line of ``train.log`` (an exception's message, usually)."""
    try:
        with (run_dir / LOG).open("rb") as fh:
            fh.seek(0, os.SEEK_END)
            size = fh.tell()
            fh.seek(max(0, size - 16384))
            tail = fh.read().decode("utf-8", "replace")
    except OSError:
        return None
    for line in reversed(tail.splitlines()):
        line = line.strip()
        if line:
            return line[:limit]
    return None


_ROOT_CAUSE = re.compile(
    r"Root Cause \(first observed failure\):.*?rank\s*:\s*(\d+).*?exitcode\s*:\s*(-?\d+)",
    re.DOTALL,
)


def launcher_root_cause(run_dir: Path) -> str | None:
    """``rank R exited with code C`` from torchrun's failure report at the end of ``train.log``
    (several processes), or None."""
    try:
        with (run_dir / LOG).open("rb") as fh:
            fh.seek(0, os.SEEK_END)
            fh.seek(max(0, fh.tell() - 16384))
            tail = fh.read().decode("utf-8", "replace")
    except OSError:
        return None
    found = _ROOT_CAUSE.findall(tail)
    if not found:
        return None
    rank, code = found[-1]
    return f"rank {rank} exited with code {code} (train.log has its output)"


_CHECKPOINT = re.compile(r"^checkpoint-(\d+)$")


def checkpoints(run_dir: Path) -> list[tuple[int, Path]]:
    """``(step, folder)`` of every complete Trainer checkpoint, oldest first."""
    root = run_dir / CHECKPOINTS
    found = []
    if root.is_dir():
        for child in root.iterdir():
            match = _CHECKPOINT.match(child.name)
            # trainer_state.json is written last: a folder without it is a checkpoint cut short
            if match and (child / "trainer_state.json").is_file():
                found.append((int(match.group(1)), child))
    return sorted(found)


def latest_checkpoint(run_dir: Path) -> Path | None:
    found = checkpoints(run_dir)
    return found[-1][1] if found else None
