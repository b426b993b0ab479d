"""The project's earlier estimator: w_i = clip(c_i**beta / m, w_min, w_max), with m a
running (EMA) normaliser of mean(c**beta) calibrated before step 1 (`ema`), optionally
with each optimizer step's gradient rescaled so that sum_i w_i M_i = sum_i M_i over the
global batch (`batch`). Both are options; the paper's estimator (`zscore.py`) is the
default. Their behaviour is the one tests/test_estimator_variants.py pins."""

from __future__ import annotations

import logging

import torch
from datasets import Dataset

from ..collate import COMPAT_MASK, SAMPLE_ID
from ..losses import batch_kappa, cadft_loss, mean_logprob, weight_stats
from ..normalizer import RunningNormalizer, log_mean_exp
from ..sharding import rank_shard
from ..vocab_tiles import cpu_vocab_tiles
from .base import Batch, Estimator, Rows

__all__ = ["RunningNormalized", "BatchNormalized"]

logger = logging.getLogger(__name__)


class RunningNormalized(Estimator):
    """`cadft_normalization="ema"`."""

    name = "ema"

    def __init__(self, *, beta: float, w_min: float, w_max: float, token_power: float, ema_decay: float,
                 calibration_samples: int):
        self.beta, self.w_min, self.w_max, self.token_power = beta, w_min, w_max, token_power
        self.calibration_samples = calibration_samples
        self.normalizer = RunningNormalizer(ema_decay)
        self._step_rows: list[Rows] = []

    # ---- the loss ---------------------------------------------------------------------

    def loss(self, trainer, batch: Batch, mode: str) -> tuple[torch.Tensor, Rows]:
        if not self.normalizer.ready:
            self.calibrate(trainer)
        loss, stats = cadft_loss(
            batch.logps, batch.mask, beta=self.beta, log_normalizer=self.normalizer.log_value, w_min=self.w_min,
            w_max=self.w_max, token_power=self.token_power, num_items_in_batch=batch.num_items_in_batch,
            compat_mask=batch.compat_mask, summary=False,
        )
        if mode == "train":
            self.normalizer.observe(self.beta * stats["sample_logp"][stats["sample_valid"]])
        rows = Rows(u=-stats["sample_logp"], valid=stats["sample_valid"], weight=stats["sample_weight"],
                    raw_weight=stats["sample_raw_weight"], mass=stats["sample_mass"])
        return loss, rows

    # ---- metrics and the running state ----------------------------------------------------

    def observe(self, trainer, rows: Rows, mode: str) -> None:
        if mode == "train":
            self._step_rows.append(rows)
        elif rows.valid.any():
            summary = weight_stats(rows.compat, rows.weight, rows.raw_weight, rows.valid)
            for key in ("weight_mean", "weight_ess", "clip_frac"):
                trainer._metrics["eval"][f"cadft/{key}"].append(summary[key].item())

    def _step_summary(self, trainer, rows: Rows) -> None:
        summary = weight_stats(rows.compat, rows.weight, rows.raw_weight, rows.valid, rows.mass)
        if summary["num_samples"] > 0:
            for key in ("weight_mean", "weight_ess", "clip_frac", "weight_mass"):
                trainer._metrics["train"][f"cadft/{key}"].append(summary[key].item())

    def end_step(self, trainer) -> None:
        rows, self._step_rows = self._step_rows, []
        if rows:
            self._step_summary(trainer, self._effective(Rows.concat(rows)))
        self.normalizer.step(trainer.all_reduce_sum)

    def _effective(self, rows: Rows) -> Rows:
        return rows

    def log_metrics(self, mode: str) -> dict[str, float]:
        if mode != "train" or not self.normalizer.ready:
            return {}
        return {"cadft/normalizer": self.normalizer.value, "cadft/log_normalizer": self.normalizer.log_value}

    def state_dict(self) -> dict:
        return {"normalizer": self.normalizer.state_dict()}

    def load_state_dict(self, state: dict) -> None:
        self.normalizer.load_state_dict(state["normalizer"])

    # ---- calibration ------------------------------------------------------------------

    @torch.no_grad()
    def calibrate(self, trainer) -> None:
        """Initialise m = mean(c**beta) over a seeded sample of the training set, scored in
        eval mode and sharded across processes: each sample is scored exactly once, whatever
        the number of processes, and every process runs the same number of forwards (the
        padding rows of `rank_shard` are scored and left out), so collective forwards match."""
        dataset = trainer.train_dataset
        if not isinstance(dataset, Dataset):
            raise ValueError("CADFT calibration needs a map-style training Dataset (not an IterableDataset).")
        world, rank = trainer.accelerator.num_processes, trainer.accelerator.process_index
        n = min(self.calibration_samples, len(dataset))
        order = torch.randperm(len(dataset), generator=torch.Generator().manual_seed(trainer.args.seed)).tolist()
        shard, real = rank_shard(order[:n], world, rank)
        scorer = trainer.inference_model
        was_training = scorer.training
        scorer.eval()
        tempered = []  # beta * s_i of the valid rows: log c**beta, which may underflow as c**beta
        batch_size = trainer.args.per_device_eval_batch_size
        for start in range(0, len(shard), batch_size):
            examples = [dataset[i] for i in shard[start : start + batch_size]]
            # (B,): a packed row holds several demonstrations, each real if its row is
            is_real = torch.tensor([flag for example, flag in zip(examples, real[start : start + batch_size])
                                    for _ in range(len(example.get("seq_lengths") or [None]))])
            batch = trainer.data_collator(examples)
            sample_ids = batch.pop(SAMPLE_ID, None)
            compat_mask = batch.pop(COMPAT_MASK, None)
            batch = trainer._prepare_inputs(batch)
            with cpu_vocab_tiles(trainer.args.device):
                out = scorer(**batch, use_cache=False, fused_lm_head=True)
            logps, mask, compat_mask = trainer.label_rows(out, compat_mask, batch.get("position_ids"), sample_ids)
            measured = mask if compat_mask is None else mask & compat_mask
            s, valid = mean_logprob(logps, measured)
            keep = valid & mask.any(-1) & is_real.to(valid.device)
            tempered.append(self.beta * s[keep])
        scorer.train(was_training)
        values = torch.cat(tempered) if tempered else torch.zeros(0)
        log_m, count = log_mean_exp(values, trainer.all_reduce_max, trainer.all_reduce_sum)
        self.normalizer.calibrate(log_m, count)
        logger.info("CADFT normaliser calibrated on %d samples: log m = %.4f", count, self.normalizer.log_value)

    def calibrate_from_scores(self, scores: list[dict]) -> None:
        """Calibrate m from `score_rows` results of the whole training set (every process
        holds every score: no collective)."""
        tempered = torch.tensor([self.beta * s["mean_logprob"] for s in scores if s["num_tokens"] > 0],
                                dtype=torch.float64)
        self.normalizer.calibrate(*log_mean_exp(tempered))


class BatchNormalized(RunningNormalized):
    """`cadft_normalization="batch"`: the `ema` weights, and each optimizer step's gradient
    multiplied by kappa = sum M_i / sum w_i M_i over the global batch before clipping."""

    name = "batch"

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self._mass = 0.0  # sum_i M_i over this process's rows of the step
        self._weighted_mass = 0.0  # sum_i w_i M_i
        self._kappa: float | None = None
        self._step_loss: torch.Tensor | float = 0.0  # the losses of this step's micro-batches, as logged

    def loss(self, trainer, batch: Batch, mode: str) -> tuple[torch.Tensor, Rows]:
        loss, rows = super().loss(trainer, batch, mode)
        if mode == "eval":  # no optimizer step to normalise: each batch is self-normalised
            kappa = batch_kappa(rows.mass.sum(), (rows.weight * rows.mass).sum())
            loss = loss * kappa.to(loss.dtype)
            rows.weight = rows.weight * kappa.float()
        else:
            sums = torch.stack([rows.mass.double().sum(), (rows.weight.double() * rows.mass.double()).sum()])
            mass, weighted_mass = sums.tolist()  # one device sync, not two
            self._mass += mass
            self._weighted_mass += weighted_mass
        return loss, rows

    def before_optimizer_step(self, trainer) -> None:
        """Multiply the accumulated gradient of this step by kappa over the global batch.
        Runs once per step, on every process (one all-reduce)."""
        sums = trainer.all_reduce_sum(torch.tensor([self._mass, self._weighted_mass], dtype=torch.float64))
        kappa = batch_kappa(sums[0], sums[1])
        self._kappa = float(kappa)
        for param in trainer.model.parameters():
            if param.grad is not None:
                param.grad.mul_(kappa.to(param.grad.dtype))

    def logged_loss(self, trainer, loss: torch.Tensor) -> torch.Tensor:
        """The logged loss is the effective-weight loss: the step's last micro-batch adds
        (kappa - 1) times the step's loss (the earlier micro-batches were logged before kappa)."""
        self._step_loss = self._step_loss + loss
        if self._kappa is None:
            return loss
        return loss + (self._kappa - 1.0) * self._step_loss

    def _effective(self, rows: Rows) -> Rows:
        if self._kappa is not None:
            rows.weight = rows.weight * self._kappa
        return rows

    def end_step(self, trainer) -> None:
        kappa = self._kappa
        super().end_step(trainer)
        if kappa is not None:
            trainer._metrics["train"]["cadft/kappa"].append(kappa)
        self._mass, self._weighted_mass, self._kappa, self._step_loss = 0.0, 0.0, None, 0.0
