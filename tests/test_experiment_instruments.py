"""The experiment's gradient instruments recover a known signal-to-noise ratio.

Synthetic per-sample gradients h_i = mu + noise with ||mu||^2 / tr Cov known: the unbiased
estimate must land within 10% of it, where the old reading tr Cov / ||mean h||^2 (which
contains tr Cov / B) is far off at a low ratio."""

from __future__ import annotations

import pytest
import torch

from experiments.testbed.instruments import cosine, gradient_snr, split_half_cosine


def synthetic(snr: float, *, b: int = 48, d: int = 20000, seed: int = 0) -> torch.Tensor:
    """(b, d) gradients whose mean has ||mu||^2 = snr * tr Cov (tr Cov = d, unit noise)."""
    g = torch.Generator().manual_seed(seed)
    mu = torch.randn(d, generator=g, dtype=torch.float64)
    mu *= (snr * d) ** 0.5 / mu.norm()
    return mu + torch.randn(b, d, generator=g, dtype=torch.float64)


@pytest.mark.parametrize("snr", [0.02, 0.1, 0.5, 2.0])
def test_gradient_snr_recovers_a_known_ratio_within_ten_percent(snr):
    for seed in range(3):
        assert gradient_snr(synthetic(snr, seed=seed)) == pytest.approx(snr, rel=0.1)


def test_the_biased_reading_would_miss_a_low_ratio():
    h = synthetic(0.02)
    biased = float(h.mean(0).square().sum() / ((h - h.mean(0)).square().sum() / (h.shape[0] - 1)))
    assert biased > 1.5 * 0.02  # contains 1/B = 0.021: why the instrument subtracts it


def test_pure_noise_reads_about_zero_and_split_half_cosine_follows_the_ratio():
    assert abs(gradient_snr(synthetic(0.0))) < 0.005
    snr, b = 0.1, 48
    expected = 1 / (1 + 2 / (b * snr))
    assert split_half_cosine(synthetic(snr, b=b)) == pytest.approx(expected, abs=0.05)


def test_cosine_of_aligned_orthogonal_and_zero_vectors():
    a = torch.tensor([1.0, 0.0, 2.0])
    assert cosine(a, 3 * a) == pytest.approx(1.0)
    assert cosine(a, torch.tensor([0.0, 1.0, 0.0])) == 0.0
    assert cosine(a, torch.zeros(3)) == 0.0


def test_the_probes_asft_kl_and_eaft_entropy_equal_the_full_softmax():
    # the probes' token losses read what the trainer feeds them: KL(ref || policy) and the exact entropy
    import copy

    from cadft.model.tiny import tiny_llama, tiny_tokenizer
    from cadft.training.token_inputs import ReferenceModel
    from experiments.testbed.training import _label_logprobs

    tok = tiny_tokenizer()
    base = tiny_llama(tok, hidden_size=32, num_layers=1, num_heads=4, max_position_embeddings=64, seed=0)
    policy = copy.deepcopy(base)
    with torch.no_grad():
        for p in policy.parameters():
            p.add_(0.05 * torch.randn(p.shape, generator=torch.Generator().manual_seed(p.numel())))
    ids = torch.randint(5, 40, (2, 12), generator=torch.Generator().manual_seed(0))
    labels = ids.clone()
    labels[:, :4] = -100
    logp = torch.log_softmax(policy(input_ids=ids).logits[:, :-1].float(), -1)  # (B, T-1, V)
    ref = torch.log_softmax(base(input_ids=ids).logits[:, :-1].float(), -1)
    _, mask, asft = _label_logprobs(policy, ids, labels, loss_type="asft", reference=ReferenceModel(base))
    torch.testing.assert_close(asft["kl"], (ref.exp() * (ref - logp)).sum(-1) * mask, atol=1e-5, rtol=1e-4)
    assert asft["kl"].requires_grad
    _, _, eaft = _label_logprobs(policy, ids, labels, loss_type="eaft")
    torch.testing.assert_close(eaft["entropy"], -(logp.exp() * logp).sum(-1), atol=1e-5, rtol=1e-4)
