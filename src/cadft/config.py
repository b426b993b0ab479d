"""`CADFTConfig`: TRL's `SFTConfig` plus the CADFT options."""

from __future__ import annotations

from dataclasses import dataclass, field

from trl import SFTConfig

from cadft import defaults

__all__ = ["CADFTConfig", "LOSS_TYPES", "NORMALIZATIONS"]

LOSS_TYPES = ("nll", "dft", "cadft")
NORMALIZATIONS = ("ema", "batch")


def _bf16_accelerator(use_cpu: bool) -> bool:
    """Whether training runs on an accelerator with native bf16 (the devices on which
    transformers accepts bf16 without use_cpu)."""
    from transformers.utils import is_torch_bf16_gpu_available, is_torch_xla_available

    return not use_cpu and (is_torch_bf16_gpu_available() or is_torch_xla_available())


@dataclass
class CADFTConfig(SFTConfig):
    """Configuration for `CADFTTrainer`. Every `SFTConfig`/`TrainingArguments` field works
    as usual; the fields below add the CADFT sample weighting (see docs/method.md)."""

    _VALID_DICT_FIELDS = SFTConfig._VALID_DICT_FIELDS + ["rewrite_generator_kwargs"]

    # TRL's unset bf16 becomes True (unless fp16), which stops a CPU-only machine with
    # "Your setup doesn't support bf16/gpu"; unset here means bf16 where it runs natively
    bf16: bool | None = field(
        default=None,
        metadata={
            "help": "Whether to use bf16 (mixed) precision instead of 32-bit. If not set: True when training runs on "
            "an accelerator with bf16 support (Ampere+ GPU, XPU, NPU, TPU) and fp16 is not set, else False (float32)."
        },
    )

    loss_type: str = field(
        default="cadft",
        metadata={
            "help": "Loss: 'nll' (SFT), 'dft' (Dynamic Fine-Tuning) or 'cadft' (DFT with compatibility-aware "
            "sample weights).",
            "choices": list(LOSS_TYPES),
        },
    )
    # The estimator's defaults are the variant the ablation's pre-registered rule chose
    # (cadft/defaults.py; docs/method.md, "Defaults chosen by the ablation")
    cadft_beta: float = field(
        default=defaults.BETA,
        metadata={
            "help": "Exponent on the compatibility c in the sample weight c**beta / m. 0 gives the base loss exactly "
            "(DFT at cadft_token_power 1); larger values down-weight incompatible demonstrations more; 1 (the "
            "default, the ablation's choice) weights by the per-token geometric-mean probability itself."
        },
    )
    cadft_w_min: float = field(
        default=defaults.W_MIN,
        metadata={
            "help": "Floor of the sample weight. Positive by default so that no demonstration is silently "
            "discarded; 0 lets weights vanish."
        },
    )
    cadft_w_max: float = field(
        default=defaults.W_MAX,
        metadata={"help": "Ceiling of the sample weight: bounds the variance of the estimator (>= cadft_w_min). 1 "
                  "makes CADFT suppress-only (no row weighs more than in the base loss)."},
    )
    cadft_token_power: float = field(
        default=defaults.TOKEN_POWER,
        metadata={
            "help": "alpha in [0, 1]: the token loss is -sg(p)**alpha * log p. 1 is DFT's token weighting; 0 the plain "
            "NLL (CADFT with beta=0 is then SFT); values between trade DFT's stability against learning tokens the "
            "model finds unlikely. The default 0.5 is the ablation's choice (docs/method.md)."
        },
    )
    cadft_normalization: str = field(
        default=defaults.NORMALIZATION,
        metadata={
            "help": "How the weights keep the step size: 'ema' divides c**beta by m, a running mean over steps; "
            "'batch' also rescales each optimizer step's gradient so that sum_i w_i M_i = sum_i M_i over the global "
            "batch (M_i = the sample's base-loss mass), whatever the batch's composition.",
            "choices": list(NORMALIZATIONS),
        },
    )
    cadft_ema_decay: float = field(
        default=0.9,
        metadata={
            "help": "Decay of the running normaliser m, an EMA over optimizer steps of the global-batch mean of "
            "c**beta. 0 uses the current batch's mean alone."
        },
    )
    cadft_calibration_samples: int = field(
        default=64,
        metadata={
            "help": "Training samples scored in inference mode before the first step to initialise m (>= 1; "
            "capped at the dataset size)."
        },
    )

    # ---- rewriting (off unless `rewrite=True`; see docs/rewriting.md) ------------------
    rewrite: bool = field(
        default=False,
        metadata={"help": "Enable delayed, low-frequency, compatibility-guided rewriting of persistently "
                  "incompatible demonstrations (needs loss_type='cadft')."},
    )
    rewrite_start_step: int | None = field(
        default=None, metadata={"help": "First optimizer step after which a round may run (default: one epoch)."}
    )
    rewrite_start_fraction: float | None = field(
        default=None, metadata={"help": "Alternative to rewrite_start_step: a fraction of max steps, in (0, 1]."}
    )
    rewrite_interval_steps: int | None = field(
        default=None, metadata={"help": "Optimizer steps between rounds (default: one epoch)."}
    )
    rewrite_persistence: int = field(
        default=2, metadata={"help": "Consecutive flagged visits that make a sample persistently incompatible."}
    )
    rewrite_flag_threshold: float = field(
        default=0.5, metadata={"help": "A visit is flagged when the weight before clipping, c**beta/m, is below this."}
    )
    rewrite_flag_quantile: float | None = field(
        default=None,
        metadata={"help": "Also flag a visit whose compatibility is in this bottom quantile of all tracked samples."},
    )
    rewrite_budget: float = field(
        default=0.1,
        metadata={"help": "Samples per round: below 1, a fraction of the training set; 1 or more, a count."},
    )
    rewrite_num_candidates: int = field(default=2, metadata={"help": "Candidates generated per selected sample."})
    rewrite_min_gain: float = field(
        default=0.0,
        metadata={"help": "Margin: a candidate needs c(candidate) >= c(original) + this to be accepted."},
    )
    rewrite_max_new_tokens: int = field(default=256, metadata={"help": "Generation length limit for rewrites."})
    rewrite_temperature: float = field(default=0.7, metadata={"help": "Sampling temperature for rewrites."})
    rewrite_top_p: float = field(default=0.95, metadata={"help": "Nucleus sampling for rewrites."})
    rewrite_max_reply_chars: int | None = field(
        default=None,
        metadata={"help": "A generator reply longer than this many characters is rejected unverified "
                  "('reply_too_large') and stored cut short (default: 32 x rewrite_max_new_tokens)."},
    )
    rewrite_generator: str = field(
        default="policy",
        metadata={"help": "'policy' (the model being trained), 'local:<path-or-name>', "
                  "'openai:<model>@<base_url>' (API key from $OPENAI_API_KEY) or 'vllm:<path-or-name>'."},
    )
    rewrite_generator_kwargs: dict | str | None = field(
        default=None,
        metadata={"help": "Keyword arguments for the generator, as a dict or a JSON string, e.g. "
                  "'{\"timeout_s\": 30, \"max_retries\": 5, \"concurrency\": 8}' for an openai: generator."},
    )
    rewrite_verifier: str = field(
        default="math",
        metadata={"help": "'math' (math-verify final-answer equivalence), 'exact' (normalised final answer), "
                  "'none' (unverified; warns) or 'module:function'."},
    )
    rewrite_answer_column: str | None = field(
        default=None,
        metadata={"help": "Column holding each sample's reference answer for the verifier (e.g. 'answer'); "
                  "default: the final answer of the original demonstration."},
    )
    rewrite_template: str | None = field(
        default=None, metadata={"help": "Rewrite prompt template with {question} and {reference} (default: built in)."}
    )
    rewrite_tracker_decay: float = field(
        default=0.5, metadata={"help": "EMA decay of each sample's tracked compatibility over its visits."}
    )
    rewrite_round_timeout: float = field(
        default=21600.0,
        metadata={"help": "Seconds the other processes wait for the main process's rewrite generation in a round "
                  "(a separate gloo group with this timeout, not ddp_timeout; several processes only)."},
    )

    def __post_init__(self):
        if self.loss_type not in LOSS_TYPES:
            raise ValueError(f"loss_type={self.loss_type!r} is not valid; choose one of {', '.join(LOSS_TYPES)}")
        if self.cadft_beta < 0:
            raise ValueError(f"cadft_beta must be >= 0, got {self.cadft_beta}")
        if not 0 <= self.cadft_w_min <= self.cadft_w_max:
            raise ValueError(
                f"need 0 <= cadft_w_min <= cadft_w_max, got cadft_w_min={self.cadft_w_min}, "
                f"cadft_w_max={self.cadft_w_max}"
            )
        if not 0 <= self.cadft_token_power <= 1:
            raise ValueError(f"cadft_token_power must be in [0, 1], got {self.cadft_token_power}")
        if self.cadft_normalization not in NORMALIZATIONS:
            raise ValueError(
                f"cadft_normalization={self.cadft_normalization!r} is not valid; choose one of {', '.join(NORMALIZATIONS)}"
            )
        if not 0 <= self.cadft_ema_decay < 1:
            raise ValueError(f"cadft_ema_decay must be in [0, 1), got {self.cadft_ema_decay}")
        if self.cadft_calibration_samples < 1:
            raise ValueError(f"cadft_calibration_samples must be >= 1, got {self.cadft_calibration_samples}")
        if self.loss_type == "cadft" and (self.packing or self.padding_free):
            raise ValueError(
                "loss_type='cadft' needs one sequence per row to compute each sample's compatibility; set "
                "packing=False and padding_free=False (or use loss_type='dft')."
            )
        if self.rewrite:
            self._check_rewrite()
        if self.bf16 is None:
            self.bf16 = not self.fp16 and _bf16_accelerator(self.use_cpu)
        import torch

        # Pinned memory only speeds copies to an accelerator; without one, torch warns at every epoch
        accelerator = getattr(torch, "accelerator", None)  # torch >= 2.6
        if self.use_cpu or not (accelerator.is_available() if accelerator else torch.cuda.is_available()):
            self.dataloader_pin_memory = False
        super().__post_init__()

    def _check_rewrite(self) -> None:
        if self.loss_type != "cadft":
            raise ValueError("rewrite=True needs loss_type='cadft' (it flags samples by their CADFT weight)")
        if self.dataloader_num_workers:
            raise ValueError("rewrite=True needs dataloader_num_workers=0: rewritten targets live in the collator")
        if self.rewrite_start_fraction is not None and not 0 < self.rewrite_start_fraction <= 1:
            raise ValueError(f"rewrite_start_fraction must be in (0, 1], got {self.rewrite_start_fraction}")
        for name in ("rewrite_persistence", "rewrite_num_candidates", "rewrite_max_new_tokens"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.rewrite_budget <= 0:
            raise ValueError(f"rewrite_budget must be > 0, got {self.rewrite_budget}")
        if self.rewrite_max_reply_chars is not None and self.rewrite_max_reply_chars < 1:
            raise ValueError(f"rewrite_max_reply_chars must be >= 1 (or unset), got {self.rewrite_max_reply_chars}")
        if self.rewrite_flag_quantile is not None and not 0 < self.rewrite_flag_quantile < 1:
            raise ValueError(f"rewrite_flag_quantile must be in (0, 1), got {self.rewrite_flag_quantile}")
        if not 0 <= self.rewrite_tracker_decay < 1:
            raise ValueError(f"rewrite_tracker_decay must be in [0, 1), got {self.rewrite_tracker_decay}")
        if self.rewrite_round_timeout <= 0:
            raise ValueError(f"rewrite_round_timeout must be > 0 seconds, got {self.rewrite_round_timeout}")
        kinds = ("policy", "local:", "openai:", "vllm:")
        if not (self.rewrite_generator == "policy" or self.rewrite_generator.startswith(kinds[1:])):
            raise ValueError(f"rewrite_generator={self.rewrite_generator!r}; valid: policy, local:<path>, "
                             "openai:<model>@<base_url>, vllm:<path>")
