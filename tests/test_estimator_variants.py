"""The estimator variants of METHOD.md ("Open design choices"): token power alpha, the
`batch` normalisation, log-space weights and per-step weight statistics.

Invariants 1-4 for every variant: beta = 0 equals DFT (alpha = 1) and SFT (alpha = 0)
under either normalisation; 1x8 = 2x4 = 8x1; a naive reference; no NaN."""

from __future__ import annotations

import math

import pytest
import torch
from trl import SFTConfig, SFTTrainer

from cadft import CADFTTrainer
from cadft.estimators.normalizer import RunningNormalizer, log_mean_exp
from cadft.losses import batch_kappa, cadft_loss, dft_loss, sample_weights, sft_loss
from cadft.model.tiny import tiny_llama

from helpers import naive_label_logprobs, trainer_args
from test_trainer import assert_same_update, params, train_and_delta


def random_batch(B=6, T=9, seed=0):
    g = torch.Generator().manual_seed(seed)
    logps = torch.log(torch.rand(B, T, generator=g).clamp(min=1e-3))
    mask = torch.rand(B, T, generator=g) > 0.3
    mask[:, 0] = True
    mask[2] = False  # an empty row
    return logps, mask


def naive_loss(logps, mask, *, alpha, beta, m, w_min, w_max, N=None):
    """Token by token from the formula: (1/N) sum_i w_i sum_t -sg(p)^alpha l."""
    total, n_tokens = 0.0, int(mask.sum()) if N is None else N
    for i in range(logps.shape[0]):
        toks = [logps[i, t] for t in range(logps.shape[1]) if mask[i, t]]
        if not toks:
            continue
        c = math.exp(sum(float(x.detach()) for x in toks) / len(toks))
        w = min(max(c**beta / m, w_min), w_max)
        total = total + w * sum(-(float(torch.exp(x.detach())) ** alpha) * x for x in toks)
    return total / max(n_tokens, 1)


@pytest.mark.parametrize("alpha", [0.0, 0.3, 0.5, 1.0])
@pytest.mark.parametrize("beta,m,w_min,w_max", [(0.0, 1.0, 0.0, math.inf), (1.0, 0.3, 0.1, 3.0), (2.0, 0.05, 0.0, 1.0)])
def test_token_power_value_and_gradient_match_naive(alpha, beta, m, w_min, w_max):
    logps, mask = random_batch()
    a = logps.clone().requires_grad_()
    loss, _ = cadft_loss(a, mask, beta=beta, normalizer=m, w_min=w_min, w_max=w_max, token_power=alpha, num_items_in_batch=40)
    loss.backward()
    b = logps.clone().requires_grad_()
    ref = naive_loss(b, mask, alpha=alpha, beta=beta, m=m, w_min=w_min, w_max=w_max, N=40)
    ref.backward()
    torch.testing.assert_close(loss, ref.float(), rtol=1e-5, atol=1e-7)
    torch.testing.assert_close(a.grad, b.grad, rtol=1e-5, atol=1e-7)


@pytest.mark.parametrize("alpha,reference", [(0.0, sft_loss), (1.0, dft_loss)])
def test_beta_zero_is_sft_or_dft_exactly(alpha, reference):
    logps, mask = random_batch()
    a, b = logps.clone().requires_grad_(), logps.clone().requires_grad_()
    ours, _ = cadft_loss(a, mask, beta=0.0, token_power=alpha)
    theirs, _ = reference(b, mask)
    ours.backward()
    theirs.backward()
    assert torch.equal(ours, theirs) and torch.equal(a.grad, b.grad)


def test_weights_do_not_underflow_for_tiny_compatibility_and_large_beta():
    """c ~ 1e-5 and beta = 9: c**beta ~ 1e-45 is below float32's normal range, so a
    linear-space normaliser would floor and every weight would collapse to w_min."""
    g = torch.Generator().manual_seed(0)
    s = math.log(1e-5) + 0.5 * torch.randn(64, generator=g)  # mean log-probs, c in ~[2e-6, 5e-5]
    logps = s[:, None].expand(64, 4).clone()
    mask = torch.ones(64, 4, dtype=torch.bool)
    log_m, count = log_mean_exp(9.0 * s)
    assert count == 64 and math.isfinite(log_m) and log_m < -90
    _, stats = cadft_loss(logps, mask, beta=9.0, log_normalizer=log_m, w_min=0.0, w_max=math.inf)
    w = stats["sample_weight"]
    assert torch.isfinite(w).all()
    assert w.mean().item() == pytest.approx(1.0, rel=1e-4)  # exactly the self-normalised mean
    assert (w > 0).all()
    # The public linear-space entry point agrees where it can represent c
    torch.testing.assert_close(sample_weights(s.exp(), beta=9.0, log_normalizer=log_m), w, rtol=1e-3, atol=0)


def test_running_normalizer_ema_in_log_space():
    norm = RunningNormalizer(decay=0.5)
    norm.calibrate(math.log(0.2), 10)
    norm.observe(torch.log(torch.tensor([0.1, 0.3])))  # mean 0.2
    norm.observe(torch.log(torch.tensor([0.6])))  # the step's mean: (0.1 + 0.3 + 0.6) / 3
    norm.step()
    assert norm.value == pytest.approx(0.5 * 0.2 + 0.5 * (1.0 / 3), rel=1e-6)  # float32 inputs
    tiny = RunningNormalizer(decay=0.9)
    tiny.calibrate(-500.0, 1)  # m = e^-500, below float32 and near float64's edge
    tiny.observe(torch.tensor([-500.0, -499.0]))
    tiny.step()
    expected = -500.0 + math.log(0.9 + 0.1 * (1 + math.e) / 2)
    assert tiny.log_value == pytest.approx(expected, rel=1e-12)
    # old checkpoints stored m itself
    restored = RunningNormalizer()
    restored.load_state_dict({"decay": 0.9, "value": 0.25, "num_updates": 3})
    assert restored.log_value == pytest.approx(math.log(0.25))


def test_batch_kappa_gives_the_base_mass():
    mass = torch.tensor([3.0, 0.0, 1.5, 2.0])
    w = torch.tensor([0.2, 3.0, 1.0, 2.5])
    kappa = batch_kappa(mass.sum(), (w * mass).sum())
    assert float((kappa * w * mass).sum()) == pytest.approx(float(mass.sum()))
    assert float(batch_kappa(torch.tensor(0.0), torch.tensor(0.0))) == 1.0  # nothing to rescale


@pytest.mark.parametrize("alpha", [0.0, 0.5, 1.0])
def test_no_nan_or_inf_for_every_token_power(alpha):
    logps = torch.tensor([[-float("inf"), -1e30, -0.1], [0.0, 0.0, 0.0], [-3.0, -2.0, -1.0]])
    mask = torch.tensor([[True, True, True], [False, False, False], [True, True, False]])
    for dtype in (torch.float32, torch.bfloat16, torch.float16):
        x = logps.to(dtype).detach().requires_grad_()
        loss, stats = cadft_loss(x, mask, beta=2.0, normalizer=0.5, w_min=0.1, w_max=3.0, token_power=alpha)
        loss.backward()
        assert torch.isfinite(loss) and torch.isfinite(x.grad).all()
        assert all(torch.isfinite(v).all() for v in stats.values())


# ---- through the trainer ---------------------------------------------------------------


def _trl_delta(tok, data, tmp_path, loss_type, **common):
    model = tiny_llama(tok, seed=0)
    before = params(model)
    args = SFTConfig(
        str(tmp_path / f"trl-{loss_type}"), loss_type=loss_type, report_to="none", bf16=False,
        gradient_checkpointing=False, use_cpu=True, max_length=256, save_strategy="no", seed=0, data_seed=0,
        disable_tqdm=True, **common,
    )
    ref = SFTTrainer(model, args=args, train_dataset=data, processing_class=tok)
    ref.train()
    return {k: v - before[k] for k, v in params(ref.model).items()}


@pytest.mark.parametrize("normalization", ["ema", "batch"])
@pytest.mark.parametrize("alpha,trl_loss", [(0.0, "nll"), (1.0, "dft")])
def test_beta_zero_matches_trl(tok, demos, tmp_path, normalization, alpha, trl_loss):
    """Invariant 1 for every variant: beta = 0 takes TRL's own nll (alpha 0) or dft (alpha 1) steps."""
    data = demos.select(range(8))
    common = dict(max_steps=2, optim="sgd", learning_rate=0.5, per_device_train_batch_size=4)
    ours, _ = train_and_delta(tok, data, tmp_path, f"c-{normalization}-{alpha}", cadft_beta=0.0,
                              cadft_token_power=alpha, cadft_estimator=normalization, **common)
    theirs = _trl_delta(tok, data, tmp_path, trl_loss, **common)
    assert_same_update(ours, theirs, rtol=1e-5)
    assert any(v.abs().max() > 0 for v in ours.values())


@pytest.mark.min_deps  # kappa before the clip, and in the logged loss, on every transformers
@pytest.mark.parametrize("normalization,alpha", [("batch", 1.0), ("batch", 0.5), ("ema", 0.5), ("batch", 0.0)])
def test_micro_batch_split_invariance(tok, demos, tmp_path, normalization, alpha):
    """Invariant 2: 1x8 = 2x4 = 8x1, with clipping on so kappa acts before the clip."""
    data = demos.select(range(8))
    common = dict(max_steps=2, optim="sgd", learning_rate=0.5, cadft_beta=2.0, cadft_w_max=1.5,
                  cadft_estimator=normalization, cadft_token_power=alpha, max_grad_norm=0.5)
    runs = {}
    for mb, acc in [(8, 1), (2, 4), (1, 8)]:
        runs[mb], trainer = train_and_delta(tok, data, tmp_path, f"{normalization}-{alpha}-{mb}x{acc}",
                                            per_device_train_batch_size=mb, gradient_accumulation_steps=acc, **common)
        runs[(mb, "m")] = trainer.normalizer.log_value
        runs[(mb, "logs")] = [h for h in trainer.state.log_history if "loss" in h]
    assert_same_update(runs[8], runs[2])
    assert_same_update(runs[8], runs[1])
    assert runs[(8, "m")] == pytest.approx(runs[(1, "m")], rel=1e-6)
    for key in ("loss", "cadft/weight_mean", "cadft/weight_ess", "cadft/weight_mass", "grad_norm"):
        for mb in (2, 1):
            assert [h[key] for h in runs[(mb, "logs")]] == pytest.approx([h[key] for h in runs[(8, "logs")]], rel=1e-4), key


@pytest.mark.min_deps
def test_batch_normalization_one_step_matches_naive_reference(tok, demos, tmp_path):
    """With no clipping, w^_i = c_i^beta sum_j M_j / sum_j c_j^beta M_j, whatever m is."""
    data = demos.select(range(8))
    beta, alpha, lr = 1.5, 0.5, 0.5
    ours, trainer = train_and_delta(
        tok, data, tmp_path, "batch-naive", max_steps=1, optim="sgd", learning_rate=lr, per_device_train_batch_size=4,
        gradient_accumulation_steps=2, cadft_beta=beta, cadft_token_power=alpha, cadft_estimator="batch",
        cadft_w_min=0.0, cadft_w_max=1e9, max_grad_norm=0.0, lr_scheduler_type="constant",
    )
    model = tiny_llama(tok, seed=0)
    batch = trainer.data_collator([trainer.train_dataset[i] for i in range(len(trainer.train_dataset))])
    logps, mask = naive_label_logprobs(model, batch["input_ids"], batch["attention_mask"], batch["labels"])
    c = torch.stack([logps[i][mask[i]].detach().mean().exp() for i in range(len(mask))])
    M = torch.stack([(logps[i][mask[i]].detach().exp() ** alpha).sum() for i in range(len(mask))])
    w_hat = c**beta * M.sum() / (c**beta * M).sum()
    loss = sum(w_hat[i] * (-(logps[i][mask[i]].detach().exp() ** alpha) * logps[i][mask[i]]).sum()
               for i in range(len(mask))) / mask.sum()
    loss.backward()
    expected = {k: -lr * p.grad for k, p in model.named_parameters() if p.grad is not None}
    assert_same_update({k: ours[k] for k in expected}, expected, rtol=2e-4, atol=1e-7)
    # the logged statistics are the step's: effective weights whose base-loss mass is exact
    h = next(h for h in trainer.state.log_history if "loss" in h)
    assert h["cadft/weight_mass"] == pytest.approx(1.0, rel=1e-5)
    torch.testing.assert_close(torch.tensor(h["cadft/weight_mean"]), w_hat.mean().float(), rtol=1e-4, atol=0)
    assert h["loss"] == pytest.approx(loss.item(), rel=1e-4)


def test_ema_weight_mass_follows_the_batch(tok, demos, tmp_path):
    """Under `ema` the per-step weight mass is whatever the batch's composition makes it,
    and it is logged per optimizer step (one value per step, not per micro-batch)."""
    _, trainer = train_and_delta(tok, demos.select(range(16)), tmp_path, "ema-mass", max_steps=4,
                                 per_device_train_batch_size=2, gradient_accumulation_steps=2, cadft_beta=2.0,
                                 cadft_estimator="ema")
    logs = [h for h in trainer.state.log_history if "loss" in h]
    assert len(logs) == 4 and all("cadft/weight_mass" in h and "cadft/kappa" not in h for h in logs)
    assert any(abs(h["cadft/weight_mass"] - 1) > 1e-3 for h in logs)


def test_config_rejects_bad_variant_values(tmp_path):
    with pytest.raises(ValueError, match="cadft_token_power"):
        trainer_args(tmp_path, cadft_token_power=1.5)
    with pytest.raises(ValueError, match="ema, batch"):
        trainer_args(tmp_path, cadft_estimator="token")


# TRL's assistant_only_loss needs a template with {% generation %} markers: no plain-template case for it
@pytest.mark.parametrize("assistant_only_loss,markers", [(False, True), (True, True), (False, False)],
                         ids=["whole-markers", "assistant-only-markers", "whole-plain-template"])
def test_conversation_compatibility_covers_the_assistant_turns(tok, tmp_path, assistant_only_loss, markers):
    """A `messages` row: u and c cover the assistant turns (content and end-of-turn token,
    not the template's newline after it), in the trainer and in `cadft score` alike, whether
    the conversation is trained whole or with assistant_only_loss, so a long unusual system
    prompt does not lower it. Multi-turn rows: every assistant turn counts."""
    from datasets import Dataset

    from cadft.model.scoring import score_rows, tokenize_demonstration
    from cadft.model.tiny import CHAT_TEMPLATE, tiny_tokenizer

    if not markers:
        tok = tiny_tokenizer()
        tok.chat_template = CHAT_TEMPLATE.replace("{% generation %}", "").replace("{% endgeneration %}", "")
    system = "You are a careful assistant. " * 6
    rows = [{"messages": [{"role": "system", "content": system}, {"role": "user", "content": f"What is 2+{i}?"},
                          {"role": "assistant", "content": f"2+{i} = {2 + i}"}, {"role": "user", "content": "And?"},
                          {"role": "assistant", "content": f"{3 + i}"}]} for i in range(4)]
    seen = []

    class Spy(CADFTTrainer):
        def _record(self, mode, rows, outputs, sample_ids, **kwargs):
            seen.append((sample_ids.tolist(), rows.compat.tolist(), int(outputs.label_mask.sum())))
            return super()._record(mode, rows, outputs, sample_ids, **kwargs)

    model = tiny_llama(tok, seed=0)
    args = trainer_args(tmp_path / "conv", max_steps=1, per_device_train_batch_size=4, learning_rate=0.0,
                        assistant_only_loss=assistant_only_loss)
    trainer = Spy(model, args=args, train_dataset=Dataset.from_list(rows), processing_class=tok)
    trainer.train()
    ids, trained_compat, trainable = seen[0]
    scored = score_rows(trainer.model, [tokenize_demonstration(tok, rows[i]) for i in ids], pad_token_id=tok.pad_token_id)
    for c, s in zip(trained_compat, scored):
        assert c == pytest.approx(s["compatibility"], rel=1e-5)
    assistant_tokens = sum(s["num_tokens"] for s in scored)
    expected = sum(len(f"2+{i} = {2 + i}") + len(f"{3 + i}") + 2 for i in ids)  # characters + 2 end-of-turn tokens
    assert assistant_tokens == expected
    if assistant_only_loss:
        assert trainable == assistant_tokens  # TRL trains exactly the tokens u is measured on
    else:
        assert trainable > 3 * assistant_tokens  # the whole conversation is trained, u covers a small part
