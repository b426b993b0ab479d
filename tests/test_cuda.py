"""The CUDA paths: the fused head in bf16, one step of the paper's estimator against the naive
reference (float32, and bf16 autocast), beta 0 against TRL's `dft`, packed against padded with
the GPU's attention kernel, and the ASFT and EAFT token losses (TRL's chunked divergence kernel
and the fused head's entropy, Triton where it is installed) against their naive references.
The same invariants as the CPU tests, on the device users train on.

They skip on a machine without CUDA, naming the reason; `benchmarks/gpu.sh` runs them on the
GPU before its benchmarks. CADFT_CUDA_TESTS_ON_CPU=1 runs them on the CPU instead (a dry run
of the test code, bf16 included, for a machine without a GPU).

Tolerances. float32 on a GPU sums in another order than the CPU reference, and its matrix
products may not be bitwise reproducible: elementwise rtol 1e-3, atol 1e-6 where the CPU tests
use 2e-4 / 1e-7. bf16 autocast keeps 8 significant bits in every matrix product: it is compared
by the relative error of the whole update, ||delta - delta_ref|| / ||delta_ref||, at most
BF16_UPDATE_TOL, and the sample weights to BF16_WEIGHT_TOL; each test prints what it measured
(pytest -rP)."""

from __future__ import annotations

import importlib.util
import os

import pytest
import torch
from trl import SFTConfig, SFTTrainer

from cadft import CADFTTrainer
from cadft import losses as L
from cadft.model.scoring import ensure_fused_lm_head
from cadft.model.tiny import tiny_llama

from helpers import FAST_ARGS, naive_label_logprobs, trainer_args
from test_paper_estimator import naive_step
from test_token_losses import naive_asft, naive_eaft, naive_kl, naive_update
from test_trainer import assert_same_update

ON_CPU = os.environ.get("CADFT_CUDA_TESTS_ON_CPU", "") not in ("", "0")
DEVICE = "cuda" if torch.cuda.is_available() else "cpu"

pytestmark = [
    pytest.mark.cuda,
    pytest.mark.skipif(DEVICE != "cuda" and not ON_CPU,
                       reason="no CUDA device: these tests run on a GPU (benchmarks/gpu.sh runs them there; "
                              "CADFT_CUDA_TESTS_ON_CPU=1 dry-runs them on the CPU)"),
]

BF16_UPDATE_TOL = 5e-2  # relative error of the whole update in bf16 autocast
BF16_WEIGHT_TOL = 2e-2  # absolute error of each sample weight in bf16 autocast
ON_DEVICE = dict(use_cpu=DEVICE == "cpu")
FP32_ON_DEVICE = dict(rtol=1e-3, atol=1e-6)  # float32 on the device against a reference (module docstring)


def relative_error(a: dict, b: dict) -> float:
    num = sum(float((a[k].float() - b[k].float()).pow(2).sum()) for k in b)
    den = sum(float(b[k].float().pow(2).sum()) for k in b)
    return (num / den) ** 0.5


def cpu_params(model) -> dict:
    return {k: v.detach().float().cpu().clone() for k, v in model.named_parameters() if v.requires_grad}


def train_delta(tok, data, out, trainer_cls=CADFTTrainer, args=None, attn: str | None = None):
    model = tiny_llama(tok, seed=0)
    if attn is not None:
        model.set_attn_implementation(attn)
    before = cpu_params(model)
    trainer = trainer_cls(model, args=args, train_dataset=data, processing_class=tok)
    trainer.accelerator.gradient_accumulation_steps = 1  # as CADFTTrainer does (test_paper_estimator._trl_delta)
    trainer.train()
    assert trainer.model.device.type == DEVICE
    after = cpu_params(trainer.model)
    return {k: after[k] - before[k] for k in before}, trainer


def test_fused_head_label_logprobs_equal_a_full_softmax_in_bf16():
    """A bf16 model with a 65,536-token vocabulary (two of the fused head's vocabulary tiles):
    the fused head's label log-probs against a float32 log-softmax of the same model's full
    bf16 logits. Both round the logits to bf16, so the difference is the order of the sums."""
    from transformers import LlamaConfig, LlamaForCausalLM

    config = LlamaConfig(vocab_size=65_536, hidden_size=256, intermediate_size=512, num_hidden_layers=2,
                         num_attention_heads=4, num_key_value_heads=4, max_position_embeddings=256)
    torch.manual_seed(0)
    model = LlamaForCausalLM(config).to(DEVICE, torch.bfloat16)
    ensure_fused_lm_head(model)
    ids = torch.randint(0, config.vocab_size, (4, 128), device=DEVICE)
    labels = ids.clone()
    labels[:, :32] = -100
    labels[3] = -100  # a fully masked row
    with torch.no_grad():
        out = model(input_ids=ids, labels=labels, fused_lm_head=True)
        ref, mask = naive_label_logprobs(model, ids, None, labels)
    assert torch.equal(out.label_mask, mask)
    token_err = (out.log_probs.float() - ref).abs()[mask].max().item()
    u, u_ref = [-(x * mask).sum(-1) / mask.sum(-1).clamp(min=1) for x in (out.log_probs.float(), ref)]
    print(f"{DEVICE} bf16 fused head: max token log-prob error {token_err:.2e}, "
          f"max row NLL error {(u - u_ref).abs().max().item():.2e} (NLL ~ {u_ref[:3].mean().item():.2f})")
    assert token_err <= 5e-2
    torch.testing.assert_close(u, u_ref, rtol=0, atol=1e-2)
    assert torch.isfinite(out.log_probs).all()


@pytest.mark.parametrize("precision", ["fp32", "bf16"])
@pytest.mark.parametrize("split", [(8, 1), (2, 4)], ids=["8x1", "2x4"])
def test_one_step_matches_the_naive_reference(tok, demos, tmp_path, precision, split):
    """One SGD step of the paper's estimator (beta 1) on the device against the float32
    full-softmax reference on the CPU: weights from the training forward (8x1) or from the
    no-grad pre-pass (2x4)."""
    mb, acc = split
    lr = 0.5
    args = trainer_args(tmp_path / "run", **ON_DEVICE, bf16=precision == "bf16", max_steps=1, optim="sgd",
                        learning_rate=lr, per_device_train_batch_size=mb, gradient_accumulation_steps=acc,
                        cadft_beta=1.0, max_grad_norm=0.0, lr_scheduler_type="constant")
    ours, trainer = train_delta(tok, demos.select(range(8)), None, args=args)
    expected, w = naive_step(tok, trainer, 1.0, lr)
    h = next(h for h in trainer.state.log_history if "loss" in h)
    err, w_err = relative_error(ours, expected), abs(h["cadft/weight_mean"] - sum(w) / len(w))
    print(f"{DEVICE} {precision} {mb}x{acc}: update relative error {err:.2e}, weight_mean error {w_err:.2e}")
    if precision == "fp32":
        assert_same_update({k: ours[k] for k in expected}, expected, **FP32_ON_DEVICE)
        assert h["cadft/weight_min"] == pytest.approx(min(w), rel=1e-3)
    else:
        assert err <= BF16_UPDATE_TOL
        assert w_err <= BF16_WEIGHT_TOL and abs(h["cadft/weight_min"] - min(w)) <= BF16_WEIGHT_TOL
    assert any(v.abs().max() > 0 for v in ours.values())


@pytest.mark.parametrize("precision", ["fp32", "bf16"])
def test_beta_zero_is_trl_dft(tok, demos, tmp_path, precision):
    """Invariant 1 on the device, with accumulation (the pre-pass runs): both trainers in the
    same precision; bf16 by the relative error of the update."""
    common = dict(FAST_ARGS, **ON_DEVICE, bf16=precision == "bf16", max_steps=2, optim="sgd", learning_rate=0.5,
                  per_device_train_batch_size=2, gradient_accumulation_steps=2)
    data = demos.select(range(8))
    ours, _ = train_delta(tok, data, None, args=trainer_args(tmp_path / "cadft", **common, cadft_beta=0.0))
    theirs, _ = train_delta(tok, data, None, SFTTrainer,
                            args=SFTConfig(str(tmp_path / "trl"), loss_type="dft", **common))
    err = relative_error(ours, theirs)
    print(f"{DEVICE} {precision}: beta 0 against TRL dft, update relative error {err:.2e}")
    if precision == "fp32":
        assert_same_update({k: ours[k] for k in theirs}, theirs, **FP32_ON_DEVICE)
    else:
        assert err <= BF16_UPDATE_TOL
    assert any(v.abs().max() > 0 for v in ours.values())


ATTENTION = ["sdpa"] + (["flash_attention_2"] if importlib.util.find_spec("flash_attn") and DEVICE == "cuda" else [])


@pytest.mark.parametrize("attn", ATTENTION)
def test_packed_equals_padded(tok, demos, tmp_path, attn):
    """One step over 8 demonstrations, padded, or packed by `bfd` into padding-free rows that
    the attention kernel separates by their position ids: the same update (float32; flash
    attention has no float32 kernel, so it runs in bf16 autocast, compared like bf16 above)."""
    precision = "bf16" if attn == "flash_attention_2" else "fp32"
    common = dict(**ON_DEVICE, bf16=precision == "bf16", max_steps=1, optim="sgd", learning_rate=0.5,
                  max_grad_norm=0.0, lr_scheduler_type="constant", max_length=512, cadft_beta=2.0)
    data = demos.select(range(8))
    padded, _ = train_delta(tok, data, None, args=trainer_args(tmp_path / "padded", per_device_train_batch_size=8,
                                                               **common), attn=attn)
    packed, trainer = train_delta(tok, data, None, args=trainer_args(tmp_path / "packed", packing=True,
                                                                     per_device_train_batch_size=8, **common),
                                  attn=attn)
    assert trainer.padding_free and len(trainer.train_dataset) < 8
    assert trainer.model.config._attn_implementation == attn
    err = relative_error(packed, padded)
    print(f"{DEVICE} {attn} ({precision}): packed into {len(trainer.train_dataset)} rows against 8 padded, "
          f"update relative error {err:.2e}")
    if precision == "fp32":
        assert_same_update({k: packed[k] for k in padded}, padded, **FP32_ON_DEVICE)
    else:
        assert err <= BF16_UPDATE_TOL
    assert any(v.abs().max() > 0 for v in packed.values())


def test_asft_reference_kl_matches_the_full_softmax_at_a_large_vocabulary():
    """ASFT's KL(ref || policy) through TRL's chunked divergence kernel on the device (Triton
    where installed), value and gradient, against the full-softmax formula."""
    g = torch.Generator().manual_seed(0)
    n, hdim, vocab = 64, 32, 100_000
    h = torch.randn(n, hdim, generator=g).to(DEVICE).requires_grad_()
    w = (torch.randn(vocab, hdim, generator=g) * 0.3).to(DEVICE).requires_grad_()
    ref_h = torch.randn(n, hdim, generator=g).to(DEVICE)
    ref_w = (torch.randn(vocab, hdim, generator=g) * 0.3).to(DEVICE)
    ours, expected = L.reference_kl(h, w, ref_h, ref_w), naive_kl(h, w, ref_h, ref_w)
    coef = torch.rand(n, generator=g).to(DEVICE)
    grads = torch.autograd.grad((ours * coef).sum(), (h, w))
    ref_grads = torch.autograd.grad((expected * coef).sum(), (h, w))
    print(f"{DEVICE} reference_kl at vocab {vocab}: max value error {(ours - expected).abs().max().item():.2e}, "
          f"max gradient error {max((a - b).abs().max().item() for a, b in zip(grads, ref_grads)):.2e}")
    torch.testing.assert_close(ours, expected, rtol=1e-4, atol=1e-4)
    for a, b in zip(grads, ref_grads):
        torch.testing.assert_close(a, b, rtol=1e-3, atol=1e-5)


@pytest.mark.parametrize("name,overrides,per_token", [
    ("asft", dict(loss_type="asft", asft_kl_coef=0.5), naive_asft(0.5)),
    ("eaft", dict(loss_type="eaft", eaft_alpha=2.0, eaft_k=500), naive_eaft(500, 2.0, topk=False)),
    ("eaft-topk", dict(loss_type="eaft", eaft_entropy="topk", eaft_k=5), naive_eaft(5, 1.0, topk=True)),
])
def test_token_losses_train_like_the_naive_reference(tok, demos, tmp_path, name, overrides, per_token):
    """Three SGD steps of ASFT / EAFT on the device (float32) against the same steps from the
    full logits on the CPU (tests/test_token_losses.py's reference)."""
    args = trainer_args(tmp_path / name, **ON_DEVICE, max_steps=3, per_device_train_batch_size=8, optim="sgd",
                        learning_rate=0.5, max_grad_norm=0.0, lr_scheduler_type="constant", **overrides)
    ours, trainer = train_delta(tok, demos.select(range(8)), None, args=args)
    expected = naive_update(tok, trainer, per_token, steps=3, lr=0.5)
    print(f"{DEVICE} {name}: 3 steps, update relative error {relative_error(ours, expected):.2e}")
    assert_same_update({k: ours[k] for k in expected}, expected, **FP32_ON_DEVICE)
