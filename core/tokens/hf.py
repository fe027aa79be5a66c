"""Exact counts with a Hugging Face tokenizer and its chat template (local models)."""

from __future__ import annotations

import os
import warnings
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from tuneport.schemas import Example, Message, PreferenceExample


def _hf_messages(messages: Iterable[Message]) -> list[dict[str, Any]]:
    out = []
    for m in messages:
        d = m.model_dump(mode="json", exclude_none=True, exclude={"weight"})
        d.setdefault("content", "")
        out.append(d)
    return out


class HFChatTemplateCounter:
    """Exact local counts: the model's own tokenizer and chat template."""

    exact = True
    error_band: float | None = None

    def __init__(self, tokenizer: Any, source: str) -> None:
        self._tok = tokenizer
        self.label = f"{source} tokenizer + chat template"

    def _ids(self, messages: list[dict[str, Any]], tools: Any, gen: bool = False) -> int:
        res = self._tok.apply_chat_template(
            messages, tools=tools, tokenize=True, add_generation_prompt=gen
        )
        if isinstance(res, Mapping) or hasattr(res, "keys"):
            res = res["input_ids"]
        return len(res)

    def count_text(self, text: str) -> int:
        return len(self._tok.encode(text, add_special_tokens=False))

    def count(self, record: Example | PreferenceExample) -> int:
        tools = [t.model_dump(mode="json", exclude_none=True) for t in record.tools or ()] or None
        if isinstance(record, Example):
            return self._ids(_hf_messages(record.messages), tools)
        prompt = _hf_messages(record.prompt)
        head = self._ids(prompt, tools, gen=True)
        chosen = self._ids([*prompt, *_hf_messages([record.chosen])], tools) - head
        rejected = self._ids([*prompt, *_hf_messages([record.rejected])], tools) - head
        return head + chosen + rejected


def quiet_transformers() -> None:
    """No log lines or progress bars from transformers / huggingface_hub in tuneport's output.

    Counting examples longer than a model's ``model_max_length`` is the point of counting (the
    limit check reports them), so transformers' "Token indices sequence length is longer than
    the specified maximum" warning is noise here, as are its download/progress bars.
    """
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()  # type: ignore[no-untyped-call]
    hf_logging.disable_progress_bar()  # type: ignore[no-untyped-call]


def load_hf_tokenizer(model: str, *, wildcard: str = "*") -> Any | None:
    """The tokenizer of ``model`` from a local folder or the Hugging Face cache, else ``None``.

    Never downloads; fast when absent. A tokenizer without a chat template is ``None`` too (it
    could not count chat examples as the trainer renders them).
    """
    path = Path(model).expanduser()
    if path.is_dir():
        source = str(path)
    elif model == wildcard or model.startswith((".", "/", "~")) or model.count("/") != 1:
        return None  # the generic entry, a missing path, or no Hub id
    else:
        try:
            from huggingface_hub import try_to_load_from_cache

            cached = try_to_load_from_cache(model, "tokenizer_config.json")
        except Exception:  # not a valid repo id
            return None
        if not isinstance(cached, str):
            return None
        source = model
    try:
        quiet_transformers()
        from transformers import AutoTokenizer

        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)
            warnings.simplefilter("ignore", UserWarning)
            tok = AutoTokenizer.from_pretrained(source, local_files_only=True)
    except Exception:  # broken folder / transformers missing: fall back to the approximation
        return None
    if not getattr(tok, "chat_template", None):
        return None
    return tok


NOT_CACHED_BAND = 0.30  # o200k for a model whose tokenizer is not on this machine
NOT_CACHED = "base model's tokenizer not in the local Hugging Face cache"


def own_or_approx(
    candidates: Iterable[str], *, why: str = NOT_CACHED, band: float = NOT_CACHED_BAND
) -> Any:
    """A counter with the first candidate's own tokenizer and chat template that is on this
    machine (a local folder or the Hugging Face cache: what open-weight services bill with),
    else the o200k approximation labelled ``±band`` with ``why``. Never downloads."""
    from tuneport.tokens.approx import ScaledTextCounter

    for name in dict.fromkeys(c for c in candidates if c):
        tok = load_hf_tokenizer(name)
        if tok is not None:
            return HFChatTemplateCounter(tok, Path(name).name if Path(name).is_dir() else name)
    return ScaledTextCounter(1.0, band, why)
