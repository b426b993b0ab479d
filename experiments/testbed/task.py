"""The synthetic task family of the testbed: chained integer arithmetic with a written solution.

A problem starts from a two-digit number and applies `num_ops` operations `+d` or `-d`
(d in 1..9), left to right, keeping every running total in [0, 99]. Its true answer is the
last total. The number of operations is the difficulty knob, the starting number a shift of
the inputs (the sets of the testbed, `training.py`):

    pre-training (the base policy):  1-5 ops, starts 10-99, long problems rare
    retention (forgetting):          1-2 ops, starts 10-99   disjoint from fine-tuning
    fine-tuning, ID:                 3 ops, starts 10-54     the base policy is middling here
    out of distribution:             3 ops, starts 55-99     starts no fine-tuning problem has

Solution styles, graded by their distance from the base policy's own (all correct, all end
with a checkable final answer):

    native  (the base policy's):  "37+5=42\\n42-8=34\\n#### 34"
    mild    (another marker):     "37+5=42\\n42-8=34\\n= 34"
    medium  (spaced, + marker):   "37 + 5 = 42\\n42 - 8 = 34\\n= 34"
    strong  (foreign):            "42=5+37, 34=42-8, ans: 34"   (result first, operands
                                   swapped, one line, another marker)
    wrong   (native, corrupted):  noise kind "answer" (only the final answer is off), "step"
                                   (one step's result is off and carried to the end), or
                                   "mixed" (either, at random)

Prompts and completions are chat messages, as TRL's conversational prompt-completion
format; every row keeps its true answer in `answer` and its demonstration kind in `kind`.

    rows = finetune_rows(512, {"mild": 0.1, "medium": 0.1, "strong": 0.1, "wrong": 0.2}, seed=0)
"""

from __future__ import annotations

import random
from dataclasses import dataclass

__all__ = [
    "KINDS",
    "STYLES",
    "NOISE_KINDS",
    "Problem",
    "sample_problem",
    "solution",
    "wrong_solution",
    "problems",
    "finetune_rows",
    "pretrain_rows",
    "chat_prompt",
    "HINT_PREFIX",
]

STYLES = ("native", "mild", "medium", "strong")  # correct styles, by distance from the base policy's
KINDS = STYLES + ("wrong",)
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


def sample_problem(rng: random.Random, num_ops: int, starts: tuple[int, int] = (10, 99)) -> Problem:
    start = rng.randint(*starts)
    total, ops = start, []
    for _ in range(num_ops):
        choices = [d for d in range(1, 10) if total + d <= 99] + [-d for d in range(1, 10) if total - d >= 0]
        op = rng.choice(choices)
        ops.append(op)
        total += op
    return Problem(start, tuple(ops))


def _steps(problem: Problem, totals: list[int]):
    """(before, sign, |op|, after) per operation, with `totals` as the running results."""
    befores = [problem.start] + totals[:-1]
    return [(b, "+" if op > 0 else "-", abs(op), a) for b, op, a in zip(befores, problem.ops, totals)]


def _lines(problem: Problem, totals: list[int], spaced: bool) -> list[str]:
    fmt = "{} {} {} = {}" if spaced else "{}{}{}={}"
    return [fmt.format(*step) for step in _steps(problem, totals)]


def solution(problem: Problem, style: str = "native") -> str:
    """The correct solution in one of `STYLES`."""
    if style == "native":
        return "\n".join(_lines(problem, problem.totals, False) + [f"#### {problem.answer}"])
    if style == "mild":
        return "\n".join(_lines(problem, problem.totals, False) + [f"= {problem.answer}"])
    if style == "medium":
        return "\n".join(_lines(problem, problem.totals, True) + [f"= {problem.answer}"])
    if style == "strong":
        parts = [f"{a}={o}+{b}" if s == "+" else f"{a}={b}-{o}" for b, s, o, a in _steps(problem, problem.totals)]
        return ", ".join(parts) + f", ans: {problem.answer}"
    raise ValueError(f"style={style!r}; choose one of {', '.join(STYLES)}")


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
        return "\n".join(_lines(problem, totals, False) + [f"#### {wrong}"]), wrong
    # one step's result is off; later steps carry the error with correct arithmetic
    k = rng.randrange(len(totals))
    shift = _offset(rng, totals[k]) - totals[k]
    bad = totals[:k] + [t + shift for t in totals[k:]]
    return "\n".join(_lines(problem, bad, False) + [f"#### {bad[-1]}"]), bad[-1]


def chat_prompt(question: str) -> list[dict]:
    return [{"role": "user", "content": question}]


def _row(problem: Problem, text: str, kind: str) -> dict:
    return {
        "prompt": chat_prompt(problem.question),
        "completion": [{"role": "assistant", "content": text}],
        "answer": str(problem.answer),
        "kind": kind,
    }


def problems(n: int, ops: tuple[int, int], seed: int, starts: tuple[int, int] = (10, 99)) -> list[Problem]:
    """`n` problems with a number of operations drawn uniformly in [ops[0], ops[1]], starting
    from a number drawn uniformly in [starts[0], starts[1]]."""
    rng = random.Random(seed)
    return [sample_problem(rng, rng.randint(*ops), starts) for _ in range(n)]


def finetune_rows(
    n: int, fractions: dict[str, float], *, noise_kind: str = "mixed", ops: tuple[int, int] = (3, 4),
    starts: tuple[int, int] = (10, 99), seed: int = 0,
) -> list[dict]:
    """The fine-tuning mixture: round(n * fractions[kind]) rows of each non-native kind
    (`mild`, `medium`, `strong`, `wrong`), the rest native, shuffled."""
    unknown = set(fractions) - set(KINDS[1:])
    if unknown or any(f < 0 for f in fractions.values()) or sum(fractions.values()) > 1:
        raise ValueError(f"need fractions >= 0 of {', '.join(KINDS[1:])} summing to <= 1, got {fractions}")
    rng = random.Random(seed)
    kinds = [k for k, f in fractions.items() for _ in range(round(n * f))]
    kinds += ["native"] * (n - len(kinds))
    rng.shuffle(kinds)
    rows = []
    for kind in kinds:
        problem = sample_problem(rng, rng.randint(*ops), starts)
        if kind == "wrong":
            text, _ = wrong_solution(problem, noise_kind, rng)
        else:
            text = solution(problem, kind)
        rows.append(_row(problem, text, kind))
    return rows


def pretrain_rows(n: int, *, op_weights: dict[int, float], hint_frac: float, seed: int) -> list[dict]:
    """Native-style demonstrations for the base policy, the number of operations drawn with
    `op_weights` (long problems rare: the skill exists but weakly). A fraction `hint_frac`
    carry a reference solution in a random style after `HINT_PREFIX` in the prompt, with the
    native solution as the target: the base policy learns to restate a reference in its own
    style, the skill that rewriting with `rewrite_generator="policy"` asks of it (the
    rewrite template is `{question}` + HINT_PREFIX + `{reference}`)."""
    rng = random.Random(seed)
    counts, weights = zip(*sorted(op_weights.items()))
    rows = []
    for _ in range(n):
        problem = sample_problem(rng, rng.choices(counts, weights)[0])
        row = _row(problem, solution(problem), "native")
        if rng.random() < hint_frac:
            row["prompt"] = chat_prompt(problem.question + HINT_PREFIX + solution(problem, rng.choice(STYLES)))
        rows.append(row)
    return rows
