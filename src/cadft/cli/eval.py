"""`cadft eval`: accuracy of a model on GSM8K- or MATH-style problems, with math-verify.

    cadft eval --dataset_path ../shared/data/gsm8k/test.jsonl --limit 50
    cadft eval --model_name_or_path runs/cadft --dataset_path ../shared/data/math500/test.jsonl
    cadft eval --dataset_path test.jsonl --num_samples 8 --temperature 0.7   # adds pass@1..8

Writes <output_dir>/eval_samples.jsonl (one record per problem: prompt, generations,
extracted answers, verdicts) and <output_dir>/eval_summary.json, and prints the accuracy
with its 95% Wilson interval. See docs/eval.md.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from cadft.cli.common import CommandError, CommandParser, add_model_argument, check_model_path

__all__ = ["build_parser", "main"]

# cadft.evaluate.BACKENDS, written out so that parsing needs no torch (a test checks they agree)
BACKENDS = ("auto", "transformers", "vllm")


def build_parser() -> argparse.ArgumentParser:
    parser = CommandParser(
        prog="cadft eval",
        description="Evaluate a model on math word problems (GSM8K / MATH-500 formats), checked with math-verify.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    add_model_argument(parser)
    parser.add_argument(
        "--dataset_path",
        required=True,
        help="Problems file (.jsonl): GSM8K rows (question, answer ending '#### x') or MATH rows (problem, answer).",
    )
    parser.add_argument("--limit", type=int, default=None, help="Evaluate only the first N problems.")
    parser.add_argument("--batch_size", type=int, default=8, help="Prompts per generation batch (transformers).")
    parser.add_argument("--max_new_tokens", type=int, default=512, help="Generation budget per answer.")
    parser.add_argument(
        "--num_samples", type=int, default=1, help="Answers per problem; > 1 reports pass@k and needs temperature > 0."
    )
    parser.add_argument("--temperature", type=float, default=0.0, help="0 decodes greedily; > 0 samples.")
    parser.add_argument("--top_p", type=float, default=1.0, help="Nucleus-sampling mass (with temperature > 0).")
    parser.add_argument(
        "--timeout_s", type=float, default=5.0, help="Time limit of each math-verify step; a timeout is a mismatch."
    )
    parser.add_argument(
        "--output_dir", default="cadft-eval", help="Folder for eval_samples.jsonl and eval_summary.json."
    )
    parser.add_argument(
        "--backend",
        default="auto",
        choices=BACKENDS,
        help="'auto' uses vLLM when it is installed and a CUDA GPU is present, transformers otherwise.",
    )
    parser.add_argument("--seed", type=int, default=0, help="Random seed for sampling.")
    return parser


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


def _load(args: argparse.Namespace, backend: str):
    if backend == "vllm":
        from cadft.evaluate import load_vllm

        return load_vllm(args.model_name_or_path, seed=args.seed)
    import torch

    from cadft.models import load_model_and_tokenizer

    model, tokenizer = load_model_and_tokenizer(args.model_name_or_path)
    if torch.cuda.is_available():
        model.to("cuda")
    return model, tokenizer


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    _check_args(parser, args)
    started = time.perf_counter()
    # Every row and the model path first, light: a bad file is reported before torch is imported
    from cadft.data.files import read_table
    from cadft.data.problems import check_problems

    table = read_table(args.dataset_path).head(args.limit)
    check_problems(table)
    rows = table.rows
    check_model_path(args.model_name_or_path)

    from transformers import set_seed

    from cadft.evaluate import evaluate_math, vllm_available
    from cadft.state_io import write_json_atomic

    backend = args.backend
    if backend == "auto":
        backend = "vllm" if vllm_available() else "transformers"
    elif backend == "vllm" and not vllm_available():
        raise CommandError("--backend vllm needs the `vllm` package and a CUDA GPU")

    set_seed(args.seed)
    try:
        model, tokenizer = _load(args, backend)
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
