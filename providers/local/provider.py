"""The local backend: QLoRA fine-tuning on this machine's GPU, as a background process.

``launch`` writes ``TUNEPORT_HOME/runs/<run_id>/config.json`` and starts
``python -m tuneport.providers.local.trainer RUN_DIR`` in its own session (stdout/stderr to
``train.log``); ``status``/``events``/``cancel`` read and signal that run directory, so the generic
``tuneport jobs`` commands treat it like any remote job. ``resume`` continues from the last
checkpoint, ``export`` writes the adapter or merged weights, ``chat`` loads base + adapter.

Importing this module does not import torch: the heavy imports happen inside ``chat``/``export``
and in the trainer process.
"""

from __future__ import annotations

import contextlib
import os
import shlex
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterable, Iterator, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pydantic import Field, field_validator

from tuneport.errors import ConfigError, InputError, NotFoundError, ProviderError, require_extra
from tuneport.progress import Progress
from tuneport.providers.base import (
    ChatOptions,
    Check,
    Checkpoint,
    JobLookup,
    PreparedData,
    SourceJob,
    UploadedData,
    export_prepared,
    parse_options,
    status_fields,
)
from tuneport.providers.local import distributed, runfiles, sizing
from tuneport.providers.local import sky as skyrun
from tuneport.providers.local.recipe_config import (
    DEFAULT_BATCH_SIZE,
    DEFAULT_EPOCHS,
    DEFAULT_LEARNING_RATE,
    LocalOptions,
    RunConfig,
)
from tuneport.providers.local.runfiles import RunStatus
from tuneport.schemas import (
    AnyRecord,
    JobConfig,
    JobEvent,
    JobRef,
    JobState,
    JobStatus,
    Message,
)
from tuneport.tokens.counter import TokenCounter

NAME = "local"
# what training, chat and export import (the `local` extra); checked before anything is written
TORCH_STACK = ("torch", "transformers", "peft", "trl", "accelerate", "datasets")


def require_torch_stack(what: str) -> None:
    """A ConfigError naming ``pip install 'tuneport[local]'`` if the local extra is missing."""
    for module in TORCH_STACK:
        require_extra(module, "local", what)


MODEL_PREFIX = "local:"

# trainer phase -> normalized state (data, not if-chains)
PHASE_STATE: dict[str, JobState] = {
    "queued": JobState.QUEUED,
    "loading": JobState.RUNNING,
    "training": JobState.RUNNING,
    "saving": JobState.RUNNING,
    "succeeded": JobState.SUCCEEDED,
    "failed": JobState.FAILED,
    "cancelled": JobState.CANCELLED,
}


class LocalSettings(LocalOptions):
    """Everything ``LocalProvider(**settings)`` accepts: the run options (``--set key=value``,
    stored with each job and passed back when it is watched or resumed) plus a few settings of
    the backend itself."""

    home: Path | None = None  # default: TUNEPORT_HOME or the user data dir
    python: str | None = None  # interpreter for the trainer process; default: this one
    max_new_tokens: int = Field(default=256, gt=0)  # chat reply bound when none is given
    env: dict[str, str] = Field(default_factory=dict)  # extra environment for the trainer
    # several GPUs: e.g. "accelerate launch --config_file fsdp.yaml" (run as LAUNCHER -m trainer)
    launcher: str | None = None
    exit_wait_s: float = Field(default=30.0, ge=0)  # resume: wait for a stopping process

    @field_validator("launcher")
    @classmethod
    def _launcher_runs(cls, value: str | None) -> str | None:
        if value is None:
            return value
        try:
            words = shlex.split(value)
        except ValueError as exc:
            raise ValueError(f"cannot be split into words ({exc})") from None
        if not words:
            raise ValueError("is empty")
        return _program(words[0]) and value

    @field_validator("python")
    @classmethod
    def _python_runs(cls, value: str | None) -> str | None:
        return value if value is None else _program(value)


def _program(name: str) -> str:
    """``name`` if it runs (a program on PATH or an executable file), else a ValueError."""
    if shutil.which(name) is None:
        raise ValueError(f"{name!r} is neither a program on PATH nor an executable file")
    return name


def _home() -> Path:
    from tuneport.paths import home

    return home()


class LocalProvider:
    """The ``local`` provider (transformers + peft + trl + bitsandbytes)."""

    name = NAME
    # ConcurrencyLimited: one reply at a time on this machine's GPU (`eval` asks local models
    # one prompt at a time, whatever its --concurrency)
    max_concurrency = 1

    def __init__(self, *, store: JobLookup | None = None, **settings: Any) -> None:
        self.settings = parse_options(LocalSettings, settings, NAME)
        self._store = store  # the job store, for `parent=JOB_ID` (passed by the jobs layer)
        self._loaded: dict[Path, tuple[Any, Any]] = {}  # chat model cache: path -> model, tok
        self._load_locks: dict[Path, threading.Lock] = {}  # one per path: one load per model
        self._locks_lock = threading.Lock()  # guards _load_locks
        self._sky: Any = None  # SkyPilot's module (`--on sky`); tests set a fake
        self._runner: skyrun.Runner = skyrun.run_command  # rsync from the cluster
        self._builder: skyrun.Runner = skyrun.run_command  # pip wheel of this tuneport

    def _sky_api(self) -> Any:
        if self._sky is None:
            skyrun.require_sky()
            import sky

            self._sky = sky
        return self._sky

    # --- online counting (estimate --online) ---------------------------------------------------

    def online_counter(self, model: str) -> TokenCounter:
        """Exact counts with the model's own tokenizer and chat template: a local folder, the
        Hugging Face cache, or else its tokenizer files fetched from the Hub (never weights)."""
        from tuneport.tokens.hf import hub_counter

        counted: TokenCounter = hub_counter([model], what=f"model {model}")
        return counted

    # --- paths --------------------------------------------------------------------------------

    @property
    def runs_dir(self) -> Path:
        return (self.settings.home or _home()) / "runs"

    def run_dir(self, job: JobRef | str) -> Path:
        run_id = job if isinstance(job, str) else job.remote_id
        path = self.runs_dir / run_id
        if not (path / runfiles.CONFIG).is_file():
            raise NotFoundError(
                f"no local run {run_id!r} in {self.runs_dir}",
                hint="see `tuneport jobs list` for the ids",
            )
        return path

    def resolve_run(self, ref: str) -> Path:
        """A run directory from a run id, a local job id (job store) or a path."""
        candidate = self.runs_dir / ref
        if (candidate / runfiles.CONFIG).is_file():
            return candidate
        path = Path(ref).expanduser()
        if (path / runfiles.CONFIG).is_file():
            return path
        if self._store is None:
            raise NotFoundError(
                f"no local run {ref!r} in {self.runs_dir}",
                hint="pass a run id or a run folder (tuneport jobs list shows them)",
            )
        record = self._store.get(ref)
        if record.provider != NAME or not record.remote_id:
            raise ConfigError(
                f"job {ref} ran on {record.provider}, not on the local backend",
                hint="continue from a local job (tuneport jobs list)",
            )
        return self.run_dir(record.remote_id)

    # --- options ------------------------------------------------------------------------------

    @staticmethod
    def options(cfg: JobConfig) -> LocalOptions:
        """The run options in ``cfg.options`` (backend settings there are accepted, not used)."""
        parsed = parse_options(LocalSettings, cfg.options, NAME)
        run_keys = set(LocalOptions.model_fields)
        return LocalOptions.model_validate(parsed.model_dump(include=run_keys, exclude_unset=True))

    def _lineage(self, opts: LocalOptions) -> tuple[Path | None, str | None]:
        """``(adapter to merge first, parent run id)`` from ``parent`` / ``init_adapter``."""
        if opts.parent and opts.init_adapter:
            raise ConfigError(
                "set either parent or init_adapter, not both", hint="drop one of the --set options"
            )
        if opts.parent:
            parent_dir = self.resolve_run(opts.parent)
            adapter = parent_dir / runfiles.ADAPTER
            if not (adapter / "adapter_config.json").is_file():
                raise ConfigError(
                    f"the parent run {opts.parent} has no finished adapter",
                    hint="wait for it to succeed (tuneport jobs watch) or pick another parent",
                )
            return adapter, parent_dir.name
        if opts.init_adapter:
            adapter = opts.init_adapter.expanduser().resolve()
            if not (adapter / "adapter_config.json").is_file():
                raise ConfigError(
                    f"{opts.init_adapter} is not a PEFT adapter folder (no adapter_config.json)",
                    hint="point init_adapter at a run's adapter/ folder",
                )
            return adapter, None
        return None, None

    def preflight(self, cfg: JobConfig) -> None:
        """Options, parent adapter, template file and model folder checked before the estimate."""
        opts = self.options(cfg)
        if opts.on == "sky" and self._sky is None:
            skyrun.require_sky()  # before anything is written or started
        require_torch_stack("training on the local GPU (--provider local)")
        problems: list[str] = []
        try:
            self._lineage(opts)
        except (ConfigError, NotFoundError) as exc:
            problems.append(exc.message)
        if opts.chat_template is not None and not opts.chat_template.is_file():
            problems.append(f"chat template {opts.chat_template} not found")
        model = Path(cfg.model).expanduser()
        looks_local = cfg.model.startswith((".", "/", "~")) or model.exists()
        if looks_local and not (model / "config.json").is_file():
            problems.append(f"{cfg.model} is not a model folder (no config.json)")
        elif opts.on != "sky" and not looks_local and (why := sizing.unreachable_model(cfg.model)):
            # found before anything starts: the trainer would fail a minute later, no checkpoint
            # (a rented machine downloads the model itself)
            problems.append(
                f"{cfg.model} is neither a model folder nor in the Hugging Face cache, and {why}: "
                f"download it first (`hf download {cfg.model}`) where the Hub is reachable, or "
                "pass a local model folder as --model"
            )
        if cfg.method == "dpo" and (opts.packing or opts.padding_free):
            problems.append("packing / padding_free apply to --method sft only")
        if opts.on == "sky":
            problems.extend(skyrun.problems(opts, cfg.model))
        problems.extend(self._layout_problems(opts, probe=True))
        if problems:
            raise ConfigError("; ".join(problems), hint="fix the settings for provider local")

    def _layout_problems(self, opts: LocalOptions, *, probe: bool) -> list[str]:
        """Processes / strategy / machines / Liger problems; ``probe`` counts this machine's
        CUDA GPUs (imports torch) when a setting depends on them."""
        found: list[str] = []
        if self.settings.launcher and opts.distributed:
            found.append(
                "set either launcher or processes/strategy/accelerate_config, not both "
                "(tuneport writes the accelerate launcher itself)"
            )
        devices: int | None = None
        if opts.on == "sky":  # the rented machine's GPUs, not this one's
            devices = skyrun.accelerator_count(opts.accelerators or "")
        elif probe and (opts.distributed or opts.use_liger_kernel):
            import torch

            devices = torch.cuda.device_count() if torch.cuda.is_available() else 0
        found.extend(distributed.problems(opts, cuda_devices=devices))
        return found

    def _run_config(
        self, cfg: JobConfig, run_id: str, data: Path, validation: Path | None
    ) -> RunConfig:
        opts = self.options(cfg)
        found = self._layout_problems(opts, probe=False)
        if found:
            raise ConfigError("; ".join(found), hint="fix the settings for provider local")
        init_adapter, parent_run = self._lineage(opts)
        if opts.chat_template is not None:
            if not opts.chat_template.is_file():
                raise ConfigError(
                    f"chat template {opts.chat_template} not found", hint="check the path"
                )
            opts = opts.model_copy(update={"chat_template": opts.chat_template.resolve()})
        model = cfg.model
        if Path(model).expanduser().exists():
            model = str(Path(model).expanduser().resolve())
        multiplier = cfg.learning_rate_multiplier or 1.0
        return RunConfig(
            run_id=run_id,
            model=model,
            method=cfg.method,
            data=data,
            validation=validation,
            epochs=cfg.epochs or DEFAULT_EPOCHS,
            learning_rate=opts.learning_rate or DEFAULT_LEARNING_RATE * multiplier,
            batch_size=cfg.batch_size or DEFAULT_BATCH_SIZE,
            seed=cfg.seed if cfg.seed is not None else 42,
            lora=opts.lora_config(),
            options=opts,
            init_adapter=init_adapter,
            parent_run=parent_run,
        )

    # --- Provider protocol --------------------------------------------------------------------

    def prepare(
        self, records: Iterable[AnyRecord], cfg: JobConfig, out_dir: Path, progress: Progress
    ) -> PreparedData:
        """Write the records (and ``cfg.validation``) as Hugging Face dataset folders."""
        self.options(cfg)  # refuse bad options before any work
        return export_prepared(
            records,
            cfg,
            progress,
            out_dir,
            target=NAME,
            ext="hf",
            title="writing the local dataset",
        )

    def upload(self, prepared: PreparedData, cfg: JobConfig, progress: Progress) -> UploadedData:
        """Nothing to upload: the trainer reads the prepared folders (copied at launch)."""
        return UploadedData(
            training=str(prepared.training),
            validation=str(prepared.validation) if prepared.validation else None,
        )

    def launch(self, uploaded: UploadedData, cfg: JobConfig, run_id: str) -> JobRef:
        """Create ``runs/<run_id>`` and start the trainer; idempotent on ``run_id``."""
        ref = JobRef(provider=NAME, remote_id=run_id, run_id=run_id)
        run_dir = self.runs_dir / run_id
        on_sky = self.options(cfg).on == "sky"
        if (run_dir / runfiles.CONFIG).is_file():
            if on_sky:  # launched once: sky.json says so; else SkyPilot reuses the cluster
                self._sky_launch(run_dir, cfg)
            elif runfiles.read_pid(run_dir) is None:  # crashed between creating and starting
                self._spawn(run_dir, resume=False)
            return ref
        train_src = Path(uploaded.training)
        val_src = Path(uploaded.validation) if uploaded.validation else None
        if not train_src.is_dir():
            raise InputError(
                f"{train_src}: not a prepared dataset folder", hint="run prepare first"
            )
        staging = self.runs_dir / f".{run_id}.tmp"
        shutil.rmtree(staging, ignore_errors=True)
        staging.mkdir(parents=True)
        try:
            shutil.copytree(train_src, staging / runfiles.DATA)
            if val_src is not None:
                shutil.copytree(val_src, staging / runfiles.VALIDATION)
            # on a rented cluster the run folder lives elsewhere: paths relative to it
            where = Path() if on_sky else run_dir
            config = self._run_config(
                cfg,
                run_id,
                where / runfiles.DATA,
                where / runfiles.VALIDATION if val_src else None,
            )
            if config.options.distributed:
                distributed.write_config(config.options, staging / runfiles.ACCELERATE)
            runfiles.write_json_atomic(staging / runfiles.CONFIG, config.model_dump(mode="json"))
            runfiles.write_status(staging, RunStatus(phase="queued"))
            os.replace(staging, run_dir)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
        if on_sky:
            self._sky_launch(run_dir, cfg)
        else:
            self._spawn(run_dir, resume=False)
        return ref

    def _sky_launch(self, run_dir: Path, cfg: JobConfig) -> None:
        from importlib.metadata import version

        opts = self.options(cfg)
        if opts.sky_install:
            install = shlex.quote(opts.sky_install)
        else:
            root = skyrun.source_root()
            install = skyrun.ship_tuneport(
                run_dir, self._builder, root=root, version=version("tuneport")
            )
        task = skyrun.task_config(run_dir.name, run_dir, opts, install=install)
        skyrun.launch(task, run_dir, self._sky_api())

    def find_run(self, run_id: str) -> str | None:
        """The run folder's id if that run was created and its trainer started."""
        run_dir = self.runs_dir / run_id
        started = runfiles.read_pid(run_dir) is not None or skyrun.read_record(run_dir)
        if (run_dir / runfiles.CONFIG).is_file() and started:
            return run_id
        return None

    def _spawn(self, run_dir: Path, *, resume: bool) -> int:
        python = self.settings.python or sys.executable
        accelerate_config = run_dir / runfiles.ACCELERATE
        if accelerate_config.is_file():  # several processes: accelerate's launcher starts them
            shutil.rmtree(run_dir / runfiles.RANKS, ignore_errors=True)  # an earlier attempt's
            prefix = distributed.launch_prefix(python, accelerate_config)
        elif self.settings.launcher:
            prefix = shlex.split(self.settings.launcher)
        else:
            prefix = [python]
        command = [*prefix, "-m", "tuneport.providers.local.trainer", str(run_dir)]
        if resume:
            command.append("--resume")
        env = {**os.environ, "PYTHONUNBUFFERED": "1", "TOKENIZERS_PARALLELISM": "false"}
        env.update(self.settings.env)
        with (run_dir / runfiles.LOG).open("ab") as log:
            process = subprocess.Popen(
                command,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=run_dir,
                env=env,
                start_new_session=True,  # its own process group: cancel signals the whole group
            )
        (run_dir / runfiles.PID).write_text(f"{process.pid}\n")
        return process.pid

    def status(self, job: JobRef) -> JobStatus:
        run_dir = self.run_dir(job)
        return self._status(run_dir)

    def _status(self, run_dir: Path) -> JobStatus:
        config = RunConfig.model_validate_json((run_dir / runfiles.CONFIG).read_text())
        record = skyrun.read_record(run_dir)
        sky_state: str | None = None
        sky_notes: list[str] = []
        st = runfiles.read_status(run_dir) or RunStatus(phase="queued")
        finished = st.terminal and (
            st.phase != "succeeded" or (run_dir / runfiles.ADAPTER).is_dir()
        )
        if record is not None and not finished:
            # trained on a SkyPilot cluster: bring its log, status, metrics and adapter back
            sky_api = self._sky_api()
            sky_notes = skyrun.sync(run_dir, record, sky_api, self._runner)
            sky_state = skyrun.job_state(record, sky_api)
            st = runfiles.read_status(run_dir) or RunStatus(phase="queued")
        pid = runfiles.read_pid(run_dir)
        alive = self._alive(run_dir, pid) or sky_state in skyrun.ACTIVE_STATES
        phase, error = st.phase, st.error
        if record is not None and not st.terminal and sky_state in skyrun.ENDED_STATES:
            phase = "cancelled" if sky_state == "CANCELLED" else "failed"
            error = f"SkyPilot job {record['job_id']} on {record['cluster']}: {sky_state}"
            # its log is here; SkyPilot keeps a cluster whose setup failed up "for debugging"
            # (sky.launch's `down`), so it is torn down now and the outcome kept
            st.phase, st.error = phase, error
            runfiles.write_status(run_dir, st)
            try:
                skyrun.cancel(record, self._sky_api())
            except ProviderError as exc:
                sky_notes.append(exc.message)
        elif record is not None and sky_state is None and not st.terminal and sky_notes:
            error = f"SkyPilot cluster {record['cluster']} not reachable: {'; '.join(sky_notes)}"
        if not st.terminal and not alive and pid is not None:
            # the process is gone without saying how it ended: killed, OOM, crashed
            if (run_dir / runfiles.CANCEL).exists():
                phase = "cancelled"
            else:
                phase = "failed"
                error = (
                    runfiles.launcher_root_cause(run_dir)
                    or runfiles.last_log_line(run_dir)
                    or "the trainer process exited"
                )
                error = f"trainer process {pid} died: {error}"
        state = PHASE_STATE[phase]
        created = datetime.fromtimestamp((run_dir / runfiles.CONFIG).stat().st_mtime, UTC)
        return JobStatus(
            remote_id=config.run_id,
            state=state,
            raw_state=phase,
            error=error,
            tuned_model=f"{MODEL_PREFIX}{config.run_id}" if state is JobState.SUCCEEDED else None,
            trained_tokens=st.trained_tokens,
            epochs=config.epochs,
            progress=min(1.0, st.step / st.max_steps) if st.max_steps else None,
            run_id=config.run_id,
            model=config.model,
            created_at=created,
            phase=runfiles.PHASE_WORDS.get(phase),
            step=st.step if st.max_steps else None,
            total_steps=st.max_steps,
            loss=st.loss,
            tokens_per_second=st.tokens_per_s,
            compute_seconds=st.seconds,
            device=st.device,
            raw={
                **st.model_dump(mode="json"),
                "alive": alive,
                "run_dir": str(run_dir),
                **({"sky": {**record, "state": sky_state, "notes": sky_notes}} if record else {}),
            },
        )

    @staticmethod
    def _alive(run_dir: Path, pid: int | None) -> bool:
        """The launched process, or any rank of a run with several processes, still runs."""
        if pid is not None and runfiles.pid_alive(pid):
            return True
        return any(runfiles.pid_alive(p) for p in runfiles.rank_pids(run_dir).values())

    def events(self, job: JobRef, after: str | None = None) -> Iterator[JobEvent]:
        """``metrics.jsonl`` lines newer than ``after``; metric events have ``id`` = step."""
        run_dir = self.run_dir(job)
        floor = runfiles.event_key(after) if after else None
        for raw in runfiles.read_events(run_dir):
            event_id = str(raw.get("id", raw.get("step", "0")))
            if floor is not None and runfiles.event_key(event_id) <= floor:
                continue
            yield _to_event(event_id, raw)

    def cancel(self, job: JobRef) -> None:
        """SIGTERM to the trainer's process group and to every rank (torchrun starts each rank
        in its own session); they stop together at a step end and save a checkpoint."""
        run_dir = self.run_dir(job)
        (run_dir / runfiles.CANCEL).write_text(datetime.now(UTC).isoformat() + "\n")
        record = skyrun.read_record(run_dir)
        if record is not None:
            skyrun.cancel(record, self._sky_api())
            st = runfiles.read_status(run_dir)
            if st is None or not st.terminal:
                runfiles.write_status(run_dir, RunStatus(phase="cancelled"))
            return
        pid = runfiles.read_pid(run_dir)
        if not self._alive(run_dir, pid):
            st = runfiles.read_status(run_dir)
            if st is not None and not st.terminal:
                st.phase = "cancelled"
                runfiles.write_status(run_dir, st)
            return
        if pid is not None:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(pid, signal.SIGTERM)
        for rank_pid in runfiles.rank_pids(run_dir).values():
            if runfiles.pid_alive(rank_pid):
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.kill(rank_pid, signal.SIGTERM)

    def list_jobs(self, limit: int = 20) -> list[JobStatus]:
        if not self.runs_dir.is_dir():
            return []
        runs = [p for p in self.runs_dir.iterdir() if (p / runfiles.CONFIG).is_file()]
        runs.sort(key=lambda p: (p / runfiles.CONFIG).stat().st_mtime, reverse=True)
        return [self._status(p) for p in runs[:limit]]

    def chat(self, model: str, messages: Sequence[Message], options: ChatOptions) -> Message:
        """A reply from ``local:RUN`` (base + adapter), ``local:RUN/checkpoint-N`` or a path."""
        require_torch_stack("chat with a local model")
        from tuneport.providers.local import trainer

        loaded_model, tokenizer = self._model(self.model_path(model))
        text = trainer.generate_reply(
            loaded_model,
            tokenizer,
            [m.model_dump(exclude_none=True, include={"role", "content"}) for m in messages],
            max_new_tokens=options.max_tokens or self.settings.max_new_tokens,
            temperature=options.temperature,
        )
        return Message(role="assistant", content=text)

    def _model(self, path: Path) -> tuple[Any, Any]:
        """The model and tokenizer at ``path``, loaded once however many threads ask at once
        (the others wait for that load; a failed load is tried again by the next call)."""
        with self._locks_lock:
            lock = self._load_locks.setdefault(path, threading.Lock())
        with lock:
            loaded = self._loaded.get(path)
            if loaded is None:
                from tuneport.providers.local import trainer

                trainer.quiet_libraries()
                loaded = trainer.load_tuned(path, trainer.resolve_precision("auto"))
                self._loaded[path] = loaded
            return loaded

    def model_path(self, model: str) -> Path:
        """The folder behind a ``local:`` model id (adapter, checkpoint or merged weights)."""
        ref = model.removeprefix(MODEL_PREFIX)
        direct = Path(ref).expanduser()
        if direct.is_dir() and (
            (direct / "config.json").is_file() or (direct / "adapter_config.json").is_file()
        ):
            return direct.resolve()
        run_ref, _, sub = ref.partition("/")
        run_dir = self.resolve_run(run_ref)
        if sub:
            path = run_dir / runfiles.CHECKPOINTS / sub
            if not (path / "adapter_config.json").is_file():
                raise NotFoundError(
                    f"no checkpoint {sub} in run {run_dir.name}", hint="see jobs show"
                )
            return path
        adapter = run_dir / runfiles.ADAPTER
        if not (adapter / "adapter_config.json").is_file():
            state = self._status(run_dir).raw_state
            raise ProviderError(
                f"run {run_dir.name} has no adapter yet (state: {state})",
                hint="wait until it succeeds: tuneport jobs watch ID",
            )
        return adapter

    def cleanup(self, job: JobRef) -> list[str]:
        """Delete checkpoints and the copied datasets (disk space); the adapter stays."""
        run_dir = self.run_dir(job)
        current = self._status(run_dir)
        if current.raw.get("alive") and not current.state.terminal:
            raise ProviderError(
                f"run {run_dir.name} is still running",
                hint=f"cancel it first: `tuneport jobs cancel {run_dir.name}`",
            )
        removed = []
        for name in (runfiles.CHECKPOINTS, runfiles.DATA, runfiles.VALIDATION):
            path = run_dir / name
            if path.exists():
                shutil.rmtree(path, ignore_errors=True)
                removed.append(f"{path}")
        return removed

    # --- optional capabilities ----------------------------------------------------------------

    def doctor(self, timeout: float) -> list[Check]:
        """torch and the training libraries installed, a CUDA GPU, bitsandbytes, a writable
        runs folder (no network)."""
        import importlib.util
        from importlib.metadata import version

        if importlib.util.find_spec("torch") is None:
            return [
                Check(
                    "torch",
                    "skip",
                    "torch is not installed: the local backend is not configured",
                    fix='pip install "tuneport[local]" with torch pinned (see the README)',
                )
            ]
        import torch

        checks = [Check("torch", "ok", f"torch {torch.__version__}")]
        if torch.cuda.is_available():
            count = torch.cuda.device_count()
            name = torch.cuda.get_device_name(0)
            bf16 = "" if torch.cuda.is_bf16_supported() else "; no bf16: fp16 compute"
            checks.append(Check("GPU", "ok", f"{count}× {name} (CUDA {torch.version.cuda}{bf16})"))
        else:
            checks.append(
                Check(
                    "GPU",
                    "warn",
                    "no CUDA GPU: training runs on the CPU in float32 (slow; tiny models only)",
                    fix="use a machine with an NVIDIA GPU and a CUDA build of torch",
                )
            )
        needed = ("transformers", "peft", "trl", "datasets", "accelerate")
        missing = [m for m in needed if importlib.util.find_spec(m) is None]
        if missing:
            checks.append(
                Check(
                    "libraries",
                    "fail",
                    f"missing: {', '.join(missing)}",
                    fix='pip install "tuneport[local]"',
                )
            )
        else:
            found = ", ".join(f"{m} {version(m)}" for m in needed[:3])
            checks.append(Check("libraries", "ok", found))
        if importlib.util.find_spec("bitsandbytes") is None:
            checks.append(
                Check(
                    "bitsandbytes",
                    "warn",
                    "not installed: no 4-bit/8-bit quantization (train with --set quantize=none)",
                    fix="pip install bitsandbytes",
                )
            )
        else:
            checks.append(Check("bitsandbytes", "ok", f"bitsandbytes {version('bitsandbytes')}"))
        try:
            self.runs_dir.mkdir(parents=True, exist_ok=True)
            probe = self.runs_dir / ".doctor"
            probe.write_text("ok")
            probe.unlink()
            checks.append(Check("runs folder", "ok", f"{self.runs_dir} writable"))
        except OSError as exc:
            checks.append(
                Check(
                    "runs folder",
                    "fail",
                    f"{self.runs_dir}: {exc.strerror or exc}",
                    fix="set TUNEPORT_HOME to a writable folder",
                )
            )
        return checks

    def resume(self, job: JobRef) -> JobRef:
        """Start the trainer again from the run's last checkpoint (after a kill or cancel)."""
        run_dir = self.run_dir(job)
        current = self._status(run_dir)
        if current.state is JobState.SUCCEEDED:
            raise ProviderError(f"run {run_dir.name} already finished", hint="nothing to resume")
        record = skyrun.read_record(run_dir)
        if record is not None:  # never a second trainer on this machine for a rented run
            raise ProviderError(
                f"run {run_dir.name} trained on the SkyPilot cluster {record['cluster']}: "
                "tuneport does not resume it there",
                hint="launch it again with --new-run",
            )
        # a cancelled run has written its status and is exiting: give it a moment
        deadline = time.monotonic() + self.settings.exit_wait_s
        while current.raw.get("alive") and current.state.terminal and time.monotonic() < deadline:
            time.sleep(0.1)
            current = self._status(run_dir)
        if current.raw.get("alive"):
            stopping = current.state.terminal  # status written, process still exiting
            raise ProviderError(
                f"run {run_dir.name} is still {'stopping' if stopping else 'running'}",
                hint="try again in a moment" if stopping else "watch it instead",
            )
        if not (run_dir / runfiles.DATA).is_dir():
            raise ProviderError(
                f"run {run_dir.name} has no training data any more (cleaned up)",
                hint="launch a new run",
            )
        with contextlib.suppress(FileNotFoundError):
            (run_dir / runfiles.CANCEL).unlink()
        previous = runfiles.read_status(run_dir)
        runfiles.write_status(
            run_dir,
            RunStatus(
                phase="queued",
                step=previous.step if previous else 0,
                notes=previous.notes if previous else [],
            ),
        )
        self._spawn(run_dir, resume=True)
        return job

    def export(self, job: JobRef, out: Path, *, merge: bool) -> Path:
        """The adapter folder, or (``merge``) base + adapter merged into safetensors weights."""
        from tuneport.files import atomic_path

        run_dir = self.run_dir(job)
        adapter = self.model_path(f"{MODEL_PREFIX}{run_dir.name}")
        if merge:
            require_torch_stack("export --merge")
        with atomic_path(out) as tmp:
            if merge:
                from tuneport.providers.local import trainer

                trainer.quiet_libraries()
                trainer.merge_adapter(adapter, tmp)
            else:
                shutil.copytree(adapter, tmp)
        return out

    def checkpoints(self, job: JobRef) -> list[Checkpoint]:
        run_dir = self.run_dir(job)
        losses = {
            int(e["step"]): float(e["loss"])
            for e in runfiles.read_events(run_dir)
            if "loss" in e and "step" in e
        }
        return [
            Checkpoint(
                id=folder.name,
                step=step,
                model=f"{MODEL_PREFIX}{run_dir.name}/{folder.name}",
                metrics={"train_loss": losses[step]} if step in losses else {},
            )
            for step, folder in runfiles.checkpoints(run_dir)
        ]

    # --- ReturnsData: give a run's data back (`tuneport port`) ------------------------------

    def source_job(self, ref: str) -> SourceJob:
        """The run ``ref`` (a run id, ``local:RUN``, a job id or a run folder) as a port
        source: its base model, method and settings from ``config.json``, its dataset folders."""
        run_dir = self.resolve_run(ref.removeprefix(MODEL_PREFIX))
        config = RunConfig.model_validate_json((run_dir / runfiles.CONFIG).read_text())
        status = self._status(run_dir)
        return SourceJob(
            provider=NAME,
            remote_id=run_dir.name,
            model=config.model,
            method=config.method,
            **status_fields(status),
            hyperparameters={
                "epochs": config.epochs,
                # the multiplier that gives this rate on the local backend's default
                "learning_rate_multiplier": config.learning_rate / DEFAULT_LEARNING_RATE,
                "batch_size": config.batch_size,
            },
            training=str(run_dir / runfiles.DATA),
            validation=str(run_dir / runfiles.VALIDATION) if config.validation else None,
        )

    def download(self, ref: str, out: Path) -> None:
        """The rows of a run's dataset folder ``ref`` as canonical JSONL (lossless) at ``out``:
        the run keeps Hugging Face dataset folders, not the file it was given."""
        from tuneport.data.exporters import export_records
        from tuneport.data.records import read_records

        folder = Path(ref)
        if not folder.is_dir():
            raise NotFoundError(
                f"the run's dataset folder {folder} is gone", hint="port a run that still has it"
            )
        records = (row.record for row in read_records(folder) if row.record is not None)
        export_records(records, "canonical", out, force=True)


def _to_event(event_id: str, raw: dict[str, Any]) -> JobEvent:
    created = None
    if isinstance(raw.get("time"), str):
        with contextlib.suppress(ValueError):
            created = datetime.fromisoformat(raw["time"])
    if "loss" in raw:
        parts = [f"step {raw.get('step')}: loss {raw['loss']:.4f}"]
        if "lr" in raw:
            parts.append(f"lr {raw['lr']:.2e}")
        if "tokens_per_s" in raw:
            parts.append(f"{raw['tokens_per_s']:.0f} tok/s")
        if "memory_gib" in raw:
            parts.append(f"{raw['memory_gib']:.2f} GiB")
        message = ", ".join(parts)
        return JobEvent(
            id=event_id,
            created_at=created,
            message=message,
            step=int(raw["step"]),
            loss=float(raw["loss"]),
            data={k: v for k, v in raw.items() if k not in ("id", "time")},
        )
    return JobEvent(
        id=event_id,
        created_at=created,
        level=str(raw.get("level", "info")),
        message=str(raw.get("message", "")),
        data={k: v for k, v in raw.items() if k not in ("id", "time", "message", "level")},
    )
