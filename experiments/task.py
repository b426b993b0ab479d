"""The synthetic task family of the testbed: chained integer arithmetic with a written solution.

A problem starts from a two-digit number and applies `num_ops` operations `+d` or `-d`
(d in 1..9), left to right, keeping every running total in [0, 99]. Its true answer is the
last total. The number of operations is the difficulty knob:

    easy (pre-training, retention):  1-2 ops     "37+5-8=?"
    fine-tuning (new, harder):       3-4 ops
    out of distribution (longer):    5-6 ops

Solution styles (all end with a checkable final answer):

    native  (the base policy's own):  "37+5=42\\n42-8=34\\n#### 34"
    foreign (correct, incompatible):  "42=5+37, 34=42-8, ans: 34"  (result first, operands
                                       swapped, one line, a different answer marker)
    wrong   (native, corrupted):      noise kind "answer" (only the final answer is off),
                                       "step" (one step's result is off and the error is
                                       carried to the end), or "mixed" (either, at random)

Prompts and completions are chat messages, as TRL's conversational prompt-completion
format; every row keeps its true answer in `answer` and its demonstration kind in `kind`.

    rows = finetune_rows(512, frac_incompatible=0.3, frac_wrong=0.2, seed=0)
"""

from __future__ import annotations

import random
from dataclasses import dataclass

__all__ = [
    "KINDS",
    "NOISE_KINDS",
    "Problem",
    "sample_problem",
    "native_solution",
    "foreign_solution",
    "wrong_solution",
    "problems",
    "finetune_rows",
    "pretrain_rows",
    "chat_prompt",
    "HINT_PREFIX",
]

KINDS = ("compatible", "incompatible", "wrong")
NOISE_KINDS = ("answer", "step", "mixed")
HINT_PREFIX = "\nref: "  # rewrite prompt: the question, then the reference after this marker


@dataclass(frozen=True)
class Problem:
    start: int
    ops: tuple[int, ...]  # signed operands, e.g. (+5, -8)

    @property
    def totals(self) -> list[int]:
        out, total = [], self.start
        for op in self.ops:
            total += op
            out.append(total)
        return out

    @property
    def answer(self) -> int:
        return self.totals[-1]

    @property
    def question(self) -> str:
        return f"{self.start}" + "".join(f"{op:+d}" for op in self.ops) + "=?"


def sample_problem(rng: random.Random, num_ops: int) -> Problem:
    start = rng.randint(10, 99)
    total, ops = start, []
    for _ in range(num_ops):
        choices = [d for d in range(1, 10) if total + d <= 99] + [-d for d in range(1, 10) if total - d >= 0]
        op = rng.choice(choices)
        ops.append(op)
        total += op
    return Problem(start, tuple(ops))


def _native_lines(problem: Problem, totals: list[int]) -> list[str]:
    lines, before = [], problem.start
    for op, after in zip(problem.ops, totals):
        lines.append(f"{before}{'+' if op > 0 else '-'}{abs(op)}={after}")
        before = after
    return lines


def native_solution(problem: Problem) -> str:
    return "\n".join(_native_lines(problem, problem.totals) + [f"#### {problem.answer}"])


def foreign_solution(problem: Problem) -> str:
    parts, before = [], problem.start
    for op, after in zip(problem.ops, problem.totals):
        parts.append(f"{after}={abs(op)}+{before}" if op > 0 else f"{after}={before}-{abs(op)}")
        before = after
    return ", ".join(parts) + f", ans: {problem.answer}"


def _offset(rng: random.Random, value: int) -> int:
    candidates = [value + d for d in (-3, -2, -1, 1, 2, 3) if 0 <= value + d <= 99]
    return rng.choice(candidates)


def wrong_solution(problem: Problem, noise_kind: str, rng: random.Random) -> tuple[str, int]:
    """A native-style solution with a corrupted answer; returns (text, its wrong answer)."""
    if noise_kind not in NOISE_KINDS:
        raise ValueError(f"noise_kind={noise_kind!r}; choose one of {', '.join(NOISE_KINDS)}")
    kind = rng.choice(("answer", "step")) if noise_kind == "mixed" else noise_kind
    totals = problem.totals
    if kind == "answer":
        wrong = _offset(rng, problem.answer)
        return "\n".join(_native_lines(problem, totals) + [f"#### {wrong}"]), wrong
    # one step's result is off; later steps carry the error with correct arithmetic
    k = rng.randrange(len(totals))
    shift = _offset(rng, totals[k]) - totals[k]
    bad = totals[:k] + [t + shift for t in totals[k:]]
    return "\n".join(_native_lines(problem, bad) + [f"#### {bad[-1]}"]), bad[-1]


def chat_prompt(question: str) -> list[dict]:
    return [{"role": "user", "content": question}]


def _row(problem: Problem, text: str, kind: str) -> dict:
    return {
        "prompt": chat_prompt(problem.question),
        "completion": [{"role": "assistant", "content": text}],
        "answer": str(problem.answer),
        "kind": kind,
    }


def problems(n: int, ops: tuple[int, int], seed: int) -> list[Problem]:
    """`n` problems with a number of operations drawn uniformly in [ops[0], ops[1]]."""
    rng = random.Random(seed)
    return [sample_problem(rng, rng.randint(*ops)) for _ in range(n)]


def finetune_rows(
    n: int,
    *,
    frac_incompatible: float,
    frac_wrong: float,
    noise_kind: str = "mixed",
    ops: tuple[int, int] = (3, 4),
    seed: int = 0,
) -> list[dict]:
    """The fine-tuning mixture: exact counts round(n * frac) of each kind, shuffled."""
    if not (0 <= frac_incompatible and 0 <= frac_wrong and frac_incompatible + frac_wrong <= 1):
        raise ValueError(f"need fractions >= 0 summing to <= 1, got {frac_incompatible} and {frac_wrong}")
    rng = random.Random(seed)
    n_inc, n_wrong = round(n * frac_incompatible), round(n * frac_wrong)
    kinds = ["incompatible"] * n_inc + ["wrong"] * n_wrong + ["compatible"] * (n - n_inc - n_wrong)
    rng.shuffle(kinds)
    rows = []
    for kind in kinds:
        problem = sample_problem(rng, rng.randint(*ops))
        if kind == "compatible":
            text = native_solution(problem)
        elif kind == "incompatible":
            text = foreign_solution(problem)
        else:
            text, _ = wrong_solution(problem, noise_kind, rng)
        rows.append(_row(problem, text, kind))
    return rows


def pretrain_rows(n: int, *, ops: tuple[int, int], hint_frac: float, seed: int) -> list[dict]:
    """Native-style demonstrations of easy problems for the base policy. A fraction
    `hint_frac` carry a reference solution (native or foreign) after `HINT_PREFIX` in the
    prompt, with the native solution as the target: the base policy learns to restate a
    reference in its own style, the skill that rewriting with `rewrite_generator="policy"`
    asks of it (the rewrite template is `{question}` + HINT_PREFIX + `{reference}`)."""
    rng = random.Random(seed)
    rows = []
    for _ in range(n):
        problem = sample_problem(rng, rng.randint(*ops))
        row = _row(problem, native_solution(problem), "compatible")
        if rng.random() < hint_frac:
            reference = foreign_solution(problem) if rng.random() < 0.5 else native_solution(problem)
            row["prompt"] = chat_prompt(problem.question + HINT_PREFIX + reference)
        rows.append(row)
    return rows
