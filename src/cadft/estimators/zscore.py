"""The paper's estimator: the length-normalised NLL u_i, z-scored over the optimizer
step's global batch, as the weight w_i = exp(-beta * max(0, z_i)).

The statistics (mean and std of u) cover every row of the global batch: all micro-batches
of the accumulation window and all processes. With several micro-batches per step, a
no-grad pass over the step's micro-batches gives every u_i before the first backward
(`begin_step`; the paper's own compatibility pass); with one, the training forward's u
are all-gathered and no extra forward runs. Scope `micro_batch` skips the pre-pass and
z-scores each global micro-batch alone: cheaper, but the update then depends on how the
step is split. Evaluation z-scores each global evaluation batch.
"""

from __future__ import annotations

import torch

from ..losses import ZSCORE_EPS, batch_moments, zscore_stats, zscore_weights, zscores
from ..losses.token_loss import PowerLoss, TokenLoss
from .base import Batch, Estimator, Rows, StepContext

__all__ = ["ZScore", "STEP_U"]

# The batch key under which the pre-pass leaves each micro-batch's u_i (its own rows, (B,))
STEP_U = "cadft_step_u"
SCOPES = ("step", "micro_batch")


class ZScore(Estimator):
    name = "zscore"

    def __init__(self, *, beta: float, eps: float = ZSCORE_EPS, scope: str = "step", token_power: float = 1.0,
                 token_loss: TokenLoss | None = None):
        """`token_loss`: the run's (`cadft.losses.token_loss`); default the token power's, DFT's at 1."""
        if scope not in SCOPES:
            raise ValueError(f"scope={scope!r}; choose one of {', '.join(SCOPES)}")
        self.beta, self.eps, self.scope = beta, eps, scope
        self.token_loss = token_loss if token_loss is not None else PowerLoss(token_power)
        self._moments: tuple[float, float, int] | None = None  # the step's (mean, std, count) from the pre-pass
        self._step_rows: list[Rows] = []

    # ---- the step's statistics ----------------------------------------------------------

    def weights(self, u: torch.Tensor, valid: torch.Tensor, *,
                moments: tuple[float, float, int] | None = None) -> tuple[torch.Tensor, dict]:
        """w = exp(-beta * max(0, z)), z = (u - mean) / (std + eps), with the (mean, std,
        count) of `moments` (`batch_moments` of the global batch), by default of the rows
        themselves. Extras: z. (B,) each."""
        mean, std, _ = batch_moments(u, valid) if moments is None else moments
        z = zscores(u, valid, mean=mean, std=std, eps=self.eps)
        return zscore_weights(z, beta=self.beta), {"z": z}

    def set_stats(self, u, valid, weights, extras) -> dict:
        return {k: float(v) for k, v in zscore_stats(u, weights, valid).items()}

    def begin_step(self, ctx: StepContext, batches: list[dict]) -> None:
        """With several micro-batches and step scope: score them all without gradients and
        fix the step's mean and std of u before the first backward (the paper's
        compatibility pass, in the model's training mode as the training forward sees it)."""
        self._moments = None
        if self.scope != "step" or len(batches) <= 1:
            return
        local = [ctx.score(batch) for batch in batches]
        u = torch.cat([u for u, _ in local])
        valid = torch.cat([v for _, v in local])
        self._moments = batch_moments(ctx.gather_rows(u), ctx.gather_rows(valid))
        for batch, (u_b, _) in zip(batches, local):
            batch[STEP_U] = u_b

    def _step_moments(self, ctx: StepContext, u: torch.Tensor, valid: torch.Tensor, mode: str):
        if mode == "train" and self._moments is not None:
            return self._moments
        # one global micro-batch (training) or one global evaluation batch: all-gather its u
        return batch_moments(ctx.gather_rows(u.cpu()), ctx.gather_rows(valid.cpu()))

    # ---- the loss ---------------------------------------------------------------------

    def loss(self, ctx: StepContext, batch: Batch, mode: str) -> tuple[torch.Tensor, Rows]:
        u, valid = batch.nll()
        if mode == "train" and batch.step_u is not None:
            u = batch.step_u.to(u.device)  # the values the step's statistics were computed from
        weights, _ = self.weights(u, valid, moments=self._step_moments(ctx, u, valid, mode))
        weights = weights.to(u.device)
        loss, mass = self.weighted(batch, weights)
        return loss, Rows(u=u, valid=valid, weight=weights, raw_weight=weights, mass=mass)

    # ---- metrics ----------------------------------------------------------------------

    def observe(self, ctx: StepContext, rows: Rows, mode: str) -> None:
        if mode == "train":
            self._step_rows.append(rows)
        else:  # per global evaluation batch: its own statistics
            _record(ctx, "eval", zscore_stats(rows.u, rows.weight, rows.valid, rows.mass))

    def end_step(self, ctx: StepContext) -> None:
        rows, self._step_rows = self._step_rows, []
        self._moments = None
        if rows:
            rows = Rows.concat(rows)
            _record(ctx, "train", zscore_stats(rows.u, rows.weight, rows.valid, rows.mass))


def _record(ctx: StepContext, mode: str, stats: dict) -> None:
    if stats["num_samples"] > 0:
        for key, value in stats.items():
            if key != "num_samples":
                ctx.record(mode, f"cadft/{key}", float(value))
