"""The token losses of SFT, DFT and CADFT's token power, and the one place where a
per-token loss meets the sample weights, as pure tensor functions.

Every function takes the per-token log-probabilities of the label tokens and the mask of
trainable tokens, both (B, T), and never sees the model, the trainer or a file:

    SFT:    l~_it = -l_it                       (alpha = 0, TRL's "nll")
    DFT:    l~_it = -sg(p_it) l_it              (alpha = 1, TRL's "dft")
    power:  l~_it = -sg(p_it)**alpha l_it       (CADFT's token power, alpha in [0, 1])

    L = (1/N) sum_i w_i sum_t l~_it             (`weighted_token_loss`, any token loss l~)

N is the number of trainable tokens in the whole optimizer step (`num_items_in_batch`, as
in transformers/TRL); without it, the tokens of this batch. `sft_loss`, `dft_loss` and
`cadft_loss` are the three classic losses with their statistics in one call.
"""

from __future__ import annotations

import math

import torch

from ._logps import clean_logps, denominator
from .weights import _clip_log, _log_normalizer, log_raw_weights, sample_nll, weight_stats

__all__ = ["power_token_loss", "weighted_token_loss", "weighted_loss", "sft_loss", "dft_loss", "cadft_loss"]


def power_token_loss(per_token_logps: torch.Tensor, mask: torch.Tensor, *,
                     alpha: float) -> tuple[torch.Tensor, torch.Tensor]:
    """(loss, gate): the per-token loss -sg(p)**alpha * l with its graph, and its detached
    gate sg(p)**alpha (the token's weight on -log p; M_i = sum_t gate_it is the sample's mass
    in the base loss). (B, T) -> (B, T) float32 each, exactly 0 off the mask. alpha = 0 is
    SFT's token loss with no exp of the log-probs, alpha = 1 DFT's exactly.

    Example:
        >>> loss, gate = power_token_loss(torch.log(torch.tensor([[0.5, 0.25]])), torch.ones(1, 2, dtype=torch.bool),
        ...                               alpha=1.0)
        >>> loss, gate
        (tensor([[0.3466, 0.3466]]), tensor([[0.5000, 0.2500]]))
    """
    if not 0 <= alpha <= 1:
        raise ValueError(f"token_power must be in [0, 1], got {alpha}")
    mask = mask.bool()
    logps = clean_logps(per_token_logps, mask)  # (B, T), keeps the graph
    if alpha == 0:
        gate = mask.float()  # exactly SFT's, with no exp of the log-probs
    elif alpha == 1:
        gate = torch.where(mask, logps.detach().exp(), 0.0)  # exactly DFT's sg(p)
    else:
        gate = torch.where(mask, (alpha * logps.detach()).exp(), 0.0)  # sg(p)**alpha
    return -logps * gate, gate


def weighted_token_loss(token_loss: torch.Tensor, mask: torch.Tensor, weights: torch.Tensor | None, *,
                        num_items_in_batch=None) -> torch.Tensor:
    """L = (1/N) sum_i w_i sum_t token_loss_it: a per-token loss (B, T), 0 off the mask, and
    detached sample weights (B,) (None: all 1) to the scalar loss. N: the optimizer step's
    trainable tokens (`num_items_in_batch`); None: this batch's."""
    per_sample = token_loss.sum(-1)  # (B,)
    if weights is not None:
        per_sample = per_sample * weights.detach().to(device=per_sample.device, dtype=per_sample.dtype)
    return per_sample.sum() / denominator(mask.bool(), num_items_in_batch)


def _weighted_loss(
    per_token_logps: torch.Tensor,
    mask: torch.Tensor,
    weights: torch.Tensor | None,
    *,
    token_power: float,
    num_items_in_batch,
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    mask = mask.bool()
    token_loss, gate = power_token_loss(per_token_logps, mask, alpha=token_power)
    loss = weighted_token_loss(token_loss, mask, weights, num_items_in_batch=num_items_in_batch)
    num_tokens = mask.sum()
    logps = clean_logps(per_token_logps.detach(), mask)
    stats = {
        "nll": (-logps.sum() / num_tokens.clamp(min=1)),  # plain token NLL of this batch
        "num_tokens": num_tokens.float(),
        "sample_mass": gate.sum(-1),  # M_i, (B,)
    }
    return loss, stats


def _with_weight_stats(stats, compat, weights, raw, valid, summary: bool = True):
    if summary:  # ~30 small ops: a trainer that aggregates per optimizer step skips them
        stats.update(weight_stats(compat, weights, raw, valid, stats["sample_mass"]))
    # Per-sample values, for callers that gather them across processes or track samples
    stats.update(sample_compat=compat, sample_weight=weights, sample_raw_weight=raw, sample_valid=valid)
    return stats


def _compat_and_validity(per_token_logps, mask, compat_mask):
    """(s, c, valid) over the demonstration's tokens (`sample_nll`)."""
    u, valid = sample_nll(per_token_logps, mask, compat_mask)
    s = -u
    return s, torch.where(valid, s.exp(), torch.zeros_like(s)), valid


def weighted_loss(
    per_token_logps: torch.Tensor,
    mask: torch.Tensor,
    weights: torch.Tensor | None,
    *,
    token_power: float = 1.0,
    num_items_in_batch=None,
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """L = (1/N) sum_i w_i sum_t -sg(p_it)**alpha l_it with given detached sample weights.

    Args:
        per_token_logps: (B, T) label log-probs with their graph.
        mask: (B, T) bool, trainable tokens.
        weights: (B,) sample weights (None: all 1, the base loss exactly).
        token_power: alpha in [0, 1]; 1 is DFT's token loss (TRL's "dft"), 0 the NLL ("nll").
        num_items_in_batch: N, the optimizer step's trainable tokens; None: this batch's.

    Returns:
        (loss, stats) with the batch's plain token NLL `nll`, `num_tokens` and the
        per-sample base-loss masses `sample_mass` (B,).
    """
    if weights is not None:
        weights = weights.detach().to(device=per_token_logps.device, dtype=torch.float32)
    return _weighted_loss(per_token_logps, mask, weights, token_power=token_power, num_items_in_batch=num_items_in_batch)


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
