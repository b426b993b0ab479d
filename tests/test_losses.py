"""The pure loss functions against hand-derived identities and naive loops."""

from __future__ import annotations

import doctest
import importlib
import math

import pytest
import torch

from cadft import cadft_loss, compatibility, dft_loss, raw_sample_weights, sample_weights, sft_loss, weight_stats

pytestmark = pytest.mark.min_deps  # also run on the lowest supported versions (.ci/run)


def random_batch(B=5, T=7, seed=0, dtype=torch.float32, empty_rows=(1,)):
    g = torch.Generator().manual_seed(seed)
    logps = torch.log(torch.rand(B, T, generator=g).clamp(min=1e-3)).to(dtype)
    mask = torch.rand(B, T, generator=g) > 0.3
    mask[:, 0] = True
    for r in empty_rows:
        mask[r] = False
    return logps, mask


def naive_cadft(logps, mask, beta, m, w_min, w_max, N=None):
    """Sample by sample, token by token, straight from the formulas in docs/method.md."""
    total = 0.0
    n_tokens = int(mask.sum()) if N is None else N
    for i in range(logps.shape[0]):
        toks = [logps[i, t].float() for t in range(logps.shape[1]) if mask[i, t]]
        if not toks:
            continue
        c = math.exp(sum(float(x.detach()) for x in toks) / len(toks))
        w = min(max(c**beta / m, w_min), w_max)
        total = total + w * sum(-torch.exp(x).detach() * x for x in toks)
    return total / max(n_tokens, 1)


def test_compatibility_is_geometric_mean_and_invalid_rows_are_zero():
    logps, mask = random_batch()
    c = compatibility(logps, mask)
    for i in range(logps.shape[0]):
        if mask[i].any():
            expected = torch.exp(logps[i][mask[i]].mean())
            torch.testing.assert_close(c[i], expected)
        else:
            assert c[i] == 0
    assert not c.isnan().any() and (c >= 0).all() and (c <= 1).all()


def test_compatibility_ignores_values_under_the_mask():
    logps, mask = random_batch()
    noisy = torch.where(mask, logps, torch.full_like(logps, float("nan")))
    torch.testing.assert_close(compatibility(noisy, mask), compatibility(logps, mask))


def test_sample_weights_formula_and_clipping():
    c = torch.tensor([0.01, 0.2, 0.5, 0.9])
    raw = raw_sample_weights(c, beta=2.0, normalizer=0.1)
    torch.testing.assert_close(raw, c**2 / 0.1)
    w = sample_weights(c, beta=2.0, normalizer=0.1, w_min=0.05, w_max=3.0)
    torch.testing.assert_close(w, (c**2 / 0.1).clamp(0.05, 3.0))
    assert sample_weights(torch.tensor([0.0, 0.3]), beta=0.0).tolist() == [1.0, 1.0]


@pytest.mark.parametrize("bad", [dict(beta=-1.0), dict(normalizer=0.0), dict(w_min=2.0, w_max=1.0), dict(w_min=-0.1)])
def test_sample_weights_reject_invalid_arguments(bad):
    kwargs = dict(beta=1.0, normalizer=1.0, w_min=0.0, w_max=5.0) | bad
    with pytest.raises(ValueError):
        sample_weights(torch.tensor([0.5]), **kwargs)


@pytest.mark.parametrize("shape", [(1, 1), (3, 5), (6, 17)])
@pytest.mark.parametrize("N", [None, 40])
@pytest.mark.parametrize("beta,m,w_min,w_max", [(1.0, 0.3, 0.1, 3.0), (0.5, 0.5, 0.0, math.inf), (3.0, 0.05, 0.2, 2.0)])
def test_cadft_loss_value_and_gradient_match_the_naive_formula(shape, N, beta, m, w_min, w_max):
    logps, mask = random_batch(*shape, empty_rows=() if shape[0] == 1 else (shape[0] - 1,))
    a = logps.clone().requires_grad_()
    b = logps.clone().requires_grad_()
    loss, stats = cadft_loss(a, mask, beta=beta, normalizer=m, w_min=w_min, w_max=w_max, num_items_in_batch=N)
    ref = naive_cadft(b, mask, beta, m, w_min, w_max, N)
    torch.testing.assert_close(loss, ref.float(), rtol=1e-5, atol=1e-7)
    loss.backward()
    ref.backward()
    torch.testing.assert_close(a.grad, b.grad, rtol=1e-5, atol=1e-7)


def test_beta_zero_is_dft_exactly():
    logps, mask = random_batch(6, 9)
    a, b = logps.clone().requires_grad_(), logps.clone().requires_grad_()
    loss_c, _ = cadft_loss(a, mask, beta=0.0, normalizer=1.0, w_min=0.1, w_max=3.0, num_items_in_batch=50)
    loss_d, _ = dft_loss(b, mask, num_items_in_batch=50)
    loss_c.backward()
    loss_d.backward()
    assert torch.equal(loss_c, loss_d)
    assert torch.equal(a.grad, b.grad)


def test_dft_gradient_is_minus_grad_p_over_n():
    logps, mask = random_batch(4, 6)
    x = logps.clone().requires_grad_()
    loss, _ = dft_loss(x, mask)
    loss.backward()
    expected = torch.where(mask, -logps.exp() / mask.sum(), 0.0)  # d(-sg(p) l)/dl = -p
    torch.testing.assert_close(x.grad, expected)


def test_sft_loss_is_mean_token_nll():
    logps, mask = random_batch(4, 6)
    loss, stats = sft_loss(logps, mask)
    expected = -logps[mask].sum() / mask.sum()
    torch.testing.assert_close(loss, expected)
    torch.testing.assert_close(stats["nll"], expected)


def test_weight_stats_ess_and_clip_fraction():
    c = torch.tensor([0.1, 0.5, 0.9, 0.0])
    valid = torch.tensor([True, True, True, False])
    raw = torch.tensor([0.2, 1.0, 4.0, 0.0])
    w = raw.clamp(0.3, 3.0)
    s = weight_stats(c, w, raw, valid)
    wv = w[:3]
    torch.testing.assert_close(s["weight_ess"], wv.sum() ** 2 / (wv**2).sum())
    torch.testing.assert_close(s["clip_frac"], torch.tensor(2 / 3))
    torch.testing.assert_close(s["compat_mean"], torch.tensor(0.5))
    assert s["num_samples"] == 3


@pytest.mark.parametrize("loss_fn", ["sft", "dft", "cadft"])
@pytest.mark.parametrize("case", ["empty_rows", "all_masked", "neg_inf", "very_low", "bf16", "fp16"])
def test_no_nan_or_inf(loss_fn, case):
    logps, mask = random_batch(4, 6, empty_rows=(0, 2))
    if case == "all_masked":
        mask[:] = False
    elif case == "neg_inf":
        logps[1, 0] = -float("inf")
        logps[3, :] = -float("inf")
    elif case == "very_low":
        logps = logps * 1e4
    elif case == "bf16":
        logps = logps.bfloat16()
    elif case == "fp16":
        logps = logps.half()
    x = logps.clone().requires_grad_()
    kwargs = dict(beta=1.0, normalizer=0.2, w_min=0.1, w_max=3.0) if loss_fn == "cadft" else {}
    fn = {"sft": sft_loss, "dft": dft_loss, "cadft": cadft_loss}[loss_fn]
    loss, stats = fn(x, mask, **kwargs)
    loss.backward()
    assert torch.isfinite(loss), (case, loss)
    assert torch.isfinite(x.grad).all()
    for key, value in stats.items():
        assert torch.isfinite(value.float()).all(), key
    if case == "all_masked":
        assert loss == 0 and stats["num_samples"] == 0


def test_bf16_matches_fp32_within_bf16_tolerance():
    logps, mask = random_batch(5, 11)
    l32, s32 = cadft_loss(logps, mask, beta=1.0, normalizer=0.3, w_min=0.1, w_max=3.0)
    l16, s16 = cadft_loss(logps.bfloat16(), mask, beta=1.0, normalizer=0.3, w_min=0.1, w_max=3.0)
    torch.testing.assert_close(l16, l32, rtol=2e-2, atol=1e-3)
    torch.testing.assert_close(s16["sample_compat"], s32["sample_compat"], rtol=2e-2, atol=1e-3)


@pytest.mark.parametrize("module", ["", ".weights", ".token", ".asft", ".eaft"])
def test_docstring_examples_run(module):
    failures, attempted = doctest.testmod(importlib.import_module(f"cadft.losses{module}"), extraglobs={"torch": torch})
    assert failures == 0 and attempted > 0


@pytest.mark.parametrize("loss_fn", [sft_loss, dft_loss, lambda *a, **k: cadft_loss(*a, beta=1.0, normalizer=0.3, **k)])
def test_summary_false_leaves_out_only_the_batch_statistics(loss_fn):
    """The trainer aggregates weight statistics per optimizer step itself and asks the loss
    not to compute them per micro-batch (~30 small ops each): same loss, same per-sample values."""
    logps, mask = random_batch()
    full_loss, full = loss_fn(logps, mask, num_items_in_batch=40)
    loss, lean = loss_fn(logps, mask, num_items_in_batch=40, summary=False)
    assert torch.equal(loss, full_loss)
    summary_keys = set(weight_stats(full["sample_compat"], full["sample_weight"], full["sample_raw_weight"],
                                    full["sample_valid"], full["sample_mass"]))
    assert set(lean) == set(full) - summary_keys and summary_keys <= set(full)
    for key, value in lean.items():
        assert torch.equal(value, full[key]), key
