"""A CADFT step against TRL's `dft` step under DeepSpeed ZeRO-3, 2 CPU processes (gloo).

    DS_ACCELERATOR=cpu accelerate launch --config_file recipes/accelerate/zero3.yaml \
        --num_processes 2 --mixed_precision no benchmarks/zero3_step.py --rounds 6

Launched as the zero3 recipe is (its accelerate config; on a CPU `use_cpu`, 2 processes and
no bf16), on a tiny Llama and GSM8K rows cut to one length (`train_step.long_rows`: no
padding, every step does the same work), gradient accumulation 4. One launch trains, in turn, TRL's `SFTTrainer`
(`loss_type="dft"`) and `CADFTTrainer` (the library defaults: the paper's estimator, whose
no-grad pre-pass scores the step's 4 micro-batches before the first backward). Each turn is
a fresh trainer on a fresh DeepSpeed engine, the same model weights, `--warmup` steps left
out, then `--steps` timed; the order of the two reverses every round. A step's time runs
from one optimizer step's end to the next (data, pre-pass, forwards and backwards, the
optimizer), wall clock and process CPU time. The ratio is taken per round (median of each
turn's steps), and its median over the rounds is reported.

Where CADFT's extra time goes: the pre-pass is timed on its own (`begin_step`, on rank 0).
Under ZeRO-3 each of its forwards gathers every partitioned parameter from both processes,
as the training forwards do, so it costs what a no-grad forward costs there.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

import torch

# run as a script (python or accelerate launch): its own folder is the first import path, train_step beside it
from train_step import DEFAULT_DATA, _cpu_model, long_rows, read_gsm8k
from transformers import TrainerCallback

VARIANTS = ("trl-dft", "cadft")


class StepClock(TrainerCallback):
    """Wall and CPU seconds of each optimizer step, from the previous step's end (or the
    start of training) to this one's, as a TrainerCallback."""

    def __init__(self):
        self.wall, self.cpu = [], []

    def on_train_begin(self, args, state, control, **kwargs):
        self._last = (time.perf_counter(), time.process_time())

    def on_step_end(self, args, state, control, **kwargs):
        now = (time.perf_counter(), time.process_time())
        self.wall.append(now[0] - self._last[0])
        self.cpu.append(now[1] - self._last[1])
        self._last = now


def reset_accelerate_state() -> None:
    """A fresh accelerate state for the next trainer (an Accelerator takes DeepSpeed's plugin
    only when it is the first); the process group stays."""
    from accelerate.state import AcceleratorState, GradientState

    AcceleratorState._reset_state(reset_partial_state=True)
    GradientState._reset_state()


def turn(variant: str, model_state: dict, make_model, tokenizer, dataset, args) -> tuple[StepClock, list[float]]:
    """One trainer of `variant` for warmup + steps optimizer steps: its step clock and, for
    CADFT, the pre-pass seconds of each step."""
    from trl import SFTConfig, SFTTrainer

    from cadft import CADFTConfig, CADFTTrainer

    reset_accelerate_state()
    model = make_model()
    model.load_state_dict(model_state)
    common = dict(
        per_device_train_batch_size=args.batch, gradient_accumulation_steps=args.accumulation,
        max_steps=args.warmup + args.steps, learning_rate=1e-4, optim="sgd", max_length=args.seq_len,
        logging_steps=10_000, save_strategy="no", report_to="none", use_cpu=True, bf16=False,
        disable_tqdm=True, dataloader_num_workers=0, seed=0,
    )
    clock, prepass = StepClock(), []
    with tempfile.TemporaryDirectory() as out:
        if variant == "trl-dft":
            trainer = SFTTrainer(model, args=SFTConfig(out, loss_type="dft", **common), train_dataset=dataset,
                                 processing_class=tokenizer)
        else:
            trainer = CADFTTrainer(model, args=CADFTConfig(out, **common), train_dataset=dataset,
                                   processing_class=tokenizer)
            begin_step = trainer.estimator.begin_step

            def timed(*a, **k):
                start = time.perf_counter()
                begin_step(*a, **k)
                prepass.append(time.perf_counter() - start)

            trainer.estimator.begin_step = timed
        if not trainer.is_deepspeed_enabled or trainer.accelerator.num_processes != 2:
            raise SystemExit("launch with accelerate's zero3 config on 2 processes (see the module's docstring)")
        trainer.add_callback(clock)
        trainer.train()
    return clock, prepass


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--rounds", type=int, default=6)
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--batch", type=int, default=2, help="per-device micro-batch")
    parser.add_argument("--accumulation", type=int, default=4)
    parser.add_argument("--seq_len", type=int, default=256)
    parser.add_argument("--hidden", type=int, default=128)
    parser.add_argument("--layers", type=int, default=4)
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args()
    if not args.data.is_file():
        raise SystemExit(f"{args.data}: GSM8K train rows not found (--data)")
    torch.set_num_threads(1)
    from datasets import Dataset

    from cadft.model.tiny import tiny_llama, tiny_tokenizer

    tokenizer = tiny_tokenizer()
    make_model = lambda: tiny_llama(tokenizer, hidden_size=args.hidden, num_layers=args.layers,  # noqa: E731
                                    num_heads=4, max_position_embeddings=2048)
    model_state = make_model().state_dict()
    per_step = 2 * args.batch * args.accumulation
    n = per_step * (args.warmup + args.steps)
    dataset = Dataset.from_list(long_rows(tokenizer, read_gsm8k(args.data, 4 * n), args.seq_len, n))
    rank0 = int(os.environ.get("RANK", "0")) == 0

    medians = {v: {"wall": [], "cpu": []} for v in VARIANTS}
    prepass = []
    for r in range(args.rounds):
        for variant in VARIANTS if r % 2 == 0 else VARIANTS[::-1]:
            clock, pre = turn(variant, model_state, make_model, tokenizer, dataset, args)
            medians[variant]["wall"].append(statistics.median(clock.wall[args.warmup:]))
            medians[variant]["cpu"].append(statistics.median(clock.cpu[args.warmup:]))
            prepass += pre[args.warmup:]
        if rank0:
            print(f"round {r + 1}: " + ", ".join(f"{v} {medians[v]['wall'][-1] * 1e3:.0f} ms" for v in VARIANTS),
                  flush=True)
    if not rank0:
        return 0

    ratio = {kind: statistics.median(c / t for c, t in zip(medians["cadft"][kind], medians["trl-dft"][kind]))
             for kind in ("wall", "cpu")}
    step = {v: {k: statistics.median(medians[v][k]) for k in ("wall", "cpu")} for v in VARIANTS}
    tokens = per_step * args.seq_len
    pre = statistics.median(prepass)
    machine = f"{os.cpu_count()}-core {_cpu_model()}"
    import deepspeed
    import transformers
    import trl

    print(f"\n{date.today()}, {machine}; torch {torch.__version__}, deepspeed {deepspeed.__version__}, "
          f"transformers {transformers.__version__}, trl {trl.__version__}; 2 processes x 1 thread, gloo")
    print(f"tiny Llama ({args.layers} x {args.hidden}, char vocab {len(tokenizer)}), ZeRO-3, micro-batch {args.batch} "
          f"x accumulation {args.accumulation} x 2 processes, {args.seq_len} tokens a row; {args.rounds} rounds of "
          f"{args.steps} timed steps\n")
    print("| variant | step (ms, wall / cpu) | tokens/s (wall) | / TRL dft (wall / cpu) "
          "| pre-pass (ms, share of step) |")
    print("|---|---|---|---|---|")
    for v in VARIANTS:
        ratios = f"**{ratio['wall']:.2f} / {ratio['cpu']:.2f}**" if v == "cadft" else "1.00 / 1.00"
        share = f"{pre * 1e3:.0f} ({pre / step[v]['wall']:.0%})" if v == "cadft" else "-"
        print(f"| {v} | {step[v]['wall'] * 1e3:.0f} / {step[v]['cpu'] * 1e3:.0f} | {tokens / step[v]['wall']:,.0f} | "
              f"{ratios} | {share} |")
    extra = step["cadft"]["wall"] - step["trl-dft"]["wall"]
    print(f"\nCADFT's extra time per step: {extra * 1e3:.0f} ms, of which the pre-pass {pre * 1e3:.0f} ms "
          f"({pre / extra:.0%})" if extra > 0 else "\nCADFT's step is no slower than TRL dft's here")
    if args.json:
        args.json.write_text(json.dumps({"date": str(date.today()), "machine": machine, "args": vars(args) | {
            "data": str(args.data), "json": str(args.json)}, "step": step, "ratio": ratio, "prepass_s": pre,
            "per_round": medians}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
