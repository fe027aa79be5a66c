"""What a model's chat template adds to each training example, for approximate counts.

When the base model's own tokenizer is not on this machine, the o200k approximation
(:class:`~tuneport.tokens.approx.ScaledTextCounter`) counts the texts of an example; the chat
template wraps every message in special tokens and a role name, and some templates add a
default system turn. On short rows that is most of the example (60 three-message rows of ~11
text tokens: 660 text tokens, 1,560 with ChatML). :func:`template_cost` says, from the model
id, which template family a model uses and what it costs per message and per example.

The figures are the token counts of the templates' fixed parts (tests/test_template_band.py
renders the real templates with a tokenizer and checks each figure and the stated bands):

- ``llama-3.1`` (Llama 3.1 / 3.2 / 3.3 instruct): ``<|begin_of_text|>``, a system turn that is
  always there with "Cutting Knowledge Date: December 2023 / Today Date: 26 Jul 2024", and
  ``<|start_header_id|>role<|end_header_id|>\\n\\n … <|eot_id|>`` around every message.
- ``llama-3`` (Llama 3 instruct): the same turns, no default system turn.
- ``qwen2.5`` (Qwen 2.5 instruct): ChatML, plus "You are Qwen, created by Alibaba Cloud. You
  are a helpful assistant." as the system turn when the example has none.
- ``chatml`` (Qwen 3, other ChatML models): ``<|im_start|>role\\n … <|im_end|>\\n``.
- ``mistral``: ``<s>[INST] … [/INST] … </s>``.

A model none of these patterns matches gets :data:`UNKNOWN`'s cost with the wider
:data:`UNKNOWN_TEMPLATE_BAND`: its template may cost anything from Mistral's to Llama 3.1's.
"""

from __future__ import annotations

import re
from dataclasses import dataclass


@dataclass(frozen=True)
class TemplateCost:
    """Tokens a chat template adds: ``per_message`` around every message, ``per_example`` once,
    and ``no_system`` more when the example has no system message (a default system turn)."""

    family: str
    per_message: int
    per_example: int
    no_system: int = 0


LLAMA_3_1 = TemplateCost("llama-3.1", per_message=5, per_example=21, no_system=5)
LLAMA_3 = TemplateCost("llama-3", per_message=5, per_example=1)
QWEN_2_5 = TemplateCost("qwen2.5", per_message=5, per_example=0, no_system=20)
CHATML = TemplateCost("chatml", per_message=5, per_example=0)
MISTRAL = TemplateCost("mistral", per_message=2, per_example=1)
# A model whose template is not known: ChatML's turns and 10 more per example, the middle of
# the families above (from Mistral's ~4 tokens to Llama 3.1's ~36 on a three-message row).
UNKNOWN = TemplateCost("unknown", per_message=5, per_example=10)

# Model ids (Hugging Face, Together, Fireworks spellings) -> template family; first match wins.
FAMILIES: tuple[tuple[re.Pattern[str], TemplateCost], ...] = tuple(
    (re.compile(pattern, re.IGNORECASE), cost)
    for pattern, cost in (
        (r"llama[-_ ]?(3[.p][123]|v3p[123])", LLAMA_3_1),
        (r"llama[-_ ]?(3|v3)\b|llama-3-|llama3", LLAMA_3),
        (r"qwen[-_ ]?2[.p]5", QWEN_2_5),
        (r"qwen|chatml|yi-|deepseek-r1-distill-qwen", CHATML),
        (r"mistral|mixtral", MISTRAL),
    )
)

# Error bands of the approximation (|exact - approx| <= band x approx, what the budget guard
# assumes), checked by tests/test_template_band.py on short and long rows with every template
# above. Known family: the template's tokens are counted as it renders them (worst seen +20 %,
# Mistral's system turn; long rows -6 %, o200k vs a Llama-3 vocabulary); the rest of the band
# is left for vocabularies that test cannot load offline. Unknown template: worst seen 58 %
# (Mistral rows with a system message; Llama 3.1 rows without one).
KNOWN_TEMPLATE_BAND = 0.30
UNKNOWN_TEMPLATE_BAND = 0.60


def template_cost(models: list[str]) -> TemplateCost | None:
    """The template family of the first of ``models`` that a pattern matches, else ``None``."""
    for model in models:
        for pattern, cost in FAMILIES:
            if model and pattern.search(model):
                return cost
    return None
