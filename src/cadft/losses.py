"""SFT, DFT and CADFT losses as pure tensor functions.

Every function takes the per-token log-probabilities of the label tokens and the mask
of trainable tokens, both shaped (B, T), and never sees the model, the trainer or a
file. The notation follows docs/method.md:

    l_it = log pi(y_it | x_i, y_i,<t),  p_it = exp(l_it),  T_i = sum_t mask_it
    s_i  = (1/T_i) sum_t l_it            (mean token log-likelihood)
    c_i  = exp(s_i)                      (compatibility, in (0, 1])
    w_i  = clip(exp(beta * s_i - log m), w_min, w_max)     (= clip(c_i**beta / m, ...))
    M_i  = sum_t sg(p_it)**alpha         (the sample's mass in the base loss)

    SFT:   L = (1/N) sum_i sum_t -l_it                        (alpha = 0)
    DFT:   L = (1/N) sum_i sum_t -sg(p_it) l_it               (alpha = 1)
    CADFT: L = (1/N) sum_i w_i sum_t -sg(p_it)**alpha l_it

N is the number of trainable tokens in the whole optimizer step (`num_items_in_batch`,
as in transformers/TRL); without it, the tokens of this batch. The weights are computed
in log space, so c**beta never underflows and m may be far below float32's range.

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
    "mean_logprob",
    "compatibility",
    "log_raw_weights",
    "raw_sample_weights",
    "sample_weights",
    "batch_kappa",
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
    logps = _clean(per_token_logps.detach(), mask)
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


def _denominator(mask: torch.Tensor, num_items_in_batch) -> torch.Tensor:
    if num_items_in_batch is None:
        return mask.sum().clamp(min=1)
    return torch.as_tensor(num_items_in_batch, device=mask.device).clamp(min=1)


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


def _weighted_loss(
    per_token_logps: torch.Tensor,
    mask: torch.Tensor,
    weights: torch.Tensor | None,
    *,
    token_power: float,
    num_items_in_batch,
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    if not 0 <= token_power <= 1:
        raise ValueError(f"token_power must be in [0, 1], got {token_power}")
    mask = mask.bool()
    logps = _clean(per_token_logps, mask)  # (B, T), keeps the graph
    if token_power == 0:
        token_weight = mask.float()  # exactly SFT's, with no exp of the log-probs
    elif token_power == 1:
        token_weight = torch.where(mask, logps.detach().exp(), 0.0)  # exactly DFT's sg(p)
    else:
        token_weight = torch.where(mask, (token_power * logps.detach()).exp(), 0.0)  # sg(p)**alpha
    per_sample = (-logps * token_weight).sum(-1)  # (B,)
    if weights is not None:
        per_sample = per_sample * weights
    loss = per_sample.sum() / _denominator(mask, num_items_in_batch)

    num_tokens = mask.sum()
    stats = {
        "nll": (-logps.detach().sum() / num_tokens.clamp(min=1)),  # plain token NLL of this batch
        "num_tokens": num_tokens.float(),
        "sample_mass": token_weight.sum(-1),  # M_i, (B,)
    }
    return loss, stats


def _with_weight_stats(stats, compat, weights, raw, valid, summary: bool = True):
    if summary:  # ~30 small ops: a trainer that aggregates per optimizer step skips them
        stats.update(weight_stats(compat, weights, raw, valid, stats["sample_mass"]))
    # Per-sample values, for callers that gather them across processes or track samples
    stats.update(sample_compat=compat, sample_weight=weights, sample_raw_weight=raw, sample_valid=valid)
    return stats


def _compat_and_validity(per_token_logps, mask, compat_mask):
    """c over `compat_mask` (the demonstration's tokens) where given, else over `mask`; a
    row is valid when it has a trainable token and a token to measure c on."""
    measured = mask.bool() if compat_mask is None else compat_mask.bool() & mask.bool()
    s, has_measured = mean_logprob(per_token_logps, measured)
    valid = has_measured & mask.bool().any(-1)
    return s, torch.where(valid, s.exp(), torch.zeros_like(s)), valid


def sft_loss(
    per_token_logps: torch.Tensor, mask: torch.Tensor, *, num_items_in_batch=None, compat_mask=None,
    summary: bool = True,
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """SFT: L = (1/N) sum_i sum_t -l_it. Shapes (B, T); returns (loss, stats).

    `stats` holds the plain NLL, the compatibility statistics of `cadft_loss` (weights
    all 1) and per-sample tensors `sample_compat`, `sample_weight`, `sample_raw_weight`,
    `sample_valid`, `sample_mass`, so the three losses log the same quantities. With
    `summary=False` the batch statistics of `weight_stats` are left out (the per-sample
    tensors, the NLL and the token count stay).
    """
    loss, stats = _weighted_loss(per_token_logps, mask, None, token_power=0.0, num_items_in_batch=num_items_in_batch)
    _, compat, valid = _compat_and_validity(per_token_logps, mask, compat_mask)
    ones = torch.ones_like(compat)
    return loss, _with_weight_stats(stats, compat, ones, ones, valid, summary)


def dft_loss(
    per_token_logps: torch.Tensor, mask: torch.Tensor, *, num_items_in_batch=None, compat_mask=None,
    summary: bool = True,
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """DFT: L = (1/N) sum_i sum_t -sg(p_it) l_it. Shapes (B, T); returns (loss, stats)."""
    loss, stats = _weighted_loss(per_token_logps, mask, None, token_power=1.0, num_items_in_batch=num_items_in_batch)
    _, compat, valid = _compat_and_validity(per_token_logps, mask, compat_mask)
    ones = torch.ones_like(compat)
    return loss, _with_weight_stats(stats, compat, ones, ones, valid, summary)


def cadft_loss(
    per_token_logps: torch.Tensor,
    mask: torch.Tensor,
    *,
    beta: float,
    normalizer: float | None = None,
    log_normalizer: float | None = None,
    w_min: float = 0.0,
    w_max: float = math.inf,
    token_power: float = 1.0,
    num_items_in_batch=None,
    compat_mask: torch.Tensor | None = None,
    summary: bool = True,
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """CADFT: L = (1/N) sum_i w_i sum_t -sg(p_it)**alpha l_it, w_i = clip(c_i**beta / m, ...).

    Args:
        per_token_logps: (B, T) label log-probs with their graph (from the fused LM head).
        mask: (B, T) bool, trainable tokens.
        beta, normalizer (or log_normalizer), w_min, w_max: see `sample_weights`.
        token_power: alpha in [0, 1]; 1 is DFT's token loss, 0 the plain NLL.
        num_items_in_batch: N, trainable tokens of the whole optimizer step (all
            micro-batches and ranks); None means this batch's own count.
        compat_mask: (B, T) bool, the tokens c is measured on (the assistant tokens of a
            conversation trained whole); default `mask`.
        summary: also return the batch's `weight_stats` (see `sft_loss`).

    Returns:
        (loss, stats): the scalar loss and a dict of detached statistics (see `sft_loss`).
        With beta = 0 and m = 1 the loss and its gradient are DFT's exactly (alpha = 1)
        or SFT's (alpha = 0). `stats["sample_mass"]` holds M_i, for the `batch`
        normalisation (`batch_kappa`).

    Example:
        >>> logps = torch.log(torch.tensor([[0.5, 0.5], [0.1, 0.1]])).requires_grad_()
        >>> mask = torch.ones(2, 2, dtype=torch.bool)
        >>> loss, stats = cadft_loss(logps, mask, beta=1.0, normalizer=0.3, w_min=0.1, w_max=3.0)
        >>> [round(w, 3) for w in stats["sample_weight"].tolist()]
        [1.667, 0.333]
    """
    log_m = _log_normalizer(normalizer, log_normalizer)
    s, compat, valid = _compat_and_validity(per_token_logps, mask, compat_mask)
    log_raw = log_raw_weights(s, beta=beta, log_normalizer=log_m)
    weights = _clip_log(log_raw, w_min, w_max)
    loss, stats = _weighted_loss(per_token_logps, mask, weights, token_power=token_power,
                                 num_items_in_batch=num_items_in_batch)
    stats["sample_logp"] = s
    return loss, _with_weight_stats(stats, compat, weights, log_raw.exp(), valid, summary)
