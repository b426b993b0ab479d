"""`CADFTConfig`: TRL's `SFTConfig` plus the CADFT options."""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field

from trl import SFTConfig

from cadft import defaults

from .data.packing import CUTTING_STRATEGIES

__all__ = ["CADFTConfig", "LOSS_TYPES", "LOSS_TYPE_ALIASES", "NORMALIZATIONS", "SAMPLE_WEIGHTS", "SFT_DIFFERENCES"]

LOSS_TYPES = ("nll", "dft", "cadft", "asft", "eaft")
# TRL's deprecated loss names, accepted as SFTConfig accepts them: with a FutureWarning
LOSS_TYPE_ALIASES = {"chunked_nll": "nll"}
NORMALIZATIONS = defaults.NORMALIZATIONS
# The sample weights: none (a bare token loss) or one of the estimators
SAMPLE_WEIGHTS = defaults.SAMPLE_WEIGHTS

# The SFTConfig fields whose default or meaning differs here, each with its reason (README,
# 'What "drop-in" was checked against'). Every other field is SFTConfig's own, default and
# meaning included: tests/test_drop_in.py compares the two dataclasses field by field.
SFT_DIFFERENCES = {
    "loss_type": "default 'cadft' (TRL: 'nll'), the loss this library adds; 'nll' and 'dft' are TRL's losses, "
    "'asft' and 'eaft' the token losses of ASFT and EAFT (as LLaMA-Factory's use_asft_loss and use_eaft_loss), and "
    "'chunked_nll' is TRL's deprecated alias of 'nll'",
    "bf16": "unset means bf16 only on an accelerator with native bf16 (TRL: bf16 unless fp16), since TRL's default "
    "stops a CPU-only machine with \"Your setup doesn't support bf16/gpu\"",
    "packing_strategy": "'wrapped' and 'bfd_split' are refused with sample weights (loss_type='cadft', or a "
    "cadft_estimator other than 'none'): they cut demonstrations across packed rows, and a cut demonstration has "
    "no single sample weight ('bfd' keeps each whole; a bare token loss takes every strategy)",
    "label_smoothing_factor": "> 0 needs loss_type='nll', where it works as in TRL; under 'dft' TRL ignores it and "
    "'cadft', 'asft' and 'eaft' have no smoothed form, so there it is an error instead of being ignored",
    "dataloader_pin_memory": "False when no accelerator is available: pinned memory only speeds copies to one, and "
    "without one torch warns at every epoch",
}


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
            "help": "The token loss: 'nll' (SFT), 'dft' (Dynamic Fine-Tuning), 'cadft' (CADFT's token power, "
            "-sg(p)**cadft_token_power * log p, DFT's by default, with the paper's sample weights unless "
            "cadft_estimator says otherwise), 'asft' (DFT anchored to the reference model by a KL term, arXiv "
            "2509.23753) or 'eaft' (the NLL gated by the normalised predictive entropy, arXiv 2601.02151). The sample "
            "weights are cadft_estimator's. 'chunked_nll', TRL's deprecated name of 'nll', means 'nll'.",
            "choices": [*LOSS_TYPES, *LOSS_TYPE_ALIASES],
        },
    )
    # The estimator's defaults are the paper's (cadft/defaults.py; docs/method.md). The fields of the
    # earlier estimator default to None ("not set") so that setting one that the chosen estimator
    # does not read is an error instead of being ignored.
    cadft_estimator: str | None = field(
        default=None,
        metadata={
            "help": "The sample weights (the CADFT estimator), on any loss_type's token loss. Default: 'zscore' for "
            "loss_type='cadft', 'none' (every weight 1, the bare token loss) for 'nll', 'dft', 'asft' and 'eaft'. "
            "'zscore' (the paper's): u = the demonstration's length-normalised "
            "NLL, z-scored over the optimizer step's global batch, weight exp(-beta * max(0, z)) in (0, 1]. The "
            "project's earlier estimator: 'ema' weights clip(c**beta / m, cadft_w_min, cadft_w_max), c = exp(-u), "
            "m a running mean of c**beta; 'batch' also rescales each step's gradient so that sum_i w_i M_i = "
            "sum_i M_i over the global batch (M_i = the sample's base-loss mass).",
            "choices": list(defaults.SAMPLE_WEIGHTS),
        },
    )
    cadft_normalization: str | None = field(
        default=None, metadata={"help": "Deprecated: the old name of cadft_estimator, which it sets (with a warning)."}
    )
    cadft_beta: float = field(
        default=defaults.BETA,
        metadata={
            "help": "How strongly compatibility modulates the sample weight (>= 0; 0 gives DFT exactly). 'zscore': "
            "w = exp(-beta * max(0, z)); 'ema'/'batch': the exponent in c**beta / m. Default 1, the paper's."
        },
    )
    cadft_token_power: float | None = field(
        default=None,
        metadata={
            "help": "loss_type='cadft' only: alpha in [0, 1], the token loss is -sg(p)**alpha * log p. 1 (default) is "
            "DFT's token loss; 0 the plain NLL (CADFT with beta=0 is then SFT). The earlier estimator's default was 0.5."
        },
    )
    cadft_eps: float | None = field(
        default=None,
        metadata={"help": "'zscore' only: eps in z = (u - mean) / (std + eps) (> 0; default 1e-6, the paper's)."},
    )
    cadft_scope: str | None = field(
        default=None,
        metadata={
            "help": "'zscore' only: the rows z is computed over. 'step' (default): the whole optimizer step's "
            "global batch, exact whatever the split (a no-grad pre-pass over the step's micro-batches when "
            "gradient_accumulation_steps > 1). 'micro_batch': each global micro-batch alone, no pre-pass; the "
            "update then depends on how the step is split into micro-batches.",
            "choices": list(defaults.SCOPES),
        },
    )
    cadft_w_min: float | None = field(
        default=None,
        metadata={"help": "'ema'/'batch' only: floor of the sample weight (default 0.1): no demonstration is dropped."},
    )
    cadft_w_max: float | None = field(
        default=None,
        metadata={"help": "'ema'/'batch' only: ceiling of the sample weight (>= cadft_w_min; default 3). 1 makes the "
                  "earlier estimator suppress-only."},
    )
    cadft_ema_decay: float | None = field(
        default=None,
        metadata={
            "help": "'ema'/'batch' only: decay of the running normaliser m, an EMA over optimizer steps of the "
            "global-batch mean of c**beta (default 0.9; 0 uses the current batch's mean alone)."
        },
    )
    cadft_calibration_samples: int | None = field(
        default=None,
        metadata={
            "help": "'ema'/'batch' only: training samples scored in inference mode before the first step to "
            "initialise m (>= 1, capped at the dataset size; default 64)."
        },
    )

    # ---- the token losses of ASFT and EAFT (docs/method.md, "Token losses"). Each field defaults
    # to None ("not set"): one of another loss_type is an error instead of being ignored
    asft_kl_coef: float | None = field(
        default=None,
        metadata={
            "help": "loss_type='asft' only: lambda >= 0, the weight of the anchor KL(pi_ref || pi_theta) added to DFT's "
            "token loss (default 0.1, the ASFT authors' kl_weight and LLaMA-Factory's asft_alpha). The reference is "
            "the model as training starts: under PEFT the same model with its adapter disabled, else a frozen copy "
            "(one more copy of the weights in memory)."
        },
    )
    eaft_alpha: float | None = field(
        default=None,
        metadata={"help": "loss_type='eaft' only: the exponent of the entropy gate min(1, H / ln eaft_k)**alpha "
                  "(> 0; default 1, LLaMA-Factory's eaft_alpha)."},
    )
    eaft_k: int | None = field(
        default=None,
        metadata={"help": "loss_type='eaft' only: K, the gate's normaliser ln K and the top-K of eaft_entropy='topk' "
                  "(>= 2; default 20, the EAFT paper's)."},
    )
    eaft_entropy: str | None = field(
        default=None,
        metadata={
            "help": "loss_type='eaft' only: the entropy H of the gate. 'full' (default): the exact entropy over the "
            "vocabulary, which TRL's fused LM head computes in the training forward (no extra cost). 'topk': the "
            "paper's approximation, the entropy of the softmax over the K largest logits (an extra no-grad projection "
            "of the trainable positions onto the vocabulary, 256 positions at a time).",
            "choices": list(defaults.EAFT_ENTROPIES),
        },
    )

    # ---- rewriting (off unless `rewrite=True`; see docs/rewriting.md) ------------------
    # The defaults are the paper's procedure; `rewrite_preset="verified"` turns on the
    # project's gates. Each gate field left unset (None) takes its preset's value
    rewrite: bool = field(
        default=False,
        metadata={"help": "Enable delayed, low-frequency, compatibility-guided rewriting of persistently "
                  "incompatible demonstrations (needs loss_type='cadft'). By default the paper's procedure: after "
                  "3000 steps, every 1000, the samples (0.005 of the set) with the highest moving-average NLL, each "
                  "replaced with probability 0.5 by the policy's own sample for the prompt alone, unverified."},
    )
    rewrite_preset: str = field(
        default="paper",
        metadata={"help": "'paper' (prompt alone, no verifier, no gain gate, replacement probability 0.5, one "
                  "candidate) or 'verified' (reference in the prompt, math verifier, gain gate, probability 1, two "
                  "candidates). Sets rewrite_reference_in_prompt, rewrite_verifier, rewrite_gain_gate, "
                  "rewrite_replace_prob and rewrite_num_candidates where they are not given.",
                  "choices": ["paper", "verified"]},
    )
    rewrite_start_step: int | None = field(
        default=None,
        metadata={"help": "Warm-up: optimizer steps before the first round (default 3000, the paper's T_warm, "
                  "unless rewrite_start_fraction is given)."},
    )
    rewrite_start_fraction: float | None = field(
        default=None, metadata={"help": "Alternative to rewrite_start_step: a fraction of max steps, in (0, 1]."}
    )
    rewrite_interval_steps: int | None = field(
        default=None,
        metadata={"help": "Optimizer steps between rounds (default 1000, the paper's K, unless "
                  "rewrite_interval_fraction is given)."},
    )
    rewrite_interval_fraction: float | None = field(
        default=None, metadata={"help": "Alternative to rewrite_interval_steps: a fraction of max steps, in (0, 1]."}
    )
    rewrite_selection: str = field(
        default="top_u",
        metadata={"help": "'top_u' (the paper's: the highest moving-average u, the length-normalised NLL, among "
                  "samples seen on at least rewrite_min_visits visits) or 'flagged' (weight below "
                  "rewrite_flag_threshold on rewrite_persistence consecutive visits, least compatible first).",
                  "choices": ["top_u", "flagged"]},
    )
    rewrite_min_visits: int = field(
        default=2,
        metadata={"help": "top_u selection: visits (since its last rewrite attempt) a sample needs to be selected."},
    )
    rewrite_persistence: int = field(
        default=2, metadata={"help": "flagged selection: consecutive flagged visits that make a sample persistently "
                             "incompatible."}
    )
    rewrite_flag_threshold: float = field(
        default=0.5, metadata={"help": "flagged selection: a visit is flagged when the weight before clipping is "
                               "below this."}
    )
    rewrite_flag_quantile: float | None = field(
        default=None,
        metadata={"help": "flagged selection: also flag a visit whose compatibility is in this bottom quantile of "
                  "all tracked samples."},
    )
    rewrite_budget: float = field(
        default=0.005,
        metadata={"help": "Samples per round: below 1, a fraction of the training set (at least one); 1 or more, a "
                  "count. Default 0.005, the paper's half a percent."},
    )
    rewrite_replace_prob: float | None = field(
        default=None,
        metadata={"help": "Probability that a selected target is replaced (a seeded draw per sample and round, "
                  "recorded in the provenance); default from the preset: 0.5 (paper), 1 (verified)."},
    )
    rewrite_seed: int | None = field(
        default=None, metadata={"help": "Seed of the replacement draws (default: seed)."}
    )
    rewrite_reference_in_prompt: bool | None = field(
        default=None,
        metadata={"help": "Show the original demonstration to the generator as a reference (rewrite_template); "
                  "off: the prompt alone. Default from the preset: off (paper), on (verified)."},
    )
    rewrite_gain_gate: bool | None = field(
        default=None,
        metadata={"help": "Replace only if c(candidate) >= c(original) + rewrite_min_gain. Default from the preset: "
                  "off (paper), on (verified)."},
    )
    rewrite_num_candidates: int | None = field(
        default=None,
        metadata={"help": "Candidates generated per selected sample (the most compatible that passes the gates "
                  "wins). Default from the preset: 1 (paper), 2 (verified)."},
    )
    rewrite_min_gain: float = field(
        default=0.0,
        metadata={"help": "The gain gate's margin: a candidate needs c(candidate) >= c(original) + this."},
    )
    rewrite_max_new_tokens: int = field(default=256, metadata={"help": "Generation length limit for rewrites."})
    rewrite_temperature: float = field(default=0.7, metadata={"help": "Sampling temperature for rewrites."})
    rewrite_top_p: float = field(default=0.9, metadata={"help": "Nucleus sampling for rewrites (the paper's 0.9)."})
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
    rewrite_verifier: str | None = field(
        default=None,
        metadata={"help": "'math' (math-verify final-answer equivalence), 'exact' (normalised final answer), "
                  "'none' (unverified) or 'module:function'. Default from the preset: none (paper), math (verified)."},
    )
    rewrite_answer_column: str | None = field(
        default=None,
        metadata={"help": "Column holding each sample's reference answer for the verifier and for measuring "
                  "whether replacements are right (e.g. 'answer'); default: the final answer of the original."},
    )
    rewrite_template: str | None = field(
        default=None,
        metadata={"help": "Rewrite prompt template with {question} and {reference} (default: built in; needs "
                  "rewrite_reference_in_prompt)."},
    )
    rewrite_tracker_decay: float = field(
        default=0.5, metadata={"help": "EMA decay of each sample's tracked compatibility (and u) over its visits."}
    )
    rewrite_round_timeout: float = field(
        default=21600.0,
        metadata={"help": "Seconds the other processes wait for the main process's rewrite generation in a round "
                  "(a separate gloo group with this timeout, not ddp_timeout; several processes only)."},
    )

    def __post_init__(self):
        given = defaults.renamed({old: getattr(self, old) for old in defaults.RENAMED} |
                                 {new: getattr(self, new) for new in defaults.RENAMED.values()})
        for old, new in defaults.RENAMED.items():
            setattr(self, old, None)
            setattr(self, new, given.get(new))
        if self.loss_type in LOSS_TYPE_ALIASES:
            name = LOSS_TYPE_ALIASES[self.loss_type]
            warnings.warn(
                f"loss_type={self.loss_type!r} is deprecated in TRL and will be removed in TRL v2.0.0; it means "
                f"loss_type={name!r}, the same loss, which is what to write instead.",
                FutureWarning,
                stacklevel=3,  # the line that built the config
            )
            self.loss_type = name
        if self.loss_type not in LOSS_TYPES:
            raise ValueError(f"loss_type={self.loss_type!r} is not valid; choose one of {', '.join(LOSS_TYPES)} "
                             f"({', '.join(LOSS_TYPE_ALIASES)}: TRL's deprecated name of nll)")
        self._resolve_token_loss()
        self._resolve_estimator()
        if self.rewrite:
            self._check_rewrite()
        if self.bf16 is None:
            self.bf16 = not self.fp16 and _bf16_accelerator(self.use_cpu)
        import torch

        # Pinned memory only speeds copies to an accelerator; without one, torch warns at every epoch
        accelerator = getattr(torch, "accelerator", None)  # torch >= 2.6
        if self.use_cpu or not (accelerator.is_available() if accelerator else torch.cuda.is_available()):
            self.dataloader_pin_memory = False
        super().__post_init__()  # also renames TRL's deprecated packing strategy 'bfd-requeue' to 'bfd_split'
        packs = self.packing or self.eval_packing
        if self.weighs_samples and packs and self.packing_strategy in CUTTING_STRATEGIES:
            raise ValueError(
                f"packing_strategy={self.packing_strategy!r} cuts demonstrations across packed rows, and a cut "
                "demonstration has no single CADFT weight; use packing_strategy='bfd' (TRL's default), which keeps "
                "each one whole, or cadft_estimator='none' with a bare token loss (loss_type 'nll', 'dft', 'asft' "
                "or 'eaft' alone), which has no sample weight."
            )

    @property
    def weighs_samples(self) -> bool:
        """Whether the run weighs its samples (an estimator other than 'none')."""
        return self.cadft_estimator != defaults.NO_WEIGHTS

    @classmethod
    def from_training_arguments(cls, args) -> CADFTConfig:
        """A `TrainingArguments` (or a TRL config built on one) as a CADFTConfig, the way
        `SFTTrainer` makes its `SFTConfig` of one: each field `args` has keeps its value, each
        it lacks takes CADFTConfig's default (loss_type='cadft' for a `TrainingArguments`)."""
        values = args.to_dict()
        # to_dict masks every *_token field (hub_token, and an SFTConfig's eos_token and pad_token)
        values.update({name: getattr(args, name) for name in values if name.endswith("_token")})
        values.pop("push_to_hub_token", None)  # transformers 4.x: deprecated
        return cls(**values)

    def _resolve_token_loss(self) -> None:
        """Check the token loss's fields and fill in the defaults of `loss_type`'s; a field of
        another loss type is an error (`defaults.resolve_token_loss_options`)."""
        fields = [f for group in defaults.TOKEN_LOSS_FIELDS.values() for f in group]
        resolved = defaults.resolve_token_loss_options(self.loss_type, {name: getattr(self, name) for name in fields})
        for name in fields:
            setattr(self, name, resolved.get(name))

    def _resolve_estimator(self) -> None:
        """Check the estimator's fields and fill in the defaults of the chosen one (unset: the
        loss type's own, `defaults.sample_weights_of`). A field the chosen estimator does not
        read is an error that names the valid combinations (`defaults.resolve_estimator_options`,
        which `cadft score` uses too)."""
        self.cadft_estimator = defaults.sample_weights_of(self.loss_type, self.cadft_estimator)
        fields = ("cadft_estimator", "cadft_beta", "cadft_token_power", *defaults.ZSCORE_FIELDS,
                  *defaults.RUNNING_FIELDS)
        resolved = defaults.resolve_estimator_options({name: getattr(self, name) for name in fields})
        for name in fields:
            setattr(self, name, resolved[name])

    def _check_rewrite(self) -> None:
        from .rewriting.presets import resolve_gates

        if self.loss_type != "cadft":
            raise ValueError("rewrite=True needs loss_type='cadft' (it tracks samples by their CADFT compatibility)")
        if self.dataloader_num_workers:
            raise ValueError("rewrite=True needs dataloader_num_workers=0: rewritten targets live in the collator")
        gates = resolve_gates(
            self.rewrite_preset, reference_in_prompt=self.rewrite_reference_in_prompt, verifier=self.rewrite_verifier,
            gain_gate=self.rewrite_gain_gate, replace_prob=self.rewrite_replace_prob,
            num_candidates=self.rewrite_num_candidates,
        )
        for name, value in gates.items():
            setattr(self, f"rewrite_{name}", value)
        for name in ("rewrite_start_fraction", "rewrite_interval_fraction"):
            value = getattr(self, name)
            if value is not None and not 0 < value <= 1:
                raise ValueError(f"{name} must be in (0, 1], got {value}")
        for name in ("rewrite_persistence", "rewrite_min_visits", "rewrite_num_candidates", "rewrite_max_new_tokens"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.rewrite_selection not in ("top_u", "flagged"):
            raise ValueError(f"rewrite_selection={self.rewrite_selection!r} is not valid; choose top_u or flagged")
        if self.rewrite_budget <= 0:
            raise ValueError(f"rewrite_budget must be > 0, got {self.rewrite_budget}")
        if not 0 <= self.rewrite_replace_prob <= 1:
            raise ValueError(f"rewrite_replace_prob must be in [0, 1], got {self.rewrite_replace_prob}")
        if self.rewrite_template is not None and not self.rewrite_reference_in_prompt:
            raise ValueError("rewrite_template is the prompt with a reference: it needs "
                             "rewrite_reference_in_prompt=True (or rewrite_preset='verified')")
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
