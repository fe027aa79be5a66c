"""Chat template, pad token and assistant-only labels for local SFT (tokenizer-level, no torch).

The rules this module enforces, whatever model comes in:

* The model's own chat template is used. A model without one gets :data:`DEFAULT_CHAT_TEMPLATE`
  (plain ``### Role:`` headers built from the tokenizer's own bos/eos tokens, so no new tokens
  and no resized embeddings), or the Jinja file given with ``--set chat_template=PATH``.
* Loss falls on assistant tokens only. Assistant spans come from the template's
  ``{% generation %}`` markers (the model's template, or TRL's training variant of a known
  template); for other templates they are found by rendering growing prefixes of the
  conversation. An assistant turn with ``weight: 0`` is excluded from the loss.
* Every trained assistant turn ends with a stop token (EOS or one of the generation config's
  EOS ids); where the template does not emit one, EOS is inserted so the model learns to stop.
* The pad token is never EOS (otherwise the collator would hide the real EOS from the loss or
  the attention): an existing pad, pad-like or reserved token, or ``unk`` is reused; only if none
  exists is ``<|pad|>`` added (the caller then resizes the embeddings).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from tuneport.errors import ConfigError

IGNORE_INDEX = -100
ADDED_PAD_TOKEN = "<|pad|>"

# Used only when a model has no chat template. Documented in the README; {% generation %}
# markers make `return_assistant_tokens_mask` (and TRL's assistant_only_loss) work, and the EOS
# inside them teaches the model to stop after each reply.
DEFAULT_CHAT_TEMPLATE = (
    "{{- bos_token if bos_token else '' }}"
    "{%- if tools %}{{- '### Tools:\\n' + (tools | tojson) + '\\n\\n' }}{%- endif %}"
    "{%- for message in messages %}"
    "{%- if message['role'] == 'assistant' %}"
    "{{- '### Assistant:\\n' }}"
    "{%- generation %}"
    "{%- if message['content'] %}{{- message['content'] }}{%- endif %}"
    "{%- if message['tool_calls'] %}"
    "{{- '<tool_calls>' + (message['tool_calls'] | tojson) + '</tool_calls>' }}"
    "{%- endif %}"
    "{{- eos_token }}"
    "{%- endgeneration %}"
    "{{- '\\n\\n' }}"
    "{%- else %}"
    "{{- '### ' + (message['role'] | capitalize) + ':\\n' }}"
    "{{- (message['content'] or '') + '\\n\\n' }}"
    "{%- endif %}"
    "{%- endfor %}"
    "{%- if add_generation_prompt %}{{- '### Assistant:\\n' }}{%- endif %}"
)

_GENERATION = re.compile(r"\{%-?\s*generation\s*-?%\}")
_PAD_LIKE = (
    "<|finetune_right_pad_id|>",
    "<|pad|>",
    "<pad>",
    "[PAD]",
    "<|padding|>",
    "<|PAD_TOKEN|>",
)


def has_generation_markers(template: str | None) -> bool:
    return bool(template) and _GENERATION.search(template or "") is not None


def set_chat_template(tokenizer: Any, override: str | None = None) -> str:
    """Give ``tokenizer`` the template to train with; returns where it came from."""
    if override is not None:
        tokenizer.chat_template = override
        return "file"
    template = tokenizer.chat_template
    if isinstance(template, dict):  # named variants: train with the default one
        tokenizer.chat_template = template.get("default") or next(iter(template.values()))
        return "model"
    if not template:
        tokenizer.chat_template = DEFAULT_CHAT_TEMPLATE
        return "tuneport default"
    return "model"


def masking_template(tokenizer: Any) -> str | None:
    """A template with ``{% generation %}`` markers equivalent to the tokenizer's, if one exists.

    ``None`` means: find assistant spans by prefix rendering instead.
    """
    template = tokenizer.chat_template
    if has_generation_markers(template):
        return str(template)
    try:
        from trl.chat_template_utils import get_training_chat_template

        patched = get_training_chat_template(tokenizer)
    except Exception:  # unknown template (ValueError) or TRL internals changed: fall back
        return None
    return str(patched) if patched and has_generation_markers(patched) else None


def choose_pad_token(tokenizer: Any) -> bool:
    """Make ``tokenizer.pad_token`` a token other than EOS; True if a new token had to be added."""
    eos_id = tokenizer.eos_token_id
    if tokenizer.pad_token is not None and tokenizer.pad_token_id != eos_id:
        return False
    vocab: dict[str, int] = tokenizer.get_vocab()
    for candidate in _PAD_LIKE:
        if candidate in vocab and vocab[candidate] != eos_id:
            tokenizer.pad_token = candidate
            return False
    reserved = [t for t in vocab if t.startswith("<|reserved_special_token_")]
    if reserved:
        tokenizer.pad_token = min(reserved, key=lambda t: vocab[t])
        return False
    if tokenizer.unk_token is not None and tokenizer.unk_token_id != eos_id:
        tokenizer.pad_token = tokenizer.unk_token
        return False
    tokenizer.add_special_tokens({"pad_token": ADDED_PAD_TOKEN})
    return True


def stop_token_ids(tokenizer: Any, generation_eos: int | Sequence[int] | None = None) -> list[int]:
    """EOS plus every EOS id of the model's generation config (end-of-turn tokens)."""
    ids: list[int] = []
    if tokenizer.eos_token_id is not None:
        ids.append(int(tokenizer.eos_token_id))
    if isinstance(generation_eos, int):
        generation_eos = [generation_eos]
    for value in generation_eos or ():
        if int(value) not in ids:
            ids.append(int(value))
    return ids


def clean_messages(messages: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Drop ``None`` fields (datasets fill missing struct fields with None) and parse arguments."""
    cleaned = []
    for message in messages:
        item = {k: v for k, v in message.items() if v is not None}
        calls = item.get("tool_calls")
        if calls:
            item["tool_calls"] = [
                {k: v for k, v in call.items() if v is not None} for call in calls
            ]
        cleaned.append(item)
    return cleaned


def parse_tools(tools: Any) -> list[dict[str, Any]] | None:
    if tools is None or tools == "":
        return None
    if isinstance(tools, str):
        parsed = json.loads(tools)
        return parsed if isinstance(parsed, list) and parsed else None
    return list(tools) or None


def _render(tokenizer: Any, messages: list[dict[str, Any]], **kwargs: Any) -> list[int]:
    out = tokenizer.apply_chat_template(messages, tokenize=True, return_dict=True, **kwargs)
    return list(out["input_ids"])


def _runs(mask: Sequence[int]) -> list[tuple[int, int]]:
    spans, start = [], None
    for i, bit in enumerate([*mask, 0]):
        if bit and start is None:
            start = i
        elif not bit and start is not None:
            spans.append((start, i))
            start = None
    return spans


def assistant_spans(
    tokenizer: Any,
    messages: list[dict[str, Any]],
    *,
    tools: list[dict[str, Any]] | None,
    template: str | None,
) -> tuple[list[int], list[tuple[int, int]]]:
    """Token ids of the conversation and the ``[start, end)`` span of each assistant turn."""
    if template is not None:
        out = tokenizer.apply_chat_template(
            messages,
            tools=tools,
            chat_template=template,
            tokenize=True,
            return_dict=True,
            return_assistant_tokens_mask=True,
        )
        return list(out["input_ids"]), _runs(out["assistant_masks"])
    # No generation markers: the turn is what rendering messages[:i+1] adds to messages[:i]
    # followed by the generation prompt. Needs a prefix-preserving template (checked).
    ids = _render(tokenizer, messages, tools=tools)
    spans = []
    for i, message in enumerate(messages):
        if message.get("role") != "assistant":
            continue
        before = (
            _render(tokenizer, messages[:i], tools=tools, add_generation_prompt=True) if i else []
        )
        upto = _render(tokenizer, messages[: i + 1], tools=tools)
        if upto[: len(before)] != before or ids[: len(upto)] != upto:
            raise ConfigError(
                "the model's chat template is not prefix-preserving, so assistant turns cannot be "
                "located for assistant-only loss",
                hint="pass --set chat_template=FILE.jinja with {% generation %} markers",
            )
        spans.append((len(before), len(upto)))
    return ids, spans


def _ends_with_stop(tokenizer: Any, ids: Sequence[int], stop_ids: Sequence[int]) -> bool:
    for token in reversed(ids):
        if token in stop_ids:
            return True
        if tokenizer.decode([token]).strip():
            return False
    return False


def tokenize_chat(
    tokenizer: Any,
    messages: Iterable[Mapping[str, Any]],
    *,
    tools: Any = None,
    template: str | None,
    stop_ids: Sequence[int],
    max_length: int | None = None,
) -> dict[str, list[int]]:
    """``input_ids`` and ``labels`` (``-100`` outside trained assistant turns) of one conversation.

    ``template`` is a template with generation markers (see :func:`masking_template`) or
    ``None`` for prefix rendering with the tokenizer's own template.
    """
    msgs = clean_messages(messages)
    tool_list = parse_tools(tools)
    ids, spans = assistant_spans(tokenizer, msgs, tools=tool_list, template=template)
    weights = [m.get("weight") for m in msgs if m.get("role") == "assistant"]
    if len(spans) != len(weights) and any(w == 0 for w in weights):
        raise ConfigError(
            f"the chat template rendered {len(spans)} assistant turns for {len(weights)} assistant "
            "messages, so `weight: 0` cannot be applied",
            hint="use a chat template that renders every assistant turn inside {% generation %}",
        )
    eos_id = int(tokenizer.eos_token_id)
    input_ids: list[int] = []
    labels: list[int] = []
    cursor = 0
    for k, (start, end) in enumerate(spans):
        input_ids += ids[cursor:start]
        labels += [IGNORE_INDEX] * (start - cursor)
        turn = list(ids[start:end])
        if not _ends_with_stop(tokenizer, turn, stop_ids):
            turn.append(eos_id)
        trained = k >= len(weights) or weights[k] != 0
        input_ids += turn
        labels += turn if trained else [IGNORE_INDEX] * len(turn)
        cursor = end
    input_ids += ids[cursor:]
    labels += [IGNORE_INDEX] * (len(ids) - cursor)
    if max_length is not None:
        input_ids, labels = input_ids[:max_length], labels[:max_length]
    return {"input_ids": input_ids, "labels": labels}


def prompt_completion_to_messages(row: Mapping[str, Any]) -> list[dict[str, Any]]:
    """A conversational prompt/completion row as one message list (completion = assistant)."""
    prompt, completion = row["prompt"], row["completion"]
    if isinstance(prompt, str):
        prompt = [{"role": "user", "content": prompt}]
    if isinstance(completion, str):
        completion = [{"role": "assistant", "content": completion}]
    return [*prompt, *completion]
