"""Math problems to evaluate on: GSM8K and MATH rows, checked, with their reference answers.

    math_problems([{"question": "2 + 2?", "answer": "2 + 2 = 4\\n#### 4"}])[0].reference   # '4'

- GSM8K: `question` and `answer`, a worked solution ending in `#### x`; the reference is
  x without thousands separators.
- MATH / MATH-500: `problem` and `answer`, or `problem` and `solution`, whose last
  `\\boxed{}` is the reference.

A bad row raises `DataError` naming the field (and, through `check_problems` or
`math_problems`, the file and line or row). Light: no torch, so `cadft eval` checks its
data before it loads a model.
"""

from __future__ import annotations

from dataclasses import dataclass

from .validate import DataError, Table, text_field

__all__ = ["MathProblem", "check_problems", "math_problem", "math_problems"]


@dataclass(frozen=True)
class MathProblem:
    question: str
    reference: str  # the final answer, e.g. "18" or "\frac{\pi}{2}"
    kind: str  # "gsm8k" or "math": chooses the answer convention the prompt asks for
    id: str  # MATH-500's unique_id, else the row number


def math_problem(row: dict, number: int) -> MathProblem:
    """One GSM8K or MATH row as a problem; `number` (from 1) is its id unless it has a `unique_id`."""
    if not isinstance(row, dict):
        raise DataError(f"expected a JSON object, got {type(row).__name__}")
    if "question" in row:  # GSM8K
        question = text_field(row, "question")
        solution = text_field(row, "answer")
        if "####" not in solution:
            raise DataError("has no '#### <final answer>' line (GSM8K format)", field="answer")
        reference = solution.rsplit("####", 1)[1].strip().replace(",", "")
        if not reference:
            raise DataError("has nothing after '####' (GSM8K format)", field="answer")
        return MathProblem(question, reference, "gsm8k", str(number))
    if "problem" in row:  # MATH / MATH-500
        from .answers import extract_answer

        question = text_field(row, "problem")
        if "answer" in row:
            reference = text_field(row, "answer")
        elif "solution" in row:
            reference = extract_answer(text_field(row, "solution"), last_number=False)
            if reference is None:
                raise DataError("has no \\boxed{} answer, and the row no 'answer' field", field="solution")
        else:
            raise DataError("missing (MATH rows need problem + answer or solution)", field="answer")
        return MathProblem(question, reference.strip(), "math", str(row.get("unique_id", number)))
    raise DataError(
        f"unknown row format with fields {sorted(row)}; expected question + answer (GSM8K) "
        "or problem + answer (MATH-500)"
    )


def math_problems(rows: list[dict], source: str = "rows") -> list[MathProblem]:
    """Every row as a problem; a bad row raises a DataError naming `source`, the row (from 1)
    and the field."""
    return check_problems(Table(source, "row", list(rows), list(range(1, len(rows) + 1))))


def check_problems(table: Table) -> list[MathProblem]:
    """Every row of `table` as a problem, numbered by position (the id); errors say where."""
    problems = []
    for i, row in enumerate(table.rows):
        try:
            problems.append(math_problem(row, i + 1))
        except DataError as error:
            raise table.locate(error, i) from None
    return problems
