"""Narrower vocabulary tiles for TRL's fused LM head where it runs without Triton (CPU).

TRL's fused head (`fused_lm_head=True`) projects the hidden states onto the vocabulary in
tiles of `trl.trainer.utils._CHUNKED_LOGPROB_CHUNK_SIZE` (32,768) columns and folds each
tile into an online log-sum-exp. With Triton (CUDA, XPU) the fold is one kernel over one
tile buffer. Without it the fold is a chain of torch ops holding about eight float32
temporaries the size of the tile, and every position is projected, the prompt's included:
at 32,768 columns that costs more memory than a plain float32 log-softmax over a 128k
vocabulary (benchmarks/loss_memory.py: 1,120 MiB against 1,534 MiB). Tiles of 8,192
columns give the same values with a quarter of the temporaries, and run faster on a CPU.

    with cpu_vocab_tiles(hidden_device):
        out = model(**inputs, fused_lm_head=True)

The width is read when the forward starts and saved for its backward, so setting it around
the forward is enough. Elsewhere (Triton devices, or a TRL without the setting) this does
nothing.
"""

from __future__ import annotations

from contextlib import contextmanager

import torch

__all__ = ["CPU_VOCAB_TILE", "cpu_vocab_tiles"]

CPU_VOCAB_TILE = 8192
_SETTING = "_CHUNKED_LOGPROB_CHUNK_SIZE"


def _uses_triton(device: torch.device) -> bool:
    from trl.trainer import utils

    predicate = getattr(utils, "_use_triton", None)
    return bool(predicate(device)) if predicate is not None else device.type in ("cuda", "xpu")


@contextmanager
def cpu_vocab_tiles(device: torch.device):
    """Within the block, TRL's fused head uses CPU_VOCAB_TILE-wide vocabulary tiles on
    `device` if it has no Triton (never wider than TRL's own setting)."""
    from trl.trainer import utils

    if _uses_triton(device) or not hasattr(utils, _SETTING):
        yield
        return
    saved = getattr(utils, _SETTING)
    setattr(utils, _SETTING, min(saved, CPU_VOCAB_TILE))
    try:
        yield
    finally:
        setattr(utils, _SETTING, saved)
