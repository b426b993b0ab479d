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


def coefficients(spec: dict, pool: dict, batches=None) -> np.ndarray:
    """Part A's coefficients of a spec on the pool's batches, its weights from its estimator."""
    batches = pool["batches"] if batches is None else batches
    u, tokens = -pool["s"], pool["tokens"]
    est = part_a.estimator(spec, u, tokens)
    w = part_a.batch_weights(est, u, tokens > 0, batches)
    return part_a.batch_coefficients(spec, batches, w, tokens, pool["mass"], pool["gold"], len(u),
                                     rescales_gradients=est.rescales_gradients)


def earlier(estimator: str, beta: float, w_min: float = 0.1, w_max: float = 3.0) -> dict:
    return {"alpha": 1.0, "fields": {"cadft_estimator": estimator, "cadft_beta": beta, "cadft_w_min": w_min,
                                     "cadft_w_max": w_max}}


@pytest.mark.parametrize("estimator", ["ema", "batch"])
def test_gram_statistics_equal_the_explicit_ones(pool, estimator):
    coef = coefficients(earlier(estimator, 1.0), pool)
    H, r = pool["H"], pool["r"]
    got = part_a.statistics(coef, H @ H.T, {"nll": (H @ r, float(r @ r))})
    want = explicit(coef, H, r)
    for key, value in want.items():
        assert got[key.replace("cos", "cos_nll").replace("cos_nll_mean_grad", "cos_mean_nll")] == pytest.approx(
            value, rel=1e-9), key


def test_batch_normalisation_gives_each_batch_the_base_loss_mass(pool):
    coef = coefficients(earlier("batch", 2.0, w_min=0.0, w_max=1e9), pool)
    for b, idx in enumerate(pool["batches"]):
        n_tokens = pool["tokens"][idx].sum()
        # sum_i w^_i M_i = sum_i M_i, with coef = w^ / N_b
        assert (coef[b] * pool["mass"]).sum() * n_tokens == pytest.approx(pool["mass"][idx].sum(), rel=1e-9)


def test_earlier_weights_are_the_estimators_with_m_calibrated_on_the_pool(pool):
    """The earlier estimator's weights in a batch are its clipped c**beta / m with m the pool's
    mean of c**beta, whatever else the batch holds."""
    spec = earlier("ema", 1.0)
    u, tokens = -pool["s"], pool["tokens"]
    est = part_a.estimator(spec, u, tokens)
    m = np.exp(pool["s"]).mean()
    want = np.clip(np.exp(pool["s"]) / m, 0.1, 3.0)
    got = part_a.batch_weights(est, u, tokens > 0, pool["batches"])
    np.testing.assert_allclose(got, want[pool["batches"]], rtol=1e-5)


def test_beta_zero_cadft_is_dft_and_the_oracle_drops_non_gold_rows(pool):
    dft = {"alpha": 1.0, "fields": {"loss_type": "dft"}}
    np.testing.assert_allclose(coefficients(dft, pool), coefficients(earlier("ema", 0.0), pool), rtol=1e-6)
    c = coefficients({**dft, "gold_only": True}, pool)
    assert not c[:, ~pool["gold"]].any()
    for bi, idx in enumerate(pool["batches"]):
        gold_tokens = pool["tokens"][idx][pool["gold"][idx]].sum()
        if gold_tokens:
            assert c[bi].sum() * gold_tokens == pytest.approx(pool["gold"][idx].sum())


def test_methods_use_the_library_defaults():
    """Part A's CADFT is the paper's estimator at the library's defaults (`CADFTConfig()`),
    and the earlier estimator is measured at its own defaults."""
    from cadft import CADFTConfig
    from cadft.estimators import RunningNormalized, Unweighted, ZScore

    d = part_a.defaults()
    paper = CADFTConfig(output_dir="unused", report_to="none", use_cpu=True)
    old = CADFTConfig(output_dir="unused", report_to="none", use_cpu=True, **EARLIER_ESTIMATOR)
    assert d["paper"] == {"estimator": paper.cadft_estimator, "beta": paper.cadft_beta,
                          "alpha": paper.cadft_token_power, "eps": paper.cadft_eps, "scope": paper.cadft_scope}
    assert d["earlier"] == {"estimator": old.cadft_estimator, "beta": old.cadft_beta, "alpha": old.cadft_token_power,
                            "w_min": old.cadft_w_min, "w_max": old.cadft_w_max}
    specs = part_a.methods(d)
    u, tokens = np.array([0.5, 1.0, 2.0]), np.array([3.0, 4.0, 5.0])
    est = {name: part_a.estimator(spec, u, tokens) for name, spec in specs.items()}
    assert type(est["CADFT (defaults)"]) is ZScore and est["CADFT (defaults)"].beta == paper.cadft_beta
    assert type(est["CADFT (earlier)"]) is RunningNormalized and est["CADFT (earlier)"].normalizer.ready
    assert all(isinstance(est[name], Unweighted) for name in ("SFT", "DFT", "DFT + oracle filter"))
    assert {"SFT", "DFT", "DFT + oracle filter", "CADFT beta=0.5", "CADFT beta=2"} <= set(specs)


def _distinct_batches(n, batch_size, n_batches, seed=0):
    rng = np.random.default_rng(seed)
    return np.stack([rng.permutation(n)[:batch_size] for _ in range(n_batches)])


def test_paper_coefficients_equal_the_variance_module_and_beta_zero_is_dft(pool):
    import torch

    from experiments import variance

    u, tokens = -pool["s"], pool["tokens"]
    batches = _distinct_batches(12, 4, 30)
    for beta in (0.0, 0.5, 1.0, 2.0):
        got = coefficients({"alpha": 1.0, "fields": {"cadft_estimator": "zscore", "cadft_beta": beta}}, pool, batches)
        want = variance.batch_coefficients(torch.tensor(u), torch.tensor(tokens), torch.tensor(batches), beta=beta)
        np.testing.assert_allclose(got, want.numpy(), rtol=1e-6)
    dft = coefficients({"alpha": 1.0, "fields": {"loss_type": "dft"}}, pool, batches)
    beta0 = coefficients({"alpha": 1.0, "fields": {"cadft_estimator": "zscore", "cadft_beta": 0.0}}, pool, batches)
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
