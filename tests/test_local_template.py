"""Chat template, pad token and assistant-only labels of the local backend (tokenizer level)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.fakes.tiny_model import EOS, PAD, build_tiny_model
from tuneport.errors import ConfigError
from tuneport.providers.local import template as T

CONVERSATION: list[dict[str, Any]] = [
    {"role": "system", "content": "Answer briefly."},
    {"role": "user", "content": "hi"},
    {"role": "assistant", "content": "Hello there"},
    {"role": "user", "content": "what is the capital of France?"},
    {"role": "assistant", "content": "Paris"},
]


@pytest.fixture(scope="session")
def tiny_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tiny_model(tmp_path_factory.mktemp("tiny") / "model")


@pytest.fixture(scope="session")
def bare_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """No chat template and no pad token."""
    return build_tiny_model(
        tmp_path_factory.mktemp("bare") / "model", chat_template=False, pad_token=False
    )


def _tok(path: Path) -> Any:
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(str(path))


def _trained_text(tok: Any, out: dict[str, list[int]]) -> list[str]:
    """The decoded runs of consecutive trained tokens."""
    runs: list[list[int]] = []
    previous = False
    for token, label in zip(out["input_ids"], out["labels"], strict=True):
        trained = label != T.IGNORE_INDEX
        if trained:
            assert label == token
            if not previous:
                runs.append([])
            runs[-1].append(token)
        previous = trained
    return [tok.decode(run) for run in runs]


def test_tiny_model_has_pad_distinct_from_eos(tiny_dir: Path) -> None:
    tok = _tok(tiny_dir)
    assert tok.pad_token == PAD and tok.eos_token == EOS
    assert tok.pad_token_id != tok.eos_token_id
    assert T.has_generation_markers(tok.chat_template)
    assert T.choose_pad_token(tok) is False and tok.pad_token == PAD


def test_labels_cover_only_assistant_turns_each_ending_with_eos(tiny_dir: Path) -> None:
    tok = _tok(tiny_dir)
    stop = T.stop_token_ids(tok)
    out = T.tokenize_chat(tok, CONVERSATION, template=T.masking_template(tok), stop_ids=stop)
    assert _trained_text(tok, out) == [f"Hello there{EOS}", f"Paris{EOS}"]
    # every prompt token (system, user, role headers) is masked
    first_trained = next(i for i, lab in enumerate(out["labels"]) if lab != T.IGNORE_INDEX)
    prompt = tok.decode(out["input_ids"][:first_trained])
    assert "Answer briefly." in prompt and "hi" in prompt and prompt.endswith("assistant\n")
    assert all(lab == T.IGNORE_INDEX for lab in out["labels"][:first_trained])


def test_weight_zero_turn_is_not_trained(tiny_dir: Path) -> None:
    tok = _tok(tiny_dir)
    messages = [dict(m) for m in CONVERSATION]
    messages[2]["weight"] = 0
    out = T.tokenize_chat(
        tok, messages, template=T.masking_template(tok), stop_ids=T.stop_token_ids(tok)
    )
    assert _trained_text(tok, out) == [f"Paris{EOS}"]
    assert "Hello there" in tok.decode(out["input_ids"])  # still in the context


def test_default_template_and_pad_fallback_for_a_bare_model(bare_dir: Path) -> None:
    tok = _tok(bare_dir)
    assert tok.pad_token is None and not tok.chat_template
    assert T.set_chat_template(tok) == "tuneport default"
    assert T.choose_pad_token(tok) is False  # reuses <unk> rather than adding a token
    assert tok.pad_token == "<unk>" and tok.pad_token_id != tok.eos_token_id
    out = T.tokenize_chat(
        tok, CONVERSATION, template=T.masking_template(tok), stop_ids=T.stop_token_ids(tok)
    )
    text = tok.decode(out["input_ids"])
    assert text.startswith("<s>### System:\nAnswer briefly.\n\n### User:\nhi\n\n### Assistant:\n")
    assert _trained_text(tok, out) == [f"Hello there{EOS}", f"Paris{EOS}"]


def test_pad_token_is_added_when_nothing_can_be_reused(bare_dir: Path) -> None:
    tok = _tok(bare_dir)
    tok.unk_token = None
    before = len(tok)
    assert T.choose_pad_token(tok) is True
    assert tok.pad_token == T.ADDED_PAD_TOKEN and len(tok) == before + 1
    assert tok.pad_token_id != tok.eos_token_id


def test_prefix_rendering_fallback_finds_the_same_turns(tiny_dir: Path) -> None:
    tok = _tok(tiny_dir)
    out = T.tokenize_chat(tok, CONVERSATION, template=None, stop_ids=T.stop_token_ids(tok))
    # the turn is everything the template adds for it: the reply, EOS and the newline after it
    assert _trained_text(tok, out) == [f"Hello there{EOS}\n", f"Paris{EOS}\n"]


def test_eos_is_inserted_when_the_template_ends_turns_without_it(tiny_dir: Path) -> None:
    tok = _tok(tiny_dir)
    tok.chat_template = (
        "{% for m in messages %}{{ m['role'] }}: "
        "{% if m['role'] == 'assistant' %}{% generation %}{{ m['content'] }}\n{% endgeneration %}"
        "{% else %}{{ m['content'] }}\n{% endif %}{% endfor %}"
        "{% if add_generation_prompt %}assistant: {% endif %}"
    )
    out = T.tokenize_chat(
        tok, CONVERSATION, template=T.masking_template(tok), stop_ids=T.stop_token_ids(tok)
    )
    assert _trained_text(tok, out) == [f"Hello there\n{EOS}", f"Paris\n{EOS}"]


def test_non_prefix_preserving_template_is_refused(tiny_dir: Path) -> None:
    tok = _tok(tiny_dir)
    # renders the number of messages first: earlier prefixes differ from the full rendering
    tok.chat_template = (
        "{{ messages | length }}{% for m in messages %}{{ m['content'] }}{% endfor %}"
        "{% if add_generation_prompt %}>{% endif %}"
    )
    with pytest.raises(ConfigError, match="prefix-preserving"):
        T.tokenize_chat(tok, CONVERSATION, template=None, stop_ids=T.stop_token_ids(tok))


def test_truncation_keeps_the_start(tiny_dir: Path) -> None:
    tok = _tok(tiny_dir)
    out = T.tokenize_chat(
        tok,
        CONVERSATION,
        template=T.masking_template(tok),
        stop_ids=T.stop_token_ids(tok),
        max_length=10,
    )
    assert len(out["input_ids"]) == len(out["labels"]) == 10


def test_stop_ids_merge_generation_config_eos(tiny_dir: Path) -> None:
    tok = _tok(tiny_dir)
    assert T.stop_token_ids(tok, [7, tok.eos_token_id]) == [tok.eos_token_id, 7]
    assert T.stop_token_ids(tok, 9) == [tok.eos_token_id, 9]


def test_lora_presets_and_overrides() -> None:
    from tuneport.providers.local.recipe_config import LORA_PRESETS, LocalOptions

    assert LocalOptions().lora_config() == LORA_PRESETS["default"]
    assert LORA_PRESETS["default"].r == 16 and LORA_PRESETS["default"].alpha == 32
    assert LORA_PRESETS["default"].target_modules == "all-linear"
    custom = LocalOptions(lora="large", lora_r=32, target_modules="q_proj, v_proj").lora_config()
    assert (custom.r, custom.alpha, custom.dropout) == (32, 128, 0.05)
    assert custom.target_modules == ["q_proj", "v_proj"]
    assert LocalOptions(lora_dropout=0.0).lora_config().dropout == 0.0
