"""Checks that data rows can be used, and the one error every bad row becomes.

A bad file or row raises `DataError`, whose message is one line naming the file, where
in it and the field:

    data.jsonl: line 7: field 'completion': is empty
    data.parquet: row 3: field 'kind': is a number, but row 1 holds a string; a column holds one type

Where: `line N` is the file line a row starts on (JSON, JSON lines and CSV files, the
header being line 1 of a CSV file), `row N` the N-th row (parquet files and hub
datasets, which have no lines); both count from 1.

What each command accepts (docs/bad-input.md lists the outcome for each bad file):

- `train` and `score`: every TRL format (`text`, `messages`/`conversations`, `prompt` +
  `completion`, plain or conversational) and GSM8K/MATH rows. A conversation must have a
  turn that is not a system message; a prompt may end with any turn (an assistant turn
  is continued, a tool turn is answered), as TRL trains it.
- rewriting (`cadft rewrite`, `cadft train --rewrite`): prompt-completion rows only
  (GSM8K/MATH rows become such rows), and a conversational prompt must end with a user
  turn: rewriting asks a generator to answer that turn again.
- `eval`: GSM8K (`question` + `answer`) or MATH (`problem` + `answer` or `solution`)
  rows, checked by `cadft.data.problems`.

Every row and every column must be usable, or the command stops: nothing is skipped.
This module imports neither torch nor datasets, so a command checks its data in well
under a second, before it loads any model.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = [
    "DataError",
    "ROLES",
    "Table",
    "check_columns",
    "check_demonstration",
    "check_demonstrations",
    "final_answer",
    "kind",
    "text_field",
]

ROLES = ("system", "user", "assistant", "tool")
# The fields that hold a demonstration or a problem: always text (or message lists), never numbers
TEXT_FIELDS = ("text", "prompt", "completion", "messages", "conversations", "question", "answer", "problem",
               "solution")
FORMATS = ("text | messages | conversations | prompt + completion | question + answer (GSM8K) | "
           "problem + solution (MATH)")
# Pairs whose first half alone is almost surely a broken row, not a tag column
_PAIRS = (("prompt", "completion"), ("question", "answer"), ("problem", "solution"))
_SHOWN = 40  # characters of a bad value quoted in an error


class DataError(ValueError):
    """A data file or row that cannot be used. `str(error)` is one line:
    `<source>: <unit> <number>: field '<field>': <reason>`, with the parts that are known."""

    def __init__(self, reason: str, *, source=None, unit: str = "row", number: int | None = None,
                 field: str | None = None):
        self.reason, self.source, self.unit, self.number, self.field = reason, source, unit, number, field
        parts = [str(source)] if source is not None else []
        if number is not None:
            parts.append(f"{unit} {number}")
        if field is not None:
            parts.append(f"field {field!r}")
        # One line, whatever the reason quotes
        super().__init__(" ".join(": ".join([*parts, reason]).split()))

    def at(self, source, unit: str, number: int | None) -> DataError:
        """This error, placed in a file: the checks of one row do not know where it is."""
        return DataError(self.reason, source=source, unit=unit, number=number, field=self.field)


@dataclass
class Table:
    """Rows read from one source, each with where it came from (see the module docstring)."""

    source: str  # the file as the user named it, or a hub dataset's name
    unit: str  # "line" or "row"
    rows: list
    numbers: list[int]  # rows[i] starts at `unit` numbers[i]

    def head(self, limit: int | None) -> Table:
        if limit is None:
            return self
        return Table(self.source, self.unit, self.rows[:limit], self.numbers[:limit])

    def error(self, index: int, reason: str, field: str | None = None) -> DataError:
        return DataError(reason, source=self.source, unit=self.unit, number=self.numbers[index], field=field)

    def locate(self, error: DataError, index: int) -> DataError:
        return error.at(self.source, self.unit, self.numbers[index])


# --------------------------------------------------------------------------- values


def _shown(value) -> str:
    text = repr(value)
    return text if len(text) <= _SHOWN else text[: _SHOWN - 3] + "..."


def kind(value) -> str | None:
    """The JSON kind of a value ('string', 'number', 'list of objects', ...); None for null."""
    if value is None:
        return None
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, (int, float)):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, dict):
        return "object"
    if isinstance(value, (list, tuple)):
        inner = sorted({kind(v) for v in value} - {None})
        plural = ("lists" if k.startswith("list") else k + "s" for k in inner)
        return f"list of {' and '.join(plural)}" if inner else "list"
    return type(value).__name__


def final_answer(solution: str) -> str | None:
    """The final answer of a GSM8K-style (`#### x`) or MATH-style (`\\boxed{x}`) solution."""
    from .answers import extract_answer

    return extract_answer(solution, last_number=False)


def with_article(kind_name: str | None) -> str:
    """The kind with its article: 'a string', 'an object', 'null'."""
    if kind_name is None:
        return "null"
    return f"an {kind_name}" if kind_name[0] in "aeiou" else f"a {kind_name}"


def described(value) -> str:
    """A value for an error message: its kind and its start, e.g. "a number 3"."""
    return f"{with_article(kind(value))} {_shown(value)}"


def text_field(row: dict, field: str) -> str:
    """`row[field]` if it is a non-empty string; else a DataError naming the field."""
    if field not in row:
        raise DataError("missing", field=field)
    value = row[field]
    if not isinstance(value, str):
        raise DataError(f"must be a string, got {described(value)}", field=field)
    if not value.strip():
        raise DataError(f"is empty ({value!r})", field=field)
    return value


def _messages(value, field: str) -> list[dict]:
    """A non-empty list of {role, content} (or ShareGPT {from, value}) messages."""
    if not isinstance(value, list):
        raise DataError(f"must be a list of messages, got {described(value)}", field=field)
    if not value:
        raise DataError("is an empty list of messages", field=field)
    for k, message in enumerate(value, start=1):
        if not isinstance(message, dict):
            raise DataError(f"message {k} must be an object with 'role' and 'content', got {_shown(message)}",
                            field=field)
        role_key, content_key = ("from", "value") if "from" in message else ("role", "content")
        if role_key not in message:
            raise DataError(f"message {k} has no 'role'", field=field)
        role = message[role_key]
        if role not in ROLES:
            # TRL renames `from` to `role` but keeps its value: ShareGPT's human/gpt would reach
            # the chat template as roles it does not know
            hint = " (ShareGPT's human/gpt: write user/assistant)" if role in ("human", "gpt") else ""
            raise DataError(f"message {k} has an unknown role {_shown(role)}{hint}; use one of {', '.join(ROLES)}",
                            field=field)
        content = message.get(content_key)
        if not isinstance(content, str) and not (content is None and message.get("tool_calls")):
            got = "none" if content_key not in message else described(content)
            raise DataError(f"message {k} ({role}) needs a string {content_key!r}, got {got}", field=field)
    return value


def _roles(messages: list[dict]) -> list[str]:
    return [m.get("role", m.get("from")) for m in messages]


def _conversation(value, field: str) -> list[dict]:
    """Messages with at least one turn that is not a system message."""
    messages = _messages(value, field)
    if all(role == "system" for role in _roles(messages)):
        raise DataError("has only system messages: there is no turn to answer", field=field)
    return messages


def _prompt_completion(row: dict, *, rewriting: bool) -> dict:
    prompt, completion = row["prompt"], row["completion"]
    if isinstance(prompt, list) != isinstance(completion, list):
        raise DataError(
            f"is {with_article(kind(completion))} but 'prompt' is {with_article(kind(prompt))}: both must be strings "
            "or both message lists",
            field="completion",
        )
    if isinstance(prompt, str):
        text_field(row, "prompt")
        text_field(row, "completion")
        return row
    roles = _roles(_conversation(prompt, "prompt"))
    if rewriting and roles[-1] != "user":
        raise DataError(f"must end with a user turn to be rewritten (roles: {', '.join(map(str, roles))})",
                        field="prompt")
    if not any((m.get("content") or m.get("value") or "").strip() for m in _messages(completion, "completion")):
        raise DataError("is empty (no message has any text)", field="completion")
    return row


def _question_solution(row: dict, question_field: str, solution_field: str) -> dict:
    """A question/solution row as a conversational prompt-completion pair; other columns kept."""
    question = text_field(row, question_field)
    solution = text_field(row, solution_field)
    extra = {k: v for k, v in row.items() if k not in (question_field, solution_field)}
    return {
        **extra,
        "prompt": [{"role": "user", "content": question}],
        "completion": [{"role": "assistant", "content": solution}],
    }


def check_demonstration(row: dict, *, rewriting: bool = False) -> dict:
    """The row in a format TRL trains on (GSM8K and MATH rows converted), or a DataError
    naming the field. `rewriting`: the row must be one the rewriting round can rewrite."""
    if "prompt" in row and "completion" in row:
        return _prompt_completion(row, rewriting=rewriting)
    for field in ("messages", "conversations", "text"):
        if field in row:
            if rewriting:
                raise DataError(f"missing: rewriting needs prompt + completion rows, this row has {field!r}",
                                field="prompt")
            if field == "text":
                text_field(row, field)
            else:
                _conversation(row[field], field)
            return row
    if "question" in row and "answer" in row:  # GSM8K: the worked solution ends with "#### x"
        converted = _question_solution(row, "question", "answer")
        return {**converted, "final_answer": final_answer(converted["completion"][0]["content"]) or ""}
    if "problem" in row and "solution" in row:  # MATH: keeps its own `answer` column
        return _question_solution(row, "problem", "solution")
    for first, second in _PAIRS:
        if first in row or second in row:
            missing, present = (second, first) if first in row else (first, second)
            raise DataError(f"missing (a row with {present!r} needs {missing!r} too)", field=missing)
    raise DataError(f"no demonstration in fields {sorted(row)}; expected one of: {FORMATS}")


def check_demonstrations(table: Table, *, rewriting: bool = False) -> list[dict]:
    """Every row of `table` checked and converted (see `check_demonstration`), then checked
    to form one table: the same fields in every row, one type per field."""
    if not table.rows:
        raise DataError("has no rows", source=table.source)
    converted = []
    for i, row in enumerate(table.rows):
        try:
            converted.append(check_demonstration(row, rewriting=rewriting))
        except DataError as error:
            raise table.locate(error, i) from None
    check_columns(table, converted)
    return converted


def _same_kind(a: str, b: str) -> bool:
    # An empty list ("list") fits any list column
    return a == b or ("list" in (a, b) and a.startswith("list") and b.startswith("list"))


def check_columns(table: Table, rows: list[dict]) -> None:
    """The same fields in every row, one kind of value per field (nulls aside), and unique
    integer `sample_id`s: what a `datasets.Dataset` column and the trainer need."""
    first = rows[0]
    first_at = f"{table.unit} {table.numbers[0]}"
    seen_kind: dict[str, tuple[str, int]] = {}
    ids: dict = {}
    for i, row in enumerate(rows):
        for field in first:
            if field not in row:
                raise table.error(i, f"missing, but {first_at} has it (every row needs the same fields)", field)
        for field, value in row.items():
            if field not in first:
                raise table.error(i, f"is not in {first_at} (every row needs the same fields)", field)
            value_kind = kind(value)
            if value_kind is None:
                continue
            if field not in seen_kind:
                seen_kind[field] = (value_kind, i)
                continue
            known, where = seen_kind[field]
            if not _same_kind(known, value_kind):
                raise table.error(
                    i,
                    f"is {with_article(value_kind)}, but {table.unit} {table.numbers[where]} holds "
                    f"{with_article(known)}; a column holds one type",
                    field,
                )
        if "sample_id" in row:
            sample_id = row["sample_id"]
            if not isinstance(sample_id, int) or isinstance(sample_id, bool):
                raise table.error(i, f"must be an integer, got {_shown(sample_id)}", "sample_id")
            if sample_id in ids:
                raise table.error(i, f"{sample_id} is also the id of {table.unit} {ids[sample_id]}", "sample_id")
            ids[sample_id] = table.numbers[i]
