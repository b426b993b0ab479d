"""experiments/variance.py against naive references: batch gradients formed explicitly
(float32 tolerance: the library computes z and w in float32)."""

import math

import torch

from cadft.losses import zscore_weights
from experiments.variance import (
    batch_coefficients,
    estimator_moments,
    gram,
    mean_batch_z,
    moments,
    norm_vs_z,
    random_batches,
)


def _pool(n=24, p=30, seed=0):
    g = torch.Generator().manual_seed(seed)
    G = torch.randn(n, p, generator=g, dtype=torch.float64) + 0.5
    u = torch.rand(n, generator=g, dtype=torch.float64) * 3
    tokens = torch.randint(3, 20, (n,), generator=g)
    r = torch.randn(p, generator=g, dtype=torch.float64)
    return G, u, tokens, r


def test_moments_match_explicit_batch_gradients():
    G, u, tokens, r = _pool()
    batches = random_batches(len(u), 8, 50, seed=3)
    for beta in (0.0, 0.5, 1.0, 2.0):
        grads = []
        for idx in batches:
            x = u[idx]
            z = (x - x.mean()) / (x.std(unbiased=False) + 1e-6)  # METHOD.md: population std, eps 1e-6
            w = torch.exp(-beta * z.clamp(min=0))
            grads.append((w[:, None] * G[idx]).sum(0) / tokens[idx].sum())
        g = torch.stack(grads).double()
        mean = g.mean(0)
        trace = (g - mean).square().sum() / (len(g) - 1)
        signal = mean.square().sum() - trace / len(g)
        got = moments(*gram(G, r), batch_coefficients(u, tokens, batches, beta=beta))
        assert math.isclose(got["second_moment"], float(g.square().sum(1).mean()), rel_tol=1e-5)
        assert math.isclose(got["trace_cov"], float(trace), rel_tol=1e-5)
        assert math.isclose(got["rel_variance"], float(trace / signal), rel_tol=1e-5)
        assert math.isclose(got["cosine"], float(mean @ r / (mean.norm() * r.norm())), rel_tol=1e-5)


def test_beta_zero_is_dft_and_weights_shrink_the_second_moment():
    G, u, tokens, r = _pool()
    K, v, rr = gram(G, r)
    m0 = estimator_moments(K, v, rr, u, tokens, beta=0.0, batch_size=8, n_batches=40)
    m2 = estimator_moments(K, v, rr, u, tokens, beta=2.0, batch_size=8, n_batches=40)
    a = batch_coefficients(u, tokens, random_batches(len(u), 8, 40, seed=0), beta=0.0)
    assert torch.allclose((a > 0).sum(1).double(), torch.full((40,), 8.0, dtype=torch.float64))
    assert m2["second_moment"] < m0["second_moment"]  # every weight <= 1, G rows share a positive mean
    assert zscore_weights(torch.tensor([-1.0, 0.0, 2.0]), beta=1.0)[0] == 1.0


def test_mean_batch_z_orders_samples_like_u_and_norm_vs_z_finds_a_planted_slope():
    n = 200
    u = torch.linspace(0, 4, n, dtype=torch.float64)
    z = mean_batch_z(u, batch_size=16, partitions=20)
    assert torch.corrcoef(torch.stack([u, z]))[0, 1] > 0.95
    assert abs(float(z.mean())) < 0.1
    g = torch.Generator().manual_seed(0)
    rising = norm_vs_z(1 + z + 0.1 * torch.randn(n, generator=g, dtype=torch.float64), z, n_boot=200)
    assert rising["pearson"]["ci"][0] > 0.8 and rising["spearman"]["r"] > 0.8
    flat = norm_vs_z(torch.randn(n, generator=g, dtype=torch.float64).abs(), z, n_boot=200)
    lo, hi = flat["pearson"]["ci"]
    assert lo < 0 < hi
    assert sum(b["n"] for b in rising["bins"]) == n
