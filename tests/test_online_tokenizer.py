"""``estimate --online`` for open-weight models (local, Fireworks): the base model's tokenizer
files fetched from the Hugging Face Hub (a local stand-in at ``HF_ENDPOINT``), never weights,
and exact counts with them."""

from __future__ import annotations

from pathlib import Path

import huggingface_hub.constants as hub_constants
import orjson
import pytest

from tests.fakes.hf_hub import FakeHub, repo_from_folder, serving_hub
from tests.fakes.tiny_model import TINY_CHAT_TEMPLATE
from tuneport.errors import ConfigError, ProviderError
from tuneport.providers import registry
from tuneport.tokens.hf import TOKENIZER_FILES, HFChatTemplateCounter, load_hf_tokenizer
from tuneport.tokens.measure import count_path

REPO = "meta-llama/Llama-3.1-8B-Instruct"  # what Fireworks' llama-v3p1-8b-instruct maps to


@pytest.fixture(scope="module")
def tokenizer_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A real (tiny) BPE tokenizer with a chat template, saved as a Hub repo would hold it."""
    from tokenizers import Tokenizer, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    bpe = Tokenizer(models.BPE(unk_token="<unk>"))
    bpe.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    bpe.train_from_iterator(
        ["hello there, how are you", "the capital of france is paris"] * 20,
        trainers.BpeTrainer(
            vocab_size=300,
            special_tokens=["<s>", "<|im_end|>", "<unk>", "<|im_start|>"],
            initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
            show_progress=False,
        ),
    )
    tok = PreTrainedTokenizerFast(
        tokenizer_object=bpe,
        bos_token="<s>",
        eos_token="<|im_end|>",
        unk_token="<unk>",
        additional_special_tokens=["<|im_start|>"],
    )
    tok.chat_template = TINY_CHAT_TEMPLATE
    folder = tmp_path_factory.mktemp("hub-repo")
    tok.save_pretrained(folder)
    return folder


@pytest.fixture
def online_hub(tokenizer_folder: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> FakeHub:
    hub = FakeHub({REPO: repo_from_folder(tokenizer_folder)}, gated=("meta-llama/Gated-Model",))
    with serving_hub(hub):
        monkeypatch.setenv("HF_ENDPOINT", hub.base_url)
        monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
        monkeypatch.setattr(hub_constants, "HF_HUB_OFFLINE", False)
        monkeypatch.setattr(hub_constants, "HF_HUB_CACHE", str(tmp_path / "hf-cache"))
        yield hub


def _data(tmp_path: Path) -> Path:
    path = tmp_path / "data.jsonl"
    rows = [
        {
            "messages": [
                {"role": "user", "content": f"hello there {i}"},
                {"role": "assistant", "content": "the capital of france is paris"},
            ]
        }
        for i in range(5)
    ]
    path.write_bytes(b"\n".join(orjson.dumps(r) for r in rows) + b"\n")
    return path


@pytest.mark.parametrize(
    ("provider", "model"),
    [
        ("fireworks", "accounts/fireworks/models/llama-v3p1-8b-instruct"),
        ("local", REPO),
    ],
)
def test_online_fetches_the_tokenizer_files_only_and_counts_exactly(
    online_hub: FakeHub, tokenizer_folder: Path, tmp_path: Path, provider: str, model: str
) -> None:
    assert not registry.counter_for(provider, model).exact  # offline: not cached here
    counter = registry.counter_for(provider, model, online=True)
    assert isinstance(counter, HFChatTemplateCounter) and counter.exact
    assert online_hub.requested, "the Hub stand-in was not asked"
    assert all(f"/{REPO}/resolve/" in p for p in online_hub.requested)
    asked = online_hub.files_asked()
    assert asked <= set(TOKENIZER_FILES)
    assert "model.safetensors" not in asked and "config.json" not in asked
    local = load_hf_tokenizer(str(tokenizer_folder))
    data = _data(tmp_path)
    expected = HFChatTemplateCounter(local, "local")
    counts = count_path(data, counter)
    assert counts.examples == 5
    assert counts.total == count_path(data, expected).total
    # the fetched files are in the HF cache now: the offline counter is exact too
    assert registry.counter_for("local", REPO).exact


def test_unknown_fireworks_model_says_to_pass_the_hub_id(online_hub: FakeHub) -> None:
    with pytest.raises(ConfigError) as info:
        registry.counter_for("fireworks", "accounts/fireworks/models/some-new-model", online=True)
    assert "Hugging Face" in info.value.one_line()
    assert not online_hub.requested


def test_a_repo_without_a_tokenizer_is_a_clear_error(online_hub: FakeHub) -> None:
    with pytest.raises(ConfigError) as info:
        registry.counter_for("local", "some-org/no-such-model", online=True)
    assert "no tokenizer with a chat template" in info.value.one_line()


def test_a_gated_repo_says_to_accept_its_licence(online_hub: FakeHub) -> None:
    with pytest.raises(ConfigError) as info:
        registry.counter_for("local", "meta-llama/Gated-Model", online=True)
    assert "gated" in info.value.one_line() and "HF_TOKEN" in info.value.one_line()


def test_an_unreachable_hub_is_a_provider_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import socket

    with socket.socket() as s:  # a free port with nothing listening
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    monkeypatch.setenv("HF_ENDPOINT", f"http://127.0.0.1:{port}")
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.setattr(hub_constants, "HF_HUB_OFFLINE", False)
    monkeypatch.setattr(hub_constants, "HF_HUB_CACHE", str(tmp_path / "hf-cache"))
    with pytest.raises(ProviderError) as info:
        registry.counter_for("local", REPO, online=True)
    assert "cannot reach the Hugging Face Hub" in info.value.one_line()


def test_offline_mode_refuses_online_counting() -> None:
    with pytest.raises(ConfigError) as info:  # the test session runs with HF_HUB_OFFLINE=1
        registry.counter_for("local", REPO, online=True)
    assert "HF_HUB_OFFLINE" in info.value.one_line()


def _estimate_warnings(provider: str, model: str, tmp_path: Path) -> list[str]:
    from tuneport.jobs import quote
    from tuneport.schemas import JobConfig

    cfg = JobConfig(provider=provider, model=model, data=_data(tmp_path))
    return quote.estimate(cfg).warnings


@pytest.mark.parametrize(
    ("provider", "model"),
    [
        ("fireworks", "accounts/fireworks/models/llama-v3p1-8b-instruct"),
        ("local", REPO),
        ("together", "meta-llama/Meta-Llama-3.1-8B-Instruct-Reference"),
    ],
)
def test_an_approximate_estimate_suggests_online_where_it_counts(
    tmp_path: Path, provider: str, model: str
) -> None:
    (line,) = [w for w in _estimate_warnings(provider, model, tmp_path) if "approximate" in w]
    assert "`tuneport estimate --online` counts exactly" in line


def test_no_online_suggestion_where_the_backend_cannot_count_online(tmp_path: Path) -> None:
    with registry.registered("echo", "tests.fakes.plugin_backend:BACKEND"):
        assert not registry.counts_online("echo")
        with pytest.raises(ConfigError, match="cannot count tokens online"):
            registry.counter_for("echo", "echo-model", online=True)
        (line,) = [
            w for w in _estimate_warnings("echo", "echo-model", tmp_path) if "approximate" in w
        ]
    assert "--online" not in line
