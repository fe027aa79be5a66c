"""A tiny random Llama-architecture model with a locally trained byte-level BPE tokenizer.

Tests of the local backend (and anything else that needs a real Hugging Face model folder
offline) build one with :func:`build_tiny_model`. It takes well under a second and needs no
network: the weights come from ``LlamaConfig`` with a fixed seed and the tokenizer is trained with
``tokenizers`` on a few hundred generated strings.

The tokenizer follows the Qwen-instruct convention: ``<|im_end|>`` ends every turn and is the EOS
token, so the end of each assistant turn is an EOS; the pad token ``<|pad|>`` is distinct from EOS.
Its chat template wraps assistant content in ``{% generation %}`` markers so that
``return_assistant_tokens_mask`` / TRL's ``assistant_only_loss`` work.

Use a session-scoped fixture to build it once per test session::

    @pytest.fixture(scope="session")
    def tiny_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
        return build_tiny_model(tmp_path_factory.mktemp("tiny") / "model")
"""

from __future__ import annotations

import itertools
from pathlib import Path

TINY_CHAT_TEMPLATE = (
    "{{ bos_token }}"
    "{%- for message in messages %}"
    "{{- '<|im_start|>' + message['role'] + '\\n' }}"
    "{%- if message['role'] == 'assistant' %}"
    "{%- generation %}{{- message['content'] + '<|im_end|>' }}{%- endgeneration %}"
    "{{- '\\n' }}"
    "{%- else %}"
    "{{- message['content'] + '<|im_end|>\\n' }}"
    "{%- endif %}"
    "{%- endfor %}"
    "{%- if add_generation_prompt %}{{- '<|im_start|>assistant\\n' }}{%- endif %}"
)

BOS, EOS, PAD, UNK, IM_START = "<s>", "<|im_end|>", "<|pad|>", "<unk>", "<|im_start|>"

_SUBJECTS = [
    "the cat",
    "a dog",
    "my friend",
    "the model",
    "this tool",
    "our team",
    "paris",
    "tokyo",
]
_VERBS = ["likes", "sees", "answers", "trains", "counts", "visits", "writes", "reads"]
_OBJECTS = ["the ball", "a question", "ten tokens", "the data", "a city", "the map", "hello", "42"]
_EXTRA = [
    "Hello! How can I help you today?",
    "What is the capital of France? The capital of France is Paris.",
    "system user assistant tool",
    "Hi there. hi. hello. Good morning, good night.",
    "0 1 2 3 4 5 6 7 8 9 10 11 12 100 1000",
    '{"name": "get_weather", "arguments": {"city": "Paris"}}',
    "Answer briefly. Say yes or no. yes no maybe",
]


def training_corpus() -> list[str]:
    """A few hundred deterministic strings to train the BPE on."""
    lines = [f"{s} {v} {o}." for s, v, o in itertools.product(_SUBJECTS, _VERBS, _OBJECTS)]
    return lines[:400] + _EXTRA * 4


def build_tiny_model(
    dir: Path,
    *,
    chat_template: bool = True,
    pad_token: bool = True,
    unk_token: bool = True,
    seed: int = 0,
) -> Path:
    """Write a tiny random Llama model + tokenizer to ``dir`` (created) and return ``dir``.

    ``chat_template=False`` leaves the tokenizer without a chat template, ``pad_token=False``
    without a pad token and ``unk_token=False`` without an unknown token (byte-level BPE needs
    none), to exercise the fallbacks of the local trainer.
    """
    import torch
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import (
        GenerationConfig,
        LlamaConfig,
        LlamaForCausalLM,
        PreTrainedTokenizerFast,
    )

    dir.mkdir(parents=True, exist_ok=True)
    specials = [BOS, EOS, *([UNK] if unk_token else []), IM_START, *([PAD] if pad_token else [])]
    bpe = Tokenizer(models.BPE(unk_token=UNK if unk_token else None))
    bpe.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    bpe.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=384,
        special_tokens=specials,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    bpe.train_from_iterator(training_corpus(), trainer=trainer)

    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=bpe,
        bos_token=BOS,
        eos_token=EOS,
        unk_token=UNK if unk_token else None,
        pad_token=PAD if pad_token else None,
        additional_special_tokens=[IM_START],
        model_max_length=512,
    )
    if chat_template:
        tokenizer.chat_template = TINY_CHAT_TEMPLATE
    tokenizer.save_pretrained(dir)

    torch.manual_seed(seed)
    pad_id = tokenizer.pad_token_id if pad_token else None
    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=512,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=pad_id,
        tie_word_embeddings=False,
        initializer_range=0.2,
    )
    model = LlamaForCausalLM(config)
    model.generation_config = GenerationConfig(
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=pad_id,
    )
    model.save_pretrained(dir)
    return dir
