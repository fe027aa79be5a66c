"""`--on sky`: a local run trained on GPUs rented through SkyPilot.

No cloud is reached: the task is a plain dict checked against a golden file and against what
SkyPilot requires (and, where SkyPilot is installed, by SkyPilot's own parser); launching,
following and cancelling go through a fake ``sky`` module that records its calls, with rsync
replaced by a copy from a folder standing for the head node.
"""

from __future__ import annotations

import copy
import importlib.util
import shutil
import sys
from collections.abc import Sequence
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
import yaml

from tuneport.cli.main import run
from tuneport.errors import ConfigError, ProviderError
from tuneport.jobs.store import open_store
from tuneport.paths import home
from tuneport.progress import NullProgress
from tuneport.providers.local import runfiles
from tuneport.providers.local import sky as skyrun
from tuneport.providers.local.provider import LocalProvider
from tuneport.providers.local.recipe_config import LocalOptions, RunConfig
from tuneport.providers.local.runfiles import RunStatus
from tuneport.schemas import Example, JobConfig, JobState, Message

GOLDEN = Path(__file__).parent.parent / "fixtures" / "golden" / "local.sky-task.yaml"
SKY_SETTINGS = {"on": "sky", "accelerators": "A100:2", "processes": 4, "num_machines": 2}


def test_task_matches_the_golden_file(tmp_path: Path) -> None:
    run_dir = tmp_path / "run-1"
    run_dir.mkdir()
    (run_dir / runfiles.ACCELERATE).write_text("distributed_type: MULTI_GPU\n")
    opts = LocalOptions(**SKY_SETTINGS, cloud="aws", use_spot=True)
    wheel = '"$HOME/tuneport-run/dist/tuneport-0.1.0-py3-none-any.whl[local]"'
    task = skyrun.task_config("run-1", run_dir, opts, install=wheel)
    expected = yaml.safe_load(GOLDEN.read_text().replace("RUN_DIR", str(run_dir)))
    assert task == expected
    # one process, no accelerate config: the trainer alone, on one node
    single = skyrun.task_config(
        "run-1", tmp_path, LocalOptions(on="sky", accelerators="L4"), install="x"
    )
    assert single["num_nodes"] == 1
    assert "python -m tuneport.providers.local.trainer ~/tuneport-run" in single["run"]
    assert "cloud" not in single["resources"]


def _validate_with_skypilot(task: dict[str, Any]) -> None:
    import sky

    parsed = sky.Task.from_yaml_config(copy.deepcopy(task))  # it pops the keys it reads
    assert parsed.num_nodes == task["num_nodes"]
    assert parsed.file_mounts == task["file_mounts"]
    (resources,) = parsed.resources
    assert resources.accelerators == {"A100": 2}
    assert resources.use_spot is True


def test_task_passes_what_skypilot_requires(tmp_path: Path) -> None:
    """The schema of what SkyPilot needs always; SkyPilot's own parser where it is installed
    (the optional `sky` extra; tuneport's CI does not install it)."""
    opts = LocalOptions(**SKY_SETTINGS, use_spot=True)
    task = skyrun.task_config("run-1", tmp_path, opts, install="tuneport[local]==0.1.0")
    assert skyrun.schema_problems(task) == []
    broken = {k: v for k, v in task.items() if k != "envs"}
    broken["resources"] = {"cloud": "aws"}
    broken["num_nodes"] = 0
    assert skyrun.schema_problems(broken) == [
        "missing envs",
        "resources.accelerators missing",
        "num_nodes must be a positive integer",
        "envs must map names to strings",
    ]
    if importlib.util.find_spec("sky") is not None:
        _validate_with_skypilot(task)


def test_settings_are_checked_before_anything_starts(tmp_path: Path) -> None:
    model_dir = tmp_path / "model"
    model_dir.mkdir()
    opts = LocalOptions(on="sky", processes=8, accelerators="H100:2", num_machines=2)
    assert skyrun.problems(opts, "org/model") == [
        "processes=8 but 2 machine(s) × 2 GPU(s): one process per GPU"
    ]
    assert skyrun.problems(LocalOptions(on="sky"), "org/model") == [
        "--on sky needs accelerators (e.g. --set accelerators=A100:1)"
    ]
    (found,) = skyrun.problems(LocalOptions(on="sky", accelerators="A100:x"), str(model_dir))[:1]
    assert "write NAME or NAME:COUNT" in found
    shipped = skyrun.problems(LocalOptions(on="sky", accelerators="A100"), str(model_dir))
    assert shipped == [
        "--on sky ships the data only, not model: use a Hugging Face model id and drop the "
        "local files"
    ]


class FakeSky:
    """The parts of SkyPilot's Python API tuneport calls, recording each call."""

    def __init__(self, remote: Path) -> None:
        self.remote = remote  # stands for ~/tuneport-run on the head node
        self.calls: list[tuple[str, Any]] = []
        self.state = "RUNNING"
        self.Task = SimpleNamespace(from_yaml_config=self._task)

    def _task(self, config: dict[str, Any]) -> dict[str, Any]:
        self.calls.append(("Task.from_yaml_config", config))
        return {"task": config}

    def launch(self, task: Any, **kwargs: Any) -> str:
        self.calls.append(("launch", kwargs))
        # the cluster gets the run folder (file_mounts)
        shutil.copytree(task["task"]["file_mounts"][skyrun.REMOTE_DIR], self.remote)
        return "req-launch"

    def down(self, cluster: str) -> str:
        self.calls.append(("down", cluster))
        return "req-down"

    def stream_and_get(self, request: str) -> Any:
        return (7, "handle") if request == "req-launch" else None

    def job_status(self, cluster: str, job_ids: list[int]) -> str:
        return "req-status"

    def get(self, request: str) -> dict[int, Any]:
        return {7: SimpleNamespace(value=self.state)}

    def tail_logs(self, cluster: str, job_id: int, follow: bool, output_stream: Any) -> int:
        self.calls.append(("tail_logs", (cluster, job_id, follow)))
        output_stream.write("remote log line\n")
        return 0

    def names(self) -> list[str]:
        return [name for name, _ in self.calls]


def rsync_from(remote: Path) -> Any:
    """A runner copying ``CLUSTER:~/tuneport-run/X`` from ``remote`` (rsync's exit 23 when
    the file is not there); ``pip wheel`` writes a stand-in wheel."""

    def runner(command: Sequence[str]) -> int:
        if "wheel" in command:
            out = Path(command[command.index("-w") + 1])
            out.mkdir(parents=True, exist_ok=True)
            (out / "tuneport-0.1.0-py3-none-any.whl").write_bytes(b"PK")
            return 0
        assert command[:2] == ["rsync", "-a"]
        source = remote / command[2].split(f"{skyrun.REMOTE_DIR}/", 1)[1].rstrip("/")
        target = Path(command[3].rstrip("/"))
        if source.is_dir():
            shutil.copytree(source, target)
        elif source.is_file():
            shutil.copyfile(source, target)
        else:
            return 23
        return 0

    return runner


def sky_config(**options: Any) -> JobConfig:
    return JobConfig(
        provider="local",
        model="org/some-model",
        data=Path("unused.jsonl"),
        options={"on": "sky", "accelerators": "A100:1", **options},
    )


def records() -> list[Example]:
    return [
        Example(
            messages=[
                Message(role="user", content="hi"),
                Message(role="assistant", content="hello"),
            ]
        )
    ]


def test_launch_follow_bring_back_the_adapter_and_cancel(tmp_path: Path) -> None:
    fake = FakeSky(tmp_path / "head-node")
    provider = LocalProvider(home=tmp_path / "home")
    provider._sky = fake
    provider._runner = provider._builder = rsync_from(fake.remote)
    cfg = sky_config()
    provider.preflight(cfg)  # the fake counts as installed; the rented GPUs, not this machine's
    prepared = provider.prepare(records(), cfg, tmp_path / "prepared", NullProgress())
    uploaded = provider.upload(prepared, cfg, NullProgress())
    job = provider.launch(uploaded, cfg, "run-sky")
    provider.launch(uploaded, cfg, "run-sky")  # a retry of the same intended run
    assert fake.names().count("launch") == 1
    (launched,) = [kw for name, kw in fake.calls if name == "launch"]
    assert launched["cluster_name"] == "tuneport-run-sky"
    assert launched["down"] is True and launched["idle_minutes_to_autostop"] > 0
    (task,) = [config for name, config in fake.calls if name == "Task.from_yaml_config"]
    assert skyrun.schema_problems(task) == []
    assert (
        'pip install "$HOME/tuneport-run/dist/tuneport-0.1.0-py3-none-any.whl[local]"'
        in (task["setup"])
    )
    assert (fake.remote / "dist" / "tuneport-0.1.0-py3-none-any.whl").is_file()  # shipped
    run_dir = provider.run_dir(job)
    assert not (run_dir / runfiles.PID).exists()  # nothing started on this machine
    config = RunConfig.model_validate_json((run_dir / runfiles.CONFIG).read_text())
    assert config.data == Path(runfiles.DATA)  # relative: the folder moves to the cluster
    assert config.in_folder(fake.remote).data == fake.remote / runfiles.DATA
    assert provider.find_run("run-sky") == "run-sky"

    # the trainer on the head node writes its files; status brings them back
    runfiles.write_status(fake.remote, RunStatus(phase="training", step=1, max_steps=2))
    runfiles.append_event(fake.remote, {"id": "1", "step": 1, "loss": 1.5})
    status = provider.status(job)
    assert status.state is JobState.RUNNING and status.step == 1
    assert [e.loss for e in provider.events(job)] == [1.5]
    assert (run_dir / runfiles.LOG).read_text() == "remote log line\n"
    assert ("tail_logs", ("tuneport-run-sky", 7, False)) in fake.calls

    (fake.remote / runfiles.ADAPTER).mkdir()
    (fake.remote / runfiles.ADAPTER / "adapter_config.json").write_text("{}")
    runfiles.write_status(fake.remote, RunStatus(phase="succeeded", step=2, max_steps=2))
    fake.state = "SUCCEEDED"
    status = provider.status(job)
    assert status.state is JobState.SUCCEEDED and status.tuned_model == "local:run-sky"
    assert (run_dir / runfiles.ADAPTER / "adapter_config.json").is_file()
    assert provider.model_path("local:run-sky") == run_dir / runfiles.ADAPTER
    fetched = fake.names().count("tail_logs")
    provider.status(job)  # finished and fetched: the cluster is not asked again
    assert fake.names().count("tail_logs") == fetched

    provider.cancel(job)
    assert ("down", "tuneport-run-sky") in fake.calls


def test_a_failed_skypilot_job_fails_the_run_and_cancel_tears_down(tmp_path: Path) -> None:
    fake = FakeSky(tmp_path / "head-node")
    provider = LocalProvider(home=tmp_path / "home")
    provider._sky = fake
    provider._runner = provider._builder = rsync_from(fake.remote)
    cfg = sky_config()
    prepared = provider.prepare(records(), cfg, tmp_path / "prepared", NullProgress())
    job = provider.launch(provider.upload(prepared, cfg, NullProgress()), cfg, "run-f")
    fake.state = "FAILED_SETUP"  # e.g. pip install failed on the cluster
    status = provider.status(job)
    assert status.state is JobState.FAILED
    assert status.error == "SkyPilot job 7 on tuneport-run-f: FAILED_SETUP"
    assert status.raw["sky"]["notes"] == [
        "metrics.jsonl not fetched from tuneport-run-f (rsync exit 23)"  # none written there
    ]
    assert fake.names()[-1] == "down"  # a failed setup keeps SkyPilot's cluster up: not ours
    assert provider.status(job).state is JobState.FAILED  # kept, the cluster is not asked again
    assert fake.names()[-1] == "down"

    fresh = FakeSky(tmp_path / "other")
    second = LocalProvider(home=tmp_path / "home")
    second._sky = fresh
    second._runner = second._builder = rsync_from(fresh.remote)
    job2 = second.launch(second.upload(prepared, cfg, NullProgress()), cfg, "run-c")
    second.cancel(job2)
    assert fresh.names()[-1] == "down"
    assert second.status(job2).state is JobState.CANCELLED


def test_price_from_the_catalog_or_said_unknown() -> None:
    opts = LocalOptions(on="sky", accelerators="A100:8", num_machines=2)

    class Offline:
        def list_accelerators(self, **kwargs: Any) -> Any:
            raise ConnectionError("no network")

    assert (
        skyrun.hourly_price(opts, Offline()) == "price unknown (SkyPilot's catalog not reachable)"
    )

    class Listed:
        def list_accelerators(self, **kwargs: Any) -> Any:
            assert kwargs["name_filter"] == "A100" and kwargs["quantity_filter"] == 8
            info = SimpleNamespace
            return {"A100": [info(price=32.77, spot_price=9.8), info(price=29.5, spot_price=11.0)]}

    assert (
        skyrun.hourly_price(opts, Listed())
        == "from $59.00/hour (SkyPilot's catalog; billed by the cloud)"
    )


def test_train_on_sky_without_skypilot_names_the_extra(
    tmp_path: Path,
    fixtures_dir: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setitem(sys.modules, "sky", None)  # not installed (also where it is)
    data = fixtures_dir / "sample" / "chat.jsonl"
    argv = ["train", "-p", "local", "-m", "org/model", "--data", str(data), "--on", "sky"]
    assert run([*argv, "--set", "accelerators=A100:1", "--yes"]) == 3
    err = capsys.readouterr().err
    assert "pip install 'tuneport[sky]'" in err
    assert len(err.strip().splitlines()) == 1
    assert "Traceback" not in err
    assert not (home() / "runs").exists()
    assert open_store().list_jobs() == []


def test_estimate_on_sky_says_the_price_is_unknown(
    tmp_path: Path, fixtures_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tuneport.jobs.quote import estimate as quote_estimate

    class Offline:
        def list_accelerators(self, **kwargs: Any) -> Any:
            raise ConnectionError("no network")

    monkeypatch.setattr(skyrun, "_catalog", lambda: Offline())
    cfg = sky_config().model_copy(update={"data": fixtures_dir / "sample" / "chat.jsonl"})
    estimate = quote_estimate(cfg)
    assert estimate.cost_usd is None
    assert estimate.cost_unknown == skyrun.NO_CATALOG
    assert any("rents A100:1 through SkyPilot" in w for w in estimate.warnings)


def test_unknown_on_value_is_a_config_error() -> None:
    with pytest.raises(ConfigError):
        LocalProvider.options(sky_config(on="moon"))


class OfflineCatalog:
    def list_accelerators(self, **kwargs: Any) -> Any:
        raise ConnectionError("no network")


def test_cli_train_on_sky_then_watch_brings_the_adapter_back(
    tmp_path: Path,
    fixtures_dir: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    fake = FakeSky(tmp_path / "head-node")
    monkeypatch.setitem(sys.modules, "sky", fake)  # `import sky` gets the fake
    monkeypatch.setattr(skyrun, "run_command", rsync_from(fake.remote))
    monkeypatch.setattr(skyrun, "_catalog", lambda: OfflineCatalog())
    monkeypatch.setenv("TUNEPORT_POLL_INTERVAL", "0.01")
    data = fixtures_dir / "sample" / "chat.jsonl"
    argv = ["train", "-p", "local", "-m", "org/model", "--data", str(data), "--on", "sky"]
    argv += ["--set", "accelerators=A100:1", "--yes", "--no-watch"]
    assert run(argv) == 0
    err = capsys.readouterr().err
    assert "estimated cost: unknown (see the warning below)" in err
    rents = "rents A100:1 through SkyPilot (the cheapest cloud SkyPilot finds): "
    assert rents + "price unknown (SkyPilot's catalog not reachable)" in err
    assert run(argv) == 0  # the same command again continues the run: no second cluster
    assert "continuing" in capsys.readouterr().err
    assert fake.names().count("launch") == 1
    (job,) = open_store().list_jobs()

    (fake.remote / runfiles.ADAPTER).mkdir()
    (fake.remote / runfiles.ADAPTER / "adapter_config.json").write_text("{}")
    runfiles.write_status(fake.remote, RunStatus(phase="succeeded", step=2, max_steps=2))
    runfiles.append_event(fake.remote, {"id": "1", "step": 1, "loss": 1.25})
    fake.state = "SUCCEEDED"
    assert run(["jobs", "watch", job.id]) == 0
    out = capsys.readouterr().out
    assert f"tuned model: local:{job.remote_id}" in out
    assert "cost: unknown" in out and "SkyPilot" in out and "no provider charge" not in out
    run_dir = home() / "runs" / job.remote_id
    assert (run_dir / runfiles.ADAPTER / "adapter_config.json").is_file()
    assert fake.names()[-1] == "down"  # adapter fetched: the cluster is torn down


def test_resume_of_a_rented_run_is_refused_not_started_here(tmp_path: Path) -> None:
    fake = FakeSky(tmp_path / "head-node")
    provider = LocalProvider(home=tmp_path / "home")
    provider._sky = fake
    provider._runner = provider._builder = rsync_from(fake.remote)
    cfg = sky_config()
    prepared = provider.prepare(records(), cfg, tmp_path / "prepared", NullProgress())
    job = provider.launch(provider.upload(prepared, cfg, NullProgress()), cfg, "run-r")
    fake.state = "FAILED"
    with pytest.raises(ProviderError, match="SkyPilot cluster tuneport-run-r"):
        provider.resume(job)
    assert not (provider.run_dir(job) / runfiles.PID).exists()


def test_an_unreachable_cluster_is_said_not_guessed(tmp_path: Path) -> None:
    fake = FakeSky(tmp_path / "head-node")
    provider = LocalProvider(home=tmp_path / "home")
    provider._sky = fake
    provider._builder = rsync_from(fake.remote)
    provider._runner = lambda command: 255  # ssh cannot reach the head node
    cfg = sky_config()
    prepared = provider.prepare(records(), cfg, tmp_path / "prepared", NullProgress())
    job = provider.launch(provider.upload(prepared, cfg, NullProgress()), cfg, "run-u")

    def gone(*args: Any, **kwargs: Any) -> Any:
        raise ConnectionError("cluster tuneport-run-u does not exist")

    fake.get = gone  # type: ignore[method-assign]
    fake.tail_logs = gone  # type: ignore[method-assign]
    status = provider.status(job)
    assert status.state is JobState.QUEUED  # what it last knew, not a guess
    assert status.error is not None
    assert status.error.startswith("SkyPilot cluster tuneport-run-u not reachable: logs of")
    assert "status.json not fetched from tuneport-run-u (rsync exit 255)" in status.error


def test_this_tuneport_is_built_into_a_wheel_shipped_with_the_run(tmp_path: Path) -> None:
    """From a source checkout (as here and in CI) the cluster installs this very code."""
    import zipfile

    root = skyrun.source_root()
    assert root is not None and (root / "pyproject.toml").is_file()
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    install = skyrun.ship_tuneport(run_dir, skyrun.run_command, root=root, version="0.1.0")
    (wheel,) = (run_dir / skyrun.DIST).glob("tuneport-*.whl")
    assert install == f'"$HOME/tuneport-run/dist/{wheel.name}[local]"'
    names = zipfile.ZipFile(wheel).namelist()
    assert "tuneport/providers/local/trainer.py" in names
    assert "tuneport/providers/local/sky.py" in names
    # built once per run: a relaunch ships the same wheel
    assert skyrun.ship_tuneport(run_dir, lambda c: 1, root=root) == install
    # installed from a wheel (no checkout): the package index, at this version
    from_index = skyrun.ship_tuneport(run_dir, lambda c: 1, version="0.1.0")
    assert from_index == "'tuneport[local]==0.1.0'"
    with pytest.raises(ConfigError, match="sky_install=SPEC"):
        skyrun.ship_tuneport(tmp_path / "other", lambda c: 1, root=root)


def test_several_rented_machines_pass_the_checks_a_cluster_here_needs(tmp_path: Path) -> None:
    """No main_address on SkyPilot (each node gets the head's address from SkyPilot); the GPU
    count is the rented machines', not this one's."""
    provider = LocalProvider(home=tmp_path / "home")
    provider._sky = FakeSky(tmp_path / "head-node")
    provider.preflight(sky_config(accelerators="H100:8", num_machines=2, processes=16))
    provider.preflight(sky_config(accelerators="H100:8", strategy="fsdp", quantize="none"))
    with pytest.raises(ConfigError, match="num_machines > 1 needs main_address"):
        LocalProvider(home=tmp_path / "home").preflight(
            sky_config(on="here", num_machines=2, processes=2)
        )
    with pytest.raises(ConfigError, match="processes=17 but 2 machine"):
        provider.preflight(sky_config(accelerators="H100:8", num_machines=2, processes=17))
