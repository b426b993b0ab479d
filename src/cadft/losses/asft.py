"""ASFT, Anchored Supervised Fine-Tuning (Zhu et al., arXiv 2509.23753): DFT's token loss
anchored to the base (reference) model by a KL term at every trainable position.

    l~_it = -sg(p_it) l_it + lambda * KL_it,
    KL_it = sum_v pi_ref(v | ctx_it) (log pi_ref(v | ctx_it) - log pi_theta(v | ctx_it))

The KL runs over the whole vocabulary with the reference first, as the authors' code
(zhuchichi56/ASFT, train.py, mode "asft": F.kl_div(log_softmax(policy), softmax(ref))) and
LLaMA-Factory's `use_asft_loss` compute it; lambda = 0.1 is their default (`kl_weight`,
`asft_alpha`). The gradient reaches the policy only: d KL_it / d z_v = p_theta(v) - p_ref(v).
With sample weights (`weighted_token_loss`) the whole token loss, KL included, takes w_i.

`reference_kl` computes KL_it from both models' last hidden states and LM heads, in tiles
of positions and vocabulary (TRL's `ChunkedDivergenceFunction`, the distillation trainer's
kernel): neither model's (N, V) logits exist at once.

Example:
    >>> logps = torch.log(torch.tensor([[0.5, 0.25]]))
    >>> loss, gate = asft_token_loss(logps, torch.ones(1, 2, dtype=torch.bool), torch.tensor([[0.2, 0.0]]),
    ...                              kl_coef=0.1)
    >>> loss
    tensor([[0.3666, 0.3466]])
"""

from __future__ import annotations

import torch

from ._logps import clean_logps

__all__ = ["ASFT_KL_COEF", "asft_token_loss", "reference_kl"]

ASFT_KL_COEF = 0.1  # lambda: the authors' kl_weight and LLaMA-Factory's asft_alpha default


def asft_token_loss(per_token_logps: torch.Tensor, mask: torch.Tensor, kl: torch.Tensor, *,
                    kl_coef: float = ASFT_KL_COEF) -> tuple[torch.Tensor, torch.Tensor]:
    """(loss, gate): the per-token ASFT loss -sg(p) * l + kl_coef * KL with its graph (through
    the log-probs and the KL), and its DFT gate sg(p), detached. (B, T) each, 0 off the mask.

    Args:
        per_token_logps: (B, T) label log-probs l with their graph.
        mask: (B, T) bool, trainable tokens.
        kl: (B, T) KL(pi_ref || pi_theta) at each position (`reference_kl`), with its graph.
        kl_coef: lambda >= 0; 0 gives DFT's token loss exactly.
    """
    if kl_coef < 0:
        raise ValueError(f"kl_coef must be >= 0, got {kl_coef}")
    mask = mask.bool()
    logps = clean_logps(per_token_logps, mask)  # (B, T)
    gate = torch.where(mask, logps.detach().exp(), 0.0)  # sg(p), DFT's
    loss = -logps * gate
    if kl_coef > 0:
        loss = loss + kl_coef * torch.where(mask, kl.float(), 0.0)
    return loss, gate


def reference_kl(
    hidden: torch.Tensor,
    weight: torch.Tensor,
    ref_hidden: torch.Tensor,
    ref_weight: torch.Tensor,
    *,
    bias: torch.Tensor | None = None,
    ref_bias: torch.Tensor | None = None,
    logit_scale: float = 1.0,
    softcap: float | None = None,
) -> torch.Tensor:
    """KL(pi_ref || pi_theta) at N positions, from the policy's hidden states (N, H) and LM
    head (V, H) (with their graph) and the reference's (no gradient): logits = softcap-ed
    (h @ W.T + b) * logit_scale, as the model's own head (both models share the architecture,
    hence the scale and the cap). Tiled over positions and vocabulary. (N,) float32, >= 0
    up to rounding."""
    from trl.kernels.chunked_divergence import ChunkedDivergenceFunction

    kl, _ = ChunkedDivergenceFunction.apply(
        hidden, weight, bias, ref_hidden.detach(), ref_weight.detach(),
        None if ref_bias is None else ref_bias.detach(),
        0.0,  # beta 0: the forward KL(teacher || student), here KL(ref || policy)
        1.0, logit_scale, softcap, logit_scale, softcap,
    )
    return kl
