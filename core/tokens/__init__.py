"""Token counting (engine layer): the :class:`TokenCounter` interface and its implementations.

- :mod:`~tuneport.tokens.counter` — the interface, :class:`Counts`.
- :mod:`~tuneport.tokens.bpe` — exact tiktoken counts (offline BPE files), OpenAI chat overhead.
- :mod:`~tuneport.tokens.approx` — labelled approximations (o200k × factor, characters / 4).
- :mod:`~tuneport.tokens.hf` — a Hugging Face tokenizer and its chat template.
- :mod:`~tuneport.tokens.fast` — whole JSONL files counted in worker processes.
- :mod:`~tuneport.tokens.cache` — counts kept between ``validate`` and ``estimate``.
- :mod:`~tuneport.tokens.measure` — the one function that counts a data file of any layout.

Which counter a provider and model use is decided by the backend descriptor
(:func:`tuneport.providers.registry.counter_for`), never here.
"""

from tuneport.tokens.approx import CharCounter, ScaledTextCounter
from tuneport.tokens.bpe import TiktokenChatCounter, encoding, seed_tiktoken_cache
from tuneport.tokens.counter import (
    Counts,
    FileCounter,
    TokenCounter,
    describe,
    memoized,
    uses_tools,
)
from tuneport.tokens.fast import RawCounter, count_jsonl, fast_counter
from tuneport.tokens.hf import HFChatTemplateCounter, load_hf_tokenizer

__all__ = [
    "CharCounter",
    "Counts",
    "FileCounter",
    "HFChatTemplateCounter",
    "RawCounter",
    "ScaledTextCounter",
    "TiktokenChatCounter",
    "TokenCounter",
    "count_jsonl",
    "describe",
    "encoding",
    "fast_counter",
    "load_hf_tokenizer",
    "memoized",
    "seed_tiktoken_cache",
    "uses_tools",
]
