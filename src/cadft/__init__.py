"""cadft: Compatibility-Aware Dynamic Fine-Tuning on top of TRL.

    from cadft import CADFTConfig, CADFTTrainer
    trainer = CADFTTrainer(model="embedded", args=CADFTConfig("out"), train_dataset=dataset)
    trainer.train()

The trainer and config (which import transformers and TRL) load on first use, so light
commands such as `cadft report` start fast.
"""

from importlib import import_module

from .losses import cadft_loss, compatibility, dft_loss, raw_sample_weights, sample_weights, sft_loss, weight_stats
from .normalizer import RunningNormalizer

__version__ = "0.1.0"

_LAZY = {"CADFTConfig": "config", "LOSS_TYPES": "config", "CADFTTrainer": "trainer"}

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


def __getattr__(name):
    if name in _LAZY:
        return getattr(import_module(f".{_LAZY[name]}", __name__), name)
    raise AttributeError(f"module 'cadft' has no attribute {name!r}")
