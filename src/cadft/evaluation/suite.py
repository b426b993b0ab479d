"""Generating, grading and summarising a suite run, resumable at every problem.

    summary = run_suite(generate_chunk, tokenizer, problems, sampling, results, done, batch_size=8)

Each benchmark's problems are sorted by prompt length (longest first, so that a batch
holds prompts of similar length and an out-of-memory error shows at once) and cut into
chunks of `batch_size` problems. A chunk is generated in one call with a seed of its
own, derived from the run's seed, the benchmark and the chunk's index; every problem's
answers are graded and appended to the results file (fsynced) at once. A resumed run
makes the same chunks and seeds and regenerates only chunks with a missing problem, so
it ends with the records an uninterrupted run writes (on the same machine and backend).
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable
from dataclasses import asdict

from tqdm.auto import tqdm

from .benchmarks import PAPER, Problem, prompt_text
from .grading import grade, graded_record, parse_reference
from .metrics import avg_at_k, avg_at_k_interval, pass_at_ks, suite_average
from .results import ResultsFile
from .sampling import Sampling

__all__ = ["Sampling", "chunk_generator", "chunk_seed", "chunks", "format_table", "grade_problem", "problem_seed",
           "run_suite", "summarise"]

# generate_chunk(prompts, chunk_seed, problem_seeds) -> per prompt, its num_samples texts
GenerateChunk = Callable[[list, int, list[int]], list[list[str]]]


def _derived(*parts) -> int:
    return int.from_bytes(hashlib.sha256(repr(parts).encode()).digest()[:4], "little") & 0x7FFFFFFF


def chunk_seed(seed: int, benchmark: str, index: int) -> int:
    """The seed of one chunk: fixed by the run's seed, the benchmark and the chunk's index."""
    return _derived("chunk", seed, benchmark, index)


def problem_seed(seed: int, benchmark: str, problem_id: str) -> int:
    """The seed of one problem's samples (vLLM takes one per request)."""
    return _derived("problem", seed, benchmark, problem_id)


def chunks(lengths: list[int], batch_size: int) -> list[list[int]]:
    """Indices sorted by length, longest first (ties in the given order), cut into batches."""
    order = sorted(range(len(lengths)), key=lambda i: (-lengths[i], i))
    return [order[start : start + batch_size] for start in range(0, len(order), batch_size)]


def chat_prompt(problem: Problem, tokenizer):
    """A chat message for a tokenizer with a chat template, else plain `Question: ... Answer:` text."""
    text = prompt_text(problem)
    if getattr(tokenizer, "chat_template", None):
        return [{"role": "user", "content": text}]
    return f"Question: {text}\nAnswer:"


def chunk_generator(model, tokenizer, backend: str, sampling: Sampling) -> GenerateChunk:
    """`generate_chunk` for a loaded model: vLLM with one seed per problem, or transformers with
    the chunk's seed set before the chunk's prompts are generated as one batch."""
    if backend == "vllm":
        from .vllm import generate_vllm

        return lambda prompts, seed, seeds: generate_vllm(model, tokenizer, prompts, sampling, seeds)

    from transformers import set_seed

    from ..model.generation import generate

    def generate_chunk(prompts, seed, seeds):
        set_seed(seed)
        return generate(model, tokenizer, prompts, max_new_tokens=sampling.max_new_tokens,
                        temperature=sampling.temperature, top_p=sampling.top_p,
                        num_return_sequences=sampling.num_samples, batch_size=len(prompts), progress=False)

    return generate_chunk


def run_suite(
    generate_chunk: GenerateChunk,
    tokenizer,
    problems: dict[str, list[Problem]],
    sampling: Sampling,
    results: ResultsFile,
    done: dict[tuple[str, str], dict],
    *,
    batch_size: int,
    timeout_s: int = 5,
    progress: bool = True,
) -> dict[tuple[str, str], dict]:
    """Evaluate every problem not in `done`; returns `done` with the new records added."""
    from ..model.generation import encode_prompts

    unknown = sorted(set(done) - {(p.benchmark, p.id) for ps in problems.values() for p in ps})
    if unknown:
        raise ValueError(f"{results.path} holds problems this run does not have, e.g. {unknown[:3]}")
    total = sum(len(ps) for ps in problems.values())
    with tqdm(total=total, initial=len(done), desc="eval", unit="problem", disable=not progress,
              dynamic_ncols=True) as bar:
        for benchmark, bench_problems in problems.items():
            prompts = [chat_prompt(p, tokenizer) for p in bench_problems]
            lengths = [len(ids) for ids in encode_prompts(tokenizer, prompts)]
            for index, chunk in enumerate(chunks(lengths, batch_size)):
                todo = [i for i in chunk if (benchmark, bench_problems[i].id) not in done]
                if not todo:
                    continue
                bar.set_postfix_str(benchmark)
                seeds = [problem_seed(sampling.seed, benchmark, bench_problems[i].id) for i in chunk]
                started = time.perf_counter()
                texts = generate_chunk([prompts[i] for i in chunk], chunk_seed(sampling.seed, benchmark, index),
                                       seeds)
                seconds = round(time.perf_counter() - started, 3)
                for i, samples in zip(chunk, texts):
                    if i not in todo:
                        continue  # done before the run was interrupted: same chunk, same answers
                    record = grade_problem(bench_problems[i], samples, timeout_s=timeout_s)
                    record["chunk_generation_s"] = seconds
                    results.append(record)
                    done[(benchmark, record["id"])] = record
                    bar.update(1)
    return done


def grade_problem(problem: Problem, samples: list[str], *, timeout_s: int = 5) -> dict:
    """The results record of one problem: its answers, what was extracted from each, verdicts."""
    gold = parse_reference(problem.reference, timeout_s=timeout_s)  # read once for all the samples
    verdicts = [grade(text, gold, extract="math_verify", timeout_s=timeout_s) for text in samples]
    record = graded_record(problem.id, prompt_text(problem), problem.reference, samples, verdicts)
    return {"benchmark": problem.benchmark, **record, "num_correct": sum(v.ok for v in verdicts)}


def summarise(problems: dict[str, list[Problem]], done: dict[tuple[str, str], dict], sampling: Sampling) -> dict:
    """Per benchmark: avg@k with its 95% interval, pass@j, problems, unparsable answers; and the
    suite average (the mean of the benchmarks' avg@k) when the five benchmarks of the papers ran."""
    k = sampling.num_samples
    benchmarks = {}
    for benchmark, bench_problems in problems.items():
        records = [done[(benchmark, p.id)] for p in bench_problems]
        correct = [r["num_correct"] for r in records]
        low, high = avg_at_k_interval(correct, k)
        benchmarks[benchmark] = {
            "num_problems": len(records),
            "num_answers": len(records) * k,
            "num_unparsable": sum(e is None for r in records for e in r["extracted"]),
            "avg_at_k": avg_at_k(correct, k),
            "avg_at_k_ci95": [low, high],
            "pass_at_k": pass_at_ks(correct, k),
        }
    paper = set(problems) == set(PAPER)
    return {
        "k": k,
        "sampling": asdict(sampling),
        "benchmarks": benchmarks,
        "suite_average": suite_average({b: s["avg_at_k"] for b, s in benchmarks.items()}) if paper else None,
    }


def format_table(summary: dict) -> str:
    """The summary as a text table, one line per benchmark, then the suite average."""
    k = summary["k"]
    header = f"{'benchmark':<14} {'problems':>8} {f'avg@{k}':>8}  {'95% CI':<15} {f'pass@{k}':>8} {'unparsable':>12}"
    lines = [header, "-" * len(header)]
    for name, s in summary["benchmarks"].items():
        low, high = s["avg_at_k_ci95"]
        interval = f"[{100 * low:.1f}, {100 * high:.1f}]"
        unparsable = f"{s['num_unparsable']}/{s['num_answers']}"
        lines.append(f"{name:<14} {s['num_problems']:>8} {100 * s['avg_at_k']:>7.1f}%  {interval:<15} "
                     f"{100 * s['pass_at_k'][str(k)]:>7.1f}% {unparsable:>12}")
    if summary.get("suite_average") is not None:
        lines.append(f"{'paper average':<14} {'':>8} {100 * summary['suite_average']:>7.1f}%  "
                     f"(mean of the five benchmarks' avg@{k})")
    return "\n".join(lines)
