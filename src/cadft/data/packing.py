"""Per-sample CADFT on packed and padding-free batches.

A padding-free batch (TRL's `padding_free=True`, or `packing=True` with the `bfd` strategy)
is one row holding several demonstrations back to back; `position_ids` restart at 0 at
each one, and transformers builds the block-diagonal attention from them. A per-sample
weight needs each demonstration's own tokens, so the loss sees the batch *unpacked*: the
label-aligned per-token tensors of the one row are laid out as one row per segment,
(S, L), and every estimator runs on that exactly as on a padded batch. The gather keeps
the graph, so the gradient flows back to the packed forward.

To know which demonstration each segment is, the packed dataset carries a per-token
column of sample ids (`TOKEN_SAMPLE_IDS`), packed with the tokens by TRL's `pack_dataset`;
the collator splits each packed row back into its demonstrations (`collate.split_packed`),
which is also where a rewritten target replaces its original.

    rows = unpack_rows(position_ids, num_segments, out.log_probs, out.label_mask)
"""

from __future__ import annotations

import torch

from .collate import SAMPLE_ID, TOKEN_SAMPLE_IDS

__all__ = ["TOKEN_SAMPLE_IDS", "CUTTING_STRATEGIES", "token_sample_ids", "segment_of_labels", "unpack_rows"]

# TRL packing strategies that cut a demonstration across rows: a cut demonstration has no single weight
CUTTING_STRATEGIES = ("wrapped", "bfd_split")


def token_sample_ids(example: dict) -> dict:
    """The per-token sample-id column of one tokenized demonstration (a `datasets.map` function)."""
    return {TOKEN_SAMPLE_IDS: [example[SAMPLE_ID]] * len(example["input_ids"])}


def segment_of_labels(position_ids: torch.Tensor) -> torch.Tensor:
    """The segment index of each label position of a one-row padding-free batch.

    position_ids: (1, T), restarting at 0 at every demonstration. The label at position t
    is token t + 1, so it belongs to the segment of token t + 1. Returns (T - 1,) long."""
    if position_ids.dim() != 2 or position_ids.shape[0] != 1:
        raise ValueError(f"a padding-free batch is one row; position_ids has shape {tuple(position_ids.shape)}")
    segment = (position_ids[0] == 0).long().cumsum(0) - 1  # (T,)
    return segment[1:]


def unpack_rows(position_ids: torch.Tensor, num_segments: int | None, *label_tensors: torch.Tensor):
    """Each (1, T - 1) label-aligned tensor of a padding-free batch as (S, L): row s holds the
    label positions of segment s, left-aligned, zero (False) beyond its length.

    `num_segments` is the number of demonstrations (the batch's sample ids); trailing
    segments beyond it (padding, whose position ids are 0) must carry no label, and are left
    out. None keeps every segment. Differentiable in the tensors (an index_put)."""
    seg = segment_of_labels(position_ids).to(label_tensors[0].device)  # (T-1,)
    total = int(seg.max()) + 1 if seg.numel() else 0
    counts = torch.bincount(seg, minlength=total)
    starts = torch.cumsum(counts, 0) - counts
    col = torch.arange(seg.numel(), device=seg.device) - starts[seg]
    keep = num_segments if num_segments is not None else total
    width = int(counts[:keep].max()) if keep > 0 else 0
    inside = seg < keep
    out = []
    for tensor in label_tensors:
        if tensor.shape[0] != 1:
            raise ValueError(f"a padding-free batch is one row; got a tensor of shape {tuple(tensor.shape)}")
        values = tensor[0]
        if values.dtype == torch.bool and bool(values[~inside].any()):
            raise ValueError("a label lies beyond the batch's demonstrations (more segments than sample ids)")
        rows = values.new_zeros((keep, width))
        rows = rows.index_put((seg[inside], col[inside]), values[inside])
        out.append(rows)
    return out
