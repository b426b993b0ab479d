"""`CADFTConfig`: TRL's `SFTConfig` plus the CADFT options."""

from __future__ import annotations

from dataclasses import dataclass, field

from trl import SFTConfig

__all__ = ["CADFTConfig", "LOSS_TYPES"]

LOSS_TYPES = ("nll", "dft", "cadft")


@dataclass
class CADFTConfig(SFTConfig):
    """Configuration for `CADFTTrainer`. Every `SFTConfig`/`TrainingArguments` field works
    as usual; the fields below add the CADFT sample weighting (see docs/method.md)."""

    loss_type: str = field(
        default="cadft",
        metadata={
            "help": "Loss: 'nll' (SFT), 'dft' (Dynamic Fine-Tuning) or 'cadft' (DFT with compatibility-aware "
            "sample weights).",
            "choices": list(LOSS_TYPES),
        },
    )
    cadft_beta: float = field(
        default=1.0,
        metadata={
            "help": "Exponent on the compatibility c in the sample weight c**beta / m. 0 gives DFT exactly; larger "
            "values down-weight incompatible demonstrations more. 1 weights by the per-token geometric-mean "
            "probability itself."
        },
    )
    cadft_w_min: float = field(
        default=0.1,
        metadata={
            "help": "Floor of the sample weight. Positive by default so that no demonstration is silently "
            "discarded; 0 lets weights vanish."
        },
    )
    cadft_w_max: float = field(
        default=3.0,
        metadata={"help": "Ceiling of the sample weight: bounds the variance of the estimator (>= cadft_w_min)."},
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
        if not 0 <= self.cadft_ema_decay < 1:
            raise ValueError(f"cadft_ema_decay must be in [0, 1), got {self.cadft_ema_decay}")
        if self.cadft_calibration_samples < 1:
            raise ValueError(f"cadft_calibration_samples must be >= 1, got {self.cadft_calibration_samples}")
        if self.loss_type == "cadft" and (self.packing or self.padding_free):
            raise ValueError(
                "loss_type='cadft' needs one sequence per row to compute each sample's compatibility; set "
                "packing=False and padding_free=False (or use loss_type='dft')."
            )
        super().__post_init__()
