"""The approximate count (base model's tokenizer not on this machine) against exact counts with
real chat templates: the template's tokens are counted, and the stated band holds on short and
long rows (tests/fakes/chat_templates.py builds the tokenizers)."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest

from tests.fakes.chat_templates import TEMPLATES, template_tokenizers
from tuneport.providers import registry
from tuneport.schemas import Example
from tuneport.tokens.approx import ScaledTextCounter
from tuneport.tokens.hf import HFChatTemplateCounter, load_hf_tokenizer, own_or_approx
from tuneport.tokens.measure import count_path
from tuneport.tokens.templates import (
    KNOWN_TEMPLATE_BAND,
    UNKNOWN_TEMPLATE_BAND,
    template_cost,
)

PARA = (
    "The quick brown fox jumps over the lazy dog while the committee reviews the quarterly "
    "budget, which, according to several analysts, will likely exceed expectations. "
)
CODE = (
    "def fib(n):\n    if n < 2:\n        return n\n    return fib(n - 1) + fib(n - 2)\n\n"
    "print([fib(i) for i in range(10)])\n"
)


def _rows() -> dict[str, list[dict[str, object]]]:
    short = [  # the issue's 60 short rows: 660 text tokens, 1,560 with ChatML
        {
            "messages": [
                {"role": "system", "content": "Be terse."},
                {"role": "user", "content": f"Capital of country {i}?"},
                {"role": "assistant", "content": "Paris."},
            ]
        }
        for i in range(60)
    ]
    short_no_system = [
        {
            "messages": [
                {"role": "user", "content": f"What is {i} plus {i}?"},
                {"role": "assistant", "content": f"{2 * i}"},
            ]
        }
        for i in range(60)
    ]
    long = [
        {
            "messages": [
                {"role": "system", "content": "You are a careful assistant. " + PARA},
                {"role": "user", "content": PARA * (4 + i) + "\n\n" + CODE},
                {"role": "assistant", "content": PARA * 10 + "```python\n" + CODE * 3 + "```"},
                {"role": "user", "content": "And in French? " + PARA * 2},
                {"role": "assistant", "content": "Le renard brun saute sur le chien. " * 20},
            ]
        }
        for i in range(6)
    ]
    return {"short": short, "short, no system": short_no_system, "long": long}


ROWS = _rows()


@pytest.fixture(scope="module")
def exact(tmp_path_factory: pytest.TempPathFactory) -> dict[str, HFChatTemplateCounter]:
    """Each family's exact counter; one of them saved and loaded as a local model's folder is
    (the path `own_or_approx` takes), the others used as built."""
    tokenizers = template_tokenizers(list(TEMPLATES))
    folder = tmp_path_factory.mktemp("templates") / "llama-3.1"
    tokenizers["llama-3.1"].save_pretrained(folder)
    loaded = load_hf_tokenizer(str(folder))
    assert loaded is not None and loaded.chat_template == tokenizers["llama-3.1"].chat_template
    tokenizers["llama-3.1"] = loaded
    return {family: HFChatTemplateCounter(tok, family) for family, tok in tokenizers.items()}


# a model id of each family as the backends spell it (Together, Fireworks, Hugging Face)
FAMILY_MODELS = {
    "llama-3.1": "meta-llama/Meta-Llama-3.1-8B-Instruct-Reference",
    "llama-3": "meta-llama/Meta-Llama-3-8B-Instruct",
    "qwen2.5": "accounts/fireworks/models/qwen2p5-7b-instruct",
    "chatml": "Qwen/Qwen3-8B",
    "mistral": "mistralai/Mistral-7B-Instruct-v0.3",
}


def test_each_model_id_finds_its_template_family() -> None:
    for family, model in FAMILY_MODELS.items():
        cost = template_cost([model])
        assert cost is not None and cost.family == family, model
    assert template_cost(["some-org/unheard-of-model"]) is None


def test_the_issues_short_rows_count_the_chatml_tokens(
    exact: dict[str, HFChatTemplateCounter],
) -> None:
    """60 short rows: 660 text tokens; ChatML makes them 1,560, which the approximation now
    says (it said 660)."""
    rows = [Example.model_validate(r) for r in ROWS["short"]]
    exact_total = sum(exact["chatml"].count(r) for r in rows)
    approx = own_or_approx(["Qwen/Qwen3-8B"])
    assert isinstance(approx, ScaledTextCounter)
    assert sum(ScaledTextCounter(1.0, 0.3, "text only").count(r) for r in rows) == 660
    assert exact_total == 1560
    assert sum(approx.count(r) for r in rows) == 1560


@pytest.mark.parametrize("family", list(TEMPLATES))
@pytest.mark.parametrize("rows", list(ROWS))
def test_the_stated_band_holds_for_each_template(
    exact: dict[str, HFChatTemplateCounter], family: str, rows: str
) -> None:
    """|exact - approx| <= band x approx (the budget guard's worst case is approx x (1 + band))
    for the family's own figures (±30 %) and for a model whose template is not known (±60 %)."""
    records = [Example.model_validate(r) for r in ROWS[rows]]
    exact_total = sum(exact[family].count(r) for r in records)
    known = own_or_approx([FAMILY_MODELS[family]])
    unknown = own_or_approx(["some-org/unheard-of-model"])
    for counter, band in ((known, KNOWN_TEMPLATE_BAND), (unknown, UNKNOWN_TEMPLATE_BAND)):
        assert isinstance(counter, ScaledTextCounter) and counter.error_band == band
        approx = sum(counter.count(r) for r in records)
        assert abs(exact_total - approx) <= band * approx, (family, rows, exact_total, approx)


def test_without_the_template_tokens_the_old_band_did_not_hold(
    exact: dict[str, HFChatTemplateCounter],
) -> None:
    """What the issue saw: texts alone claimed ±30 % and were 58 % under ChatML's count."""
    records = [Example.model_validate(r) for r in ROWS["short"]]
    exact_total = sum(exact["chatml"].count(r) for r in records)
    texts = sum(ScaledTextCounter(1.0, 0.3, "text only").count(r) for r in records)
    assert abs(exact_total - texts) > 0.3 * texts


def test_raw_lines_count_like_records(tmp_path: Path) -> None:
    """The fast path (raw JSONL lines, worker processes) adds the same template tokens."""
    path = tmp_path / "rows.jsonl"
    rows = ROWS["short"] + ROWS["short, no system"] + ROWS["long"]
    path.write_bytes(b"\n".join(orjson.dumps(r) for r in rows) + b"\n")
    for model in (*FAMILY_MODELS.values(), "some-org/unheard-of-model"):
        counter = own_or_approx([model])
        counts = count_path(path, counter)
        assert list(counts.tokens) == [counter.count(Example.model_validate(r)) for r in rows]


@pytest.mark.parametrize(
    ("provider", "model", "family"),
    [
        ("together", "meta-llama/Meta-Llama-3.1-8B-Instruct-Reference", "llama-3.1"),
        ("fireworks", "accounts/fireworks/models/qwen2p5-7b-instruct", "qwen2.5"),
        ("local", "example-org/Qwen2.5-7B-Instruct-test-copy", "qwen2.5"),
    ],
)
def test_backends_count_the_template_when_the_tokenizer_is_not_here(
    provider: str, model: str, family: str
) -> None:
    counter = registry.counter_for(provider, model)
    assert not counter.exact and counter.error_band == KNOWN_TEMPLATE_BAND
    assert f"{family} chat template" in counter.label
