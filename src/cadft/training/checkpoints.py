"""`CrashSafeCheckpoints`: the trainer part that saves checkpoints atomically with the CADFT
state and resumes from the newest complete one (the folder logic is `cadft.training.checkpoint_folders`).

The trainer it is mixed into provides `cadft_state_dict()` / `load_cadft_state_dict(state)`
and `cadft_state_missing(checkpoint)` (what to say when a checkpoint has no CADFT state)."""

from __future__ import annotations

import logging
import os

from transformers.trainer_utils import PREFIX_CHECKPOINT_DIR

try:  # a function from transformers 5.2; before, the Trainer's method `_rotate_checkpoints`
    from transformers.trainer_utils import rotate_checkpoints
except ImportError:
    rotate_checkpoints = None

from .checkpoint_folders import (
    TRAINER_STATE_FILE,
    check_resumable,
    latest_complete,
    publish_checkpoint,
    remove_staging,
    set_aside,
    staged_checkpoint,
)
from .state_io import STATE_FILE, read_state, write_json_atomic

__all__ = ["CrashSafeCheckpoints"]

logger = logging.getLogger(__name__)


class CrashSafeCheckpoints:
    """Mixin for a `transformers.Trainer`: staged checkpoints published by a rename."""

    # While a checkpoint is saved, Trainer._save_checkpoint writes into its staging folder
    _staging_root: str | None = None

    def _get_output_dir(self, trial) -> str:
        return self._staging_root or super()._get_output_dir(trial)

    def _save_checkpoint(self, model, trial):
        # Every process writes its part into a staging folder; once all are done, the main
        # process adds the CADFT state and renames the folder to checkpoint-N, then rotates
        # old checkpoints. A crash at any point leaves no partial checkpoint-N behind and
        # the previous checkpoints untouched (see cadft.training.checkpoint_folders).
        run_dir = self._get_output_dir(trial=trial)
        step = self.state.global_step
        staged = staged_checkpoint(run_dir, step)
        final = os.path.join(run_dir, f"{PREFIX_CHECKPOINT_DIR}-{step}")
        if self.args.should_save:
            remove_staging(run_dir)
        self.accelerator.wait_for_everyone()  # no process writes into a folder being removed
        push, self.args.push_to_hub = self.args.push_to_hub, False  # pushed once published
        self._staging_root = os.path.dirname(staged)
        try:
            super()._save_checkpoint(model, trial)  # its rotation sees only the staging folder
        finally:
            self._staging_root = None
            self.args.push_to_hub = push
        self.accelerator.wait_for_everyone()  # every process's RNG state (and shards) is in
        if self.args.should_save:
            if self.state.best_model_checkpoint == staged:
                self.state.best_model_checkpoint = final
                self.state.save_to_json(os.path.join(staged, TRAINER_STATE_FILE))
            write_json_atomic(os.path.join(staged, STATE_FILE), self.cadft_state_dict())
            publish_checkpoint(staged, final)
            self._rotate_published(run_dir)
        if push:
            self._push_from_checkpoint(final)
        self.accelerator.wait_for_everyone()  # checkpoint-N exists for every process from here

    def _rotate_published(self, run_dir: str) -> None:
        """Remove the checkpoints beyond save_total_limit, as the Trainer would (keeping the
        newest and the best)."""
        if rotate_checkpoints is None:
            self._rotate_checkpoints(use_mtime=True, output_dir=run_dir)
            return
        rotate_checkpoints(
            output_dir=run_dir,
            save_total_limit=self.args.save_total_limit,
            best_model_checkpoint=self.state.best_model_checkpoint,
            use_mtime=True,
        )

    def _latest_complete_checkpoint(self) -> str:
        """The newest complete checkpoint of output_dir. Incomplete ones are named in a
        warning and set aside (main process), so checkpoint rotation never keeps them."""
        try:
            chosen, incomplete = latest_complete(self.args.output_dir)
        except ValueError as e:
            raise ValueError(f"resume_from_checkpoint=True: {e}") from None
        if incomplete:
            moved = [set_aside(path) for path in incomplete] if self.args.should_save else incomplete
            logger.warning(
                "Skipping incomplete checkpoints (a crash during a save?) %s, set aside as %s; resuming from %s.",
                ", ".join(incomplete), ", ".join(moved), chosen,
            )
        return chosen

    def resolve_checkpoint(self, resume_from_checkpoint) -> str | None:
        """The checkpoint to resume from (True: the newest complete one), its CADFT state loaded."""
        checkpoint = resume_from_checkpoint
        if checkpoint is True:
            checkpoint = self._latest_complete_checkpoint()
        elif isinstance(checkpoint, str):
            check_resumable(checkpoint)
        if not isinstance(checkpoint, str):
            return None
        state = read_state(checkpoint)
        if state is not None:
            self.load_cadft_state_dict(state)
        else:
            self.cadft_state_missing(checkpoint)
        return checkpoint
