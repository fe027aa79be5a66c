"""How fast `tuneport ui` starts and how its pages answer with 1,000 jobs in the store.

    python bench/ui.py [--out bench/results/ui.md]

Start: a fresh interpreter runs `tuneport ui --port P` until its first page answers (import of
the web stack included), median of 5. Pages: the jobs list (100 and all 1,000 rows), its JSON poll
and a job page with 1,000 events, timed in-process over a real loopback socket, median of 9.
"""

from __future__ import annotations

import argparse
import os
import platform
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

START_SCRIPT = """
import sys, threading, time, urllib.request
t0 = time.monotonic()
from tuneport.cli.main import run
threading.Thread(target=run, args=(['ui', '--port', sys.argv[1]],), daemon=True).start()
while True:
    try:
        urllib.request.urlopen('http://127.0.0.1:' + sys.argv[1] + '/', timeout=1).read()
        break
    except OSError:
        time.sleep(0.005)
print(time.monotonic() - t0, 'torch' in sys.modules)
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_seconds(home: Path) -> tuple[float, bool]:
    env = {**os.environ, "TUNEPORT_HOME": str(home)}
    out = subprocess.run(
        [sys.executable, "-c", START_SCRIPT, str(free_port())],
        capture_output=True,
        text=True,
        env=env,
        check=True,
        timeout=60,
    ).stdout.split()
    return float(out[0]), out[1] == "True"


def timed(url: str, runs: int = 9) -> tuple[float, int]:
    times = []
    size = 0
    for _ in range(runs):
        t0 = time.perf_counter()
        size = len(urllib.request.urlopen(url, timeout=30).read())
        times.append(time.perf_counter() - t0)
    return statistics.median(times), size


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    from tests.ui_helpers import record, seed, serving
    from tuneport.cli.ui.app import UISettings
    from tuneport.jobs.store import JobStore
    from tuneport.schemas import JobEvent, JobState

    with tempfile.TemporaryDirectory() as tmp:
        home = Path(tmp)
        starts = [start_seconds(home) for _ in range(5)]
        store = JobStore(home / "jobs.sqlite3")
        seed(store, extra=997)  # 1,000 jobs
        busy = record("tp-busy0001", "openai", "gpt-4.1-mini", JobState.RUNNING, 99)
        store.add(busy)
        t = datetime(2026, 12, 1, tzinfo=UTC)
        store.add_events(
            busy.id,
            [
                JobEvent(
                    id=f"e{i}", created_at=t + timedelta(seconds=i), message="m", step=i, loss=1 / i
                )
                for i in range(1, 1001)
            ],
        )
        rows = []
        with serving(UISettings(store=store)) as url:
            for name, path in (
                ("jobs list, 100 rows (default)", "/"),
                ("jobs list, all 1,001 rows", "/?limit=5000"),
                ("live poll /api/jobs (100 rows)", "/api/jobs"),
                ("job page, 1,000 events + loss curve", f"/jobs/{busy.id}"),
            ):
                seconds, size = timed(url + path)
                rows.append((name, seconds, size))
    load = os.getloadavg()
    lines = [
        "# `tuneport ui`: start time and page times",
        "",
        f"Measured {datetime.now(UTC):%Y-%m-%d %H:%M} UTC on {platform.machine()}, "
        f"{os.cpu_count()} cores, Python {platform.python_version()}; load average "
        f"{load[0]:.1f} at the end (other work was running when it is above ~1). "
        "`python bench/ui.py`.",
        "",
        "| what | median | |",
        "|---|---:|---|",
        f"| start: fresh interpreter to first page answered (5 runs) | "
        f"{statistics.median(s for s, _ in starts):.3f} s | "
        f"min {min(s for s, _ in starts):.3f} s; torch imported: "
        f"{any(t for _, t in starts)} |",
    ]
    for name, seconds, size in rows:
        lines.append(f"| {name} | {seconds * 1000:.0f} ms | {size / 1024:.0f} KiB |")
    text = "\n".join(lines) + "\n"
    print(text)
    if args.out:
        args.out.write_text(text, encoding="utf-8")


if __name__ == "__main__":
    main()
