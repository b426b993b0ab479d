"""Run by tests/test_round_wait.py under `torchrun --nproc_per_node 2` (DDP, gloo): a
rewriting round whose generation on the main process takes SLEEP_S seconds, longer than
the training process group's timeout (`ddp_timeout`). The other process waits for it on
the rewriting group, whose timeout is `rewrite_round_timeout`. Rank 0 writes the round's
provenance rows to OUT_PATH.  argv: OUT_PATH DDP_TIMEOUT_S SLEEP_S ROUND_TIMEOUT_S
"""

from __future__ import annotations

import datetime
import os
import sys
import time

import torch.distributed as dist

from cadft import CADFTTrainer
from cadft.data import mixed_quality_demos
from cadft.model.tiny import tiny_llama, tiny_tokenizer
from cadft.rewriting.generators import Candidate
from cadft.rewriting.store import PROVENANCE_FILE
from cadft.training.teardown import exit_if_torchrun

from helpers import trainer_args


class SlowGenerator:
    """An external generator (main process only) that takes `seconds` to answer each round."""

    name = "slow"

    def __init__(self, seconds: float):
        self.seconds = seconds

    def generate(self, conversations, settings):
        time.sleep(self.seconds)
        return [[Candidate("The answer is 7.")] * settings.num_candidates for _ in conversations]


def main(out_path: str, ddp_timeout: int, sleep_s: float, round_timeout: float) -> None:
    # The training group, with a short timeout (accelerate keeps a group that exists: on gloo
    # here `ddp_timeout` alone does not reach it)
    dist.init_process_group("gloo", timeout=datetime.timedelta(seconds=ddp_timeout))
    tok = tiny_tokenizer()
    args = trainer_args(
        out_path + ".run", per_device_train_batch_size=2, max_steps=2, ddp_backend="gloo", ddp_timeout=ddp_timeout,
        rewrite=True, rewrite_preset="verified", rewrite_selection="flagged", rewrite_verifier="none",
        rewrite_flag_threshold=100.0, rewrite_persistence=1,
        rewrite_budget=2, rewrite_start_step=1, rewrite_interval_steps=1, rewrite_num_candidates=1,
        rewrite_min_gain=-1.0, rewrite_round_timeout=round_timeout,
    )
    trainer = CADFTTrainer(tiny_llama(tok, seed=0), args=args, train_dataset=mixed_quality_demos(8, seed=0),
                           processing_class=tok)
    trainer.rewriter._generator = SlowGenerator(sleep_s)
    trainer.train()
    if trainer.accelerator.is_main_process:
        with open(os.path.join(args.output_dir, PROVENANCE_FILE)) as f, open(out_path, "w") as out:
            out.write(f.read())
    exit_if_torchrun(0)


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]), float(sys.argv[3]), float(sys.argv[4]))
