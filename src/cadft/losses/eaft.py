"""EAFT, Entropy-Adaptive Fine-Tuning (Diao et al., arXiv 2601.02151): the token NLL gated by
the model's own normalised predictive entropy, so that confident conflicts (low entropy, low
probability) barely move the model.

    l~_it = -g_it l_it,   g_it = sg( min(1, H_it / ln K) ) ** alpha

H_it is the entropy of pi_theta(. | ctx_it). The paper approximates it over the K largest
logits (H^K: the entropy of the softmax renormalised over them; K = 20), which makes
H^K / ln K a gate in [0, 1]; its code (LLaMA-Factory's `use_eaft_loss`) divides H^K by 3.0
(ln 20 = 2.996) and raises the gate to `eaft_alpha` = 1. Here H_it is by default the exact
entropy over the whole vocabulary, which TRL's fused LM head computes in the training
forward (no extra projection); it is at least as large as H^K's share of it, so the gate is
capped at 1 to stay in the paper's range **(our reading)**. `topk_entropy` gives the paper's
H^K. The gate carries no gradient (LLaMA-Factory computes it under no_grad).

Example:
    >>> eaft_gate(torch.tensor([[0.0, math.log(20) / 2, 9.0]]), k=20, alpha=1.0)
    tensor([[0.0000, 0.5000, 1.0000]])
"""

from __future__ import annotations

import math

import torch

from ._logps import clean_logps

__all__ = ["EAFT_K", "EAFT_ALPHA", "eaft_gate", "eaft_token_loss", "topk_entropy", "topk_entropy_from_hidden"]

EAFT_K = 20  # the paper's K of the top-K entropy, and its normaliser ln K
EAFT_ALPHA = 1.0  # the gate's exponent: LLaMA-Factory's eaft_alpha default

# Positions per chunk of the top-K pass: 256 x a 152k vocabulary is 150 MB of float32 logits
_TOPK_CHUNK = 256


def eaft_gate(entropy: torch.Tensor, *, k: int = EAFT_K, alpha: float = EAFT_ALPHA) -> torch.Tensor:
    """g = min(1, H / ln k) ** alpha, detached, float32, same shape as `entropy` (nats)."""
    if k < 2:
        raise ValueError(f"k must be >= 2 (ln k normalises the entropy), got {k}")
    if not alpha > 0:
        raise ValueError(f"alpha must be > 0, got {alpha}")
    normalised = (entropy.detach().float() / math.log(k)).clamp(min=0.0, max=1.0)
    return normalised if alpha == 1 else normalised.pow(alpha)


def eaft_token_loss(per_token_logps: torch.Tensor, mask: torch.Tensor, entropy: torch.Tensor, *,
                    k: int = EAFT_K, alpha: float = EAFT_ALPHA) -> tuple[torch.Tensor, torch.Tensor]:
    """(loss, gate): the per-token EAFT loss -g * l with its graph, and the gate g
    (`eaft_gate`), detached. (B, T) each, 0 off the mask; `entropy` (B, T) in nats."""
    mask = mask.bool()
    logps = clean_logps(per_token_logps, mask)  # (B, T)
    gate = torch.where(mask, eaft_gate(entropy, k=k, alpha=alpha), 0.0)
    return -logps * gate, gate


def topk_entropy(logits: torch.Tensor, k: int = EAFT_K) -> torch.Tensor:
    """The paper's H^K: the entropy of the softmax over the k largest logits. (N, V) -> (N,)
    float32, in [0, ln k], no gradient."""
    top = torch.topk(logits.detach().float(), k=min(k, logits.shape[-1]), dim=-1).values  # (N, k)
    logp = torch.log_softmax(top, dim=-1)
    return -(logp.exp() * logp).sum(-1)


@torch.no_grad()
def topk_entropy_from_hidden(hidden: torch.Tensor, weight: torch.Tensor, *, bias: torch.Tensor | None = None,
                             k: int = EAFT_K, logit_scale: float = 1.0, softcap: float | None = None,
                             chunk: int = _TOPK_CHUNK) -> torch.Tensor:
    """`topk_entropy` of the logits (h @ W.T + b) * logit_scale (soft-capped), from hidden
    states (N, H) and an LM head (V, H), `chunk` positions at a time: at most (chunk, V)
    logits exist. (N,) float32."""
    out = torch.empty(hidden.shape[0], dtype=torch.float32, device=hidden.device)
    for start in range(0, hidden.shape[0], chunk):
        logits = torch.nn.functional.linear(hidden[start:start + chunk].to(weight.dtype), weight, bias).float()
        logits = logits * logit_scale
        if softcap is not None:
            logits = softcap * torch.tanh(logits / softcap)
        out[start:start + chunk] = topk_entropy(logits, k)
    return out
