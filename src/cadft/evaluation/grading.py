r"""The grader: is a model's answer mathematically equal to a reference? Decided by math-verify.

    grade("Half of 36 is 18.\n#### 18", "18")
    # Verdict(ok=True, reason='equivalent to the reference', extracted='18')
    grade(r"so the answers are \boxed{84, 69}", "69,84", extract="math_verify").ok   # True

`cadft eval --dataset_path`, `cadft eval --benchmark` and the rewriting's `math` verifier
(`cadft.evaluation.verifiers`) all call `grade`. They differ in one explicit choice, `extract`: how
the candidate's final answer is found.

- `"marked"` (`cadft eval --dataset_path`, the rewriting): the candidate's marked answer
  (`#### x`, the last `\boxed{x}`, "the answer is x"; `cadft.data.answers`), read as
  `\boxed{x}`; without a mark math-verify reads the whole text (its last expression). The
  reference is read the same way: its marked answer if it has one, else the whole text.
- `"math_verify"` (the benchmarks): math-verify reads the candidate as it reads any model
  output: the last `\boxed{}` first (several boxes become one set), else its last LaTeX or
  plain expression. The reference is a bare answer, read as `\boxed{reference}`; it may
  also be given already parsed (`parse_reference`), to read a problem's reference once
  for all its samples.

math-verify then compares them as mathematics: `0.5` and `\frac12`, `1,000` and `1000`,
`27.0` and `27`, a set of answers in any order, tuples, intervals and unions, equations
(`f(x) = 2x` against `2x`); it drops `\text{}` units (`45 \text{ minutes}` is `45`). It does
not check the reasoning. A candidate from which nothing is read (`extracted` None) is wrong.

Timeouts, so that one pathological answer (`9^{9^{9^{9}}}`) cannot hang a run: each step
(extracting the marked answers, math-verify parsing each side, comparing) is bounded with
`signal.alarm`, which works only in the main thread and in whole seconds; there a check
takes at most about 4 x ceil(timeout_s). From any other thread the whole check goes to a
helper process (one per Python process, started on first use in about a second), which is
killed and replaced when `timeout_s` runs out; a reference given already parsed cannot
travel there, so off the main thread such a check runs unbounded. A timed-out check counts
as a mismatch, and math-verify's timeout warning is cut to one short line (it would
otherwise carry the whole input).
"""

from __future__ import annotations

import atexit
import json
import logging
import math
import queue
import signal
import subprocess
import sys
import threading
from dataclasses import dataclass
from pathlib import Path

from ..data.answers import extract_answer

__all__ = ["EXTRACT", "Verdict", "grade", "graded_record", "parse_reference"]

EXTRACT = ("marked", "math_verify")


@dataclass(frozen=True)
class Verdict:
    """The result of checking one candidate against a reference answer."""

    ok: bool
    reason: str  # one short human-readable line, shown in rewrite logs and eval records
    extracted: str | None = None  # the candidate's final answer as the grader read it


class _ShortLogLines(logging.Filter):
    """Cuts math-verify's log records to one short line: its timeout warning
    ("Timeout during parsing: <input>") carries the whole input, megabytes for a runaway reply."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if len(message) > _LOG_LINE_CHARS or "\n" in message:
            first = message.splitlines()[0] if message.strip() else ""
            record.msg, record.args = f"{first[:_LOG_LINE_CHARS]}... ({len(message)} characters)", ()
        return True


_LOG_LINE_CHARS = 120
for _name in ("math_verify.parser", "math_verify.grader"):
    logging.getLogger(_name).addFilter(_ShortLogLines())


class _Timeout(Exception):
    """A step ran past its `signal.alarm` deadline."""


def _bounded(seconds: int | None, function, *args):
    """`function(*args)`, interrupted after `seconds` whole seconds by SIGALRM (the main
    thread only; with no SIGALRM, or `seconds` None, it runs unbounded)."""
    if seconds is None or not hasattr(signal, "SIGALRM"):
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


def _whole_seconds(timeout_s: float) -> int | None:
    """math-verify's timeouts: whole seconds in the main thread, none elsewhere (signal.alarm)."""
    return max(1, math.ceil(timeout_s)) if threading.current_thread() is threading.main_thread() else None


def parse_reference(reference: str, *, timeout_s: float = 5) -> list:
    """math-verify's reading of a bare reference answer (LaTeX without `$`); [] if it reads nothing."""
    from math_verify import parse

    return parse(f"\\boxed{{{reference}}}", parsing_timeout=_whole_seconds(timeout_s))


def _marked_answers(candidate: str, reference: str) -> tuple[str | None, str]:
    """(the candidate's marked final answer or None, the reference's answer)."""
    reference_answer = extract_answer(reference, last_number=False) or reference.strip()
    return extract_answer(candidate, last_number=False), reference_answer


def _shown(gold: list) -> str:
    return gold[-1] if gold and isinstance(gold[-1], str) else str(gold[0]) if gold else ""


def _judge(candidate: str, reference: str | list, extract: str, timeout_s: int | None):
    """The check itself, in this thread: (equivalent?, the candidate's answer, the reference's
    answer), or None when extracting the marked answers ran past `timeout_s`. Each step is
    bounded by `timeout_s` whole seconds (None: unbounded)."""
    from math_verify import parse, verify

    if extract == "marked":
        try:
            answer, reference_answer = _bounded(timeout_s, _marked_answers, candidate, reference)
        except _Timeout:
            return None
        gold = parse(f"\\boxed{{{reference_answer}}}", parsing_timeout=timeout_s)
        target = parse(f"\\boxed{{{answer}}}" if answer else candidate, parsing_timeout=timeout_s)
        extracted = answer or (target[-1] if target and isinstance(target[-1], str) else None)
    else:
        parsed = isinstance(reference, list)
        gold = reference if parsed else parse(f"\\boxed{{{reference}}}", parsing_timeout=timeout_s)
        reference_answer = _shown(gold) if parsed else reference
        target = parse(candidate, parsing_timeout=timeout_s)
        extracted = (target[-1] if isinstance(target[-1], str) else str(target[0])) if target else None
    if not gold or not target:
        return False, extracted, reference_answer
    return bool(verify(gold, target, timeout_seconds=timeout_s)), extracted, reference_answer


class _VerifyWorker:
    """A helper process running `_judge` in its own main thread, so that the signal
    timeouts work there and a stuck call can be killed from here.

    It imports `cadft.evaluation.grading` from this file's source folder, which loads only
    this module, `cadft.data` (plain text) and math-verify: the `cadft` package loads
    torch and TRL on first use only. It starts in about a second. Threads take turns with
    it; each waits at most its own `timeout_s` once its turn comes.
    """

    def __init__(self):
        self._lock = threading.Lock()
        self._proc: subprocess.Popen | None = None
        self._lines: queue.Queue[str | None] = queue.Queue()

    def _start(self) -> None:
        boot = "import sys\nsys.path.insert(0, sys.argv[1])\nfrom cadft.evaluation import grading\ngrading._serve()\n"
        source = str(Path(__file__).resolve().parents[2])  # the folder holding `cadft`
        self._proc = subprocess.Popen(
            [sys.executable, "-c", boot, source],
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

    def __call__(self, candidate: str, reference: str, extract: str, timeout_s: float):
        """What `_judge` returns, or None when `timeout_s` ran out (worker killed)."""
        request = json.dumps({"candidate": candidate, "reference": reference, "extract": extract,
                              "timeout": max(1, math.ceil(timeout_s))})
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
        result = _judge(request["candidate"], request["reference"], request["extract"], request["timeout"])
        print(json.dumps(result), flush=True)


def grade(candidate: str, reference: str | list, *, extract: str = "marked", timeout_s: float = 5.0) -> Verdict:
    """Is the final answer of `candidate` (a generation, a solution or a bare answer)
    equivalent to `reference`? `extract` says how each answer is read (module docstring):
    `"marked"` (the reference a bare answer or a solution) or `"math_verify"` (the reference
    a bare answer, or `parse_reference`'s reading of one). A check past `timeout_s` is a mismatch.
    """
    if extract not in EXTRACT:
        raise ValueError(f"unknown extract {extract!r}; choose one of: {', '.join(EXTRACT)}")
    if timeout_s is None or timeout_s <= 0:
        raise ValueError(f"timeout_s must be > 0, got {timeout_s}")
    if isinstance(reference, str) and not reference.strip():
        raise ValueError("the reference answer is empty")
    if isinstance(reference, list) and extract != "math_verify":
        raise ValueError("a parsed reference (parse_reference) goes with extract='math_verify'")
    # The thread decides which timeout works: signal.alarm only exists for the main thread
    seconds = _whole_seconds(timeout_s)
    if seconds is not None or isinstance(reference, list):
        result = _judge(candidate, reference, extract, seconds)
    else:
        result = _worker(candidate, reference, extract, timeout_s)
    if result is None:
        return Verdict(False, f"the check ran past {timeout_s:g} s; counted as a mismatch", None)
    ok, extracted, reference_answer = result
    if ok:
        return Verdict(True, "equivalent to the reference", extracted)
    if extracted is None:
        return Verdict(False, "no final answer found", None)
    return Verdict(False, f"answer {extracted!r} is not equivalent to the reference {reference_answer!r}", extracted)


def graded_record(problem_id, prompt: str, reference: str, samples: list[str], verdicts: list[Verdict]) -> dict:
    """The results record of one problem, as `cadft eval` writes it with and without
    --benchmark: its samples, what was extracted from each, and the verdicts."""
    return {
        "id": problem_id,
        "prompt": prompt,
        "reference": reference,
        "generations": samples,
        "extracted": [v.extracted for v in verdicts],
        "correct": [v.ok for v in verdicts],
    }
