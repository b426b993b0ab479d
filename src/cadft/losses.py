"""SFT, DFT and CADFT losses as pure tensor functions.

Every function takes the per-token log-probabilities of the label tokens and the mask
of trainable tokens, both shaped (B, T), and never sees the model, the trainer or a
file. The notation follows docs/method.md:

    l_it = log pi(y_it | x_i, y_i,<t),  p_it = exp(l_it),  T_i = sum_t mask_it
    s_i  = (1/T_i) sum_t l_it            (mean token log-likelihood)
    c_i  = exp(s_i)                      (compatibility, in (0, 1])
    w_i  = clip(c_i**beta / m, w_min, w_max)

    SFT:   L = (1/N) sum_i sum_t -l_it
    DFT:   L = (1/N) sum_i sum_t -sg(p_it) l_it
    CADFT: L = (1/N) sum_i w_i sum_t -sg(p_it) l_it

N is the number of trainable tokens in the whole optimizer step (`num_items_in_batch`,
as in transformers/TRL); without it, the tokens of this batch.

Example:
    >>> logps = torch.log(torch.tensor([[0.5, 0.25], [0.9, 1.0]]))
    >>> mask = torch.tensor([[True, True], [True, False]])
    >>> compatibility(logps, mask)  # geometric-mean token probability per row
    tensor([0.3536, 0.9000])
"""

from __future__ import annotations

import math

import torch

__all__ = [
    "LOGP_FLOOR",
    "compatibility",
    "raw_sample_weights",
    "sample_weights",
    "sft_loss",
    "dft_loss",
    "cadft_loss",
    "weight_stats",
]

# A log-probability of -inf (a masked logit, an fp16 underflow) would turn sg(p) * l into
# 0 * -inf = NaN. No real token probability is below exp(-1e4), so flooring there changes
# nothing else.
LOGP_FLOOR = -1.0e4


def _clean(per_token_logps: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """float32 log-probs, floored, and exactly 0 where the mask is off. (B, T)"""
    logps = per_token_logps.float().clamp(min=LOGP_FLOOR)
    return torch.where(mask, logps, torch.zeros_like(logps))


def compatibility(per_token_logps: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Per-sample compatibility c_i = exp(mean of the masked log-probs), detached.

    Args:
        per_token_logps: (B, T) log-probabilities of the label tokens, any float dtype.
        mask: (B, T) bool, True on trainable tokens.

    Returns:
        (B,) float32 in [0, 1]. A row with no trainable token is invalid: it gets 0 and
        must be left out of statistics (its validity is `mask.any(-1)`); it is never NaN.
        A valid row whose log-probs underflow gets a tiny positive or zero value.
    """
    mask = mask.bool()
    logps = _clean(per_token_logps.detach(), mask)
    num_tokens = mask.sum(-1)  # (B,)
    mean_logp = logps.sum(-1) / num_tokens.clamp(min=1)  # (B,)
    return torch.where(num_tokens > 0, mean_logp.exp(), torch.zeros_like(mean_logp))


def raw_sample_weights(compat: torch.Tensor, *, beta: float, normalizer: float) -> torch.Tensor:
    """Unclipped weights c_i**beta / m. (B,) -> (B,). With beta = 0 every weight is 1/m."""
    if beta < 0:
        raise ValueError(f"beta must be >= 0, got {beta}")
    if not normalizer > 0:
        raise ValueError(f"normalizer must be > 0, got {normalizer}")
    # torch.pow(0, 0) == 1, so an underflowed row still gets weight 1/m at beta = 0
    return torch.pow(compat.detach().float(), beta) / normalizer


def sample_weights(
    compat: torch.Tensor,
    *,
    beta: float,
    normalizer: float = 1.0,
    w_min: float = 0.0,
    w_max: float = math.inf,
) -> torch.Tensor:
    """CADFT sample weights w_i = clip(c_i**beta / m, w_min, w_max), detached.

    Args:
        compat: (B,) compatibilities from `compatibility`.
        beta: >= 0, how strongly compatibility modulates the update; 0 gives DFT.
        normalizer: m > 0, the running mean of c**beta that keeps the mean weight near 1.
        w_min: floor >= 0; a positive floor keeps every demonstration in training.
        w_max: ceiling >= w_min; bounds the second moment of the estimator.

    Returns:
        (B,) float32 weights.
    """
    if not 0 <= w_min <= w_max:
        raise ValueError(f"need 0 <= w_min <= w_max, got w_min={w_min}, w_max={w_max}")
    return raw_sample_weights(compat, beta=beta, normalizer=normalizer).clamp(min=w_min, max=w_max)


def _denominator(mask: torch.Tensor, num_items_in_batch) -> torch.Tensor:
    if num_items_in_batch is None:
        return mask.sum().clamp(min=1)
    return torch.as_tensor(num_items_in_batch, device=mask.device).clamp(min=1)


def weight_stats(
    compat: torch.Tensor,
    weights: torch.Tensor,
    raw_weights: torch.Tensor,
    valid: torch.Tensor,
) -> dict[str, torch.Tensor]:
    """Scalar statistics over the valid rows of a batch. All inputs (B,); outputs 0-dim.

    `weight_ess` is the effective sample size (sum w)^2 / sum w^2, between 1 and the
    number of valid rows; `clip_frac` the fraction of valid rows whose raw weight was
    moved by the clip. With no valid row every statistic is 0.
    """
    c, w, raw = compat[valid].float(), weights[valid].float(), raw_weights[valid].float()
    zero = compat.new_zeros((), dtype=torch.float32)
    if c.numel() == 0:
        keys = ("compat_mean", "compat_min", "compat_max", "weight_mean", "weight_ess", "clip_frac", "num_samples")
        return {key: zero for key in keys}
    return {
        "compat_mean": c.mean(),
        "compat_min": c.min(),
        "compat_max": c.max(),
        "weight_mean": w.mean(),
        "weight_ess": w.sum().square() / w.square().sum().clamp(min=torch.finfo(torch.float32).tiny),
        "clip_frac": (raw != w).float().mean(),
        "num_samples": zero + c.numel(),
    }


def _weighted_loss(
    per_token_logps: torch.Tensor,
    mask: torch.Tensor,
    weights: torch.Tensor | None,
    *,
    dynamic: bool,
    num_items_in_batch,
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    mask = mask.bool()
    logps = _clean(per_token_logps, mask)  # (B, T), keeps the graph
    per_token = -logps * logps.detach().exp() if dynamic else -logps
    per_sample = per_token.sum(-1)  # (B,)
    if weights is not None:
        per_sample = per_sample * weights
    loss = per_sample.sum() / _denominator(mask, num_items_in_batch)

    num_tokens = mask.sum()
    stats = {
        "nll": (-logps.detach().sum() / num_tokens.clamp(min=1)),  # plain token NLL of this batch
        "num_tokens": num_tokens.float(),
    }
    return loss, stats


def _with_weight_stats(stats, compat, weights, raw, mask):
    valid = mask.bool().any(-1)
    stats.update(weight_stats(compat, weights, raw, valid))
    # Per-sample values, for callers that gather them across processes or track samples
    stats.update(sample_compat=compat, sample_weight=weights, sample_raw_weight=raw, sample_valid=valid)
    return stats


def sft_loss(
    per_token_logps: torch.Tensor, mask: torch.Tensor, *, num_items_in_batch=None
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """SFT: L = (1/N) sum_i sum_t -l_it. Shapes (B, T); returns (loss, stats).

    `stats` holds the plain NLL, the compatibility statistics of `cadft_loss` (weights
    all 1) and per-sample tensors `sample_compat`, `sample_weight`, `sample_raw_weight`,
    `sample_valid`, so the three losses log the same quantities.
    """
    loss, stats = _weighted_loss(per_token_logps, mask, None, dynamic=False, num_items_in_batch=num_items_in_batch)
    compat = compatibility(per_token_logps, mask)
    ones = torch.ones_like(compat)
    return loss, _with_weight_stats(stats, compat, ones, ones, mask)


def dft_loss(
    per_token_logps: torch.Tensor, mask: torch.Tensor, *, num_items_in_batch=None
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """DFT: L = (1/N) sum_i sum_t -sg(p_it) l_it. Shapes (B, T); returns (loss, stats)."""
    loss, stats = _weighted_loss(per_token_logps, mask, None, dynamic=True, num_items_in_batch=num_items_in_batch)
    compat = compatibility(per_token_logps, mask)
    ones = torch.ones_like(compat)
    return loss, _with_weight_stats(stats, compat, ones, ones, mask)


def cadft_loss(
    per_token_logps: torch.Tensor,
    mask: torch.Tensor,
    *,
    beta: float,
    normalizer: float = 1.0,
    w_min: float = 0.0,
    w_max: float = math.inf,
    num_items_in_batch=None,
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """CADFT: L = (1/N) sum_i w_i sum_t -sg(p_it) l_it, with w_i from `sample_weights`.

    Args:
        per_token_logps: (B, T) label log-probs with their graph (from the fused LM head).
        mask: (B, T) bool, trainable tokens.
        beta, normalizer, w_min, w_max: see `sample_weights`.
        num_items_in_batch: N, trainable tokens of the whole optimizer step (all
            micro-batches and ranks); None means this batch's own count.

    Returns:
        (loss, stats): the scalar loss and a dict of detached statistics (see `sft_loss`).
        With beta = 0 and normalizer = 1 the loss and its gradient are DFT's exactly.

    Example:
        >>> logps = torch.log(torch.tensor([[0.5, 0.5], [0.1, 0.1]])).requires_grad_()
        >>> mask = torch.ones(2, 2, dtype=torch.bool)
        >>> loss, stats = cadft_loss(logps, mask, beta=1.0, normalizer=0.3, w_min=0.1, w_max=3.0)
        >>> [round(w, 3) for w in stats["sample_weight"].tolist()]
        [1.667, 0.333]
    """
    compat = compatibility(per_token_logps, mask)
    weights = sample_weights(compat, beta=beta, normalizer=normalizer, w_min=w_min, w_max=w_max)
    raw = raw_sample_weights(compat, beta=beta, normalizer=normalizer)
    loss, stats = _weighted_loss(per_token_logps, mask, weights, dynamic=True, num_items_in_batch=num_items_in_batch)
    return loss, _with_weight_stats(stats, compat, weights, raw, mask)
