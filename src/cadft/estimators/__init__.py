"""Ways of weighting samples, each behind the interface of `base.Estimator`:

- `TokenLoss`: SFT (`loss_type="nll"`) and DFT (`"dft"`), no sample weight;
- `ZScore`: the paper's CADFT estimator, the default (`cadft_normalization="zscore"`);
- `RunningNormalized` / `BatchNormalized`: the project's earlier estimator (`"ema"`, `"batch"`).
"""

from __future__ import annotations

import math
from collections.abc import Mapping

from .. import defaults
from .base import Batch, Estimator, Rows, StepContext
from .running import BatchNormalized, RunningNormalized
from .token import TokenLoss
from .zscore import STEP_U, ZScore

__all__ = ["Batch", "Estimator", "Rows", "StepContext", "TokenLoss", "ZScore", "RunningNormalized",
           "BatchNormalized", "STEP_U", "make_estimator"]

# cadft_normalization -> the estimator, and the CADFTConfig fields it is built from (beyond beta and token power)
_ZSCORE = (ZScore, {"eps": "cadft_eps", "scope": "cadft_scope"})
_RUNNING = {"w_min": "cadft_w_min", "w_max": "cadft_w_max", "ema_decay": "cadft_ema_decay",
            "calibration_samples": "cadft_calibration_samples"}
ESTIMATORS = {"zscore": _ZSCORE, "ema": (RunningNormalized, _RUNNING), "batch": (BatchNormalized, _RUNNING)}
TOKEN_LOSSES = {"nll": 0.0, "dft": 1.0}  # loss_type -> token power; no sample weight


def make_estimator(args) -> Estimator:
    """The estimator a `CADFTConfig` asks for: the one place a config becomes an estimator.

    `args` may also be a mapping of CADFTConfig field names (as `cadft score` passes its
    flags); a field it lacks or leaves None takes the library default, and the fields of the
    other estimator are ignored. `cadft_normalizer` (a mapping's only) fixes the earlier
    estimator's m instead of calibrating it on the rows it weighs."""
    def get(field: str, default=None):
        value = args.get(field) if isinstance(args, Mapping) else getattr(args, field, None)
        return default if value is None else value

    loss_type = get("loss_type", "cadft")
    if loss_type in TOKEN_LOSSES:
        return TokenLoss(TOKEN_LOSSES[loss_type])
    kind, fields = ESTIMATORS[get("cadft_normalization", defaults.NORMALIZATION)]
    options = defaults.resolve_estimator_options(
        {"cadft_normalization": get("cadft_normalization", defaults.NORMALIZATION),
         **{field: get(field) for field in fields.values()}, "cadft_beta": get("cadft_beta", defaults.BETA)})
    estimator = kind(beta=options["cadft_beta"], token_power=get("cadft_token_power", defaults.TOKEN_POWER),
                     **{key: options[field] for key, field in fields.items()})
    normalizer = get("cadft_normalizer")
    if normalizer is not None:
        estimator.normalizer.calibrate(math.log(normalizer), 1)
    return estimator
