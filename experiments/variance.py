"""The assumption behind the paper's variance argument, measured: do incompatible samples
carry larger gradients under DFT's loss, and what do the paper's weights do to the batch
gradient? Pure functions of per-sample quantities, shared by the testbed and the real model.

Inputs, for a pool of n demonstrations:
- u (n,): each sample's length-normalised NLL at the policy (METHOD.md's u_i);
- tokens (n,): its trainable tokens N_i;
- the per-sample gradients G_i of the *sum* of DFT's token losses of sample i (so that a
  batch's DFT gradient is sum_i G_i / sum_i N_i, DFT's own 1/N), given either as the matrix
  G (n, P) or through its Gram matrix K = G G^T with v = G r and rr = r.r for a reference
  direction r (the clean-data gradient).

A sample's z depends on its batch, so `mean_batch_z` gives each sample the mean of its z over
random partitions of the pool into batches of the training batch size: one (norm, z) pair
per sample, and bootstrap intervals resample samples.

The paper's estimator on a batch b is g_b = sum_{i in b} w_i G_i / N_b with w_i =
exp(-beta max(0, z_i)) from the batch's own z (beta 0: DFT), as the library's estimator
computes them (`paper_estimator(beta).weights`). Over random batches,

    second moment  E||g_b||^2
    rel. variance  tr Cov(g_b) / ||E g_b||^2, the denominator unbiased (||mean g||^2 - tr Cov / n_batches;
                   None when that is <= 0: no signal measurable)
    cosine         cos(mean_b g_b, r)

are computed from K alone (g_b = a_b G with a_b the batch's coefficients), never forming g_b.

    z = mean_batch_z(u, batch_size=16)
    rel = norm_vs_z(norms, z)                               # bins, Pearson and Spearman with intervals
    m = estimator_moments(K, v, rr, u, tokens, beta=1.0, batch_size=16)
"""

from __future__ import annotations

import math

import torch

from cadft.estimators import make_estimator

__all__ = ["Z_EDGES", "paper_estimator", "random_batches", "mean_batch_z", "norm_vs_z", "batch_coefficients",
           "moments", "estimator_moments", "gram"]

Z_EDGES = (-1.0, 0.0, 1.0, 2.0)  # bins (-inf, -1), [-1, 0), [0, 1), [1, 2), [2, inf)


def random_batches(n: int, batch_size: int, n_batches: int, *, seed: int = 0) -> torch.Tensor:
    """(n_batches, batch_size) indices, each row a batch drawn without replacement."""
    if batch_size > n:
        raise ValueError(f"batch_size {batch_size} exceeds the pool of {n}")
    g = torch.Generator().manual_seed(seed)
    return torch.stack([torch.randperm(n, generator=g)[:batch_size] for _ in range(n_batches)])


def paper_estimator(beta: float):
    """The paper's estimator at `beta` (`cadft.estimators.make_estimator`); beta 0: every weight 1."""
    return make_estimator({"loss_type": "cadft", "cadft_estimator": "zscore", "cadft_beta": beta})


def _batch_z(estimator, u_b: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(z, w) of a batch's rows (B,), every row valid."""
    w, extras = estimator.weights(u_b, torch.ones_like(u_b, dtype=torch.bool))
    return extras["z"], w


def mean_batch_z(u: torch.Tensor, batch_size: int, *, partitions: int = 50, seed: int = 0) -> torch.Tensor:
    """Each sample's z within its batch, averaged over `partitions` random partitions of the
    pool into batches of `batch_size` (a last, smaller batch is dropped). (n,) float64."""
    n = u.numel()
    estimator = paper_estimator(0.0)  # z only
    g = torch.Generator().manual_seed(seed)
    total, count = torch.zeros(n, dtype=torch.float64), torch.zeros(n, dtype=torch.float64)
    for _ in range(partitions):
        perm = torch.randperm(n, generator=g)
        for start in range(0, n - batch_size + 1, batch_size):
            idx = perm[start : start + batch_size]
            z, _ = _batch_z(estimator, u[idx].double())
            total[idx] += z.double()
            count[idx] += 1
    return total / count.clamp(min=1)


def _pearson(x: torch.Tensor, y: torch.Tensor) -> float:
    x, y = x - x.mean(), y - y.mean()
    denom = (x.square().sum() * y.square().sum()).sqrt()
    return float(x @ y / denom) if denom > 0 else math.nan


def _ranks(x: torch.Tensor) -> torch.Tensor:
    """Ranks 0..n-1, ties sharing their mean rank."""
    order = torch.argsort(x, stable=True)
    ranks = torch.empty_like(x, dtype=torch.float64)
    sorted_x = x[order]
    i, n = 0, x.numel()
    while i < n:
        j = i
        while j + 1 < n and sorted_x[j + 1] == sorted_x[i]:
            j += 1
        ranks[order[i : j + 1]] = (i + j) / 2
        i = j + 1
    return ranks


def _interval(values: list[float]) -> tuple[float, float]:
    xs = sorted(v for v in values if math.isfinite(v))
    if not xs:
        return math.nan, math.nan
    return xs[int(0.025 * (len(xs) - 1))], xs[int(math.ceil(0.975 * (len(xs) - 1)))]


def norm_vs_z(norms, z, *, edges=Z_EDGES, n_boot: int = 2000, seed: int = 0) -> dict:
    """Gradient norms against z: the mean norm per z bin with a percentile-bootstrap 95%
    interval, and Pearson and Spearman correlations with theirs (samples resampled)."""
    norms, z = torch.as_tensor(norms, dtype=torch.float64), torch.as_tensor(z, dtype=torch.float64)
    n = norms.numel()
    g = torch.Generator().manual_seed(seed)
    boots = [torch.randint(n, (n,), generator=g) for _ in range(n_boot)]
    bounds = [-math.inf, *edges, math.inf]
    bins = []
    for lo, hi in zip(bounds[:-1], bounds[1:]):
        sel = (z >= lo) & (z < hi)
        vals = norms[sel]
        entry = {"lo_z": lo if math.isfinite(lo) else None, "hi_z": hi if math.isfinite(hi) else None,
                 "n": int(sel.sum())}  # None: unbounded (JSON has no infinity)
        if vals.numel():
            k = vals.numel()
            means = [float(vals[torch.randint(k, (k,), generator=g)].mean()) for _ in range(n_boot)]
            entry.update(mean=float(vals.mean()), ci=_interval(means))
        bins.append(entry)
    out = {"n": n, "bins": bins}
    for name, fn in (("pearson", lambda a, b: _pearson(a, b)), ("spearman", lambda a, b: _pearson(_ranks(a), _ranks(b)))):
        out[name] = {"r": fn(z, norms), "ci": _interval([fn(z[i], norms[i]) for i in boots])}
    return out


def batch_coefficients(u: torch.Tensor, tokens: torch.Tensor, batches: torch.Tensor, *, beta: float) -> torch.Tensor:
    """(n_batches, n) coefficients a_bi = w_i / N_b of the paper's estimator on each batch
    (0 outside the batch), z and w from the batch's own rows; beta 0 gives DFT."""
    estimator = paper_estimator(beta)
    a = torch.zeros(batches.shape[0], u.numel(), dtype=torch.float64)
    for b, idx in enumerate(batches):
        _, w = _batch_z(estimator, u[idx].double())
        a[b, idx] = w.double() / tokens[idx].double().sum()
    return a


def moments(K: torch.Tensor, v: torch.Tensor, rr: float, a: torch.Tensor) -> dict:
    """Second moment, relative variance (unbiased denominator) and cosine with r of the batch
    gradients g_b = a_b G, from K = G G^T and v = G r."""
    K, v, a = K.double(), v.double(), a.double()
    nb = a.shape[0]
    sq = ((a @ K) * a).sum(1)  # ||g_b||^2
    abar = a.mean(0)
    mean_sq = float(abar @ K @ abar)  # ||mean g||^2
    d = a - abar
    trace = float(((d @ K) * d).sum() / (nb - 1))
    signal = mean_sq - trace / nb
    cos = float(abar @ v / math.sqrt(mean_sq * rr)) if mean_sq > 0 and rr > 0 else math.nan
    return {"second_moment": float(sq.mean()), "trace_cov": trace, "signal": signal,
            "rel_variance": trace / signal if signal > 0 else None, "cosine": cos}  # None: no signal left


def estimator_moments(K, v, rr, u, tokens, *, beta: float, batch_size: int, n_batches: int = 400,
                      seed: int = 0) -> dict:
    """`moments` of the paper's estimator at `beta` over `n_batches` random batches (the same
    batches for every beta at one seed, so estimators are compared on paired batches)."""
    batches = random_batches(u.numel(), batch_size, n_batches, seed=seed)
    return moments(K, v, rr, batch_coefficients(u, tokens, batches, beta=beta))


def gram(G: torch.Tensor, r: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, float]:
    """(K, v, rr) of per-sample gradient rows G (n, P) and a reference r (P,), in float64."""
    G, r = G.double(), r.double()
    return G @ G.T, G @ r, float(r @ r)
