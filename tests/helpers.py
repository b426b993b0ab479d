"""Test helpers: a naive full-softmax reference, fast trainer configs, a torchrun command."""

from __future__ import annotations

import importlib.util
import os
import socket
import sys

import torch


def naive_label_logprobs(model, input_ids, attention_mask, labels):
    """Reference: full logits, float32 log-softmax, gather the shifted labels. (B, T-1) x2"""
    logits = model(input_ids=input_ids, attention_mask=attention_mask).logits.float()
    logps = torch.log_softmax(logits[:, :-1], dim=-1)
    target = labels[:, 1:]
    mask = target != -100
    picked = logps.gather(-1, target.clamp(min=0).unsqueeze(-1)).squeeze(-1)
    return torch.where(mask, picked, torch.zeros_like(picked)), mask


# Training arguments of fast, deterministic CPU tests, for a CADFTConfig or TRL's SFTConfig
FAST_ARGS = dict(
    per_device_train_batch_size=4,
    per_device_eval_batch_size=4,
    max_steps=2,
    learning_rate=1e-3,
    logging_steps=1,
    save_strategy="no",
    report_to="none",
    bf16=False,
    gradient_checkpointing=False,
    use_cpu=True,
    max_length=256,
    seed=0,
    data_seed=0,
    dataloader_num_workers=0,
    disable_tqdm=True,
)


def trainer_args(output_dir, **overrides):
    """A CADFTConfig for fast, deterministic CPU tests."""
    from cadft import CADFTConfig

    kwargs = dict(FAST_ARGS, output_dir=str(output_dir))
    kwargs.update(overrides)
    if kwargs.get("cadft_estimator") in ("ema", "batch"):
        kwargs.setdefault("cadft_calibration_samples", 8)  # the earlier estimator's calibration, kept small
    return CADFTConfig(**kwargs)


def torchrun(nproc: int) -> list[str]:
    """The start of a `torchrun --nproc_per_node nproc` command on a free loopback port."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", str(nproc),
            "--master_addr", "127.0.0.1", "--master_port", str(port)]


def require_deepspeed() -> None:
    """Skip the calling test, naming the reason, where DeepSpeed is not installed; CI installs
    it (`make test`) and sets CADFT_REQUIRE_DEEPSPEED=1 (.ci/run), which makes that a failure."""
    import pytest

    if importlib.util.find_spec("deepspeed") is None:
        reason = 'deepspeed is not installed (pip install "cadft[deepspeed]"; make test installs it)'
        if os.environ.get("CADFT_REQUIRE_DEEPSPEED", "") not in ("", "0"):
            pytest.fail(f"{reason}; CADFT_REQUIRE_DEEPSPEED=1 makes this a failure", pytrace=False)
        pytest.skip(reason)
