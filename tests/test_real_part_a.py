"""Part A's Gram-matrix statistics (experiments/real/part_a.py) equal the same quantities
computed from explicit batch gradients, and its method coefficients keep CADFT's
invariants (beta = 0 is DFT; the oracle filter ignores non-gold rows)."""

from __future__ import annotations

import numpy as np
import pytest

from experiments.methods import EARLIER_ESTIMATOR
from experiments.real import part_a


def explicit(coef: np.ndarray, H: np.ndarray, r: np.ndarray) -> dict:
    G = coef @ H  # (n_batches, D): the batch gradients themselves
    mean = G.mean(0)
    trace = ((G - mean) ** 2).sum() / (len(G) - 1)
    cos = (G @ r) / (np.linalg.norm(G, axis=1) * np.linalg.norm(r))
    return {"trace_cov": trace, "mean_norm2": mean @ mean, "cos": cos.mean(),
            "cos_mean_grad": mean @ r / (np.linalg.norm(mean) * np.linalg.norm(r))}


@pytest.fixture
def pool():
    rng = np.random.default_rng(0)
    n = 12
    return {"H": rng.normal(size=(n, 30)), "tokens": rng.integers(5, 40, n).astype(float),
            "mass": rng.uniform(1, 20, n), "gold": np.arange(n) % 2 == 0, "s": -rng.uniform(0.2, 3, n),
            "batches": rng.integers(0, n, (50, 4)), "r": rng.normal(size=30)}


@pytest.mark.parametrize("normalization", ["ema", "batch"])
def test_gram_statistics_equal_the_explicit_ones(pool, normalization):
    spec = {"kind": "cadft", "alpha": 1.0, "beta": 1.0, "w_min": 0.1, "w_max": 3.0, "normalization": normalization}
    w = part_a.row_weights(spec, pool["s"], part_a.calibrate(spec, pool["s"]))
    coef = part_a.batch_coefficients(spec, pool["batches"], w, pool["tokens"], pool["mass"], pool["gold"], 12)
    H, r = pool["H"], pool["r"]
    got = part_a.statistics(coef, H @ H.T, {"nll": (H @ r, float(r @ r))})
    want = explicit(coef, H, r)
    for key, value in want.items():
        assert got[key.replace("cos", "cos_nll").replace("cos_nll_mean_grad", "cos_mean_nll")] == pytest.approx(
            value, rel=1e-9), key


def test_batch_normalisation_gives_each_batch_the_base_loss_mass(pool):
    spec = {"kind": "cadft", "alpha": 1.0, "beta": 2.0, "w_min": 0.0, "w_max": 1e9, "normalization": "batch"}
    w = part_a.row_weights(spec, pool["s"], part_a.calibrate(spec, pool["s"]))
    coef = part_a.batch_coefficients(spec, pool["batches"], w, pool["tokens"], pool["mass"], pool["gold"], 12)
    for b, idx in enumerate(pool["batches"]):
        n_tokens = pool["tokens"][idx].sum()
        # sum_i w^_i M_i = sum_i M_i, with coef = w^ / N_b
        assert (coef[b] * pool["mass"]).sum() * n_tokens == pytest.approx(pool["mass"][idx].sum(), rel=1e-9)


def test_beta_zero_cadft_is_dft_and_the_oracle_drops_non_gold_rows(pool):
    dft = {"kind": "plain", "alpha": 1.0}
    cadft = {"kind": "cadft", "alpha": 1.0, "beta": 0.0, "w_min": 0.1, "w_max": 3.0, "normalization": "ema"}
    args = (pool["batches"],)
    rest = (pool["tokens"], pool["mass"], pool["gold"], 12)
    a = part_a.batch_coefficients(dft, *args, part_a.row_weights(dft, pool["s"], None), *rest)
    w = part_a.row_weights(cadft, pool["s"], part_a.calibrate(cadft, pool["s"]))
    b = part_a.batch_coefficients(cadft, *args, w, *rest)
    np.testing.assert_allclose(a, b, rtol=1e-6)
    oracle = {"kind": "oracle", "alpha": 1.0}
    c = part_a.batch_coefficients(oracle, *args, np.ones(12), *rest)
    assert not c[:, ~pool["gold"]].any()
    for bi, idx in enumerate(pool["batches"]):
        gold_tokens = pool["tokens"][idx][pool["gold"][idx]].sum()
        if gold_tokens:
            assert c[bi].sum() * gold_tokens == pytest.approx(pool["gold"][idx].sum())


def test_methods_use_the_library_defaults():
    """Part A's CADFT is the paper's estimator at the library's defaults (`CADFTConfig()`),
    and the earlier estimator is measured at its own defaults."""
    from cadft import CADFTConfig

    d = part_a.defaults()
    paper = CADFTConfig(output_dir="unused", report_to="none", use_cpu=True)
    earlier = CADFTConfig(output_dir="unused", report_to="none", use_cpu=True, **EARLIER_ESTIMATOR)
    assert d["paper"] == {"normalization": "zscore", "beta": paper.cadft_beta, "alpha": paper.cadft_token_power,
                          "eps": paper.cadft_eps, "scope": paper.cadft_scope}
    assert d["earlier"] == {"normalization": "ema", "beta": earlier.cadft_beta, "alpha": earlier.cadft_token_power,
                            "w_min": earlier.cadft_w_min, "w_max": earlier.cadft_w_max}
    specs = part_a.methods(d)
    assert specs["CADFT (defaults)"]["kind"] == "zscore" and specs["CADFT (defaults)"]["beta"] == paper.cadft_beta
    assert specs["CADFT (earlier)"]["normalization"] == "ema"
    assert {"SFT", "DFT", "DFT + oracle filter", "CADFT beta=0.5", "CADFT beta=2"} <= set(specs)


def _distinct_batches(n, batch_size, n_batches, seed=0):
    rng = np.random.default_rng(seed)
    return np.stack([rng.permutation(n)[:batch_size] for _ in range(n_batches)])


def test_paper_coefficients_equal_the_variance_module_and_beta_zero_is_dft(pool):
    import torch
    from experiments import variance

    u, tokens = -pool["s"], pool["tokens"]
    batches = _distinct_batches(12, 4, 30)
    z = part_a.batch_z(u, tokens, batches)
    ones = np.ones(12)
    for beta in (0.0, 0.5, 1.0, 2.0):
        spec = {"kind": "zscore", "alpha": 1.0, "beta": beta}
        got = part_a.batch_coefficients(spec, batches, ones, tokens, pool["mass"], pool["gold"], 12, z)
        want = variance.batch_coefficients(torch.tensor(u), torch.tensor(tokens), torch.tensor(batches), beta=beta)
        np.testing.assert_allclose(got, want.numpy(), rtol=1e-6)
    dft = part_a.batch_coefficients({"kind": "plain", "alpha": 1.0}, batches, ones, tokens, pool["mass"],
                                    pool["gold"], 12)
    beta0 = part_a.batch_coefficients({"kind": "zscore", "alpha": 1.0, "beta": 0.0}, batches, ones, tokens,
                                      pool["mass"], pool["gold"], 12, z)
    np.testing.assert_allclose(beta0, dft)


def test_variance_probe_finds_a_planted_relation_and_dft_has_ratio_one():
    """Rows with higher u get larger gradients: the probe reports a positive correlation; its
    moments at beta 0 are DFT's (ratio 1, zero differences)."""
    import torch

    rng = np.random.default_rng(1)
    n, P = 40, 25
    u = rng.uniform(0.5, 3.0, n)
    tokens = rng.integers(10, 30, n).astype(float)
    G = torch.tensor(rng.normal(size=(n, P)) * (1 + 3 * (u - u.min()))[:, None])  # norm grows with u
    refs = {"dft": torch.tensor(rng.normal(size=P)) + G.mean(0)}
    kinds = ["gold" if i % 2 else "wrong" for i in range(n)]
    out = part_a.variance_probe(G, refs, u, tokens, kinds, batch_size=8, n_batches=50, outer=10, seed=0)
    assert out["norm_vs_z"]["spearman"]["r"] > 0.5 and out["norm_vs_z"]["spearman"]["ci"][0] > 0
    dft = out["moments"]["dft"]["0"]
    assert dft["second_moment_ratio"]["value"] == pytest.approx(1.0)
    assert dft["cosine"]["vs_DFT"]["value"] == 0.0
    assert out["moments"]["dft"]["2"]["second_moment"]["value"] < dft["second_moment"]["value"]
    assert set(out["by_kind"]) == {"gold", "wrong"}
