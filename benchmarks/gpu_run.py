"""The GPU check of benchmarks/gpu.sh: CADFT against TRL's DFT on a from-scratch ~100M model
in bf16, one rewriting round, and the score-throughput benchmark. No download, no internet.

    python benchmarks/gpu_run.py            # on one GPU (H100/H200 class: a few minutes)
    python benchmarks/gpu_run.py --smoke    # the same steps on the CPU with tiny sizes (a dry run)

1. Training: a Llama-shaped model built from a config (random weights: nothing to
   download; 12 layers x 768, the SmolLM2 tokenizer when the embedded model is installed,
   else cadft's character tokenizer), trained by `trl.SFTTrainer(loss_type="dft")` and by
   `CADFTTrainer` (loss_type="cadft") in one process, their steps interleaved (the harness
   of benchmarks/train_step.py), bf16 autocast with float32 master weights. Prints the
   median step time of each, the ratio, tokens/s and the peak CUDA memory of a step.
2. One rewriting round inside a CADFT run (`rewrite=True`, the policy generating with
   transformers' `generate`, the math verifier), with its logged `rewrite/*` metrics.
3. `benchmarks/score_throughput.py --device cuda`: `score_rows` against the naive
   one-row loop (the 3x target), on the embedded model when installed, else this model.
4. The sharded recipes, one process each: `accelerate launch` with recipes/accelerate/
   fsdp.yaml and zero3.yaml (ZeRO-3 when deepspeed is installed), a few CADFT steps of
   this model on the data, so that FSDP2 and DeepSpeed, which cannot run on a CPU here
   (docs/scale.md), are exercised through the same commands users launch.

Data: the GSM8K rows beside the checkout (../shared/data) when present, else cadft's
embedded arithmetic demonstrations (generated, no file needed).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

HERE = Path(__file__).resolve().parent
# run as a script (python benchmarks/...): its own folder is the first import path, train_step beside it
from train_step import DEFAULT_DATA, Setup, long_rows, read_gsm8k, run_config

FULL = dict(hidden=768, layers=12, heads=12, seq_len=512, batch=16, warmup=10, rounds=150, rewrite_samples=8,
            rewrite_tokens=128, score_rows=256, score_batch=32, score_repeats=3)
SMOKE = dict(hidden=32, layers=2, heads=4, seq_len=64, batch=2, warmup=1, rounds=2, rewrite_samples=2,
             rewrite_tokens=8, score_rows=4, score_batch=2, score_repeats=1)


def tokenizer_and_name(smoke: bool):
    """The SmolLM2 tokenizer (49,152 tokens) if the embedded model is installed, else the
    character tokenizer. The smoke run always takes the character one (no conversion)."""
    from cadft.tiny import tiny_tokenizer

    if not smoke:
        try:
            from transformers import AutoTokenizer

            from cadft.models import embedded_model_path

            path = embedded_model_path()
            return AutoTokenizer.from_pretrained(path), path
        except (FileNotFoundError, ImportError, OSError) as e:
            print(f"(embedded model unavailable: {e}; using the character tokenizer)")
    return tiny_tokenizer(), None


def scratch_model(tokenizer, hidden: int, layers: int, heads: int, max_len: int):
    from transformers import LlamaConfig, LlamaForCausalLM

    config = LlamaConfig(
        vocab_size=len(tokenizer), hidden_size=hidden, intermediate_size=int(8 / 3 * hidden) // 64 * 64 or 2 * hidden,
        num_hidden_layers=layers, num_attention_heads=heads, num_key_value_heads=heads,
        max_position_embeddings=max_len, tie_word_embeddings=True,
        pad_token_id=tokenizer.pad_token_id, eos_token_id=tokenizer.eos_token_id, bos_token_id=None,
    )
    torch.manual_seed(0)
    model = LlamaForCausalLM(config)
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    model.generation_config.eos_token_id = tokenizer.eos_token_id
    return model


def raw_problems(n: int) -> list[dict]:
    """question/answer rows: GSM8K's when the file is there, else generated demonstrations."""
    if DEFAULT_DATA.is_file():
        return read_gsm8k(DEFAULT_DATA, n)
    from cadft.data import mixed_quality_demos

    demos = mixed_quality_demos(n, seed=0, frac_foreign=0.0, frac_wrong=0.0)
    return [{"question": d["prompt"][0]["content"], "answer": d["completion"][0]["content"]} for d in demos]


def device_args(cuda: bool) -> dict:
    if cuda:
        return dict(use_cpu=False, bf16=True, tf32=True)
    return dict(use_cpu=True, bf16=False)


def train_comparison(setup: Setup, raw, cfg: dict, cuda: bool) -> dict:
    t0 = time.perf_counter()
    res = run_config(setup, ("trl-dft", "cadft-zscore"), raw, cfg["seq_len"], cfg["batch"], cfg["warmup"],
                     cfg["rounds"], 1, device_args(cuda))
    tokens = cfg["seq_len"] * cfg["batch"]
    dft, cad = res["trl-dft"], res["cadft-zscore"]  # the library default: the paper's estimator
    return {
        "tokens_per_step": tokens,
        "steps_per_variant": cfg["warmup"] + cfg["rounds"] + 1,
        "trl_dft_step_s": dft["wall_s"], "cadft_step_s": cad["wall_s"],
        "ratio_time": cad["ratio_wall"],
        "trl_dft_tokens_per_s": tokens / dft["wall_s"], "cadft_tokens_per_s": tokens / cad["wall_s"],
        "trl_dft_step_peak_mib": dft["step_mib"], "cadft_step_peak_mib": cad["step_mib"],
        "ratio_memory": cad["ratio_mem"],
        "seconds": time.perf_counter() - t0,
    }


def rewriting_round(setup: Setup, raw, cfg: dict, cuda: bool) -> dict:
    """A CADFT run of 2 steps whose rewriting round starts after step 1: every sample is
    flagged (threshold far above any weight), `rewrite_samples` of them are rewritten."""
    from datasets import Dataset
    from transformers import PrinterCallback

    from cadft import CADFTConfig, CADFTTrainer

    rows = long_rows(setup.tokenizer, raw, cfg["seq_len"], 4 * cfg["batch"])
    with tempfile.TemporaryDirectory() as out:
        args = CADFTConfig(
            output_dir=out, max_steps=2, per_device_train_batch_size=cfg["batch"], max_length=cfg["seq_len"],
            learning_rate=1e-4, logging_steps=1, save_strategy="no", report_to="none", disable_tqdm=True,
            rewrite=True, rewrite_preset="verified",
            rewrite_selection="flagged", rewrite_start_step=1, rewrite_interval_steps=10**6,
            rewrite_persistence=1, rewrite_flag_threshold=100.0, rewrite_budget=cfg["rewrite_samples"],
            rewrite_num_candidates=2, rewrite_max_new_tokens=cfg["rewrite_tokens"], rewrite_verifier="math",
            **device_args(cuda),
        )
        trainer = CADFTTrainer(setup.model, args=args, train_dataset=Dataset.from_list(rows),
                               processing_class=setup.tokenizer)
        trainer.remove_callback(PrinterCallback)  # the round's metrics are printed below
        t0 = time.perf_counter()
        trainer.train()
        seconds = time.perf_counter() - t0
    metrics = {k: v for entry in trainer.state.log_history for k, v in entry.items() if k.startswith("rewrite/")}
    if not metrics:
        raise RuntimeError("no rewriting round ran (no rewrite/* metrics were logged)")
    return {"seconds": seconds, "metrics": metrics}


def score_throughput(setup: Setup, embedded: str | None, cfg: dict, cuda: bool, smoke: bool) -> str:
    with tempfile.TemporaryDirectory() as tmp:
        model_path = embedded
        if model_path is None:
            model_path = os.path.join(tmp, "model")
            setup.model.save_pretrained(model_path)
            setup.tokenizer.save_pretrained(model_path)
        data = str(DEFAULT_DATA)
        if not DEFAULT_DATA.is_file():
            data = os.path.join(tmp, "demos.jsonl")
            from cadft.data import mixed_quality_demos

            mixed_quality_demos(max(cfg["score_rows"], 8), seed=0).to_json(data)
        cmd = [sys.executable, str(HERE / "score_throughput.py"), "--model_name_or_path", model_path,
               "--dataset_path", data, "--rows", str(cfg["score_rows"]), "--batch_size", str(cfg["score_batch"]),
               "--repeats", str(cfg["score_repeats"]), "--device", "cuda" if cuda else "cpu",
               "--threads", str(torch.get_num_threads()), "--max_length", str(max(cfg["seq_len"], 256))]
        proc = subprocess.run(cmd, capture_output=True, text=True)
        if proc.returncode != 0:
            raise RuntimeError(f"score_throughput.py failed:\n{proc.stderr[-3000:]}")
        return proc.stdout


def recipe_runs(setup: Setup, raw, cfg: dict, cuda: bool) -> list[tuple[str, str]]:
    """(recipe, outcome) for each sharded recipe launched with one process; on the CPU (smoke)
    the one-GPU recipe runs instead, with --cpu, which proves the launch path itself."""
    import importlib.util

    from datasets import Dataset

    root = HERE.parent
    setups = [("fsdp", [])]
    if not cuda:
        setups = [("1gpu", ["--cpu", "--mixed_precision", "no"])]
    elif importlib.util.find_spec("deepspeed") is not None:
        setups.append(("zero3", []))
    else:
        print("    (deepspeed not installed: ZeRO-3 skipped)")
    outcomes = []
    with tempfile.TemporaryDirectory() as tmp:
        model_path = os.path.join(tmp, "model")
        setup.model.save_pretrained(model_path)
        setup.tokenizer.save_pretrained(model_path)
        data = os.path.join(tmp, "rows.jsonl")
        Dataset.from_list(long_rows(setup.tokenizer, raw, cfg["seq_len"], 8 * cfg["batch"])).to_json(data)
        for name, launch_flags in setups:
            cmd = [sys.executable, "-m", "accelerate.commands.launch", "--config_file",
                   f"recipes/accelerate/{name}.yaml", "--num_processes", "1", *launch_flags,
                   "-m", "cadft.cli.main", "train", "--config", f"recipes/math-1.5b-{name}.yaml",
                   "--model_name_or_path", model_path, "--dataset_name", "", "--dataset_path", data,
                   "--max_steps", "3", "--per_device_train_batch_size", str(cfg["batch"]),
                   "--gradient_accumulation_steps", "1", "--max_length", str(cfg["seq_len"]),
                   "--output_dir", os.path.join(tmp, name),
                   "--save_strategy", "no", "--disable_tqdm", "true", "--dtype", "float32"]
            if not cuda:
                cmd += ["--use_cpu", "true", "--activation_checkpointing", "false"]
            t0 = time.perf_counter()
            proc = subprocess.run(cmd, cwd=root, capture_output=True, text=True)
            ok = proc.returncode == 0 and os.path.isfile(os.path.join(tmp, name, "cadft_run.json"))
            tail = "" if ok else " | " + " ".join(proc.stderr.strip().splitlines()[-3:])[-600:]
            outcomes.append((name, f"{'ok' if ok else 'FAILED'} ({time.perf_counter() - t0:.0f} s){tail}"))
    return outcomes


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--smoke", action="store_true", default=os.environ.get("CADFT_GPU_SMOKE", "") not in ("", "0"),
                        help="Tiny sizes on the CPU (also: CADFT_GPU_SMOKE=1).")
    parser.add_argument("--rounds", type=int, default=None, help="Timed training steps per variant.")
    parser.add_argument("--json", default=None, help="Also write the results to this JSON file.")
    args = parser.parse_args(argv)
    cfg = dict(SMOKE if args.smoke else FULL)
    if args.rounds:
        cfg["rounds"] = args.rounds
    cuda = torch.cuda.is_available() and not args.smoke
    if not cuda and not args.smoke:
        parser.error("no CUDA device: run on a GPU, or dry-run on the CPU with --smoke (CADFT_GPU_SMOKE=1)")
    import datasets
    import transformers

    datasets.disable_progress_bars()
    transformers.logging.set_verbosity_error()
    started = time.perf_counter()
    device = torch.cuda.get_device_name() if cuda else "CPU (smoke run)"
    tokenizer, embedded = tokenizer_and_name(args.smoke)
    model = scratch_model(tokenizer, cfg["hidden"], cfg["layers"], cfg["heads"], max(cfg["seq_len"], 256) + 512)
    params = sum(p.numel() for p in model.parameters())
    setup = Setup(f"from scratch, {params / 1e6:.0f}M", model, tokenizer, False,
                  "adamw_torch_fused" if cuda else "adamw_torch")
    raw = raw_problems(256)
    print(f"device: {device}; model: {cfg['layers']} x {cfg['hidden']}, vocab {len(tokenizer)}, "
          f"{params / 1e6:.1f}M parameters; data: {'GSM8K' if DEFAULT_DATA.is_file() else 'embedded demos'}",
          flush=True)

    train = train_comparison(setup, raw, cfg, cuda)
    print(f"\n[1] training, {train['steps_per_variant']} steps each, {train['tokens_per_step']} tokens/step "
          f"({train['seconds']:.0f} s)")
    print("| trainer | step s | tokens/s | step peak MiB |\n|---|---|---|---|")
    print(f"| TRL SFTTrainer dft | {train['trl_dft_step_s']:.4f} | {train['trl_dft_tokens_per_s']:,.0f} "
          f"| {train['trl_dft_step_peak_mib']:.0f} |")
    print(f"| CADFTTrainer cadft | {train['cadft_step_s']:.4f} | {train['cadft_tokens_per_s']:,.0f} "
          f"| {train['cadft_step_peak_mib']:.0f} |")
    print(f"cadft / TRL dft: step time {train['ratio_time']:.3f} (target <= 1.03), "
          f"peak memory {train['ratio_memory']:.3f} (target <= 1.02)", flush=True)

    round_ = rewriting_round(setup, raw, cfg, cuda)
    print(f"\n[2] one rewriting round (policy generation, math verifier), run of 2 steps: {round_['seconds']:.1f} s")
    print("    " + ", ".join(f"{k}={v:.4g}" for k, v in sorted(round_["metrics"].items())), flush=True)

    scored = score_throughput(setup, embedded, cfg, cuda, args.smoke)
    print("\n[3] score throughput (benchmarks/score_throughput.py)")
    print("\n".join("    " + line for line in scored.strip().splitlines() if line.startswith(("|", "round"))))

    print("\n[4] recipes through accelerate launch, one process, 3 steps")
    recipes = recipe_runs(setup, raw, cfg, cuda)
    for name, outcome in recipes:
        print(f"    {name}: {outcome}")

    total = time.perf_counter() - started
    print(f"\ntotal {total / 60:.1f} min; torch {torch.__version__}, transformers {transformers.__version__}")
    if args.json:
        Path(args.json).write_text(json.dumps({"device": device, "train": train, "rewrite": round_,
                                               "score": scored, "recipes": recipes, "minutes": total / 60},
                                              indent=2, default=str))
    return 1 if any(outcome.startswith("FAILED") for _, outcome in recipes) else 0


if __name__ == "__main__":
    sys.exit(main())
