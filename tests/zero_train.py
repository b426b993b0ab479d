"""Run by tests/test_deepspeed.py: CADFT under DeepSpeed ZeRO through accelerate when started
by `torchrun --nproc_per_node 2`, or as one plain process (the reference) when started by
`python`. Several runs share one launch (start-up dominates); rank 0 saves each run's
results to OUT_PATH with `{job}` filled in.

argv: OUT_PATH STAGE JOB [JOB ...], a JOB being
- `NORMALIZATION-aACCUMULATION` (e.g. `zscore-a2`): two SGD steps on 8 fixed samples, the
  global batch 8 whatever the processes and accumulation; saves the full parameter update
  and the logged statistics;
- `rewrite`: a rewriting round in the paper's configuration after step 1 of 2, by the
  policy, then `cadft train`'s closing summary; saves the round's provenance and the scores;
- `resume`: two steps saving a checkpoint after each, then a fresh trainer resumed from
  the first; saves both final parameters;
- `batch`: builds a trainer with cadft_estimator='batch'; saves the error it raises.

DeepSpeed on a machine without a GPU (DS_ACCELERATOR=cpu; its CPU accelerator talks gloo
where oneCCL is absent): accelerate's state counts a process group only when it knows a
backend for the device, and without a GPU it keeps none, so the Trainer would fill
DeepSpeed's `train_batch_size` for one process and DeepSpeed's batch check fails. The
harness builds the state first, `PartialState(backend="gloo")` with
ACCELERATE_USE_DEEPSPEED=true during that call (so it is a DeepSpeed state), and the
configs reuse it (`accelerator_config={"use_configured_state": True}`). Nothing of this is
library code: on GPUs `accelerate launch` sets it all up.
"""

from __future__ import annotations

import json
import os
import sys

import torch
import torch.distributed as dist

from cadft import CADFTTrainer
from cadft.cli.train import _score
from cadft.data import mixed_quality_demos
from cadft.model.tiny import tiny_llama, tiny_tokenizer
from cadft.rewriting.store import PROVENANCE_FILE

from helpers import trainer_args

GLOBAL_BATCH = 8

# The paper's procedure, scaled down: a round after step 1 over the 3 samples of highest
# moving-average u, each replaced (probability 1) by the policy's own sample, unverified
PAPER_REWRITE = dict(
    rewrite=True, rewrite_generator="policy", rewrite_min_visits=1, rewrite_budget=3, rewrite_start_step=1,
    rewrite_interval_steps=1, rewrite_replace_prob=1.0, rewrite_max_new_tokens=12, rewrite_temperature=1.0,
)


def deepspeed_config(stage: int) -> dict:
    """A DeepSpeed config as a user writes it for the Trainer: batch sizes, clipping and
    precision left to the training arguments ("auto")."""
    return {
        "train_batch_size": "auto", "train_micro_batch_size_per_gpu": "auto", "gradient_accumulation_steps": "auto",
        "gradient_clipping": "auto", "bf16": {"enabled": "auto"}, "fp16": {"enabled": "auto"},
        "zero_optimization": {"stage": stage, "stage3_gather_16bit_weights_on_model_save": True},
        "zero_allow_untested_optimizer": True,  # the Trainer's own torch optimizer (SGD here)
    }


def engine_args(stage: int) -> dict:
    """The training arguments that turn DeepSpeed on (several processes), after setting up
    accelerate's state for it (see the module's docstring); {} for one plain process."""
    if int(os.environ.get("WORLD_SIZE", "1")) == 1:
        return {}
    from accelerate.state import AcceleratorState, GradientState, PartialState

    # A fresh state for each run of the launch (an Accelerator takes a DeepSpeed plugin only
    # when it is the first); the process group stays
    AcceleratorState._reset_state(reset_partial_state=True)
    GradientState._reset_state()
    os.environ["ACCELERATE_USE_DEEPSPEED"] = "true"
    try:
        PartialState(backend="gloo")
    finally:
        del os.environ["ACCELERATE_USE_DEEPSPEED"]
    return dict(deepspeed=deepspeed_config(stage), accelerator_config={"use_configured_state": True},
                ddp_backend="gloo")


def full_parameters(trainer) -> dict[str, torch.Tensor]:
    """Every parameter in full on every rank (under ZeRO-3 a gather: a collective)."""
    params = list(trainer.model.named_parameters())
    if any(hasattr(p, "ds_id") for _, p in params):
        import deepspeed

        with deepspeed.zero.GatheredParameters([p for _, p in params]):
            return {name: p.detach().clone() for name, p in params}
    return {name: p.detach().clone() for name, p in params}


def build(out_dir: str, stage: int, normalization: str = "zscore", accumulation: int = 1, eval_rows: int = 0,
          **overrides):
    world = int(os.environ.get("WORLD_SIZE", "1"))
    tok = tiny_tokenizer()
    model = tiny_llama(tok, seed=0)
    earlier = dict(cadft_w_max=1.5, cadft_calibration_samples=7) if normalization != "zscore" else {}
    args = trainer_args(
        out_dir, per_device_train_batch_size=GLOBAL_BATCH // (world * accumulation),
        gradient_accumulation_steps=accumulation, max_steps=2, optim="sgd", learning_rate=0.5, cadft_beta=2.0,
        max_grad_norm=0.5, cadft_estimator=normalization, **earlier, **overrides, **engine_args(stage),
    )
    trainer = CADFTTrainer(model, args=args, train_dataset=mixed_quality_demos(GLOBAL_BATCH, seed=0),
                           eval_dataset=mixed_quality_demos(eval_rows, seed=1) if eval_rows else None,
                           processing_class=tok)
    return trainer, {k: v.detach().clone() for k, v in model.named_parameters()}


def engine(trainer) -> dict:
    return {"world": trainer.accelerator.num_processes, "deepspeed": bool(trainer.is_deepspeed_enabled),
            "partitioned": sum(hasattr(p, "ds_id") for p in trainer.model.parameters())}


def run_update(out: str, stage: int, normalization: str, accumulation: int):
    trainer, before = build(out + ".run", stage, normalization, accumulation)
    trainer.train()
    after = full_parameters(trainer)
    logs = [h for h in trainer.state.log_history if "loss" in h]
    return trainer, {**engine(trainer), "delta": {k: after[k] - before[k] for k in before}, "logs": logs}


def run_rewrite(out: str, stage: int):
    """The round, evaluation after each step (8 rows: one global evaluation batch) and the summary."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    trainer, _ = build(out + ".run", stage, eval_rows=GLOBAL_BATCH, eval_strategy="steps", eval_steps=1,
                       per_device_eval_batch_size=GLOBAL_BATCH // world, **PAPER_REWRITE)
    trainer.train()
    summary = _score(trainer, "after")  # a collective: every rank scores an equal share
    records = []
    if trainer.accelerator.is_main_process:
        with open(os.path.join(trainer.args.output_dir, PROVENANCE_FILE)) as f:
            records = [json.loads(line) for line in f]
    evals = [h for h in trainer.state.log_history if "eval_loss" in h]
    return trainer, {**engine(trainer), "records": records, "summary": summary, "eval": evals}


def run_resume(out: str, stage: int):
    trainer, _ = build(out + ".run", stage, save_strategy="steps", save_steps=1)
    trainer.train()
    uninterrupted = full_parameters(trainer)
    checkpoint = os.path.join(trainer.args.output_dir, "checkpoint-1")
    resumed, _ = build(out + ".resumed", stage)
    resumed.train(resume_from_checkpoint=checkpoint)
    return resumed, {**engine(resumed), "uninterrupted": uninterrupted, "resumed": full_parameters(resumed),
                     "resumed_steps": resumed.state.global_step}


def run_batch(out: str, stage: int):
    try:
        trainer, _ = build(out + ".run", stage, "batch")
    except ValueError as error:
        return None, {"error": str(error)}
    return trainer, {**engine(trainer), "error": None}


def main(out_path: str, stage: int, jobs: list[str]) -> None:
    special = {"rewrite": run_rewrite, "resume": run_resume, "batch": run_batch}
    for job in jobs:
        out = out_path.format(job=job)
        if job in special:
            _, result = special[job](out, stage)
        else:
            normalization, accumulation = job.split("-a")
            _, result = run_update(out, stage, normalization, int(accumulation))
        if int(os.environ.get("RANK", "0")) == 0:
            torch.save(result, out)
    if dist.is_initialized():
        dist.barrier()
        dist.destroy_process_group()  # gloo can abort at exit otherwise


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]), sys.argv[3:])
