"""Read a local data file into a `Table`: its rows, each with the line (or row) it came from.

    table = read_table("data.jsonl")
    table.rows[0], table.numbers[0]     # the first row and the file line it is on

- `.jsonl`: one JSON object per line; blank lines are skipped but counted.
- `.json`: a JSON array of objects (each numbered by the line it starts on), or JSON lines.
- `.csv`: a header line, then one row per record (numbered by the line it starts on, the
  header being line 1). Cells are text; a column that is not a demonstration field and
  whose every non-empty cell is a number becomes numbers; an empty cell there is null.
- `.parquet`: rows numbered from 1.

Text files must be UTF-8 (a byte-order mark is allowed). Whatever is wrong with a file
(missing, empty, not UTF-8, invalid JSON, a CSV row with too many or too few cells, a
corrupt parquet file) raises one `DataError` naming the file, the line and, where it can
be told, the field. Only the standard library and pyarrow are used: no torch, no datasets.
"""

from __future__ import annotations

import csv
import io
import json
import re
from pathlib import Path

from .validate import TEXT_FIELDS, DataError, Table, described

__all__ = ["SUFFIXES", "read_table"]

SUFFIXES = (".jsonl", ".json", ".csv", ".parquet")
_INT = re.compile(r"[+-]?\d+")
_FLOAT = re.compile(r"[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?")
_KEY = re.compile(r'"((?:[^"\\]|\\.)*)"\s*:')  # a JSON object key, to name the field near a syntax error


def read_table(path) -> Table:
    """The rows of a local data file (see the module docstring); a DataError if it has none."""
    source = str(path)
    path = Path(path)
    if not path.exists():
        raise DataError("file not found", source=source)
    if not path.is_file():
        raise DataError("is not a file", source=source)
    suffix = path.suffix.lower()
    if suffix == ".parquet":
        table = _read_parquet(path, source)
    elif suffix in SUFFIXES:
        read = _read_csv if suffix == ".csv" else _read_json
        table = read(_decode(path.read_bytes(), source, read), source)
    else:
        raise DataError(f"unsupported file type {suffix!r}; use {', '.join(SUFFIXES)}", source=source)
    if not table.rows:
        raise DataError("has no rows (the file is empty or holds only blank lines)", source=source)
    return table


def _decode(data: bytes, source: str, read) -> str:
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        line = data.count(b"\n", 0, error.start) + 1
        column = error.start - data.rfind(b"\n", 0, error.start)
        reason = f"is not UTF-8 text: byte 0x{data[error.start]:02x} at column {column}; save the file as UTF-8"
        # Which field holds the byte: read the file with the byte replaced and look for it
        field = None
        try:
            table = read(data.decode("utf-8-sig", errors="replace"), source)
            field = _field_holding(table, line, "\ufffd")
        except DataError:
            pass
        raise DataError(reason, source=source, unit="line", number=line, field=field) from None


def _field_holding(table: Table, line: int, marker: str) -> str | None:
    """The first field, in the row that holds file line `line`, whose value contains `marker`."""
    index = max((i for i, n in enumerate(table.numbers) if n <= line), default=None)
    if index is None or not isinstance(table.rows[index], dict):
        return None
    return next((f for f, v in table.rows[index].items() if marker in json.dumps(v, ensure_ascii=False)), None)


# --------------------------------------------------------------------------- JSON


def _read_json(text: str, source: str) -> Table:
    if text.lstrip().startswith("["):
        table = _read_json_array(text, source)
    else:
        table = _read_json_lines(text, source)
    for i, row in enumerate(table.rows):
        if not isinstance(row, dict):
            raise table.error(i, f"expected a JSON object, got {described(row)}")
    return table


def _syntax_error(error: json.JSONDecodeError, text: str, source: str, line: int, column: int) -> DataError:
    keys = _KEY.findall(text, 0, error.pos)
    return DataError(f"invalid JSON: {error.msg} (column {column})", source=source, unit="line", number=line,
                     field=json.loads(f'"{keys[-1]}"') if keys else None)


def _read_json_lines(text: str, source: str) -> Table:
    rows, numbers = [], []
    # Only "\n" ends a line: str.splitlines would also split at U+2028 inside a JSON string
    for number, line in enumerate(text.split("\n"), start=1):
        if not line.strip():
            continue
        try:
            rows.append(json.loads(line))
        except json.JSONDecodeError as error:
            raise _syntax_error(error, line, source, number, error.colno) from None
        numbers.append(number)
    return Table(source, "line", rows, numbers)


def _read_json_array(text: str, source: str) -> Table:
    """A JSON array, read one element at a time so that each knows the line it starts on."""
    decoder = json.JSONDecoder()
    rows, numbers = [], []
    pos = _skip_space(text, text.index("[") + 1)
    line, counted = 1, 0  # the line of text[counted]

    def line_of(position: int) -> int:
        nonlocal line, counted
        line += text.count("\n", counted, position)
        counted = position
        return line

    def fail(reason: str, position: int) -> DataError:
        number = line_of(position)
        column = position - text.rfind("\n", 0, position)
        return DataError(f"invalid JSON: {reason} (column {column})", source=source, unit="line", number=number)

    while pos < len(text) and text[pos] != "]":
        try:
            row, end = decoder.raw_decode(text, pos)
        except json.JSONDecodeError as error:
            raise _syntax_error(error, text, source, error.lineno, error.colno) from None
        rows.append(row)
        numbers.append(line_of(pos))
        pos = _skip_space(text, end)
        if pos < len(text) and text[pos] == ",":
            pos = _skip_space(text, pos + 1)
            if pos < len(text) and text[pos] == "]":
                raise fail("a comma before ']'", pos)
        elif pos >= len(text) or text[pos] != "]":
            raise fail("expected ',' or ']' after an element", pos)
    if pos >= len(text):
        raise fail("the array is not closed with ']'", len(text))
    if text[pos + 1:].strip():
        raise fail("text after the closing ']'", _skip_space(text, pos + 1))
    return Table(source, "line", rows, numbers)


def _skip_space(text: str, pos: int) -> int:
    while pos < len(text) and text[pos] in " \t\r\n":
        pos += 1
    return pos


# --------------------------------------------------------------------------- CSV


def _read_csv(text: str, source: str) -> Table:
    reader = csv.reader(io.StringIO(text, newline=""))
    header, header_line, records = None, None, []
    while True:
        start = reader.line_num + 1
        try:
            cells = next(reader)
        except StopIteration:
            break
        except csv.Error as error:
            raise DataError(f"invalid CSV: {error}", source=source, unit="line", number=reader.line_num) from None
        if not cells:  # a blank line
            continue
        if header is None:
            header, header_line = cells, start
            _check_header(header, source, start)
            continue
        if len(cells) != len(header):
            raise _cell_count_error(cells, header, source, start)
        records.append((start, dict(zip(header, cells))))
    if header is not None and not records:
        raise DataError("has a header but no rows", source=source, unit="line", number=header_line)
    rows = [row for _, row in records]
    for name in header or ():
        _type_column(rows, name)
    return Table(source, "line", rows, [number for number, _ in records])


def _check_header(header: list[str], source: str, line: int) -> None:
    for k, name in enumerate(header, start=1):
        if not name.strip():
            raise DataError(f"header cell {k} is empty: every column needs a name", source=source, unit="line",
                            number=line)
        if header.index(name) != k - 1:
            raise DataError("is the name of two columns", source=source, unit="line", number=line, field=name)


def _cell_count_error(cells: list[str], header: list[str], source: str, line: int) -> DataError:
    if len(cells) > len(header):
        reason = (f"{len(cells)} cells, but the header names {len(header)} columns; cell {len(header) + 1} "
                  f"({cells[len(header)][:40]!r}) has no column (quote cells that hold a comma)")
        return DataError(reason, source=source, unit="line", number=line)
    missing = header[len(cells)]
    reason = f"missing: {len(cells)} cell{'s' if len(cells) > 1 else ''}, but the header names {len(header)} columns"
    return DataError(reason, source=source, unit="line", number=line, field=missing)


def _type_column(rows: list[dict], name: str) -> None:
    """Numbers in a column that is not a demonstration field and holds only numbers; there an
    empty cell is null. Demonstration fields stay text ("2" is a valid completion)."""
    if name in TEXT_FIELDS:
        return
    cells = [row[name] for row in rows if row[name] != ""]
    if cells and all(_INT.fullmatch(c) for c in cells):
        convert = int
    elif cells and all(_FLOAT.fullmatch(c) for c in cells):
        convert = float
    else:
        convert = str
    for row in rows:
        row[name] = convert(row[name]) if row[name] != "" else None


# --------------------------------------------------------------------------- parquet


def _read_parquet(path: Path, source: str) -> Table:
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        rows = pq.read_table(path).to_pylist()
    except (pa.ArrowException, OSError) as error:
        # pyarrow's message repeats the path; keep what it says about the file
        reason = re.sub(r"^Could not open Parquet input source '.*?': ", "", str(error))
        raise DataError(f"is not a readable parquet file ({reason})", source=source) from None
    return Table(source, "row", rows, list(range(1, len(rows) + 1)))
