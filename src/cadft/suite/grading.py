r"""Reading the reference answers of the suite and grading generations with math-verify.

    gold = parse_reference("69,84")                  # a set: {69, 84}
    grade(r"... so the answers are \boxed{84, 69}", gold)   # (True, '84, 69')

The reference is parsed as the content of a `\boxed{}`, the generation as math-verify
reads any model output: the last `\boxed{}` first (several boxes become one set), else
its last LaTeX or plain expression. math-verify then compares them as mathematics:
`0.5` and `\frac12`, `27.0` and `27`, a set of answers in any order (`84, 69`), tuples,
intervals and unions (`(-\infty, 0) \cup \{1\}`), equations (`f(x) = 2x` against `2x`),
and it drops `\text{}` units (`45 \text{ minutes}` is `45`). A generation from which it
extracts nothing is *unparsable* (extracted None) and counts as wrong.

Timeouts: math-verify bounds each parse and comparison with `signal.alarm`, which only
works in the main thread; from another thread the steps run unbounded.
"""

from __future__ import annotations

import logging
import threading

__all__ = ["grade", "parse_reference"]

# math-verify logs every failed parse at WARNING; a 135M model's rambling would flood the log
logging.getLogger("math_verify").setLevel(logging.ERROR)


def _timeout(timeout_s: int) -> int | None:
    return timeout_s if threading.current_thread() is threading.main_thread() else None


def parse_reference(reference: str, *, timeout_s: int = 5) -> list:
    """math-verify's reading of a bare reference answer (LaTeX without `$`); [] if it reads nothing."""
    from math_verify import parse

    return parse(f"\\boxed{{{reference}}}", parsing_timeout=_timeout(timeout_s))


def grade(generation: str, gold: list, *, timeout_s: int = 5) -> tuple[bool, str | None]:
    """(is the generation's final answer equivalent to `gold`?, the answer as extracted, or
    None when math-verify finds no answer in the generation)."""
    from math_verify import parse, verify

    answer = parse(generation, parsing_timeout=_timeout(timeout_s))
    if not answer:
        return False, None
    extracted = answer[-1] if isinstance(answer[-1], str) else str(answer[0])
    return bool(verify(gold, answer, timeout_seconds=_timeout(timeout_s))), extracted
