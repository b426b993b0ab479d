"""`cadft eval`: accuracy of a model on math problems, checked with math-verify.

One file of GSM8K- or MATH-style problems:

    cadft eval --dataset_path ../shared/data/gsm8k/test.jsonl --limit 50
    cadft eval --model_name_or_path runs/cadft --dataset_path ../shared/data/math500/test.jsonl
    cadft eval --dataset_path test.jsonl --num_samples 8 --temperature 0.7   # adds pass@1..8

writes <output_dir>/eval_samples.jsonl and eval_summary.json and prints the accuracy with
its 95% Wilson interval. The papers' benchmarks, with their protocol (avg@16, temperature
1.0, top_p 1.0, 4096 new tokens) unless flags say otherwise:

    cadft eval --benchmark paper --model_name_or_path runs/cadft     # the five benchmarks
    cadft eval --benchmark aime24 --temperature 0                   # greedy, one answer each

writes <output_dir>/suite_results.jsonl (one line per finished problem; a rerun with the
same arguments continues it) and suite_summary.json, and prints a table (cadft.cli.eval_suite).
See docs/eval.md.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from cadft.cli.common import CommandError, CommandParser, add_model_argument, check_model_path

__all__ = ["build_parser", "main"]

# cadft.evaluation.backends.BACKENDS, written out so that parsing needs no torch (a test checks they agree)
BACKENDS = ("auto", "transformers", "vllm")
# cadft.evaluation.benchmarks.BENCHMARKS, likewise
BENCHMARKS = ("math500", "minerva", "olympiadbench", "aime24", "amc23", "paper")
# The defaults of one file (--dataset_path) and of the papers' suite (--benchmark: their protocol)
FILE_DEFAULTS = {"max_new_tokens": 512, "num_samples": 1, "temperature": 0.0, "top_p": 1.0}
SUITE_DEFAULTS = {"max_new_tokens": 4096, "num_samples": 16, "temperature": 1.0, "top_p": 1.0}


class _Defaults(argparse.ArgumentDefaultsHelpFormatter):
    """Shows a flag's default, except None: those flags say their defaults in their help."""

    def _get_help_string(self, action):
        return action.help if action.default is None else super()._get_help_string(action)


def build_parser() -> argparse.ArgumentParser:
    parser = CommandParser(
        prog="cadft eval",
        description="Evaluate a model on math problems, checked with math-verify: one file (--dataset_path) or "
        "the papers' benchmarks with their protocol (--benchmark).",
        formatter_class=_Defaults,
    )
    add_model_argument(parser)
    parser.add_argument(
        "--dataset_path",
        default=None,
        help="Problems file (.jsonl): GSM8K rows (question, answer ending '#### x') or MATH rows (problem, answer).",
    )
    parser.add_argument(
        "--benchmark",
        default=None,
        choices=BENCHMARKS,
        help="Instead of --dataset_path: one of the papers' benchmarks, or 'paper' for all five (docs/eval.md).",
    )
    parser.add_argument(
        "--benchmark_path",
        default=None,
        help="With --benchmark: a benchmark's .jsonl file, or a folder holding <name>/test.jsonl folders "
        "(default: $CADFT_SHARED_DATA, then ../shared/data, then the hub).",
    )
    parser.add_argument(
        "--limit", type=int, default=None, help="Evaluate only the first N problems (of each benchmark)."
    )
    parser.add_argument(
        "--batch_size", type=int, default=None,
        help="Prompts per generation batch. Default 8; with --benchmark on vLLM, 256 problems per call.",
    )
    parser.add_argument(
        "--max_new_tokens", type=int, default=None,
        help="Generation budget per answer. Default 512; 4096 with --benchmark.",
    )
    parser.add_argument(
        "--num_samples", type=int, default=None,
        help="Answers per problem; > 1 reports pass@k and needs temperature > 0. Default 1; 16 with --benchmark "
        "(1 when --temperature is 0).",
    )
    parser.add_argument(
        "--temperature", type=float, default=None,
        help="0 decodes greedily; > 0 samples. Default 0; 1.0 with --benchmark.",
    )
    parser.add_argument(
        "--top_p", type=float, default=None, help="Nucleus-sampling mass (with temperature > 0). Default 1.0."
    )
    parser.add_argument(
        "--timeout_s", type=float, default=5.0, help="Time limit of each math-verify step; a timeout is a mismatch."
    )
    parser.add_argument(
        "--output_dir", default="cadft-eval",
        help="Folder for eval_samples.jsonl and eval_summary.json; with --benchmark, suite_results.jsonl (a rerun "
        "continues it) and suite_summary.json.",
    )
    parser.add_argument(
        "--backend",
        default="auto",
        choices=BACKENDS,
        help="'auto' uses vLLM when it is installed and a CUDA GPU is present, transformers otherwise.",
    )
    parser.add_argument("--seed", type=int, default=0, help="Random seed for sampling.")
    return parser


def _fill_defaults(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    """The mode's defaults for the flags not given; --benchmark and --dataset_path exclude each other."""
    if (args.dataset_path is None) == (args.benchmark is None):
        parser.error("give one of --dataset_path FILE or --benchmark NAME")
    if args.benchmark_path is not None and args.benchmark is None:
        parser.error("--benchmark_path goes with --benchmark")
    suite = args.benchmark is not None
    defaults = dict(SUITE_DEFAULTS if suite else FILE_DEFAULTS)
    if suite and args.temperature == 0:
        defaults["num_samples"] = 1  # greedy: one answer per problem
    for name, value in defaults.items():
        if getattr(args, name) is None:
            setattr(args, name, value)


def _check_args(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    for name in ("limit", "batch_size", "max_new_tokens", "num_samples"):
        value = getattr(args, name)
        if value is not None and value < 1:
            parser.error(f"--{name} must be >= 1, got {value}")
    if args.temperature < 0:
        parser.error(f"--temperature must be >= 0, got {args.temperature}")
    if not 0 < args.top_p <= 1:
        parser.error(f"--top_p must be in (0, 1], got {args.top_p}")
    if args.timeout_s <= 0:
        parser.error(f"--timeout_s must be > 0, got {args.timeout_s}")
    if args.num_samples > 1 and args.temperature == 0:
        parser.error("--num_samples > 1 needs --temperature > 0 (greedy decoding gives the same answer every time)")


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    _fill_defaults(parser, args)
    _check_args(parser, args)
    if args.benchmark is not None:
        from cadft.cli.eval_suite import run

        return run(args)
    if args.batch_size is None:
        args.batch_size = 8
    started = time.perf_counter()
    # Every row and the model path first, light: a bad file is reported before torch is imported
    from cadft.data.files import read_table
    from cadft.data.problems import check_problems

    table = read_table(args.dataset_path).head(args.limit)
    check_problems(table)
    rows = table.rows
    check_model_path(args.model_name_or_path)

    from transformers import set_seed

    from cadft.evaluation.backends import choose_backend, load_model
    from cadft.evaluation.evaluate import evaluate_math

    from ..training.state_io import write_json_atomic

    try:
        backend = choose_backend(args.backend)
    except ValueError as e:
        raise CommandError(str(e)) from None

    set_seed(args.seed)
    try:
        model, tokenizer = load_model(args.model_name_or_path, backend, seed=args.seed)
    except (OSError, ValueError) as e:
        raise CommandError(f"cannot load model {args.model_name_or_path!r}: {e}") from e
    records, summary = evaluate_math(
        model,
        tokenizer,
        rows,
        num_samples=args.num_samples,
        temperature=args.temperature,
        top_p=args.top_p,
        max_new_tokens=args.max_new_tokens,
        batch_size=args.batch_size,
        timeout_s=args.timeout_s,
        source=args.dataset_path,
    )
    summary = {
        "model": args.model_name_or_path,
        "dataset": args.dataset_path,
        "seed": args.seed,
        **summary,
        "wall_s": round(time.perf_counter() - started, 3),
    }

    out = Path(args.output_dir)
    out.mkdir(parents=True, exist_ok=True)
    with open(out / "eval_samples.jsonl", "w", encoding="utf-8") as f:
        f.writelines(json.dumps(record, ensure_ascii=False) + "\n" for record in records)
    write_json_atomic(str(out / "eval_summary.json"), summary)

    low, high = summary["accuracy_ci95"]
    print(f"wrote {out / 'eval_samples.jsonl'} and {out / 'eval_summary.json'}")
    for k, value in summary.get("pass_at_k", {}).items():
        print(f"pass@{k} {100 * value:.1f}%")
    print(
        f"accuracy {100 * summary['accuracy']:.1f}% ({summary['num_correct']}/{summary['num_problems']}), "
        f"95% CI [{100 * low:.1f}%, {100 * high:.1f}%]"
    )
    return 0
