"""`tuneport port`: a tuned model moved from a (fake) OpenAI to another provider, with its data
fetched byte for byte, the source model's answers recorded, one job on the target and a report
with both models' columns; every step resumable after a crash without a second job or a second
recording of an answer already recorded."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.fakes.gcs_emulator import gcs_emulator, gcs_env  # noqa: F401
from tests.fakes.openai_server import FakeOpenAI, serving_openai
from tuneport.cli.main import run
from tuneport.errors import EXIT_CONFIG, EXIT_PROVIDER
from tuneport.jobs.port import (
    bootstrap_interval,
    list_ports,
    new_port,
    ports_dir,
    run_port,
    verdict_of,
)
from tuneport.jobs.store import open_store
from tuneport.providers import registry
from tuneport.providers.base import ReturnsData

KEY = "sk-port-test"
TARGET = "openai:gpt-4.1-mini"
GOLDEN = 4


class Crash(Exception):
    """Stands for a kill at a step boundary."""


@pytest.fixture
def fake(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeOpenAI]:
    with serving_openai(monkeypatch, KEY, poll_now=True) as server:
        yield server


@pytest.fixture
def data(fixtures_dir: Path) -> bytes:
    return (fixtures_dir / "sample" / "chat.jsonl").read_bytes()


def _chats(fake: FakeOpenAI, model: str) -> int:
    return sum(1 for c in fake.chats if c["model"] == model)


def _new_jobs(fake: FakeOpenAI, source_id: str) -> list[dict[str, Any]]:
    return [j for j in fake.jobs.values() if j["id"] != source_id]


def _folder() -> Path:
    (folder,) = [p for p in ports_dir().iterdir() if p.is_dir()]
    return folder


def test_openai_gives_a_job_back_through_the_capability(fake: FakeOpenAI, data: bytes) -> None:
    job = fake.seed_past_job(data, data[:300])
    provider = registry.get("openai", {})
    assert isinstance(provider, ReturnsData)
    by_id = provider.source_job(job["id"])
    by_model = provider.source_job(job["fine_tuned_model"])
    assert by_id == by_model
    assert by_id.method == "sft" and by_id.model == "gpt-4o-mini-2024-07-18"
    assert by_id.hyperparameters == {
        "epochs": 3,
        "batch_size": 1,
        "learning_rate_multiplier": 1.8,
    }
    assert by_id.validation == job["validation_file"]


def test_port_end_to_end_through_the_cli(
    fake: FakeOpenAI, data: bytes, capsys: pytest.CaptureFixture[str]
) -> None:
    source = fake.seed_past_job(data)
    tuned = source["fine_tuned_model"]
    code = run(["port", tuned, "--to", TARGET, "--golden", str(GOLDEN), "--yes"])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    # the costs of the paid steps were shown before they ran
    assert "record the source model's answers (4 prompts): ≈$" in captured.err
    assert "train openai gpt-4.1-mini: ≈$" in captured.err
    folder = _folder()
    # the data fetched is the source file, byte for byte, and trained as it is
    assert (folder / "fetch" / "training.jsonl").read_bytes() == data
    (job,) = _new_jobs(fake, source["id"])
    uploaded = fake.file_bytes[job["training_file"]].decode().splitlines()
    assert [json.loads(r) for r in uploaded] == [json.loads(r) for r in data.splitlines()]
    assert job["method"]["supervised"]["hyperparameters"] == {
        "n_epochs": 3,
        "batch_size": 1,
        "learning_rate_multiplier": 1.8,
    }
    # the golden answers came from the source tuned model, once per prompt
    assert _chats(fake, tuned) == GOLDEN
    answers = [json.loads(line) for line in (folder / "golden" / "answers.jsonl").open()]
    assert all(a["answer"]["text"].startswith(f"echo[{tuned}]") for a in answers)
    report = json.loads((folder / "report.json").read_text())
    assert {"targets", "cases", "answers", "summary", "verdict"} <= report.keys()
    specs = [t["spec"] for t in report["targets"]]
    assert specs == [f"source {tuned}", f"target {job['fine_tuned_model']}"]
    assert all(len(row) == 2 for row in report["answers"])
    assert report["costs"]["source_training_usd"] is not None
    assert (folder / "report.md").read_text().count("## Verdict") == 1
    header = (folder / "report.csv").read_text().splitlines()[0]
    assert f"source {tuned} answer" in header and "target ft:gpt-4.1-mini" in header
    # the dashboard lists it as a port report with both columns
    from tuneport.cli.ui.views import find_reports

    (shown_report,) = find_reports([ports_dir()])
    assert shown_report.kind == "port" and len(shown_report.rows) == 2
    # list / show
    assert run(["port", "list", "--json"]) == 0
    (listed,) = json.loads(capsys.readouterr().out)
    assert listed["steps"] == {
        "fetch": "done",
        "golden": "done",
        "plan": "done",
        "train": "launched",
        "compare": "done",
    }
    assert run(["port", "show", folder.name, "--json"]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert shown["report"]["verdict"] == report["verdict"]
    # the same command again: nothing paid is repeated
    assert run(["port", tuned, "--to", TARGET, "--golden", str(GOLDEN), "--yes"]) == 0
    assert len(_new_jobs(fake, source["id"])) == 1
    assert _chats(fake, tuned) == GOLDEN


@pytest.mark.parametrize("step", ["fetch", "plan", "golden", "train", "compare"])
def test_a_crash_after_each_step_then_a_rerun_finishes_without_repeating_paid_work(
    fake: FakeOpenAI, data: bytes, step: str
) -> None:
    source = fake.seed_past_job(data)
    tuned = source["fine_tuned_model"]

    def crash(name: str) -> None:
        if name == step:
            raise Crash(name)

    spec = new_port(source["id"], TARGET, source_provider="openai", golden=GOLDEN)
    with pytest.raises(Crash):
        run_port(spec, after_step=crash)
    state = run_port(new_port(source["id"], TARGET, source_provider="openai", golden=GOLDEN))
    assert len(list_ports()) == 1
    assert state.steps["compare"] == "done"
    (job,) = _new_jobs(fake, source["id"])
    assert _chats(fake, tuned) == GOLDEN
    assert _chats(fake, job["fine_tuned_model"]) == GOLDEN


def test_a_crash_mid_recording_asks_only_the_prompts_not_yet_recorded(
    fake: FakeOpenAI, data: bytes
) -> None:
    source = fake.seed_past_job(data)
    tuned = source["fine_tuned_model"]
    provider = registry.get("openai", {})
    real_chat = provider.chat
    calls = {"n": 0}

    def dying_chat(*args: Any, **kwargs: Any) -> Any:
        calls["n"] += 1
        if calls["n"] == 3:
            raise Crash("killed mid-recording")
        return real_chat(*args, **kwargs)

    provider.chat = dying_chat  # type: ignore[method-assign]
    spec = new_port(source["id"], TARGET, source_provider="openai", golden=GOLDEN, concurrency=1)
    with pytest.raises(Crash):
        run_port(spec, providers={"source": provider})
    assert _chats(fake, tuned) == 2
    assert not _new_jobs(fake, source["id"])  # training waits for the golden answers
    run_port(spec)
    assert _chats(fake, tuned) == GOLDEN  # two recorded before, two now


def test_a_kill_between_the_launch_and_its_note_finds_the_job_again(
    fake: FakeOpenAI, data: bytes
) -> None:
    source = fake.seed_past_job(data)
    spec = new_port(source["id"], TARGET, source_provider="openai", golden=GOLDEN)

    def crash(name: str) -> None:
        if name == "train":
            raise Crash(name)

    with pytest.raises(Crash):
        run_port(spec, after_step=crash)
    (_folder() / "train.json").unlink()  # as if killed before the port wrote it down
    run_port(spec)
    assert len(_new_jobs(fake, source["id"])) == 1  # the launch key found the first job


def test_max_cost_refuses_before_anything_paid(
    fake: FakeOpenAI, data: bytes, capsys: pytest.CaptureFixture[str]
) -> None:
    source = fake.seed_past_job(data)
    code = run(["port", source["id"], "--from", "openai", "--to", TARGET, "--max-cost", "0.001"])
    err = capsys.readouterr().err
    assert code == 5, err
    assert "over --max-cost" in err
    assert not fake.chats and not _new_jobs(fake, source["id"])


def test_without_yes_a_non_interactive_port_asks_nothing_and_spends_nothing(
    fake: FakeOpenAI, data: bytes, capsys: pytest.CaptureFixture[str]
) -> None:
    source = fake.seed_past_job(data)
    code = run(["port", source["id"], "--from", "openai", "--to", TARGET])
    err = capsys.readouterr().err
    assert code == EXIT_CONFIG and "pass --yes" in err
    assert not fake.chats and not _new_jobs(fake, source["id"])


def test_validation_file_is_the_golden_set(fake: FakeOpenAI, data: bytes) -> None:
    lines = data.splitlines(keepends=True)
    source = fake.seed_past_job(b"".join(lines[:20]), b"".join(lines[20:]))
    run_port(new_port(source["id"], TARGET, source_provider="openai", golden=50))
    folder = _folder()
    assert (folder / "fetch" / "validation.jsonl").read_bytes() == b"".join(lines[20:])
    report = json.loads((folder / "report.json").read_text())
    assert len(report["cases"]) == len(lines) - 20
    assert not any("fixed split" in c for c in report["caveats"])


@pytest.mark.parametrize(
    ("argv", "code", "words"),
    [
        (["ftjob-nope", "--from", "openai"], EXIT_PROVIDER, "holds no fine-tuning job"),
        (["tp-00000000"], EXIT_PROVIDER, "no job 'tp-00000000' in the job store"),
        (["ftjob-x"], EXIT_CONFIG, "cannot tell which provider holds"),
        (["ftjob-x", "--from", "nosuch"], EXIT_CONFIG, "unknown provider"),
    ],
)
def test_bad_sources_get_one_clear_line(
    fake: FakeOpenAI,
    argv: list[str],
    code: int,
    words: str,
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert run(["port", *argv, "--to", TARGET, "--yes"]) == code
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: ") and words in err[0], err
    assert "Traceback" not in "\n".join(err)


def test_a_job_whose_files_were_deleted_gets_one_clear_line(
    fake: FakeOpenAI, data: bytes, capsys: pytest.CaptureFixture[str]
) -> None:
    source = fake.seed_past_job(data)
    del fake.file_bytes[source["training_file"]]
    code = run(["port", source["id"], "--from", "openai", "--to", TARGET, "--yes"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == EXIT_PROVIDER
    assert err[-1].startswith("error: ") and "no longer holds file" in err[-1]
    assert not (_folder() / "fetch" / "source.json").exists()


def test_a_dpo_source_to_a_target_without_dpo_names_the_targets_that_have_it(
    fake: FakeOpenAI, capsys: pytest.CaptureFixture[str]
) -> None:
    rows = [
        {
            "input": {"messages": [{"role": "user", "content": f"q{i}"}]},
            "preferred_output": [{"role": "assistant", "content": f"good {i}"}],
            "non_preferred_output": [{"role": "assistant", "content": f"bad {i}"}],
        }
        for i in range(12)
    ]
    body = "".join(json.dumps(r) + "\n" for r in rows).encode()
    source = fake.seed_past_job(body, model="gpt-4.1-mini", method="dpo")
    code = run(["port", source["id"], "--from", "openai", "--to", "openai:gpt-4o-mini", "--yes"])
    err = capsys.readouterr().err
    assert code == EXIT_CONFIG
    assert "does not tune DPO" in err and "openai:gpt-4.1-mini" in err


def test_the_verdict_follows_the_interval() -> None:
    same = [0.0] * 30
    assert verdict_of(same, bootstrap_interval(same)).startswith("as good")
    worse = [-0.5] * 30
    assert verdict_of(worse, bootstrap_interval(worse)).startswith("worse")
    mixed = [0.9, -0.9] * 3
    assert verdict_of(mixed, bootstrap_interval(mixed)).startswith("inconclusive")


def test_the_job_store_source_is_ported_by_its_tuneport_id(
    fake: FakeOpenAI, fixtures_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = fixtures_dir / "sample" / "chat.jsonl"
    argv = ["train", "-p", "openai", "--data", str(data), "-m", "gpt-4o-mini", "--yes"]
    assert run(argv) == 0
    (record,) = open_store().list_jobs(5)
    capsys.readouterr()
    assert run(["port", record.id, "--to", TARGET, "--golden", "3", "--yes"]) == 0
    uploaded = fake.file_bytes[fake.jobs[str(record.remote_id)]["training_file"]]
    assert (_folder() / "fetch" / "training.jsonl").read_bytes() == uploaded


@pytest.mark.slow
def test_port_to_a_local_tiny_model(
    fake: FakeOpenAI,
    data: bytes,
    tmp_path_factory: pytest.TempPathFactory,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    from tests.fakes.tiny_model import build_tiny_model
    from tuneport.data.records import read_records
    from tuneport.paths import home

    monkeypatch.setenv("TUNEPORT_POLL_INTERVAL", "0.3")
    tiny = build_tiny_model(tmp_path_factory.mktemp("tiny") / "model")
    source = fake.seed_past_job(data)
    quick = ["max_steps=2", "logging_steps=1", "gradient_checkpointing=false", "max_length=256"]
    argv = ["port", source["fine_tuned_model"], "--to", f"local:{tiny}", "--golden", "3"]
    argv += ["--max-tokens", "8", *(f"--set={q}" for q in quick), "--yes"]
    code = run(argv)
    captured = capsys.readouterr()
    assert code == 0, captured.err
    assert "no money figure (own hardware)" in captured.err
    (record,) = open_store().list_jobs(5)
    assert record.provider == "local" and record.state.value == "succeeded"
    assert record.config["epochs"] == 3 and record.config["learning_rate_multiplier"] == 1.8
    # what the local trainer got are the source rows, converted
    from datasets import load_from_disk

    trained = load_from_disk(str(home() / "runs" / record.run_id / "data"))
    source_rows = [r for r in read_records(_folder() / "fetch" / "training.jsonl") if r.record]
    assert len(trained) == len(source_rows)
    report = json.loads((_folder() / "report.json").read_text())
    assert [t["provider"] for t in report["targets"]] == ["openai", "local"]
    assert all(row[1]["error"] is None for row in report["answers"])
    assert _chats(fake, source["fine_tuned_model"]) == 3


# --- inventory: tuned models at the provider and the day they stop working ---------------------


def test_remote_list_shows_when_each_tuned_model_stops(
    fake: FakeOpenAI, data: bytes, capsys: pytest.CaptureFixture[str]
) -> None:
    older = fake.seed_past_job(data)  # launched elsewhere: tuneport never saw it
    newer = fake.seed_past_job(data, model="gpt-4.1-mini-2025-04-14")
    fake.shutdown_dates[newer["fine_tuned_model"]] = "2026-12-31"  # announced by the provider
    nano = fake.seed_past_job(data, model="gpt-4.1-nano-2025-04-14")  # tuning ended; no date
    assert run(["jobs", "list", "--remote", "-p", "openai", "--json"]) == 0
    rows = {r["remote_id"]: r for r in json.loads(capsys.readouterr().out)}
    assert rows[older["id"]]["stops"] == "2027-01-14"
    assert rows[older["id"]]["model"] == "gpt-4o-mini-2024-07-18"
    assert "deprecations" in rows[older["id"]]["stops_source"]
    assert rows[newer["id"]]["stops"] == "2026-12-31"
    assert rows[newer["id"]]["stops_source"] == "openai model object"
    assert rows[nano["id"]]["stops"] is None
    assert run(["jobs", "list", "--remote", "-p", "openai"]) == 0
    out = capsys.readouterr().out
    assert "2027-01-14" in out and "stop dates: OpenAI deprecations page" in out


def test_doctor_warns_about_tuned_models_that_stop_within_60_days(
    fake: FakeOpenAI, fixtures_dir: Path
) -> None:
    from datetime import date

    from tuneport.jobs.doctor import diagnose

    data = fixtures_dir / "sample" / "chat.jsonl"
    argv = ["train", "-p", "openai", "--data", str(data), "-m", "gpt-4o-mini", "--yes"]
    assert run(argv) == 0
    (record,) = open_store().list_jobs(5)
    (health,) = diagnose(["openai"], today=date(2026, 12, 6))
    (check,) = [c for c in health.checks if c.name == "tuned models"]
    assert check.status == "warn"
    assert f"{record.tuned_model} (job {record.id}) stops working on 2027-01-14" in check.detail
    assert check.fix is not None and f"tuneport port {record.id}" in check.fix
    (health,) = diagnose(["openai"], today=date(2026, 10, 1))  # 105 days before: quiet
    assert not [c for c in health.checks if c.name == "tuned models"]


def test_the_calendar_takes_the_longest_prefix() -> None:
    from tuneport.pricing.calendar import dates_for

    nano = dates_for("openai", "ft:gpt-4.1-nano-2025-04-14:org::abc")
    assert nano is not None and nano.prefix == "gpt-4.1-nano" and nano.shutdown is None
    assert str(nano.tuning_end) == "2026-10-23" and str(nano.new_jobs_end) == "2027-01-06"
    mini = dates_for("openai", "gpt-4o-mini-2024-07-18")
    assert mini is not None and mini.prefix == "gpt-4o-mini" and str(mini.shutdown) == "2027-01-14"
    assert dates_for("vertex", "gemini-2.5-flash") is None


def test_port_from_openai_to_together(
    fake: FakeOpenAI, data: bytes, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tests.fakes.together_server import FakeTogether

    with FakeTogether(api_key="tg-port-key") as together:
        together.advance_on_get = True
        together.serverless_lora = True
        monkeypatch.setenv("TOGETHER_API_KEY", "tg-port-key")
        monkeypatch.setenv("TOGETHER_BASE_URL", together.base_url)
        source = fake.seed_past_job(data)
        argv = ["port", source["id"], "--from", "openai", "--to", "together", "--golden", "3"]
        assert run([*argv, "--yes"]) == 0
        assert len(together.jobs) == 1
        (job,) = together.jobs.values()
        sent = together.file_bytes[job.data["training_file"]].decode().splitlines()
        converted = [json.loads(r) for r in sent]
        assert len(converted) == len(data.splitlines())
        report = json.loads((_folder() / "report.json").read_text())
        assert [t["provider"] for t in report["targets"]] == ["openai", "together"]
        assert all(row[1]["error"] is None for row in report["answers"]), report["answers"]
        assert run([*argv, "--yes"]) == 0  # again: nothing new
        assert len(together.jobs) == 1


@pytest.mark.slow
def test_port_from_a_local_run_to_openai(
    fake: FakeOpenAI,
    fixtures_dir: Path,
    tmp_path_factory: pytest.TempPathFactory,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    from tests.fakes.tiny_model import build_tiny_model
    from tuneport.data.records import load_records

    monkeypatch.setenv("TUNEPORT_POLL_INTERVAL", "0.3")
    tiny = build_tiny_model(tmp_path_factory.mktemp("tiny") / "model")
    data = fixtures_dir / "sample" / "chat.jsonl"
    quick = ["max_steps=2", "logging_steps=1", "gradient_checkpointing=false", "max_length=256"]
    argv = ["train", "-p", "local", "-m", str(tiny), "--data", str(data), "--epochs", "2"]
    assert run([*argv, *(f"--set={q}" for q in quick), "--yes"]) == 0
    (local_job,) = open_store().list_jobs(5)
    capsys.readouterr()
    argv = ["port", local_job.id, "--to", TARGET, "--golden", "3", "--max-tokens", "8", "--yes"]
    assert run(argv) == 0, capsys.readouterr().err

    # the run's rows came back whole (canonical JSONL), and went to OpenAI converted
    def plain(records: list[Any]) -> list[Any]:  # the local format writes "" for no content
        dumped = [r.model_dump(mode="json") for r in records]
        for row in dumped:
            for message in row.get("messages", []):
                message["content"] = message["content"] or ""
        return dumped

    fetched = load_records(_folder() / "fetch" / "training.jsonl")
    assert plain(fetched) == plain(load_records(data))
    (job,) = fake.jobs.values()
    assert job["method"]["supervised"]["hyperparameters"]["n_epochs"] == 2
    report = json.loads((_folder() / "report.json").read_text())
    assert [t["provider"] for t in report["targets"]] == ["local", "openai"]
    assert report["targets"][0]["model"] == local_job.tuned_model


def test_port_from_together_to_openai(
    fake: FakeOpenAI, fixtures_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tests.fakes.together_server import FakeTogether

    with FakeTogether(api_key="tg-port-key") as together:
        together.advance_on_get = True
        together.serverless_lora = True
        monkeypatch.setenv("TOGETHER_API_KEY", "tg-port-key")
        monkeypatch.setenv("TOGETHER_BASE_URL", together.base_url)
        data = fixtures_dir / "sample" / "chat.jsonl"
        argv = ["train", "-p", "together", "--data", str(data), "--epochs", "2", "--yes"]
        argv += ["-m", "meta-llama/Meta-Llama-3.1-8B-Instruct-Reference"]
        assert run(argv) == 0
        (source,) = together.jobs.values()
        tuned = source.data["model_output_name"]
        uploaded = together.file_bytes[source.data["training_file"]]
        argv = ["port", tuned, "--from", "together", "--to", TARGET, "--golden", "3", "--yes"]
        assert run(argv) == 0
        assert (_folder() / "fetch" / "training.jsonl").read_bytes() == uploaded
        (job,) = fake.jobs.values()
        assert job["method"]["supervised"]["hyperparameters"]["n_epochs"] == 2
        report = json.loads((_folder() / "report.json").read_text())
        assert [t["provider"] for t in report["targets"]] == ["together", "openai"]
        assert sum(1 for c in together.chats if c["model"] == tuned) == 3


@pytest.mark.usefixtures("gcs_env")
def test_port_from_openai_to_vertex(
    fake: FakeOpenAI,
    data: bytes,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    from tests.fakes.vertex_server import running_fake_vertex

    with running_fake_vertex() as vertex:
        monkeypatch.setenv("GOOGLE_VERTEX_BASE_URL", vertex.url)
        monkeypatch.setenv("TUNEPORT_VERTEX_ACCESS_TOKEN", "ya29.port-test-token")
        source = fake.seed_past_job(data)
        argv = ["port", source["id"], "--from", "openai", "--to", "vertex:gemini-2.5-flash"]
        argv += ["--golden", "3", "--set", "project=p", "--set", "location=us-central1"]
        argv += ["--set", "bucket=tp-bucket", "--yes"]
        code = run(argv)
        assert code == 0, capsys.readouterr().err
        assert len(vertex.jobs) == 1
        report = json.loads((_folder() / "report.json").read_text())
        assert [t["provider"] for t in report["targets"]] == ["openai", "vertex"]
        assert all(row[1]["error"] is None for row in report["answers"]), report["answers"]
        assert run([*argv]) == 0
        assert len(vertex.jobs) == 1


# --- a real `tuneport port` process killed with SIGKILL ----------------------------------------

KILL_MOMENTS = {
    # (path regex, requests of that kind let through first)
    "the 3rd source answer carried out, its reply not yet read": (r"^/chat/completions$", 2),
    "the target job created, its reply not yet read": (r"^/fine_tuning/jobs$", 0),
    "the 2nd target answer carried out, its reply not yet read": (
        r"^/chat/completions$",
        GOLDEN + 1,
    ),
}


@pytest.mark.parametrize("moment", list(KILL_MOMENTS))
def test_kill_9_during_a_port_then_the_same_command(
    fake: FakeOpenAI, data: bytes, moment: str, capsys: pytest.CaptureFixture[str]
) -> None:
    import os
    import signal
    import subprocess
    import sys

    from tests.fakes.faults import Fault

    source = fake.seed_past_job(data)
    tuned = source["fine_tuned_model"]
    argv = ["port", tuned, "--to", TARGET, "--golden", str(GOLDEN), "--concurrency", "1"]
    argv.append("--yes")
    pattern, skip = KILL_MOMENTS[moment]
    held = fake.faults.add(Fault("POST", pattern, "hold", skip=skip, after=True))
    code = "import sys; from tuneport.cli.main import main; sys.argv[0] = 'tuneport'; main()"
    proc = subprocess.Popen(
        [sys.executable, "-c", code, *argv],
        env={**os.environ},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        assert held.reached.wait(120), proc.stderr.read().decode() if proc.stderr else ""
        proc.send_signal(signal.SIGKILL)
        assert proc.wait(30) == -signal.SIGKILL
    finally:
        held.release.set()
        if proc.poll() is None:
            proc.kill()
    asked_before = _chats(fake, tuned)
    assert run(argv) == 0, capsys.readouterr().err
    (job,) = _new_jobs(fake, source["id"])  # one job, whatever the moment
    # only the answer whose reply was lost is asked again
    lost = 1 if moment.startswith("the 3rd source") else 0
    assert _chats(fake, tuned) == GOLDEN + lost
    assert asked_before == (3 if lost else GOLDEN)
    assert _chats(fake, job["fine_tuned_model"]) == GOLDEN + (1 if "target answer" in moment else 0)
    report = json.loads((_folder() / "report.json").read_text())
    assert len(report["answers"]) == GOLDEN


# --- Fireworks and Vertex as sources -----------------------------------------------------------

FW_KEY = "fw-port-key"
FW_MODEL = "accounts/fireworks/models/llama-v3p1-8b-instruct"


@pytest.fixture
def fireworks(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    from tests.fakes.fireworks_server import FakeFireworks

    with FakeFireworks(api_key=FW_KEY, account_id="acme") as server:
        server.advance_on_get = True
        monkeypatch.setenv("FIREWORKS_API_KEY", FW_KEY)
        monkeypatch.setenv("FIREWORKS_ACCOUNT_ID", "acme")
        monkeypatch.setenv("FIREWORKS_BASE_URL", server.base_url)
        yield server


def _fireworks_trained(fireworks: Any, data: Path, *extra: str) -> Any:
    """A finished Fireworks job trained through tuneport, its tuned model served (loaded)."""
    argv = ["train", "-p", "fireworks", "-m", FW_MODEL, "--data", str(data), "--epochs", "2"]
    assert run([*argv, *extra, "--yes"]) == 0
    (job,) = fireworks.jobs.values()
    tuned = job.data["_output"]
    fireworks.deployed_models[f"{tuned}-loaded"] = {"model": tuned, "state": "DEPLOYED"}
    return job


def test_fireworks_gives_a_job_back_through_the_capability(
    fireworks: Any, fixtures_dir: Path
) -> None:
    data = fixtures_dir / "sample" / "chat.jsonl"
    job = _fireworks_trained(
        fireworks,
        data,
        *("--validation", str(data), "--learning-rate-multiplier", "2", "--set", "lora_rank=16"),
    )
    provider = registry.get("fireworks", {})
    assert isinstance(provider, ReturnsData)
    by_id = provider.source_job(job.data["name"])
    by_model = provider.source_job(job.data["_output"])
    assert by_id == by_model
    assert by_id.method == "sft" and by_id.model == FW_MODEL
    assert by_id.tuned_model == job.data["_output"]
    assert by_id.hyperparameters == {
        "epochs": 2,
        "learning_rate_multiplier": 2.0,
        "batch_size": None,
        "lora_rank": 16,
        "beta": None,
    }
    assert by_id.training == job.data["dataset"]
    assert by_id.validation == job.data["evaluationDataset"]


def test_port_from_fireworks_to_openai(
    fake: FakeOpenAI, fireworks: Any, fixtures_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = fixtures_dir / "sample" / "chat.jsonl"
    source = _fireworks_trained(fireworks, data)
    tuned = source.data["_output"]
    (uploaded,) = fireworks.dataset_files[source.data["dataset"]].values()
    argv = ["port", tuned, "--from", "fireworks", "--to", TARGET, "--golden", "3", "--yes"]
    assert run(argv) == 0, capsys.readouterr().err
    assert (_folder() / "fetch" / "training.jsonl").read_bytes() == uploaded
    (job,) = fake.jobs.values()
    assert job["method"]["supervised"]["hyperparameters"]["n_epochs"] == 2
    sent = fake.file_bytes[job["training_file"]].decode().splitlines()
    assert [json.loads(r) for r in sent] == [json.loads(r) for r in uploaded.splitlines()]
    report = json.loads((_folder() / "report.json").read_text())
    assert [t["provider"] for t in report["targets"]] == ["fireworks", "openai"]
    assert sum(1 for c in fireworks.chats if c["model"] == tuned) == 3


def test_a_fireworks_job_whose_dataset_was_deleted_gets_one_clear_line(
    fake: FakeOpenAI, fireworks: Any, fixtures_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    source = _fireworks_trained(fireworks, fixtures_dir / "sample" / "chat.jsonl")
    del fireworks.datasets[source.data["dataset"]]
    argv = ["port", source.data["name"], "--from", "fireworks", "--to", TARGET, "--yes"]
    capsys.readouterr()
    assert run(argv) == EXIT_PROVIDER
    err = capsys.readouterr().err.strip().splitlines()  # the port's banner, then the error
    assert err[-1].startswith("error: ") and "Traceback" not in "\n".join(err), err
    assert "no longer holds dataset" in err[-1] and source.data["dataset"] in err[-1]
    assert not (_folder() / "fetch" / "source.json").exists()
    assert not fake.jobs


VERTEX_ARGS = ["--set", "project=p", "--set", "location=us-central1"]


@pytest.fixture
def vertex(monkeypatch: pytest.MonkeyPatch, request: pytest.FixtureRequest) -> Iterator[Any]:
    from tests.fakes.vertex_server import running_fake_vertex

    request.getfixturevalue("gcs_env")  # Cloud Storage on the emulator

    with running_fake_vertex() as server:
        monkeypatch.setenv("GOOGLE_VERTEX_BASE_URL", server.url)
        monkeypatch.setenv("TUNEPORT_VERTEX_ACCESS_TOKEN", "ya29.port-test-token")
        yield server


def _vertex_trained(data: Path, *extra: str) -> str:
    """The tuneport job id of a finished Vertex job trained through tuneport."""
    argv = ["train", "-p", "vertex", "-m", "gemini-2.5-flash", "--data", str(data)]
    argv += ["--epochs", "2", *VERTEX_ARGS, "--set", "bucket=tp-port-bucket", *extra, "--yes"]
    assert run(argv) == 0
    (record,) = open_store().list_jobs(5)
    return record.id


def _gcs_bytes(uri: str) -> bytes:
    from google.cloud import storage

    bucket, _, name = uri.removeprefix("gs://").partition("/")
    blob = storage.Client(project="p").bucket(bucket).blob(name)
    data: bytes = blob.download_as_bytes()
    return data


def test_vertex_gives_a_job_back_through_the_capability(vertex: Any, fixtures_dir: Path) -> None:
    data = fixtures_dir / "sample" / "chat.jsonl"
    _vertex_trained(data, "--validation", str(data), "--set", "adapter_size=4")
    (remote,) = vertex.jobs.values()
    provider = registry.get("vertex", {"project": "p", "location": "us-central1"})
    assert isinstance(provider, ReturnsData)
    by_id = provider.source_job(remote.data["name"])
    by_model = provider.source_job(remote.data["tunedModel"]["endpoint"])
    assert by_id == by_model
    assert by_id.method == "sft" and by_id.model == "gemini-2.5-flash"
    assert by_id.hyperparameters == {"epochs": 2, "adapter_size": 4}
    spec = remote.data["supervisedTuningSpec"]
    assert by_id.training == spec["trainingDatasetUri"]
    assert by_id.validation == spec["validationDatasetUri"]
    assert by_id.tuned_model == remote.data["tunedModel"]["endpoint"]


def test_port_from_vertex_to_openai(
    fake: FakeOpenAI,
    vertex: Any,
    fixtures_dir: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    data = fixtures_dir / "sample" / "chat.jsonl"
    source_id = _vertex_trained(data)
    (remote,) = vertex.jobs.values()
    uri = remote.data["supervisedTuningSpec"]["trainingDatasetUri"]
    argv = ["port", source_id, "--to", TARGET, "--golden", "3", "--yes"]
    assert run(argv) == 0, capsys.readouterr().err
    fetched = (_folder() / "fetch" / "training.jsonl").read_bytes()
    assert fetched == _gcs_bytes(uri)  # the Gemini-format object, byte for byte
    (job,) = fake.jobs.values()
    assert job["method"]["supervised"]["hyperparameters"]["n_epochs"] == 2
    # read back into canonical rows, the OpenAI upload is the original chat data
    sent = fake.file_bytes[job["training_file"]].decode().splitlines()
    original = [json.loads(r) for r in data.read_text().splitlines()]
    assert [json.loads(r)["messages"] for r in sent] == [r["messages"] for r in original]
    report = json.loads((_folder() / "report.json").read_text())
    assert [t["provider"] for t in report["targets"]] == ["vertex", "openai"]
    assert run(argv) == 0
    assert len(fake.jobs) == 1


def test_a_vertex_job_whose_object_was_deleted_gets_one_clear_line(
    fake: FakeOpenAI, vertex: Any, fixtures_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from google.cloud import storage

    source_id = _vertex_trained(fixtures_dir / "sample" / "chat.jsonl")
    (remote,) = vertex.jobs.values()
    uri = remote.data["supervisedTuningSpec"]["trainingDatasetUri"]
    bucket, _, name = uri.removeprefix("gs://").partition("/")
    storage.Client(project="p").bucket(bucket).blob(name).delete()
    capsys.readouterr()
    assert run(["port", source_id, "--to", TARGET, "--yes"]) == EXIT_PROVIDER
    err = capsys.readouterr().err.strip().splitlines()  # the port's banner, then the error
    assert err[-1].startswith("error: ") and "Traceback" not in "\n".join(err), err
    assert f"Cloud Storage no longer holds {uri}" in err[-1]
    assert not (_folder() / "fetch" / "source.json").exists()
    assert not fake.jobs


def test_a_backend_that_cannot_give_data_back_is_no_source(
    fake: FakeOpenAI, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # every built-in backend can now give data back: a plug-in backend may not
    import tuneport.jobs.port as port

    real = port.returns_data
    monkeypatch.setattr(port, "returns_data", lambda name: name != "vertex" and real(name))
    assert run(["port", "ftjob-x", "--from", "vertex", "--to", TARGET, "--yes"]) == EXIT_CONFIG
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "cannot give a job's training data" in err[0], err
    assert "port from openai, local, together, fireworks, azure" in err[0]


def test_unknown_fireworks_and_vertex_sources_get_one_clear_line(
    fake: FakeOpenAI,
    fireworks: Any,
    vertex: Any,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("GOOGLE_CLOUD_PROJECT", "p")
    cases = [
        ("fireworks", "accounts/acme/supervisedFineTuningJobs/nosuch", "holds no fine-tuning job"),
        ("fireworks", "accounts/acme/models/nosuch", "holds no tuned model"),
        ("vertex", "projects/p/locations/us-central1/tuningJobs/404", "holds no tuning job"),
        ("vertex", "projects/p/locations/us-central1/endpoints/404", "holds no tuning job"),
    ]
    for provider, ref, words in cases:
        assert run(["port", ref, "--from", provider, "--to", TARGET, "--yes"]) == EXIT_PROVIDER
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and err[0].startswith("error: ") and words in err[0], err
        assert ref in err[0]
    assert not list_ports()


def test_a_fireworks_dpo_job_is_read_and_a_grpo_one_refused(
    fake: FakeOpenAI, fireworks: Any, fixtures_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = fixtures_dir / "sample" / "preference.jsonl"
    job = _fireworks_trained(fireworks, data, "--method", "dpo", "--set", "dpo_beta=0.2")
    provider = registry.get("fireworks", {})
    assert isinstance(provider, ReturnsData)
    source = provider.source_job(job.data["name"])
    assert job.kind == "dpoJobs" and source.method == "dpo"
    assert source.hyperparameters["epochs"] == 2 and source.hyperparameters["beta"] == 0.2
    assert source.validation is None  # DpoJob has no evaluation dataset
    job.data["lossConfig"] = {"method": "GRPO"}  # the DPO API's default loss (SDK docstring)
    capsys.readouterr()
    argv = ["port", job.data["name"], "--from", "fireworks", "--to", TARGET, "--yes"]
    assert run(argv) == EXIT_CONFIG
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "used method 'grpo'" in err[0], err


def test_a_fireworks_dataset_of_several_files_comes_back_one_row_per_line(
    fireworks: Any, fixtures_dir: Path, tmp_path: Path
) -> None:
    job = _fireworks_trained(fireworks, fixtures_dir / "sample" / "chat.jsonl")
    name = job.data["dataset"]
    fireworks.dataset_files[name] = {"b.jsonl": b'{"b": 1}\n', "a.jsonl": b'{"a": 1}'}
    provider = registry.get("fireworks", {})
    assert isinstance(provider, ReturnsData)
    provider.download(name, tmp_path / "out.jsonl")
    assert (tmp_path / "out.jsonl").read_bytes() == b'{"a": 1}\n{"b": 1}\n'
