"""Shared helpers of the loss families: the floor under label log-probs and the token
denominator N. Internal to `cadft.losses`."""

from __future__ import annotations

import torch

__all__ = ["LOGP_FLOOR", "clean_logps", "denominator"]

# A log-probability of -inf (a masked logit, an fp16 underflow) would turn sg(p) * l into
# 0 * -inf = NaN. No real token probability is below exp(-1e4), so flooring there changes
# nothing else.
LOGP_FLOOR = -1.0e4


def clean_logps(per_token_logps: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """float32 log-probs, floored, and exactly 0 where the mask is off. (B, T)"""
    logps = per_token_logps.float().clamp(min=LOGP_FLOOR)
    return torch.where(mask, logps, torch.zeros_like(logps))


def denominator(mask: torch.Tensor, num_items_in_batch) -> torch.Tensor:
    if num_items_in_batch is None:
        return mask.sum().clamp(min=1)
    return torch.as_tensor(num_items_in_batch, device=mask.device).clamp(min=1)
