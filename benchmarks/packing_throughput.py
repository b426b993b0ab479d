"""Tokens per second of CADFT with packing against without, and against TRL's DFT with
packing, on GSM8K-length rows; and the padding each layout carries.

    python benchmarks/packing_throughput.py            # tiny Llama and SmolLM2-135M (LoRA)

Rows are real GSM8K training demonstrations (question as the prompt, solution as the
completion), so lengths vary as in practice. Variants, each a real trainer on its own copy of
the model, stepping in turns (`train_step.Baton`: one optimizer step each, the order
reversed every round):

- `trl-dft`, `cadft`: padded batches of B demonstrations (TRL's collator pads to the longest);
- `trl-dft-packed`, `cadft-packed`: `packing=True` (TRL's `bfd`, padding-free), rows of
  `max_length` tokens, R rows per step in one micro-batch, chosen so that a step holds about B
  demonstrations. TRL's padding-free collator lays the micro-batch out as one row of R x
  `max_length` positions;
- `trl-dft-packed-ga`, `cadft-packed-ga`: the same R packed rows per step, one row per
  micro-batch (`per_device_train_batch_size=1`, `gradient_accumulation_steps=R`), so that
  attention spans `max_length` positions, not R x `max_length`. CADFT z-scores over the
  optimizer step's batch, so at R > 1 it pays a no-grad pre-pass over the step's rows.

SmolLM2-135M runs only the padded and the `-ga` layouts: its one-micro-batch packed step (about
2,000 positions in one row) needs several 4.3 GB attention tensors in sdpa's math backward (30
layers x 9 heads x 2,000^2 x 4 bytes each), which this 24 GB machine cannot hold four times.

Throughput is real (non-padding) tokens per second of process CPU time (one torch thread),
median over the timed rounds: TRL's own `num_tokens` count per step (the attention mask's sum
when padded, the positions of a padding-free row), over the step's CPU time. The padding
fraction is counted on the collated batches of one epoch: padded positions over all positions.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

import torch

# run as a script (python benchmarks/...): its own folder is the first import path, train_step beside it
from train_step import DEFAULT_DATA, Baton, _cpu_model, embedded_setup, read_gsm8k, tiny_setup

VARIANTS = ("trl-dft", "trl-dft-packed", "trl-dft-packed-ga", "cadft", "cadft-packed", "cadft-packed-ga")
# one micro-batch of R packed rows: too much attention memory for SmolLM2 on this CPU (see above)
ONE_ROW_VARIANTS = ("trl-dft-packed", "cadft-packed")


def gsm8k_rows(raw: list[dict]) -> list[dict]:
    return [{"prompt": [{"role": "user", "content": r["question"]}],
             "completion": [{"role": "assistant", "content": r["answer"]}]} for r in raw]


def micro_batch(variant: str, batch: int, rows_per_step: int) -> int:
    """Rows per collated micro-batch of a variant."""
    if "-packed" not in variant:
        return batch
    return 1 if variant.endswith("-ga") else rows_per_step


def make_trainer(variant: str, setup, dataset, batch: int, rows_per_step: int, max_length: int, steps: int, out: str):
    import copy

    from peft import LoraConfig
    from transformers import PrinterCallback
    from trl import SFTConfig, SFTTrainer

    from cadft import CADFTConfig, CADFTTrainer

    packed = "-packed" in variant
    common = dict(
        output_dir=f"{out}/{variant}", per_device_train_batch_size=micro_batch(variant, batch, rows_per_step),
        gradient_accumulation_steps=rows_per_step if variant.endswith("-ga") else 1,
        max_steps=steps, max_length=max_length, learning_rate=1e-5, optim=setup.optim, logging_steps=10**6,
        save_strategy="no", report_to="none", disable_tqdm=True, dataloader_num_workers=0, seed=0,
        activation_checkpointing=False, use_cpu=True, bf16=False, packing=packed,
    )
    if variant.startswith("trl-"):
        args, cls = SFTConfig(loss_type="dft", **common), SFTTrainer
    else:
        args, cls = CADFTConfig(loss_type="cadft", **common), CADFTTrainer
    peft_config = LoraConfig(r=16, lora_alpha=32, task_type="CAUSAL_LM") if setup.peft else None
    trainer = cls(copy.deepcopy(setup.model), args=args, train_dataset=dataset, processing_class=setup.tokenizer,
                  peft_config=peft_config)
    trainer.remove_callback(PrinterCallback)
    return trainer


def padding_fraction(trainer, batch_size: int) -> float:
    """Padded positions over all positions, over the collated batches of one epoch."""
    rows = list(trainer.train_dataset)
    padded = total = 0
    for start in range(0, len(rows), batch_size):
        batch = trainer.data_collator(rows[start : start + batch_size])
        if "attention_mask" in batch:
            real = int(batch["attention_mask"].sum())
        else:  # padding-free: one row; the positions past the last demonstration are padding
            real = sum(len(r["input_ids"]) for r in rows[start : start + batch_size])
        padded += batch["input_ids"].numel() - real
        total += batch["input_ids"].numel()
    return padded / total


def run(setup, raw, variants, batch: int, max_length: int, warmup: int, rounds: int) -> dict:
    from datasets import Dataset

    dataset = Dataset.from_list(gsm8k_rows(raw))
    with tempfile.TemporaryDirectory() as out:
        probe = make_trainer("cadft-packed", setup, dataset, batch, 1, max_length, 1, out)
        per_row = len(probe.training_samples()) / len(probe.train_dataset)  # demonstrations per packed row
        rows_per_step = max(1, round(batch / per_row))
        steps = warmup + rounds
        threads = [Baton(v, make_trainer(v, setup, dataset, batch, rows_per_step, max_length, steps, out))
                   for v in variants]
        padding = {t.name: padding_fraction(t.trainer, micro_batch(t.name, batch, rows_per_step)) for t in threads}
        for t in threads:
            t.start()
        rates = {v: [] for v in variants}
        for r in range(steps):
            for t in (threads if r % 2 == 0 else threads[::-1]):
                before = t.trainer._total_train_tokens
                _, cpu = t.step()
                if r >= warmup:
                    rates[t.name].append((t.trainer._total_train_tokens - before) / cpu)
        for t in threads:
            t.turn.release()
            t.join()
            if t.error is not None:
                raise RuntimeError(f"{t.name} failed") from t.error
    median = {v: statistics.median(rates[v]) for v in variants}
    return {"rows_per_step": rows_per_step, "per_row": per_row, "tokens_per_s": median, "padding": padding}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dataset_path", default=str(DEFAULT_DATA))
    parser.add_argument("--rows", type=int, default=256, help="GSM8K demonstrations to train on.")
    parser.add_argument("--batch", type=int, default=8, help="Demonstrations per padded step.")
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=8)
    parser.add_argument("--embedded_rounds", type=int, default=4)
    args = parser.parse_args(argv)
    if not Path(args.dataset_path).is_file():
        parser.error(f"--dataset_path: file not found: {args.dataset_path}")
    torch.set_num_threads(1)
    import datasets
    import transformers

    datasets.disable_progress_bars()
    transformers.logging.set_verbosity_error()
    raw = read_gsm8k(Path(args.dataset_path), args.rows)
    started = time.perf_counter()
    print("| model | padded B / packed rows x max_length | variant | real tokens/s (cpu) | / cadft padded "
          "| padding |")
    print("|---|---|---|---|---|---|")
    smol_variants = tuple(v for v in VARIANTS if v not in ONE_ROW_VARIANTS)
    for make_setup, variants, max_length, rounds in (
            (lambda: tiny_setup(), VARIANTS, 1024, args.rounds),
            (lambda: embedded_setup(True), smol_variants, 512, args.embedded_rounds)):
        setup = make_setup()
        res = run(setup, raw, variants, args.batch, max_length, args.warmup, rounds)
        for v in variants:
            rows = f"{res['rows_per_step']} x {max_length} ({res['per_row']:.1f} demonstrations a row)"
            if v.endswith("-ga"):
                layout = f"{rows}, a row per micro-batch"
            elif "-packed" in v:
                layout = f"{rows}, one micro-batch"
            else:
                layout = f"B = {args.batch}"
            print(f"| {setup.name} | {layout} | {v} | {res['tokens_per_s'][v]:,.0f} "
                  f"| {res['tokens_per_s'][v] / res['tokens_per_s']['cadft']:.2f} | {100 * res['padding'][v]:.1f}% |",
                  flush=True)
        del setup
    import trl

    print(f"\n{date.today().isoformat()} | {_cpu_model()} | torch {torch.__version__}, transformers "
          f"{transformers.__version__}, trl {trl.__version__} | python benchmarks/packing_throughput.py "
          f"({(time.perf_counter() - started) / 60:.1f} min)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
