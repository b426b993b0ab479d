r"""The five math benchmarks of the DFT / CADFT papers: where their files are, how each
row's question and reference answer are read, and the prompt.

    problems = load_problems("olympiadbench", limit=5)
    problems[0].reference, problems[0].several_answers

| name | folder (`../shared/data/`) | reference answer |
|---|---|---|
| `math500` | `math500/test.jsonl` | `answer` (LaTeX) |
| `minerva` | `minerva_math/test.jsonl` | the last `\boxed{}` of `solution` (no answer field) |
| `olympiadbench` | `olympiadbench/test.jsonl` | `final_answer`, a list of LaTeX strings, `$` dropped, |
|   |   | several answers joined by commas |
| `aime24` | `aime24/test.jsonl` | `answer`, an integer 0-999 written as a string (`"025"` is 25) |
| `amc23` | `amc23/test.jsonl` | `answer`, a float (`27.0` is 27) |

Where a benchmark's rows come from, first found: the path given (a `.jsonl` file, or a
folder holding `test.jsonl` or `<folder>/test.jsonl`; only the latter where several
benchmarks share the folder, `nested`), then `$CADFT_SHARED_DATA/<folder>`,
then `../shared/data/<folder>` (from the current directory), else the hub dataset
`HUB[name]` through `datasets.load_dataset`.

Every row must give a question and a reference that math-verify can read; any row that
does not stops the run with a `DataError` naming the file, the line and the field.
Nothing is skipped. Light: math-verify is imported only to check the references.
"""

from __future__ import annotations

import hashlib
import logging
import math
import os
import re
from dataclasses import dataclass
from pathlib import Path

from ..data.answers import last_boxed
from ..data.files import read_table
from ..data.validate import DataError, Table, described, text_field
from .grading import parse_reference

# math-verify logs every failed parse at WARNING; a 135M model's rambling would flood the log
logging.getLogger("math_verify").setLevel(logging.ERROR)

__all__ = ["BENCHMARKS", "FOLDERS", "HUB", "PAPER", "Problem", "load_problems", "locate", "prompt_text",
           "reference_of", "shared_data_dir"]

PAPER = ("math500", "minerva", "olympiadbench", "aime24", "amc23")
BENCHMARKS = (*PAPER, "paper")
FOLDERS = {"math500": "math500", "minerva": "minerva_math", "olympiadbench": "olympiadbench",
           "aime24": "aime24", "amc23": "amc23"}
# Hub datasets (name, split) with the same rows as the files in ../shared/data; used only when no
# local copy is found. MATH-500 is byte-identical (shared/data/README.md); the other four are the
# math-ai mirrors of the Qwen2.5-Math evaluation files and were not reachable to check from here.
HUB = {"math500": ("HuggingFaceH4/MATH-500", "test"), "minerva": ("math-ai/minervamath", "test"),
       "olympiadbench": ("math-ai/olympiadbench", "test"), "aime24": ("math-ai/aime24", "test"),
       "amc23": ("math-ai/amc23", "test")}
_QUESTION = {"math500": "problem", "minerva": "problem", "olympiadbench": "question", "aime24": "problem",
             "amc23": "problem"}
_ID = {"math500": "unique_id", "minerva": "idx", "olympiadbench": "id", "aime24": "id", "amc23": "id"}

INSTRUCTION = "Solve the problem step by step. Put the final answer in \\boxed{}."
SEVERAL = "The problem has more than one answer: put all of them in the \\boxed{}, separated by commas."
UNIT = "The answer is in {unit}; leave the unit out of the \\boxed{{}}."


@dataclass(frozen=True)
class Problem:
    benchmark: str
    id: str  # the row's own id (unique_id, idx, id), else its line number
    question: str
    reference: str  # the reference answer as LaTeX, as math-verify reads it
    several_answers: bool = False  # OlympiadBench's is_multiple_answer
    unit: str | None = None  # OlympiadBench's unit


# --------------------------------------------------------------------------- reference answers


def _integer(value, field: str) -> str:
    """AIME: an integer, written as a string of digits (leading zeros allowed) or a number."""
    if isinstance(value, str) and re.fullmatch(r"\s*\d+\s*", value):
        return str(int(value))
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    raise DataError(f"must be an integer answer (AIME answers are 0-999), got {described(value)}", field=field)


def _number(value, field: str) -> str:
    """AMC: a number, usually a float such as 27.0; an integral float is written as an integer."""
    if isinstance(value, str):
        try:
            value = float(value)
        except ValueError:
            raise DataError(f"must be a number, got {described(value)}", field=field) from None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise DataError(f"must be a finite number, got {described(value)}", field=field)
    return str(int(value)) if float(value).is_integer() else repr(float(value))


def _minerva_latex(answer: str) -> str:
    """Minerva's answers are partly written as code: `4.5e33`, `np.arcsin(10/13)`, `-1./3`.
    As LaTeX: `4.5\\times10^{33}`, `\\arcsin(10/13)`, `-1/3` (math-verify reads `e` as Euler's number)."""
    answer = re.sub(r"(?<![\w.])(\d+(?:\.\d*)?)e([+-]?\d+)\b", r"\1\\times10^{\2}", answer)
    answer = re.sub(r"\bnp\.", r"\\", answer)
    return re.sub(r"(\d)\.(?!\d)", r"\1", answer)


def _olympiad(value, field: str) -> str:
    """OlympiadBench: a list of LaTeX strings in `$...$`; one string may itself hold several
    answers (`$69$,$84$`). The `$` and a final period go; answers are joined by commas."""
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not value or not all(isinstance(v, str) and v.strip() for v in value):
        raise DataError(f"must be a non-empty list of non-empty strings, got {described(value)}", field=field)
    parts = [re.sub(r"\.\s*$", "", v.replace("$", "").strip()).strip() for v in value]
    return ",".join(p for p in parts if p)


def reference_of(benchmark: str, row: dict) -> tuple[str, str]:
    """(the reference answer as LaTeX, the field it came from) of one row; DataError if none."""
    if benchmark == "math500":
        return text_field(row, "answer").strip(), "answer"
    if benchmark == "minerva":
        boxed = last_boxed(text_field(row, "solution"))
        if boxed is None:
            raise DataError("has no \\boxed{} answer (Minerva's reference is its last \\boxed{})", field="solution")
        return _minerva_latex(boxed), "solution"
    if benchmark == "olympiadbench":
        if "final_answer" not in row:
            raise DataError("missing", field="final_answer")
        return _olympiad(row["final_answer"], "final_answer"), "final_answer"
    if "answer" not in row:
        raise DataError("missing", field="answer")
    if benchmark == "aime24":
        return _integer(row["answer"], "answer"), "answer"
    if benchmark == "amc23":
        return _number(row["answer"], "answer"), "answer"
    raise ValueError(f"unknown benchmark {benchmark!r}; choose one of {', '.join(PAPER)}")


def _flag(row: dict, field: str) -> bool:
    value = row.get(field, False)
    if value is None:
        return False
    if not isinstance(value, bool):
        raise DataError(f"must be true or false, got {described(value)}", field=field)
    return value


def _unit(row: dict) -> str | None:
    value = row.get("unit")
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    if not isinstance(value, str):
        raise DataError(f"must be a string or null, got {described(value)}", field="unit")
    return value.strip()


def problem_of(benchmark: str, row: dict, number: int, *, check: bool = True, timeout_s: int = 5) -> Problem:
    """One row as a Problem; `check`: math-verify must read the reference (else DataError)."""
    if not isinstance(row, dict):
        raise DataError(f"expected a JSON object, got {described(row)}")
    question = text_field(row, _QUESTION[benchmark])
    reference, field = reference_of(benchmark, row)
    if check and not parse_reference(reference, timeout_s=timeout_s):
        raise DataError(f"math-verify cannot read the reference answer {reference!r}", field=field)
    identifier = row.get(_ID[benchmark])
    several = _flag(row, "is_multiple_answer") if benchmark == "olympiadbench" else False
    unit = _unit(row) if benchmark == "olympiadbench" else None
    return Problem(benchmark, str(number if identifier is None else identifier), question, reference, several, unit)


# --------------------------------------------------------------------------- where the rows are


def shared_data_dir() -> Path | None:
    """$CADFT_SHARED_DATA, else ../shared/data from the current directory, if it is a folder."""
    for candidate in (os.environ.get("CADFT_SHARED_DATA"), "../shared/data"):
        if candidate and Path(candidate).is_dir():
            return Path(candidate)
    return None


def locate(benchmark: str, path: str | Path | None = None, *, nested: bool = False) -> Path | tuple[str, str]:
    """The benchmark's file, or its (hub name, split) when no file is found (module docstring).
    `nested`: `path` is a folder of benchmark folders (several benchmarks share it), so its own
    `test.jsonl` is not this benchmark's."""
    folder = FOLDERS[benchmark]
    if path is not None:
        path = Path(path)
        if path.is_file() and not nested:
            return path
        candidates = [path / folder / "test.jsonl"] + ([] if nested else [path / "test.jsonl"])
        for candidate in candidates:
            if candidate.is_file():
                return candidate
        wanted = f"{folder}/test.jsonl" if nested else f"{folder}/test.jsonl or test.jsonl"
        raise DataError(f"no {wanted} here (give a folder holding the benchmarks' folders, or one benchmark's file)",
                        source=path)
    shared = shared_data_dir()
    if shared is not None and (shared / folder / "test.jsonl").is_file():
        return shared / folder / "test.jsonl"
    return HUB[benchmark]


def _hub_table(benchmark: str, name: str, split: str) -> Table:
    try:
        import datasets

        rows = list(datasets.load_dataset(name, split=split))
    except Exception as error:  # noqa: BLE001 - offline, unknown name, no such split: all one message
        first = (str(error).strip().splitlines() or [type(error).__name__])[0][:200]
        raise DataError(
            f"no local copy of {benchmark} (looked in $CADFT_SHARED_DATA and ../shared/data) and the hub dataset "
            f"could not be loaded ({type(error).__name__}: {first}); pass --benchmark_path FILE_OR_FOLDER",
            source=f"{name} [{split}]",
        ) from None
    return Table(f"{name} [{split}]", "row", rows, list(range(1, len(rows) + 1)))


def read_benchmark(benchmark: str, path: str | Path | None = None, *, nested: bool = False) -> Table:
    """The benchmark's rows, each with its line (file) or row (hub) number."""
    where = locate(benchmark, path, nested=nested)
    if isinstance(where, tuple):
        return _hub_table(benchmark, *where)
    return read_table(where)


def fingerprint(table: Table) -> str:
    """A short hash of the rows, so that a resumed run can tell the data changed."""
    digest = hashlib.sha256(repr(table.rows).encode("utf-8"))
    return digest.hexdigest()[:16]


def load_problems(benchmark: str, path: str | Path | None = None, *, limit: int | None = None,
                  timeout_s: int = 5, check: bool = True, nested: bool = False) -> tuple[list[Problem], Table]:
    """The first `limit` problems of a benchmark (all when None), each checked, and the table
    they came from. Ids must be unique; a bad row raises a DataError naming file, line and field.
    `check=False` skips only the math-verify reading of each reference (for a caller that does it);
    `nested`: see `locate`."""
    table = read_benchmark(benchmark, path, nested=nested).head(limit)
    problems, seen = [], {}
    for i, row in enumerate(table.rows):
        try:
            problem = problem_of(benchmark, row, table.numbers[i], check=check, timeout_s=timeout_s)
        except DataError as error:
            raise table.locate(error, i) from None
        if problem.id in seen:
            raise table.error(i, f"{problem.id!r} is also the id of {table.unit} {seen[problem.id]}", _ID[benchmark])
        seen[problem.id] = table.numbers[i]
        problems.append(problem)
    return problems, table


def prompt_text(problem: Problem) -> str:
    """The user message: the question, a blank line, the answer-format instruction (and, for
    OlympiadBench, how to give several answers or leave out the unit)."""
    notes = [INSTRUCTION]
    if problem.several_answers:
        notes.append(SEVERAL)
    if problem.unit:
        notes.append(UNIT.format(unit=problem.unit))
    return f"{problem.question.strip()}\n\n{' '.join(notes)}"
