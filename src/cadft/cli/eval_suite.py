"""`cadft eval --benchmark NAME`: the papers' benchmarks with their protocol, resumable.

Reads and checks every problem (and the results file of an earlier run in the same
--output_dir) before the model loads, prints the protocol, generates what is missing,
then writes suite_summary.json and prints the table. The work is in `cadft.evaluation`.
"""

from __future__ import annotations

import argparse
import math
import time
from dataclasses import asdict
from pathlib import Path

from cadft.cli.common import CommandError, check_model_path

__all__ = ["RESULTS_FILE", "SUMMARY_FILE", "run"]

RESULTS_FILE = "suite_results.jsonl"
SUMMARY_FILE = "suite_summary.json"
DEFAULT_BATCH = {"transformers": 8, "vllm": 256}


def run(args: argparse.Namespace) -> int:
    started = time.perf_counter()
    from cadft.evaluation.backends import choose_backend
    from cadft.evaluation.benchmarks import PAPER, fingerprint, load_problems
    from cadft.evaluation.results import ResultsFile, ResumeError
    from cadft.evaluation.suite import Sampling, format_table, run_suite, summarise

    timeout_s = max(1, math.ceil(args.timeout_s))
    names = list(PAPER) if args.benchmark == "paper" else [args.benchmark]
    if args.benchmark_path is not None and len(names) > 1 and Path(args.benchmark_path).is_file():
        raise CommandError(f"--benchmark paper needs a folder for --benchmark_path, got the file {args.benchmark_path}")
    problems, data = {}, {}
    for name in names:
        problems[name], table = load_problems(name, args.benchmark_path, limit=args.limit, timeout_s=timeout_s,
                                              nested=len(names) > 1)
        source = Path(table.source)  # a file's absolute path, so that a rerun from elsewhere matches; or a hub name
        source = str(source.resolve()) if source.is_file() else table.source
        data[name] = {"source": source, "fingerprint": fingerprint(table)}
    check_model_path(args.model_name_or_path)
    try:
        backend = choose_backend(args.backend)
    except ValueError as e:
        raise CommandError(str(e)) from None
    batch_size = args.batch_size or DEFAULT_BATCH[backend]
    sampling = Sampling(args.num_samples, args.temperature, args.top_p, args.max_new_tokens, args.seed)
    settings = {"model": args.model_name_or_path, "backend": backend, "benchmarks": names, "limit": args.limit,
                "data": data, "sampling": asdict(sampling), "batch_size": batch_size, "timeout_s": timeout_s}
    out = Path(args.output_dir)
    try:
        results, done = ResultsFile.open(out / RESULTS_FILE, settings)
    except ResumeError as e:
        raise CommandError(str(e)) from None

    papers = " (the papers' protocol)" if {**asdict(sampling), "seed": 0} == asdict(Sampling()) else ""
    print(f"protocol: {sampling.describe()}{papers}")
    print(f"model {args.model_name_or_path}, backend {backend}, {batch_size} problems per generation call")
    for name in names:
        print(f"  {name:<14} {len(problems[name]):>4} problems  {data[name]['source']}")
    total = sum(map(len, problems.values()))
    if done:
        print(f"resuming: {len(done)} of {total} problems already in {results.path}")

    if len(done) < total:
        from cadft.evaluation.backends import load_model
        from cadft.evaluation.suite import chunk_generator

        try:
            model, tokenizer = load_model(args.model_name_or_path, backend, seed=args.seed)
        except (OSError, ValueError) as e:
            raise CommandError(f"cannot load model {args.model_name_or_path!r}: {e}") from e
        done = run_suite(chunk_generator(model, tokenizer, backend, sampling), tokenizer, problems, sampling, results,
                         done, batch_size=batch_size, timeout_s=timeout_s)
    from ..training.state_io import write_json_atomic

    summary = {"model": args.model_name_or_path, "backend": backend, "limit": args.limit, "batch_size": batch_size,
               **summarise(problems, done, sampling), "data": data, "wall_s": round(time.perf_counter() - started, 1)}
    write_json_atomic(str(out / SUMMARY_FILE), summary)
    print(format_table(summary))
    print(f"wrote {results.path} and {out / SUMMARY_FILE}")
    return 0
