"""The project's earlier estimator: w_i = clip(c_i**beta / m, w_min, w_max), with m a
running (EMA) normaliser of mean(c**beta) calibrated before step 1 (`ema`), optionally
with each optimizer step's gradient rescaled so that sum_i w_i M_i = sum_i M_i over the
global batch (`batch`). Both are options; the paper's estimator (`zscore.py`) is the
default. Their behaviour is the one tests/test_estimator_variants.py pins."""

from __future__ import annotations

import logging

import torch
from datasets import Dataset

from ..losses import batch_kappa, clipped_weights, weight_stats
from ..losses.token_loss import PowerLoss, TokenLoss
from ..model.sharding import rank_shard
from .base import Batch, Estimator, Rows, StepContext
from .normalizer import RunningNormalizer, log_mean_exp

__all__ = ["RunningNormalized", "BatchNormalized"]

logger = logging.getLogger(__name__)


class RunningNormalized(Estimator):
    """`cadft_estimator="ema"`."""

    name = "ema"

    def __init__(self, *, beta: float, w_min: float, w_max: float, token_power: float = 1.0, ema_decay: float,
                 calibration_samples: int, token_loss: TokenLoss | None = None):
        """`token_loss`: the run's (`cadft.losses.token_loss`); default the token power's."""
        self.beta, self.w_min, self.w_max = beta, w_min, w_max
        self.token_loss = token_loss if token_loss is not None else PowerLoss(token_power)
        self.calibration_samples = calibration_samples
        self.normalizer = RunningNormalizer(ema_decay)
        self._step_rows: list[Rows] = []

    # ---- the weights and the loss ----------------------------------------------------------

    def weights(self, u: torch.Tensor, valid: torch.Tensor) -> tuple[torch.Tensor, dict]:
        """w = clip(exp(beta * s - log m), w_min, w_max), s = -u, in log space, with m the
        running normaliser once calibrated (or restored), else the rows' own mean of c**beta
        (what calibration over them would give). Extras: the weight before clipping
        (`raw_weight`) and `log_normalizer`. (B,) each."""
        s = -u
        if self.normalizer.ready:
            log_m = self.normalizer.log_value
        else:
            log_m, _ = log_mean_exp(self.beta * s[valid])
        weights, raw = clipped_weights(s, beta=self.beta, log_normalizer=log_m, w_min=self.w_min, w_max=self.w_max)
        return weights, {"raw_weight": raw, "log_normalizer": log_m}

    def set_stats(self, u, valid, weights, extras) -> dict:
        compat = torch.where(valid, (-u).exp(), torch.zeros_like(u))
        return {k: float(v) for k, v in weight_stats(compat, weights, extras["raw_weight"], valid).items()}

    def loss(self, ctx: StepContext, batch: Batch, mode: str) -> tuple[torch.Tensor, Rows]:
        if not self.normalizer.ready:
            self.calibrate(ctx)
        u, valid = batch.nll()
        weights, extras = self.weights(u, valid)
        loss, mass = self.weighted(batch, weights)
        if mode == "train":
            self.normalizer.observe(self.beta * -u[valid])
        rows = Rows(u=u, valid=valid, weight=weights, raw_weight=extras["raw_weight"], mass=mass)
        return loss, rows

    # ---- metrics and the running state ----------------------------------------------------

    def observe(self, ctx: StepContext, rows: Rows, mode: str) -> None:
        if mode == "train":
            self._step_rows.append(rows)
        elif rows.valid.any():
            summary = weight_stats(rows.compat, rows.weight, rows.raw_weight, rows.valid)
            for key in ("weight_mean", "weight_ess", "clip_frac"):
                ctx.record("eval", f"cadft/{key}", summary[key].item())

    def _step_summary(self, ctx: StepContext, rows: Rows) -> None:
        summary = weight_stats(rows.compat, rows.weight, rows.raw_weight, rows.valid, rows.mass)
        if summary["num_samples"] > 0:
            for key in ("weight_mean", "weight_ess", "clip_frac", "weight_mass"):
                ctx.record("train", f"cadft/{key}", summary[key].item())

    def end_step(self, ctx: StepContext) -> None:
        rows, self._step_rows = self._step_rows, []
        if rows:
            self._step_summary(ctx, self._effective(Rows.concat(rows)))
        self.normalizer.step(ctx.all_reduce_sum)

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
    def calibrate(self, ctx: StepContext) -> None:
        """Initialise m = mean(c**beta) over a seeded sample of the training set, scored in
        eval mode by the scoring pass and sharded across processes: each sample is scored
        exactly once, whatever the number of processes, and every process runs the same
        number of forwards (the padding rows of `rank_shard` are scored and left out), so
        collective forwards match."""
        dataset = ctx.train_dataset
        if not isinstance(dataset, Dataset):
            raise ValueError("CADFT calibration needs a map-style training Dataset (not an IterableDataset).")
        n = min(self.calibration_samples, len(dataset))
        order = torch.randperm(len(dataset), generator=torch.Generator().manual_seed(ctx.seed)).tolist()
        shard, real = rank_shard(order[:n], ctx.num_processes, ctx.process_index)
        tempered = []  # beta * s_i of the valid rows: log c**beta, which may underflow as c**beta
        batch_size = ctx.eval_batch_size
        for start in range(0, len(shard), batch_size):
            examples = [dataset[i] for i in shard[start : start + batch_size]]
            # (B,): a packed row holds several demonstrations, each real if its row is
            is_real = torch.tensor([flag for example, flag in zip(examples, real[start : start + batch_size])
                                    for _ in range(len(example.get("seq_lengths") or [None]))])
            u, valid = ctx.score(ctx.collate(examples), training=False, tiled=True)
            tempered.append(self.beta * -u[valid & is_real])
        values = torch.cat(tempered) if tempered else torch.zeros(0)
        log_m, count = log_mean_exp(values, ctx.all_reduce_max, ctx.all_reduce_sum)
        self.normalizer.calibrate(log_m, count)
        logger.info("CADFT normaliser calibrated on %d samples: log m = %.4f", count, self.normalizer.log_value)

    def calibrate_from_scores(self, scores: list[dict]) -> None:
        """Calibrate m from `score_rows` results of the whole training set (every process
        holds every score: no collective)."""
        tempered = torch.tensor([self.beta * s["mean_logprob"] for s in scores if s["num_tokens"] > 0],
                                dtype=torch.float64)
        self.normalizer.calibrate(*log_mean_exp(tempered))


class BatchNormalized(RunningNormalized):
    """`cadft_estimator="batch"`: the `ema` weights, and each optimizer step's gradient
    multiplied by kappa = sum M_i / sum w_i M_i over the global batch before clipping."""

    name = "batch"
    rescales_gradients = True

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self._mass = 0.0  # sum_i M_i over this process's rows of the step
        self._weighted_mass = 0.0  # sum_i w_i M_i
        self._kappa: float | None = None
        self._step_loss: torch.Tensor | float = 0.0  # the losses of this step's micro-batches, as logged

    def loss(self, ctx: StepContext, batch: Batch, mode: str) -> tuple[torch.Tensor, Rows]:
        loss, rows = super().loss(ctx, batch, mode)
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

    def before_optimizer_step(self, ctx: StepContext) -> None:
        """Multiply the accumulated gradient of this step by kappa over the global batch.
        Runs once per step, on every process (one all-reduce)."""
        sums = ctx.all_reduce_sum(torch.tensor([self._mass, self._weighted_mass], dtype=torch.float64))
        kappa = batch_kappa(sums[0], sums[1])
        self._kappa = float(kappa)
        ctx.scale_gradients(kappa)

    def logged_loss(self, ctx: StepContext, loss: torch.Tensor) -> torch.Tensor:
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

    def end_step(self, ctx: StepContext) -> None:
        kappa = self._kappa
        super().end_step(ctx)
        if kappa is not None:
            ctx.record("train", "cadft/kappa", kappa)
        self._mass, self._weighted_mass, self._kappa, self._step_loss = 0.0, 0.0, None, 0.0
