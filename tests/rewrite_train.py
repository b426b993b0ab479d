"""A CADFT run with rewriting against an OpenAI-compatible server, for the rewriting tests.

Imported by tests/test_rewriting_e2e.py (in-process runs), and run as a script by it
(kill -9 and resume, torchrun with 2 processes):

    python tests/rewrite_train.py run.json          # or: torchrun --nproc_per_node 2 ...

run.json holds {"model", "output_dir", "base_url", "overrides" (of RESUMABLE), "resume",
"dump", "pause_at_step", "pause_marker"}. At the end each process writes its rewriting state
(tracker, accepted rewrites, collator targets) to `dump` with `{rank}` filled in. With
`pause_at_step`, the run writes `pause_marker` after that optimizer step and then waits
to be killed.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import torch
from transformers import LlamaForCausalLM, TrainerCallback

from cadft import CADFTTrainer
from cadft.data import mixed_quality_demos
from cadft.model.tiny import tiny_tokenizer
from cadft.rewriting import make_generator
from cadft.training.teardown import exit_if_torchrun

from helpers import trainer_args  # tests/ is on sys.path: pytest's rootdir, or this script's folder

# 16 demonstrations, a global batch of 4: one epoch is 4 optimizer steps
DATA = dict(n=16, seed=3, frac_foreign=0.25, frac_wrong=0.25)

# The project's verified rewriting with its earlier selection, one round per epoch (4
# steps): every visit is flagged (the threshold is far above any weight), so a round takes
# the least compatible samples up to the budget, foreign and wrong demonstrations included.
REWRITE = dict(
    loss_type="cadft",
    learning_rate=1e-3,
    rewrite=True,
    rewrite_preset="verified",
    rewrite_selection="flagged",
    rewrite_start_step=4,
    rewrite_interval_steps=4,
    rewrite_verifier="math",
    rewrite_answer_column="answer",
    rewrite_flag_threshold=100.0,
    rewrite_min_gain=0.01,
    rewrite_num_candidates=2,
    rewrite_temperature=1.0,
)

# The config of the kill/resume and 2-process runs: rounds after steps 3, 5 and 7 (all in
# mid-epoch), three samples each; a checkpoint after step 5, a round step
RESUMABLE = dict(
    max_steps=8,
    rewrite_start_step=3,
    rewrite_interval_steps=2,
    rewrite_persistence=1,
    rewrite_budget=3,
    save_strategy="steps",
    save_steps=5,
)

# The paper's procedure on the same schedule (RESUMABLE): top-u selection after one visit,
# the prompt alone, no verifier, no gain gate, each target replaced with probability 0.5
PAPER = dict(
    rewrite_preset="paper",
    rewrite_selection="top_u",
    rewrite_min_visits=1,
    rewrite_verifier=None,
    rewrite_num_candidates=None,
    rewrite_seed=1,
)

# Quick failures against the loopback server (the defaults wait 60 s and retry 3 times)
FAST_GENERATOR = dict(timeout_s=5.0, max_retries=1, backoff_s=0.01)


def demos():
    return mixed_quality_demos(**DATA)


def make_trainer(model_path, output_dir, base_url: str, generator_kwargs=None, **overrides) -> CADFTTrainer:
    tok = tiny_tokenizer()
    model = LlamaForCausalLM.from_pretrained(model_path)
    args = trainer_args(output_dir, **{**REWRITE, "rewrite_generator": f"openai:tiny-plain@{base_url}", **overrides})
    trainer = CADFTTrainer(model, args=args, train_dataset=demos(), processing_class=tok)
    # CADFTConfig has no generator options: build the same generator with quick timeouts
    kwargs = {**FAST_GENERATOR, **(generator_kwargs or {})}
    trainer.rewriter._generator = make_generator(args.rewrite_generator, **kwargs)
    return trainer


def rewriting_state(trainer: CADFTTrainer) -> dict:
    """What a resumed run must reproduce: tracker, accepted rewrites, collator targets."""
    rewriter = trainer.rewriter
    return {
        "tracker": rewriter.tracker.state_dict(),
        "store": rewriter.store.state_dict(),
        "targets": {str(k): v for k, v in sorted(trainer.data_collator.targets.items())},
        "global_step": trainer.state.global_step,
        "normalizer": trainer.normalizer.value if trainer.normalizer is not None else None,
        "world": trainer.accelerator.num_processes,
    }


class _PauseAfter(TrainerCallback):
    """After optimizer step `step`: write `marker`, then wait to be killed."""

    def __init__(self, step: int, marker: str):
        self.step, self.marker = step, marker

    def on_step_end(self, args, state, control, **kwargs):
        if state.global_step == self.step:
            Path(self.marker).write_text(str(state.global_step))
            time.sleep(120)  # bounded: the test kills the process long before
            raise SystemExit("not killed in time")


def main(config_path: str) -> None:
    torch.set_num_threads(1)
    config = json.loads(Path(config_path).read_text())
    overrides = {**RESUMABLE, **config.get("overrides", {})}
    trainer = make_trainer(config["model"], config["output_dir"], config["base_url"], **overrides)
    if config.get("pause_at_step"):
        trainer.add_callback(_PauseAfter(config["pause_at_step"], config["pause_marker"]))
    trainer.train(resume_from_checkpoint=True if config.get("resume") else None)
    if config.get("dump"):
        path = config["dump"].format(rank=trainer.accelerator.process_index)
        Path(path).write_text(json.dumps(rewriting_state(trainer)))
    trainer.accelerator.end_training()  # destroys the process group: gloo can abort at exit otherwise
    exit_if_torchrun(0)  # and even then, rarely: skip the interpreter's teardown (cadft.training.teardown)


if __name__ == "__main__":
    main(sys.argv[1])
