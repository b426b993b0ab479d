"""ASFT and EAFT (`cadft.losses.asft`, `cadft.losses.eaft`) against naive full-softmax
references, value and gradient; the token loss and the sample weights as independent
choices (`loss_type` x `cadft_estimator`) with CADFT's invariants for each: beta 0 gives
the bare token loss, the update does not depend on the split into micro-batches, and a
training step equals a naive one from full logits (ASFT's reference included, with and
without PEFT). Packed = padded and 2 ranks = 1 are in test_packing.py and
test_distributed.py."""

from __future__ import annotations

import copy
import math

import pytest
import torch
from peft import LoraConfig

from cadft import CADFTConfig, CADFTTrainer, defaults
from cadft import losses as L
from cadft.estimators import BatchNormalized, RunningNormalized, Unweighted, ZScore, make_estimator
from cadft.losses.token_loss import ASFTLoss, EAFTLoss, PowerLoss
from cadft.model.tiny import tiny_llama

from helpers import naive_label_logprobs, trainer_args
from test_trainer import assert_same_update, params, train_and_delta

TOL = {torch.float32: dict(rtol=1e-5, atol=1e-6), torch.bfloat16: dict(rtol=2e-2, atol=2e-2)}


# ---- the pure functions against naive references ---------------------------------------

def naive_kl(h, w, ref_h, ref_w, scale=1.0, softcap=None):
    """KL(ref || policy) per row from the full logits, straight from the formula."""
    def logits(x, weight):
        z = (x.float() @ weight.float().T) * scale
        return z if softcap is None else softcap * torch.tanh(z / softcap)
    logp, logq = torch.log_softmax(logits(h, w), -1), torch.log_softmax(logits(ref_h, ref_w), -1)
    return (logq.exp() * (logq - logp)).sum(-1)


@pytest.mark.parametrize("n,hdim,vocab", [(1, 4, 3), (7, 16, 50), (33, 8, 70001)])
@pytest.mark.parametrize("scale,softcap", [(1.0, None), (0.5, 3.0)])
def test_reference_kl_value_and_gradient_match_naive(n, hdim, vocab, scale, softcap):
    g = torch.Generator().manual_seed(n + vocab)
    h = torch.randn(n, hdim, generator=g, requires_grad=True)
    w = torch.randn(vocab, hdim, generator=g).mul(0.3).requires_grad_()
    ref_h, ref_w = torch.randn(n, hdim, generator=g), torch.randn(vocab, hdim, generator=g) * 0.3
    ours = L.reference_kl(h, w, ref_h, ref_w, logit_scale=scale, softcap=softcap)
    expected = naive_kl(h, w, ref_h, ref_w, scale, softcap)
    torch.testing.assert_close(ours, expected, rtol=1e-4, atol=1e-5)
    coef = torch.rand(n, generator=g)  # an arbitrary upstream gradient
    gh, gw = torch.autograd.grad((ours * coef).sum(), (h, w))
    eh, ew = torch.autograd.grad((expected * coef).sum(), (h, w))
    torch.testing.assert_close(gh, eh, rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(gw, ew, rtol=1e-4, atol=1e-5)


def test_reference_kl_is_zero_with_zero_gradient_at_the_reference():
    h, w = torch.randn(5, 8, requires_grad=True), torch.randn(40, 8, requires_grad=True)
    kl = L.reference_kl(h, w, h.detach(), w.detach())
    assert kl.abs().max() < 1e-5
    gh, gw = torch.autograd.grad(kl.sum(), (h, w))
    assert gh.abs().max() < 1e-5 and gw.abs().max() < 1e-5


def random_tokens(B=4, T=6, seed=0, dtype=torch.float32):
    g = torch.Generator().manual_seed(seed)
    logps = torch.log(torch.rand(B, T, generator=g).clamp(min=1e-3)).to(dtype).requires_grad_()
    mask = torch.rand(B, T, generator=g) > 0.3
    mask[:, 0] = True
    mask[-1] = False  # an empty row
    return logps, mask, g


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
@pytest.mark.parametrize("kl_coef", [0.0, 0.1, 2.0])
def test_asft_token_loss_value_and_gradient_match_naive(dtype, kl_coef):
    logps, mask, g = random_tokens(dtype=dtype)
    kl = torch.rand(mask.shape, generator=g).requires_grad_()
    loss, gate = L.asft_token_loss(logps, mask, kl, kl_coef=kl_coef)
    total = L.weighted_token_loss(loss, mask, None, num_items_in_batch=30)
    naive = sum(-logps[i, t].float().exp().detach() * logps[i, t].float() + kl_coef * kl[i, t]
                for i in range(mask.shape[0]) for t in range(mask.shape[1]) if mask[i, t]) / 30
    torch.testing.assert_close(total, naive, **TOL[dtype])
    grads = torch.autograd.grad(total, (logps, kl), materialize_grads=True)
    naive_grads = torch.autograd.grad(naive, (logps, kl), materialize_grads=True)
    for a, b in zip(grads, naive_grads):
        torch.testing.assert_close(a.float(), b.float(), **TOL[dtype])
    torch.testing.assert_close(gate, torch.where(mask, logps.detach().float().exp(), 0.0))


def test_asft_at_kl_coef_zero_is_dft():
    logps, mask, g = random_tokens()
    asft, _ = L.asft_token_loss(logps, mask, torch.rand(mask.shape, generator=g), kl_coef=0.0)
    dft, _ = L.power_token_loss(logps, mask, alpha=1.0)
    torch.testing.assert_close(asft, dft, rtol=0, atol=0)


def naive_topk_entropy(logits, k):
    top = sorted(logits.tolist(), reverse=True)[:k]
    z = math.log(sum(math.exp(x - top[0]) for x in top)) + top[0]
    return -sum(math.exp(x - z) * (x - z) for x in top)


@pytest.mark.parametrize("vocab,k", [(5, 20), (30, 20), (300, 3)])
def test_topk_entropy_matches_naive(vocab, k):
    logits = torch.randn(6, vocab, generator=torch.Generator().manual_seed(vocab)) * 3
    ours = L.topk_entropy(logits, k)
    expected = torch.tensor([naive_topk_entropy(row, k) for row in logits])
    torch.testing.assert_close(ours, expected, rtol=1e-5, atol=1e-5)
    assert (ours <= math.log(min(k, vocab)) + 1e-5).all()


@pytest.mark.parametrize("scale,softcap", [(1.0, None), (2.0, 5.0)])
def test_topk_entropy_from_hidden_equals_the_full_logits(scale, softcap):
    g = torch.Generator().manual_seed(1)
    h, w = torch.randn(11, 8, generator=g), torch.randn(90, 8, generator=g)
    logits = (h @ w.T) * scale
    logits = logits if softcap is None else softcap * torch.tanh(logits / softcap)
    ours = L.topk_entropy_from_hidden(h, w, k=20, logit_scale=scale, softcap=softcap, chunk=4)
    torch.testing.assert_close(ours, L.topk_entropy(logits, 20), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
@pytest.mark.parametrize("k,alpha", [(20, 1.0), (20, 0.5), (3, 2.0)])
def test_eaft_token_loss_value_and_gradient_match_naive(dtype, k, alpha):
    logps, mask, g = random_tokens(dtype=dtype, seed=3)
    entropy = torch.rand(mask.shape, generator=g) * 4  # some above ln k: the gate caps at 1
    loss, gate = L.eaft_token_loss(logps, mask, entropy, k=k, alpha=alpha)
    total = L.weighted_token_loss(loss, mask, None)
    n = int(mask.sum())
    naive = sum(-min(1.0, float(entropy[i, t]) / math.log(k)) ** alpha * logps[i, t].float()
                for i in range(mask.shape[0]) for t in range(mask.shape[1]) if mask[i, t]) / n
    torch.testing.assert_close(total, naive, **TOL[dtype])
    torch.testing.assert_close(torch.autograd.grad(total, logps)[0].float(),
                               torch.autograd.grad(naive, logps)[0].float(), **TOL[dtype])
    assert ((gate >= 0) & (gate <= 1)).all() and (gate[~mask] == 0).all()


def test_eaft_gate_is_the_nll_where_the_entropy_is_high_and_zero_where_it_is_none():
    logps, mask, _ = random_tokens()
    high, _ = L.eaft_token_loss(logps, mask, torch.full(mask.shape, 10.0))
    nll, _ = L.power_token_loss(logps, mask, alpha=0.0)
    torch.testing.assert_close(high, nll, rtol=0, atol=0)
    none, _ = L.eaft_token_loss(logps, mask, torch.zeros(mask.shape))
    assert (none == 0).all()


def test_no_nan_with_minus_inf_logps_and_zero_entropy():
    logps = torch.tensor([[-math.inf, -1.0, 0.0]], requires_grad=True)
    mask = torch.tensor([[True, True, False]])
    for loss, _ in (L.asft_token_loss(logps, mask, torch.zeros(1, 3), kl_coef=0.1),
                    L.eaft_token_loss(logps, mask, torch.zeros(1, 3))):
        total = L.weighted_token_loss(loss, mask, torch.tensor([0.5]))
        total.backward()
        assert torch.isfinite(total) and torch.isfinite(logps.grad).all()


def test_defaults_agree_with_the_loss_modules():
    assert defaults.ASFT_KL_COEF == L.ASFT_KL_COEF == 0.1
    assert (defaults.EAFT_K, defaults.EAFT_ALPHA) == (L.EAFT_K, L.EAFT_ALPHA) == (20, 1.0)


# ---- the config: two independent choices -------------------------------------------------

@pytest.mark.parametrize("loss_type,normalization,estimator,token_loss", [
    ("cadft", None, ZScore, PowerLoss), ("nll", None, Unweighted, PowerLoss), ("dft", None, Unweighted, PowerLoss),
    ("asft", None, Unweighted, ASFTLoss), ("eaft", None, Unweighted, EAFTLoss),
    ("asft", "zscore", ZScore, ASFTLoss), ("eaft", "ema", RunningNormalized, EAFTLoss),
    ("dft", "batch", BatchNormalized, PowerLoss), ("cadft", "none", Unweighted, PowerLoss),
])
def test_loss_type_picks_the_token_loss_and_normalization_the_weights(tmp_path, loss_type, normalization, estimator,
                                                                      token_loss):
    args = CADFTConfig(str(tmp_path), use_cpu=True, loss_type=loss_type, cadft_estimator=normalization)
    built = make_estimator(args)
    assert type(built) is estimator and type(built.token_loss) is token_loss
    assert args.weighs_samples == (estimator is not Unweighted)


def test_token_loss_fields_take_the_papers_defaults_and_belong_to_their_loss_type(tmp_path):
    asft = CADFTConfig(str(tmp_path), use_cpu=True, loss_type="asft")
    assert asft.asft_kl_coef == 0.1 and asft.eaft_alpha is None and asft.cadft_token_power is None
    eaft = CADFTConfig(str(tmp_path), use_cpu=True, loss_type="eaft")
    assert (eaft.eaft_alpha, eaft.eaft_k, eaft.eaft_entropy, eaft.asft_kl_coef) == (1.0, 20, "full", None)
    with pytest.raises(ValueError, match="asft_kl_coef has no meaning for loss_type='eaft'"):
        CADFTConfig(str(tmp_path), use_cpu=True, loss_type="eaft", asft_kl_coef=0.2)
    with pytest.raises(ValueError, match="cadft_token_power has no meaning for loss_type='dft'"):
        CADFTConfig(str(tmp_path), use_cpu=True, loss_type="dft", cadft_token_power=0.5)
    with pytest.raises(ValueError, match="eaft_k must be >= 2"):
        CADFTConfig(str(tmp_path), use_cpu=True, loss_type="eaft", eaft_k=1)
    with pytest.raises(ValueError, match="cadft_eps has no meaning for cadft_estimator='none'"):
        CADFTConfig(str(tmp_path), use_cpu=True, loss_type="asft", cadft_eps=1e-3)


# ---- through training: every combination trains, CADFT's invariants hold -----------------

TOKEN_LOSSES = {"asft": dict(loss_type="asft", asft_kl_coef=0.5), "eaft": dict(loss_type="eaft"),
                "eaft-topk": dict(loss_type="eaft", eaft_entropy="topk", eaft_k=5)}
STEP = dict(optim="sgd", learning_rate=0.5, max_grad_norm=0.0, lr_scheduler_type="constant")


@pytest.mark.parametrize("token_loss", list(TOKEN_LOSSES))
@pytest.mark.parametrize("normalization", ["zscore", "ema"])
def test_beta_zero_gives_the_bare_token_loss(tok, demos, tmp_path, token_loss, normalization):
    """Invariant 1 for each token loss: the estimator at beta 0 takes the bare loss's steps."""
    data = demos.select(range(8))
    common = dict(max_steps=2, **STEP, **TOKEN_LOSSES[token_loss])
    bare, _ = train_and_delta(tok, data, tmp_path, "bare", **common)
    weighted, trainer = train_and_delta(tok, data, tmp_path, "beta0", cadft_estimator=normalization,
                                        cadft_beta=0.0, **common)
    assert not isinstance(trainer.estimator, Unweighted)
    assert_same_update(weighted, bare, rtol=1e-5)
    assert any(v.abs().max() > 0 for v in bare.values())


@pytest.mark.parametrize("token_loss", list(TOKEN_LOSSES))
@pytest.mark.parametrize("normalization", ["none", "zscore", "batch"])
def test_micro_batch_split_gives_the_same_update(tok, demos, tmp_path, token_loss, normalization):
    """Invariant 2 for each token loss and estimator: 8 samples as 1x8, 2x4 and 8x1."""
    data = demos.select(range(8))
    common = dict(max_steps=2, cadft_estimator=normalization, **STEP, **TOKEN_LOSSES[token_loss])
    if normalization != "none":
        common["cadft_beta"] = 2.0
    if normalization == "batch":
        common["cadft_calibration_samples"] = 8
    runs = {split: train_and_delta(tok, data, tmp_path, f"{split[0]}x{split[1]}", per_device_train_batch_size=split[0],
                                   gradient_accumulation_steps=split[1], **common)[0]
            for split in [(8, 1), (2, 4), (1, 8)]}
    assert_same_update(runs[(2, 4)], runs[(8, 1)], rtol=1e-4, atol=2e-7)
    assert_same_update(runs[(1, 8)], runs[(8, 1)], rtol=1e-4, atol=2e-7)


def naive_update(tok, trainer, per_token, steps: int, lr: float):
    """The expected SGD update of `steps` steps, each over the whole training set, from full
    logits: the loss (1/N) sum of `per_token(logps, logits, ref_logits)` over trainable tokens,
    the reference the model as it started."""
    model = tiny_llama(tok, seed=0)
    reference = copy.deepcopy(model).eval()
    before = {k: p.detach().clone() for k, p in model.named_parameters() if p.requires_grad}
    batch = trainer.data_collator([trainer.train_dataset[i] for i in range(len(trainer.train_dataset))])
    for _ in range(steps):
        logits = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits[:, :-1].float()
        with torch.no_grad():
            ref = reference(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"])
            ref_logits = ref.logits[:, :-1].float()
        logps, mask = naive_label_logprobs(model, batch["input_ids"], batch["attention_mask"], batch["labels"])
        loss = per_token(logps, logits, ref_logits)[mask].sum() / mask.sum()
        model.zero_grad()
        loss.backward()
        with torch.no_grad():
            for p in model.parameters():
                if p.grad is not None:
                    p -= lr * p.grad
    return {k: p.detach() - before[k] for k, p in model.named_parameters() if k in before}


def naive_asft(kl_coef):
    def per_token(logps, logits, ref_logits):
        logp, logq = torch.log_softmax(logits, -1), torch.log_softmax(ref_logits, -1)
        return -logps.detach().exp() * logps + kl_coef * (logq.exp() * (logq - logp)).sum(-1)
    return per_token


def naive_eaft(k, alpha, topk):
    def per_token(logps, logits, ref_logits):
        with torch.no_grad():
            source = torch.topk(logits, k, dim=-1).values if topk else logits
            logp = torch.log_softmax(source, -1)
            entropy = -(logp.exp() * logp).sum(-1)
            gate = (entropy / math.log(k)).clamp(max=1) ** alpha
        return -gate * logps
    return per_token


@pytest.mark.parametrize("name,overrides,per_token", [
    ("asft", dict(loss_type="asft", asft_kl_coef=0.5), naive_asft(0.5)),
    ("eaft", dict(loss_type="eaft", eaft_alpha=2.0, eaft_k=500), naive_eaft(500, 2.0, topk=False)),
    ("eaft-topk", dict(loss_type="eaft", eaft_entropy="topk", eaft_k=5), naive_eaft(5, 1.0, topk=True)),
])
def test_training_steps_match_naive_full_logits(tok, demos, tmp_path, name, overrides, per_token):
    """Three SGD steps over 8 samples (the KL to the reference is 0 at the first, not after)
    equal the same steps from the full logits, and the loss's own metrics are logged."""
    ours, trainer = train_and_delta(tok, demos.select(range(8)), tmp_path, name, max_steps=3,
                                    per_device_train_batch_size=8, **STEP, **overrides)
    expected = naive_update(tok, trainer, per_token, steps=3, lr=0.5)
    assert_same_update(ours, expected, rtol=2e-4, atol=2e-7)
    logs = [h for h in trainer.state.log_history if "loss" in h]
    if name == "asft":
        assert logs[0]["asft/kl"] == pytest.approx(0, abs=1e-6) and logs[-1]["asft/kl"] > 1e-6
        assert trainer.reference_model.num_parameters == sum(p.numel() for p in trainer.model.parameters())
    else:
        assert all(0 < h["eaft/gate"] <= 1 and h["eaft/entropy"] > 0 for h in logs)


def test_asft_with_lora_anchors_to_the_adapter_disabled(tok, demos, tmp_path):
    """Under PEFT the reference is the model with its adapter disabled: no second copy, and
    the same steps as the naive loop anchored to the base model."""
    lora = LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj", "v_proj"], task_type="CAUSAL_LM",
                      init_lora_weights=False)
    model = tiny_llama(tok, seed=0)
    trainer = CADFTTrainer(model, args=trainer_args(tmp_path / "lora", loss_type="asft", asft_kl_coef=1.0, max_steps=2,
                                                    per_device_train_batch_size=8, **STEP),
                           train_dataset=demos.select(range(8)), processing_class=tok, peft_config=lora)
    before = params(trainer.model)
    trainer.train()
    ours = {k: v - before[k] for k, v in params(trainer.model).items()}
    assert trainer.reference_model.num_parameters == 0
    logs = [h for h in trainer.state.log_history if "loss" in h]
    assert logs[0]["asft/kl"] > 1e-6  # the random adapter already moves the policy from the base model
    expected = naive_update_lora(tok, trainer, before, naive_asft(1.0), steps=2, lr=0.5)
    assert_same_update({k: ours[k] for k in expected}, expected, rtol=2e-4, atol=2e-7)


def naive_update_lora(tok, trainer, start, per_token, steps, lr):
    """`naive_update` for the LoRA run: the adapter's parameters as the run started, the base
    model (the adapter disabled) as the reference."""
    model = copy.deepcopy(trainer.model)  # its submodules' own forwards (the copy's patched forward calls the original)
    base = model.get_base_model()

    def logits_of(inputs):
        return base.lm_head(base.model(**inputs).last_hidden_state)[:, :-1].float()

    with torch.no_grad():
        for k, p in model.named_parameters():
            if k in start:
                p.copy_(start[k])
    batch = trainer.data_collator([trainer.train_dataset[i] for i in range(len(trainer.train_dataset))])
    for _ in range(steps):
        inputs = dict(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"])
        logits = logits_of(inputs)
        with torch.no_grad(), model.disable_adapter():
            ref_logits = logits_of(inputs)
        logps = torch.log_softmax(logits, -1).gather(-1, batch["labels"][:, 1:].clamp(min=0)[..., None])[..., 0]
        mask = batch["labels"][:, 1:] != -100
        loss = per_token(torch.where(mask, logps, 0.0), logits, ref_logits)[mask].sum() / mask.sum()
        model.zero_grad()
        loss.backward()
        with torch.no_grad():
            for k, p in model.named_parameters():
                if p.grad is not None:
                    p -= lr * p.grad
    return {k: p.detach() - start[k] for k, p in model.named_parameters() if k in start}
