"""The token loss a run trains (`loss_type`), one small object per family over the pure
functions of `cadft.losses`:

- `PowerLoss`: -sg(p)**alpha * l, SFT (`"nll"`, alpha 0), DFT (`"dft"`, alpha 1) and CADFT's
  token power (`"cadft"`, alpha = `cadft_token_power`);
- `ASFTLoss`: DFT plus lambda * KL(pi_ref || pi_theta) (`"asft"`);
- `EAFTLoss`: the NLL gated by the normalised predictive entropy (`"eaft"`).

A token loss turns a micro-batch (`cadft.estimators.Batch`) into per-token losses, their
gates and its own per-token metrics (`TokenTerms`); the estimator weighs the samples
(`Estimator.weighted`, the one place the two meet). What a loss needs from the forward
beyond the label log-probs, it names in `needs`; the trainer computes those per-token
inputs (`cadft.training.token_inputs`) and attaches them to the batch.

    token_loss = make_token_loss(config)
    terms = token_loss(batch)  # TokenTerms: loss (B, T), gate (B, T), metrics
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import torch

from .. import defaults
from . import asft_token_loss, eaft_token_loss, power_token_loss

__all__ = ["TokenTerms", "TokenLoss", "PowerLoss", "ASFTLoss", "EAFTLoss", "make_token_loss",
           "ENTROPY", "TOPK_ENTROPY", "REFERENCE_KL"]

# The per-token inputs a token loss may need (`TokenLoss.needs`), each (B, T) aligned with the log-probs
ENTROPY = "entropy"  # the exact predictive entropy, from TRL's fused head
TOPK_ENTROPY = "topk_entropy"  # the EAFT paper's top-K entropy
REFERENCE_KL = "reference_kl"  # KL(pi_ref || pi_theta), with its graph


@dataclass
class TokenTerms:
    """A micro-batch's token loss, per token. (B, T) each, 0 off the trainable mask."""

    loss: torch.Tensor  # the per-token loss, with its graph
    gate: torch.Tensor  # the token's weight on -log p, detached; M_i = sum_t gate_it
    metrics: dict[str, torch.Tensor] = field(default_factory=dict)  # logged name -> per-token values, detached


class TokenLoss:
    """Base class. `needs`: the per-token inputs the loss reads from `batch.token_inputs`."""

    name = "token"
    needs: tuple[str, ...] = ()

    def __call__(self, batch) -> TokenTerms:
        raise NotImplementedError


class PowerLoss(TokenLoss):
    """-sg(p)**alpha * l: alpha 0 is SFT's token loss, 1 DFT's (`power_token_loss`)."""

    def __init__(self, alpha: float, name: str | None = None):
        self.alpha = alpha
        self.name = name or {0.0: "nll", 1.0: "dft"}.get(float(alpha), "power")

    def __call__(self, batch) -> TokenTerms:
        loss, gate = power_token_loss(batch.logps, batch.mask, alpha=self.alpha)
        return TokenTerms(loss, gate)


class ASFTLoss(TokenLoss):
    """DFT plus kl_coef * KL(pi_ref || pi_theta) per token (`asft_token_loss`). Logs the mean
    KL over trainable tokens as `asft/kl`."""

    name = "asft"
    needs = (REFERENCE_KL,)

    def __init__(self, kl_coef: float = defaults.ASFT_KL_COEF):
        self.kl_coef = kl_coef

    def __call__(self, batch) -> TokenTerms:
        kl = batch.token_inputs[REFERENCE_KL]
        loss, gate = asft_token_loss(batch.logps, batch.mask, kl, kl_coef=self.kl_coef)
        return TokenTerms(loss, gate, {"asft/kl": kl.detach().float()})


class EAFTLoss(TokenLoss):
    """-g * l with g = min(1, H / ln k)**alpha (`eaft_token_loss`), H the exact entropy
    (`entropy="full"`) or the paper's top-K one (`"topk"`). Logs the mean entropy and gate
    over trainable tokens as `eaft/entropy` and `eaft/gate`."""

    name = "eaft"

    def __init__(self, alpha: float = defaults.EAFT_ALPHA, k: int = defaults.EAFT_K,
                 entropy: str = defaults.EAFT_ENTROPY):
        if entropy not in defaults.EAFT_ENTROPIES:
            raise ValueError(f"entropy={entropy!r}; choose one of {', '.join(defaults.EAFT_ENTROPIES)}")
        self.alpha, self.k, self.entropy = alpha, k, entropy
        self.needs = (TOPK_ENTROPY if entropy == "topk" else ENTROPY,)

    def __call__(self, batch) -> TokenTerms:
        entropy = batch.token_inputs[self.needs[0]].detach().float()
        loss, gate = eaft_token_loss(batch.logps, batch.mask, entropy, k=self.k, alpha=self.alpha)
        return TokenTerms(loss, gate, {"eaft/entropy": entropy, "eaft/gate": gate})


def make_token_loss(args) -> TokenLoss:
    """The token loss a `CADFTConfig` (or a mapping of its field names) asks for; a field left
    unset takes the library default. Without a loss_type: 'cadft'."""
    def get(name: str, default=None):
        value = args.get(name) if isinstance(args, Mapping) else getattr(args, name, None)
        return default if value is None else value

    loss_type = get("loss_type", "cadft")
    if loss_type == "nll":
        return PowerLoss(0.0, "nll")
    if loss_type == "dft":
        return PowerLoss(1.0, "dft")
    if loss_type == "asft":
        return ASFTLoss(get("asft_kl_coef", defaults.ASFT_KL_COEF))
    if loss_type == "eaft":
        return EAFTLoss(get("eaft_alpha", defaults.EAFT_ALPHA), get("eaft_k", defaults.EAFT_K),
                        get("eaft_entropy", defaults.EAFT_ENTROPY))
    if loss_type == "cadft":
        return PowerLoss(get("cadft_token_power", defaults.TOKEN_POWER))
    raise ValueError(f"loss_type={loss_type!r} has no token loss")

