"""Sample ids: added to datasets, carried through TRL's collator to the loss (a packed row
split back into its demonstrations on the way, `cadft.data.packing`)."""

from __future__ import annotations

from collections.abc import Callable

import torch
from datasets import Dataset, IterableDataset

__all__ = ["SAMPLE_ID", "COMPAT_MASK", "TOKEN_SAMPLE_IDS", "with_sample_ids", "split_packed", "SampleIdCollator"]

SAMPLE_ID = "sample_id"
# Per-token 0/1 column: the tokens compatibility is measured on, where they are not the
# trainable ones (the assistant turns of a conversation trained whole)
COMPAT_MASK = "compat_mask"
# Per-token column of a packed dataset: the sample id of the demonstration each token belongs to
TOKEN_SAMPLE_IDS = "token_sample_ids"


def with_sample_ids(dataset):
    """Add a `sample_id` column (the row index) unless the dataset has one; a user's own
    ids must be unique integers. Works on Dataset, IterableDataset and dicts of them."""
    if dataset is None:
        return None
    if isinstance(dataset, dict):
        return {name: with_sample_ids(ds) for name, ds in dataset.items()}
    if isinstance(dataset, Dataset):
        if SAMPLE_ID in dataset.column_names:
            ids = dataset[SAMPLE_ID]
            if not all(isinstance(i, int) for i in ids) or len(set(ids)) != len(ids):
                raise ValueError(f"the dataset's '{SAMPLE_ID}' column must hold unique integers")
            return dataset
        return dataset.add_column(SAMPLE_ID, list(range(len(dataset))))
    if isinstance(dataset, IterableDataset):
        if dataset.column_names and SAMPLE_ID in dataset.column_names:
            return dataset
        return dataset.map(lambda _, i: {SAMPLE_ID: i}, with_indices=True)
    raise TypeError(f"unsupported dataset type {type(dataset).__name__}")


def split_packed(example: dict) -> list[dict]:
    """A packed row (input_ids, labels, seq_lengths, token_sample_ids [, compat_mask]) as the
    demonstrations it holds, in order, each with its sample id."""
    pieces, start = [], 0
    ids = example[TOKEN_SAMPLE_IDS]
    for length in example["seq_lengths"]:
        end = start + length
        if len(set(ids[start:end])) != 1:
            raise ValueError("a packed row cuts a demonstration (its segment holds several sample ids); "
                             "use packing_strategy='bfd', which keeps every demonstration whole")
        piece = {"input_ids": example["input_ids"][start:end], "labels": example["labels"][start:end],
                 SAMPLE_ID: ids[start]}
        if example.get(COMPAT_MASK) is not None:
            piece[COMPAT_MASK] = example[COMPAT_MASK][start:end]
        pieces.append(piece)
        start = end
    return pieces


class SampleIdCollator:
    """Wraps a collator and adds the batch's `sample_id` tensor, shape (B,).

    `targets` maps a sample id to replacement `input_ids`/`labels` (an accepted rewrite):
    such a sample trains on its rewrite while the dataset keeps the original."""

    def __init__(self, base: Callable[[list[dict]], dict], targets: dict[int, dict] | None = None):
        self.base = base
        self.targets = {} if targets is None else targets

    def without_targets(self) -> SampleIdCollator:
        """The same collation with no substitution: for evaluation and test rows, whose
        sample ids number another dataset's rows and must never pick up a training rewrite."""
        return SampleIdCollator(self.base)

    @property
    def padding_free(self) -> bool:
        """Whether the base collator flattens a batch into one row (TRL's padding-free)."""
        return bool(getattr(self.base, "padding_free", False))

    def __call__(self, examples: list[dict]) -> dict:
        if examples and TOKEN_SAMPLE_IDS in examples[0]:
            # Packed rows: collated as the demonstrations they hold (the padding-free collator
            # lays them out back to back again), each with its id, so a rewrite replaces its own
            examples = [piece for example in examples for piece in split_packed(example)]
        if self.targets and examples and SAMPLE_ID in examples[0]:
            # A rewrite is a prompt-completion row: c covers its completion, not the original's mask
            examples = [{**ex, **self.targets[ex[SAMPLE_ID]], COMPAT_MASK: None} if ex[SAMPLE_ID] in self.targets else ex
                        for ex in examples]
        masks = [ex.get(COMPAT_MASK) for ex in examples]
        if any(COMPAT_MASK in ex for ex in examples):
            examples = [{k: v for k, v in ex.items() if k != COMPAT_MASK} for ex in examples]
        batch = self.base(examples)
        if any(m is not None for m in masks):
            lengths = [len(ex["input_ids"]) for ex in examples]
            if self.padding_free:
                batch[COMPAT_MASK] = _concat(masks, lengths, batch["input_ids"])
            else:
                batch[COMPAT_MASK] = _pad_right(masks, batch["input_ids"])
        if examples and SAMPLE_ID in examples[0]:
            batch[SAMPLE_ID] = torch.tensor([example[SAMPLE_ID] for example in examples], dtype=torch.long)
        return batch


def _pad_right(masks: list, input_ids: torch.Tensor) -> torch.Tensor:
    """(B, T) bool from per-row 0/1 lists, right-padded with 0 like TRL pads input_ids. A
    row without a mask (None) counts every position."""
    out = torch.zeros(input_ids.shape, dtype=torch.bool)
    for i, mask in enumerate(masks):
        if mask is None:
            out[i] = True
        else:
            out[i, : len(mask)] = torch.tensor(mask[: input_ids.shape[1]], dtype=torch.bool)
    return out


def _concat(masks: list, lengths: list[int], input_ids: torch.Tensor) -> torch.Tensor:
    """(1, T) bool of a padding-free batch from per-sample 0/1 lists laid back to back, as the
    collator lays out their tokens; a sample without a mask (None) counts every position."""
    out = torch.zeros(input_ids.shape, dtype=torch.bool)
    start = 0
    for mask, length in zip(masks, lengths):
        out[0, start : start + length] = True if mask is None else torch.tensor(mask[:length], dtype=torch.bool)
        start += length
    return out
