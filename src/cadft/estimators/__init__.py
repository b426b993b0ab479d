"""Ways of weighting samples, each behind the interface of `base.Estimator`, each over the
run's token loss (`cadft.losses.token_loss`, chosen by `loss_type`):

- `Unweighted`: no sample weight (`cadft_estimator="none"`, the default of `loss_type`
  "nll", "dft", "asft" and "eaft");
- `ZScore`: the paper's CADFT estimator (`"zscore"`, the default of `loss_type="cadft"`);
- `RunningNormalized` / `BatchNormalized`: the project's earlier estimator (`"ema"`, `"batch"`).
"""

from __future__ import annotations

import math
from collections.abc import Mapping

from .. import defaults
from ..losses.token_loss import make_token_loss
from .base import Batch, Estimator, Rows, StepContext
from .running import BatchNormalized, RunningNormalized
from .token import Unweighted
from .zscore import STEP_U, ZScore

__all__ = ["Batch", "Estimator", "Rows", "StepContext", "Unweighted", "ZScore", "RunningNormalized",
           "BatchNormalized", "STEP_U", "make_estimator"]

# cadft_estimator -> the estimator, and the CADFTConfig fields it is built from (beyond beta and token power)
_ZSCORE = (ZScore, {"eps": "cadft_eps", "scope": "cadft_scope"})
_RUNNING = {"w_min": "cadft_w_min", "w_max": "cadft_w_max", "ema_decay": "cadft_ema_decay",
            "calibration_samples": "cadft_calibration_samples"}
ESTIMATORS = {"zscore": _ZSCORE, "ema": (RunningNormalized, _RUNNING), "batch": (BatchNormalized, _RUNNING)}


def make_estimator(args) -> Estimator:
    """The estimator a `CADFTConfig` asks for, over the token loss of its `loss_type`
    (`cadft.losses.token_loss.make_token_loss`): the one place a config becomes an estimator.

    `args` may also be a mapping of CADFTConfig field names (as `cadft score` passes its
    flags); a field it lacks or leaves None takes the library default (loss_type 'cadft',
    whose estimator is the paper's), and the fields of the other estimator are ignored.
    `cadft_normalizer` (a mapping's only) fixes the earlier estimator's m instead of
    calibrating it on the rows it weighs."""
    if isinstance(args, Mapping):
        args = defaults.renamed(args)

    def get(field: str, default=None):
        value = args.get(field) if isinstance(args, Mapping) else getattr(args, field, None)
        return default if value is None else value

    token_loss = make_token_loss(args)
    normalization = defaults.sample_weights_of(get("loss_type", "cadft"), get("cadft_estimator"))
    if normalization == defaults.NO_WEIGHTS:
        return Unweighted(token_loss)
    kind, fields = ESTIMATORS[normalization]
    options = defaults.resolve_estimator_options(
        {"cadft_estimator": normalization,
         **{field: get(field) for field in fields.values()}, "cadft_beta": get("cadft_beta", defaults.BETA)})
    estimator = kind(beta=options["cadft_beta"], token_loss=token_loss,
                     **{key: options[field] for key, field in fields.items()})
    normalizer = get("cadft_normalizer")
    if normalizer is not None:
        estimator.normalizer.calibrate(math.log(normalizer), 1)
    return estimator
