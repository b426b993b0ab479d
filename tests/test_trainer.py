"""CADFTTrainer: invariants 1 and 2 through real training steps, logging, LoRA, resume."""

from __future__ import annotations

import json
import logging

import pytest
import torch
from datasets import Dataset
from peft import LoraConfig
from trl import SFTConfig, SFTTrainer

from cadft import CADFTTrainer
from cadft.model.tiny import tiny_llama

from helpers import trainer_args

pytestmark = pytest.mark.min_deps  # also run on the lowest supported versions (.ci/run)

# The project's earlier estimator, as its tests pin it (the paper's is the default)
EARLIER = dict(cadft_estimator="ema")


def params(model):
    return {k: v.detach().clone() for k, v in model.named_parameters() if v.requires_grad}


def train_and_delta(tok, dataset, tmp_path, name, **overrides):
    model = tiny_llama(tok, seed=0)
    before = params(model)
    trainer = CADFTTrainer(model, args=trainer_args(tmp_path / name, **overrides), train_dataset=dataset, processing_class=tok)
    trainer.train()
    after = params(trainer.model)
    return {k: after[k] - before[k] for k in before}, trainer


def assert_same_update(a, b, rtol=1e-4, atol=1e-7):
    for k in a:
        torch.testing.assert_close(a[k], b[k], rtol=rtol, atol=atol, msg=lambda m: f"{k}: {m}")


def test_beta_zero_matches_trl_dft(tok, demos, tmp_path):
    """Invariant 1: CADFT at beta = 0 takes the same steps as TRL's own loss_type='dft'."""
    data = demos.select(range(8))
    common = dict(max_steps=3, optim="sgd", learning_rate=0.5, per_device_train_batch_size=4)
    ours, _ = train_and_delta(tok, data, tmp_path, "cadft", loss_type="cadft", cadft_beta=0.0, cadft_token_power=1.0,
                              **common)

    model = tiny_llama(tok, seed=0)
    before = params(model)
    ref_args = SFTConfig(
        str(tmp_path / "trl"), loss_type="dft", report_to="none", bf16=False, gradient_checkpointing=False,
        use_cpu=True, max_length=256, save_strategy="no", seed=0, data_seed=0, disable_tqdm=True, **common,
    )
    ref = SFTTrainer(model, args=ref_args, train_dataset=data, processing_class=tok)
    ref.train()
    theirs = {k: v - before[k] for k, v in params(ref.model).items()}
    assert_same_update(ours, theirs, rtol=1e-5)
    assert any(v.abs().max() > 0 for v in ours.values())


def test_dft_loss_type_equals_cadft_beta_zero(tok, demos, tmp_path):
    data = demos.select(range(8))
    a, _ = train_and_delta(tok, data, tmp_path, "dft", loss_type="dft", optim="sgd", learning_rate=0.5)
    b, _ = train_and_delta(tok, data, tmp_path, "c0", loss_type="cadft", cadft_beta=0.0, cadft_token_power=1.0,
                           optim="sgd", learning_rate=0.5)
    assert_same_update(a, b, rtol=1e-6)


@pytest.mark.parametrize("loss_type", ["nll", "cadft"])
def test_micro_batch_split_gives_the_same_update(tok, demos, tmp_path, loss_type):
    """Invariant 2: one global batch of 8 as 1x8, 2x4 and 8x1 (micro-batch x accumulation).

    8 samples and a global batch of 8: every step sees all of them whatever the order, so
    the 2 steps (the second uses the normaliser updated after the first) must agree."""
    data = demos.select(range(8))
    common = dict(loss_type=loss_type, max_steps=2, optim="sgd", learning_rate=0.5, cadft_beta=2.0, cadft_w_max=1.5,
                  **EARLIER)
    runs = {}
    for mb, acc in [(8, 1), (2, 4), (1, 8)]:
        runs[(mb, acc)], trainer = train_and_delta(
            tok, data, tmp_path, f"{mb}x{acc}", per_device_train_batch_size=mb, gradient_accumulation_steps=acc, **common
        )
        runs[(mb, acc, "m")] = trainer.normalizer.value if trainer.normalizer else None
    assert_same_update(runs[(8, 1)], runs[(2, 4)])
    assert_same_update(runs[(8, 1)], runs[(1, 8)])
    if loss_type == "cadft":
        assert runs[(8, 1, "m")] == pytest.approx(runs[(1, 8, "m")], rel=1e-5)
        assert runs[(8, 1, "m")] == pytest.approx(runs[(2, 4, "m")], rel=1e-5)


def test_logs_compatibility_metrics_and_nll(tok, demos, tmp_path):
    trainer = CADFTTrainer(
        tiny_llama(tok),
        args=trainer_args(tmp_path / "logs", max_steps=4, logging_steps=2, eval_strategy="steps", eval_steps=4, **EARLIER),
        train_dataset=demos,
        eval_dataset=demos.select(range(8)),
        processing_class=tok,
    )
    trainer.train()
    train_logs = [h for h in trainer.state.log_history if "loss" in h]
    eval_logs = [h for h in trainer.state.log_history if "eval_loss" in h]
    keys = ["cadft/compat_mean", "cadft/compat_p10", "cadft/weight_mean", "cadft/weight_ess", "cadft/clip_frac", "nll"]
    for key in keys + ["cadft/normalizer"]:
        assert all(key in h for h in train_logs), key
    for key in keys:
        assert f"eval_{key}" in eval_logs[0], key
    h = train_logs[-1]
    assert 0 < h["cadft/compat_p10"] <= h["cadft/compat_mean"] <= 1
    assert 0 <= h["cadft/clip_frac"] <= 1 and h["cadft/weight_ess"] >= 1
    # plain NLL of a near-uniform tiny model is about log(vocab); the CADFT loss is far smaller
    assert h["nll"] == pytest.approx(torch.log(torch.tensor(float(len(tok)))).item(), rel=0.1)


def test_every_sample_id_reaches_the_loss(tok, demos, tmp_path):
    seen = []

    class Spy(CADFTTrainer):
        def compute_loss(self, model, inputs, *args, **kwargs):
            seen.extend(inputs["sample_id"].tolist())
            return super().compute_loss(model, inputs, *args, **kwargs)

    data = demos.select(range(12))
    Spy(tiny_llama(tok), args=trainer_args(tmp_path, max_steps=3), train_dataset=data, processing_class=tok).train()
    assert sorted(seen) == list(range(12))


def test_lora_training(tok, demos, tmp_path):
    peft_config = LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj", "v_proj"])
    trainer = CADFTTrainer(
        tiny_llama(tok), args=trainer_args(tmp_path, max_steps=3), train_dataset=demos, processing_class=tok,
        peft_config=peft_config,
    )
    before = params(trainer.model)
    assert before and all("lora" in k for k in before)
    trainer.train()
    after = params(trainer.model)
    assert any(not torch.equal(before[k], after[k]) for k in before)
    assert all(torch.isfinite(torch.tensor(h["loss"])) for h in trainer.state.log_history if "loss" in h)


@pytest.mark.parametrize("fmt", ["prompt_completion_text", "messages", "text"])
def test_other_dataset_formats(tok, tmp_path, fmt):
    rows = {
        "prompt_completion_text": [{"prompt": f"Q{i}: 2+{i}=", "completion": f" {2 + i}"} for i in range(8)],
        "messages": [
            {"messages": [{"role": "user", "content": f"2+{i}?"}, {"role": "assistant", "content": str(2 + i)}]}
            for i in range(8)
        ],
        "text": [{"text": f"The sum 2+{i} is {2 + i}."} for i in range(8)],
    }[fmt]
    trainer = CADFTTrainer(tiny_llama(tok), args=trainer_args(tmp_path), train_dataset=Dataset.from_list(rows), processing_class=tok)
    trainer.train()
    logs = [h for h in trainer.state.log_history if "loss" in h]
    assert trainer.state.global_step == 2 and all(0 < h["cadft/weight_min"] <= 1 for h in logs)


def test_resume_restores_the_normaliser(tok, demos, tmp_path):
    common = dict(max_steps=4, save_strategy="steps", save_steps=2, cadft_ema_decay=0.5, **EARLIER)
    full = CADFTTrainer(tiny_llama(tok), args=trainer_args(tmp_path / "full", **common), train_dataset=demos, processing_class=tok)
    full.train()
    saved = json.loads((tmp_path / "full" / "checkpoint-2" / "cadft_state.json").read_text())
    assert saved["normalizer"]["num_updates"] == 2

    resumed = CADFTTrainer(tiny_llama(tok, seed=5), args=trainer_args(tmp_path / "full", **common), train_dataset=demos, processing_class=tok)
    calls = []
    original = resumed.estimator.calibrate
    resumed.estimator.calibrate = lambda trainer: (calls.append(1), original(trainer))
    resumed.train(resume_from_checkpoint=str(tmp_path / "full" / "checkpoint-2"))
    assert calls == []  # m came from the checkpoint, not from a new calibration
    assert resumed.normalizer.num_updates == 4
    assert resumed.normalizer.value == pytest.approx(full.normalizer.value, rel=1e-5)
    assert_same_update(params(resumed.model), params(full.model), rtol=1e-5)


def test_truncated_samples_are_reported(tok, demos, tmp_path, caplog):
    long_prompt = [{"role": "user", "content": "x" * 300}]
    rows = demos.select(range(6)).to_list()
    rows[3]["prompt"] = long_prompt
    with caplog.at_level(logging.WARNING, logger="cadft.training.trainer"):
        trainer = CADFTTrainer(
            tiny_llama(tok), args=trainer_args(tmp_path, max_length=200), train_dataset=Dataset.from_list(rows), processing_class=tok
        )
    # Both the 1-based row a data error would name and the 0-based sample id
    assert "row 4 of the training data (counted from 1; sample id 3)" in caplog.text
    assert len(trainer.train_dataset) == 5


def test_config_validation_lists_valid_values(tmp_path):
    with pytest.raises(ValueError, match="nll, dft, cadft"):
        trainer_args(tmp_path, loss_type="sft")
    with pytest.raises(ValueError, match="cadft_w_min"):
        trainer_args(tmp_path, cadft_w_min=2.0, cadft_w_max=1.0, **EARLIER)
    with pytest.raises(ValueError, match="packing_strategy='wrapped' cuts demonstrations"):
        trainer_args(tmp_path, packing=True, packing_strategy="wrapped")
    with pytest.raises(ValueError, match="cadft_ema_decay"):
        trainer_args(tmp_path, cadft_ema_decay=1.0, **EARLIER)


def test_rejects_plain_sft_config(tok, demos, tmp_path):
    with pytest.raises(TypeError, match="CADFTConfig"):
        CADFTTrainer(tiny_llama(tok), args=SFTConfig(str(tmp_path), use_cpu=True, bf16=False), train_dataset=demos, processing_class=tok)
