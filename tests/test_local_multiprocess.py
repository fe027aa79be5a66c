"""The local backend with several processes (``--set processes=2``) on CPU: accelerate's launcher
(torchrun) and gloo, the same code path as several GPUs with DDP.

* 1 and 2 processes at the same global batch (4 × 1 vs 2 × 2) take the same optimizer steps and
  log the same loss curve (tolerance: 1e-3 absolute per step; measured identical to 5 decimals)
  and write one adapter with the same weights (1e-4); so do two "machines" on this host;
* killing rank 1 fails the run (status failed, launcher and every rank gone), ``resume`` continues
  from the last checkpoint with 2 processes, and ``cancel`` stops every rank at one step.

The combination checks and the written accelerate config are tested without launching anything.
"""

from __future__ import annotations

import contextlib
import os
import signal
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import psutil
import pytest
import yaml

from tests.fakes.tiny_model import build_tiny_model
from tuneport.errors import ConfigError
from tuneport.paths import home
from tuneport.progress import NullProgress
from tuneport.providers.local import distributed, runfiles
from tuneport.providers.local.provider import LocalProvider
from tuneport.providers.local.recipe_config import LocalOptions
from tuneport.schemas import Example, JobConfig, JobRef, JobState, Message

PAIRS = [
    ("hi", "hello"),
    ("what is 2+2?", "4"),
    ("capital of France?", "Paris"),
    ("color of the sky?", "blue"),
    ("1+1?", "2"),
    ("say yes", "yes"),
    ("say no", "no"),
    ("a city?", "tokyo"),
]
FAST = {
    "logging_steps": 1,
    "gradient_accumulation_steps": 1,
    "gradient_checkpointing": False,
    "warmup_ratio": 0.0,
    "lr_scheduler": "constant",
    "learning_rate": 1e-2,
    "lora_dropout": 0.0,  # dropout draws differ per rank: off, so the curves can be compared
}
LOSS_TOLERANCE = 1e-3
# every process single-threaded: two ranks on a shared 2-core machine
ENV = {"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}


def records() -> list[Example]:
    return [
        Example(messages=[Message(role="user", content=q), Message(role="assistant", content=a)])
        for q, a in PAIRS
    ]


def config(model: Path | str, batch: int, **options: Any) -> JobConfig:
    return JobConfig(
        provider="local",
        model=str(model),
        data=Path("unused.jsonl"),
        batch_size=batch,
        options={**FAST, **options},
    )


def start(provider: LocalProvider, cfg: JobConfig, tmp_path: Path, run_id: str) -> JobRef:
    provider.preflight(cfg)
    prepared = provider.prepare(records(), cfg, tmp_path / run_id, NullProgress())
    return provider.launch(provider.upload(prepared, cfg, NullProgress()), cfg, run_id)


def wait_for(check: Callable[[], Any], what: str, timeout: float = 240.0) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def ended(provider: LocalProvider, job: JobRef) -> Callable[[], Any]:
    def check() -> Any:
        status = provider.status(job)
        return status if status.state.terminal and not status.raw["alive"] else None

    return check


def stopped(provider: LocalProvider, job: JobRef) -> bool:
    return provider.status(job).state.terminal


def losses(run_dir: Path) -> list[float]:
    return [e["loss"] for e in runfiles.read_events(run_dir) if "loss" in e]


def tree(pid: int) -> list[psutil.Process]:
    """The launcher and every process below it."""
    root = psutil.Process(pid)
    return [root, *root.children(recursive=True)]


def all_gone(processes: list[psutil.Process]) -> bool:
    return not any(p.is_running() and p.status() != psutil.STATUS_ZOMBIE for p in processes)


@pytest.fixture(scope="module")
def tiny_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tiny_model(tmp_path_factory.mktemp("tiny") / "model")


@pytest.fixture(autouse=True)
def _stop_leftover_ranks() -> Iterator[None]:
    """A failing test must not leave a launcher or a rank running."""
    yield
    runs = home() / "runs"
    for run_dir in runs.iterdir() if runs.is_dir() else []:
        pids = [runfiles.read_pid(run_dir), *runfiles.rank_pids(run_dir).values()]
        for pid in pids:
            if pid is not None and runfiles.pid_alive(pid):
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.killpg(pid, signal.SIGKILL)


# --- no process started -----------------------------------------------------------------------


def test_the_accelerate_config_accelerate_itself_reads(tmp_path: Path) -> None:
    from accelerate.commands.config.config_args import load_config_from_file

    opts = LocalOptions(processes=4, strategy="fsdp")
    distributed.write_config(opts, tmp_path / "a.yaml")
    loaded = load_config_from_file(str(tmp_path / "a.yaml"))
    assert loaded.distributed_type == "FSDP" and loaded.num_processes == 4
    assert loaded.fsdp_config["fsdp_sharding_strategy"] == "FULL_SHARD"
    two = LocalOptions(
        processes=8, num_machines=2, machine_rank=1, main_address="10.0.0.1", main_port=29501
    )
    distributed.write_config(two, tmp_path / "b.yaml")
    loaded = load_config_from_file(str(tmp_path / "b.yaml"))
    assert (loaded.num_machines, loaded.machine_rank, loaded.num_processes) == (2, 1, 8)
    assert (loaded.main_process_ip, loaded.main_process_port) == ("10.0.0.1", 29501)
    assert loaded.distributed_type == "MULTI_GPU"


@pytest.mark.parametrize(
    ("options", "cuda", "expected"),
    [
        ({"processes": 2}, 0, []),  # DDP over gloo on CPU
        ({"processes": 2}, 2, []),
        ({"processes": 4}, 2, ["processes=4 but this machine has 2 CUDA GPUs"]),
        ({"strategy": "fsdp", "quantize": "8bit"}, 2, ["cannot shard 8-bit weights; use"]),
        (
            {"strategy": "fsdp", "processes": 2, "quant_storage": "uint8"},
            2,
            ["with 4-bit weights needs them stored in the compute dtype"],
        ),
        ({"strategy": "fsdp", "processes": 2, "quantize": "none"}, 2, []),  # bf16 LoRA
        ({"strategy": "fsdp", "processes": 2}, 2, []),  # storage = the compute dtype (auto)
        ({"strategy": "fsdp", "processes": 2}, 0, ["strategy=fsdp needs CUDA GPUs"]),
        ({"use_liger_kernel": True}, 0, ["use_liger_kernel needs a CUDA GPU"]),
        (
            {"processes": 3, "num_machines": 2},
            None,
            ["multiple of num_machines=2", "needs main_address"],
        ),
        ({"machine_rank": 1}, None, ["machine_rank is for num_machines > 1"]),
    ],
)
def test_combinations_are_checked_before_anything_starts(
    options: dict[str, Any], cuda: int | None, expected: list[str]
) -> None:
    found = distributed.problems(LocalOptions.model_validate(options), cuda_devices=cuda)
    assert len(found) == len(expected), found
    for line, part in zip(found, expected, strict=True):
        assert part in line
    if any("shard" in e or "stored" in e for e in expected):
        assert all(distributed.WORKING in line for line in found)  # names what works


def test_preflight_refuses_liger_on_cpu_and_a_launcher_clash(tiny_dir: Path) -> None:
    provider = LocalProvider(launcher="accelerate launch")
    with pytest.raises(ConfigError) as caught:
        provider.preflight(config(tiny_dir, 2, processes=2, use_liger_kernel=True))
    assert "either launcher or processes" in caught.value.message
    assert "use_liger_kernel needs a CUDA GPU" in caught.value.message


def test_an_accelerate_config_file_gives_the_layout(tmp_path: Path) -> None:
    path = tmp_path / "zero3.yaml"
    path.write_text(
        yaml.safe_dump(
            {
                "distributed_type": "DEEPSPEED",
                "num_processes": 4,
                "deepspeed_config": {"zero_stage": 3},
            }
        )
    )
    opts = LocalOptions(accelerate_config=path, quantize="8bit")
    assert distributed.layout(opts) == distributed.Layout(4, "deepspeed", 1, source=str(path))
    (problem,) = distributed.problems(opts, cuda_devices=None)
    assert "cannot shard 8-bit weights" in problem
    clash = LocalOptions(accelerate_config=path, processes=2)
    assert "drop processes" in distributed.problems(clash, cuda_devices=None)[0]


def test_the_estimate_knows_processes_and_strategy(tiny_dir: Path, tmp_path: Path) -> None:
    from tuneport.jobs.quote import estimate as quote_estimate
    from tuneport.providers.local.sizing import ModelShape, qlora_memory_gib

    data = tmp_path / "train.jsonl"
    data.write_text("".join(r.model_dump_json() + "\n" for r in records()), encoding="utf-8")

    def est(**options: Any) -> Any:
        cfg = config(tiny_dir, 2, **options).model_copy(update={"epochs": 3, "data": data})
        return quote_estimate(cfg)

    one, ddp, fsdp = est(), est(processes=2), est(processes=2, strategy="fsdp")
    assert (one.steps, ddp.steps, fsdp.steps) == (12, 6, 6)  # 8 examples / (2 × 1 × N) × 3
    assert not any("assumed" in w for w in one.warnings)
    (line,) = [w for w in ddp.warnings if w.startswith("assumed")]
    assert "2 processes, ddp (settings)" in line and "= 4 per optimizer step" in line
    assert "each GPU holds the whole model" in line
    assert ddp.gpu_memory_gib == one.gpu_memory_gib
    assert "1/2 of the weights" in next(w for w in fsdp.warnings if w.startswith("assumed"))
    assert fsdp.gpu_memory_gib is not None and one.gpu_memory_gib is not None

    # an 8B model: FSDP over 4 GPUs splits the weights; bf16 LoRA weighs more than 4-bit
    shape = ModelShape.from_config(
        {
            "hidden_size": 4096,
            "intermediate_size": 14336,
            "num_attention_heads": 32,
            "num_hidden_layers": 32,
            "num_key_value_heads": 8,
            "vocab_size": 128256,
        }
    )
    alone = qlora_memory_gib(shape, rank=16, batch=1, seq_len=512)
    sharded = qlora_memory_gib(shape, rank=16, batch=1, seq_len=512, shards=4)
    bf16 = qlora_memory_gib(shape, rank=16, batch=1, seq_len=512, shards=4, weight_bytes=2.0)
    assert sharded < alone / 2 and sharded < bf16 < alone * 1.5


TORCHRUN_REPORT = """torch.distributed.elastic.multiprocessing.errors.ChildFailedError:
============================================================
tuneport.providers.local.trainer FAILED
------------------------------------------------------------
Failures:
[1]:
  rank      : 1 (local_rank: 1)
  exitcode  : -15 (pid: 24423)  (SIGTERM)
------------------------------------------------------------
Root Cause (first observed failure):
[0]:
  time      : 2026-12-06_21:19:38
  rank      : 0 (local_rank: 0)
  exitcode  : -9 (pid: 24422)
  traceback : To enable traceback see: https://pytorch.org/docs/stable/elastic/errors.html
============================================================
"""


def test_a_launcher_that_died_names_the_rank_that_failed_first(tmp_path: Path) -> None:
    (tmp_path / runfiles.LOG).write_text("loading\n" + TORCHRUN_REPORT)
    cause = runfiles.launcher_root_cause(tmp_path)
    assert cause == "rank 0 exited with code -9 (train.log has its output)"
    (tmp_path / runfiles.LOG).write_text("Traceback ...\nValueError: boom\n")
    assert runfiles.launcher_root_cause(tmp_path) is None


# --- real runs (accelerate launch, 2 ranks on gloo) -----------------------------------------


@pytest.mark.slow
def test_one_and_two_processes_train_the_same_run(tiny_dir: Path, tmp_path: Path) -> None:
    """1 process (batch 4), 2 processes on one machine (batch 2 each), and 2 "machines" on this
    host with one process each (num_machines=2, machine_rank 0 / 1, main_address 127.0.0.1)."""
    provider = LocalProvider(env=ENV)
    one = start(provider, config(tiny_dir, 4, max_steps=6), tmp_path, "run-one")
    two = start(provider, config(tiny_dir, 2, max_steps=6, processes=2), tmp_path, "run-two")
    port = 29400 + os.getpid() % 500
    machines = [
        start(
            provider,
            config(
                tiny_dir,
                2,
                max_steps=6,
                save_steps=3,
                processes=2,
                num_machines=2,
                machine_rank=rank,
                main_address="127.0.0.1",
                main_port=port,
            ),
            tmp_path,
            f"run-machine-{rank}",
        )
        for rank in (0, 1)
    ]
    for job in (one, two, *machines):
        status = wait_for(ended(provider, job), f"{job.remote_id} to end")
        assert status.state is JobState.SUCCEEDED, status.error
        assert (status.step, status.total_steps) == (6, 6)
    one_dir, two_dir = provider.run_dir(one), provider.run_dir(two)
    assert not (one_dir / runfiles.ACCELERATE).exists()  # one process: no launcher
    written = yaml.safe_load((two_dir / runfiles.ACCELERATE).read_text())
    assert written["num_processes"] == 2 and written["distributed_type"] == "MULTI_GPU"
    assert sorted(runfiles.rank_pids(two_dir)) == [0, 1]

    curve_one, curve_two = losses(one_dir), losses(two_dir)
    assert len(curve_one) == len(curve_two) == 6
    assert curve_one == pytest.approx(curve_two, abs=LOSS_TOLERANCE)
    assert curve_two[-1] < curve_two[0]
    # rank 0 alone wrote the metrics: one line per step
    assert [e["step"] for e in runfiles.read_events(two_dir) if "loss" in e] == list(range(1, 7))
    assert provider.status(one).trained_tokens == provider.status(two).trained_tokens

    from safetensors.torch import load_file

    weights_one = load_file(str(one_dir / runfiles.ADAPTER / "adapter_model.safetensors"))
    weights_two = load_file(str(two_dir / runfiles.ADAPTER / "adapter_model.safetensors"))
    assert weights_one.keys() == weights_two.keys() and weights_one
    for key, value in weights_one.items():
        assert (value - weights_two[key]).abs().max().item() < 1e-4, key
    assert not (two_dir / ".adapter.tmp").exists()

    # each machine's first process writes its own run folder: the same curve, its own
    # checkpoints (save_on_each_node: a resume needs no shared disk) and the DDP adapter
    for rank, job in enumerate(machines):
        run_dir = provider.run_dir(job)
        assert losses(run_dir) == pytest.approx(curve_one, abs=LOSS_TOLERANCE)
        assert [step for step, _ in runfiles.checkpoints(run_dir)] == [3, 6]
        assert (run_dir / runfiles.ADAPTER / "adapter_model.safetensors").is_file()
        assert list(runfiles.rank_pids(run_dir)) == [rank]


@pytest.mark.slow
def test_a_dead_rank_fails_the_run_resume_and_cancel_reach_every_rank(
    tiny_dir: Path, tmp_path: Path
) -> None:
    provider = LocalProvider(env=ENV, exit_wait_s=60)
    cfg = config(tiny_dir, 2, max_steps=100000, save_steps=2, processes=2)
    job = start(provider, cfg, tmp_path, "run-kill")
    run_dir = provider.run_dir(job)
    launcher = runfiles.read_pid(run_dir)
    assert launcher is not None
    wait_for(lambda: runfiles.latest_checkpoint(run_dir) or stopped(provider, job), "a checkpoint")
    assert not provider.status(job).state.terminal, provider.status(job).error
    processes = tree(launcher)
    ranks = runfiles.rank_pids(run_dir)
    assert sorted(ranks) == [0, 1] and {p.pid for p in processes} >= set(ranks.values())

    os.kill(ranks[1], signal.SIGKILL)
    status = wait_for(ended(provider, job), "the run to fail")
    assert status.state is JobState.FAILED, status
    assert status.error and "`tuneport jobs resume run-kill` continues" in status.error
    wait_for(lambda: all_gone(processes), "the launcher and rank 0 to exit")  # no orphan
    checkpoint = runfiles.latest_checkpoint(run_dir)
    assert checkpoint is not None
    step = int(checkpoint.name.rpartition("-")[2])

    assert provider.resume(job) == job  # continues with 2 processes from the checkpoint
    status = wait_for(
        lambda: (s := provider.status(job)).raw.get("step", 0) > step + 2 and s,
        "the resumed run to train",
    )
    assert status.raw["resumed_from"] == checkpoint.name
    launcher = runfiles.read_pid(run_dir)
    assert launcher is not None
    processes = tree(launcher)
    ranks = runfiles.rank_pids(run_dir)
    assert sorted(ranks) == [0, 1] and {p.pid for p in processes} >= set(ranks.values())

    provider.cancel(job)
    status = wait_for(ended(provider, job), "the cancel")
    assert status.state is JobState.CANCELLED and status.error is None
    wait_for(lambda: all_gone(processes), "every rank to exit")
    final = runfiles.latest_checkpoint(run_dir)
    assert final is not None and int(final.name.rpartition("-")[2]) == status.raw["step"]
    # every rank stopped at that step: both saved their RNG state into the same checkpoint
    assert {p.name for p in final.glob("rng_state_*.pth")} == {"rng_state_0.pth", "rng_state_1.pth"}


@pytest.mark.slow
def test_ranks_do_not_outlive_a_killed_launcher(tiny_dir: Path, tmp_path: Path) -> None:
    """kill -9 of the launcher alone (OOM killer, a user): each rank gets SIGTERM from the kernel
    (PR_SET_PDEATHSIG) and exits; the run reads failed and resumable."""
    provider = LocalProvider(env=ENV)
    job = start(
        provider, config(tiny_dir, 2, max_steps=100000, processes=2), tmp_path, "run-orphan"
    )
    run_dir = provider.run_dir(job)
    wait_for(
        lambda: provider.status(job).raw.get("step", 0) >= 1 or stopped(provider, job), "training"
    )
    launcher = runfiles.read_pid(run_dir)
    assert launcher is not None
    processes = tree(launcher)
    assert len(runfiles.rank_pids(run_dir)) == 2
    os.kill(launcher, signal.SIGKILL)
    wait_for(lambda: all_gone(processes), "every rank to exit")
    status = wait_for(ended(provider, job), "the run to fail")
    assert status.state is JobState.FAILED and status.error
