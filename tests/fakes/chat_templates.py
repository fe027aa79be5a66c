"""Real chat templates (as their models ship them, tool branches left out) on a real vocabulary.

:func:`template_tokenizers` builds Hugging Face tokenizers that
:func:`tuneport.tokens.hf.load_hf_tokenizer` loads like a model's own: the ``cl100k_base`` BPE
(the first 100k tokens and the pre-tokenizer of Llama 3's vocabulary; read offline from the
bundled tiktoken file) converted with transformers' ``TikTokenConverter``, the template's
special tokens, and the template itself. Counting with it is what
:class:`~tuneport.tokens.hf.HFChatTemplateCounter` does for a model that is on this machine.

The templates follow the models' ``tokenizer_config.json`` ``chat_template`` (Llama 3.1/3.3
Instruct, Llama 3 Instruct, Qwen2.5 Instruct, ChatML as Qwen3 renders a turn without thinking,
Mistral Instruct with the system prompt before the first user turn).
"""

from __future__ import annotations

import base64
import tempfile
from pathlib import Path
from typing import Any

LLAMA_3_1 = (
    "{{- bos_token }}"
    "{%- if not date_string is defined %}{%- set date_string = '26 Jul 2024' %}{%- endif %}"
    "{%- if messages[0]['role'] == 'system' %}"
    "{%- set system_message = messages[0]['content']|trim %}"
    "{%- set messages = messages[1:] %}"
    "{%- else %}{%- set system_message = '' %}{%- endif %}"
    "{{- '<|start_header_id|>system<|end_header_id|>\\n\\n' }}"
    "{{- 'Cutting Knowledge Date: December 2023\\n' }}"
    "{{- 'Today Date: ' + date_string + '\\n\\n' }}"
    "{{- system_message }}"
    "{{- '<|eot_id|>' }}"
    "{%- for message in messages %}"
    "{{- '<|start_header_id|>' + message['role'] + '<|end_header_id|>\\n\\n'"
    " + message['content'] | trim + '<|eot_id|>' }}"
    "{%- endfor %}"
    "{%- if add_generation_prompt %}"
    "{{- '<|start_header_id|>assistant<|end_header_id|>\\n\\n' }}"
    "{%- endif %}"
)

LLAMA_3 = (
    "{% set loop_messages = messages %}{% for message in loop_messages %}"
    "{% set content = '<|start_header_id|>' + message['role'] + '<|end_header_id|>\\n\\n'"
    " + message['content'] | trim + '<|eot_id|>' %}"
    "{% if loop.index0 == 0 %}{% set content = bos_token + content %}{% endif %}"
    "{{ content }}{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|start_header_id|>assistant<|end_header_id|>\\n\\n' }}"
    "{% endif %}"
)

QWEN_2_5 = (
    "{%- if messages[0]['role'] == 'system' %}"
    "{{- '<|im_start|>system\\n' + messages[0]['content'] + '<|im_end|>\\n' }}"
    "{%- else %}"
    "{{- '<|im_start|>system\\nYou are Qwen, created by Alibaba Cloud. "
    "You are a helpful assistant.<|im_end|>\\n' }}"
    "{%- endif %}"
    "{%- for message in messages %}"
    "{%- if (message.role == 'user') or (message.role == 'system' and not loop.first)"
    " or (message.role == 'assistant') %}"
    "{{- '<|im_start|>' + message.role + '\\n' + message.content + '<|im_end|>' + '\\n' }}"
    "{%- endif %}"
    "{%- endfor %}"
    "{%- if add_generation_prompt %}{{- '<|im_start|>assistant\\n' }}{%- endif %}"
)

CHATML = (
    "{%- for message in messages %}"
    "{{- '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>\\n' }}"
    "{%- endfor %}"
    "{%- if add_generation_prompt %}{{- '<|im_start|>assistant\\n' }}{%- endif %}"
)

MISTRAL = (
    "{{- bos_token }}"
    "{%- if messages[0]['role'] == 'system' %}"
    "{%- set system_message = messages[0]['content'] %}"
    "{%- set loop_messages = messages[1:] %}"
    "{%- else %}{%- set system_message = '' %}{%- set loop_messages = messages %}{%- endif %}"
    "{%- for message in loop_messages %}"
    "{%- if message['role'] == 'user' %}"
    "{%- if loop.first and system_message %}"
    "{{- '[INST] ' + system_message + '\\n\\n' + message['content'] + '[/INST]' }}"
    "{%- else %}{{- '[INST] ' + message['content'] + '[/INST]' }}{%- endif %}"
    "{%- elif message['role'] == 'assistant' %}"
    "{{- ' ' + message['content'] + eos_token }}"
    "{%- endif %}"
    "{%- endfor %}"
)

# family -> (template, bos, eos, special tokens)
TEMPLATES: dict[str, tuple[str, str, str, list[str]]] = {
    "llama-3.1": (
        LLAMA_3_1,
        "<|begin_of_text|>",
        "<|eot_id|>",
        ["<|start_header_id|>", "<|end_header_id|>"],
    ),
    "llama-3": (
        LLAMA_3,
        "<|begin_of_text|>",
        "<|eot_id|>",
        ["<|start_header_id|>", "<|end_header_id|>"],
    ),
    "qwen2.5": (QWEN_2_5, "<|endoftext|>", "<|im_end|>", ["<|im_start|>"]),
    "chatml": (CHATML, "<|endoftext|>", "<|im_end|>", ["<|im_start|>"]),
    "mistral": (MISTRAL, "<s>", "</s>", ["[INST]", "[/INST]"]),
}


def template_tokenizers(families: list[str]) -> dict[str, Any]:
    """A tokenizer with each family's chat template (in memory; ``save_pretrained`` writes the
    folder a local model would have). The vocabulary is converted once, the slow part."""
    from tokenizers import Tokenizer
    from transformers import PreTrainedTokenizerFast
    from transformers.convert_slow_tokenizer import TikTokenConverter

    from tuneport.tokens.bpe import encoding

    enc = encoding("cl100k_base")
    with tempfile.TemporaryDirectory() as tmp:
        ranks = Path(tmp) / "cl100k_base.tiktoken"
        with ranks.open("wb") as fh:
            for token, rank in enc._mergeable_ranks.items():
                fh.write(base64.b64encode(token) + b" %d\n" % rank)
        converted = TikTokenConverter(vocab_file=str(ranks), pattern=enc._pat_str).converted()
    serialized = converted.to_str()
    out: dict[str, Any] = {}
    for family in families:
        template, bos, eos, specials = TEMPLATES[family]
        tok = PreTrainedTokenizerFast(
            tokenizer_object=Tokenizer.from_str(serialized),
            bos_token=bos,
            eos_token=eos,
            additional_special_tokens=specials,
            model_max_length=1 << 20,
        )
        tok.chat_template = template
        out[family] = tok
    return out
