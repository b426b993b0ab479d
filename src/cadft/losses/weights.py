"""Sample weights: the compatibility signal of each demonstration and the two estimators'
weights, as pure tensor functions of the label log-probs (B, T) and the trainable mask.

    s_i = (1/T_i) sum_t l_it,  u_i = -s_i,  c_i = exp(s_i)
    the paper's (default):  z_i = (u_i - mean_B u) / (std_B u + eps),  w_i = exp(-beta max(0, z_i))
    the earlier one:        w_i = clip(exp(beta * s_i - log m), w_min, w_max)

Example:
    >>> logps = torch.log(torch.tensor([[0.5, 0.25], [0.9, 1.0]]))
    >>> mask = torch.tensor([[True, True], [True, False]])
    >>> compatibility(logps, mask)  # geometric-mean token probability per row
    tensor([0.3536, 0.9000])
"""

from __future__ import annotations

import math

import torch

from ._logps import clean_logps

__all__ = [
    "ZSCORE_EPS",
    "mean_logprob",
    "length_normalized_nll",
    "sample_nll",
    "compatibility",
    "batch_moments",
    "zscores",
    "zscore_weights",
    "batch_zscore_weights",
    "log_raw_weights",
    "raw_sample_weights",
    "sample_weights",
    "clipped_weights",
    "batch_kappa",
    "weight_stats",
    "zscore_stats",
]

# The paper's eps in z = (u - mu) / (sigma + eps)
ZSCORE_EPS = 1e-6


def mean_logprob(per_token_logps: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """s_i, the mean masked log-prob of each row, detached, and the rows' validity.

    Args:
        per_token_logps: (B, T) log-probabilities of the label tokens, any float dtype.
        mask: (B, T) bool, True on the tokens that make up the demonstration.

    Returns:
        (s, valid): (B,) float32 in [LOGP_FLOOR, 0] (0 on invalid rows) and (B,) bool,
        False for a row with no token; such a row must be left out of every statistic.
    """
    mask = mask.bool()
    logps = clean_logps(per_token_logps.detach(), mask)
    num_tokens = mask.sum(-1)  # (B,)
    return logps.sum(-1) / num_tokens.clamp(min=1), num_tokens > 0


def compatibility(per_token_logps: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Per-sample compatibility c_i = exp(mean of the masked log-probs), detached.

    Args:
        per_token_logps: (B, T) log-probabilities of the label tokens, any float dtype.
        mask: (B, T) bool, True on trainable tokens.

    Returns:
        (B,) float32 in [0, 1]. A row with no trainable token is invalid: it gets 0 and
        must be left out of statistics (its validity is `mask.any(-1)`); it is never NaN.
        A valid row whose log-probs underflow gets a tiny positive or zero value; the
        weights use `mean_logprob` instead, which does not underflow.
    """
    s, valid = mean_logprob(per_token_logps, mask)
    return torch.where(valid, s.exp(), torch.zeros_like(s))


def length_normalized_nll(per_token_logps: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """u_i = -(1/T_i) sum_t l_it, the paper's raw compatibility (lower = more compatible),
    detached, and the rows' validity. (B, T) -> (B,) float32, (B,) bool; u is 0 on a row
    with no token, which every statistic must leave out."""
    s, valid = mean_logprob(per_token_logps, mask)
    return -s, valid


def sample_nll(
    per_token_logps: torch.Tensor, mask: torch.Tensor, compat_mask: torch.Tensor | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """(u, valid): u_i over the demonstration's tokens, `compat_mask` & `mask` where a
    compat mask is given (the assistant turns of a conversation trained whole), else
    `mask`. A row is valid when it has a trainable token and a token to measure u on.
    (B, T) -> (B,) float32 detached, (B,) bool."""
    measured = mask.bool() if compat_mask is None else compat_mask.bool() & mask.bool()
    u, has_measured = length_normalized_nll(per_token_logps, measured)
    return u, has_measured & mask.bool().any(-1)


def batch_moments(u: torch.Tensor, valid: torch.Tensor) -> tuple[float, float, int]:
    """(mean, population std, count) of u over the valid rows, in float64. (B,) -> floats.

    The caller passes every row of the global batch (all micro-batches, all processes);
    with no valid row the moments are (0, 0, 0), with one the std is 0."""
    x = u.detach().double()[valid.bool()]
    if x.numel() == 0:
        return 0.0, 0.0, 0
    mean = x.mean()
    std = (x - mean).square().mean().sqrt()  # two-pass: no cancellation when u is large and flat
    return float(mean), float(std), int(x.numel())


def zscores(u: torch.Tensor, valid: torch.Tensor, *, mean: float, std: float, eps: float = ZSCORE_EPS) -> torch.Tensor:
    """z_i = (u_i - mean) / (std + eps) on the valid rows, 0 elsewhere. (B,) -> (B,) float32.

    `mean` and `std` are the global batch's (`batch_moments`); a batch whose rows are all
    equal (std 0) gives z = 0 for every row, whatever eps."""
    if not eps > 0:
        raise ValueError(f"eps must be > 0, got {eps}")
    z = (u.detach().double() - mean) / (std + eps)
    return torch.where(valid.bool(), z, torch.zeros_like(z)).float()


def zscore_weights(z: torch.Tensor, *, beta: float) -> torch.Tensor:
    """The paper's weight w_i = exp(-beta * max(0, z_i)), in (0, 1]: rows no worse than the
    batch mean keep weight 1, worse rows are softened, none is boosted. (B,) -> (B,)."""
    if beta < 0:
        raise ValueError(f"beta must be >= 0, got {beta}")
    return torch.exp(-beta * z.detach().float().clamp(min=0))


def batch_zscore_weights(
    u: torch.Tensor, valid: torch.Tensor, *, beta: float, eps: float = ZSCORE_EPS
) -> tuple[torch.Tensor, torch.Tensor]:
    """(z, w) of the paper's estimator with the given rows as the whole batch: `batch_moments`,
    `zscores` and `zscore_weights` in one call (a file's or a dataset's rows, outside training). (B,) each."""
    mean, std, _ = batch_moments(u, valid)
    z = zscores(u, valid, mean=mean, std=std, eps=eps)
    return z, zscore_weights(z, beta=beta)


def log_raw_weights(mean_logp: torch.Tensor, *, beta: float, log_normalizer: float = 0.0) -> torch.Tensor:
    """log of the unclipped weight, beta * s_i - log m. (B,) -> (B,) float32.

    `mean_logp` may hold -inf (c = 0): the weight is then 0 for beta > 0, and 1/m for
    beta = 0 (c**0 = 1, as in the limit)."""
    if beta < 0:
        raise ValueError(f"beta must be >= 0, got {beta}")
    if not math.isfinite(log_normalizer):
        raise ValueError(f"log_normalizer must be finite, got {log_normalizer}")
    s = mean_logp.detach().float()
    tempered = torch.zeros_like(s) if beta == 0 else beta * s
    return tempered - log_normalizer


def _log_normalizer(normalizer: float | None, log_normalizer: float | None) -> float:
    if normalizer is not None and log_normalizer is not None:
        raise ValueError("give normalizer or log_normalizer, not both")
    if log_normalizer is not None:
        return float(log_normalizer)
    normalizer = 1.0 if normalizer is None else normalizer
    if not normalizer > 0:
        raise ValueError(f"normalizer must be > 0, got {normalizer}")
    return math.log(normalizer)


def raw_sample_weights(
    compat: torch.Tensor, *, beta: float, normalizer: float | None = None, log_normalizer: float | None = None
) -> torch.Tensor:
    """Unclipped weights c_i**beta / m, computed as exp(beta log c_i - log m). (B,) -> (B,).
    With beta = 0 every weight is 1/m."""
    log_m = _log_normalizer(normalizer, log_normalizer)
    return log_raw_weights(torch.log(compat.detach().float()), beta=beta, log_normalizer=log_m).exp()


def _clip_log(log_raw: torch.Tensor, w_min: float, w_max: float) -> torch.Tensor:
    if not 0 <= w_min <= w_max:
        raise ValueError(f"need 0 <= w_min <= w_max, got w_min={w_min}, w_max={w_max}")
    low = math.log(w_min) if w_min > 0 else -math.inf
    high = math.log(w_max) if w_max < math.inf else math.inf
    return log_raw.clamp(min=low, max=high).exp()


def sample_weights(
    compat: torch.Tensor,
    *,
    beta: float,
    normalizer: float | None = None,
    log_normalizer: float | None = None,
    w_min: float = 0.0,
    w_max: float = math.inf,
) -> torch.Tensor:
    """CADFT sample weights w_i = clip(c_i**beta / m, w_min, w_max), detached, in log space.

    Args:
        compat: (B,) compatibilities from `compatibility`.
        beta: >= 0, how strongly compatibility modulates the update; 0 gives DFT.
        normalizer / log_normalizer: m > 0 (or log m), the running mean of c**beta that
            keeps the mean weight near 1; default 1.
        w_min: floor >= 0; a positive floor keeps every demonstration in training.
        w_max: ceiling >= w_min; bounds the second moment of the estimator.

    Returns:
        (B,) float32 weights.
    """
    log_m = _log_normalizer(normalizer, log_normalizer)
    return _clip_log(log_raw_weights(torch.log(compat.detach().float()), beta=beta, log_normalizer=log_m), w_min, w_max)


def batch_kappa(mass: torch.Tensor, weighted_mass: torch.Tensor) -> torch.Tensor:
    """kappa = sum_i M_i / sum_i w_i M_i: the factor that gives a weighted update the base
    loss's mass. Inputs are the sums (0-dim) over the whole optimizer step; 1 when the
    weighted mass is 0 (no row carries any mass, so there is nothing to rescale)."""
    mass, weighted_mass = mass.double(), weighted_mass.double()
    return torch.where(weighted_mass > 0, mass / weighted_mass.clamp(min=torch.finfo(torch.float64).tiny), 1.0)


def weight_stats(
    compat: torch.Tensor,
    weights: torch.Tensor,
    raw_weights: torch.Tensor,
    valid: torch.Tensor,
    mass: torch.Tensor | None = None,
) -> dict[str, torch.Tensor]:
    """Scalar statistics over the valid rows of a batch. All inputs (B,); outputs 0-dim.

    `weight_ess` is the effective sample size (sum w)^2 / sum w^2, between 1 and the
    number of valid rows; `clip_frac` the fraction of valid rows whose raw weight was
    moved by the clip; with the rows' base-loss masses M_i, `weight_mass` is
    sum w_i M_i / sum M_i, the factor by which the weights scale the update. With no
    valid row every statistic is 0.
    """
    c, w, raw = compat[valid].float(), weights[valid].float(), raw_weights[valid].float()
    zero = compat.new_zeros((), dtype=torch.float32)
    keys = ("compat_mean", "compat_min", "compat_max", "weight_mean", "weight_ess", "clip_frac", "num_samples")
    if c.numel() == 0:
        return {key: zero for key in keys + (("weight_mass",) if mass is not None else ())}
    stats = {
        "compat_mean": c.mean(),
        "compat_min": c.min(),
        "compat_max": c.max(),
        "weight_mean": w.mean(),
        "weight_ess": w.sum().square() / w.square().sum().clamp(min=torch.finfo(torch.float32).tiny),
        "clip_frac": (raw != w).float().mean(),
        "num_samples": zero + c.numel(),
    }
    if mass is not None:
        m = mass[valid].double()
        stats["weight_mass"] = ((w.double() * m).sum() / m.sum()).float() if m.sum() > 0 else zero + 1
    return stats


def zscore_stats(
    u: torch.Tensor, weights: torch.Tensor, valid: torch.Tensor, mass: torch.Tensor | None = None
) -> dict[str, torch.Tensor]:
    """The paper's estimator's statistics over the valid rows of a (global) batch, 0-dim each:
    the mean and population std of u, the mean and minimum weight, the fraction of rows
    down-weighted (w < 1, i.e. z > 0), and with the base-loss masses M_i the weight mass
    sum w_i M_i / sum M_i (the factor by which the weights scale the update). With no valid
    row every statistic is 0."""
    valid = valid.bool()
    x, w = u[valid].double(), weights[valid].double()
    zero = torch.zeros((), dtype=torch.float32)
    keys = ("u_mean", "u_std", "weight_mean", "weight_min", "downweighted_frac", "num_samples")
    if x.numel() == 0:
        return {key: zero for key in keys + (("weight_mass",) if mass is not None else ())}
    mean = x.mean()
    stats = {
        "u_mean": mean,
        "u_std": (x - mean).square().mean().sqrt(),
        "weight_mean": w.mean(),
        "weight_min": w.min(),
        "downweighted_frac": (w < 1).double().mean(),
        "num_samples": torch.tensor(float(x.numel()), dtype=torch.float64),
    }
    if mass is not None:
        m = mass[valid].double()
        stats["weight_mass"] = (w * m).sum() / m.sum() if m.sum() > 0 else torch.ones((), dtype=torch.float64)
    return {key: value.float() for key, value in stats.items()}


def clipped_weights(
    mean_logp: torch.Tensor, *, beta: float, log_normalizer: float, w_min: float, w_max: float
) -> tuple[torch.Tensor, torch.Tensor]:
    """The earlier estimator's (weights, raw weights) from the mean log-probs s_i, in log
    space: exp(beta * s_i - log m), clipped to [w_min, w_max]. Unlike `sample_weights`, which
    takes c = exp(s), nothing underflows when c**beta is below float32's range."""
    log_raw = log_raw_weights(mean_logp, beta=beta, log_normalizer=log_normalizer)
    return _clip_log(log_raw, w_min, w_max), log_raw.exp()
