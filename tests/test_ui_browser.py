"""`tuneport ui` in a real browser: Debian's headless Chromium driven by Playwright (no browser
download). The job list shows three providers' jobs, a job page draws its loss curve with one point
per step, the playground streams two fake models' replies side by side, and no page logs a console
error. With TUNEPORT_UI_SCREENSHOTS=DIR each page is also saved there (docs/ holds the ones in the
README)."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.fakes.openai_server import serving_openai
from tests.ui_helpers import LOSS_STEPS, VALID_EVERY, seeded_store, serving
from tuneport.cli.ui.app import UISettings

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
# what a headless Chromium needs on a machine without a network (see .ci/run)
FLAGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
KEY = "sk-ui-browser-0123456789abcdef"

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    # never skipped: .ci/run installs chromium when it is absent, so a missing one is a failure
    assert Path(CHROMIUM).exists(), f"{CHROMIUM} not found: apt-get install chromium"
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=FLAGS)
        yield browser
        browser.close()


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    context = browser.new_context(viewport={"width": 1280, "height": 860})
    page = context.new_page()
    problems: list[str] = []
    page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: problems.append(str(e)))
    page.problems = problems
    yield page
    context.close()
    assert problems == [], problems  # no console errors on any page the test opened


def _shot(page: Any, name: str, tmp_path: Path) -> None:
    page.screenshot(path=str(tmp_path / f"{name}.png"), full_page=True)
    folder = os.environ.get("TUNEPORT_UI_SCREENSHOTS")
    if folder:
        page.screenshot(path=str(Path(folder) / f"ui-{name}.png"), full_page=True)


def test_job_list_and_job_page(page: Any, tmp_path: Path) -> None:
    settings = UISettings(store=seeded_store(tmp_path))
    with serving(settings) as url:
        page.goto(url + "/")
        rows = page.locator("#jobs tbody tr")
        assert rows.count() == 3
        providers = {rows.nth(i).locator("td").nth(1).inner_text() for i in range(3)}
        assert providers == {"openai", "vertex", "local"}
        _shot(page, "jobs", tmp_path)

        page.click("text=tp-openai01")
        page.wait_for_selector("svg.loss")
        train = page.locator('polyline[data-series="train"]')
        assert train.get_attribute("data-points") == str(LOSS_STEPS)
        points = train.get_attribute("points") or ""
        assert len(points.split()) == LOSS_STEPS
        valid = page.locator('polyline[data-series="valid"]').get_attribute("data-points")
        assert valid == str(LOSS_STEPS // VALID_EVERY)
        box = page.locator("svg.loss").bounding_box()
        assert box and box["width"] > 300 and box["height"] > 100  # drawn, not just in the DOM
        _shot(page, "job", tmp_path)


def test_jobs_list_updates_live(page: Any, tmp_path: Path) -> None:
    from tests.ui_helpers import record
    from tuneport.schemas import JobState

    store = seeded_store(tmp_path)
    with serving(UISettings(store=store)) as url:
        page.goto(url + "/")
        page.wait_for_timeout(300)  # the first poll records what is shown
        store.add(record("tp-newjob01", "together", "llama-3-8b", JobState.RUNNING, 30))
        page.wait_for_selector('tr[data-job="tp-newjob01"]', timeout=15_000)
        assert page.locator("#jobs tbody tr").count() == 4


def test_playground_gets_replies_from_two_models(
    page: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with (
        serving_openai(monkeypatch, KEY) as fake,
        serving(UISettings(store=seeded_store(tmp_path))) as url,
    ):
        page.goto(url + "/chat")
        page.fill("textarea[name=targets]", "openai:gpt-4.1-mini\nopenai:gpt-4o-mini")
        page.fill("textarea[name=prompt]", "Who are you?")
        page.click("text=Send to all")
        page.wait_for_selector('pre.answer[data-done="yes"] >> nth=1', timeout=20_000)
        answers = page.locator("pre.answer")
        texts = sorted(answers.nth(i).inner_text() for i in range(answers.count()))
        assert texts == [
            "echo[gpt-4.1-mini]: Who are you?",
            "echo[gpt-4o-mini]: Who are you?",
        ]
        assert len(fake.chats) == 2 and all(c["stream"] for c in fake.chats)
        _shot(page, "playground", tmp_path)


def test_plan_page_prices_the_sample(page: Any, tmp_path: Path) -> None:
    sample = Path(__file__).resolve().parent.parent / "fixtures" / "sample" / "chat.jsonl"
    with serving(UISettings(store=seeded_store(tmp_path))) as url:
        page.goto(url + "/plan")
        page.fill("input[name=data]", str(sample))
        page.click("text=Price it")
        page.wait_for_selector("#plan:not([hidden]) tbody tr", timeout=30_000)
        assert page.locator("#plan tbody tr").count() > 5
        _shot(page, "plan", tmp_path)


def test_cleanup_asks_first_and_a_dismissed_dialog_changes_nothing(
    page: Any, tmp_path: Path
) -> None:
    store = seeded_store(tmp_path)
    with serving(UISettings(store=store)) as url:
        page.goto(url + "/jobs/tp-local001")
        asked: list[str] = []

        def dismiss(dialog: Any) -> None:
            asked.append(dialog.message)
            dialog.dismiss()

        page.on("dialog", dismiss)
        page.click("text=Clean up resources")
        page.wait_for_timeout(200)
        assert asked and "tp-local001" in asked[0]
        assert page.locator("#action-result").inner_text() == ""


def test_reports_page_renders_an_eval_comparison(page: Any, tmp_path: Path) -> None:
    from tests.test_ui import _report

    _report(tmp_path / "reports")
    settings = UISettings(store=seeded_store(tmp_path), reports=[tmp_path / "reports"])
    with serving(settings) as url:
        page.goto(url + "/reports")
        page.click("text=held.jsonl")
        page.wait_for_selector("#summary tbody tr")
        assert page.locator("#summary tbody tr").count() == 2
        assert page.locator("#answers tbody tr").count() == 3
        _shot(page, "report", tmp_path)
