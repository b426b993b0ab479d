r"""The final answer of a solution or a model's reply, read from its marks.

    >>> extract_answer("4 + 5 = 9 apples.\n#### 9")
    '9'
    >>> last_boxed(r"so $x = \boxed{\frac{1}{2}}$")
    '\\frac{1}{2}'

Marks, tried in order: the last `#### x` (GSM8K), the last `\boxed{x}` or `\fbox{x}`
(nested braces kept), the last "the answer is x"; optionally the last number. Pure text,
no imports beyond `re`: the data checks, the graders (`cadft.evaluation.grading`) and the
math-verify helper process all read answers here.

Every pattern runs in linear time: no two adjacent quantifiers can match the same
characters, so a failed match backtracks over each character at most once. A pattern
like `[A-Za-z]{2,}[A-Za-z ]*` would split a long word in every way before failing, which
is quadratic (a 40k-character reply took a minute).
"""

from __future__ import annotations

import re

__all__ = ["clean_answer", "extract_answer", "last_boxed"]

_GSM8K_MARK = re.compile(r"####[ \t]*([^\n]*)")
# After "answer is"/"answer:", whitespace and at most one more colon; the capture may start
# with a space, which `clean_answer` strips
_ANSWER_IS = re.compile(r"answer\s*(?:is|:)\s*(?::\s*)?([^\n]+)", re.IGNORECASE)
_NUMBER = re.compile(r"-?\d+(?:,\d{3})*(?:\.\d+)?|-?\.\d+")
# A number followed by a unit word of two letters or more: `18 dollars`, not `3 x`
_LEADING_NUMBER = re.compile(r"^\$?\s*(-?\d[\d,]*(?:\.\d+)?)(?:\s+[A-Za-z]{2}[A-Za-z ]*)?\.?$")
_THOUSANDS = re.compile(r"(?<=\d),(?=\d{3}(?!\d))")


def last_boxed(text: str) -> str | None:
    """Content of the last `\\boxed{...}` (or `\\fbox{...}`), nested braces included; None
    when there is none, it is empty, or it is unbalanced (the text was cut off inside it)."""
    start = max(text.rfind("\\boxed{"), text.rfind("\\fbox{"))
    if start < 0:
        return None
    i = text.index("{", start) + 1
    depth = 0
    for j in range(i, len(text)):
        if text[j] == "{":
            depth += 1
        elif text[j] == "}":
            if depth == 0:
                return text[i:j].strip() or None
            depth -= 1
    return None


def clean_answer(answer: str) -> str:
    """Trim a marked answer: surrounding `$`/space, a trailing period, thousands commas,
    and a unit after a plain number (`$18 dollars` -> `18`)."""
    answer = answer.strip().strip("$").strip()
    answer = answer[:-1].rstrip() if answer.endswith(".") else answer
    number = _LEADING_NUMBER.match(answer)
    if number:
        answer = number.group(1)
    if re.fullmatch(r"-?[\d,]+(?:\.\d+)?", answer):
        answer = _THOUSANDS.sub("", answer)
    return answer


def _last_match(pattern: re.Pattern):
    """A function returning the last match of `pattern` in a text (its group 1, if it has one), or None."""

    def last(text: str) -> str | None:
        found = pattern.findall(text)
        return found[-1] if found else None

    return last


def extract_answer(text: str, *, last_number: bool = True) -> str | None:
    """The final answer of a solution or a generation, as a string, or None.

    Tried in order: the last `#### x` (GSM8K), the last `\\boxed{x}` (nested braces
    kept), the last "the answer is x", and, when `last_number`, the last number in the
    text. The answer is trimmed: `$`, a trailing period, a unit after a number and
    thousands separators go (`#### $1,200 dollars.` -> `1200`). A mark with nothing left
    after trimming (`#### $`) counts as no mark: the answer is never an empty string.
    """
    finders = (_last_match(_GSM8K_MARK), last_boxed, _last_match(_ANSWER_IS))
    for find in (*finders, _last_match(_NUMBER)) if last_number else finders:
        found = find(text)
        answer = clean_answer(found) if found else ""
        if answer:
            return answer
    return None
