"""Training-step time and peak memory of CADFT against TRL's SFTTrainer, in one process.

    python benchmarks/train_step.py --suite compare   # TRL nll/dft against cadft's variants
    python benchmarks/train_step.py --suite target    # TRL dft against cadft, many rounds, own-code share
    python benchmarks/train_step.py --suite scaling   # TRL dft against cadft over lengths and batches
    python benchmarks/train_step.py --suite paper     # TRL dft against the paper's estimator, accumulation 1 and 4

Every variant is a real trainer (`trl.SFTTrainer` or `cadft.CADFTTrainer`) running its own
`train()` in its own thread on its own copy of the same model. The threads take turns: a
callback at the end of each optimizer step hands control to the next variant and waits for
its own turn, so exactly one variant runs at a time and the steps of the variants are
interleaved (the order reverses every round). A turn is one whole optimizer step as
`Trainer` runs it: the next batch from the dataloader (collation included), forward and
backward, the trainer's per-step callbacks, gradient clipping and the optimizer step.

Time: the first turns (warm-up: calibration, optimizer state, first-call allocations) are
left out; then the median over the timed rounds of each variant's wall time and process
CPU time (with one torch thread the CPU time is the step's own work, the steadier figure
on a machine shared with other jobs), and the median of the per-round ratios.

Memory: the peak of tensor storage one step allocates on top of what was alive before it
(activations saved for backward, gradients, the loss path's temporaries), counted exactly
by a dispatch mode that sees every op's output (`TensorPeak`), in separate untimed rounds
since counting slows the step; plus each variant's resident weights and optimizer state.
The process's resident size cannot separate five trainers in one process, and the heap
allocator's rounding and caching make its deltas noisy at this scale.
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import platform
import statistics
import sys
import tempfile
import threading
import time
import weakref
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import torch
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_leaves

DEFAULT_DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "gsm8k" / "train.jsonl"
VARIANTS = ("trl-nll", "trl-dft", "cadft-dft", "cadft-zscore", "cadft-ema", "cadft-batch", "cadft-tracker")

# ---- memory ----------------------------------------------------------------------------


class TensorPeak(TorchDispatchMode):
    """Peak bytes of tensor storage allocated while the mode is on and alive at the same
    time: every op's output storage is counted once, from its first appearance until the
    storage is freed (a finalizer on its Python object, which torch keeps exactly as long
    as the storage). Tensors that existed before (weights, optimizer state) are not
    counted; views and in-place results share a counted storage. Exact and deterministic,
    unlike the process's resident size, which the heap allocator rounds and keeps."""

    def __init__(self):
        super().__init__()
        self.live: dict[int, int] = {}
        self.current = self.peak = 0

    def _freed(self, key: int) -> None:
        self.current -= self.live.pop(key, 0)

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        for t in tree_leaves(out):
            if isinstance(t, torch.Tensor) and t.device.type == "cpu":
                storage = t.untyped_storage()
                key = storage._cdata
                if key not in self.live:
                    self.live[key] = storage.nbytes()
                    self.current += self.live[key]
                    self.peak = max(self.peak, self.current)
                    weakref.finalize(storage, self._freed, key)
        return out


def resident_mib(trainer) -> float:
    """Weights and optimizer state of one variant (its gradients are freed every step)."""
    tensors = {p.untyped_storage()._cdata: p.untyped_storage().nbytes() for p in trainer.model.parameters()}
    for state in trainer.optimizer.state.values():
        for v in state.values():
            if isinstance(v, torch.Tensor):
                tensors[v.untyped_storage()._cdata] = v.untyped_storage().nbytes()
    return sum(tensors.values()) / 2**20


# ---- data and models ---------------------------------------------------------------------


def read_gsm8k(path: Path, n: int) -> list[dict]:
    rows = []
    with open(path) as f:
        for line in f:
            rows.append(json.loads(line))
            if len(rows) == n:
                break
    return rows


def long_rows(tokenizer, raw: list[dict], seq_len: int, n: int) -> list[dict]:
    """n conversational prompt-completion rows of at least seq_len tokens: a GSM8K question,
    and its solution followed by the next rows' solutions until the row is long enough
    (truncation to max_length = seq_len then gives every row exactly seq_len tokens: no
    padding, so every variant and round does the same work)."""
    rows = []
    for i in range(n):
        # The question cut to a quarter of the length, so that most of each row is trained on
        question = tokenizer.decode(tokenizer(raw[i % len(raw)]["question"])["input_ids"][: seq_len // 4])
        parts, j = [], i
        while True:
            parts.append(raw[j % len(raw)]["answer"])
            completion = "\n\n".join(parts)
            text = tokenizer.apply_chat_template(
                [{"role": "user", "content": question}, {"role": "assistant", "content": completion}], tokenize=False
            )
            if len(tokenizer(text)["input_ids"]) > seq_len + 8:
                break
            j += 1
        rows.append({"prompt": [{"role": "user", "content": question}],
                     "completion": [{"role": "assistant", "content": completion}]})
    return rows


@dataclass
class Setup:
    name: str  # table label
    model: torch.nn.Module
    tokenizer: object
    peft: bool
    optim: str


def tiny_setup(hidden: int = 64, layers: int = 2) -> Setup:
    from cadft.model.tiny import tiny_llama, tiny_tokenizer

    tok = tiny_tokenizer()
    model = tiny_llama(tok, hidden_size=hidden, num_layers=layers, num_heads=4, max_position_embeddings=2048)
    return Setup(f"tiny Llama (char vocab 104, {layers} x {hidden}), full", model, tok, False, "adamw_torch")


def embedded_setup(peft: bool) -> Setup:
    from cadft.model.loading import load_model_and_tokenizer

    model, tok = load_model_and_tokenizer("embedded")
    # Full fine-tuning of five copies with AdamW state would not fit this machine; SGD keeps
    # no state, and the optimizer step is the same code for every variant
    optim = "adamw_torch" if peft else "sgd"
    return Setup(f"SmolLM2-135M, {'LoRA r=16' if peft else 'full (SGD)'}", model, tok, peft, optim)


# ---- trainers ----------------------------------------------------------------------------


class Baton(threading.Thread):
    """One variant's `train()`, stepping only when the controller hands it the turn."""

    def __init__(self, name: str, trainer):
        super().__init__(name=name, daemon=True)
        self.trainer = trainer
        self.turn = threading.Semaphore(0)
        self.done = threading.Semaphore(0)
        self.error: BaseException | None = None
        self.counter = None  # a TensorPeak for a memory turn (any context manager: scoped_step)
        baton = self

        from transformers import TrainerCallback

        class HandOver(TrainerCallback):
            def on_step_end(self, args, state, control, **kwargs):
                if args.device.type == "cuda":
                    torch.cuda.synchronize()  # the step's kernels are done when its turn ends
                if baton.counter is not None:  # the mode is this thread's: leave it here
                    baton.counter.__exit__(None, None, None)
                baton.done.release()
                baton.turn.acquire()
                if baton.counter is not None:
                    baton.counter.__enter__()

        trainer.add_callback(HandOver())

    def run(self):
        self.turn.acquire()
        try:
            self.trainer.train()
        except BaseException as e:  # noqa: BLE001 (reported by the controller, in its thread)
            self.error = e
        self.done.release()

    def step(self) -> tuple[float, float]:
        """Run one optimizer step of this variant; (wall s, process CPU s)."""
        wall, cpu = time.perf_counter(), time.process_time()
        self.turn.release()
        self.done.acquire()
        if self.error is not None:
            raise RuntimeError(f"{self.name} failed") from self.error
        return time.perf_counter() - wall, time.process_time() - cpu

    def scoped_step(self, context) -> None:
        """Run one optimizer step of this variant inside `context` (entered and left in the
        variant's own thread, where the step runs: a torch profiler, say)."""
        self.counter = context
        try:
            self.step()
        finally:
            self.counter = None

    def memory_step(self) -> float:
        """Run one optimizer step of this variant under a TensorPeak (on a GPU: the CUDA
        allocator's own peak statistics); its peak in MiB above the memory in use before."""
        if self.trainer.args.device.type == "cuda":
            torch.cuda.synchronize()
            before = torch.cuda.memory_allocated()
            torch.cuda.reset_peak_memory_stats()
            self.step()
            return (torch.cuda.max_memory_allocated() - before) / 2**20
        self.counter = TensorPeak()
        try:
            self.step()
            return self.counter.peak / 2**20
        finally:
            self.counter = None


def checkpointing_field() -> str:
    """transformers renamed `gradient_checkpointing` to `activation_checkpointing` (5.2x)."""
    from transformers import TrainingArguments

    names = TrainingArguments.__dataclass_fields__
    return "activation_checkpointing" if "activation_checkpointing" in names else "gradient_checkpointing"


def make_trainer(variant: str, setup: Setup, dataset, seq_len: int, batch: int, steps: int, out: str,
                 device_args: dict | None = None, accumulation: int = 1, checkpointing: bool = False):
    """One variant's trainer on a copy of setup.model; `device_args` (TrainingArguments
    fields) default to the CPU in float32."""
    from peft import LoraConfig
    from transformers import PrinterCallback
    from trl import SFTConfig, SFTTrainer

    from cadft import CADFTConfig, CADFTTrainer

    common = dict(
        output_dir=f"{out}/{variant}", per_device_train_batch_size=batch, gradient_accumulation_steps=accumulation,
        max_steps=steps, max_length=seq_len, learning_rate=1e-5, optim=setup.optim, logging_steps=10**6,
        save_strategy="no", report_to="none", disable_tqdm=True, dataloader_num_workers=0, seed=0,
        dataset_num_proc=None, **{checkpointing_field(): checkpointing},
        **(device_args or dict(use_cpu=True, bf16=False)),
    )
    if variant.startswith("trl-"):
        args = SFTConfig(loss_type=variant.removeprefix("trl-"), **common)
        trainer_cls = SFTTrainer
    elif variant == "cadft-dft":  # CADFTTrainer's own DFT: the same forward and metrics, no sample weight
        args = CADFTConfig(loss_type="dft", **common)
        trainer_cls = CADFTTrainer
    else:
        extra = {  # cadft-zscore: the library defaults (the paper's estimator)
            "cadft-ema": dict(cadft_estimator="ema", cadft_calibration_samples=batch),
            "cadft-batch": dict(cadft_estimator="batch", cadft_calibration_samples=batch),
            # the tracker observes every batch; no round starts in the run
            "cadft-tracker": dict(rewrite=True, rewrite_start_step=10**9),
        }.get(variant, {})
        args = CADFTConfig(loss_type="cadft", **extra, **common)
        trainer_cls = CADFTTrainer
    peft_config = LoraConfig(r=16, lora_alpha=32, task_type="CAUSAL_LM") if setup.peft else None
    trainer = trainer_cls(copy.deepcopy(setup.model), args=args, train_dataset=dataset,
                          processing_class=setup.tokenizer, peft_config=peft_config)
    trainer.remove_callback(PrinterCallback)  # no metrics printed at the end of each train()
    return trainer


def run_config(setup: Setup, variants, raw, seq_len: int, batch: int, warmup: int, rounds: int, mem_rounds: int,
               device_args: dict | None = None, accumulation: int = 1, checkpointing: bool = False,
               rows: list[dict] | None = None, profile=None):
    """Interleaved steps of every variant; per variant the median step time (wall, cpu),
    the median step memory (MiB) and the per-round time ratios against the first variant.
    `rows`: prebuilt rows (else built from `raw`). `profile(name, scoped_step)`: called once
    per variant after the memory rounds; `scoped_step(context)` runs one more step inside
    `context` (a torch profiler), in the variant's thread."""
    from datasets import Dataset

    rows = rows if rows is not None else long_rows(setup.tokenizer, raw, seq_len, 4 * batch * accumulation)
    dataset = Dataset.from_list(rows)
    steps = warmup + rounds + mem_rounds + (profile is not None)
    with tempfile.TemporaryDirectory() as out:
        threads = [Baton(v, make_trainer(v, setup, dataset, seq_len, batch, steps, out, device_args, accumulation,
                                         checkpointing)) for v in variants]
        for t in threads:
            t.start()
        times = {v: [] for v in variants}
        memory = {v: [] for v in variants}
        for r in range(steps):
            order = threads if r % 2 == 0 else threads[::-1]
            for t in order:
                if r < warmup:
                    t.step()
                elif r < warmup + rounds:
                    times[t.name].append(t.step())
                elif r < warmup + rounds + mem_rounds:
                    memory[t.name].append(t.memory_step())
                else:
                    profile(t.name, t.scoped_step)
        resident = {t.name: resident_mib(t.trainer) for t in threads}
        for t in threads:
            t.turn.release()  # let train() return after its last step
            t.join()
            if t.error is not None:
                raise RuntimeError(f"{t.name} failed") from t.error
    base = variants[0]
    result = {}
    for v in variants:
        cpu_ratios = [a[1] / b[1] for a, b in zip(times[v], times[base])]
        quartiles = statistics.quantiles(cpu_ratios, n=4) if len(cpu_ratios) > 1 else cpu_ratios * 3
        result[v] = {
            "wall_s": statistics.median(w for w, _ in times[v]),
            "cpu_s": statistics.median(c for _, c in times[v]),
            "ratio_wall": statistics.median(a[0] / b[0] for a, b in zip(times[v], times[base])),
            "ratio_cpu": statistics.median(cpu_ratios),
            "ratio_cpu_q1": quartiles[0],
            "ratio_cpu_q3": quartiles[-1],
            "step_mib": max(memory[v]) if memory[v] else float("nan"),  # exact: the rounds agree
            "resident_mib": resident[v],
        }
    for v in variants:
        r, b = result[v], result[base]
        r["ratio_mem"] = r["step_mib"] / b["step_mib"]
        r["ratio_total_mem"] = (r["step_mib"] + r["resident_mib"]) / (b["step_mib"] + b["resident_mib"])
    return result


# ---- suites ------------------------------------------------------------------------------


def compare_suite(args, raw) -> list[dict]:
    """Every variant against TRL dft, for each model and sequence length."""
    variants = ("trl-dft", "trl-nll", "cadft-zscore", "cadft-ema", "cadft-batch", "cadft-tracker")
    # The tiny model's steps take milliseconds: more rounds for the same precision
    plans = [(tiny_setup, (128, 512), 8, args.tiny_rounds),
             (lambda: embedded_setup(True), tuple(args.lengths), args.batch, args.rounds),
             (lambda: embedded_setup(False), tuple(args.lengths), args.batch, args.rounds)]
    out = []
    for make_setup, lengths, batch, rounds in plans:
        setup = make_setup()
        for seq_len in lengths:
            res = run_config(setup, variants, raw, seq_len, batch, args.warmup, rounds, args.mem_rounds)
            out.append({"setup": setup.name, "seq_len": seq_len, "batch": batch, "result": res})
            print_compare([out[-1]], header=len(out) == 1)
        del setup
    return out


def own_code_share(setup: Setup, raw, seq_len: int, batch: int, warmup: int, steps: int,
                   variant: str = "cadft-ema", accumulation: int = 1) -> dict:
    """CPU time per step spent in cadft's own per-step code (the estimator's loss, step and
    statistics, the per-sample bookkeeping), measured inside one CADFT run against the run's
    whole step time, with the estimator's step pre-pass (the paper's no-grad forwards, where
    accumulation > 1) counted apart:
    an upper bound on what cadft adds to TRL's step, since its loss and metrics replace
    TRL's own. Robust to a loaded machine: both times come from the same steps."""
    from datasets import Dataset

    dataset = Dataset.from_list(long_rows(setup.tokenizer, raw, seq_len, 4 * batch * accumulation))
    with tempfile.TemporaryDirectory() as out:
        trainer = make_trainer(variant, setup, dataset, seq_len, batch, warmup, out, accumulation=accumulation)
        trainer.train()
        own = {"cpu": 0.0, "pre_pass": 0.0}

        def timed(fn, key="cpu"):
            def wrapper(*a, **k):
                start = time.thread_time()
                try:
                    return fn(*a, **k)
                finally:
                    own[key] += time.thread_time() - start
            return wrapper

        estimator = trainer.estimator  # on the instances: other trainers are untouched
        for name in ("loss", "before_optimizer_step", "logged_loss", "end_step"):  # observe runs inside _record
            setattr(estimator, name, timed(getattr(estimator, name)))
        estimator.begin_step = timed(estimator.begin_step, "pre_pass")
        trainer._record = timed(trainer._record)
        trainer.args.max_steps = steps  # a second train() starts again from step 0
        start = time.thread_time()
        trainer.train()
        total = time.thread_time() - start
    return {"own_ms": 1000 * own["cpu"] / steps, "step_ms": 1000 * total / steps, "share": own["cpu"] / total,
            "pre_pass_ms": 1000 * own["pre_pass"] / steps, "pre_pass_share": own["pre_pass"] / total}


def target_suite(args, raw) -> list[dict]:
    """TRL dft against cadft (ema) only, with many rounds, and cadft's own code per step:
    the two numbers the targets are about (time <= 1.03, memory <= 1.02)."""
    plans = [(tiny_setup, 128, 8, args.tiny_rounds * 2, 100),
             (lambda: embedded_setup(True), 128, 2, args.target_rounds, 4),
             (lambda: embedded_setup(False), 128, 2, args.target_rounds, 4)]
    out = []
    for make_setup, seq_len, batch, rounds, own_steps in plans:
        setup = make_setup()
        res = run_config(setup, ("trl-dft", "cadft-ema"), raw, seq_len, batch, args.warmup, rounds, args.mem_rounds)
        own = own_code_share(setup, raw, seq_len, batch, args.warmup, own_steps)
        out.append({"setup": setup.name, "seq_len": seq_len, "batch": batch, "rounds": rounds, "result": res,
                    "own": own})
        print_target([out[-1]], header=len(out) == 1)
        del setup
    return out


def paper_suite(args, raw) -> list[dict]:
    """TRL dft against the paper's estimator (the library default) and CADFTTrainer's own
    DFT, at gradient accumulation 1 and 4: the targets (accumulation 1: time <= 1.03,
    memory <= 1.02; accumulation 4: time <= 1.40, the pre-pass being one extra no-grad
    forward per micro-batch), and what the pre-pass costs."""
    variants = ("trl-dft", "cadft-dft", "cadft-zscore")
    plans = {"tiny": (tiny_setup, 128, 8, args.tiny_rounds, 60),
             "embedded": (lambda: embedded_setup(True), 128, 2, args.target_rounds, 4)}
    plans = [plans[name] for name in args.paper_models]
    out = []
    for make_setup, seq_len, batch, rounds, own_steps in plans:
        setup = make_setup()
        for accumulation in args.accumulations:
            res = run_config(setup, variants, raw, seq_len, batch, args.warmup, rounds, args.mem_rounds,
                             accumulation=accumulation)
            own = own_code_share(setup, raw, seq_len, batch, args.warmup, own_steps, "cadft-zscore", accumulation)
            out.append({"setup": setup.name, "seq_len": seq_len, "batch": batch, "accumulation": accumulation,
                        "rounds": rounds, "result": res, "own": own})
            print_paper([out[-1]], header=len(out) == 1)
        del setup
    return out


def print_paper(entries, header: bool) -> None:
    if header:
        print("| model | T | B x acc | rounds | zscore / TRL dft time, median cpu [q1, q3] (wall) | target | met "
              "| zscore / cadft dft time | step peak / TRL dft | total memory / TRL dft | met (<= 1.02) "
              "| pre-pass per step (cpu) | cadft's other own code per step (cpu) |")
        print("|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    for e in entries:
        z, d, o = e["result"]["cadft-zscore"], e["result"]["cadft-dft"], e["own"]
        target = 1.03 if e["accumulation"] == 1 else 1.40
        mem = max(z["ratio_mem"], z["ratio_total_mem"])
        mem_met = ("yes" if mem <= 1.02 else "no") if e["accumulation"] == 1 else "-"
        print(f"| {e['setup']} | {e['seq_len']} | {e['batch']} x {e['accumulation']} | {e['rounds']} "
              f"| **{z['ratio_cpu']:.3f}** [{z['ratio_cpu_q1']:.3f}, {z['ratio_cpu_q3']:.3f}] ({z['ratio_wall']:.3f}) "
              f"| <= {target:.2f} | {'yes' if z['ratio_cpu'] <= target else 'no'} "
              f"| {z['ratio_cpu'] / d['ratio_cpu']:.3f} | {z['ratio_mem']:.3f} | {z['ratio_total_mem']:.3f} | {mem_met} "
              f"| {o['pre_pass_ms']:.1f} ms ({100 * o['pre_pass_share']:.1f}%) "
              f"| {o['own_ms']:.2f} ms of {o['step_ms']:.0f} ms ({100 * o['share']:.2f}%) |", flush=True)


def print_target(entries, header: bool) -> None:
    if header:
        print("| model | T | B | rounds | cadft / TRL dft time, median cpu [q1, q3] (wall) | met (<= 1.03) "
              "| step peak ratio | total memory ratio | met (<= 1.02) | cadft's own code per step (cpu) |")
        print("|---|---|---|---|---|---|---|---|---|---|")
    for e in entries:
        c, o = e["result"]["cadft-ema"], e["own"]
        time_met = "yes" if c["ratio_cpu"] <= 1.03 else "no"
        mem_met = "yes" if max(c["ratio_mem"], c["ratio_total_mem"]) <= 1.02 else "no"
        print(f"| {e['setup']} | {e['seq_len']} | {e['batch']} | {e['rounds']} | **{c['ratio_cpu']:.3f}** "
              f"[{c['ratio_cpu_q1']:.3f}, {c['ratio_cpu_q3']:.3f}] ({c['ratio_wall']:.3f}) | {time_met} "
              f"| {c['ratio_mem']:.3f} | {c['ratio_total_mem']:.3f} | {mem_met} "
              f"| {o['own_ms']:.2f} ms of {o['step_ms']:.0f} ms ({100 * o['share']:.2f}%) |", flush=True)


def scaling_suite(args, raw) -> list[dict]:
    """TRL dft against cadft over lengths and batch sizes, on a small model whose steps take
    milliseconds to a second: how cadft's fixed per-step cost shrinks as the step grows."""
    variants = ("trl-dft", "cadft-ema")
    setup = tiny_setup(hidden=128, layers=4)
    out = []
    for batch in args.scaling_batches:
        for seq_len in args.scaling_lengths:
            res = run_config(setup, variants, raw, seq_len, batch, args.warmup, args.scaling_rounds, args.mem_rounds)
            out.append({"setup": setup.name, "seq_len": seq_len, "batch": batch, "result": res})
            print_scaling([out[-1]], header=len(out) == 1)
    return out


def print_compare(entries, header: bool) -> None:
    if header:
        print("| model | T | B | variant | step s (wall / cpu) | / TRL dft (wall / cpu) | step peak MiB | / TRL dft "
              "| + weights, optimizer MiB | total / TRL dft |")
        print("|---|---|---|---|---|---|---|---|---|---|")
    for e in entries:
        for v, r in e["result"].items():
            print(f"| {e['setup']} | {e['seq_len']} | {e['batch']} | {v} | {r['wall_s']:.3f} / {r['cpu_s']:.3f} "
                  f"| {r['ratio_wall']:.3f} / {r['ratio_cpu']:.3f} | {r['step_mib']:.1f} | {r['ratio_mem']:.3f} "
                  f"| {r['resident_mib']:.0f} | {r['ratio_total_mem']:.3f} |", flush=True)


def print_scaling(entries, header: bool) -> None:
    if header:
        print("| B | T | tokens/step | TRL dft step s (cpu) | cadft step s (cpu) | cadft / dft time (wall / cpu) "
              "| TRL dft step MiB | cadft step MiB | cadft / dft memory |")
        print("|---|---|---|---|---|---|---|---|---|")
    for e in entries:
        d, c = e["result"]["trl-dft"], e["result"]["cadft-ema"]
        print(f"| {e['batch']} | {e['seq_len']} | {e['batch'] * e['seq_len']} | {d['cpu_s']:.3f} | {c['cpu_s']:.3f} "
              f"| {c['ratio_wall']:.3f} / {c['ratio_cpu']:.3f} | {d['step_mib']:.1f} | {c['step_mib']:.1f} "
              f"| {c['ratio_mem']:.3f} |", flush=True)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--suite", choices=("compare", "target", "scaling", "paper"), default="compare")
    parser.add_argument("--accumulations", type=int, nargs="+", default=[1, 4], help="paper: accumulation steps.")
    parser.add_argument("--paper_models", nargs="+", choices=("tiny", "embedded"), default=["tiny", "embedded"],
                        help="paper: the models to run.")
    parser.add_argument("--dataset_path", default=str(DEFAULT_DATA), help="GSM8K rows the sequences are built from.")
    parser.add_argument("--lengths", type=int, nargs="+", default=[64, 128], help="compare: embedded-model lengths.")
    parser.add_argument("--batch", type=int, default=2, help="compare: embedded-model batch size.")
    parser.add_argument("--scaling_lengths", type=int, nargs="+", default=[64, 128, 256, 512, 1024])
    parser.add_argument("--scaling_batches", type=int, nargs="+", default=[1, 4, 16])
    parser.add_argument("--scaling_rounds", type=int, default=15, help="scaling: timed rounds.")
    parser.add_argument("--warmup", type=int, default=2, help="Untimed rounds first.")
    parser.add_argument("--rounds", type=int, default=5, help="Timed rounds (the median is reported).")
    parser.add_argument("--tiny_rounds", type=int, default=30, help="compare: timed rounds of the tiny model.")
    parser.add_argument("--target_rounds", type=int, default=15, help="target: timed rounds of the embedded model.")
    parser.add_argument("--mem_rounds", type=int, default=1, help="Memory rounds (exact: one is enough).")
    parser.add_argument("--threads", type=int, default=1, help="torch threads.")
    parser.add_argument("--json", default=None, help="Also write the results to this JSON file.")
    return parser


def prepare(parser: argparse.ArgumentParser, args) -> list[dict]:
    """A benchmark's start: check --dataset_path, set torch's threads, quiet the libraries'
    progress bars; the first 256 GSM8K rows."""
    if not Path(args.dataset_path).is_file():
        parser.error(f"--dataset_path: file not found: {args.dataset_path}")
    torch.set_num_threads(args.threads)
    import datasets
    import transformers

    datasets.disable_progress_bars()
    transformers.logging.set_verbosity_error()
    return read_gsm8k(Path(args.dataset_path), 256)


def run_info(threads: int, argv: list[str] | None, started: float) -> dict:
    """Date, machine, versions, command and minutes of a benchmark run; printed as its last lines."""
    import peft
    import transformers
    import trl

    import cadft

    info = {
        "date": date.today().isoformat(),
        "machine": f"{_cpu_model()}, nproc={len(os.sched_getaffinity(0))}, {threads} torch thread(s)",
        "versions": f"torch {torch.__version__}, transformers {transformers.__version__}, trl {trl.__version__}, "
                    f"peft {peft.__version__}, cadft {cadft.__version__}",
        "command": "python " + " ".join([sys.argv[0], *(argv if argv is not None else sys.argv[1:])]),
        "minutes": round((time.perf_counter() - started) / 60, 1),
    }
    print(f"\n{info['date']} | {info['machine']} | {info['versions']}\n{info['command']} ({info['minutes']} min)")
    return info


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    raw = prepare(parser, args)
    started = time.perf_counter()
    suites = {"compare": compare_suite, "target": target_suite, "scaling": scaling_suite, "paper": paper_suite}
    entries = suites[args.suite](args, raw)
    info = run_info(args.threads, argv, started)
    if args.json:
        Path(args.json).write_text(json.dumps({"info": info, "entries": entries}, indent=2) + "\n")
    return 0


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


if __name__ == "__main__":
    sys.exit(main())
