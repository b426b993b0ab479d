r"""Final-answer extraction and checking for math problems.

    >>> extract_answer("4 + 5 = 9 apples.\n#### 9")
    '9'
    >>> answers_match("so the answer is $\\boxed{\\frac{1}{2}}$", "0.5")
    True
    >>> check = get_verifier("math")
    >>> check("... #### 18", "18")
    Verdict(ok=True, reason='equivalent to the reference', extracted='18')

A verifier is a callable `(candidate_text, reference_answer) -> Verdict`. The rewriting
round uses one to decide whether a rewritten demonstration may replace the original.
`get_verifier(spec)` builds one:

- `math`: the candidate's final answer is mathematically equivalent to the reference,
  decided by the `math-verify` library (`check_math`, which is the evaluation's grader
  `cadft.evaluation.grading.grade` reading marked answers). It catches a wrong final number
  or expression and accepts equivalent forms (`0.5`, `1/2` and `\frac{1}{2}`; `1,000`
  and `1000`; `\$18` and `18`; `(3, \frac{\pi}{2})` written with `\left(`...`\right)`;
  `2(x+1)` and `2x+2`). It does NOT check the reasoning: a wrong derivation that lands
  on the right answer passes, and so does a bare answer with no solution at all. It
  also drops units (`12 \text{ cm}^2` matches `12`). Without a marked answer it reads
  the text's last expression; text it cannot parse as maths is compared as a string,
  and a check that runs past its timeout counts as a mismatch.
- `exact`: the candidate's final answer (`#### x`, `\boxed{x}` or "the answer is x";
  otherwise its last non-empty line) equals the reference after light normalisation:
  case, whitespace, `$`, `\text{}`, `\left`/`\right`, `\dfrac`, thousands separators,
  a trailing period, trailing decimal zeros, a unit word after a number. No maths, so
  `0.5` and `\frac{1}{2}` differ: stricter than `math`, for answers that are labels or
  words. It does not check the reasoning either.
- `none`: accepts everything (and warns when built): rewrites are not verified at all.
- `module:function`: your own `function(candidate_text, reference_answer)` returning a
  bool or a `Verdict`; it catches whatever it checks. The module must be importable
  (for a file in the current directory, run with `PYTHONPATH=.`).

Where the code lives: answer extraction in `cadft.data.answers` (linear time in the
text's length), the `math` check and its timeouts (a check past `timeout_s` is a
mismatch, also off the main thread) in `cadft.evaluation.grading`; this module holds the
verifiers built on them and re-exports those names.
"""

from __future__ import annotations

import importlib
import logging
import re
import warnings
from collections.abc import Callable

from ..data.answers import clean_answer, extract_answer
from .grading import Verdict, grade

__all__ = ["VERIFIERS", "Verdict", "answers_match", "check_exact", "check_math", "extract_answer", "get_verifier"]

VERIFIERS = ("math", "exact", "none", "module:function")

logger = logging.getLogger(__name__)

# The `math` check is the evaluation's grader, reading marked answers (its default `extract`)
check_math = grade


def answers_match(prediction: str, reference: str, *, timeout_s: float = 5.0) -> bool:
    """True when the final answer of `prediction` is equivalent to `reference` (see
    `check_math`). Never hangs: a math-verify step past `timeout_s` means False."""
    return check_math(prediction, reference, timeout_s=timeout_s).ok


# --------------------------------------------------------------------------- exact match


def _normalise(answer: str) -> str:
    answer = clean_answer(answer).lower()
    answer = re.sub(r"\\text\{([^{}]*)\}", r"\1", answer)
    answer = re.sub(r"\\[dt]frac", r"\\frac", answer)
    answer = re.sub(r"\\left|\\right|\\[,;! ]|\s+", "", answer)
    answer = answer.replace("$", "")
    if re.fullmatch(r"-?\d+\.\d+", answer):
        answer = answer.rstrip("0").rstrip(".")
    return answer


def check_exact(candidate: str, reference: str) -> Verdict:
    """The candidate's marked final answer, or else its last non-empty line, equals the
    reference's answer after normalisation (no maths: `0.5` != `1/2`)."""
    answer = extract_answer(candidate, last_number=False)
    if answer is None:
        lines = [line for line in candidate.splitlines() if line.strip()]
        answer = lines[-1].strip() if lines else None
    if answer is None:
        return Verdict(False, "empty candidate", None)
    reference_answer = extract_answer(reference, last_number=False) or reference
    if _normalise(answer) == _normalise(reference_answer):
        return Verdict(True, "same final answer as the reference", answer)
    return Verdict(False, f"final answer {answer!r} differs from the reference {reference_answer.strip()!r}", answer)


# --------------------------------------------------------------------------- factory


def _accept_all(candidate: str, reference: str) -> Verdict:
    return Verdict(True, "not verified (verifier 'none')", extract_answer(candidate))


def _user_verifier(spec: str) -> Callable[[str, str], Verdict]:
    module_name, _, attribute = spec.partition(":")
    if not module_name or not attribute:
        raise ValueError(f"verifier {spec!r}: expected 'module:function', e.g. 'my_checks:is_correct'")
    try:
        module = importlib.import_module(module_name)
    except ImportError as e:
        raise ValueError(
            f"verifier {spec!r}: cannot import module {module_name!r} ({e}). It must be importable from "
            "sys.path; for a file in the current directory run with PYTHONPATH=."
        ) from e
    function = getattr(module, attribute, None)
    if function is None:
        raise ValueError(f"verifier {spec!r}: module {module_name!r} ({module.__file__}) has no {attribute!r}")
    if not callable(function):
        raise TypeError(f"verifier {spec!r}: {attribute!r} is a {type(function).__name__}, not a function")

    def verify(candidate: str, reference: str) -> Verdict:
        try:
            result = function(candidate, reference)
        except Exception as error:  # noqa: BLE001 - one candidate's failed check must not stop a round
            first = (str(error).strip().splitlines() or [""])[0][:200]
            logger.warning("verifier %s raised %s: %s; the candidate counts as a mismatch", spec,
                           type(error).__name__, first)
            return Verdict(False, f"{spec} raised {type(error).__name__}: {first}; counted as a mismatch", None)
        if isinstance(result, Verdict):
            return result
        if isinstance(result, bool):
            return Verdict(result, f"{spec} returned {result}", extract_answer(candidate))
        raise TypeError(f"verifier {spec!r} must return a bool or a cadft.evaluation.verifiers.Verdict, got {type(result)}")

    return verify


def get_verifier(spec: str, *, timeout_s: float = 5.0) -> Callable[[str, str], Verdict]:
    """A verifier `(candidate_text, reference_answer) -> Verdict` from its name:
    `math`, `exact`, `none` or `module:function` (see the module docstring).
    `timeout_s` bounds each math-verify step of `math`."""
    if spec == "math":
        return lambda candidate, reference: check_math(candidate, reference, timeout_s=timeout_s)
    if spec == "exact":
        return check_exact
    if spec == "none":
        warnings.warn(
            "verifier 'none': rewrites are accepted without any check, so a rewrite with a wrong answer "
            "can replace a correct demonstration",
            UserWarning,
            stacklevel=2,
        )
        return _accept_all
    if ":" in spec:
        return _user_verifier(spec)
    raise ValueError(f"unknown verifier {spec!r}; choose one of: {', '.join(VERIFIERS)}")
