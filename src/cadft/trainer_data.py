"""`SampleData`: the trainer part that carries sample ids and compatibility masks from the
datasets to the loss, keeps training rewrites out of evaluation, and names the rows TRL's
truncation left without a trainable token."""

from __future__ import annotations

import logging

from datasets import Dataset

from .collate import COMPAT_MASK, SAMPLE_ID

__all__ = ["SampleData"]

logger = logging.getLogger(__name__)


class SampleData:
    """Mixin for `trl.SFTTrainer`."""

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
        extra = [c for c in (SAMPLE_ID, COMPAT_MASK) if c not in self._signature_columns]
        self._signature_columns = [*self._signature_columns, *extra]

    def _with_compat_masks(self, raw, tokenized):
        """Add COMPAT_MASK to a tokenized `messages` dataset: u and c cover the assistant
        turns (`cadft.conversation.assistant_token_mask`, as `cadft score` measures them),
        whether the conversation is trained whole or with `assistant_only_loss`."""
        if not (isinstance(raw, Dataset) and isinstance(tokenized, Dataset) and "messages" in raw.column_names):
            return tokenized
        if SAMPLE_ID not in tokenized.column_names:
            return tokenized
        from .conversation import assistant_token_mask

        by_id = {}
        for sample_id, messages in zip(raw[SAMPLE_ID], raw["messages"]):
            by_id[sample_id] = assistant_token_mask(self.processing_class, messages)
        keep_end = self.args.truncation_mode == "keep_end"
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
        if not (isinstance(before, Dataset) and isinstance(after, Dataset) and SAMPLE_ID in after.column_names):
            return
        kept = set(after[SAMPLE_ID])
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
