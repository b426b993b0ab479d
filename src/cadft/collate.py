"""Sample ids: added to datasets, carried through TRL's collator to the loss."""

from __future__ import annotations

from collections.abc import Callable

import torch
from datasets import Dataset, IterableDataset

__all__ = ["SAMPLE_ID", "with_sample_ids", "SampleIdCollator"]

SAMPLE_ID = "sample_id"


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


class SampleIdCollator:
    """Wraps a collator and adds the batch's `sample_id` tensor, shape (B,).

    `targets` maps a sample id to replacement `input_ids`/`labels` (an accepted rewrite):
    such a sample trains on its rewrite while the dataset keeps the original."""

    def __init__(self, base: Callable[[list[dict]], dict], targets: dict[int, dict] | None = None):
        self.base = base
        self.targets = {} if targets is None else targets

    def __call__(self, examples: list[dict]) -> dict:
        if self.targets and examples and SAMPLE_ID in examples[0]:
            examples = [{**ex, **self.targets[ex[SAMPLE_ID]]} if ex[SAMPLE_ID] in self.targets else ex for ex in examples]
        batch = self.base(examples)
        if examples and SAMPLE_ID in examples[0]:
            batch[SAMPLE_ID] = torch.tensor([example[SAMPLE_ID] for example in examples], dtype=torch.long)
        return batch
