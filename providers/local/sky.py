"""Renting the GPUs: a local run trained on a SkyPilot cluster (``--on sky``).

The run folder is written as for a run on this machine (config.json with the data paths relative
to the run folder, accelerate.yaml for several processes); :func:`task_config` turns it into a
SkyPilot task (a plain dict, the YAML SkyPilot reads): ``file_mounts`` ships the run folder (data
included) to ``~/tuneport-run`` on every node, ``setup`` installs tuneport, ``run`` calls the same
trainer (through accelerate's launcher with the node's rank when the run has several processes).
:func:`launch` starts it through SkyPilot's Python API on the cluster ``tuneport-<run id>`` (one
cluster per intended run: launching again reuses it); :func:`sync` brings the logs, status,
metrics and, once finished, the adapter back into the local run folder, so ``jobs watch`` reads
it like any local run. SkyPilot is an optional extra (``pip install 'tuneport[sky]'``); this
module imports it only inside the functions that talk to it, and takes the module as an argument
so tests pass a fake.
"""

from __future__ import annotations

import contextlib
import copy
import io
import json
import shlex
import subprocess
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from tuneport.errors import ConfigError, ProviderError, require_extra
from tuneport.providers.local import runfiles
from tuneport.providers.local.distributed import ACCELERATE_MODULE
from tuneport.providers.local.recipe_config import LocalOptions

REMOTE_DIR = "~/tuneport-run"  # the run folder on every node
SKY_FILE = "sky.json"  # RUN_DIR/sky.json: the cluster and SkyPilot job id of a launched run
CLUSTER_PREFIX = "tuneport-"
# what SkyPilot's task YAML must hold for tuneport's task (checked without SkyPilot installed)
REQUIRED_KEYS = ("name", "resources", "num_nodes", "file_mounts", "setup", "run", "envs")
# pulled back while the run trains (small files); the adapter once it succeeded
PULLED = (runfiles.STATUS, runfiles.METRICS)
IDLE_MINUTES = 30
DIST = "dist"  # RUN_DIR/dist: tuneport's wheel, shipped with the run folder
NO_CATALOG = "price unknown (SkyPilot's catalog not reachable)"

Runner = Callable[[Sequence[str]], int]


def require_sky() -> None:
    """A ConfigError naming ``pip install 'tuneport[sky]'`` when SkyPilot is not installed."""
    require_extra("sky", "sky", "renting GPUs through SkyPilot (--on sky)")


def cluster_name(run_id: str) -> str:
    """The cluster of a run: its id in the name, so launching the same run again reuses it."""
    return (CLUSTER_PREFIX + run_id).lower().replace("_", "-")[:63]


def problems(opts: LocalOptions, model: str) -> list[str]:
    """What keeps a run from starting on SkyPilot, one line each."""
    found: list[str] = []
    if not opts.accelerators:
        found.append("--on sky needs accelerators (e.g. --set accelerators=A100:1)")
    else:
        count = accelerator_count(opts.accelerators)
        if count is None:
            found.append(
                f"accelerators={opts.accelerators!r}: write NAME or NAME:COUNT (e.g. H100:8)"
            )
        elif opts.processes > count * opts.num_machines:
            found.append(
                f"processes={opts.processes} but {opts.num_machines} machine(s) × "
                f"{count} GPU(s): one process per GPU"
            )
    if opts.accelerate_config is not None or opts.machine_rank or opts.main_address:
        found.append(
            "--on sky sets the machines itself: drop accelerate_config, machine_rank and "
            "main_address (use num_machines and processes)"
        )
    local_paths = {
        "model": model if Path(model).expanduser().exists() else None,
        "init_adapter": opts.init_adapter,
        "chat_template": opts.chat_template,
        "parent": opts.parent,
    }
    shipped = [k for k, v in local_paths.items() if v]
    if shipped:
        found.append(
            f"--on sky ships the data only, not {', '.join(shipped)}: use a Hugging Face model "
            "id and drop the local files"
        )
    return found


def accelerator_count(spec: str) -> int | None:
    """``H100:8`` -> 8, ``H100`` -> 1; None when the count is not a positive number."""
    name, _, count = spec.partition(":")
    if not name.strip():
        return None
    if not count:
        return 1
    try:
        value = float(count)
    except ValueError:
        return None
    return int(value) if value >= 1 and value == int(value) else None


def task_config(run_id: str, run_dir: Path, opts: LocalOptions, *, install: str) -> dict[str, Any]:
    """The SkyPilot task (the dict of its YAML) that trains the run folder ``run_dir``.

    ``install``: what ``pip install`` gets in the setup, one shell word (:func:`ship_tuneport`).
    """
    resources: dict[str, Any] = {"accelerators": opts.accelerators, "use_spot": opts.use_spot}
    if opts.cloud:
        resources["cloud"] = opts.cloud
    if opts.region:
        resources["region"] = opts.region
    trainer = f"-m tuneport.providers.local.trainer {REMOTE_DIR}"
    if (run_dir / runfiles.ACCELERATE).is_file():
        # accelerate's launcher with this node's rank and the head node's address (SkyPilot's
        # documented SKYPILOT_NODE_RANK / SKYPILOT_NODE_IPS variables)
        launch = (
            f"python -m {ACCELERATE_MODULE} --config_file {REMOTE_DIR}/{runfiles.ACCELERATE} "
            '--machine_rank "$SKYPILOT_NODE_RANK" '
            '--main_process_ip "$(echo "$SKYPILOT_NODE_IPS" | head -n1)" '
            f"{trainer}"
        )
    else:
        launch = f"python {trainer}"
    return {
        "name": cluster_name(run_id),
        "resources": resources,
        "num_nodes": opts.num_machines,
        "file_mounts": {REMOTE_DIR: str(run_dir)},
        "envs": {"PYTHONUNBUFFERED": "1", "TOKENIZERS_PARALLELISM": "false"},
        "setup": f"set -e\npip install {install}\n",
        "run": (f"set -o pipefail\n{launch} 2>&1 | tee -a {REMOTE_DIR}/{runfiles.LOG}\n"),
    }


def source_root() -> Path | None:
    """The project folder of this tuneport (a source checkout, e.g. an editable install), or
    None when it was installed from a wheel."""
    import tuneport.errors

    for folder in Path(tuneport.errors.__file__).resolve().parents:
        pyproject = folder / "pyproject.toml"
        if pyproject.is_file():
            text = pyproject.read_text(encoding="utf-8", errors="replace")
            return folder if 'name = "tuneport"' in text else None
    return None


def ship_tuneport(
    run_dir: Path, runner: Runner, *, root: Path | None = None, version: str = ""
) -> str:
    """What the cluster's setup installs, as one shell word: this tuneport, built into a wheel
    in ``RUN_DIR/dist`` (shipped with the run folder) when it runs from a source checkout, else
    ``tuneport[local]==VERSION`` from the package index."""
    import sys

    if root is None:
        return shlex.quote(f"tuneport[local]=={version}")
    dist = run_dir / DIST
    wheels = sorted(dist.glob("tuneport-*.whl"))
    if not wheels:
        command = [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation"]
        code = runner([*command, "-q", "-w", str(dist), str(root)])
        wheels = sorted(dist.glob("tuneport-*.whl"))
        if code or not wheels:
            raise ConfigError(
                f"could not build tuneport's wheel from {root} to ship to the cluster "
                f"(pip wheel exit {code})",
                hint="set sky_install=SPEC (what the cluster pip-installs, e.g. a git URL)",
            )
    # double quotes: the shell expands $HOME, pip reads the [local] extra
    return f'"$HOME/{REMOTE_DIR.removeprefix("~/")}/{DIST}/{wheels[-1].name}[local]"'


def schema_problems(task: dict[str, Any]) -> list[str]:
    """What tuneport's task lacks of what SkyPilot requires (checked without SkyPilot)."""
    found = [f"missing {key}" for key in REQUIRED_KEYS if key not in task]
    resources = task.get("resources")
    if not isinstance(resources, dict) or not resources.get("accelerators"):
        found.append("resources.accelerators missing")
    if not isinstance(task.get("num_nodes"), int) or task["num_nodes"] < 1:
        found.append("num_nodes must be a positive integer")
    mounts = task.get("file_mounts")
    if not isinstance(mounts, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in mounts.items()
    ):
        found.append("file_mounts must map remote paths to local paths")
    for key in ("setup", "run"):
        if not isinstance(task.get(key), str) or not task[key].strip():
            found.append(f"{key} must be a shell script")
    envs = task.get("envs")
    if not isinstance(envs, dict) or not all(isinstance(v, str) for v in envs.values()):
        found.append("envs must map names to strings")
    return found


def hourly_price(opts: LocalOptions, catalog: Any = None) -> str:
    """The cheapest hourly price SkyPilot's catalog lists for the accelerators, or the
    reason there is none (:data:`NO_CATALOG` when the catalog cannot be read)."""
    name, _, _ = (opts.accelerators or "").partition(":")
    count = accelerator_count(opts.accelerators or "") or 1
    try:
        if catalog is None:
            catalog = _catalog()
        # SkyPilot prints its catalog download (and its failure) on stdout/stderr
        with (
            contextlib.redirect_stdout(io.StringIO()),
            contextlib.redirect_stderr(io.StringIO()),
        ):
            found = catalog.list_accelerators(
                gpus_only=True,
                name_filter=name,
                quantity_filter=count,
                clouds=opts.cloud,
                case_sensitive=False,
            )
    except ImportError:
        return "price unknown (SkyPilot is not installed: pip install 'tuneport[sky]')"
    except Exception:  # offline, no credentials, a catalog download refused
        return NO_CATALOG
    prices = [
        (info.spot_price if opts.use_spot else info.price) * opts.num_machines
        for infos in found.values()
        for info in infos
        if (info.spot_price if opts.use_spot else info.price) not in (None, 0)
        and info.price == info.price  # NaN: no price listed
    ]
    if not prices:
        return f"price unknown (SkyPilot's catalog lists no price for {opts.accelerators})"
    where = f" on {opts.cloud}" if opts.cloud else ""
    return f"from ${min(prices):.2f}/hour{where} (SkyPilot's catalog; billed by the cloud)"


def _catalog() -> Any:
    import sky.catalog

    return sky.catalog


def launch(task: dict[str, Any], run_dir: Path, sky: Any) -> dict[str, Any]:
    """Launch ``task`` on its cluster through SkyPilot's Python API; write ``RUN_DIR/sky.json``.

    Idempotent on the run: a run folder that already has ``sky.json`` is not launched again.
    """
    record_path = run_dir / SKY_FILE
    if record_path.is_file():
        recorded: dict[str, Any] = json.loads(record_path.read_text())
        return recorded
    problems_found = schema_problems(task)
    if problems_found:
        raise ConfigError("SkyPilot task: " + "; ".join(problems_found), hint="a tuneport bug")
    cluster = task["name"]
    try:
        request = sky.launch(
            sky.Task.from_yaml_config(copy.deepcopy(task)),  # it pops the keys it reads
            cluster_name=cluster,
            # torn down once idle this long after the run (time for `jobs watch` to fetch the
            # adapter, which tears it down at once); never left billing
            idle_minutes_to_autostop=IDLE_MINUTES,
            down=True,
        )
        job_id, _handle = sky.stream_and_get(request)
    except Exception as exc:  # SkyPilot's own errors: no credentials, no capacity, ...
        raise ProviderError(
            f"SkyPilot could not launch cluster {cluster}: {exc}",
            hint="check `sky check` and the accelerators/cloud settings, then run the same "
            "command again (it launches this run, not a second one)",
        ) from None
    record = {"cluster": cluster, "job_id": job_id}
    runfiles.write_json_atomic(record_path, record)
    return record


def read_record(run_dir: Path) -> dict[str, Any] | None:
    path = run_dir / SKY_FILE
    if not path.is_file():
        return None
    data: dict[str, Any] = json.loads(path.read_text())
    return data


def job_state(record: dict[str, Any], sky: Any) -> str | None:
    """SkyPilot's status of the run's job (e.g. ``RUNNING``, ``FAILED``), None if unknown."""
    try:
        states = sky.get(sky.job_status(record["cluster"], [record["job_id"]]))
    except Exception:  # the cluster is gone or unreachable: status says so
        return None
    state = states.get(record["job_id"])
    return None if state is None else str(getattr(state, "value", state))


def sync(run_dir: Path, record: dict[str, Any], sky: Any, runner: Runner) -> list[str]:
    """Bring the run's log, status and metrics (and, once succeeded, the adapter) back from
    the head node; the notes say what could not be fetched."""
    notes: list[str] = []
    cluster = record["cluster"]
    log = io.StringIO()
    try:
        sky.tail_logs(cluster, record["job_id"], follow=False, output_stream=log)
        (run_dir / runfiles.LOG).write_text(log.getvalue(), encoding="utf-8")
    except Exception as exc:
        notes.append(f"logs of {cluster} not fetched: {exc}")
    for name in PULLED:
        code = runner(["rsync", "-a", f"{cluster}:{REMOTE_DIR}/{name}", str(run_dir / name)])
        if code:
            notes.append(f"{name} not fetched from {cluster} (rsync exit {code})")
    st = runfiles.read_status(run_dir)
    if st is not None and st.phase == "succeeded" and not (run_dir / runfiles.ADAPTER).is_dir():
        tmp = run_dir / ".adapter.tmp"
        code = runner(["rsync", "-a", f"{cluster}:{REMOTE_DIR}/{runfiles.ADAPTER}/", f"{tmp}/"])
        if code:
            notes.append(f"adapter not fetched from {cluster} (rsync exit {code})")
        else:
            tmp.rename(run_dir / runfiles.ADAPTER)
            # the adapter is here: the cluster has nothing left to do, stop paying for it
            try:
                cancel(record, sky)
            except ProviderError as exc:
                notes.append(exc.message)
    return notes


def run_command(command: Sequence[str]) -> int:
    """The default runner: the command's exit status (rsync over SkyPilot's ssh config)."""
    with contextlib.suppress(FileNotFoundError):
        return subprocess.run(list(command), capture_output=True, check=False).returncode
    return 127


def cancel(record: dict[str, Any], sky: Any) -> None:
    """Tear the cluster down (stops the training and the bill)."""
    try:
        sky.stream_and_get(sky.down(record["cluster"]))
    except Exception as exc:
        raise ProviderError(
            f"SkyPilot could not tear down {record['cluster']}: {exc}",
            hint=f"run `sky down {record['cluster']}` (it may still be billed)",
        ) from None


# SkyPilot's job states (sky.skylet.job_lib.JobStatus values)
ACTIVE_STATES = frozenset({"INIT", "PENDING", "SETTING_UP", "RUNNING"})
ENDED_STATES = frozenset({"FAILED", "FAILED_SETUP", "FAILED_DRIVER", "CANCELLED"})
