"""Moved: the grader is `cadft.evaluation.grading.grade` (with `extract="math_verify"` for the
benchmarks, which returns a `Verdict`). This module keeps the old import path and its
`(ok, extracted)` return working."""

from ..evaluation.grading import grade as _grade
from ..evaluation.grading import parse_reference

__all__ = ["grade", "parse_reference"]


def grade(generation: str, gold: list, *, timeout_s: int = 5) -> tuple[bool, str | None]:
    """(is the generation's final answer equivalent to `gold` (from `parse_reference`)?, the
    answer as math-verify extracted it, or None)."""
    verdict = _grade(generation, gold, extract="math_verify", timeout_s=timeout_s)
    return verdict.ok, verdict.extracted
