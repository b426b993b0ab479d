"""Throughput of `cadft.model.scoring.score_rows` against a naive one-sample-at-a-time loop.

    python benchmarks/score_throughput.py --rows 64 --threads 1 --repeats 3

The naive loop is what a user would write by hand: one demonstration at a time, the full
(T, V) logits, a float32 log-softmax, gather the label tokens. Both run on the same model
and rows in the same process, interleaved (the order alternates between repeats), and
each is timed by wall clock and by process CPU time; the CPU-time ratio is the robust one
on a machine shared with other jobs. The script fails (exit 1) if the two compatibilities
differ by more than 1e-4 on any row. Results go in benchmarks/README.md.

A third path, the floor, runs the backbone alone (no LM head at all), one row at a time:
no exact scorer can beat it where batching does not cut the cost per token (a CPU), so
naive / floor bounds the ratio any scorer can reach on the machine.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import time
from datetime import date
from pathlib import Path

import torch

from cadft.data import load_demonstrations
from cadft.model.loading import load_model_and_tokenizer
from cadft.model.scoring import score_rows, tokenize_demonstration

# The real data lives beside the checkout (../shared/data), never inside it
DEFAULT_DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "gsm8k" / "train.jsonl"
TOLERANCE = 1e-4  # max |c_naive - c_scored| allowed (invariant 3)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.ArgumentDefaultsHelpFormatter
    )
    parser.add_argument("--model_name_or_path", default="embedded", help="Model to score with.")
    parser.add_argument("--dataset_path", default=str(DEFAULT_DATA), help="Demonstrations (GSM8K train by default).")
    parser.add_argument("--rows", type=int, default=64, help="First N demonstrations of the file.")
    parser.add_argument("--batch_size", type=int, default=16, help="score_rows batch size.")
    parser.add_argument("--max_length", type=int, default=1024, help="Truncate demonstrations to this many tokens.")
    parser.add_argument(
        "--threads", type=int, default=1, help="torch threads; more than the idle cores makes both paths crawl."
    )
    parser.add_argument("--repeats", type=int, default=3, help="Timed rounds of both paths; the median is reported.")
    parser.add_argument("--device", default="cpu", help="cpu, or cuda: the 3x target is a GPU's (benchmarks/gpu.sh).")
    parser.add_argument("--json", default=None, help="Also write the results to this JSON file.")
    return parser


@torch.inference_mode()
def naive_compatibility(model, rows: list[dict]) -> list[float]:
    """One row at a time: full logits, float32 log-softmax, exp(mean label log-prob)."""
    out = []
    device = next(model.parameters()).device
    for row in rows:
        input_ids = torch.tensor([row["input_ids"]], device=device)  # (1, T)
        target = torch.tensor([row["labels"]], device=device)[:, 1:]  # (1, T-1)
        logits = model(input_ids=input_ids).logits[:, :-1].float()  # (1, T-1, V)
        logps = torch.log_softmax(logits, dim=-1).gather(-1, target.clamp(min=0).unsqueeze(-1)).squeeze(-1)
        mask = target != -100
        n = int(mask.sum())
        out.append(float(torch.exp(logps[mask].sum() / n)) if n else 0.0)
    return out


@torch.inference_mode()
def backbone_only(model, rows: list[dict]) -> None:
    """The floor: the transformer body over every token, one row at a time, no LM head."""
    device = next(model.parameters()).device
    for row in rows:
        model.get_decoder()(input_ids=torch.tensor([row["input_ids"]], device=device))
    if device.type == "cuda":
        torch.cuda.synchronize()  # the other paths end with values on the host


def timed(fn):
    wall, cpu = time.perf_counter(), time.process_time()
    result = fn()
    return result, time.perf_counter() - wall, time.process_time() - cpu


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not Path(args.dataset_path).is_file():  # the default exists only where ../shared/data does
        parser.error(f"--dataset_path: file not found: {args.dataset_path}")
    torch.set_num_threads(args.threads)
    model, tokenizer = load_model_and_tokenizer(args.model_name_or_path)
    model.to(args.device).eval()
    dataset = load_demonstrations(args.dataset_path, limit=args.rows)
    rows = [tokenize_demonstration(tokenizer, example, max_length=args.max_length) for example in dataset]
    num_tokens = sum(len(row["input_ids"]) for row in rows)

    def scored():
        pad = tokenizer.pad_token_id
        scores = score_rows(model, rows, pad_token_id=pad, batch_size=args.batch_size, progress=False)
        return [s["compatibility"] for s in scores]

    def naive():
        return naive_compatibility(model, rows)

    def floor():
        backbone_only(model, rows)

    scored()  # warm-up: installs the fused head, first-call allocations
    rounds, max_diff = [], 0.0
    for r in range(args.repeats):
        order = [("naive", naive), ("scored", scored), ("floor", floor)]
        order = order if r % 2 == 0 else order[::-1]
        times, values = {}, {}
        for name, fn in order:
            values[name], wall, cpu = timed(fn)
            times[name] = (wall, cpu)
        max_diff = max(max_diff, max(abs(a - b) for a, b in zip(values["naive"], values["scored"])))
        rounds.append(times)
        (nw, nc), (sw, sc), (fw, fc) = times["naive"], times["scored"], times["floor"]
        print(
            f"round {r + 1}: naive {nw:.1f}s wall / {nc:.1f}s cpu, score_rows {sw:.1f}s wall / {sc:.1f}s cpu, "
            f"floor {fw:.1f}s wall / {fc:.1f}s cpu; ratio {nw / sw:.2f} wall / {nc / sc:.2f} cpu, "
            f"bound naive/floor {nw / fw:.2f} wall / {nc / fc:.2f} cpu",
            flush=True,
        )

    def median(path: str, k: int) -> float:
        return statistics.median(t[path][k] for t in rounds)

    result = {
        "date": date.today().isoformat(),
        "machine": f"{platform.machine()}, device {args.device}, "
        f"{torch.get_num_threads()} torch thread(s) of nproc={_nproc()}",
        "torch": torch.__version__,
        "model": args.model_name_or_path,
        "dataset": args.dataset_path,
        "rows": len(rows),
        "tokens": num_tokens,
        "batch_size": args.batch_size,
        "repeats": args.repeats,
        "naive_samples_per_s_wall": len(rows) / median("naive", 0),
        "scored_samples_per_s_wall": len(rows) / median("scored", 0),
        "naive_samples_per_s_cpu": len(rows) / median("naive", 1),
        "scored_samples_per_s_cpu": len(rows) / median("scored", 1),
        "ratio_wall": statistics.median(t["naive"][0] / t["scored"][0] for t in rounds),
        "ratio_cpu": statistics.median(t["naive"][1] / t["scored"][1] for t in rounds),
        "floor_samples_per_s_cpu": len(rows) / median("floor", 1),
        "bound_ratio_cpu": statistics.median(t["naive"][1] / t["floor"][1] for t in rounds),
        "max_abs_diff": max_diff,
        "command": "python " + " ".join([sys.argv[0], *(argv if argv is not None else sys.argv[1:])]),
    }
    print()
    print("| rows (tokens) | batch | threads | naive samples/s (wall / cpu) | score_rows samples/s (wall / cpu) "
          "| ratio, median (wall / cpu) | bound: naive / floor (cpu) | max abs diff of c |")
    print("|---|---|---|---|---|---|---|---|")
    print(
        f"| {result['rows']} ({num_tokens}) | {args.batch_size} | {args.threads} "
        f"| {result['naive_samples_per_s_wall']:.2f} / {result['naive_samples_per_s_cpu']:.2f} "
        f"| {result['scored_samples_per_s_wall']:.2f} / {result['scored_samples_per_s_cpu']:.2f} "
        f"| {result['ratio_wall']:.2f} / {result['ratio_cpu']:.2f} | {result['bound_ratio_cpu']:.2f} | {max_diff:.1e} |"
    )
    print(f"\n{result['date']}, torch {result['torch']}, {result['machine']}\n{result['command']}")
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2) + "\n")
    if max_diff > TOLERANCE:
        print(f"FAIL: compatibilities differ by {max_diff:.2e} > {TOLERANCE}", file=sys.stderr)
        return 1
    return 0


def _nproc() -> int:
    import os

    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


if __name__ == "__main__":
    sys.exit(main())
