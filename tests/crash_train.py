"""A CADFT run with rewriting that SIGKILLs itself at a chosen moment, for the crash tests.

Run as a script by tests/test_crash_resume.py; the crash is chosen by an environment
variable, so the moment is exact (no sleeps, no races):

    CADFT_CRASH_AT=step:7  python tests/crash_train.py run.json  # in step 7, before the optimizer step
    CADFT_CRASH_AT=save:4  python tests/crash_train.py run.json  # saving checkpoint-4: model in, no trainer_state.json
    CADFT_CRASH_AT=round:5 python tests/crash_train.py run.json  # in the rewriting round after step 5, once generated

run.json holds {"model", "output_dir", "base_url", "mode"} (mode: "verified", the
default, or "paper"). The run is tests/rewrite_train.py's
resumable one (rounds after steps 3, 5 and 7) with a checkpoint every 2 steps of which
only the newest is kept, so a save that destroyed the previous checkpoint too early
would leave nothing to resume from.
"""

from __future__ import annotations

import json
import os
import signal
import sys
from pathlib import Path

import torch
from transformers import TrainerCallback

from cadft import CADFTTrainer

# tests/ is on sys.path: pytest's rootdir, or this script's folder
from rewrite_train import PAPER, RESUMABLE, make_trainer

CRASH_ENV = "CADFT_CRASH_AT"
# Checkpoints 2, 4, 6, 8; save_total_limit=1 keeps only the newest complete one
CRASHABLE = {**RESUMABLE, "save_steps": 2, "save_total_limit": 1}


def crash_trainer(model_path, output_dir, base_url: str, mode: str = "verified") -> CADFTTrainer:
    """`mode` "verified" (tests/rewrite_train.py's REWRITE) or "paper" (its PAPER)."""
    return make_trainer(model_path, output_dir, base_url, **CRASHABLE, **(PAPER if mode == "paper" else {}))


def die() -> None:
    os.kill(os.getpid(), signal.SIGKILL)


class _DieInStep(TrainerCallback):
    """SIGKILL in optimizer step `step`: its gradients computed, the update not applied."""

    def __init__(self, step: int):
        self.step = step

    def on_pre_optimizer_step(self, args, state, control, **kwargs):
        if state.global_step + 1 == self.step:
            die()


def install_crash(trainer: CADFTTrainer, spec: str) -> None:
    """Make `trainer` SIGKILL its own process at `spec` = "step:N", "save:N" or "round:N"."""
    phase, step = spec.split(":")
    step = int(step)
    if phase == "step":
        trainer.add_callback(_DieInStep(step))
    elif phase == "save":
        # Trainer._save_checkpoint saves the RNG state after the model, optimizer and
        # scheduler and before trainer_state.json
        save_rng_state = trainer._save_rng_state

        def save_rng_state_or_die(output_dir):
            if trainer.state.global_step == step:
                die()
            save_rng_state(output_dir)

        trainer._save_rng_state = save_rng_state_or_die
    elif phase == "round":
        generator = trainer.rewriter.generator
        generate = generator.generate

        def generate_then_die(conversations, settings):
            candidates = generate(conversations, settings)  # real requests to the server
            if trainer.state.global_step == step:
                die()  # candidates in hand, nothing scored, logged or applied
            return candidates

        generator.generate = generate_then_die
    else:
        raise ValueError(f"{CRASH_ENV}={spec!r}: the phase must be step, save or round")


def main(config_path: str) -> None:
    torch.set_num_threads(1)
    config = json.loads(Path(config_path).read_text())
    trainer = crash_trainer(config["model"], config["output_dir"], config["base_url"], config.get("mode", "verified"))
    install_crash(trainer, os.environ[CRASH_ENV])
    trainer.train()
    raise SystemExit(f"{CRASH_ENV}={os.environ[CRASH_ENV]}: the run finished without crashing")


if __name__ == "__main__":
    main(sys.argv[1])
