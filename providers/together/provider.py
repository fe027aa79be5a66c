"""The Together backend (:class:`TogetherProvider`): its parts put together, with doctor,
preflight and chat."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from tuneport.errors import ConfigError
from tuneport.providers.base import ChatOptions, Check
from tuneport.providers.chat import CompatChat
from tuneport.providers.sdk import learning_rate
from tuneport.providers.together import counter, online_label, online_spec
from tuneport.providers.together.errors import sdk
from tuneport.providers.together.jobs import MAX_SUFFIX, MAX_USER_SUFFIX
from tuneport.providers.together.options import DEFAULT_LEARNING_RATE, DEFAULT_MODEL
from tuneport.providers.together.port import TogetherPort
from tuneport.providers.together.quote import TogetherPriceCounter, TogetherQuote
from tuneport.schemas import JobConfig, Message


class TogetherProvider(TogetherQuote, TogetherPort, CompatChat):
    """Fine-tune and chat through the Together AI API. Chat (streamed too) reaches a base
    model, or a tuned model from a dedicated endpoint you started (Together's current docs
    serve tuned models only that way)."""

    def _completion(self, body: bytes) -> Any:
        """A whole reply read by the Together SDK's own type (its finish reasons include
        ``eos``, which OpenAI's refuses)."""
        return sdk().types.chat.ChatCompletion.model_validate_json(body)

    def doctor(self, timeout: float) -> list[Check]:
        """Key set (never shown), SDK installed, base URL without ``/v1``, and one GET of the
        default model's tuning limits: the server is reachable and accepts the key."""
        return self._server_checks(
            timeout,
            "/v1/fine-tunes/models/limits",
            params={"model_name": DEFAULT_MODEL},
            what=f"key accepted (limits of {DEFAULT_MODEL})",
        )

    def _setup_checks(self) -> list[Check]:
        url = self._url_problem()
        checks = [self._sdk_check(sdk, "together")]
        return [*checks, Check("base URL", "fail", *url)] if url else checks

    def online_counter(self, model: str) -> TogetherPriceCounter:
        """Counts from Together's own ``estimate-price`` (server tokenizer and chat template)."""
        offline = counter(model, {})
        return TogetherPriceCounter(
            self, model, offline, spec=online_spec(model), label=online_label(model)
        )

    # --- preflight -----------------------------------------------------------------------------

    def preflight(self, cfg: JobConfig) -> None:
        """Key present, settings valid and within the model's limits, all reported at once.

        Asks Together for the model's limits (one GET) when the key is there, so an untunable
        model or an out-of-range setting fails before anything is priced or uploaded."""
        problems = self.settings_problems()
        opts = self.options
        if cfg.suffix is not None and len(cfg.suffix) > MAX_USER_SUFFIX:
            problems.append(
                (
                    f"suffix is {len(cfg.suffix)} characters; Together allows {MAX_SUFFIX}, "
                    f"{MAX_SUFFIX - MAX_USER_SUFFIX} of which tuneport uses for the run tag",
                    f"shorten --suffix to {MAX_USER_SUFFIX} characters",
                )
            )
        if opts.dpo_beta is not None and cfg.method != "dpo":
            problems.append(("dpo_beta applies to --method dpo only", "drop dpo_beta"))
        if opts.train_on_inputs is not None and cfg.method != "sft":
            problems.append(("train_on_inputs applies to --method sft only", "drop it"))
        if opts.n_evals and cfg.validation is None:
            problems.append(("n_evals needs a validation file", "pass --validation FILE"))
        lora_set = [
            k
            for k in ("lora_r", "lora_alpha", "lora_dropout", "lora_trainable_modules")
            if getattr(opts, k) is not None
        ]
        if not opts.lora and lora_set:
            problems.append(
                (f"{', '.join(lora_set)} set with lora=false", "drop them or set lora=true")
            )
        if not problems:
            problems += self._limit_problems(cfg)
        if problems:
            raise ConfigError(
                "; ".join(p for p, _ in problems), hint="; ".join(f for _, f in problems)
            )

    def _limit_problems(self, cfg: JobConfig) -> list[tuple[str, str]]:
        limits = self.model_limits(cfg.model)
        opts = self.options
        problems: list[tuple[str, str]] = []

        def out_of(name: str, value: float | None, low: float | None, high: float | None) -> None:
            if value is None:
                return
            if (low is not None and value < low) or (high is not None and value > high):
                span = f"{'' if low is None else f'{low:g}'}..{'' if high is None else f'{high:g}'}"
                problems.append(
                    (
                        f"{name} {value:g} is outside {cfg.model}'s range {span}",
                        f"choose {name} within the range Together gives for the model",
                    )
                )

        out_of("epochs", cfg.epochs, 1, limits.max_num_epochs)
        out_of("n_evals", opts.n_evals, 0, limits.max_num_evals)
        out_of("n_checkpoints", opts.n_checkpoints, 1, limits.max_num_checkpoints)
        rate = learning_rate(
            opts.learning_rate, cfg.learning_rate_multiplier, DEFAULT_LEARNING_RATE
        )
        out_of("learning_rate", rate, limits.min_learning_rate, limits.max_learning_rate)
        seq_max = limits.max_seq_length_dpo if cfg.method == "dpo" else limits.max_seq_length_sft
        out_of("max_seq_length", opts.max_seq_length, limits.min_max_seq_length, seq_max)
        training = limits.lora_training if opts.lora else limits.full_training
        if training is None:
            kind = "LoRA" if opts.lora else "full fine-tuning"
            problems.append((f"{cfg.model} does not support {kind} on Together", "switch lora"))
            return problems
        top = training.max_batch_size_dpo if cfg.method == "dpo" else training.max_batch_size
        out_of("batch_size", cfg.batch_size, training.min_batch_size, top)
        if opts.lora and limits.lora_training is not None:
            out_of("lora_r", opts.lora_r, 1, limits.lora_training.max_rank)
        return problems

    # --- chat ------------------------------------------------------------------------------

    def chat_request(
        self, model: str, messages: Sequence[Message], options: ChatOptions
    ) -> dict[str, Any]:
        """OpenAI's request, plus ``name`` on tool messages: Together's tool message takes it
        (``ChatCompletionToolMessageParam``), OpenAI's does not."""
        request = super().chat_request(model, messages, options)
        for wire, message in zip(request["messages"], messages, strict=True):
            if message.role == "tool" and message.name is not None:
                wire["name"] = message.name
        return request
