"""The local training recipe in-process on a tiny random Llama (CPU, offline).

SFT memorizes three examples, the collated batch is inspected, DPO runs, the merged export
computes the same logits as base + adapter, 4-bit bitsandbytes works on CPU, and a child run
continues from a parent adapter.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.fakes.tiny_model import build_tiny_model
from tuneport.data import export_records
from tuneport.providers.local import runfiles
from tuneport.providers.local import trainer as T
from tuneport.providers.local.recipe_config import LocalOptions, RunConfig
from tuneport.schemas import Example, Message, PreferenceExample

pytestmark = pytest.mark.slow

PAIRS = [("hi", "hello"), ("what is 2+2?", "4"), ("capital of France?", "Paris")]


@pytest.fixture(scope="session")
def tiny_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tiny_model(tmp_path_factory.mktemp("tiny") / "model")


def chat_records() -> list[Example]:
    return [
        Example(
            messages=[
                Message(role="system", content="Answer briefly."),
                Message(role="user", content=q),
                Message(role="assistant", content=a),
            ]
        )
        for q, a in PAIRS
    ]


def preference_records() -> list[PreferenceExample]:
    return [
        PreferenceExample(
            prompt=[Message(role="user", content=q)],
            chosen=Message(role="assistant", content=a),
            rejected=Message(role="assistant", content="no"),
        )
        for q, a in PAIRS
    ]


def make_run(
    root: Path,
    model: Path | str,
    records: list[Any],
    *,
    method: str = "sft",
    lr: float = 1e-2,
    validation: list[Any] | None = None,
    **options: Any,
) -> tuple[Path, RunConfig]:
    run_dir = root / "run"
    run_dir.mkdir(parents=True)
    export_records(records, "local", run_dir / runfiles.DATA, method=method)
    if validation is not None:
        export_records(validation, "local", run_dir / runfiles.VALIDATION, method=method)
    defaults: dict[str, Any] = {
        "max_steps": 12,
        "logging_steps": 1,
        "save_steps": 1000,
        "gradient_accumulation_steps": 1,
        "gradient_checkpointing": False,
        "warmup_ratio": 0.0,
        "lr_scheduler": "constant",
    }
    opts = LocalOptions.model_validate({**defaults, **options})
    cfg = RunConfig(
        run_id=run_dir.name,
        model=str(model),
        method=method,  # type: ignore[arg-type]
        data=run_dir / runfiles.DATA,
        validation=run_dir / runfiles.VALIDATION if validation is not None else None,
        learning_rate=lr,
        batch_size=3,
        lora=opts.lora_config(),
        options=opts,
        init_adapter=opts.init_adapter,
    )
    runfiles.write_json_atomic(run_dir / runfiles.CONFIG, cfg.model_dump(mode="json"))
    return run_dir, cfg


def losses(run_dir: Path) -> list[float]:
    return [e["loss"] for e in runfiles.read_events(run_dir) if "loss" in e]


@pytest.fixture(scope="module")
def sft_run(tiny_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    run_dir, _ = make_run(tmp_path_factory.mktemp("sft"), tiny_dir, chat_records())
    assert T.main([str(run_dir)]) == 0
    return run_dir


def test_sft_memorizes_and_writes_its_run_files(sft_run: Path) -> None:
    status = runfiles.read_status(sft_run)
    assert status is not None and status.phase == "succeeded", status
    assert status.step == 12 and status.device == "cpu" and status.precision == "float32"
    assert any("full precision" in note for note in status.notes)
    curve = losses(sft_run)
    assert len(curve) == 12
    assert curve[-1] < 0.2 * curve[0], curve
    event = [e for e in runfiles.read_events(sft_run) if "loss" in e][-1]
    assert event["step"] == 12 and event["tokens_per_s"] > 0 and event["memory_gib"] > 0
    assert status.loss == event["loss"] and status.tokens_per_s == event["tokens_per_s"]
    assert status.seconds is not None and status.seconds > 0
    messages = [e["message"] for e in runfiles.read_events(sft_run) if "message" in e]
    phases = [m for m in messages if m in ("loading the model and data", "saving the adapter")]
    assert phases == ["loading the model and data", "saving the adapter"]
    assert "training (12 steps)" in messages
    assert any(m.startswith("training done: mean loss") for m in messages)
    assert (sft_run / runfiles.LOSS_PNG).read_bytes().startswith(b"\x89PNG")
    adapter = sft_run / runfiles.ADAPTER
    assert (adapter / "adapter_model.safetensors").is_file()
    meta = json.loads((adapter / runfiles.ADAPTER_META).read_text())
    assert meta["base_model"] == meta["model"]


@pytest.mark.parametrize(
    ("options", "logged"),
    [
        # a 3-step run with the default logging: every step (it used to log every 10th: none)
        ({"max_steps": None, "logging_steps": None}, [1, 2, 3]),
        # the final step is logged whatever logging_steps says
        ({"max_steps": 5, "logging_steps": 2}, [2, 4, 5]),
    ],
)
def test_short_runs_record_every_loss_and_the_final_one(
    tiny_dir: Path, tmp_path: Path, options: dict[str, Any], logged: list[int]
) -> None:
    run_dir, _ = make_run(tmp_path, tiny_dir, chat_records(), **options)
    assert T.main([str(run_dir)]) == 0
    steps = [e["step"] for e in runfiles.read_events(run_dir) if "loss" in e]
    assert steps == logged
    status = runfiles.read_status(run_dir)
    assert status is not None and status.loss is not None and status.step == logged[-1]
    assert (run_dir / runfiles.LOSS_PNG).read_bytes().startswith(b"\x89PNG")


def test_auto_logging_steps() -> None:
    from tuneport.providers.local.recipe_config import auto_logging_steps

    assert [auto_logging_steps(n) for n in (1, 9, 99, 100, 250, 499, 10_000)] == [
        1,
        1,
        1,
        2,
        5,
        9,
        10,
    ]


def test_memorized_answers_come_back_in_chat(sft_run: Path) -> None:
    model, tok = T.load_tuned(sft_run, T.resolve_precision("auto"))
    for question, answer in PAIRS:
        messages = [
            {"role": "system", "content": "Answer briefly."},
            {"role": "user", "content": question},
        ]
        assert T.generate_reply(model, tok, messages, max_new_tokens=12) == answer


def test_collated_batch_masks_prompts_and_padding(tiny_dir: Path, tmp_path: Path) -> None:
    run_dir, cfg = make_run(tmp_path, tiny_dir, chat_records())
    trainer = T.build_trainer(cfg, run_dir)
    batch = next(iter(trainer.get_train_dataloader()))
    tok = trainer.processing_class
    assert tok.pad_token_id != tok.eos_token_id
    ids, labels, attention = batch["input_ids"], batch["labels"], batch["attention_mask"]
    assert ids.shape[0] == 3 and (attention == 0).any(), "expected padding in the batch"
    for row_ids, row_labels, row_mask in zip(
        ids.tolist(), labels.tolist(), attention.tolist(), strict=True
    ):
        real = [i for i, m in zip(row_ids, row_mask, strict=True) if m]
        text = tok.decode(real)
        trained = [i for i, lab in enumerate(row_labels) if lab != -100]
        # the only trained tokens are the reply and its end-of-turn EOS
        answer = tok.decode([row_ids[i] for i in trained])
        assert answer in {f"{a}{tok.eos_token}" for _, a in PAIRS}, (text, answer)
        assert row_ids[trained[-1]] == tok.eos_token_id
        # everything before the reply is masked: system, user, the assistant header
        assert all(lab == -100 for lab in row_labels[: trained[0]])
        assert tok.decode(row_ids[: trained[0]]).endswith("<|im_start|>assistant\n")
        # padding is masked and never EOS
        for token, lab, m in zip(row_ids, row_labels, row_mask, strict=True):
            if not m:
                assert token == tok.pad_token_id and lab == -100


def test_dpo_trains_against_the_adapter_free_reference(tiny_dir: Path, tmp_path: Path) -> None:
    run_dir, _ = make_run(
        tmp_path, tiny_dir, preference_records(), method="dpo", max_steps=4, lr=5e-3
    )
    assert T.main([str(run_dir)]) == 0
    status = runfiles.read_status(run_dir)
    assert status is not None and status.phase == "succeeded"
    events = [e for e in runfiles.read_events(run_dir) if "loss" in e]
    assert len(events) == 4
    assert events[0]["loss"] == pytest.approx(0.6931, abs=1e-3)  # policy == reference at start
    assert events[-1]["loss"] < events[0]["loss"]
    assert events[-1]["rewards/margins"] > 0
    assert (run_dir / runfiles.ADAPTER / "adapter_config.json").is_file()


def _logits(model: Any, tok: Any) -> Any:
    import torch

    enc = tok.apply_chat_template(
        [{"role": "user", "content": "capital of France?"}],
        add_generation_prompt=True,
        return_tensors="pt",
        return_dict=True,
    )
    with torch.no_grad():
        return model(**enc).logits


def test_merged_export_matches_base_plus_adapter(sft_run: Path, tmp_path: Path) -> None:
    import torch

    precision = T.resolve_precision("none")
    tuned, tok = T.load_tuned(sft_run, precision)
    merged_dir = T.merge_adapter(sft_run / runfiles.ADAPTER, tmp_path / "merged")
    assert (merged_dir / "model.safetensors").is_file()
    assert not (merged_dir / "adapter_config.json").exists()
    merged, merged_tok = T.load_tuned(merged_dir, precision)
    assert merged_tok.pad_token_id == tok.pad_token_id
    a, b = _logits(tuned, tok), _logits(merged, merged_tok)
    torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-5)


def test_four_bit_quantization_runs_on_cpu(tiny_dir: Path, tmp_path: Path) -> None:
    run_dir, _ = make_run(tmp_path, tiny_dir, chat_records(), quantize="4bit", max_steps=2)
    assert T.main([str(run_dir)]) == 0
    status = runfiles.read_status(run_dir)
    assert status is not None and status.phase == "succeeded"
    assert status.precision == "4bit / bfloat16"
    assert any("4bit" in note for note in status.notes)


def test_child_run_merges_the_parent_adapter_first(
    sft_run: Path, tiny_dir: Path, tmp_path: Path
) -> None:
    run_dir, _ = make_run(
        tmp_path,
        tiny_dir,
        chat_records(),
        max_steps=2,
        init_adapter=sft_run / runfiles.ADAPTER,
    )
    assert T.main([str(run_dir)]) == 0
    base = run_dir / runfiles.BASE
    assert (base / "config.json").is_file()
    meta = json.loads((run_dir / runfiles.ADAPTER / runfiles.ADAPTER_META).read_text())
    assert meta["base_model"] == str(base)
    # the merged base already answers like the parent: the child starts from its knowledge
    model, tok = T.load_tuned(base, T.resolve_precision("none"))
    reply = T.generate_reply(
        model,
        tok,
        [{"role": "system", "content": "Answer briefly."}, {"role": "user", "content": "hi"}],
        max_new_tokens=8,
    )
    assert reply == "hello"


def test_bad_model_path_fails_with_one_line(tmp_path: Path) -> None:
    run_dir, _ = make_run(tmp_path, tmp_path / "no-such-model", chat_records())
    assert T.main([str(run_dir)]) == 1
    status = runfiles.read_status(run_dir)
    assert status is not None and status.phase == "failed"
    assert status.error and "\n" not in status.error and "no-such-model" in status.error


@pytest.mark.parametrize(
    "batching", [{"packing": True}, {"padding_free": True}], ids=["packing", "padding_free"]
)
def test_packing_and_padding_free_batches_keep_assistant_labels(
    tiny_dir: Path, tmp_path: Path, batching: dict[str, bool]
) -> None:
    run_dir, cfg = make_run(tmp_path, tiny_dir, chat_records(), max_steps=2, **batching)
    trainer = T.build_trainer(cfg, run_dir)
    batch = next(iter(trainer.get_train_dataloader()))
    tok = trainer.processing_class
    # one flat row, no padding: sequences are told apart by position_ids
    assert batch["input_ids"].shape[0] == 1 and "position_ids" in batch
    ids, labels = batch["input_ids"][0].tolist(), batch["labels"][0].tolist()
    assert tok.pad_token_id not in ids
    trained = tok.decode([t for t, lab in zip(ids, labels, strict=True) if lab != -100])
    assert sorted(trained.split(tok.eos_token)[:-1]) == sorted(a for _, a in PAIRS)
    assert trainer.train().global_step == 2


def test_validation_set_is_evaluated_every_epoch(tiny_dir: Path, tmp_path: Path) -> None:
    run_dir, _ = make_run(
        tmp_path, tiny_dir, chat_records(), validation=chat_records()[:2], max_steps=3
    )
    assert T.main([str(run_dir)]) == 0
    evals = [e for e in runfiles.read_events(run_dir) if "eval_loss" in e]
    assert len(evals) == 3  # one step per epoch (3 examples, batch 3)
    assert evals[-1]["eval_loss"] < evals[0]["eval_loss"]  # it learns the same answers
    assert evals[0]["message"].startswith("step 1: eval loss ")


def test_added_pad_token_resizes_deterministically(tmp_path: Path) -> None:
    import torch

    bare = build_tiny_model(tmp_path / "bare", pad_token=False, unk_token=False)
    run_dir, _ = make_run(tmp_path / "r", bare, chat_records(), max_steps=3)
    assert T.main([str(run_dir)]) == 0
    status = runfiles.read_status(run_dir)
    assert status is not None and status.phase == "succeeded"
    assert any("added <|pad|>" in note for note in status.notes)

    precision = T.resolve_precision("none")
    tuned, tok = T.load_tuned(run_dir, precision)
    assert tok.pad_token == "<|pad|>" and tok.pad_token_id != tok.eos_token_id
    embeddings = tuned.get_input_embeddings().weight
    assert embeddings.shape[0] == len(tok) == tok.pad_token_id + 1
    torch.testing.assert_close(embeddings[-1], embeddings[:-1].mean(dim=0))
    merged, merged_tok = T.load_tuned(
        T.merge_adapter(run_dir / runfiles.ADAPTER, tmp_path / "merged"), precision
    )
    # float32 merge reorders the sums: differences at the 1e-5 level on logits of order 1
    torch.testing.assert_close(
        _logits(tuned, tok), _logits(merged, merged_tok), atol=5e-5, rtol=1e-5
    )


def test_prompts_longer_than_max_length_are_skipped_or_refused(
    tiny_dir: Path, tmp_path: Path
) -> None:
    long_prompt = Example(
        messages=[
            Message(role="user", content="hello " * 100),
            Message(role="assistant", content="hi"),
        ]
    )
    run_dir, _ = make_run(
        tmp_path / "some", tiny_dir, [*chat_records(), long_prompt], max_length=48, max_steps=1
    )
    assert T.main([str(run_dir)]) == 0
    status = runfiles.read_status(run_dir)
    assert status is not None and status.phase == "succeeded"
    assert "1 of 4 examples skipped: their prompt fills max_length=48 tokens" in status.notes[-1]

    run_dir, _ = make_run(tmp_path / "all", tiny_dir, [long_prompt], max_length=48)
    assert T.main([str(run_dir)]) == 1
    status = runfiles.read_status(run_dir)
    assert status is not None and status.phase == "failed"
    assert status.error == (
        "no example has an assistant token within max_length=48 tokens "
        "(fix: raise it with --set max_length=N or shorten the prompts)"
    )


def test_dpo_prompts_longer_than_max_length_are_refused(tiny_dir: Path, tmp_path: Path) -> None:
    pair = PreferenceExample(
        prompt=[Message(role="user", content="hello " * 100)],
        chosen=Message(role="assistant", content="yes"),
        rejected=Message(role="assistant", content="no"),
    )
    run_dir, _ = make_run(tmp_path, tiny_dir, [pair], method="dpo", max_length=48)
    assert T.main([str(run_dir)]) == 1
    status = runfiles.read_status(run_dir)
    assert status is not None and status.error is not None
    assert status.error.startswith("every DPO prompt fills max_length=48 tokens")
