"""The causes of the tracebacks a hostile pass found (issue 20 #6, #7), one test per cause.

Every input is generated here. Each must end in one ``error:`` line with a fix and a
documented exit code: never a traceback (an exception escaping ``run`` fails the test).
"""

from __future__ import annotations

import errno
import json
import sqlite3
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from tests.fakes.openai_server import FakeOpenAI, serving_openai
from tuneport.cli.main import run

KEY = "sk-test-CAUSES0123456789"
SAMPLE = Path(__file__).resolve().parent.parent / "fixtures" / "sample" / "chat.jsonl"


@pytest.fixture
def fake(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeOpenAI]:
    with serving_openai(monkeypatch, KEY, poll_now=True) as server:
        yield server


def one_error(code: int, err: str, *, allowed: set[int]) -> str:
    """The one ``error:`` line (with a fix) of a failed command."""
    assert code in allowed, err
    assert "Traceback" not in err, err
    errors = [line for line in err.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "(fix: " in errors[0], err
    return errors[0]


# --- damaged row contents in the job store -----------------------------------------------------


def _store_with_a_job() -> tuple[Path, str]:
    from tuneport.jobs.store import open_store
    from tuneport.schemas import JobEvent, JobRecord

    store = open_store()
    now = datetime.now(UTC)
    store.add(
        JobRecord(id="tp-hurt1", run_id="run-d", provider="openai", model="gpt-4.1-mini",
                  dataset_sha256="x", remote_id="ftjob-1", created_at=now, updated_at=now)
    )  # fmt: skip
    store.add_events("tp-hurt1", [JobEvent(id="e1", message="hello", data={})])
    return store.path, "tp-hurt1"


@pytest.mark.parametrize(
    "sql",
    [
        "UPDATE jobs SET config = '{x'",
        "UPDATE jobs SET remote_files = 'not json'",
        "UPDATE jobs SET config = '[1, 2]'",
        "UPDATE jobs SET state = 'exploded'",
        "UPDATE jobs SET created_at = 'yesterday'",
        "UPDATE events SET data = '{x'",
        "UPDATE events SET created_at = 'soon'",
    ],
)
def test_damaged_row_contents_are_named_by_every_jobs_command(
    sql: str, fake: FakeOpenAI, capsys: pytest.CaptureFixture[str]
) -> None:
    path, job_id = _store_with_a_job()
    with sqlite3.connect(path) as db:
        db.execute(sql)
    before = path.read_bytes()
    shown: set[str] = set()
    for argv in (
        ["jobs", "list"],
        ["jobs", "show", job_id],
        ["jobs", "show", job_id, "--json"],
        ["jobs", "watch", job_id],
        ["jobs", "cancel", job_id],
        ["jobs", "cleanup", job_id, "--yes"],
        ["jobs", "resume", job_id],
        ["chat", job_id, "--message", "hi"],
    ):
        code = run(argv)
        err = capsys.readouterr().err
        assert "Traceback" not in err, err
        if "events" in sql and "has a damaged" not in err:
            if code:  # a command that does not read the events fails for its own reason
                one_error(code, err, allowed={1, 3, 4})
            continue
        line = one_error(code, err, allowed={3})
        assert str(path) in line and "damaged" in line and job_id in line, argv
        shown.add(argv[1])
    assert "show" in shown
    assert path.read_bytes() == before


# --- flags `estimate` must check the way `train` does ------------------------------------------


@pytest.mark.parametrize(
    ("flags", "named"),
    [
        (["--epochs", "0"], "epochs"),
        (["--epochs", "-5"], "epochs"),
        (["--batch-size", "0"], "batch_size"),
        (["--max-cost", "nan"], "max_cost"),
        (["--max-cost", "-1"], "max_cost"),
    ],
)
def test_estimate_checks_its_flags_like_train(
    flags: list[str],
    named: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    for command in (["estimate", str(SAMPLE)], ["train", "--data", str(SAMPLE), "--no-watch"]):
        code = run([*command, "-p", "openai", "-m", "gpt-4.1-mini", *flags])
        line = one_error(code, capsys.readouterr().err, allowed={3})
        assert named in line and flags[0] in line, line


# --- timeouts too large for the socket layer ---------------------------------------------------


@pytest.mark.parametrize("provider", ["openai", "together", "fireworks", "vertex"])
def test_an_infinite_timeout_setting_is_refused(
    provider: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    for env in ("OPENAI_API_KEY", "TOGETHER_API_KEY", "FIREWORKS_API_KEY"):
        monkeypatch.setenv(env, KEY)
    monkeypatch.setenv("FIREWORKS_ACCOUNT_ID", "acme")
    monkeypatch.setenv("TUNEPORT_VERTEX_ACCESS_TOKEN", "ya29.CAUSES-0123456789")
    monkeypatch.setenv("GOOGLE_CLOUD_PROJECT", "p")
    code = run(["chat", "-p", provider, "-m", "m", "--message", "hi", "--set", "timeout=1e400"])
    line = one_error(code, capsys.readouterr().err, allowed={3})
    assert "'timeout'" in line and "86400" in line
    code = run(["doctor", "-p", provider, "--timeout", "1e400"])
    err = capsys.readouterr().err
    assert code == 2 and "Traceback" not in err and "--timeout" in err, err


# --- a full disk while writing -----------------------------------------------------------------


@pytest.mark.parametrize(
    "argv",
    [
        ["convert", "{data}", "--to", "openai", "-o", "{out}/c.jsonl"],
        ["curate", "{data}", "-o", "{out}/c.jsonl"],
    ],
)
def test_a_full_disk_while_writing_is_one_line_and_leaves_nothing(
    argv: list[str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    import os

    out = tmp_path / "out"
    out.mkdir()
    real_open = Path.open

    class Full:  # a file on a disk with no room left: every write fails
        def __init__(self, fh: Any) -> None:
            self.fh = fh

        def write(self, data: Any) -> int:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

        def __getattr__(self, name: str) -> Any:
            return getattr(self.fh, name)

        def __enter__(self) -> Full:
            return self

        def __exit__(self, *exc: object) -> None:
            self.fh.close()

    def open_(self: Path, mode: str = "r", *args: Any, **kwargs: Any) -> Any:
        fh = real_open(self, mode, *args, **kwargs)
        return Full(fh) if "w" in mode and str(self).startswith(str(out)) else fh

    monkeypatch.setattr(Path, "open", open_)
    code = run([a.format(data=SAMPLE, out=out) for a in argv])
    monkeypatch.undo()
    line = one_error(code, capsys.readouterr().err, allowed={2, 3})
    assert "No space left on device" in line, line
    assert list(out.iterdir()) == []


# --- a tool parameter schema nested ~300 levels ------------------------------------------------


def _deep_schema(levels: int) -> dict[str, Any]:
    schema: dict[str, Any] = {"type": "string"}
    for _ in range(levels):
        schema = {"type": "object", "properties": {"a": schema}}
    return schema


def test_a_deeply_nested_tool_schema_is_a_row_problem_everywhere(
    tmp_path: Path, fake: FakeOpenAI, capsys: pytest.CaptureFixture[str]
) -> None:
    row = {
        "messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "yo"}],
        "tools": [{"type": "function", "function": {"name": "f", "parameters": _deep_schema(300)}}],
    }
    data = tmp_path / "deep_tools.jsonl"
    data.write_text((json.dumps(row) + "\n") * 12)
    out = tmp_path / "out"
    out.mkdir()
    for argv in (
        ["validate", str(data), "-p", "openai"],
        ["validate", str(data), "-p", "vertex"],
        ["convert", str(data), "--to", "openai", "-o", str(out / "c.jsonl")],
        ["plan", str(data), "-p", "openai"],
        ["stats", str(data)],
        ["curate", str(data), "-o", str(out / "cur.jsonl")],
        ["train", "-p", "openai", "-m", "gpt-4.1-mini", "--data", str(data), "--yes",
         "--no-watch"],
    ):  # fmt: skip
        code = run(argv)
        said = capsys.readouterr()
        err = said.out + said.err
        assert "Traceback" not in err and "serialization depth" not in err, (argv, err)
        assert code in {0, 1, 2, 3}, (argv, err)
        if argv[0] != "plan":
            assert code != 0 and "nested more than 128 levels" in err, (argv, err)
    assert list(out.iterdir()) == []
    assert fake.calls("POST", "/fine_tuning/jobs") == []


# --- output paths the file system refuses ------------------------------------------------------


@pytest.mark.parametrize(
    "argv",
    [
        ["convert", "{data}", "--to", "openai", "-o", "{out}/{long}.jsonl"],
        ["convert", "{data}", "--to", "local", "-o", "{out}/{long}"],
        ["curate", "{data}", "-o", "{out}/{long}.jsonl"],
        ["stats", "{data}", "--plot", "{out}/{long}.png"],
        ["eval", "--data", "{heldout}", "--model", "openai:gpt-4.1-nano", "--yes", "-o",
         "{out}/{long}"],
    ],
)  # fmt: skip
def test_an_output_name_over_255_bytes_is_refused(
    argv: list[str], tmp_path: Path, fake: FakeOpenAI, capsys: pytest.CaptureFixture[str]
) -> None:
    heldout = SAMPLE.parent.parent / "curate" / "heldout.jsonl"
    long = "é" * 150  # 300 bytes in UTF-8
    code = run([a.format(data=SAMPLE, out=tmp_path, long=long, heldout=heldout) for a in argv])
    line = one_error(code, capsys.readouterr().err, allowed={3})
    assert "bytes long" in line and "shorter" in line
    assert fake.calls("POST", "/chat/completions") == []


def test_an_output_folder_without_search_permission_is_one_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Root ignores permissions, so the refusal the OS gives a user is injected."""
    import os

    locked = tmp_path / "locked"
    real_stat = Path.stat

    def stat(self: Path, **kwargs: Any) -> Any:
        if str(self).startswith(str(locked) + "/"):
            raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), str(self))
        return real_stat(self, **kwargs)

    monkeypatch.setattr(Path, "stat", stat)
    code = run(["convert", str(SAMPLE), "--to", "openai", "-o", str(locked / "x.jsonl")])
    line = one_error(code, capsys.readouterr().err, allowed={3})
    assert "Permission denied" in line


# --- the local backend's launcher --------------------------------------------------------------


@pytest.mark.parametrize("launcher", [";", "/nonexistent/launcher --flag", '"unclosed', " "])
def test_a_launcher_that_cannot_run_is_refused_before_anything_starts(
    launcher: str, capsys: pytest.CaptureFixture[str]
) -> None:
    from tuneport.paths import home

    code = run(["train", "-p", "local", "-m", "Qwen/Qwen2.5-0.5B-Instruct", "--data",
                str(SAMPLE), "--yes", "--no-watch", "--set", f"launcher={launcher}"])  # fmt: skip
    line = one_error(code, capsys.readouterr().err, allowed={3})
    assert "'launcher'" in line and "allowed options" not in line, line
    assert not (home() / "runs").exists() or list((home() / "runs").iterdir()) == []


# --- a price file with a quoted number ---------------------------------------------------------


def test_a_quoted_price_is_refused_on_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    prices = tmp_path / "p.toml"
    prices.write_text('[providers.openai.models."gpt-4.1-mini".sft]\ntraining_per_million = "4"\n')
    for argv in (
        ["estimate", str(SAMPLE), "-p", "openai", "-m", "gpt-4.1-mini", "--prices", str(prices)],
        ["plan", str(SAMPLE), "-p", "openai", "--prices", str(prices)],
        ["prices", "--prices", str(prices)],
        ["train", "--data", str(SAMPLE), "-p", "openai", "-m", "gpt-4.1-mini", "--prices",
         str(prices), "--yes", "--no-watch"],
    ):  # fmt: skip
        code = run(argv)
        err = capsys.readouterr().err
        assert "Traceback" not in err, err
        assert "training_per_million" in err and code == 3, (argv, err)
        assert not any(line.startswith("fix:") for line in err.splitlines()), err
        assert all("(fix: " in line for line in err.splitlines() if line.startswith("error:"))


# --- a read-only lock folder -------------------------------------------------------------------


def test_a_read_only_lock_folder_is_one_line_and_launches_nothing(
    fake: FakeOpenAI, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import os

    from tuneport.paths import home

    real_open = os.open

    def refuse(path: Any, flags: int, *args: Any, **kwargs: Any) -> int:
        if "/locks/" in str(path):
            raise PermissionError(errno.EROFS, os.strerror(errno.EROFS), str(path))
        return real_open(path, flags, *args, **kwargs)

    monkeypatch.setattr(os, "open", refuse)
    code = run(["train", "-p", "openai", "-m", "gpt-4.1-mini", "--data", str(SAMPLE), "--yes",
                "--no-watch"])  # fmt: skip
    line = one_error(code, capsys.readouterr().err, allowed={3})
    assert str(home() / "locks") in line and "TUNEPORT_HOME" in line
    assert fake.calls("POST", "/fine_tuning/jobs") == []


# --- keys and credentials ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("provider", "env"),
    [
        ("openai", "OPENAI_API_KEY"),
        ("together", "TOGETHER_API_KEY"),
        ("fireworks", "FIREWORKS_API_KEY"),
        ("vertex", "TUNEPORT_VERTEX_ACCESS_TOKEN"),
    ],
)
def test_a_key_with_a_non_ascii_character_is_named(
    provider: str, env: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv(env, "key-SECRETé0123456789")
    monkeypatch.setenv("FIREWORKS_ACCOUNT_ID", "acme")
    monkeypatch.setenv("GOOGLE_CLOUD_PROJECT", "p")
    monkeypatch.setenv("OPENAI_BASE_URL", "http://127.0.0.1:9")
    code = run(["chat", "-p", provider, "-m", "m", "--message", "hi"])
    line = one_error(code, capsys.readouterr().err, allowed={3})
    assert env in line and "non-ASCII" in line and "SECRET" not in line, line


def test_a_service_account_key_with_a_bad_pem_is_named_not_blamed_on_vertex(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    key = tmp_path / "sa.json"
    key.write_text(json.dumps({
        "type": "service_account", "project_id": "p", "private_key_id": "x",
        "private_key": "-----BEGIN PRIVATE KEY-----\nnotakey\n-----END PRIVATE KEY-----\n",
        "client_email": "a@p.iam.gserviceaccount.com", "client_id": "1",
        "token_uri": "https://oauth2.googleapis.com/token",
    }))  # fmt: skip
    monkeypatch.setenv("GOOGLE_APPLICATION_CREDENTIALS", str(key))
    monkeypatch.setenv("GOOGLE_VERTEX_BASE_URL", "http://127.0.0.1:9")
    code = run(["chat", "-p", "vertex", "-m", "gemini-2.5-flash", "--message", "hi"])
    line = one_error(code, capsys.readouterr().err, allowed={3})
    assert str(key) in line and "cannot be used" in line and "reply" not in line, line


# --- a job file nested 5,000 levels ------------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        "model: " + "[" * 5000 + "]" * 5000 + "\n",
        "".join(" " * i + "a:\n" for i in range(5000)),
        '{"model": ' + "[" * 5000 + "]" * 5000 + "}",
    ],
)
def test_a_job_file_nested_5000_levels_is_one_line(
    text: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    job = tmp_path / "job.yaml"
    job.write_text(text)
    code = run(["train", str(job), "-p", "openai", "--data", str(SAMPLE), "--yes", "--no-watch"])
    line = one_error(code, capsys.readouterr().err, allowed={3})
    assert str(job) in line and "nests too deeply" in line


# --- #7: every row shares one defect ------------------------------------------------------------

_GOOD = '{"messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "yo"}]}'


def _every_row(defect: str) -> bytes:
    rows = {
        "nan": _GOOD[:-1] + ', "w": NaN}',
        "infinity": _GOOD[:-1] + ', "w": -Infinity}',
        "duplicate keys": '{"messages": [{"role": "user", "content": "a", "content": "b"}, '
        '{"role": "assistant", "content": "c"}]}',
        "too deep": '{"messages": ' + "[" * 2000 + "]" * 2000 + "}",
        "lone surrogate": _GOOD.replace('"hi"', '"\\ud800"'),
        "1e400": _GOOD[:-1] + ', "w": 1e400}',
        "trailing comma": _GOOD[:-2] + ",]}",
    }
    if defect == "utf-16":
        return ((_GOOD + "\n") * 12).encode("utf-16")
    if defect == "utf-32":
        return ((_GOOD + "\n") * 12).encode("utf-32")
    if defect == "cr only":
        return ((_GOOD + "\r") * 12).encode()
    return ((rows[defect] + "\n") * 12).encode()


@pytest.mark.parametrize(
    ("defect", "said"),
    [
        ("nan", "NaN is not a JSON number"),
        ("infinity", "Infinity is not a JSON number"),
        ("duplicate keys", "appears twice"),
        ("too deep", "nested deeper"),
        ("lone surrogate", "surrogate"),
        ("1e400", "too large for a double"),
        ("trailing comma", "trailing comma"),
        ("utf-16", "UTF-16"),
        ("utf-32", "UTF-32"),
        ("cr only", "CR only"),
    ],
)
def test_a_defect_every_row_shares_is_named_at_its_line_with_the_fix(
    defect: str, said: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = tmp_path / "all.jsonl"
    data.write_bytes(_every_row(defect))
    for argv in (["validate", str(data), "-p", "openai"], ["inspect", str(data)]):
        code = run(argv)
        line = one_error(code, capsys.readouterr().err, allowed={2})
        assert said in line and f"{data}:1" in line, line
        assert "unknown format" not in line


def test_millions_of_leading_blank_lines_do_not_hide_the_records(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = tmp_path / "blank.jsonl"
    with data.open("wb") as fh:
        fh.write(b"\n" * 2_000_000)
        fh.write((_GOOD + "\n").encode() * 3)
    from tuneport.data.detect import detect_format

    assert detect_format(data) == "openai"  # was: unknown format (no JSON object records)
    nan = tmp_path / "blank_nan.json"
    nan.write_bytes(b"\n" * 2_000_000 + b"[" + (_GOOD[:-1] + ', "w": NaN}').encode() + b"]")
    code = run(["inspect", str(nan)])
    line = one_error(code, capsys.readouterr().err, allowed={2})
    assert f"{nan}:2000001" in line and "NaN" in line, line


@pytest.mark.parametrize(
    ("argv", "env"),
    [
        (
            ["estimate", str(SAMPLE), "-p", "openai", "-m", "gpt-4.1-mini"],
            {"TUNEPORT_MAX_COST": "-3"},
        ),
        (["jobs", "watch", "tp-x"], {"TUNEPORT_POLL_INTERVAL": "-1"}),
        (["curate", str(SAMPLE), "-o", "{out}/c.jsonl", "--max-tokens", "0"], {}),
    ],
)
def test_settings_errors_carry_a_fix(
    argv: list[str],
    env: dict[str, str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    code = run([a.format(out=tmp_path) for a in argv])
    one_error(code, capsys.readouterr().err, allowed={2, 3, 4})


def test_a_json_file_that_is_not_an_array_says_what_to_do(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from tuneport.data.reading import iter_json_array
    from tuneport.errors import InputError

    data = tmp_path / "x.json"
    data.write_text('{"a": 1}')
    with pytest.raises(InputError) as caught:
        list(iter_json_array(data, file=str(data)))
    assert caught.value.hint and ".jsonl" in caught.value.hint
