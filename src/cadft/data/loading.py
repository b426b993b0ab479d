"""Load demonstrations from local files or the hub into a format TRL trains on.

Accepted inputs (each row is checked; a bad one raises `DataFormatError` naming the
file, the row and the field):

- every format TRL's SFTTrainer accepts: `text`, `messages`, `prompt` + `completion`
  (plain strings or conversational message lists), `conversations` (ShareGPT);
- GSM8K's `question` + `answer` (worked solution ending in `#### x`): becomes a
  conversational prompt-completion pair, and `final_answer` holds x;
- MATH's `problem` + `solution`: likewise; its `answer` column is kept.

Files: `.jsonl`, `.json` (a list of objects, or JSON lines), `.parquet`, `.csv`.
"""

from __future__ import annotations

import json
from pathlib import Path

from datasets import Dataset, load_dataset

__all__ = ["DataFormatError", "final_answer", "load_demonstrations", "read_rows", "to_trl_format"]


class DataFormatError(ValueError):
    """A dataset row that cannot be used, with where it is."""


def final_answer(solution: str) -> str | None:
    """The final answer of a GSM8K-style (`#### x`) or MATH-style (`\\boxed{x}`) solution."""
    from ..verifiers import extract_answer

    return extract_answer(solution, last_number=False)


def read_rows(path: Path) -> list[dict]:
    """Rows of a local data file as dicts; a bad line raises DataFormatError naming it."""
    suffix = path.suffix.lower()
    if suffix in (".parquet", ".csv"):
        return load_dataset(suffix[1:], data_files=str(path), split="train").to_list()
    if suffix not in (".jsonl", ".json"):
        raise DataFormatError(f"{path}: unsupported file type {suffix!r}; use .jsonl, .json, .parquet or .csv")
    text = path.read_text(encoding="utf-8")
    if suffix == ".json" and text.lstrip().startswith("["):
        try:
            rows = json.loads(text)
        except json.JSONDecodeError as e:
            raise DataFormatError(f"{path}: invalid JSON: {e}") from e
    else:
        rows = []
        for line_no, line in enumerate(text.splitlines(), start=1):
            if not line.strip():
                continue
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError as e:
                raise DataFormatError(f"{path}: row {line_no}: invalid JSON: {e.msg}") from e
    for i, row in enumerate(rows, start=1):
        if not isinstance(row, dict):
            raise DataFormatError(f"{path}: row {i}: expected a JSON object, got {type(row).__name__}")
    return rows


def _require_text(row: dict, field: str, where: str) -> str:
    value = row.get(field)
    if not isinstance(value, str) or not value.strip():
        got = "missing" if field not in row else f"{type(value).__name__} {str(value)[:40]!r}"
        raise DataFormatError(f"{where}: field {field!r} must be a non-empty string ({got})")
    return value


def _require_messages(row: dict, field: str, where: str) -> None:
    value = row.get(field)
    if isinstance(value, str):
        _require_text(row, field, where)
        return
    if not isinstance(value, list) or not value:
        raise DataFormatError(f"{where}: field {field!r} must be a string or a non-empty list of messages")
    for k, message in enumerate(value):
        if not isinstance(message, dict):
            raise DataFormatError(f"{where}: field {field!r}, message {k}: expected an object")
        role_key, content_key = ("from", "value") if "from" in message else ("role", "content")
        if not isinstance(message.get(role_key), str) or not isinstance(message.get(content_key), str):
            raise DataFormatError(
                f"{where}: field {field!r}, message {k}: needs string {role_key!r} and {content_key!r}"
            )


def _question_solution(row: dict, question_field: str, solution_field: str, where: str) -> dict:
    """A question/solution row as a conversational prompt-completion pair; other columns kept."""
    question = _require_text(row, question_field, where)
    solution = _require_text(row, solution_field, where)
    extra = {k: v for k, v in row.items() if k not in (question_field, solution_field)}
    return {
        **extra,
        "prompt": [{"role": "user", "content": question}],
        "completion": [{"role": "assistant", "content": solution}],
    }


def _convert_row(row: dict, where: str) -> dict:
    if "prompt" in row and "completion" in row:
        _require_messages(row, "prompt", where)
        _require_messages(row, "completion", where)
        return row
    for field in ("messages", "conversations"):
        if field in row:
            _require_messages(row, field, where)
            return row
    if "text" in row:
        _require_text(row, "text", where)
        return row
    if "question" in row and "answer" in row:  # GSM8K: the worked solution ends with "#### x"
        converted = _question_solution(row, "question", "answer", where)
        return {**converted, "final_answer": final_answer(converted["completion"][0]["content"]) or ""}
    if "problem" in row and "solution" in row:  # MATH: keeps its own `answer` column
        return _question_solution(row, "problem", "solution", where)
    raise DataFormatError(
        f"{where}: unrecognised columns {sorted(row)}; expected one of: text | messages | conversations | "
        "prompt+completion | question+answer (GSM8K) | problem+solution (MATH)"
    )


def to_trl_format(rows: list[dict], source: str) -> Dataset:
    """Check every row and convert GSM8K/MATH rows; `source` names the data in errors."""
    if not rows:
        raise DataFormatError(f"{source}: no rows")
    converted = [_convert_row(row, f"{source}: row {i}") for i, row in enumerate(rows, start=1)]
    keys = set(converted[0])
    for i, row in enumerate(converted, start=1):
        if set(row) != keys:
            raise DataFormatError(f"{source}: row {i}: columns {sorted(row)} differ from row 1's {sorted(keys)}")
    return Dataset.from_list(converted)


def load_demonstrations(
    dataset_path: str | None = None,
    *,
    dataset_name: str | None = None,
    dataset_config: str | None = None,
    split: str = "train",
    limit: int | None = None,
) -> Dataset:
    """Load a local file (`dataset_path`) or a hub dataset (`dataset_name`), checked and
    converted to a TRL format. `limit` keeps the first N rows."""
    if (dataset_path is None) == (dataset_name is None):
        raise ValueError("give exactly one of dataset_path (a local file) or dataset_name (a hub dataset)")
    if dataset_path is not None:
        path = Path(dataset_path)
        if not path.is_file():
            raise FileNotFoundError(f"dataset file not found: {path}")
        rows, source = read_rows(path), str(path)
    else:
        rows, source = load_dataset(dataset_name, dataset_config, split=split).to_list(), dataset_name
    if limit is not None:
        rows = rows[:limit]
    return to_trl_format(rows, source)
