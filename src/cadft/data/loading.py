"""Load demonstrations from local files or the hub into a format TRL trains on.

Accepted inputs (every row is checked; a bad one raises `DataError` naming the file, the
line or row, and the field; see `cadft.data.validate`):

- every format TRL's SFTTrainer accepts: `text`, `messages`, `prompt` + `completion`
  (plain strings or conversational message lists), `conversations` (ShareGPT);
- GSM8K's `question` + `answer` (worked solution ending in `#### x`): becomes a
  conversational prompt-completion pair, and `final_answer` holds x;
- MATH's `problem` + `solution`: likewise; its `answer` column is kept.

Files: `.jsonl`, `.json` (a list of objects, or JSON lines), `.parquet`, `.csv`
(read by `cadft.data.files`).

    table = read_demonstrations("data.jsonl")     # checked rows (.rows) and their lines (.numbers); light
    dataset = load_demonstrations("data.jsonl")   # the same rows as a datasets.Dataset
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .files import read_table
from .validate import DataError, Table, check_demonstrations, final_answer

__all__ = [
    "DataError",
    "DataFormatError",
    "final_answer",
    "load_demonstrations",
    "read_demonstrations",
    "read_rows",
    "to_trl_format",
]

if TYPE_CHECKING:
    from datasets import Dataset

DataFormatError = DataError  # the name before DataError carried where the error is


def read_rows(path) -> list[dict]:
    """Rows of a local data file as dicts; a bad file raises DataError naming the line."""
    return read_table(path).rows


def read_demonstrations(path, *, limit: int | None = None, rewriting: bool = False) -> Table:
    """The first `limit` rows of a local file, checked and converted (see the module
    docstring), with the lines they came from; `rewriting`: also rows a rewriting round
    can rewrite. The whole file is read, so a broken line anywhere in it is an error."""
    table = read_table(path).head(limit)
    return Table(table.source, table.unit, check_demonstrations(table, rewriting=rewriting), table.numbers)


def to_trl_format(rows: list[dict], source: str) -> Dataset:
    """Check every row and convert GSM8K/MATH rows; `source` names the data in errors."""
    table = Table(source, "row", list(rows), list(range(1, len(rows) + 1)))
    return as_dataset(check_demonstrations(table), source)


def as_dataset(rows: list[dict], source: str) -> Dataset:
    """Checked rows as a `datasets.Dataset`."""
    import pyarrow as pa
    from datasets import Dataset

    try:
        return Dataset.from_list(rows)
    except (pa.ArrowInvalid, pa.ArrowTypeError) as error:
        # The checks keep each column to one type; this catches what they do not look into
        # (values nested inside lists or objects)
        raise DataError(f"cannot be stored as a table: {error}", source=source) from None


def load_demonstrations(
    dataset_path: str | None = None,
    *,
    dataset_name: str | None = None,
    dataset_config: str | None = None,
    split: str = "train",
    limit: int | None = None,
    rewriting: bool = False,
) -> Dataset:
    """Load a local file (`dataset_path`) or a hub dataset (`dataset_name`), checked and
    converted to a TRL format. `limit` keeps the first N rows; `rewriting` see
    `read_demonstrations`. With a limit, a hub dataset is streamed: only its first `limit`
    rows are downloaded and read, not the whole split."""
    if (dataset_path is None) == (dataset_name is None):
        raise ValueError("give exactly one of dataset_path (a local file) or dataset_name (a hub dataset)")
    if dataset_path is not None:
        table, source = read_table(dataset_path), str(dataset_path)
    else:
        rows = _hub_rows(dataset_name, dataset_config, split, limit)
        table, source = Table(dataset_name, "row", rows, list(range(1, len(rows) + 1))), dataset_name
    return as_dataset(check_demonstrations(table.head(limit), rewriting=rewriting), source)


def _hub_rows(name: str, config: str | None, split: str, limit: int | None) -> list[dict]:
    """The rows of a `datasets.load_dataset` split; the first `limit` of them, streamed,
    when a limit is given and the split is not already a slice (`train[:1000]`, which
    streaming does not take)."""
    from datasets import load_dataset

    if limit is None or "[" in split:
        return load_dataset(name, config, split=split).to_list()
    return list(load_dataset(name, config, split=split, streaming=True).take(limit))
