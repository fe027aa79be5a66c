"""``tuneport eval`` against the deterministic fake backend: metrics, files, retries, budget."""

from __future__ import annotations

import csv
import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.fakes.fake_provider import FakeProvider
from tuneport.cli.main import run
from tuneport.curate.stats import iter_input
from tuneport.errors import AuthError, BudgetError, InputError
from tuneport.evaluate.run import (
    CostEstimate,
    CostLine,
    EvalOptions,
    EvalTarget,
    case_from_record,
    cases_from_records,
    check_eval_budget,
    estimate_cost,
    report_paths,
    resolve_targets,
    run_eval,
)
from tuneport.providers import registry
from tuneport.schemas import Example, Message, PreferenceExample

HELDOUT = Path(__file__).resolve().parent.parent / "fixtures" / "curate" / "heldout.jsonl"

# Hand-computed from fixtures/curate/heldout.jsonl (see tests/test_metrics.py for the rules):
# good (parrot): EM 1,1,0,1,0  F1 1,1,6/7,1,3/4    ROUGE-L 1,1,0.8,1,0.8
# bad ("I do not know."): EM 0  F1 0,0,0,0,8/9     ROUGE-L 0,0,0,0,0.8
GOOD = {"exact_match": 3 / 5, "token_f1": (4 + 6 / 7 - 1 + 3 / 4) / 5, "rouge_l": 4.6 / 5}
BAD = {"exact_match": 0.0, "token_f1": (8 / 9) / 5, "rouge_l": 0.8 / 5}


@pytest.fixture(autouse=True)
def fake_backend(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    registry.register("fake", "tests.fakes.fake_provider:BACKEND")
    FakeProvider.calls.clear()
    yield
    FakeProvider.calls.clear()
    registry.unregister("fake")


def load_cases() -> list:  # type: ignore[type-arg]
    return cases_from_records(iter_input(HELDOUT), source=str(HELDOUT))


def test_prompt_is_every_turn_before_the_last_assistant_turn() -> None:
    cases = load_cases()
    assert len(cases) == 5
    multi = cases[3]
    assert [m.role for m in multi.prompt] == ["system", "user", "assistant", "user"]
    assert multi.reference == "blue"
    assert multi.line == 4
    pref = PreferenceExample(
        prompt=[Message(role="user", content="q")],
        chosen=Message(role="assistant", content="yes"),
        rejected=Message(role="assistant", content="no"),
    )
    case = case_from_record(0, 9, pref, where="x:9")
    assert case.reference == "yes" and len(case.prompt) == 1
    with pytest.raises(InputError, match="no assistant turn") as info:
        case_from_record(0, 7, Example(messages=[Message(role="user", content="q")]), where="f:7")
    assert info.value.where == "f:7"


def test_cli_compares_two_models_and_writes_reports(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "report"
    code = run(
        [
            "eval", "--data", str(HELDOUT), "--model", "fake:good", "--model", "fake:bad",
            "-o", str(out), "--concurrency", "3",
        ]
    )  # fmt: skip
    captured = capsys.readouterr()
    assert code == 0, captured.err
    assert "fake:good" in captured.out and "0.600" in captured.out
    assert "cost unknown" in captured.err  # the fake has no price
    paths = report_paths(out)
    report = json.loads(paths["json"].read_text())
    summary = {s["spec"]: s for s in report["summary"]}
    for spec, expected in (("fake:good", GOOD), ("fake:bad", BAD)):
        for metric, value in expected.items():
            assert summary[spec][metric] == pytest.approx(value), (spec, metric)
        assert summary[spec]["answered"] == 5 and summary[spec]["failed"] == 0
    assert "settings" not in report["targets"][0]
    # every prompt went to both models, with the options asked for
    assert len(FakeProvider.calls) == 10
    assert {c[2].max_tokens for c in FakeProvider.calls} == {512}
    assert {c[2].temperature for c in FakeProvider.calls} == {0.0}

    md = paths["md"].read_text()
    assert "| fake:good | 5 | 0 | 0.600 |" in md
    assert (
        "| 4 | 4 | system: Answer briefly.<br>user: say: red<br>assistant: red<br>user: say: blue"
        in md
    )
    assert "I do not know.<br>_EM 0 · F1 0.89 · RL 0.80_" in md

    with paths["csv"].open(newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) == 5
    assert rows[2]["fake:good answer"] == "the cat on mat"
    assert float(rows[2]["fake:good token_f1"]) == pytest.approx(6 / 7, abs=1e-4)
    assert float(rows[2]["fake:good rouge_l"]) == pytest.approx(0.8)
    assert rows[0]["fake:bad exact_match"] == "0.0000"

    # outputs are never overwritten without --force
    code = run(["eval", "--data", str(HELDOUT), "--model", "fake:good", "-o", str(out)])
    assert code == 3
    assert "already exists" in capsys.readouterr().err


def test_retries_then_succeeds_with_injected_sleep() -> None:
    cases = load_cases()[:2]
    delays: list[float] = []
    report = run_eval(
        cases,
        resolve_targets(["fake:flaky"]),
        options=EvalOptions(attempts=3, retry_delay=0.5, concurrency=2),
        sleep=delays.append,
    )
    answers = [row[0] for row in report.answers]
    assert [a.attempts for a in answers] == [3, 3]
    assert all(a.error is None and a.exact_match == 1.0 for a in answers)
    assert sorted(delays) == [0.5, 0.5, 1.0, 1.0]  # exponential backoff per call


def test_failures_after_retries_are_recorded_and_exit_nonzero(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    report = run_eval(
        load_cases(),
        resolve_targets(["fake:broken", "fake:good"]),
        options=EvalOptions(attempts=2),
        sleep=lambda _: None,
    )
    broken, good = report.summary
    assert (broken.answered, broken.failed, broken.exact_match) == (0, 5, 0.0)
    assert good.answered == 5
    assert all(row[0].error and "fake outage" in row[0].error for row in report.answers)
    assert all(row[0].attempts == 2 for row in report.answers)

    code = run(
        ["eval", "--data", str(HELDOUT), "--model", "fake:broken", "--attempts", "1",
         "-o", str(tmp_path / "r.md")]
    )  # fmt: skip
    assert code == 4
    assert "5 answer(s) failed" in capsys.readouterr().err
    assert "**error:** fake outage" in (tmp_path / "r.md").read_text()


def test_auth_error_stops_the_run() -> None:
    with pytest.raises(AuthError):
        run_eval(load_cases(), resolve_targets(["fake:locked", "fake:good"]), sleep=lambda _: None)
    assert len([c for c in FakeProvider.calls if c[0] == "locked"]) <= 5


def test_unknown_model_spec_and_duplicates(capsys: pytest.CaptureFixture[str]) -> None:
    assert run(["eval", "--data", str(HELDOUT), "--model", "nobody-knows"]) == 3
    assert "provider:model" in capsys.readouterr().err
    assert (
        run(["eval", "--data", str(HELDOUT), "--model", "fake:good", "--model", "fake:good"]) == 3
    )


def test_max_cost_refuses_unpriced_models(capsys: pytest.CaptureFixture[str]) -> None:
    code = run(["eval", "--data", str(HELDOUT), "--model", "fake:good", "--max-cost", "5"])
    assert code == 5
    assert "no inference price for fake:good" in capsys.readouterr().err
    assert FakeProvider.calls == []


def test_cost_estimate_for_a_priced_model_and_budget_guard() -> None:
    cases = load_cases()
    target = EvalTarget(spec="openai:gpt-4.1-mini", provider="openai", model="gpt-4.1-mini")
    local = EvalTarget(spec="local:abc", provider="local", model="local:abc")
    estimate = estimate_cost(cases, [target, local], max_tokens=100)
    priced, free = estimate.lines
    assert free.free and free.cost_usd is None
    assert priced.exact and priced.prompt_tokens is not None and priced.prompt_tokens > 20
    assert priced.max_output_tokens == 500
    rate_in, rate_out = priced.input_per_million, priced.output_per_million
    assert rate_in and rate_out
    expected = (priced.prompt_tokens * rate_in + 500 * rate_out) / 1e6
    assert priced.cost_usd == pytest.approx(expected)
    check_eval_budget(estimate, 1.0)  # far below a dollar
    with pytest.raises(BudgetError, match="set by --max-cost"):
        check_eval_budget(estimate, expected / 2)


def test_budget_uses_the_top_of_an_approximate_band() -> None:
    est = CostEstimate(
        lines=[CostLine(spec="v", max_output_tokens=10, cost_usd=1.0, exact=False, error_band=0.25)]
    )
    check_eval_budget(est, 1.25)
    with pytest.raises(BudgetError):
        check_eval_budget(est, 1.2)


def test_paid_run_needs_yes_when_not_interactive(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("sys.stdin.isatty", lambda: False)
    code = run(["eval", "--data", str(HELDOUT), "--model", "openai:gpt-4.1-mini"])
    assert code == 3
    err = capsys.readouterr().err
    assert "pass --yes" in err and "openai:gpt-4.1-mini: ≈$" in err


def test_provider_max_concurrency_caps_calls_in_flight() -> None:
    cases = load_cases()
    capped = FakeProvider(max_concurrency=1)
    free = FakeProvider()
    targets = [
        EvalTarget(spec="capped", provider="fake", model="slow"),
        EvalTarget(spec="free", provider="fake", model="slow"),
    ]
    report = run_eval(
        cases,
        targets,
        options=EvalOptions(concurrency=6),
        providers={"capped": capped, "free": free},
    )
    assert capped.peak == 1
    assert free.peak > 1
    assert [s.exact_match for s in report.summary] == [pytest.approx(0.6)] * 2


def test_declining_the_cost_prompt_sends_nothing(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    asked: list[str] = []
    monkeypatch.setattr("sys.stdin.isatty", lambda: True)
    monkeypatch.setattr("typer.confirm", lambda text, **_: asked.append(text) or False)
    code = run(["eval", "--data", str(HELDOUT), "--model", "openai:gpt-4.1-mini"])
    assert code == 5
    assert asked and asked[0].startswith("Spend up to $")
    assert "nothing was sent" in capsys.readouterr().err


def test_eval_drives_the_real_openai_backend_on_a_local_fake_server(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from tests.fakes.openai_server import FakeOpenAI

    key = "sk-test-EVAL123456789"
    with FakeOpenAI(api_key=key) as server:
        monkeypatch.setenv("OPENAI_API_KEY", key)
        monkeypatch.setenv("OPENAI_BASE_URL", server.base_url)
        server.fail("POST", "/chat/completions", 500, headers={"retry-after-ms": "1"})
        tuned = "ft:gpt-4.1-mini-2025-04-14:org::abc"
        out = tmp_path / "cmp"
        code = run(
            ["eval", "--data", str(HELDOUT), "--model", tuned, "--model", "openai:gpt-4.1-nano",
             "--max-tokens", "64", "--max-cost", "1", "--yes", "-o", str(out)]
        )  # fmt: skip
        captured = capsys.readouterr()
        assert code == 0, captured.err
        assert f"{tuned}: ≈$" in captured.err  # priced before any call
        assert key not in captured.err + captured.out
        chats = server.chats
        assert len(chats) == 10  # one per prompt and model
        assert len(server.calls("POST", "/chat/completions")) == 11  # + the retried 500
        assert sorted(c["model"] for c in chats) == sorted([tuned] * 5 + ["gpt-4.1-nano"] * 5)
        assert {c["max_completion_tokens"] for c in chats} == {64}
        assert [m["role"] for m in chats[0]["messages"]] in (
            ["user"],
            ["system", "user", "assistant", "user"],
        )
    report = json.loads(report_paths(out)["json"].read_text())
    first = report["answers"][0]
    assert first[0]["text"] == f"echo[{tuned}]: say: Paris"
    assert first[1]["text"] == "echo[gpt-4.1-nano]: say: Paris"
    assert first[0]["exact_match"] == 0.0 and 0 < first[0]["token_f1"] < 1
    assert [s["answered"] for s in report["summary"]] == [5, 5]
    assert key not in report_paths(out)["md"].read_text()
