"""SFT and DFT: the base token losses, with no sample weight."""

from __future__ import annotations

import torch

from ..losses import weighted_loss
from .base import Batch, Estimator, Rows, StepContext

__all__ = ["TokenLoss"]


class TokenLoss(Estimator):
    """`loss_type="nll"` (token power 0) or `"dft"` (token power 1): every weight is 1."""

    def __init__(self, token_power: float):
        self.token_power = token_power
        self.name = "nll" if token_power == 0 else "dft"

    def loss(self, ctx: StepContext, batch: Batch, mode: str) -> tuple[torch.Tensor, Rows]:
        u, valid = batch.nll()
        loss, stats = weighted_loss(batch.logps, batch.mask, None, token_power=self.token_power,
                                    num_items_in_batch=batch.num_items_in_batch)
        ones = torch.ones_like(u)
        return loss, Rows(u=u, valid=valid, weight=ones, raw_weight=ones, mass=stats["sample_mass"].detach())
