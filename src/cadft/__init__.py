"""cadft: Compatibility-Aware Dynamic Fine-Tuning on top of TRL.

    from cadft import CADFTConfig, CADFTTrainer
    trainer = CADFTTrainer(model="embedded", args=CADFTConfig("out"), train_dataset=dataset)
    trainer.train()

Everything loads on first use (the losses import torch, the trainer and config
transformers and TRL), so that `cadft --help` and checking a data file start fast.
"""

from importlib import import_module

from ._compat import install as _keep_old_module_paths

__version__ = "0.1.0"
_keep_old_module_paths()  # `cadft.scoring` and the other moved modules: cadft/_compat

_LAZY = {
    "CADFTConfig": "config",
    "LOSS_TYPES": "config",
    "CADFTTrainer": "training.trainer",
    "RunningNormalizer": "estimators.normalizer",
    **{name: "losses" for name in ("cadft_loss", "compatibility", "dft_loss", "raw_sample_weights",
                                   "sample_weights", "sft_loss", "weight_stats")},
}

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
