"""Where the memory of a `cadft train` run goes, phase by phase, against TRL's SFTTrainer.

    python benchmarks/train_memory.py                 # cadft train, then the same run with TRL
    python benchmarks/train_memory.py --fresh_cache   # include the one-time GGUF conversion

Each run is its own process (resident memory is per process): `cadft train` on the embedded
model with LoRA and its defaults (batch 8, max_length 512, one epoch, the start/end summary)
on the first 16 GSM8K training rows; then the same training with `trl.SFTTrainer`
(`loss_type="dft"`, same model, LoRA, data and arguments, no summary). A thread samples
the resident set size (`VmRSS`) every 10 ms, and wrappers around the run's own functions
mark its phases, so each phase reports the peak resident memory reached while it ran.
Alongside: the sizes that explain the peaks: the weights, the LoRA parameters and their
AdamW state, and one training step's tensor peak (activations, gradients, the fused LM
head's tiles) counted exactly by `TensorPeak` (benchmarks/train_step.py).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
DEFAULT_DATA = HERE.parents[1] / "shared" / "data" / "gsm8k" / "train.jsonl"


def rss_mib() -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


class Phases:
    """Resident memory through a run: for each wrapped phase, the RSS when it was first
    entered, its peak while it ran (a sampler thread reads VmRSS every 10 ms), and the RSS
    when it last returned. Memory freed inside a phase can stay resident afterwards (the
    heap allocator keeps it for reuse), so the entry RSS of a phase is the floor it starts on."""

    def __init__(self):
        self.stack: list[str] = []
        self.rows: dict[str, dict] = {}
        self.running = True
        self.thread = threading.Thread(target=self._sample, daemon=True)

    def _sample(self):
        while self.running:
            value = rss_mib()
            for label in self.stack:  # an outer phase includes its inner ones
                self.rows[label]["peak"] = max(self.rows[label]["peak"], value)
            time.sleep(0.01)

    def wrap(self, owner, name: str, label: str) -> None:
        fn = getattr(owner, name)
        phases = self

        def wrapped(*args, **kwargs):
            now = rss_mib()
            row = phases.rows.setdefault(label, {"entry": now, "peak": now, "exit": now})
            phases.stack.append(label)
            try:
                return fn(*args, **kwargs)
            finally:
                phases.stack.remove(label)
                row["exit"] = rss_mib()
                row["peak"] = max(row["peak"], row["exit"])

        setattr(owner, name, wrapped)

    def table(self) -> list[tuple]:
        return [(label, r["entry"], r["peak"], r["exit"]) for label, r in self.rows.items()]


def count_first_call(owner, name: str, key: str, extra: dict) -> None:
    """Run the first call of owner.name under a TensorPeak; extra[key] = its peak in MiB: the
    tensors that call allocates and holds at once, counted exactly (benchmarks/train_step.py)."""
    from train_step import TensorPeak  # a script's folder is its first import path

    original = getattr(owner, name)

    def counted(*args, **kwargs):
        if key in extra:
            return original(*args, **kwargs)
        counter = TensorPeak()
        with counter:
            out = original(*args, **kwargs)
        extra[key] = counter.peak / 2**20
        return out

    setattr(owner, name, counted)


def count_first_step(cls, extra: dict) -> None:
    """Run the first `training_step` (forward + backward of one batch) of `cls` under a
    TensorPeak: what the activations, gradients and loss path need at once on top of the
    weights, counted exactly (benchmarks/train_step.py)."""
    original = cls.training_step

    def training_step(self, *args, **kwargs):
        if "step_tensor_peak_mib" not in extra:
            extra.update(sizes(self))
        return original(self, *args, **kwargs)

    cls.training_step = training_step
    count_first_call(cls, "training_step", "step_tensor_peak_mib", extra)


def sizes(trainer) -> dict:
    params = list(trainer.model.parameters())
    trainable = [p for p in params if p.requires_grad]
    mib = lambda ps: sum(p.numel() * p.element_size() for p in ps) / 2**20
    return {
        "weights_mib": mib(params),
        "trainable_mib": mib(trainable),
        "adamw_state_mib": 2 * sum(p.numel() * 4 for p in trainable) / 2**20,
        "train_rows": len(trainer.train_dataset),
        "max_row_tokens": max(len(r) for r in trainer.train_dataset["input_ids"]),
    }


def child_cadft(args) -> dict:
    phases = Phases()
    phases.thread.start()
    import cadft.cli.train as cli
    import cadft.training.trainer as trainer_mod
    from cadft.model import loading as models

    phases.wrap(models, "embedded_model_path", "model conversion (GGUF, once) / lookup")
    phases.wrap(cli, "_load_data", "data: read and check rows")
    phases.wrap(trainer_mod.CADFTTrainer, "__init__", "trainer init (model load, LoRA, tokenize)")
    phases.wrap(cli, "_score", "summary scoring (start / end)")
    extra = {}
    count_first_step(trainer_mod.CADFTTrainer, extra)
    count_first_call(cli, "_score", "score_tensor_peak_mib", extra)
    phases.wrap(trainer_mod.CADFTTrainer, "training_step", "training: forward + backward")
    phases.wrap(trainer_mod.CADFTTrainer, "_save_checkpoint", "checkpoint save")
    phases.wrap(trainer_mod.CADFTTrainer, "train", "training (all steps)")
    phases.wrap(cli, "run", "cadft train (whole run, after imports)")
    argv = ["--dataset_path", args.dataset_path, "--max_train_samples", str(args.rows), "--output_dir", args.out,
            "--disable_tqdm", "true", "--activation_checkpointing", str(args.activation_checkpointing).lower()]
    cli.main(argv)
    phases.running = False
    return {"phases": phases.table(), "ru_maxrss_mib": _ru_maxrss_mib(), **extra}


def child_trl(args) -> dict:
    """The same training with trl.SFTTrainer (DFT), the embedded model and cadft train's defaults."""
    phases = Phases()
    phases.thread.start()
    from trl import ModelConfig, SFTConfig, SFTTrainer, get_peft_config

    from cadft.cli.train import CLI_DEFAULTS
    from cadft.data import load_demonstrations
    from cadft.model.loading import resolve_model_path

    extra = {}
    phases.wrap(SFTTrainer, "__init__", "trainer init (model load, LoRA, tokenize)")
    count_first_step(SFTTrainer, extra)
    phases.wrap(SFTTrainer, "training_step", "training: forward + backward")
    dataset = load_demonstrations(args.dataset_path, limit=args.rows)
    keys = ("learning_rate", "per_device_train_batch_size", "num_train_epochs", "max_length", "logging_steps",
            "save_steps", "save_total_limit", "report_to")
    config = SFTConfig(output_dir=args.out, loss_type="dft", bf16=False, disable_tqdm=True,
                       activation_checkpointing=args.activation_checkpointing, **{k: CLI_DEFAULTS[k] for k in keys})
    # cadft train's LoRA exactly (TRL's ModelConfig defaults: dropout 0.05, q_proj and v_proj)
    lora = get_peft_config(
        ModelConfig(use_peft=True, lora_r=CLI_DEFAULTS["lora_r"], lora_alpha=CLI_DEFAULTS["lora_alpha"])
    )
    trainer = SFTTrainer(resolve_model_path("embedded"), args=config, train_dataset=dataset, peft_config=lora)
    phases.wrap(SFTTrainer, "train", "training (all steps)")
    trainer.train()
    trainer.save_model(args.out)
    phases.running = False
    return {"phases": phases.table(), "ru_maxrss_mib": _ru_maxrss_mib(), **extra}


def _ru_maxrss_mib() -> float:
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def run_child(kind: str, args, cache: str | None) -> dict:
    """One run in its own process; its JSON result (the last line of its output)."""
    with tempfile.TemporaryDirectory() as out:
        env = {**os.environ, "OMP_NUM_THREADS": str(args.threads), "TOKENIZERS_PARALLELISM": "false"}
        if cache:
            env["CADFT_CACHE"] = cache
        cmd = [sys.executable, __file__, "--child", kind, "--out", out, "--dataset_path", args.dataset_path,
               "--rows", str(args.rows), "--threads", str(args.threads)]
        cmd += ["--activation_checkpointing"] if args.activation_checkpointing else []
        proc = subprocess.run(cmd, env=env, capture_output=True, text=True)
        if proc.returncode != 0:
            raise SystemExit(f"{kind} run failed:\n{proc.stderr[-4000:]}")
        return json.loads(proc.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--dataset_path", default=str(DEFAULT_DATA))
    parser.add_argument("--rows", type=int, default=16)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--fresh_cache", action="store_true", help="Convert the GGUF in the cadft run (a new cache).")
    parser.add_argument("--activation_checkpointing", action="store_true",
                        help="Both runs recompute activations in backward (cadft train's default is off).")
    parser.add_argument("--child", choices=("cadft", "trl"), help=argparse.SUPPRESS)
    parser.add_argument("--out", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        import torch

        torch.set_num_threads(args.threads)
        result = child_cadft(args) if args.child == "cadft" else child_trl(args)
        print(json.dumps(result))
        return 0
    if not Path(args.dataset_path).is_file():
        parser.error(f"--dataset_path: file not found: {args.dataset_path}")
    with tempfile.TemporaryDirectory() as cache:
        cadft = run_child("cadft", args, cache if args.fresh_cache else None)
    trl = run_child("trl", args, None)
    for name, result in (("cadft train", cadft), ("TRL SFTTrainer (dft)", trl)):
        print(f"\n{name}: peak RSS {result['ru_maxrss_mib']:.0f} MiB")
        print("| phase (in order) | RSS at entry MiB | peak MiB | at exit MiB |\n|---|---|---|---|")
        for phase, entry, peak, exit_ in result["phases"]:
            print(f"| {phase} | {entry:.0f} | {peak:.0f} | {exit_:.0f} |")
        if "score_tensor_peak_mib" in result:
            print(f"summary scoring: tensor peak {result['score_tensor_peak_mib']:.0f} MiB")
        print(f"weights {result['weights_mib']:.0f} MiB, trainable {result['trainable_mib']:.1f} MiB, AdamW state "
              f"{result['adamw_state_mib']:.1f} MiB, one step's tensor peak {result['step_tensor_peak_mib']:.0f} MiB "
              f"({result['train_rows']} rows, longest {result['max_row_tokens']} tokens)")
    print("\npython " + " ".join([sys.argv[0], *(argv if argv is not None else sys.argv[1:])]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
