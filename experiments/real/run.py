"""CADFT on a real pretrained model and real data (issue #9): GSM8K-derived heterogeneous
demonstrations and SmolLM2-135M-Instruct (`embedded`), or any causal LM by flag.

Parts (each writes <out>/<part>.json; the page is rebuilt from whatever parts exist):

    kinds  compatibility of each data kind at the base model (no training)
    a      Part A, the estimator at the base: per-sample LoRA gradients of a mixture,
           bootstrap batches, trace of the batch-gradient covariance and cosine to the
           gradient of clean held-out gold demonstrations, for SFT, DFT, CADFT (the paper's
           estimator, the earlier one), the oracle filter; and the variance assumption
           (DFT gradient norms against z, the moments of the paper's estimator) at the
           base and at the middle of a short DFT run
    b      Part B, short LoRA training: SFT, DFT, CADFT, the earlier estimator, CADFT with
           the paper's rewriting and the oracle filter on a heterogeneous and a clean
           mixture, several seeds

    python -m experiments.real --parts kinds,a              # CPU: the base-model parts
    python -m experiments.real --parts b --threads 1        # about 80 minutes on 1 CPU core
    python -m experiments.real --parts b --jobs 2           # two worker processes, one thread each
    python -m experiments.real --smoke                      # CI: tiny random model, < 3 min
    python -m experiments.real --model_name_or_path HuggingFaceTB/SmolLM2-1.7B-Instruct --out DIR

The page goes to docs/real-model.md (--smoke: <out>/real-model.md), its figures beside it.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

if __name__ == "__main__" and not __package__:  # the old command, python experiments/real/run.py: as a module
    os.execv(sys.executable, [sys.executable, "-m", "experiments.real", *sys.argv[1:]])

from experiments import runner  # noqa: E402
from experiments.real import common, data  # noqa: E402

HERE = Path(__file__).resolve().parent
MODULE = "experiments.real"  # how it runs: python -m experiments.real
PARTS = ("kinds", "a", "b")


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    a = p.add_argument
    a("--smoke", action="store_true", help="tiny random model, tiny sizes, output to a temporary folder")
    a("--model_name_or_path", default=None, help="'embedded' (default), a folder or hub name; --smoke: 'tiny'")
    a("--gsm8k", default=str(data.DEFAULT_GSM8K), help="folder with GSM8K train.jsonl and test.jsonl")
    a("--out", default=None, help="results folder (default experiments/real/results; --smoke: a temporary one)")
    a("--page", default=None, help="the Markdown page (default docs/real-model.md; --smoke: <out>/real-model.md)")
    a("--parts", default="kinds,a,b", help="comma-separated parts to run: kinds, a, b")
    a("--seed", type=int, default=0, help="data seed (and Part A's bootstrap seed)")
    a("--max_length", type=int, default=512)
    a("--per_kind", type=int, default=40, help="problems scored in every kind")
    # Part A
    a("--pool", type=int, default=96, help="Part A: demonstrations of the mixture")
    a("--reference", type=int, default=64, help="Part A: clean held-out gold demonstrations")
    a("--batch_size", type=int, default=16, help="Part A: bootstrap batch size")
    a("--batches", type=int, default=400, help="Part A: bootstrap batches per estimate")
    a("--outer", type=int, default=200, help="Part A: outer bootstrap replicates (intervals)")
    a("--lora_r", type=int, default=8)
    a("--lora_targets", default="q_proj,v_proj")
    a("--grad_cache", default=None,
      help="Part A: folder for the per-sample gradients (default $CADFT_CACHE/real-gradients, ~/.cache/cadft/...)")
    a("--lora_top_layers", type=int, default=0,
      help="Part A at the base: LoRA on the top K decoder layers only (0: all); fewer layers make per-sample "
      "gradients cheaper")
    a("--mid_lr", type=float, default=1e-3,
      help="Part A: learning rate of the mid-training adapter (half of Part B's DFT run; 1e-3 is what Part B's "
      "search chose for DFT on the mixture)")
    # Part B
    a("--seeds", type=int, default=2, help="Part B: training seeds (2 fit the 1-core CPU budget)")
    a("--train", type=int, default=16,
      help="Part B: training demonstrations (2 epochs at the default steps: rewritten targets get trained on)")
    a("--steps", type=int, default=8, help="Part B: optimizer steps per run (8 x 4 rows fit the 90-minute CPU budget)")
    a("--train_batch", type=int, default=4, help="Part B: global batch (demonstrations per optimizer step)")
    a("--lrs", default="3e-4,1e-3", help="Part B: the learning-rate grid every method searches")
    a("--validation", type=int, default=32, help="Part B: gold validation rows for the learning-rate search")
    a("--test_nll", type=int, default=100, help="Part B: held-out clean test solutions for the NLL")
    a("--accuracy", type=int, default=32, help="Part B: held-out 1-step problems for greedy accuracy")
    a("--general", type=int, default=50, help="Part B: general prompts for forgetting")
    a("--max_new_tokens", type=int, default=160, help="Part B: generation length (accuracy, forgetting, rewriting)")
    a("--mixed_methods", default=None,
      help="Part B: methods trained on the mixture (default all: SFT, DFT, CADFT, CADFT (earlier), "
      "CADFT + paper rewriting, DFT + oracle filter)")
    a("--clean_methods", default="SFT,DFT,CADFT", help="Part B: methods also trained on the clean set")
    a("--rewrite_start", type=int, default=None, help="Part B: the paper's warm-up, scaled (default: steps // 2)")
    a("--rewrite_interval", type=int, default=None,
      help="Part B: the paper's interval between rounds, scaled (default: steps // 4)")
    a("--rewrite_budget", type=float, default=4,
      help="Part B: targets selected per round (the paper's 0.5%% of 16 rows is under one sample)")
    a("--jobs", type=int, default=1,
      help="Part B: worker processes that train its runs side by side, one torch thread each (1: one run after "
      "another in this process, with --threads threads); not part of the reuse key: the same runs, the same "
      "results")
    a("--threads", type=int, default=0, help="torch threads (0: torch's default; OMP_NUM_THREADS also works)")
    a("--cache_dir", default=None, help="cached base generations (default <out>/cache)")
    return p


SMOKE = dict(per_kind=3, pool=12, reference=6, batch_size=4, batches=40, outer=20, max_length=1024, seeds=2, train=12,
             steps=2, train_batch=4, lrs="1e-3", validation=4, test_nll=4, accuracy=3, general=3, max_new_tokens=8,
             lora_r=2)


def resolve(args) -> argparse.Namespace:
    """Fill the defaults that depend on --smoke."""
    if args.smoke:
        parser_defaults = vars(build_parser().parse_args([]))
        for key, value in SMOKE.items():
            if getattr(args, key) == parser_defaults[key]:
                setattr(args, key, value)
    args.model_name_or_path = args.model_name_or_path or (common.TINY if args.smoke else "embedded")
    args.out = Path(args.out or (tempfile.mkdtemp(prefix="cadft-real-smoke-") if args.smoke else HERE / "results"))
    default_page = args.out / "real-model.md" if args.smoke else common.REPO / "docs" / "real-model.md"
    args.page = Path(args.page or default_page)
    args.cache_dir = Path(args.cache_dir or args.out / "cache")
    cache_root = Path(os.environ.get("CADFT_CACHE", Path.home() / ".cache" / "cadft"))
    args.grad_cache = Path(args.grad_cache or (args.out / "cache" if args.smoke else cache_root / "real-gradients"))
    if args.jobs < 1:
        raise SystemExit("--jobs: at least 1")
    args.parts = [p.strip() for p in args.parts.split(",") if p.strip()]
    unknown = [p for p in args.parts if p not in PARTS]
    if unknown:
        raise SystemExit(f"--parts: unknown part(s) {unknown}; choose from {', '.join(PARTS)}")
    return args


def build_data(args) -> dict[str, list[dict]]:
    train_rows = data.read_gsm8k(Path(args.gsm8k) / "train.jsonl")
    splits = data.build_splits(train_rows, seed=args.seed, per_kind=args.per_kind, pool=args.pool,
                               reference=args.reference, train=args.train, validation=args.validation)
    test_rows = data.read_gsm8k(Path(args.gsm8k) / "test.jsonl")
    splits["test"] = data.test_demonstrations(test_rows, args.test_nll, seed=args.seed)
    splits["test_rows"] = test_rows
    return splits


def run_kinds(args, splits) -> dict:
    from experiments.real import kinds

    model, tok = common.load(args.model_name_or_path)
    start = time.time()
    rows = splits["kinds"]
    compat = kinds.score_demonstrations(model, tok, rows, max_length=args.max_length)
    return {"table": kinds.summarise(rows, compat), "compat": compat, "kinds": [r["kind"] for r in rows],
            "wall_s": time.time() - start}


def run_part_a(args, splits) -> dict:
    from experiments.real import part_a

    return part_a.run(args, splits)


def run_part_b(args, splits) -> dict:
    from experiments.real import part_b

    return part_b.run(args, splits)


RUNNERS = {"kinds": run_kinds, "a": run_part_a, "b": run_part_b}


def main(argv=None) -> dict:
    argv = list(sys.argv[1:] if argv is None else argv)
    args = resolve(build_parser().parse_args(argv))
    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    splits = build_data(args)
    results = {}
    for part in PARTS:
        path = args.out / f"{part}.json"
        if part in args.parts:
            print(f"[real] part {part} ...", flush=True)
            start, cpu_start = time.time(), time.process_time()
            result = RUNNERS[part](args, splits)
            result["meta"] = {
                **runner.provenance(argv, MODULE),
                "model": args.model_name_or_path,
                "wall_s": time.time() - start,
                "cpu_s": time.process_time() - cpu_start,  # this process's CPU time: the machine may be shared
                "args": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
            }
            runner.save_json(result, path)
            print(f"[real] part {part}: {result['meta']['wall_s']:.0f} s -> {path}", flush=True)
            if part == "a":
                from experiments.real import report_variance

                print("\n".join(report_variance.moments_rows(result["variance"])), flush=True)
        results[part] = runner.load_json(path)
    from experiments.real import report

    report.write(args.page, results, splits, smoke=args.smoke)
    print(f"[real] page -> {args.page}", flush=True)
    return results


if __name__ == "__main__":
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    main()
