"""One counting path: estimate, plan and train's estimate step give the same examples, tokens and
cost for every bundled fixture, whatever the file layout (JSONL, JSON array, Alpaca/ShareGPT
JSON, Parquet, a Hugging Face folder)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from tuneport.cli.main import run
from tuneport.data import load_records
from tuneport.data.rows import canonical_dict
from tuneport.errors import InputError
from tuneport.jobs.launch import NotConfirmedError, launch
from tuneport.progress import NullProgress
from tuneport.schemas import Estimate, JobConfig

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"
BUNDLED = [
    *sorted((FIXTURES / "sample").glob("*.jsonl")),
    *sorted(p for p in (FIXTURES / "real").iterdir() if p.suffix in (".json", ".jsonl")),
]
BUNDLED = [p for p in BUNDLED if p.name != "llamafactory_dataset_info.json"]  # not a dataset
MODELS = [("openai", "gpt-4.1-mini"), ("vertex", "gemini-2.5-flash"), ("local", "*")]
FIELDS = ("examples", "tokens", "epochs", "billed_tokens", "cost_usd", "exact")


class _NoUpload:
    """A backend that must never be reached: the comparison stops at the confirmation."""

    name = "openai"

    def preflight(self, cfg: JobConfig) -> None:
        """No keys needed: nothing is sent."""

    def prepare(self, *args: Any) -> Any:
        raise AssertionError("train went past its estimate")

    upload = launch = prepare


def _method(path: Path) -> str:
    return "dpo" if load_records(path)[0].kind == "preference" else "sft"


def _layouts(tmp_path: Path, capsys: Any) -> list[Path]:
    """Extra layouts of the sample: a JSON array, Parquet and a Hugging Face folder."""
    records = load_records(FIXTURES / "sample" / "chat.jsonl")
    rows = [canonical_dict(r) for r in records]
    array = tmp_path / "chat.json"  # an OpenAI chat file written as one JSON array
    array.write_text(
        json.dumps(
            [
                {"messages": r["messages"], **({"tools": r["tools"]} if "tools" in r else {})}
                for r in rows
            ]
        ),
        encoding="utf-8",
    )
    parquet = tmp_path / "chat.parquet"
    plain = [  # Parquet rows as datasets writes them: a list of {role, content} structs
        [{"role": m["role"], "content": m["content"]} for m in r["messages"]]
        for r in rows
        if "tools" not in r and all(set(m) <= {"role", "content"} for m in r["messages"])
    ]
    pq.write_table(pa.table({"messages": plain}), parquet)
    hf = tmp_path / "chat.hf"
    src = str(FIXTURES / "sample" / "chat.jsonl")
    assert run(["convert", src, "--to", "local", "-o", str(hf)]) == 0
    capsys.readouterr()
    return [array, parquet, hf]


def _cli_estimate(
    path: Path, provider: str, model: str, method: str, capsys: Any
) -> dict[str, Any]:
    code = run(["estimate", str(path), "-p", provider, "-m", model, "--method", method, "--json"])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    doc: dict[str, Any] = json.loads(captured.out)
    return doc


def _cli_plan(path: Path, provider: str, model: str, method: str, capsys: Any) -> dict[str, Any]:
    code = run(["plan", str(path), "-p", provider, "--method", method, "--json"])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    (row,) = [r for r in json.loads(captured.out) if r["model"] == model]
    return dict(row)


def _train_estimate(path: Path, provider: str, model: str, method: str) -> Estimate | None:
    """The estimate ``tuneport train`` shows before asking; ``None`` if the data is refused."""
    seen: list[Estimate] = []
    cfg = JobConfig(provider=provider, model=model, data=path, method=method)  # type: ignore[arg-type]
    try:
        launch(
            cfg,
            provider=_NoUpload(),  # type: ignore[arg-type]
            confirm=lambda est: False,
            on_estimate=seen.append,
            progress=NullProgress(),
        )
    except NotConfirmedError:
        return seen[0]
    except InputError:  # invalid for this backend (exit 1/2): train never prices it
        return None
    raise AssertionError("launch neither refused nor asked")


@pytest.mark.parametrize(("provider", "model"), MODELS)
def test_every_layout_gives_the_same_numbers_everywhere(
    provider: str, model: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    trained = 0
    for path in [*BUNDLED, *_layouts(tmp_path, capsys)]:
        method = _method(path)
        cli = _cli_estimate(path, provider, model, method, capsys)
        row = _cli_plan(path, provider, model, method, capsys)
        assert cli["examples"] > 0, path
        for field in FIELDS:
            assert cli[field] == row[field], (path, field)
        train = _train_estimate(path, provider, model, method)
        if train is not None:
            trained += 1
            for field in FIELDS:
                assert getattr(train, field) == cli[field], (path, field)
    assert trained >= 4  # most fixtures are valid for every backend


def test_json_array_is_priced_like_its_jsonl(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Regression: estimate counted an OpenAI chat JSON array as JSONL lines → 0 examples, $0,
    and ``--max-cost`` let it through."""
    array = _layouts(tmp_path, capsys)[0]
    jsonl = FIXTURES / "sample" / "chat.jsonl"
    a = _cli_estimate(array, "openai", "gpt-4.1-mini", "sft", capsys)
    b = _cli_estimate(jsonl, "openai", "gpt-4.1-mini", "sft", capsys)
    assert a["examples"] == b["examples"] == 26
    assert (a["tokens"], a["cost_usd"]) == (b["tokens"], b["cost_usd"])
    code = run(["estimate", str(array), "-p", "openai", "-m", "gpt-4.1", "--max-cost", "0.0001"])
    assert code == 5
