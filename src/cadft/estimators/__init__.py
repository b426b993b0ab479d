"""Ways of weighting samples, each behind the interface of `base.Estimator`:

- `TokenLoss`: SFT (`loss_type="nll"`) and DFT (`"dft"`), no sample weight;
- `ZScore`: the paper's CADFT estimator, the default (`cadft_normalization="zscore"`);
- `RunningNormalized` / `BatchNormalized`: the project's earlier estimator (`"ema"`, `"batch"`).
"""

from __future__ import annotations

from .base import Batch, Estimator, Rows
from .running import BatchNormalized, RunningNormalized
from .token import TokenLoss
from .zscore import STEP_U, ZScore

__all__ = ["Batch", "Estimator", "Rows", "TokenLoss", "ZScore", "RunningNormalized", "BatchNormalized", "STEP_U",
           "make_estimator"]


def make_estimator(args) -> Estimator:
    """The estimator a `CADFTConfig` asks for."""
    if args.loss_type == "nll":
        return TokenLoss(0.0)
    if args.loss_type == "dft":
        return TokenLoss(1.0)
    if args.cadft_normalization == "zscore":
        return ZScore(beta=args.cadft_beta, eps=args.cadft_eps, scope=args.cadft_scope,
                      token_power=args.cadft_token_power)
    kind = {"ema": RunningNormalized, "batch": BatchNormalized}[args.cadft_normalization]
    return kind(beta=args.cadft_beta, w_min=args.cadft_w_min, w_max=args.cadft_w_max,
                token_power=args.cadft_token_power, ema_decay=args.cadft_ema_decay,
                calibration_samples=args.cadft_calibration_samples)
