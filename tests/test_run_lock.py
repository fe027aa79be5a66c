"""The per-run launch lock: one process launches a run at a time, a second is refused with a
one-line error, and lock files do not pile up in $TUNEPORT_HOME/locks."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.fakes.openai_server import FakeOpenAI, serving_openai
from tuneport.cli.main import run
from tuneport.files import still_at, try_lock
from tuneport.jobs.launch import launch_key
from tuneport.jobs.store import run_id_for
from tuneport.paths import home
from tuneport.schemas import JobConfig

KEY = "sk-test-RUNLOCK123456789"
SAMPLE = Path(__file__).resolve().parent.parent / "fixtures" / "sample" / "chat.jsonl"
TRAIN = ["train", "-p", "openai", "--data", str(SAMPLE), "-m", "gpt-4.1-mini", "--yes"]


@pytest.fixture
def fake(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeOpenAI]:
    with serving_openai(monkeypatch, KEY, poll_now=True) as server:
        yield server


def test_a_held_lock_refuses_a_second_holder_and_remove_deletes_the_file(tmp_path: Path) -> None:
    path = tmp_path / "locks" / "r.lock"
    with try_lock(path, remove=True) as first:
        assert first and path.exists()
        with try_lock(path) as second:
            assert not second
    assert not path.exists()
    with try_lock(path) as again:
        assert again
    assert path.exists()  # without remove the file stays


def test_a_lock_file_removed_or_replaced_after_opening_is_not_the_lock(tmp_path: Path) -> None:
    path = tmp_path / "r.lock"
    path.touch()
    fd = os.open(path, os.O_RDWR)
    try:
        assert still_at(fd, path)
        path.unlink()
        assert not still_at(fd, path)
        path.touch()  # a new file under the same name
        assert not still_at(fd, path)
    finally:
        os.close(fd)


def test_another_process_holding_the_lock_refuses_then_releases(tmp_path: Path) -> None:
    path = tmp_path / "r.lock"
    child = subprocess.Popen(
        [
            sys.executable,
            "-c",
            textwrap.dedent(
                f"""
                import sys
                from pathlib import Path
                from tuneport.files import try_lock
                with try_lock(Path({str(path)!r}), remove=True) as mine:
                    print(mine, flush=True)
                    sys.stdin.readline()
                """
            ),
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert child.stdout is not None and child.stdin is not None
    try:
        assert child.stdout.readline().strip() == "True"
        with try_lock(path, remove=True) as mine:
            assert not mine
    finally:
        child.stdin.write("\n")
        child.stdin.close()
        child.wait(timeout=30)
    with try_lock(path, remove=True) as mine:
        assert mine


def test_train_leaves_no_lock_files_and_is_refused_while_another_launch_runs(
    fake: FakeOpenAI, capsys: pytest.CaptureFixture[str]
) -> None:
    cfg = JobConfig(provider="openai", model="gpt-4.1-mini", data=SAMPLE)
    run_id = run_id_for(launch_key(cfg), fresh=False)
    lock = home() / "locks" / f"{run_id}.lock"
    with try_lock(lock) as mine:  # "another process" is launching this very run
        assert mine
        assert run(TRAIN) != 0
    err = capsys.readouterr().err
    assert "another tuneport process is launching this same run" in err
    assert not fake.calls("POST", "/fine_tuning/jobs")
    lock.unlink()
    assert run(TRAIN) == 0, capsys.readouterr().err
    assert run(["jobs", "list"]) == 0
    assert len(fake.calls("POST", "/fine_tuning/jobs")) == 1
    assert list((home() / "locks").iterdir()) == []
