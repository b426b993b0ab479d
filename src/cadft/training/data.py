"""`SampleData`: the trainer part that carries sample ids and compatibility masks from the
datasets to the loss (through packing too), keeps training rewrites out of evaluation, and
names the rows TRL's truncation left without a trainable token."""

from __future__ import annotations

import json
import logging

from datasets import Dataset

from ..data.collate import COMPAT_MASK, SAMPLE_ID, TOKEN_SAMPLE_IDS, split_packed
from ..data.packing import CUTTING_STRATEGIES, token_sample_ids

__all__ = ["SampleData"]

logger = logging.getLogger(__name__)


class SampleData:
    """Mixin for `trl.SFTTrainer`."""

    # Whether the loss weighs each demonstration (an estimator other than "none"): packing must then keep every
    # demonstration whole and addressable. The trainer sets it before TRL prepares the data
    weighs_samples: bool = True

    def _get_dataloader(self, *args, is_training: bool = False, **kwargs):
        if is_training:
            return super()._get_dataloader(*args, is_training=True, **kwargs)
        # Accepted rewrites replace training rows only: evaluation and test rows have sample
        # ids of their own dataset, which would otherwise pick up a training sample's rewrite
        training_collator = self.data_collator
        self.data_collator = training_collator.without_targets()
        try:
            return super()._get_dataloader(*args, is_training=False, **kwargs)
        finally:
            self.data_collator = training_collator

    def _set_signature_columns_if_needed(self):
        super()._set_signature_columns_if_needed()
        extra = [c for c in (SAMPLE_ID, COMPAT_MASK, TOKEN_SAMPLE_IDS) if c not in self._signature_columns]
        self._signature_columns = [*self._signature_columns, *extra]

    def _prepare_dataset(self, dataset, processing_class, args, packing, formatting_func, dataset_name):
        """TRL's preparation, with the compatibility masks of conversations; with packing,
        TRL's own `pack_dataset` over the tokenized demonstrations *and* a per-token column of
        their sample ids, so that every segment of a packed row keeps its demonstration's id."""
        if not packing:
            tokenized = super()._prepare_dataset(dataset, processing_class, args, False, formatting_func, dataset_name)
            return self._with_compat_masks(dataset, tokenized, processing_class, args)
        trl_packs = args.packing_strategy in CUTTING_STRATEGIES or not isinstance(dataset, Dataset)
        if trl_packs and not self.weighs_samples:
            # No sample weight, so no demonstration to keep whole or addressable: TRL packs as SFTTrainer does
            return super()._prepare_dataset(dataset, processing_class, args, True, formatting_func, dataset_name)
        if args.packing_strategy in CUTTING_STRATEGIES:
            raise ValueError(
                f"packing_strategy={args.packing_strategy!r} cuts demonstrations across packed rows, and a cut "
                "demonstration has no single CADFT weight; use packing_strategy='bfd' (TRL's default), which "
                "keeps each one whole, or a bare token loss (cadft_estimator='none', the default of loss_type "
                "'nll', 'dft', 'asft' and 'eaft'), which has no sample weight."
            )
        if not isinstance(dataset, Dataset):
            raise ValueError("packing with sample weights needs a map-style Dataset (not an IterableDataset), "
                             "whose rows it can address by sample id: load the data without streaming, or use "
                             "a bare token loss (cadft_estimator='none'), which TRL packs from any dataset.")
        if args.max_length is None:
            raise ValueError("When packing is enabled, `max_length` can't be `None`.")
        from trl.data_utils import pack_dataset

        # Tokenized, labelled, truncated to max_length (TRL's steps without packing), then packed
        tokenized = super()._prepare_dataset(dataset, processing_class, args, False, formatting_func, dataset_name)
        tokenized = self._with_compat_masks(dataset, tokenized, processing_class, args)
        tokenized = tokenized.map(token_sample_ids, desc=f"Sample ids per token of the {dataset_name} dataset")
        columns = ["input_ids", "labels", TOKEN_SAMPLE_IDS] + ([COMPAT_MASK] if COMPAT_MASK in tokenized.column_names
                                                                else [])
        map_kwargs = {"num_proc": args.dataset_num_proc, "desc": f"Packing {dataset_name} dataset"}
        return pack_dataset(tokenized.select_columns(columns), args.max_length, args.packing_strategy, map_kwargs)

    def training_samples(self) -> list[dict]:
        """Every training demonstration as the trainer tokenized it (input_ids, labels,
        sample_id and, for conversations, compat_mask), in dataset order; packed rows are
        split back into their demonstrations."""
        rows = self.train_dataset
        if TOKEN_SAMPLE_IDS in rows.column_names:
            return [piece for row in rows for piece in split_packed(row)]
        if SAMPLE_ID not in rows.column_names:
            raise ValueError(
                f"the training rows were packed by TRL (packing_strategy={self.args.packing_strategy!r} or a streamed "
                "dataset), so they are not demonstrations; packing_strategy='bfd' on a map-style Dataset keeps them "
                "(for `cadft train`'s closing summary; or pass --summary false)"
            )
        return list(rows)

    _samples_by_id: dict | None = None

    def training_sample(self, sample_id: int) -> dict:
        """One training demonstration as `training_samples` gives it, by its sample id."""
        if self._samples_by_id is None:
            self._samples_by_id = {sample[SAMPLE_ID]: sample for sample in self.training_samples()}
        return self._samples_by_id[sample_id]

    def _with_compat_masks(self, raw, tokenized, tokenizer=None, args=None):
        """Add COMPAT_MASK to a tokenized `messages` dataset: u and c cover the assistant
        turns (`cadft.data.conversation.assistant_token_mask`, as `cadft score` measures them),
        whether the conversation is trained whole or with `assistant_only_loss`."""
        if not (isinstance(raw, Dataset) and isinstance(tokenized, Dataset) and "messages" in raw.column_names):
            return tokenized
        if SAMPLE_ID not in tokenized.column_names or COMPAT_MASK in tokenized.column_names:
            return tokenized
        from ..data.conversation import assistant_token_mask

        tokenizer = self.processing_class if tokenizer is None else tokenizer
        args = self.args if args is None else args
        by_id = {}
        # Rendered with the row's tools, as TRL renders it (a JSON string or the list itself)
        tools = raw["tools"] if "tools" in raw.column_names else [None] * len(raw)
        for sample_id, messages, row_tools in zip(raw[SAMPLE_ID], raw["messages"], tools):
            row_tools = json.loads(row_tools) if isinstance(row_tools, str) else row_tools
            by_id[sample_id] = assistant_token_mask(tokenizer, messages, tools=row_tools)
        keep_end = args.truncation_mode == "keep_end"
        masks, mismatched = [], []
        for sample_id, ids in zip(tokenized[SAMPLE_ID], tokenized["input_ids"]):
            full, mask = by_id[sample_id]
            window = slice(len(full) - len(ids), None) if keep_end else slice(0, len(ids))
            if full[window] == list(ids):
                masks.append(mask[window])
            else:
                mismatched.append(sample_id)
                masks.append([1] * len(ids))
        if mismatched:
            logger.warning(
                "%d conversations tokenize differently from TRL's rendering (sample ids %s); their "
                "compatibility covers every trainable token instead of the assistant turns.",
                len(mismatched), ", ".join(map(str, mismatched[:20])),
            )
        return tokenized.add_column(COMPAT_MASK, masks)

    def _warn_dropped(self, before, after) -> None:
        # TRL drops rows that truncation left without a trainable token; say which
        if not (isinstance(before, Dataset) and isinstance(after, Dataset)):
            return
        if SAMPLE_ID in after.column_names:
            kept = set(after[SAMPLE_ID])
        elif TOKEN_SAMPLE_IDS in after.column_names:
            kept = {sample_id for row in after[TOKEN_SAMPLE_IDS] for sample_id in set(row)}
        else:
            return
        # Rows in the user's terms: the 1-based position in the dataset given to the trainer
        # (the row a data error names for parquet/CSV, and the line of a .jsonl without
        # blank lines), with the sample id (0-based by default, or the data's own ids)
        lost = [(row, sid) for row, sid in enumerate(before[SAMPLE_ID], start=1) if sid not in kept]
        if lost:
            more, s = " ..." if len(lost) > 20 else "", "s" if len(lost) > 1 else ""
            logger.warning(
                "%d training sample%s with no trainable token after truncation to max_length=%s, not trained "
                "on: row%s %s%s of the training data (counted from 1; sample id%s %s%s). Raise max_length to "
                "keep them.",
                len(lost),
                s,
                self.args.max_length,
                s,
                ", ".join(str(row) for row, _ in lost[:20]),
                more,
                s,
                ", ".join(str(sid) for _, sid in lost[:20]),
                more,
            )
