"""Hostile outputs and streams (issue 20): ``--force`` never deletes more than the one output it
replaces, an endless stdin stops at a cap, and no paid call happens before every output path of
the command has been checked. Every input is generated here."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.fakes.openai_server import FakeOpenAI, serving_openai
from tests.test_hostile_inputs import SAMPLE, check
from tuneport.cli.main import run
from tuneport.files import MAX_RECORD_BYTES

KEY = "sk-test-OUTPUTS123456789"


@pytest.fixture
def fake(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeOpenAI]:
    with serving_openai(monkeypatch, KEY, poll_now=True) as server:
        yield server


# --- 1. --force onto a folder ---------------------------------------------------------------


def _commands(dest: str) -> dict[str, list[str]]:
    return {
        "convert": ["convert", str(SAMPLE), "--to", "openai", "-o", dest, "--force"],
        "convert local": ["convert", str(SAMPLE), "--to", "local", "-o", dest, "--force"],
        "curate": ["curate", str(SAMPLE), "-o", dest, "--force"],
        "curate local": ["curate", str(SAMPLE), "-o", dest, "--to", "local", "--force"],
        "stats --plot": ["stats", str(SAMPLE), "--plot", dest, "--force"],
    }


def _tree(folder: Path) -> dict[str, bytes]:
    return {
        p.relative_to(folder).as_posix(): p.read_bytes()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


@pytest.mark.parametrize("command", list(_commands("x")))
def test_force_never_deletes_a_folder_with_files(
    command: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = tmp_path / "p"
    (folder / "sub").mkdir(parents=True)
    (folder / "sub" / "a").write_text("x")
    (folder / "keep.txt").write_text("mine")
    before = _tree(folder)
    code = run(_commands(str(folder))[command])
    err = capsys.readouterr().err
    check(code, err, allowed={3})
    assert "folder with files in it" in err and "-o" in err
    assert folder.is_dir() and _tree(folder) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["p"]  # no temp file left


@pytest.mark.parametrize("dest", ["", ".", "..", "sub/.."])
@pytest.mark.parametrize("command", list(_commands("x")))
def test_force_onto_the_current_or_parent_folder_is_refused(
    command: str,
    dest: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    work = tmp_path / "work"
    (work / "sub").mkdir(parents=True)
    (work / "mine.txt").write_text("mine")
    monkeypatch.chdir(work)
    before = _tree(tmp_path)
    code = run(_commands(dest)[command])
    err = capsys.readouterr().err
    check(code, err, allowed={3})
    assert _tree(tmp_path) == before


def test_force_replaces_an_empty_folder_and_a_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "empty").mkdir()
    (tmp_path / "old.jsonl").write_text("old\n")
    for dest in ("empty", "old.jsonl"):
        argv = ["convert", str(SAMPLE), "--to", "openai", "-o", str(tmp_path / dest), "--force"]
        code = run(argv)
        check(code, capsys.readouterr().err, allowed={0})
        assert (tmp_path / dest).is_file()


def test_force_replaces_a_dataset_folder_tuneport_wrote_but_not_one_with_more_in_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    pytest.importorskip("datasets")
    dest = tmp_path / "d.hf"
    argv = ["convert", str(SAMPLE), "--to", "local", "-o", str(dest)]
    assert run(argv) == 0
    assert run([*argv, "--force"]) == 0  # tuneport's own dataset: replaced
    (dest / "notes.txt").write_text("mine")  # now it holds something tuneport did not write
    before = _tree(dest)
    code = run([*argv, "--force"])
    err = capsys.readouterr().err
    check(code, err, allowed={3})
    assert _tree(dest) == before
    # and a file output never replaces a dataset folder
    (dest / "notes.txt").unlink()
    code = run(["convert", str(SAMPLE), "--to", "openai", "-o", str(dest), "--force"])
    check(code, capsys.readouterr().err, allowed={3})
    assert (dest / "state.json").is_file()


# --- 2. an endless stdin ----------------------------------------------------------------------


class _Endless(io.RawIOBase):
    """An endless stream (``/dev/zero``, ``yes``) that counts what was read from it."""

    def __init__(self, pattern: bytes) -> None:
        self.pattern = pattern
        self.read_bytes = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buf: memoryview) -> int:  # type: ignore[override]
        n = len(buf)
        reps = self.pattern * (n // len(self.pattern) + 1)
        buf[:n] = reps[:n]
        self.read_bytes += n
        return n


class _Stdin:
    def __init__(self, raw: _Endless) -> None:
        self.buffer = io.BufferedReader(raw)

    def isatty(self) -> bool:
        return False


@pytest.mark.parametrize(
    "command",
    [
        ["validate", "-", "-p", "openai"],
        ["inspect", "-"],
        ["estimate", "-", "-p", "openai", "-m", "gpt-4.1-mini"],
    ],
)
def test_an_endless_line_on_stdin_stops_at_the_record_cap(
    command: list[str], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    raw = _Endless(b"\0")  # `< /dev/zero`: no line end, ever
    monkeypatch.setattr("sys.stdin", _Stdin(raw))
    code = run(command)
    err = capsys.readouterr().err
    check(code, err, allowed={2})
    assert "<stdin>:1" in err and "16 MiB" in err and "tuneport-stdin" not in err
    assert raw.read_bytes < MAX_RECORD_BYTES + (4 << 20)  # stopped at once


@pytest.mark.parametrize("command", [["validate", "-", "-p", "openai"], ["inspect", "-"]])
def test_an_endless_stream_of_short_lines_stops_at_the_stdin_cap(
    command: list[str], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    line = json.dumps({"messages": [{"role": "user", "content": "y"}]}).encode() + b"\n"
    raw = _Endless(line)  # `yes '{...}' | tuneport inspect -`
    monkeypatch.setattr("sys.stdin", _Stdin(raw))
    monkeypatch.setenv("TUNEPORT_STDIN_MAX", "3M")
    code = run(command)
    err = capsys.readouterr().err
    check(code, err, allowed={2})
    assert "more than 3 MiB" in err and "TUNEPORT_STDIN_MAX" in err
    assert raw.read_bytes < (3 << 20) + (2 << 20)


@pytest.mark.parametrize("value", ["lots", "-1", "0", "3 parsecs"])
def test_a_bad_stdin_cap_is_named(
    value: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr("sys.stdin", _Stdin(_Endless(b"\0")))
    monkeypatch.setenv("TUNEPORT_STDIN_MAX", value)
    code = run(["inspect", "-"])
    err = capsys.readouterr().err
    check(code, err, allowed={3})
    assert "TUNEPORT_STDIN_MAX" in err


def test_a_json_array_on_one_line_is_not_cut_by_the_line_cap(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    rows = [json.loads(line) for line in SAMPLE.read_text().splitlines() if line.strip()]
    data = json.dumps(rows).encode()
    monkeypatch.setattr("tuneport.files.MAX_RECORD_BYTES", 1000)
    monkeypatch.setattr("tuneport.cli._stdio.MAX_RECORD_BYTES", 1000)
    monkeypatch.setattr("sys.stdin", io.TextIOWrapper(io.BytesIO(data), encoding="utf-8"))
    assert len(data) > 1000
    code = run(["inspect", "-"])
    check(code, capsys.readouterr().err, allowed={0})


# --- 5. outputs checked before any paid call --------------------------------------------------


def test_eval_checks_its_output_before_any_chat_call(
    tmp_path: Path, fake: FakeOpenAI, capsys: pytest.CaptureFixture[str]
) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")  # fails for root too, unlike chmod
    code = run(["eval", "--data", str(SAMPLE), "--model", "openai:gpt-4.1-nano", "--max-cost",
                "1", "--yes", "-o", str(blocker / "reports" / "rep")])  # fmt: skip
    err = capsys.readouterr().err
    check(code, err, allowed={3})
    assert "cannot write" in err
    assert fake.calls("POST", "/chat/completions") == []
    assert blocker.read_text() == "not a folder"


def test_eval_into_a_read_only_file_system_makes_no_chat_call(
    tmp_path: Path,
    fake: FakeOpenAI,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    import tempfile

    def read_only(*args: object, **kwargs: object) -> object:
        raise OSError(30, "Read-only file system")

    monkeypatch.setattr(tempfile, "TemporaryFile", read_only)  # the probe the check makes
    code = run(["eval", "--data", str(SAMPLE), "--model", "openai:gpt-4.1-nano", "--max-cost",
                "1", "--yes", "-o", str(tmp_path / "rep")])  # fmt: skip
    err = capsys.readouterr().err
    check(code, err, allowed={3})
    assert "Read-only file system" in err
    assert fake.calls("POST", "/chat/completions") == []
    assert list(tmp_path.iterdir()) == []


# --- 4a. a key given twice in a job file ------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "line"),
    [
        ("provider: openai\nmodel: gpt-4.1-mini\nmodel: gpt-4o\ndata: {data}\n", 3),
        ("provider: openai\nmodel: gpt-4.1-mini\nepochs: 3\nepochs: 40\ndata: {data}\n", 4),
        ("provider: openai\nmodel: gpt-4.1-mini\ndata: {data}\noptions:\n  suffix: a\n"
         "  suffix: b\n", 6),
        ('provider: openai\nmodel: gpt-4.1-mini\n"epochs": 3\nepochs: 4\ndata: {data}\n', 4),
    ],
)  # fmt: skip
def test_a_job_file_with_a_key_given_twice_launches_nothing(
    body: str, line: int, tmp_path: Path, fake: FakeOpenAI, capsys: pytest.CaptureFixture[str]
) -> None:
    job = tmp_path / "job.yaml"
    job.write_text(body.format(data=SAMPLE))
    code = run(["train", str(job), "--yes", "--no-watch"])
    err = capsys.readouterr().err
    check(code, err, allowed={3})
    assert f"{job}:{line}:" in err and "twice" in err
    assert fake.calls("POST", "/files") == []
    assert fake.calls("POST", "/fine_tuning/jobs") == []


def test_a_merge_key_may_still_be_overridden(tmp_path: Path) -> None:
    from tuneport.jobs.jobfile import read_job_file

    job = tmp_path / "job.yaml"
    job.write_text("base: &b\n  epochs: 3\nrun:\n  <<: *b\n  epochs: 4\n")
    assert read_job_file(job)["run"] == {"epochs": 4}


# --- 4b. tables: what a reader cannot carry is reported ---------------------------------------


def _parquet(path: Path, columns: list[tuple[str, list[object]]]) -> Path:
    pa = pytest.importorskip("pyarrow")
    import pyarrow.parquet as pq

    names = [name for name, _ in columns]
    pq.write_table(pa.Table.from_arrays([pa.array(v) for _, v in columns], names=names), path)
    return path


def _rows(n: int) -> list[str]:
    return [f"question {i},answer {i}" for i in range(n)]


@pytest.mark.parametrize("command", ["validate", "convert"])
def test_a_csv_column_named_twice_is_refused(
    command: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = tmp_path / "dup.csv"
    data.write_text("question,question,answer\n" + "\n".join(f"{r},x" for r in _rows(12)) + "\n")
    argv = {
        "validate": ["validate", str(data), "-p", "openai"],
        "convert": ["convert", str(data), "--to", "openai", "-o", str(tmp_path / "o.jsonl")],
    }
    code = run(argv[command])  # fmt: skip
    err = capsys.readouterr().err
    check(code, err, allowed={2})
    assert f"{data}:1:" in err and "'question'" in err and "twice" in err
    assert not (tmp_path / "o.jsonl").exists()


def test_a_parquet_column_named_twice_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = _parquet(
        tmp_path / "dup.parquet", [("question", ["q"]), ("question", ["q2"]), ("answer", ["a"])]
    )
    code = run(["validate", str(data), "-p", "openai"])
    err = capsys.readouterr().err
    check(code, err, allowed={2})
    assert str(data) in err and "'question'" in err and "twice" in err


@pytest.mark.parametrize(
    ("row", "words"), [("q2,a2,extra", "3 fields, the header 2"), ("q2", "1 field, the header 2")]
)
def test_a_csv_row_wider_or_narrower_than_the_header_is_an_error(
    row: str, words: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = tmp_path / "extra.csv"
    data.write_text("question,answer\n" + "\n".join([*_rows(12), row]) + "\n")
    code = run(["validate", str(data), "-p", "openai"])
    out = capsys.readouterr().out
    assert code == 1
    assert f"{data}:14: the row has {words}" in out and "row_width" in out
    code = run(["convert", str(data), "--to", "openai", "-o", str(tmp_path / "o.jsonl")])
    err = capsys.readouterr().err
    check(code, err, allowed={2})
    assert f"{data}:14:" in err and not (tmp_path / "o.jsonl").exists()


@pytest.mark.parametrize("bad", [float("nan"), float("inf")])
def test_a_parquet_nan_answer_is_not_the_text_nan(
    bad: float, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    questions = [f"q{i}" for i in range(12)]
    answers: list[object] = [float(i) for i in range(11)] + [bad]
    data = _parquet(tmp_path / "nan.parquet", [("question", questions), ("answer", answers)])
    code = run(["validate", str(data), "-p", "openai"])
    out = capsys.readouterr().out
    assert code == 1
    assert f"{data}:12: column 'answer' holds" in out and "not_text" in out
    code = run(["convert", str(data), "--to", "openai", "-o", str(tmp_path / "o.jsonl")])
    err = capsys.readouterr().err
    check(code, err, allowed={2})
    assert f"{data}:12:" in err and not (tmp_path / "o.jsonl").exists()


# --- 3. a password in a base URL ----------------------------------------------------------------


def _with_password(url: str) -> str:
    scheme, rest = url.split("://", 1)
    return f"{scheme}://alice:HUNTER2pw@{rest}"


@pytest.mark.parametrize("via", ["env", "set"])
def test_a_password_in_a_base_url_is_never_shown_or_stored(
    via: str,
    fake: FakeOpenAI,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    import os
    import sqlite3

    url = _with_password(fake.base_url)
    flags: list[str] = []
    if via == "env":
        monkeypatch.setenv("OPENAI_BASE_URL", url)
    else:
        flags = ["--set", f"base_url={url}"]
    fake.api_key = None  # the SDK sends user:password as Basic auth (a proxy's): accept it
    code = run(["train", "--provider", "openai", "--data", str(SAMPLE), "--model", "gpt-4.1-mini",
                "--yes", "--no-watch", *flags])  # fmt: skip
    captured = capsys.readouterr()
    shown = captured.out + captured.err
    assert code == 0, shown
    assert fake.calls("POST", "/fine_tuning/jobs")  # the real URL (with its password) was used
    job_id = json.loads(run_json(["jobs", "list", "--json"], capsys))[0]["id"]
    for argv in (["jobs", "list", "--json"], ["jobs", "list"], ["doctor", "--json"],
                 ["doctor"], ["jobs", "show", job_id, "--json", *flags],
                 ["jobs", "show", job_id, *flags], ["jobs", "watch", job_id, *flags]):  # fmt: skip
        code = run(argv)
        captured = capsys.readouterr()
        shown += captured.out + captured.err
        assert code in (0, 1), captured.err  # watch rebuilt a client that reached the server
    assert fake.jobs and all(j.get("status") == "succeeded" for j in fake.jobs.values())
    store = Path(os.environ["TUNEPORT_HOME"])
    stored = b"".join(p.read_bytes() for p in store.rglob("*") if p.is_file())
    with sqlite3.connect(next(store.glob("*.sqlite3"))) as conn:  # what SQLite holds, WAL too
        for table in ("jobs", "events", "uploads"):
            stored += repr(list(conn.execute(f"SELECT * FROM {table}"))).encode()
    for secret in ("HUNTER2pw", "alice"):
        assert secret not in shown, shown
        assert secret.encode() not in stored
    assert "***@127.0.0.1" in shown


def test_a_job_launched_with_a_password_is_rebuilt_with_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """watch/resume/cancel rebuild the client from the stored settings: the masked URL is
    replaced by the real one from the environment or ``--set``, or refused if none matches."""
    from tuneport.errors import ConfigError
    from tuneport.jobs.resolve import provider_for_record
    from tuneport.jobs.store import redact_config
    from tuneport.schemas import JobRecord

    real = "http://alice:HUNTER2pw@127.0.0.1:9/v1"
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    options = redact_config({"base_url": real})
    assert options == {"base_url": "http://***@127.0.0.1:9/v1"}
    record = JobRecord.model_validate(
        {"id": "tp-00000001", "provider": "openai", "model": "gpt-4.1-mini",
         "config": {"options": options}, "run_id": "r1", "dataset_sha256": "0" * 64,
         "created_at": "2026-01-01T00:00:00Z", "updated_at": "2026-01-01T00:00:00Z"}
    )  # fmt: skip
    monkeypatch.setenv("OPENAI_BASE_URL", real)
    assert provider_for_record(record).base_url == real  # type: ignore[attr-defined]
    monkeypatch.delenv("OPENAI_BASE_URL")
    given = provider_for_record(record, settings={"base_url": real})
    assert given.base_url == real  # type: ignore[attr-defined]
    with pytest.raises(ConfigError) as err:
        provider_for_record(record)
    assert "***@127.0.0.1:9" in str(err.value) and "HUNTER2pw" not in str(err.value)
    assert "OPENAI_BASE_URL" in (err.value.hint or "") or "base_url" in (err.value.hint or "")


def run_json(argv: list[str], capsys: pytest.CaptureFixture[str]) -> str:
    assert run(argv) == 0
    return capsys.readouterr().out


def test_cannot_reach_names_the_url_without_its_password(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import socket

    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    monkeypatch.setenv("OPENAI_BASE_URL", f"http://bob:S3CRETpass@127.0.0.1:{port}/v1?key=K3Y99")
    monkeypatch.setenv("TUNEPORT_POLL_INTERVAL", "0")
    monkeypatch.setattr("tuneport.retry.time.sleep", lambda _s: None, raising=False)
    for argv in (["chat", "openai:gpt-4.1-mini", "--message", "hi"], ["doctor"]):
        run(argv)
        captured = capsys.readouterr()
        shown = captured.out + captured.err
        assert "127.0.0.1" in shown
        assert "S3CRETpass" not in shown and "bob" not in shown and "K3Y99" not in shown, shown


# --- 4c. a run's identity follows the data uploaded, not the input's bytes ----------------------

TRAIN = ["train", "--provider", "openai", "--model", "gpt-4.1-mini", "--yes", "--no-watch"]


@pytest.mark.parametrize(
    "resave",
    [
        lambda b: b"\xef\xbb\xbf" + b,  # a BOM
        lambda b: b.replace(b"\n", b"\r\n"),  # CRLF line ends
        lambda b: b"\xef\xbb\xbf" + b.replace(b"\n", b"\r\n"),
        lambda b: b"\n".join(
            json.dumps(json.loads(line), indent=None, separators=(", ", ": ")).encode()
            for line in b.splitlines()
            if line.strip()
        ),  # other spacing
    ],
    ids=["bom", "crlf", "bom-crlf", "spacing"],
)
def test_the_same_data_resaved_is_the_same_run(
    resave: object, tmp_path: Path, fake: FakeOpenAI, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run([*TRAIN, "--data", str(SAMPLE)]) == 0, capsys.readouterr().err
    again = tmp_path / "chat-resaved.jsonl"
    again.write_bytes(resave(SAMPLE.read_bytes()))  # type: ignore[operator]
    assert again.read_bytes() != SAMPLE.read_bytes()
    code = run([*TRAIN, "--data", str(again)])
    err = capsys.readouterr().err
    assert code == 0, err
    assert "launched before" in err
    assert len(fake.calls("POST", "/fine_tuning/jobs")) == 1
    assert len(fake.calls("POST", "/files")) == 1


def test_other_data_is_another_run(
    tmp_path: Path, fake: FakeOpenAI, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run([*TRAIN, "--data", str(SAMPLE)]) == 0, capsys.readouterr().err
    lines = SAMPLE.read_text().splitlines()
    other = tmp_path / "other.jsonl"
    other.write_text("\n".join(lines[:-1]) + "\n")  # one example less
    assert run([*TRAIN, "--data", str(other)]) == 0, capsys.readouterr().err
    assert len(fake.calls("POST", "/fine_tuning/jobs")) == 2


def test_a_run_recorded_before_the_change_is_still_found(
    fake: FakeOpenAI, capsys: pytest.CaptureFixture[str]
) -> None:
    """A store written by an earlier tuneport holds the launch key of the raw file's bytes."""
    from tuneport.jobs.launch import launch_key, legacy_launch_key
    from tuneport.jobs.store import open_store
    from tuneport.schemas import JobConfig

    assert run([*TRAIN, "--data", str(SAMPLE)]) == 0, capsys.readouterr().err
    cfg = JobConfig(provider="openai", model="gpt-4.1-mini", data=SAMPLE)
    store = open_store()
    record = store.find_launch(launch_key(cfg))
    assert record is not None
    store._conn.execute(  # as the earlier version stored it
        "UPDATE jobs SET launch_key = ? WHERE id = ?", (legacy_launch_key(cfg), record.id)
    )
    store._conn.commit()
    assert store.find_launch(launch_key(cfg)) is None
    code = run([*TRAIN, "--data", str(SAMPLE)])
    err = capsys.readouterr().err
    assert code == 0 and f"launched before as {record.id}" in err, err
    assert len(fake.calls("POST", "/fine_tuning/jobs")) == 1
