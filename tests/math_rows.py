"""Small GSM8K- and MATH-500-format rows written for the tests, so that format tests need
no real data (the real files are only beside the checkout, see conftest's `shared_data`)."""

from __future__ import annotations

import json
from pathlib import Path


def gsm8k_rows(n: int) -> list[dict]:
    """n GSM8K rows (question, answer with <<calc>> notes and a '#### N' line); row i's
    final answer is gsm8k_answer(i)."""
    rows = []
    for i in range(n):
        a, b, price = 3 + i, 2 + i % 4, 2 + i % 3
        total = (a + b) * price
        rows.append({
            "question": f"Ravi picks {a} pears and then {b} more. He sells each pear for ${price}. "
                        "How many dollars does he earn?",
            "answer": f"Ravi has {a} + {b} = <<{a}+{b}={a + b}>>{a + b} pears.\n"
                      f"He earns {a + b} * {price} = $<<{a + b}*{price}={total}>>{total}.\n#### {total}",
        })
    return rows


def gsm8k_answer(i: int) -> str:
    return str((3 + i + 2 + i % 4) * (2 + i % 3))


# MATH-500 rows: problem, solution with a \boxed{} answer, answer, subject, level, unique_id
MATH_ROWS = [
    {
        "problem": "Write the point $(0,2)$ in polar coordinates $(r,\\theta)$ with $r > 0$.",
        "solution": "The distance to the origin is $2$ and the angle is a right angle, so the point is "
                    "$\\boxed{\\left( 2, \\frac{\\pi}{2} \\right)}.$",
        "answer": "\\left( 2, \\frac{\\pi}{2} \\right)",
        "subject": "Precalculus",
        "level": 2,
        "unique_id": "test/precalculus/1.json",
    },
    {
        "problem": "What is $\\frac{3}{4} - \\frac{1}{4}$?",
        "solution": "Both fractions have the denominator $4$, so the difference is "
                    "$\\frac{2}{4} = \\boxed{\\frac{1}{2}}$.",
        "answer": "\\frac{1}{2}",
        "subject": "Prealgebra",
        "level": 1,
        "unique_id": "test/prealgebra/2.json",
    },
    {
        "problem": "Solve $2x + 6 = 20$ for $x$.",
        "solution": "Subtracting $6$ gives $2x = 14$, so $x = \\boxed{7}$.",
        "answer": "7",
        "subject": "Algebra",
        "level": 1,
        "unique_id": "test/algebra/3.json",
    },
    {
        "problem": "How many positive divisors does $12$ have?",
        "solution": "They are $1, 2, 3, 4, 6, 12$: $\\boxed{6}$ in all.",
        "answer": "6",
        "subject": "Number Theory",
        "level": 2,
        "unique_id": "test/number_theory/4.json",
    },
]


def write_jsonl(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
    return path
