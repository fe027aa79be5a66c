"""``estimate --online``: Together's own price quote (``estimate-price``) of a file, and the
counter that reports it."""

from __future__ import annotations

import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tuneport.data.exporters import export_records
from tuneport.data.records import read_records
from tuneport.errors import ProviderError
from tuneport.progress import NullProgress
from tuneport.providers.together.files import TogetherFiles
from tuneport.providers.together.jobs import sft_train_on_inputs
from tuneport.providers.together.options import TARGET
from tuneport.schemas import AnyRecord, Example, PreferenceExample
from tuneport.tokens import cache
from tuneport.tokens.counter import Counts, TokenCounter, uses_tools


def scale_to_total(counts: Sequence[int], total: int) -> list[int]:
    """``counts`` scaled so they sum to ``total`` exactly (largest remainders get the rest)."""
    if not counts:
        return []
    base = sum(counts)
    weights = list(counts) if base > 0 else [1] * len(counts)
    base = sum(weights)
    shares = [w * total / base for w in weights]
    out = [int(s) for s in shares]
    rest = total - sum(out)
    order = sorted(range(len(shares)), key=lambda i: shares[i] - out[i], reverse=True)
    for i in order[:rest]:
        out[i] += 1
    return out


@dataclass(frozen=True)
class ServerQuote:
    """What Together's ``estimate-price`` said for one epoch of a file (no evaluations)."""

    tokens: int  # estimated_train_token_count
    price_usd: float  # estimated_total_price
    allowed: bool | None  # allowed_to_proceed
    user_limit: float | None


@dataclass
class QuotedCounts(Counts):
    """Counts whose total comes from Together's ``estimate-price`` (``--online``)."""

    quote: ServerQuote | None = None


class TogetherQuote(TogetherFiles):
    """Together's quote of a file (the upload is the one ``train`` reuses); the provider
    hands out the counter (``online_counter``)."""

    def quote_records(self, records: Sequence[AnyRecord], model: str) -> ServerQuote:
        """Upload ``records`` as Together would train on them (identical bytes are reused by
        ``train``) and ask ``estimate-price`` for one epoch."""
        if not records:
            raise ProviderError("nothing to estimate: the file has no examples")
        self._model = model
        method = "dpo" if all(isinstance(r, PreferenceExample) for r in records) else "sft"
        with tempfile.TemporaryDirectory(prefix="tuneport-together-") as tmp:
            out = Path(tmp) / "estimate.together.jsonl"
            exported = export_records(records, TARGET, out, force=True, method=method)
            file_id, _ = self.upload_file(out, exported.sha256, NullProgress())
        limits = self.model_limits(model)
        rank = self.options.lora_r or (
            limits.lora_training.default_rank if limits.lora_training else 8
        )
        training_type: dict[str, Any] = (
            {"type": "Lora", "lora_r": rank, "lora_alpha": self.options.lora_alpha or 2 * rank}
            if self.options.lora
            else {"type": "Full"}
        )
        training_method: dict[str, Any] = (
            {"method": "sft", "train_on_inputs": sft_train_on_inputs(self.options)}
            if method == "sft"
            else {"method": "dpo"}
        )
        reply = self._call(
            lambda: self.client.fine_tuning.estimate_price(
                training_file=file_id,
                model=model,
                n_epochs=1,
                n_evals=0,
                training_method=training_method,  # type: ignore[arg-type]
                training_type=training_type,  # type: ignore[arg-type]
            )
        )
        if not getattr(reply, "estimation_available", False):
            reason = getattr(reply, "unavailable_reason", None) or "no reason given"
            raise ProviderError(
                f"Together gives no price estimate for this file ({reason})",
                hint="run `tuneport validate DATA --provider together`, or drop --online",
            )
        available: Any = reply
        return ServerQuote(
            tokens=int(available.estimated_train_token_count or 0),
            price_usd=float(available.estimated_total_price or 0.0),
            allowed=available.allowed_to_proceed,
            user_limit=available.user_limit,
        )


class TogetherPriceCounter:
    """``estimate --online``: the file's training tokens as Together's ``estimate-price``
    counts them (the base model's tokenizer and chat template, on the server).

    The total is Together's; per-example figures (used for the per-example limit) are the
    offline counts scaled to that total. ``count_text`` is the offline count."""

    exact = True
    error_band: float | None = None

    def __init__(
        self,
        provider: TogetherQuote,
        model: str,
        offline: TokenCounter,
        *,
        spec: tuple[str, ...],
        label: str,
    ) -> None:
        self.provider = provider
        self.model = model
        self.offline = offline  # the descriptor's counter: per-example shares, count_text
        self.spec = spec  # the count cache's key of Together's count (for `train`)
        self.label = label

    def count_file(self, path: Path, fmt: str | None) -> QuotedCounts:
        counts = QuotedCounts()
        records: list[AnyRecord] = []
        offline: list[int] = []
        for row in read_records(path, fmt):
            if row.record is None:
                counts.skipped.append(row.line)
                continue
            records.append(row.record)
            offline.append(self.offline.count(row.record))
            counts.lines.append(row.line)
            counts.tool_examples += uses_tools(row.record)
        before = path.stat()
        quote = self.provider.quote_records(records, self.model)
        counts.tokens.extend(scale_to_total(offline, quote.tokens))
        counts.quote = quote
        after = path.stat()
        if (after.st_size, after.st_mtime_ns) == (before.st_size, before.st_mtime_ns):
            cache.save(path, self.spec, counts)  # for `train` on this file
        return counts

    def count(self, record: Example | PreferenceExample) -> int:
        return self.provider.quote_records([record], self.model).tokens

    def count_text(self, text: str) -> int:
        return self.offline.count_text(text)
