"""Run by tests/test_fsdp.py: two CADFT steps on 8 fixed samples, under FSDP2 through
accelerate when started by `torchrun --nproc_per_node 2`, or as one plain process (the
reference) when started by `python`. Rank 0 saves the full parameter update and the final
normaliser to OUT_PATH with `{normalization}` filled in, for each normalisation in turn.
argv: OUT_PATH PER_DEVICE_BATCH NORMALIZATION[,NORMALIZATION...] ("ema", "batch").

On a CPU, accelerate turns FSDP on only for device types with a collective library of their
own (CUDA, XPU, NPU, ...): for a gloo process group (`DistributedType.MULTI_CPU`) an `fsdp`
setting is silently ignored and the model is wrapped in DDP instead. torch's FSDP2
(`fully_shard`) itself runs on CPU with gloo, so before the Accelerator is built this
script relabels the process group as a multi-device one; accelerate then takes its real
FSDP2 path (`fsdp2_prepare_model`: DTensor parameter shards, all-gather in forward,
reduce-scatter of the gradients), while every tensor stays on the CPU.
"""

from __future__ import annotations

import os
import sys

import torch
import torch.distributed as dist

from cadft import CADFTTrainer
from cadft.data import mixed_quality_demos
from cadft.tiny import tiny_llama, tiny_tokenizer

from helpers import trainer_args

FSDP_CONFIG = {"version": 2, "transformer_layer_cls_to_wrap": ["LlamaDecoderLayer"], "reshard_after_forward": True}


def open_fsdp_gate() -> None:
    """Let accelerate build its FSDP2 plugin on a gloo (CPU) process group (see above).
    Call it after building the TrainingArguments, which set up the process state afresh."""
    from accelerate import PartialState
    from accelerate.utils import DistributedType

    state = PartialState()
    if state.distributed_type != DistributedType.MULTI_CPU:
        raise RuntimeError(f"expected a multi-CPU process group, got {state.distributed_type}")
    state.distributed_type = DistributedType.MULTI_GPU  # the device stays state.device (CPU)


def full_parameters(model) -> dict[str, torch.Tensor]:
    """Every parameter in full, on every rank: a DTensor shard is all-gathered (a collective)."""
    out = {}
    for name, param in model.named_parameters():
        value = param.detach()
        out[name] = (value.full_tensor() if hasattr(value, "full_tensor") else value).clone()
    return out


def train(out_path: str, per_device: int, normalization: str) -> CADFTTrainer:
    sharded = int(os.environ.get("WORLD_SIZE", "1")) > 1
    tok = tiny_tokenizer()
    model = tiny_llama(tok, seed=0)
    before = {k: v.detach().clone() for k, v in model.named_parameters()}
    extra = dict(fsdp="full_shard", fsdp_config=FSDP_CONFIG, ddp_backend="gloo") if sharded else {}
    args = trainer_args(
        out_path + ".run", per_device_train_batch_size=per_device, max_steps=2, optim="sgd", learning_rate=0.5,
        cadft_beta=2.0, cadft_w_max=1.5, cadft_normalization=normalization, **extra,
    )
    if sharded:
        open_fsdp_gate()
    trainer = CADFTTrainer(model, args=args, train_dataset=mixed_quality_demos(8, seed=0), processing_class=tok)
    trainer.train()
    after = full_parameters(trainer.model)
    if trainer.accelerator.is_main_process:
        torch.save({
            "delta": {k: after[k] - before[k] for k in before},
            "m": trainer.normalizer.value,
            "world": trainer.accelerator.num_processes,
            "fsdp": bool(trainer.is_fsdp_enabled),
            "sharded_params": sum(hasattr(p, "full_tensor") for p in trainer.model.parameters()),
        }, out_path)
    return trainer


def main(out_path: str, per_device: int, normalizations: list[str]) -> None:
    for normalization in normalizations:  # one launch for several runs: start-up dominates
        trainer = train(out_path.format(normalization=normalization), per_device, normalization)
    if dist.is_initialized():
        trainer.accelerator.end_training()  # destroys the process group: gloo can abort at exit otherwise


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]), sys.argv[3].split(","))
