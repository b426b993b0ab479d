"""Training-step time and memory of ASFT's and EAFT's token losses against TRL's `dft`.

    python benchmarks/token_losses.py                          # tiny (full) and SmolLM2-135M (LoRA, full SGD)
    python benchmarks/token_losses.py --models embedded-lora --seq_len 256 --rounds 8

Variants, each a real trainer on its own copy of the same model and rows:

- `trl-dft`: `trl.SFTTrainer(loss_type="dft")`, the baseline;
- `cadft-dft`: `CADFTTrainer(loss_type="dft")`, the same loss through this library;
- `asft`: `loss_type="asft"` (DFT + 0.1 KL to the reference: one no-grad forward of the
  reference backbone, and both LM heads over the trainable positions in tiles, twice in
  the backward; the reference is the adapter disabled under LoRA, a frozen copy otherwise);
- `eaft`: `loss_type="eaft"`, the entropy of TRL's fused head (nothing extra);
- `eaft-topk`: `eaft_entropy="topk"`, the paper's top-20 entropy (one more no-grad
  projection of the trainable positions, 256 at a time).

The steps are interleaved and timed as in `train_step.py` (its `Baton` threads: one variant
steps at a time, the order reverses every round; medians of wall and process CPU time after
the warm-up rounds). Memory: the exact peak of tensor storage one step allocates above what
was alive before (`train_step.TensorPeak`), and the resident weights and optimizer state,
with ASFT's frozen reference copy where there is one.
"""

from __future__ import annotations

import argparse
import copy
import statistics
import sys
import tempfile
import time

# run as a script (python benchmarks/...): its own folder is the first import path, train_step beside it
from train_step import (
    DEFAULT_DATA,
    Baton,
    checkpointing_field,
    embedded_setup,
    long_rows,
    prepare,
    resident_mib,
    run_info,
    tiny_setup,
)

VARIANTS = ("trl-dft", "cadft-dft", "asft", "eaft", "eaft-topk")
MODELS = ("tiny", "embedded-lora", "embedded-full")


def make_trainer(variant: str, setup, dataset, seq_len: int, batch: int, steps: int, out: str):
    from peft import LoraConfig
    from transformers import PrinterCallback
    from trl import SFTConfig, SFTTrainer

    from cadft import CADFTConfig, CADFTTrainer

    common = dict(
        output_dir=f"{out}/{variant}", per_device_train_batch_size=batch, max_steps=steps, max_length=seq_len,
        learning_rate=1e-5, optim=setup.optim, logging_steps=10**6, save_strategy="no", report_to="none",
        disable_tqdm=True, dataloader_num_workers=0, seed=0, dataset_num_proc=None, use_cpu=True, bf16=False,
        **{checkpointing_field(): False},
    )
    if variant == "trl-dft":
        args, trainer_cls = SFTConfig(loss_type="dft", **common), SFTTrainer
    else:
        loss = {"cadft-dft": dict(loss_type="dft"), "asft": dict(loss_type="asft"), "eaft": dict(loss_type="eaft"),
                "eaft-topk": dict(loss_type="eaft", eaft_entropy="topk")}[variant]
        args, trainer_cls = CADFTConfig(**loss, **common), CADFTTrainer
    peft_config = LoraConfig(r=16, lora_alpha=32, task_type="CAUSAL_LM") if setup.peft else None
    trainer = trainer_cls(copy.deepcopy(setup.model), args=args, train_dataset=dataset,
                          processing_class=setup.tokenizer, peft_config=peft_config)
    trainer.remove_callback(PrinterCallback)
    return trainer


def reference_mib(trainer) -> float:
    """ASFT's frozen reference copy, where the trainer holds one."""
    reference = getattr(trainer, "reference_model", None)
    if reference is None or reference.frozen is None:
        return 0.0
    return sum(p.untyped_storage().nbytes() for p in reference.frozen.parameters()) / 2**20


def run(setup, raw, seq_len: int, batch: int, warmup: int, rounds: int) -> dict:
    """Interleaved steps of every variant: per variant the median step time, the per-round
    time ratios against TRL dft, the step's peak memory and the resident memory."""
    from datasets import Dataset

    dataset = Dataset.from_list(long_rows(setup.tokenizer, raw, seq_len, 4 * batch))
    steps = warmup + rounds + 1
    with tempfile.TemporaryDirectory() as out:
        threads = [Baton(v, make_trainer(v, setup, dataset, seq_len, batch, steps, out)) for v in VARIANTS]
        for t in threads:
            t.start()
        times = {v: [] for v in VARIANTS}
        memory = {}
        for r in range(steps):
            for t in (threads if r % 2 == 0 else threads[::-1]):
                if r < warmup:
                    t.step()
                elif r < warmup + rounds:
                    times[t.name].append(t.step())
                else:
                    memory[t.name] = t.memory_step()
        resident = {t.name: resident_mib(t.trainer) + reference_mib(t.trainer) for t in threads}
        for t in threads:
            t.turn.release()
            t.join()
            if t.error is not None:
                raise RuntimeError(f"{t.name} failed") from t.error
    base = times["trl-dft"]
    return {v: {"wall_s": statistics.median(w for w, _ in times[v]),
                "cpu_s": statistics.median(c for _, c in times[v]),
                "ratio_wall": statistics.median(a[0] / b[0] for a, b in zip(times[v], base)),
                "ratio_cpu": statistics.median(a[1] / b[1] for a, b in zip(times[v], base)),
                "step_mib": memory[v], "ratio_mem": memory[v] / memory["trl-dft"],
                "resident_mib": resident[v]} for v in VARIANTS}


def print_table(name: str, seq_len: int, batch: int, result: dict, header: bool) -> None:
    if header:
        print("| model | T | B | variant | step s (wall / cpu) | / TRL dft (wall / cpu) | step peak MiB | / TRL dft "
              "| weights + optimizer (+ reference) MiB |")
        print("|---|---|---|---|---|---|---|---|---|")
    for v, r in result.items():
        print(f"| {name} | {seq_len} | {batch} | {v} | {r['wall_s']:.3f} / {r['cpu_s']:.3f} "
              f"| {r['ratio_wall']:.3f} / {r['ratio_cpu']:.3f} | {r['step_mib']:.1f} | {r['ratio_mem']:.3f} "
              f"| {r['resident_mib']:.0f} |", flush=True)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--models", nargs="+", choices=MODELS, default=list(MODELS))
    parser.add_argument("--dataset_path", default=str(DEFAULT_DATA), help="GSM8K rows the sequences are built from.")
    parser.add_argument("--seq_len", type=int, default=128)
    parser.add_argument("--batch", type=int, default=2)
    parser.add_argument("--warmup", type=int, default=2, help="Untimed rounds first.")
    parser.add_argument("--rounds", type=int, default=5, help="Timed rounds (the median is reported).")
    parser.add_argument("--tiny_rounds", type=int, default=20, help="Timed rounds of the tiny model.")
    parser.add_argument("--threads", type=int, default=1, help="torch threads.")
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    raw = prepare(parser, args)
    started = time.perf_counter()
    for i, name in enumerate(args.models):
        setup = tiny_setup() if name == "tiny" else embedded_setup(peft=name == "embedded-lora")
        rounds = args.tiny_rounds if name == "tiny" else args.rounds
        result = run(setup, raw, args.seq_len, args.batch, args.warmup, rounds)
        print_table(setup.name, args.seq_len, args.batch, result, header=i == 0)
    run_info(args.threads, argv, started)
    return 0


if __name__ == "__main__":
    sys.exit(main())
