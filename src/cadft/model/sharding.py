"""Equal shards of a list across processes, for inference passes outside training.

Every item lands in exactly one process's shard, so a sum over all shards is the same
whatever the number of processes; and every shard has the same length, so every process
runs the same number of forward passes. That matters wherever a forward is a collective
(FSDP and DeepSpeed ZeRO-3 gather the parameters in every forward): a process that ran
one forward fewer would leave the others waiting. The padding repeats a real item and is
marked not real; its result must be left out.

    shard, real = rank_shard(list(range(7)), world=2, rank=1)
    # shard == [4, 5, 6, 0], real == [True, True, True, False]

DeepSpeed ZeRO-3 also changes how such a forward must run (`zero3_partitioned`,
`no_grad_mode`).
"""

from __future__ import annotations

from typing import TypeVar

import torch

__all__ = ["rank_shard", "zero3_partitioned", "no_grad_mode"]

T = TypeVar("T")


def rank_shard(items: list[T], world: int, rank: int) -> tuple[list[T], list[bool]]:
    """Process `rank`'s contiguous share of `items` among `world` processes, padded to
    ceil(len(items) / world) with repeats of items[0]; and which entries are real.

    Concatenating every rank's real entries in rank order gives `items` back."""
    if world < 1 or not 0 <= rank < world:
        raise ValueError(f"need 0 <= rank < world, got rank={rank}, world={world}")
    if not items:
        return [], []
    per_rank = -(-len(items) // world)  # ceil
    shard = items[rank * per_rank : (rank + 1) * per_rank]
    padding = per_rank - len(shard)
    return shard + [items[0]] * padding, [True] * len(shard) + [False] * padding


def zero3_partitioned(model) -> bool:
    """Whether DeepSpeed ZeRO-3 partitions `model`'s parameters (they carry a `ds_id`). ZeRO-3
    partitions every parameter of the module it wraps, a frozen base under LoRA included, so
    the first one tells (a scoring forward asks once per batch)."""
    first = next(iter(model.parameters()), None)
    return first is not None and hasattr(first, "ds_id")


def no_grad_mode(model):
    """The context for a forward outside training: `torch.inference_mode()`, or
    `torch.no_grad()` where ZeRO-3 partitions the model. Its parameter gathers inside
    inference mode leave inference tensors behind that the next training step cannot save
    for backward ("Inference tensors cannot be saved for backward", after a rewriting
    round; tests/test_deepspeed.py)."""
    return torch.no_grad() if zero3_partitioned(model) else torch.inference_mode()
