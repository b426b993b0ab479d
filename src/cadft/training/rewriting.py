"""`RewritingHooks`: the trainer part that connects a `cadft.rewriting.Rewriter` to the
training loop: it feeds the rewriter every training row's compatibility, runs its rounds
after optimizer steps (a `TrainerCallback`), hands freshly rewritten targets to batches
collated before a round, and keeps the rewriting state in checkpoints."""

from __future__ import annotations

from transformers import Trainer, TrainerCallback

__all__ = ["RewritingHooks"]


class _RoundCallback(TrainerCallback):
    def __init__(self, trainer):
        self.trainer = trainer

    def on_step_end(self, args, state, control, **kwargs):
        self.trainer.rewriter.after_step(state.global_step, state.max_steps)


class RewritingHooks:
    """Mixin for `trl.SFTTrainer`; `rewriter` is None unless `args.rewrite`."""

    rewriter = None

    def _start_rewriting(self, train_dataset) -> None:
        if not self.args.rewrite:
            return
        from ..rewriting.manager import Rewriter

        self.rewriter = Rewriter(self, train_dataset)
        self.add_callback(_RoundCallback(self))

    def _observe_for_rewriting(self, sample_ids, rows) -> None:
        """Every process's training rows of one micro-batch (`rows` already gathered)."""
        if self.rewriter is None or sample_ids is None:
            return
        ids = self.accelerator.pad_across_processes(sample_ids, dim=0, pad_index=-1)
        ids = self.accelerator.gather(ids) if self.accelerator.num_processes > 1 else ids
        self.rewriter.observe(ids.cpu(), rows.compat.cpu(), rows.raw_weight.cpu(), rows.valid.cpu())

    def _with_rewrites(self, epoch_iterator):
        """The training batches, each collated before the latest rewriting round given the
        accepted rewrites (`CADFTTrainer.get_batch_samples` reads them through this)."""
        if self.rewriter is None:
            return epoch_iterator
        return map(self.rewriter.refresh_batch, epoch_iterator)

    def log_round(self, metrics: dict[str, float]) -> None:
        """Log a rewriting round at its own step, without flushing the training-metric
        window that SFTTrainer.log would merge in. Trainer.log clears `control.should_log`,
        which would cancel this step's pending training log: it is restored."""
        should_log = self.control.should_log
        Trainer.log(self, dict(metrics))
        self.control.should_log = should_log

    def _rewriting_state(self) -> dict:
        return {} if self.rewriter is None else {"rewriting": self.rewriter.state_dict()}

    def _load_rewriting_state(self, state: dict) -> None:
        if self.rewriter is None:
            return
        if "rewriting" not in state:
            raise ValueError("the checkpoint has no rewriting state; it was saved by a run without rewrite=True")
        self.rewriter.load_state_dict(state["rewriting"])

    def _finish_rewriting(self) -> None:
        if self.rewriter is not None and self.accelerator.is_main_process:
            self.rewriter.save_dataset()
