"""No sample weight: the bare token loss (`cadft_estimator="none"`), the default of
`loss_type` "nll", "dft", "asft" and "eaft"."""

from __future__ import annotations

import torch

from ..losses.token_loss import TokenLoss
from .base import Batch, Estimator, Rows, StepContext

__all__ = ["Unweighted"]


class Unweighted(Estimator):
    """Every sample weight is 1: L = (1/N) sum_i sum_t l~_it, the token loss as it is."""

    name = "none"
    weighs_samples = False

    def __init__(self, token_loss: TokenLoss):
        self.token_loss = token_loss

    def loss(self, ctx: StepContext, batch: Batch, mode: str) -> tuple[torch.Tensor, Rows]:
        u, valid = batch.nll()
        loss, mass = self.weighted(batch, None)
        ones = torch.ones_like(u)
        return loss, Rows(u=u, valid=valid, weight=ones, raw_weight=ones, mass=mass)
