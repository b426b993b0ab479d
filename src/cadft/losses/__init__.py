"""The losses as pure tensor functions, one family per module:

- `weights`: each demonstration's compatibility and the sample weights of the two
  estimators (the paper's z-score, the project's earlier clipped c**beta / m);
- `token`: the token losses of SFT, DFT and CADFT's token power, and
  `weighted_token_loss`, where any token loss meets the sample weights;
- `asft`: ASFT's token loss, DFT plus a KL anchor to the reference model;
- `eaft`: EAFT's token loss, the NLL gated by the normalised predictive entropy.

Every function takes per-token tensors shaped (B, T) (label log-probs, the trainable
mask, per-token entropy or KL) and never sees the model, the trainer or a file. The
notation follows docs/method.md:

    l_it = log pi(y_it | x_i, y_i,<t),  p_it = exp(l_it),  T_i = sum_t mask_it
    s_i  = (1/T_i) sum_t l_it            (mean token log-likelihood)
    u_i  = -s_i                          (length-normalised NLL: the paper's raw signal)
    c_i  = exp(s_i)                      (compatibility, in (0, 1])
    M_i  = sum_t g_it                    (the sample's mass: g_it is the token loss's gate on -l_it)

    SFT:   L = (1/N) sum_i sum_t -l_it                        (alpha = 0)
    DFT:   L = (1/N) sum_i sum_t -sg(p_it) l_it               (alpha = 1)
    CADFT: L = (1/N) sum_i w_i sum_t -sg(p_it)**alpha l_it    (`weighted_loss`)
    any:   L = (1/N) sum_i w_i sum_t l~_it                    (`weighted_token_loss`; ASFT, EAFT)

with the sample weight w_i of one of two estimators:

    the paper's (default):  z_i = (u_i - mean_B u) / (std_B u + eps),  w_i = exp(-beta max(0, z_i))
                            over the valid rows of the global batch B (`zscore_weights`)
    the earlier one:        w_i = clip(exp(beta * s_i - log m), w_min, w_max)   (`sample_weights`)

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

from ._logps import LOGP_FLOOR
from .asft import ASFT_KL_COEF, asft_token_loss, reference_kl
from .eaft import EAFT_ALPHA, EAFT_K, eaft_gate, eaft_token_loss, topk_entropy, topk_entropy_from_hidden
from .token import cadft_loss, dft_loss, power_token_loss, sft_loss, weighted_loss, weighted_token_loss
from .weights import (ZSCORE_EPS, batch_kappa, batch_moments, batch_zscore_weights, clipped_weights, compatibility,
                      length_normalized_nll, log_raw_weights, mean_logprob, raw_sample_weights, sample_nll,
                      sample_weights, weight_stats, zscore_stats, zscore_weights, zscores)

__all__ = [
    "LOGP_FLOOR",
    "ZSCORE_EPS",
    "mean_logprob",
    "length_normalized_nll",
    "batch_moments",
    "zscores",
    "zscore_weights",
    "batch_zscore_weights",
    "weighted_loss",
    "sample_nll",
    "compatibility",
    "log_raw_weights",
    "raw_sample_weights",
    "sample_weights",
    "batch_kappa",
    "sft_loss",
    "dft_loss",
    "cadft_loss",
    "weight_stats",
    "zscore_stats",
    "clipped_weights",
    # token losses, any of which meets the sample weights in `weighted_token_loss`
    "power_token_loss",
    "weighted_token_loss",
    "ASFT_KL_COEF",
    "asft_token_loss",
    "reference_kl",
    "EAFT_K",
    "EAFT_ALPHA",
    "eaft_gate",
    "eaft_token_loss",
    "topk_entropy",
    "topk_entropy_from_hidden",
]
