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
        source = str(Path(cached).parent)  # the cached snapshot: no second cache lookup
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


NOT_CACHED = "base model's tokenizer not in the local Hugging Face cache"


def own_or_approx(candidates: Iterable[str], *, why: str = NOT_CACHED) -> Any:
    """A counter with the first candidate's own tokenizer and chat template that is on this
    machine (a local folder or the Hugging Face cache: what open-weight services bill with),
    else the o200k approximation plus the chat template's tokens of the candidates' template
    family (:mod:`tuneport.tokens.templates`), labelled with ``why`` and the band measured for
    that family (a wider one when the family is not known). Never downloads."""
    from tuneport.tokens.approx import ScaledTextCounter
    from tuneport.tokens.templates import (
        KNOWN_TEMPLATE_BAND,
        UNKNOWN,
        UNKNOWN_TEMPLATE_BAND,
        template_cost,
    )

    names = list(dict.fromkeys(c for c in candidates if c))
    for name in names:
        tok = load_hf_tokenizer(name)
        if tok is not None:
            return HFChatTemplateCounter(tok, Path(name).name if Path(name).is_dir() else name)
    cost = template_cost(names)
    band = KNOWN_TEMPLATE_BAND if cost is not None else UNKNOWN_TEMPLATE_BAND
    cost = cost or UNKNOWN
    return ScaledTextCounter(
        1.0, band, why, 1, cost.family, cost.per_message, cost.per_example, cost.no_system
    )


# The files a tokenizer and its chat template are made of (never weights): what
# :func:`hub_counter` asks the Hugging Face Hub for.
TOKENIZER_FILES = (
    "tokenizer_config.json",
    "tokenizer.json",
    "special_tokens_map.json",
    "chat_template.jinja",
    "chat_template.json",
)


def _hub_tokenizer(repo: str) -> Any | None:
    """``repo``'s tokenizer fetched from the Hub (``HF_ENDPOINT`` honoured; the tokenizer files
    only, into the Hugging Face cache), or ``None`` when the repo has no tokenizer with a chat
    template. Raises :class:`OSError` subclasses when the Hub cannot be reached."""
    from huggingface_hub import hf_hub_download
    from huggingface_hub.errors import (
        EntryNotFoundError,
        GatedRepoError,
        LocalEntryNotFoundError,
        RepositoryNotFoundError,
    )

    from tuneport.errors import ConfigError

    folder: Path | None = None
    for name in TOKENIZER_FILES:
        try:
            got = Path(hf_hub_download(repo, name, endpoint=os.environ.get("HF_ENDPOINT")))
        except LocalEntryNotFoundError:  # the Hub not reached (and the file not cached)
            raise
        except EntryNotFoundError:  # the repo has no such file
            continue
        except GatedRepoError:
            raise ConfigError(
                f"the Hugging Face repo {repo} is gated: its tokenizer needs an accepted licence",
                hint=f"accept it on huggingface.co/{repo} and set HF_TOKEN, or drop --online",
            ) from None
        except RepositoryNotFoundError:
            return None
        folder = got.parent
    if folder is None:
        return None
    try:
        quiet_transformers()
        from transformers import AutoTokenizer

        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)
            warnings.simplefilter("ignore", UserWarning)
            tok = AutoTokenizer.from_pretrained(str(folder), local_files_only=True)
    except Exception:
        return None
    return tok if getattr(tok, "chat_template", None) else None


def hub_counter(candidates: Iterable[str], *, what: str) -> HFChatTemplateCounter:
    """``estimate --online`` for open-weight models: the exact counter of the first of
    ``candidates`` (Hugging Face repo ids; a local folder or a cached tokenizer is used as is)
    whose tokenizer and chat template are on this machine or on the Hugging Face Hub. Only the
    tokenizer files (:data:`TOKENIZER_FILES`) are downloaded, never weights. ``what`` names the
    model in the error when none of them has one."""
    from tuneport.errors import ConfigError, ProviderError

    names = list(dict.fromkeys(c for c in candidates if c))
    for name in names:
        tok = load_hf_tokenizer(name)
        if tok is not None:
            return HFChatTemplateCounter(tok, Path(name).name if Path(name).is_dir() else name)
    repos = [n for n in names if n.count("/") == 1 and not n.startswith((".", "/", "~"))]
    if os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in ("1", "true", "yes", "on"):
        raise ConfigError(
            f"cannot fetch the tokenizer of {what}: HF_HUB_OFFLINE is set",
            hint="unset HF_HUB_OFFLINE, or drop --online (offline counts show their band)",
        )
    for repo in repos:
        try:
            tok = _hub_tokenizer(repo)
        except OSError as exc:  # connection refused, DNS, timeouts (requests/httpx errors)
            endpoint = os.environ.get("HF_ENDPOINT") or "https://huggingface.co"
            raise ProviderError(
                f"cannot reach the Hugging Face Hub at {endpoint} for the tokenizer of {repo} "
                f"({type(exc).__name__})",
                hint="check the network (or HF_ENDPOINT), or drop --online",
            ) from None
        if tok is not None:
            return HFChatTemplateCounter(tok, repo)
    tried = ", ".join(repos) or "no Hugging Face repo id"
    raise ConfigError(
        f"no tokenizer with a chat template found for {what} on the Hugging Face Hub "
        f"(tried {tried})",
        hint="pass the base model's Hugging Face id or a local folder as the model, "
        "or drop --online (offline counts show their band)",
    )
