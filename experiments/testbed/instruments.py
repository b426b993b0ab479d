"""Gradient instruments of the testbed: noise without the 1/B bias, and alignment.

Given per-sample gradients h_1..h_B of an estimator (rows of a matrix), the batch gradient
is mean h. Its expected squared norm contains the noise: E||mean h||^2 = ||mu||^2 + tr Cov/B,
so tr Cov / ||mean h||^2 reads about B on pure noise. `gradient_snr` removes that bias:

    snr = (||mean h||^2 - tr Cov / B) / tr Cov       (tr Cov: the unbiased sample trace)

the per-sample signal-to-noise ratio ||mu||^2 / tr Cov, unbiased in its numerator (it can
be slightly negative when there is no signal). `split_half_cosine` is a second, bounded
reading: the cosine between the mean gradients of the two halves of the batch, about
1 / (1 + 2 / (B snr)). `cosine` measures the alignment of a method's batch gradient with
a reference gradient (the plain NLL gradient of clean held-out demonstrations).

    snr = gradient_snr(torch.randn(48, 1000) + 0.3)   # about 0.09
"""

from __future__ import annotations

import torch

__all__ = ["gradient_snr", "split_half_cosine", "cosine"]


def _trace_cov(h: torch.Tensor) -> torch.Tensor:
    """Unbiased tr Cov of the rows of h (B, D), B >= 2."""
    return (h - h.mean(0)).square().sum() / (h.shape[0] - 1)


def gradient_snr(h: torch.Tensor) -> float:
    """Unbiased per-sample signal-to-noise ratio ||mu||^2 / tr Cov of the rows of h (B, D)."""
    h = h.double()
    b = h.shape[0]
    if b < 2:
        raise ValueError(f"need at least 2 per-sample gradients, got {b}")
    trace = _trace_cov(h)
    signal = h.mean(0).square().sum() - trace / b
    return float(signal / trace.clamp(min=torch.finfo(torch.float64).tiny))


def cosine(a: torch.Tensor, b: torch.Tensor) -> float:
    """Cosine between two flat vectors (0 when either is zero)."""
    a, b = a.double().flatten(), b.double().flatten()
    denom = a.norm() * b.norm()
    return float(a @ b / denom) if denom > 0 else 0.0


def split_half_cosine(h: torch.Tensor) -> float:
    """Cosine between the mean gradients of the first and second halves of the rows of h."""
    half = h.shape[0] // 2
    if half < 1:
        raise ValueError(f"need at least 2 per-sample gradients, got {h.shape[0]}")
    return cosine(h[:half].mean(0), h[half : 2 * half].mean(0))
