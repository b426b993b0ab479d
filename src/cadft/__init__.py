"""cadft: Compatibility-Aware Dynamic Fine-Tuning on top of TRL.

    from cadft import CADFTConfig, CADFTTrainer
    trainer = CADFTTrainer(model="embedded", args=CADFTConfig("out"), train_dataset=dataset)
    trainer.train()
"""

from .config import LOSS_TYPES, CADFTConfig
from .losses import cadft_loss, compatibility, dft_loss, raw_sample_weights, sample_weights, sft_loss, weight_stats
from .normalizer import RunningNormalizer
from .trainer import CADFTTrainer

__version__ = "0.1.0"

__all__ = [
    "CADFTConfig",
    "CADFTTrainer",
    "LOSS_TYPES",
    "RunningNormalizer",
    "cadft_loss",
    "compatibility",
    "dft_loss",
    "raw_sample_weights",
    "sample_weights",
    "sft_loss",
    "weight_stats",
]
