"""Accuracy and pass@k of a model on math word problems, checked with math-verify.

    rows = [json.loads(line) for line in open("gsm8k/test.jsonl")][:50]
    records, summary = evaluate_math(model, tokenizer, rows, max_new_tokens=256)
    summary["accuracy"], summary["accuracy_ci95"]

Rows are GSM8K (`question`, `answer` = worked solution ending in `#### x`; the reference
is x without thousands separators) or MATH (`problem` plus `answer`, as in MATH-500, or
`solution`, whose last `\\boxed{}` is the reference). The prompt asks for step-by-step
reasoning and, for GSM8K, the final answer after `####`, for MATH in `\\boxed{}`: the
conventions of the two datasets' own solutions, so a model fine-tuned on them keeps them.

Metrics, for n problems of which c are solved by their first sample (the greedy answer
when temperature is 0):

    accuracy  = c / n, with the 95% Wilson score interval
    pass@k    = mean over problems of 1 - C(s - r, k) / C(s, k)     (Chen et al., 2021)

where s samples were drawn for a problem and r of them are correct; it is the unbiased
estimate of the chance that at least one of k samples is correct (reported when s > 1).

`model` is a transformers model (or a PEFT model), or a `vllm.LLM` from `load_vllm`.
"""

from __future__ import annotations

import logging
import time

from ..data.problems import MathProblem, math_problems
from ..model.generation import generate
from .grading import grade, graded_record
from .metrics import pass_at_k, wilson_interval
from .metrics import report_ks as _ks
from .sampling import Sampling
from .vllm import generate_vllm

__all__ = ["evaluate_math", "math_prompt"]

logger = logging.getLogger(__name__)

_INSTRUCTIONS = {
    "gsm8k": "Solve the problem step by step. End with a line of the form '#### <answer>' holding only the "
    "final numeric answer.",
    "math": "Solve the problem step by step. Put the final answer in \\boxed{}.",
}


def math_prompt(problem: MathProblem) -> str:
    """The user message for one problem: the question and the answer-format instruction."""
    return f"{problem.question.strip()}\n\n{_INSTRUCTIONS[problem.kind]}"


def _is_vllm(model) -> bool:
    return type(model).__module__.split(".")[0] == "vllm"


def evaluate_math(
    model,
    tokenizer,
    rows: list[dict],
    *,
    num_samples: int = 1,
    temperature: float = 0.0,
    top_p: float = 1.0,
    max_new_tokens: int = 512,
    batch_size: int = 8,
    timeout_s: float = 5.0,
    source: str = "rows",
    progress: bool = True,
) -> tuple[list[dict], dict]:
    """Generate `num_samples` answers per problem, check each against the reference.

    Returns (records, summary). One record per problem: id, prompt, reference, and per
    sample its generation, extracted answer, correctness and the verdict's reason.
    The summary holds accuracy (first sample) with its 95% Wilson interval, pass@k for
    k = 1, 2, 4, ..., num_samples when num_samples > 1, and timings.
    """
    if num_samples < 1:
        raise ValueError(f"num_samples must be >= 1, got {num_samples}")
    if num_samples > 1 and temperature == 0:
        raise ValueError("num_samples > 1 needs sampling: set temperature > 0 (greedy samples are all the same)")
    problems = math_problems(rows, source)
    if not problems:
        raise ValueError(f"{source}: no rows to evaluate")
    has_template = bool(getattr(tokenizer, "chat_template", None))
    if not has_template:
        logger.warning("The tokenizer has no chat template: prompting with plain 'Question: ... Answer:' text.")
    prompts = [
        [{"role": "user", "content": math_prompt(p)}] if has_template else f"Question: {math_prompt(p)}\nAnswer:"
        for p in problems
    ]

    started = time.perf_counter()
    options = {
        "max_new_tokens": max_new_tokens,
        "temperature": temperature,
        "top_p": top_p,
        "num_return_sequences": num_samples,
    }
    if _is_vllm(model):
        sampling = Sampling(num_samples, temperature, top_p, max_new_tokens)
        generations = generate_vllm(model, tokenizer, prompts, sampling, progress=progress)
    else:
        generations = generate(model, tokenizer, prompts, batch_size=batch_size, progress=progress, **options)
    generated = time.perf_counter()

    records = []
    for problem, samples in zip(problems, generations):
        verdicts = [grade(text, problem.reference, timeout_s=timeout_s) for text in samples]
        record = graded_record(problem.id, math_prompt(problem), problem.reference, samples, verdicts)
        records.append({**record, "reasons": [v.reason for v in verdicts]})
    verified = time.perf_counter()

    n = len(records)
    solved = sum(r["correct"][0] for r in records)
    low, high = wilson_interval(solved, n)
    summary = {
        "num_problems": n,
        "num_samples": num_samples,
        "num_correct": solved,
        "accuracy": solved / n,
        "accuracy_ci95": [low, high],
        "no_answer_rate": sum(r["extracted"][0] is None for r in records) / n,
        "temperature": temperature,
        "top_p": top_p,
        "max_new_tokens": max_new_tokens,
        "backend": "vllm" if _is_vllm(model) else "transformers",
        "generation_s": round(generated - started, 3),
        "verification_s": round(verified - generated, 3),
    }
    if num_samples > 1:
        summary["pass_at_k"] = {
            str(k): sum(pass_at_k(num_samples, sum(r["correct"]), k) for r in records) / n for k in _ks(num_samples)
        }
    return records, summary
