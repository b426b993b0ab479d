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
  decided by the `math-verify` library (`check_math`). It catches a wrong final number
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

Timeouts, so that one pathological answer (`9^{9^{9^{9}}}`) cannot hang a run: each
step of a `math` check (extracting the final answers, math-verify parsing each side,
comparing) is bounded with `signal.alarm`, which works only in the main thread and in
whole seconds; there a check takes at most about 4 x ceil(timeout_s). From any other
thread the whole check goes to a helper process (one per Python process, started on
first use in about a second), which is killed and replaced when `timeout_s` runs out.
Either way a timed-out check counts as a mismatch, and math-verify's timeout warning is
cut to one short line (it would otherwise carry the whole input). Answer extraction
itself runs in time linear in the text's length.
"""

from __future__ import annotations

import atexit
import importlib
import json
import logging
import math
import queue
import re
import signal
import subprocess
import sys
import threading
import warnings
from collections.abc import Callable
from dataclasses import dataclass

__all__ = ["VERIFIERS", "Verdict", "answers_match", "check_exact", "check_math", "extract_answer", "get_verifier"]

VERIFIERS = ("math", "exact", "none", "module:function")


@dataclass(frozen=True)
class Verdict:
    """The result of checking one candidate against a reference answer."""

    ok: bool
    reason: str  # one short human-readable line, shown in rewrite logs and eval records
    extracted: str | None = None  # the candidate's final answer as the verifier read it


# --------------------------------------------------------------------------- extraction

# Every pattern here runs in linear time: no two adjacent quantifiers can match the same
# characters, so a failed match backtracks over each character at most once. A pattern
# like `[A-Za-z]{2,}[A-Za-z ]*` would split a long word in every way before failing, which
# is quadratic (a 40k-character reply took a minute).
_GSM8K_MARK = re.compile(r"####[ \t]*([^\n]*)")
# After "answer is"/"answer:", whitespace and at most one more colon; the capture may start
# with a space, which `_clean` strips
_ANSWER_IS = re.compile(r"answer\s*(?:is|:)\s*(?::\s*)?([^\n]+)", re.IGNORECASE)
_NUMBER = re.compile(r"-?\d+(?:,\d{3})*(?:\.\d+)?|-?\.\d+")
# A number followed by a unit word of two letters or more: `18 dollars`, not `3 x`
_LEADING_NUMBER = re.compile(r"^\$?\s*(-?\d[\d,]*(?:\.\d+)?)(?:\s+[A-Za-z]{2}[A-Za-z ]*)?\.?$")
_THOUSANDS = re.compile(r"(?<=\d),(?=\d{3}(?!\d))")


def _last_boxed(text: str) -> str | None:
    """Content of the last `\\boxed{...}` (or `\\fbox{...}`), nested braces included."""
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
                return text[i:j].strip()
            depth -= 1
    return None  # unbalanced: the generation was cut off inside the box


def _clean(answer: str) -> str:
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


def extract_answer(text: str, *, last_number: bool = True) -> str | None:
    """The final answer of a solution or a generation, as a string, or None.

    Tried in order: the last `#### x` (GSM8K), the last `\\boxed{x}` (nested braces
    kept), the last "the answer is x", and, when `last_number`, the last number in the
    text. The answer is trimmed: `$`, a trailing period, a unit after a number and
    thousands separators go (`#### $1,200 dollars.` -> `1200`). A mark with nothing left
    after trimming (`#### $`) counts as no mark: the answer is never an empty string.
    """
    finders = (_last_match(_GSM8K_MARK), _last_boxed, _last_match(_ANSWER_IS))
    for find in (*finders, _last_match(_NUMBER)) if last_number else finders:
        found = find(text)
        answer = _clean(found) if found else ""
        if answer:
            return answer
    return None


def _last_match(pattern: re.Pattern):
    """A function returning the last match of `pattern` in a text (its group 1, if it has one), or None."""

    def last(text: str) -> str | None:
        found = pattern.findall(text)
        return found[-1] if found else None

    return last


# --------------------------------------------------------------------------- math-verify


class _ShortLogLines(logging.Filter):
    """Cuts math-verify's log records to one short line: its timeout warning
    ("Timeout during parsing: <input>") carries the whole input, megabytes for a runaway reply."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if len(message) > _LOG_LINE_CHARS or "\n" in message:
            first = message.splitlines()[0] if message.strip() else ""
            record.msg, record.args = f"{first[:_LOG_LINE_CHARS]}... ({len(message)} characters)", ()
        return True


logger = logging.getLogger(__name__)

_LOG_LINE_CHARS = 120
for _name in ("math_verify.parser", "math_verify.grader"):
    logging.getLogger(_name).addFilter(_ShortLogLines())


class _Timeout(Exception):
    """A step ran past its `signal.alarm` deadline."""


def _bounded(seconds: int, function, *args):
    """`function(*args)`, interrupted after `seconds` whole seconds by SIGALRM (the main
    thread only; where there is no SIGALRM it runs unbounded)."""
    if not hasattr(signal, "SIGALRM"):
        return function(*args)

    def interrupt(signum, frame):
        raise _Timeout

    previous = signal.signal(signal.SIGALRM, interrupt)
    signal.alarm(seconds)
    try:
        return function(*args)
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


def _answers(candidate: str, reference: str) -> tuple[str | None, str]:
    """(the candidate's marked final answer or None, the reference's answer)."""
    return extract_answer(candidate, last_number=False), extract_answer(reference, last_number=False) or reference.strip()


def _check_texts(candidate: str, reference: str, timeout_s: int) -> tuple[bool, str | None, str] | None:
    """Extraction, then math-verify, in the main thread: (equivalent?, the candidate's
    answer, the reference's answer), or None when extraction ran past `timeout_s`. Each
    step (extraction, parsing each side, comparing) is bounded by `timeout_s` whole seconds."""
    from math_verify import parse, verify

    try:
        answer, reference_answer = _bounded(timeout_s, _answers, candidate, reference)
    except _Timeout:
        return None
    gold = parse(f"\\boxed{{{reference_answer}}}", parsing_timeout=timeout_s)
    target = parse(f"\\boxed{{{answer}}}" if answer else candidate, parsing_timeout=timeout_s)
    extracted = answer or (target[-1] if target and isinstance(target[-1], str) else None)
    if not gold or not target:
        return False, extracted, reference_answer
    return bool(verify(gold, target, timeout_seconds=timeout_s)), extracted, reference_answer


class _VerifyWorker:
    """A helper process running `_check_texts` in its own main thread, so that the
    signal timeouts work there and a stuck call can be killed from here.

    It loads this file by path, not as `cadft.verifiers`, so it never imports the
    `cadft` package (and with it torch and TRL): it starts in about a second. Threads
    take turns with it; each waits at most its own `timeout_s` once its turn comes.
    """

    def __init__(self):
        self._lock = threading.Lock()
        self._proc: subprocess.Popen | None = None
        self._lines: queue.Queue[str | None] = queue.Queue()

    def _start(self) -> None:
        boot = (
            "import importlib.util, sys\n"
            "spec = importlib.util.spec_from_file_location('_cadft_verify_worker', sys.argv[1])\n"
            "module = importlib.util.module_from_spec(spec)\n"
            "sys.modules[spec.name] = module\n"
            "spec.loader.exec_module(module)\n"
            "module._serve()\n"
        )
        self._proc = subprocess.Popen(
            [sys.executable, "-c", boot, __file__],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            encoding="utf-8",
        )
        self._lines = queue.Queue()
        threading.Thread(target=self._pump, args=(self._proc.stdout, self._lines), daemon=True).start()

    @staticmethod
    def _pump(stream, lines: queue.Queue) -> None:
        for line in stream:
            lines.put(line)
        lines.put(None)  # end of stream: the worker exited

    def close(self) -> None:
        if self._proc is not None:
            self._proc.kill()
            self._proc.wait()
            self._proc = None

    def __call__(self, candidate: str, reference: str, timeout_s: float) -> tuple[bool, str | None, str] | None:
        """What `_check_texts` returns, or None when `timeout_s` ran out (worker killed)."""
        request = json.dumps({"candidate": candidate, "reference": reference, "timeout": max(1, math.ceil(timeout_s))})
        with self._lock:
            starting = self._proc is None or self._proc.poll() is not None
            if starting:
                self._start()
            try:
                self._proc.stdin.write(request + "\n")
                self._proc.stdin.flush()
                line = self._lines.get(timeout=timeout_s + (_STARTUP_ALLOWANCE_S if starting else 0.0))
            except (BrokenPipeError, queue.Empty):
                line = None
            if line is None:
                self.close()
                return None
            reply = json.loads(line)
            return None if reply is None else tuple(reply)


# Extra wait for the first request to a fresh worker, which must import math-verify first
_STARTUP_ALLOWANCE_S = 10.0
_worker = _VerifyWorker()
atexit.register(_worker.close)


def _serve() -> None:  # the worker's loop: one JSON request per stdin line, one reply per stdout line
    for line in sys.stdin:
        request = json.loads(line)
        result = _check_texts(request["candidate"], request["reference"], request["timeout"])
        print(json.dumps(result), flush=True)


def check_math(candidate: str, reference: str, *, timeout_s: float = 5.0) -> Verdict:
    """Is the final answer of `candidate` (a generation, a solution or a bare answer)
    equivalent to `reference` (a bare answer or a solution)?

    The candidate's answer is its `####`/`\\boxed{}`/"the answer is" answer; without
    one, math-verify reads the whole text (its last expression). The reference is
    read as an answer: its marked answer if it has one, else the whole text. Extraction
    runs inside the timeout too.
    """
    if timeout_s is None or timeout_s <= 0:
        raise ValueError(f"timeout_s must be > 0, got {timeout_s}")
    if not reference.strip():
        raise ValueError("the reference answer is empty")
    # The thread decides which timeout works: signal.alarm only exists for the main thread
    if threading.current_thread() is threading.main_thread():
        result = _check_texts(candidate, reference, max(1, math.ceil(timeout_s)))
    else:
        result = _worker(candidate, reference, timeout_s)
    if result is None:
        return Verdict(False, f"the check ran past {timeout_s:g} s; counted as a mismatch", None)
    ok, extracted, reference_answer = result
    if ok:
        return Verdict(True, "equivalent to the reference", extracted)
    if extracted is None:
        return Verdict(False, "no final answer found", None)
    return Verdict(False, f"answer {extracted!r} is not equivalent to the reference {reference_answer!r}", extracted)


def answers_match(prediction: str, reference: str, *, timeout_s: float = 5.0) -> bool:
    """True when the final answer of `prediction` is equivalent to `reference` (see
    `check_math`). Never hangs: a math-verify step past `timeout_s` means False."""
    return check_math(prediction, reference, timeout_s=timeout_s).ok


# --------------------------------------------------------------------------- exact match


def _normalise(answer: str) -> str:
    answer = _clean(answer).lower()
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
        raise TypeError(f"verifier {spec!r} must return a bool or a cadft.verifiers.Verdict, got {type(result)}")

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
