"""The paper's estimator, the default (METHOD.md, "The paper's estimator"):
u_i = length-normalised NLL, z over the rows of the optimizer step's whole global batch,
w_i = exp(-beta * max(0, z_i)), on DFT's token loss in DFT's own normalisation.

Invariants 1-4: naive references (loops, full softmax) for the weights, the loss and one
step's update; beta = 0 is TRL's "dft" (and token power 0 its "nll"); 1x8 = 2x4 = 8x1
(2 ranks: tests/test_distributed.py); no NaN at the edges."""

from __future__ import annotations

import math

import pytest
import torch
from trl import SFTConfig, SFTTrainer

from cadft import CADFTConfig, CADFTTrainer
from cadft.losses import ZSCORE_EPS, batch_moments, length_normalized_nll, weighted_loss, zscore_weights, zscores
from cadft.model.tiny import tiny_llama

from helpers import naive_label_logprobs, trainer_args
from test_trainer import assert_same_update, params, train_and_delta

pytestmark = pytest.mark.min_deps  # also run on the lowest supported versions (.ci/run)

BETAS = [0.0, 0.5, 1.0, 2.0]


def naive_weights(logps, mask, beta, eps=ZSCORE_EPS):
    """Python loops over rows and tokens, straight from the formulas."""
    u = []
    for i in range(logps.shape[0]):
        toks = [float(logps[i, t]) for t in range(logps.shape[1]) if mask[i, t]]
        u.append(-sum(toks) / len(toks) if toks else None)
    valid = [x for x in u if x is not None]
    mu = sum(valid) / len(valid)
    sigma = math.sqrt(sum((x - mu) ** 2 for x in valid) / len(valid))
    return [1.0 if x is None else math.exp(-beta * max(0.0, (x - mu) / (sigma + eps))) for x in u]


def weights_of(logps, mask, beta):
    u, valid = length_normalized_nll(logps, mask)
    mean, std, _ = batch_moments(u, valid)
    return zscore_weights(zscores(u, valid, mean=mean, std=std), beta=beta)


def random_batch(B=7, T=11, seed=0):
    g = torch.Generator().manual_seed(seed)
    logps = torch.log(torch.rand(B, T, generator=g).clamp(min=1e-4))
    mask = torch.rand(B, T, generator=g) > 0.3
    mask[:, 0] = True
    mask[min(3, B - 1)] = False  # a fully masked row: out of mu and sigma, weight 1, no loss
    return logps, mask


# ---- pure functions ---------------------------------------------------------------------

@pytest.mark.parametrize("beta", BETAS)
def test_weights_match_naive_reference(beta):
    logps, mask = random_batch()
    w = weights_of(logps, mask, beta)
    torch.testing.assert_close(w, torch.tensor(naive_weights(logps, mask, beta)), rtol=1e-5, atol=1e-7)
    assert ((w > 0) & (w <= 1)).all()
    u, valid = length_normalized_nll(logps, mask)
    better = valid & (u <= u[valid].mean())
    assert (w[better] == 1).all()  # no row at or below the mean is touched, none boosted
    if beta > 0:
        assert (w[valid & (u > u[valid].mean())] < 1).all()


@pytest.mark.parametrize("beta", BETAS)
def test_loss_and_gradient_match_naive_reference(beta):
    logps, mask = random_batch()
    w = weights_of(logps, mask, beta)
    a = logps.clone().requires_grad_()
    loss, _ = weighted_loss(a, mask, w, num_items_in_batch=50)
    loss.backward()
    b = logps.clone().requires_grad_()
    ref = sum(w[i] * sum(-b[i, t].detach().exp() * b[i, t] for t in range(b.shape[1]) if mask[i, t])
              for i in range(b.shape[0]) if mask[i].any()) / 50
    ref.backward()
    torch.testing.assert_close(loss, ref.float(), rtol=1e-5, atol=1e-7)
    torch.testing.assert_close(a.grad, b.grad, rtol=1e-5, atol=1e-7)


def test_one_valid_row_and_equal_rows_weigh_one():
    logps, mask = random_batch()
    mask[1:] = False
    assert weights_of(logps, mask, 2.0).tolist() == [1.0] * 7  # sigma = 0: z = 0
    same = torch.full((4, 5), -1.3)
    assert weights_of(same, torch.ones(4, 5, dtype=torch.bool), 4.0).tolist() == [1.0] * 4
    assert weights_of(same, torch.zeros(4, 5, dtype=torch.bool), 4.0).tolist() == [1.0] * 4  # no valid row


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16, torch.float16])
def test_no_nan_with_inf_logprobs_and_low_precision(dtype):
    logps, mask = random_batch()
    logps[0, 0] = -math.inf  # a masked logit
    logps[5, 2] = -math.inf
    x = logps.to(dtype).requires_grad_()
    u, valid = length_normalized_nll(x, mask)
    mean, std, _ = batch_moments(u, valid)
    w = zscore_weights(zscores(u, valid, mean=mean, std=std), beta=1.0)
    loss, _ = weighted_loss(x, mask, w)
    loss.backward()
    assert torch.isfinite(w).all() and torch.isfinite(loss) and torch.isfinite(x.grad).all()
    assert 0 < w[0] < 1  # the row with the -inf token is the least compatible, softened, not dropped


# ---- the trainer: one step against the naive reference ------------------------------------

def naive_step(tok, trainer, beta, lr):
    """The expected SGD update of one step over the whole training set, from full logits."""
    model = tiny_llama(tok, seed=0)
    batch = trainer.data_collator([trainer.train_dataset[i] for i in range(len(trainer.train_dataset))])
    logps, mask = naive_label_logprobs(model, batch["input_ids"], batch["attention_mask"], batch["labels"])
    w = naive_weights(logps.detach(), mask, beta)
    loss = sum(w[i] * (-(logps[i][mask[i]].detach().exp()) * logps[i][mask[i]]).sum()
               for i in range(len(mask))) / mask.sum()
    loss.backward()
    return {k: -lr * p.grad for k, p in model.named_parameters() if p.grad is not None}, w


@pytest.mark.parametrize("beta", BETAS)
@pytest.mark.parametrize("split", [(8, 1), (2, 4)], ids=["8x1", "2x4"])
def test_one_step_matches_naive_reference(tok, demos, tmp_path, beta, split):
    """Weights, loss and update of one optimizer step, with the statistics from the training
    forward (8x1) or from the no-grad pre-pass over the step's micro-batches (2x4)."""
    mb, acc = split
    lr = 0.5
    ours, trainer = train_and_delta(tok, demos.select(range(8)), tmp_path, f"naive-{beta}-{mb}", max_steps=1,
                                    optim="sgd", learning_rate=lr, per_device_train_batch_size=mb,
                                    gradient_accumulation_steps=acc, cadft_beta=beta, max_grad_norm=0.0,
                                    lr_scheduler_type="constant")
    expected, w = naive_step(tok, trainer, beta, lr)
    assert_same_update({k: ours[k] for k in expected}, expected, rtol=2e-4, atol=1e-7)
    h = next(h for h in trainer.state.log_history if "loss" in h)
    assert h["cadft/weight_mean"] == pytest.approx(sum(w) / len(w), rel=1e-4)
    assert h["cadft/weight_min"] == pytest.approx(min(w), rel=1e-4)
    assert h["cadft/downweighted_frac"] == pytest.approx(sum(x < 1 for x in w) / len(w))


def test_defaults_are_the_papers(tmp_path):
    args = CADFTConfig(str(tmp_path), use_cpu=True)
    assert (args.loss_type, args.cadft_estimator, args.cadft_beta, args.cadft_token_power) == (
        "cadft", "zscore", 1.0, 1.0)
    assert (args.cadft_eps, args.cadft_scope) == (1e-6, "step")
    assert args.cadft_w_min is None and args.cadft_w_max is None and args.cadft_ema_decay is None
    earlier = CADFTConfig(str(tmp_path), use_cpu=True, cadft_estimator="ema", cadft_token_power=0.5)
    assert (earlier.cadft_w_min, earlier.cadft_w_max, earlier.cadft_ema_decay, earlier.cadft_calibration_samples) == (
        0.1, 3.0, 0.9, 64)


@pytest.mark.parametrize("field,value,normalization", [
    ("cadft_w_max", 3.0, "zscore"), ("cadft_w_min", 0.1, "zscore"), ("cadft_ema_decay", 0.5, "zscore"),
    ("cadft_calibration_samples", 8, "zscore"), ("cadft_eps", 1e-4, "ema"), ("cadft_scope", "micro_batch", "batch"),
])
def test_a_field_the_estimator_does_not_read_is_an_error(tmp_path, field, value, normalization):
    with pytest.raises(ValueError, match=rf"{field} has no meaning for cadft_estimator='{normalization}'.*"
                                         r"'ema' or 'batch'"):
        CADFTConfig(str(tmp_path), use_cpu=True, cadft_estimator=normalization, **{field: value})


# ---- invariants through training ----------------------------------------------------------

def _trl_delta(tok, data, tmp_path, loss_type, **common):
    model = tiny_llama(tok, seed=0)
    before = params(model)
    args = SFTConfig(str(tmp_path / f"trl-{loss_type}"), loss_type=loss_type, report_to="none", bf16=False,
                     gradient_checkpointing=False, use_cpu=True, max_length=256, save_strategy="no", seed=0,
                     data_seed=0, disable_tqdm=True, **common)
    trainer = SFTTrainer(model, args=args, train_dataset=data, processing_class=tok)
    # As CADFTTrainer does: on transformers 5.2 to 5.5 accelerate would divide the loss by the
    # accumulation steps a second time, and TRL's steps would be 1/steps of the 5.6 ones (no-op elsewhere)
    trainer.accelerator.gradient_accumulation_steps = 1
    trainer.train()
    return {k: v - before[k] for k, v in params(trainer.model).items()}, trainer


@pytest.mark.parametrize("alpha,trl_loss", [(1.0, "dft"), (0.0, "nll")])
def test_beta_zero_is_trl(tok, demos, tmp_path, alpha, trl_loss):
    """Invariant 1 for the default estimator, with accumulation (the pre-pass runs)."""
    data = demos.select(range(8))
    common = dict(max_steps=2, optim="sgd", learning_rate=0.5, per_device_train_batch_size=2,
                  gradient_accumulation_steps=2)
    ours, _ = train_and_delta(tok, data, tmp_path, f"zero-{alpha}", cadft_beta=0.0, cadft_token_power=alpha, **common)
    theirs, _ = _trl_delta(tok, data, tmp_path, trl_loss, **common)
    assert_same_update(ours, theirs, rtol=1e-5)
    assert any(v.abs().max() > 0 for v in ours.values())


def test_split_invariance(tok, demos, tmp_path):
    """Invariant 2: 1x8 = 2x4 = 8x1 at step scope, with clipping on; the logged step
    statistics agree too."""
    data = demos.select(range(8))
    common = dict(max_steps=2, optim="sgd", learning_rate=0.5, cadft_beta=2.0, max_grad_norm=0.5)
    runs = {}
    for mb, acc in [(8, 1), (2, 4), (1, 8)]:
        runs[mb], trainer = train_and_delta(tok, data, tmp_path, f"split-{mb}x{acc}", per_device_train_batch_size=mb,
                                            gradient_accumulation_steps=acc, **common)
        runs[(mb, "logs")] = [h for h in trainer.state.log_history if "loss" in h]
    for mb in (2, 1):
        assert_same_update(runs[8], runs[mb])
        for key in ("loss", "grad_norm", "cadft/u_mean", "cadft/u_std", "cadft/weight_mean", "cadft/weight_min",
                    "cadft/downweighted_frac", "cadft/weight_mass"):
            assert [h[key] for h in runs[(mb, "logs")]] == pytest.approx([h[key] for h in runs[(8, "logs")]],
                                                                         rel=1e-4), key
    assert any(h["cadft/weight_min"] < 0.9 for h in runs[(8, "logs")])  # the weights did act


def test_micro_batch_scope_depends_on_the_split(tok, demos, tmp_path):
    """The documented exception: z per global micro-batch is not split-invariant."""
    data = demos.select(range(8))
    common = dict(max_steps=1, optim="sgd", learning_rate=0.5, cadft_beta=2.0, max_grad_norm=0.0)
    whole, _ = train_and_delta(tok, data, tmp_path, "mb-8", per_device_train_batch_size=8, **common)
    same, _ = train_and_delta(tok, data, tmp_path, "mb-8-scope", per_device_train_batch_size=8,
                              cadft_scope="micro_batch", **common)
    split, _ = train_and_delta(tok, data, tmp_path, "mb-2", per_device_train_batch_size=2,
                               gradient_accumulation_steps=4, cadft_scope="micro_batch", **common)
    assert_same_update(whole, same, rtol=1e-6)  # one micro-batch per step: the scopes coincide
    differs = max(float((split[k] - whole[k]).abs().max() / whole[k].abs().max().clamp(min=1e-12)) for k in whole)
    assert differs > 1e-3


class ForwardCounter:
    def __init__(self, model):
        self.calls = []
        model.register_forward_pre_hook(lambda module, args: self.calls.append(torch.is_grad_enabled()))


@pytest.mark.parametrize("acc", [1, 4])
def test_pre_pass_runs_only_with_accumulation(tok, demos, tmp_path, acc):
    """With one micro-batch per step no extra forward runs; with four, one no-grad forward
    per micro-batch before the step's first backward."""
    model = tiny_llama(tok, seed=0)
    counter = ForwardCounter(model.model)
    trainer = CADFTTrainer(model, args=trainer_args(tmp_path, max_steps=2, per_device_train_batch_size=2,
                                                    gradient_accumulation_steps=acc),
                           train_dataset=demos.select(range(16)), processing_class=tok)
    trainer.train()
    with_grad, without = counter.calls.count(True), counter.calls.count(False)
    assert with_grad == 2 * acc
    assert without == (0 if acc == 1 else 2 * acc)
    if acc > 1:  # each step: acc no-grad forwards, then acc training forwards
        assert counter.calls == ([False] * acc + [True] * acc) * 2


def test_nll_logs_what_sft_trainer_logs(tok, demos, tmp_path):
    """compute_loss runs TRL's own: every key SFTTrainer logs, with its value."""
    data = demos.select(range(8))
    common = dict(max_steps=3, optim="sgd", learning_rate=0.5, per_device_train_batch_size=2,
                  gradient_accumulation_steps=2, logging_steps=1)
    _, ours = train_and_delta(tok, data, tmp_path, "nll-logs", loss_type="nll", **common)
    _, theirs = _trl_delta(tok, data, tmp_path, "nll", **common)
    ours_logs = [h for h in ours.state.log_history if "loss" in h]
    trl_logs = [h for h in theirs.state.log_history if "loss" in h]
    assert len(ours_logs) == len(trl_logs) == 3
    for a, b in zip(ours_logs, trl_logs):
        assert set(b) <= set(a), set(b) - set(a)
        for key in b:
            assert a[key] == pytest.approx(b[key], rel=1e-5), key
        assert set(a) - set(b) <= {"nll", "cadft/compat_mean", "cadft/compat_p10", "cadft/compat_p50"}


def test_logs_the_step_and_evaluation_statistics(tok, demos, tmp_path):
    trainer = CADFTTrainer(
        tiny_llama(tok),
        args=trainer_args(tmp_path, max_steps=2, per_device_train_batch_size=2, gradient_accumulation_steps=2,
                          eval_strategy="steps", eval_steps=2, per_device_eval_batch_size=4),
        train_dataset=demos, eval_dataset=demos.select(range(8)), processing_class=tok,
    )
    trainer.train()
    train_logs = [h for h in trainer.state.log_history if "loss" in h]
    [eval_log] = [h for h in trainer.state.log_history if "eval_loss" in h]
    keys = ["cadft/u_mean", "cadft/u_std", "cadft/weight_mean", "cadft/weight_min", "cadft/downweighted_frac"]
    for h in train_logs:
        assert all(key in h for key in keys)
        assert 0 < h["cadft/weight_min"] <= h["cadft/weight_mean"] <= 1
        assert h["cadft/u_mean"] == pytest.approx(-math.log(h["cadft/compat_mean"]), rel=0.2)
    assert all(f"eval_{key}" in eval_log for key in keys)
    assert "cadft/normalizer" not in train_logs[0]
