"""The GPU check of benchmarks/gpu.sh: CADFT against TRL's DFT on a model of Qwen2.5-1.5B's
shape in bf16, `cadft score` against the naive loop, one rewriting round of 64 prompts, and
the sharded recipes. No download, no internet: the model is built from a config.

    python benchmarks/gpu_run.py --json gpu.json   # on one GPU (H100/H200 class: about 6 minutes)
    python benchmarks/gpu_run.py --smoke           # the same steps on the CPU with tiny sizes (a dry run)

1. Training, in one process: `trl.SFTTrainer(loss_type="dft")` and `CADFTTrainer` (the
   library default: the paper's estimator) on their own copies of the same model, their
   optimizer steps interleaved (the harness of benchmarks/train_step.py), at gradient
   accumulation 1 and 4, with and without gradient checkpointing. Model: Qwen2.5-1.5B's
   shape (28 layers x 1536, 12 query and 2 key-value heads, MLP 8960, vocabulary 151,936,
   tied embeddings) with random weights, in bf16 (weights, gradients and AdamW state;
   `bf16=True`), sequences of 2048 tokens, micro-batch 4. Per variant: the median step time
   over the timed rounds, the median of the per-round ratios, tokens/s, and the peak CUDA
   memory of a step above what was allocated before it. Then one more step of each variant
   at accumulation 4 under the torch profiler: where the time goes, by kernel.
2. `benchmarks/score_throughput.py --device cuda`: `score_rows` against the naive one-row
   loop on the same model (saved and loaded, bf16).
3. One rewriting round inside a CADFT run of the same model: 64 prompts, the policy
   sampling with transformers' `generate` (one batch of 64), the math verifier; the
   generation time and the round's logged `rewrite/*` metrics.
4. The sharded recipes through `accelerate launch`, one process each (FSDP2; ZeRO-3 where
   deepspeed is installed), a few CADFT steps of a small model.

Tokenizer: CADFT_GPU_TOKENIZER (a saved tokenizer folder; gpu.sh points it at .gpu/tokenizer
when present), else the embedded SmolLM2's, else cadft's character tokenizer; the model's
vocabulary stays Qwen's either way. Data: the GSM8K rows beside the checkout (../shared/data)
when present, else cadft's generated arithmetic demonstrations.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
import traceback
from datetime import date
from pathlib import Path

import torch

HERE = Path(__file__).resolve().parent
# run as a script (python benchmarks/...): its own folder is the first import path, train_step beside it
from train_step import DEFAULT_DATA, Setup, long_rows, read_gsm8k, run_config

QWEN_1_5B = dict(hidden_size=1536, intermediate_size=8960, num_hidden_layers=28, num_attention_heads=12,
                 num_key_value_heads=2, vocab_size=151_936, rope_theta=1_000_000.0)
FULL = dict(model=QWEN_1_5B, seq_len=2048, batch=4, warmup=3, rounds=20, rewrite_prompts=64,
            rewrite_max_length=1024, rewrite_tokens=256, score_rows=128, score_batch=16, score_repeats=3,
            recipe_model=(512, 4, 8))
SMOKE = dict(model=dict(QWEN_1_5B, hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4),
             seq_len=64, batch=2, warmup=1, rounds=2, rewrite_prompts=4, rewrite_max_length=512, rewrite_tokens=8,
             score_rows=4, score_batch=2, score_repeats=1, recipe_model=(32, 2, 4))
PARTS = ("train", "score", "rewrite", "recipes")
TARGETS = {1: 1.03, 4: 1.35}  # CADFT / TRL dft step time; peak memory <= 1.02 at either


def load_tokenizer(smoke: bool):
    """(tokenizer, where it came from)."""
    from cadft.model.tiny import tiny_tokenizer

    if not smoke:
        from transformers import AutoTokenizer

        saved = os.environ.get("CADFT_GPU_TOKENIZER")
        try:
            if saved:
                return AutoTokenizer.from_pretrained(saved), f"SmolLM2 tokenizer ({saved})"
            from cadft.model.loading import embedded_model_path

            return AutoTokenizer.from_pretrained(embedded_model_path()), "SmolLM2 tokenizer (embedded model)"
        except (FileNotFoundError, ImportError, OSError, ValueError) as e:
            print(f"(no SmolLM2 tokenizer: {e}; using the character tokenizer)")
    return tiny_tokenizer(), "cadft's character tokenizer"


def qwen_shaped(tokenizer, shape: dict, device: str, dtype: torch.dtype):
    from transformers import Qwen2Config, Qwen2ForCausalLM

    config = Qwen2Config(**shape, max_position_embeddings=32_768, tie_word_embeddings=True,
                         pad_token_id=tokenizer.pad_token_id, eos_token_id=tokenizer.eos_token_id,
                         bos_token_id=None)
    torch.manual_seed(0)
    with torch.device(device):  # initialised where it runs: seconds, not minutes, for 1.5B
        model = Qwen2ForCausalLM(config)
    model.to(dtype)
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


# ---- 1. training --------------------------------------------------------------------------


def kernel_table(prof, top: int = 12) -> str:
    """The profile's kernels by total device time (CPU time on the CPU)."""
    events = prof.key_averages()
    key = "self_device_time_total" if torch.cuda.is_available() else "self_cpu_time_total"
    rows = sorted((e for e in events if getattr(e, key, 0) > 0), key=lambda e: -getattr(e, key))[:top]
    total = sum(getattr(e, key) for e in events) or 1
    lines = ["| op / kernel | calls | ms | share |", "|---|---|---|---|"]
    for e in rows:
        name = e.key if len(e.key) <= 70 else e.key[:67] + "..."
        lines.append(f"| `{name}` | {e.count} | {getattr(e, key) / 1000:.1f} | {100 * getattr(e, key) / total:.1f}% |")
    return "\n".join(lines)


class Guarded:
    """A context manager whose failure to enter or leave is kept, not raised: the profile
    explains a missed target, and its failure must not lose the step's timings."""

    def __init__(self, context):
        self.context, self.error, self.entered = context, None, False

    def __enter__(self):
        try:
            self.context.__enter__()
            self.entered = True
        except Exception as e:  # noqa: BLE001
            self.error = f"(the profiler failed to start: {type(e).__name__}: {e})"
        return self

    def __exit__(self, *exc):
        if self.entered:
            try:
                self.context.__exit__(*exc)
            except Exception as e:  # noqa: BLE001
                self.error = f"(the profiler failed to stop: {type(e).__name__}: {e})"
        return False


def train_comparison(setup: Setup, raw, cfg: dict, cuda: bool, profiles: dict, results: list) -> list[dict]:
    """Accumulation 1 and 4, with and without checkpointing; the profiled step at 4, off.
    Each setting's row is appended to `results` as it ends (kept if a later one fails)."""
    from torch.profiler import ProfilerActivity, profile

    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if cuda else [])
    rows = long_rows(setup.tokenizer, raw, cfg["seq_len"], 4 * cfg["batch"] * 4)
    for checkpointing in cfg["checkpointing"]:
        for accumulation in cfg["accumulations"]:
            def profiled(name, scoped_step):
                guard = Guarded(profile(activities=activities))
                scoped_step(guard)
                profiles[name] = guard.error or kernel_table(guard.context)

            wants_profile = accumulation == 4 and not checkpointing
            t0 = time.perf_counter()
            res = run_config(setup, ("trl-dft", "cadft-zscore"), raw, cfg["seq_len"], cfg["batch"], cfg["warmup"],
                             cfg["rounds"], 1, device_args(cuda), accumulation, checkpointing, rows=rows,
                             profile=profiled if wants_profile else None)
            dft, cad = res["trl-dft"], res["cadft-zscore"]
            tokens = cfg["seq_len"] * cfg["batch"] * accumulation
            results.append({
                "accumulation": accumulation, "checkpointing": checkpointing, "tokens_per_step": tokens,
                "timed_steps": cfg["rounds"], "trl_dft_step_s": dft["wall_s"], "cadft_step_s": cad["wall_s"],
                "ratio_time": cad["ratio_wall"], "trl_dft_tokens_per_s": tokens / dft["wall_s"],
                "cadft_tokens_per_s": tokens / cad["wall_s"], "trl_dft_step_peak_mib": dft["step_mib"],
                "cadft_step_peak_mib": cad["step_mib"], "ratio_memory": cad["ratio_mem"],
                "trl_dft_resident_mib": dft["resident_mib"], "cadft_resident_mib": cad["resident_mib"],
                "ratio_total_memory": cad["ratio_total_mem"], "seconds": time.perf_counter() - t0,
            })
            print(train_row(results[-1]), flush=True)
    return results


TRAIN_HEADER = ("| acc | checkpointing | TRL dft step s | CADFT step s | time ratio (median) | target | TRL dft tok/s "
                "| CADFT tok/s | TRL dft step peak MiB | CADFT step peak MiB | peak ratio "
                "| + weights, AdamW: total ratio |\n"
                "|---|---|---|---|---|---|---|---|---|---|---|---|")


def train_row(r: dict) -> str:
    target = TARGETS[r["accumulation"]]
    met = "met" if r["ratio_time"] <= target else "**missed**"
    mem_met = "met" if r["ratio_memory"] <= 1.02 else "**missed**"
    return (f"| {r['accumulation']} | {'on' if r['checkpointing'] else 'off'} | {r['trl_dft_step_s']:.3f} "
            f"| {r['cadft_step_s']:.3f} | **{r['ratio_time']:.3f}** | <= {target:.2f} ({met}) "
            f"| {r['trl_dft_tokens_per_s']:,.0f} | {r['cadft_tokens_per_s']:,.0f} | {r['trl_dft_step_peak_mib']:,.0f} "
            f"| {r['cadft_step_peak_mib']:,.0f} | **{r['ratio_memory']:.3f}** ({mem_met}) "
            f"| {r['ratio_total_memory']:.3f} |")


# ---- 2. score throughput ------------------------------------------------------------------


def score_throughput(model_path: str, cfg: dict, cuda: bool, workdir: str) -> dict:
    data = str(DEFAULT_DATA)
    if not DEFAULT_DATA.is_file():
        data = os.path.join(workdir, "demos.jsonl")
        from cadft.data import mixed_quality_demos

        mixed_quality_demos(max(cfg["score_rows"], 8), seed=0).to_json(data)
    out = os.path.join(workdir, "score.json")
    cmd = [sys.executable, str(HERE / "score_throughput.py"), "--model_name_or_path", model_path,
           "--dataset_path", data, "--rows", str(cfg["score_rows"]), "--batch_size", str(cfg["score_batch"]),
           "--repeats", str(cfg["score_repeats"]), "--device", "cuda" if cuda else "cpu",
           "--threads", str(torch.get_num_threads()), "--max_length", "1024", "--json", out]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    print("\n".join("    " + line for line in proc.stdout.strip().splitlines() if line.startswith(("|", "round"))))
    if proc.returncode != 0:
        raise RuntimeError(f"score_throughput.py failed:\n{proc.stderr[-3000:]}")
    return json.loads(Path(out).read_text())


# ---- 3. rewriting round -------------------------------------------------------------------


def rewriting_round(setup: Setup, raw, cfg: dict, cuda: bool) -> dict:
    """A CADFT run of 2 steps of `rewrite_prompts` rows each whose rewriting round starts
    after step 1: every sample was seen and is flagged (threshold far above any weight), all
    of them are rewritten, the policy generating them in one batch. The generation is timed where the round calls it."""
    from datasets import Dataset
    from transformers import PrinterCallback

    import cadft.model.generation
    from cadft import CADFTConfig, CADFTTrainer

    n = cfg["rewrite_prompts"]
    rows = [{"prompt": [{"role": "user", "content": r["question"]}],
             "completion": [{"role": "assistant", "content": r["answer"]}]} for r in raw[:n]]
    spent = {"generate_s": 0.0, "calls": 0}
    generate = cadft.model.generation.generate

    def timed_generate(*args, **kwargs):  # the round imports it at the call: this one runs
        if cuda:
            torch.cuda.synchronize()
        start = time.perf_counter()
        try:
            return generate(*args, **kwargs)
        finally:
            if cuda:
                torch.cuda.synchronize()
            spent["generate_s"] += time.perf_counter() - start
            spent["calls"] += 1

    with tempfile.TemporaryDirectory() as out:
        args = CADFTConfig(
            output_dir=out, max_steps=2, per_device_train_batch_size=n, max_length=cfg["rewrite_max_length"],
            learning_rate=1e-5, logging_steps=1, save_strategy="no", report_to="none", disable_tqdm=True,
            rewrite=True, rewrite_preset="verified", rewrite_selection="flagged", rewrite_start_step=1,
            rewrite_interval_steps=10**6, rewrite_persistence=1, rewrite_flag_threshold=100.0, rewrite_budget=n,
            rewrite_num_candidates=1, rewrite_max_new_tokens=cfg["rewrite_tokens"], rewrite_verifier="math",
            rewrite_generator_kwargs={"batch_size": n}, **device_args(cuda),
        )
        trainer = CADFTTrainer(setup.model, args=args, train_dataset=Dataset.from_list(rows),
                               processing_class=setup.tokenizer)
        trainer.remove_callback(PrinterCallback)
        cadft.model.generation.generate = timed_generate
        try:
            t0 = time.perf_counter()
            trainer.train()
            seconds = time.perf_counter() - t0
        finally:
            cadft.model.generation.generate = generate
    metrics = {k: v for entry in trainer.state.log_history for k, v in entry.items() if k.startswith("rewrite/")}
    if not metrics or not spent["calls"]:
        raise RuntimeError("no rewriting round ran (no rewrite/* metrics were logged, or nothing was generated)")
    return {"run_seconds": seconds, "prompts": n, "max_new_tokens": cfg["rewrite_tokens"], **spent,
            "metrics": metrics}


# ---- 4. recipes ---------------------------------------------------------------------------


def recipe_runs(model_path: str, data: str, cfg: dict, cuda: bool, workdir: str) -> list[tuple[str, str]]:
    """(recipe, outcome) for each sharded recipe launched with one process; on the CPU (smoke)
    the one-GPU recipe runs instead, with --cpu, which proves the launch path itself."""
    import importlib.util

    root = HERE.parent
    setups = [("fsdp", [])]
    if not cuda:
        setups = [("1gpu", ["--cpu", "--mixed_precision", "no"])]
    elif importlib.util.find_spec("deepspeed") is not None:
        setups.append(("zero3", []))
    else:
        print("    (deepspeed not installed: ZeRO-3 skipped)")
    outcomes = []
    for name, launch_flags in setups:
        cmd = [sys.executable, "-m", "accelerate.commands.launch", "--config_file",
               f"recipes/accelerate/{name}.yaml", "--num_processes", "1", *launch_flags,
               "-m", "cadft.cli.main", "train", "--config", f"recipes/math-1.5b-{name}.yaml",
               "--model_name_or_path", model_path, "--dataset_name", "", "--dataset_path", data,
               "--max_steps", "3", "--per_device_train_batch_size", "4", "--gradient_accumulation_steps", "1",
               "--max_length", "512", "--output_dir", os.path.join(workdir, name), "--save_strategy", "no",
               "--disable_tqdm", "true", "--dtype", "float32"]
        if not cuda:
            cmd += ["--use_cpu", "true"]
        t0 = time.perf_counter()
        try:
            proc = subprocess.run(cmd, cwd=root, capture_output=True, text=True, timeout=240)
            ok = proc.returncode == 0 and os.path.isfile(os.path.join(workdir, name, "cadft_run.json"))
            tail = "" if ok else " | " + " ".join(proc.stderr.strip().splitlines()[-3:])[-600:]
        except subprocess.TimeoutExpired:
            ok, tail = False, " | timed out after 240 s"
        outcomes.append((name, f"{'ok' if ok else 'FAILED'} ({time.perf_counter() - t0:.0f} s){tail}"))
    return outcomes


# ---- the run ------------------------------------------------------------------------------


def section(results: dict, name: str, fn, json_path: str | None, deadline: float | None = None):
    """Run one part; a failure is recorded and printed, and the next part still runs. Past
    `deadline` (time.perf_counter()) the part is skipped, and says so."""
    if deadline is not None and time.perf_counter() > deadline:
        results[name] = {"error": "skipped: the time budget (--budget_minutes) was spent"}
        print(f"    [{name}] SKIPPED: the time budget was spent", flush=True)
        return results[name]
    try:
        results[name] = fn()
    except Exception as e:  # noqa: BLE001 (reported in the output and the JSON)
        traceback.print_exc()
        results[name] = {"error": f"{type(e).__name__}: {e}"}
        print(f"    [{name}] FAILED: {type(e).__name__}: {e}", flush=True)
    if json_path:
        Path(json_path).write_text(json.dumps(results, indent=2, default=str) + "\n")
    return results[name]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--smoke", action="store_true", default=os.environ.get("CADFT_GPU_SMOKE", "") not in ("", "0"),
                        help="Tiny sizes on the CPU (also: CADFT_GPU_SMOKE=1).")
    parser.add_argument("--rounds", type=int, default=None, help="Timed training steps per variant and setting.")
    parser.add_argument("--seq_len", type=int, default=None, help="Training sequence length (2048).")
    parser.add_argument("--json", default=None, help="Write the results to this JSON file (after each part).")
    parser.add_argument("--profile", default=None, help="Write the profiled steps' kernel tables to this file.")
    parser.add_argument("--parts", nargs="+", choices=PARTS, default=list(PARTS), help="The parts to run.")
    parser.add_argument("--accumulations", type=int, nargs="+", default=[1, 4], help="train: accumulation steps.")
    parser.add_argument("--checkpointing", choices=("off", "on"), nargs="+", default=["off", "on"],
                        help="train: gradient checkpointing off, on or both.")
    parser.add_argument("--budget_minutes", type=float, default=None,
                        help="Skip the parts after training (score, rewrite, recipes) that would start past this.")
    args = parser.parse_args(argv)
    cfg = dict(SMOKE if args.smoke else FULL)
    cfg["rounds"] = args.rounds or cfg["rounds"]
    cfg["accumulations"], cfg["checkpointing"] = args.accumulations, [c == "on" for c in args.checkpointing]
    cfg["seq_len"] = args.seq_len or cfg["seq_len"]
    cuda = torch.cuda.is_available() and not args.smoke
    if not cuda and not args.smoke:
        parser.error("no CUDA device: run on a GPU, or dry-run on the CPU with --smoke (CADFT_GPU_SMOKE=1)")
    import datasets
    import transformers
    import trl

    datasets.disable_progress_bars()
    transformers.logging.set_verbosity_error()
    started = time.perf_counter()
    deadline = started + 60 * args.budget_minutes if args.budget_minutes else None
    device = torch.cuda.get_device_name() if cuda else "CPU (smoke run)"
    tokenizer, tokenizer_name = load_tokenizer(args.smoke)
    dtype = torch.bfloat16 if cuda else torch.float32
    model = qwen_shaped(tokenizer, cfg["model"], "cuda" if cuda else "cpu", dtype)
    params = sum(p.numel() for p in model.parameters())
    setup = Setup(f"Qwen2.5-1.5B shape, {params / 1e9:.2f}B", model, tokenizer, False,
                  "adamw_torch_fused" if cuda else "adamw_torch")
    raw = raw_problems(256)
    info = {
        "date": date.today().isoformat(), "device": device, "torch": torch.__version__,
        "cuda": torch.version.cuda, "transformers": transformers.__version__, "trl": trl.__version__,
        "model": f"Qwen2ForCausalLM, {cfg['model']['num_hidden_layers']} x {cfg['model']['hidden_size']}, "
                 f"vocab {cfg['model']['vocab_size']}, {params / 1e6:.0f}M parameters, {str(dtype).split('.')[-1]}",
        "attention": model.config._attn_implementation, "tokenizer": tokenizer_name,
        "data": "GSM8K" if DEFAULT_DATA.is_file() else "generated arithmetic demonstrations",
        "seq_len": cfg["seq_len"], "micro_batch": cfg["batch"], "timed_rounds": cfg["rounds"],
    }
    results: dict = {"info": info}
    print("; ".join(f"{k}: {v}" for k, v in info.items()), flush=True)
    profiles: dict = {}

    if "train" in args.parts:
        print(f"\n[1] training: TRL dft against CADFT, {cfg['rounds']} timed steps each, interleaved\n"
              f"{TRAIN_HEADER}", flush=True)
        rows: list = []
        section(results, "train", lambda: train_comparison(setup, raw, cfg, cuda, profiles, rows), args.json)
        if rows and "error" in results["train"]:
            results["train"]["completed"] = rows
    if profiles:
        text = "\n\n".join(f"### {name}, one step at accumulation 4\n{table}" for name, table in profiles.items())
        print("\n[1b] the profiled steps (torch profiler), by kernel\n" + text, flush=True)
        if args.profile:
            Path(args.profile).write_text(text + "\n")

    workdir = tempfile.mkdtemp(prefix="cadft-gpu-")
    if "score" in args.parts:
        model_path = os.path.join(workdir, "model")
        setup.model.save_pretrained(model_path)
        tokenizer.save_pretrained(model_path)
        print("\n[2] cadft score (score_rows) against the naive one-row loop, same model", flush=True)
        section(results, "score", lambda: score_throughput(model_path, cfg, cuda, workdir), args.json, deadline)

    round_ = {"error": "not run"}
    if "rewrite" in args.parts:
        print(f"\n[3] one rewriting round, {cfg['rewrite_prompts']} prompts (policy generation, math verifier)",
              flush=True)
        round_ = section(results, "rewrite", lambda: rewriting_round(setup, raw, cfg, cuda), args.json, deadline)
    if "error" not in round_:
        print(f"    generation: {round_['generate_s']:.1f} s for {round_['prompts']} prompts x up to "
              f"{round_['max_new_tokens']} new tokens ({round_['calls']} call(s)); the 2-step run "
              f"{round_['run_seconds']:.1f} s")
        print("    " + ", ".join(f"{k}={v:.4g}" for k, v in sorted(round_["metrics"].items())), flush=True)

    recipes: list | dict = []
    if "recipes" in args.parts:
        print("\n[4] recipes through accelerate launch, one process, 3 steps of a small model", flush=True)
        from cadft.data import mixed_quality_demos

        small = Path(workdir) / "small"
        hidden, layers, heads = cfg["recipe_model"]
        qwen_shaped(tokenizer, dict(cfg["model"], hidden_size=hidden, intermediate_size=2 * hidden,
                                    num_hidden_layers=layers, num_attention_heads=heads), "cpu",
                    torch.float32).save_pretrained(small)
        tokenizer.save_pretrained(small)
        data = os.path.join(workdir, "recipe_rows.jsonl")
        mixed_quality_demos(64, seed=0).to_json(data)
        recipes = section(results, "recipes", lambda: recipe_runs(str(small), data, cfg, cuda, workdir), args.json,
                          deadline)
        for name, outcome in recipes if isinstance(recipes, list) else []:
            print(f"    {name}: {outcome}")

    results["minutes"] = (time.perf_counter() - started) / 60
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2, default=str) + "\n")
    print(f"\ntotal {results['minutes']:.1f} min; {device}; torch {torch.__version__} (CUDA {torch.version.cuda}), "
          f"transformers {transformers.__version__}, trl {trl.__version__}")
    failed = [k for k in args.parts if isinstance(results.get(k), dict) and "error" in results[k]]
    failed += [name for name, outcome in (recipes if isinstance(recipes, list) else []) if outcome.startswith("FAILED")]
    if failed:
        print(f"FAILED parts: {', '.join(failed)}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
