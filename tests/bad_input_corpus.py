"""A corpus of bad data files, and what each `cadft` command says about each.

    python tests/bad_input_corpus.py --table docs/bad-input.md   # regenerate the document

Every case is a small file written from the rows below. `run` runs the real command line
on it in a subprocess, with a model folder that does not exist: a file the command
rejects must fail on its data (one line, exit status 2) before any model is touched, and
a file it accepts fails on the missing model folder instead. tests/test_bad_input.py
checks every (case, command) pair; this script writes the same outcomes as a table.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

COMMANDS = ("train", "score", "rewrite", "eval")
DEMONSTRATIONS = ("train", "score", "rewrite")  # the commands that read demonstrations; eval reads problems
NO_MODEL = "/nonexistent/model"
ACCEPTED = f"model folder not found: {NO_MODEL}"  # what a command says once the data passed


def _jsonl(*rows, blank_before: int | None = None) -> bytes:
    """JSON lines; `blank_before`: a blank line before that row (from 0), to shift line numbers."""
    lines = [json.dumps(row) for row in rows]
    if blank_before is not None:
        lines.insert(blank_before, "")
    return ("\n".join(lines) + "\n").encode()


def _parquet(rows: list[dict]) -> bytes:
    import io

    import pyarrow as pa
    import pyarrow.parquet as pq

    buffer = io.BytesIO()
    pq.write_table(pa.Table.from_pylist(rows), buffer)
    return buffer.getvalue()


OK = {"prompt": "What is 2 + 3?", "completion": "2 + 3 = 5.\n#### 5"}
GSM8K = {"question": "Tom has 2 apples and buys 3 more. How many?", "answer": "2 + 3 = 5\n#### 5"}
USER = {"role": "user", "content": "What is 2 + 3?"}
ASSISTANT = {"role": "assistant", "content": "2 + 3 = 5.\n#### 5"}


@dataclass(frozen=True)
class Case:
    """A bad file; per command, the (line or row, field) its error names, None where the
    command accepts the file. Commands not in `expect` do not read this kind of data."""

    name: str
    file: str  # the suffix picks the format
    content: bytes
    expect: dict = field(default_factory=dict)  # command -> (unit and number, field) | None

    def commands(self) -> tuple[str, ...]:
        return tuple(c for c in COMMANDS if c in self.expect)


def _all(where, field, commands=COMMANDS) -> dict:
    return {command: (where, field) for command in commands}


CASES = [
    # ---- the file itself: every command reads it the same way
    Case("empty file", "empty.jsonl", b"", _all(None, None)),
    Case("only blank lines", "blank.jsonl", b"\n   \n\n", _all(None, None)),
    Case("malformed JSON line after a blank line", "malformed.jsonl",
         _jsonl(OK) + b'\n{"prompt": "What is 4 + 4?", "completion": 8 apples}\n', _all("line 3", "completion")),
    Case("a line that is not a JSON object", "not_object.jsonl", _jsonl(OK, ["What is 2 + 3?", "5"]),
         _all("line 2", None)),
    Case("non-UTF-8 bytes (Latin-1)", "latin1.jsonl",
         _jsonl(OK) + json.dumps({"prompt": "Caf\u00e9 bill?", "completion": "5"}, ensure_ascii=False).encode("latin-1")
         + b"\n", _all("line 2", "prompt")),
    Case("corrupt parquet", "corrupt.parquet", b"PAR1 this is not a parquet file", _all(None, None)),
    Case("CSV row with an extra cell", "extra_cell.csv", b"prompt,completion\nWhat is 2 + 3?,5\nWhat is 1, 2?,3\n",
         _all("line 3", None)),
    Case("CSV row with a missing cell", "short_row.csv", b"prompt,completion\nWhat is 2 + 3?,5\nWhat is 4 + 4?\n",
         _all("line 3", "completion")),
    # ---- demonstrations: train, score, rewrite
    Case("CSV without a completion column", "no_completion_column.csv", b"prompt,kind\nWhat is 2 + 3?,plain\n",
         _all("line 2", "completion", DEMONSTRATIONS)),
    Case("missing completion", "no_completion.jsonl", _jsonl(OK, {"prompt": "What is 2 + 3?"}),
         _all("line 2", "completion", DEMONSTRATIONS)),
    Case("missing prompt", "no_prompt.jsonl", _jsonl(OK, {"completion": "5"}),
         _all("line 2", "prompt", DEMONSTRATIONS)),
    Case("no demonstration field", "unknown_fields.jsonl", _jsonl({"input": "What is 2 + 3?", "output": "5"}),
         _all("line 1", None, DEMONSTRATIONS)),
    Case("integer completion", "int_completion.jsonl", _jsonl(OK, {"prompt": "What is 2 + 3?", "completion": 5}),
         _all("line 2", "completion", DEMONSTRATIONS)),
    Case("empty completion after a blank line", "empty_completion.jsonl",
         _jsonl(OK, {"prompt": "What is 2 + 3?", "completion": " "}, blank_before=1),
         _all("line 3", "completion", DEMONSTRATIONS)),
    Case("JSON array, empty completion in its 2nd element", "array.json",
         json.dumps([OK, {**OK, "completion": ""}], indent=1).encode(),
         _all("line 6", "completion", DEMONSTRATIONS)),
    Case("parquet, empty completion in row 2", "empty_completion.parquet",
         _parquet([OK, {**OK, "completion": ""}]), _all("row 2", "completion", DEMONSTRATIONS)),
    Case("messages not a list", "messages_string.jsonl", _jsonl({"messages": "What is 2 + 3?"}),
         {**_all("line 1", "messages", ("train", "score")), "rewrite": ("line 1", "prompt")}),
    Case("message without a role", "no_role.jsonl", _jsonl({"messages": [{"content": "What is 2 + 3?"}]}),
         {**_all("line 1", "messages", ("train", "score")), "rewrite": ("line 1", "prompt")}),
    Case("unknown role (ShareGPT human/gpt)", "human_gpt.jsonl",
         _jsonl({"conversations": [{"from": "human", "value": "What is 2 + 3?"}, {"from": "gpt", "value": "5"}]}),
         {**_all("line 1", "conversations", ("train", "score")), "rewrite": ("line 1", "prompt")}),
    Case("completions mixing strings and message lists", "mixed_completion.jsonl",
         _jsonl(OK, {"prompt": "What is 4 + 4?", "completion": [ASSISTANT]}),
         _all("line 2", "completion", DEMONSTRATIONS)),
    Case("tag column mixing strings and integers", "mixed_tag.jsonl",
         _jsonl({**OK, "kind": "plain"}, {**OK, "kind": 3}), _all("line 2", "kind", DEMONSTRATIONS)),
    Case("a row with a field the first row lacks", "extra_field.jsonl", _jsonl(OK, {**OK, "note": "x"}),
         _all("line 2", "note", DEMONSTRATIONS)),
    Case("duplicate sample_id", "duplicate_id.jsonl", _jsonl({**OK, "sample_id": 7}, {**OK, "sample_id": 7}),
         _all("line 2", "sample_id", DEMONSTRATIONS)),
    Case("system-only prompt", "system_only.jsonl",
         _jsonl({"prompt": [{"role": "system", "content": "Be brief."}], "completion": [ASSISTANT]}),
         _all("line 1", "prompt", DEMONSTRATIONS)),
    Case("prompt ending with an assistant turn", "ends_with_assistant.jsonl",
         _jsonl({"prompt": [USER, ASSISTANT], "completion": [ASSISTANT]}),
         {"train": None, "score": None, "rewrite": ("line 1", "prompt")}),
    # ---- math problems: eval (and what the training commands make of the same rows)
    Case("GSM8K row without an answer", "no_answer.jsonl", _jsonl(GSM8K, {"question": GSM8K["question"]}),
         _all("line 2", "answer")),
    Case("GSM8K answer without '#### x'", "no_marker.jsonl", _jsonl(GSM8K, {**GSM8K, "answer": "It is 5."}),
         {"train": None, "score": None, "rewrite": None, "eval": ("line 2", "answer")}),
    Case("MATH row with neither answer nor solution", "math_no_answer.jsonl", _jsonl({"problem": "Find x."}),
         {**_all("line 1", "solution", DEMONSTRATIONS), "eval": ("line 1", "answer")}),
]


def argv(command: str, path: str) -> list[str]:
    """`cadft COMMAND` on `path` with a model folder that does not exist."""
    extra = {"train": ["--output_dir", "out"], "score": ["--output", "scores.jsonl"], "rewrite": ["--output_dir", "out"],
             "eval": ["--output_dir", "out"]}[command]
    return [command, "--dataset_path", path, "--model_name_or_path", NO_MODEL, *extra]


def run(case: Case, command: str, workdir: Path, debug: bool = False) -> subprocess.CompletedProcess:
    """The real command line on the case's file, written into `workdir` and named relative to it."""
    (workdir / case.file).write_bytes(case.content)
    env = {key: value for key, value in os.environ.items() if key != "CADFT_DEBUG"}
    prefix = ["--debug"] if debug else []
    return subprocess.run([sys.executable, "-m", "cadft.cli.main", *prefix, *argv(command, case.file)], cwd=workdir,
                          env=env, capture_output=True, text=True, timeout=120)


def message(proc: subprocess.CompletedProcess, command: str) -> str:
    """The error line without its `cadft COMMAND: error: ` prefix."""
    return proc.stderr.strip().removeprefix(f"cadft {command}: error: ")


# --------------------------------------------------------------------------- the document

INTRO = """# Bad input: what each command says

Every command (`cadft train`, `score`, `rewrite`, `eval`) reads and checks its whole data
file before it imports torch or loads a model, and reports the first problem as one line
on stderr, with exit status 2 and no traceback (`cadft --debug <command> ...` or
`CADFT_DEBUG=1` shows the traceback):

    cadft train: error: data.jsonl: line 3: field 'completion': is empty (' ')

- **Where**: `line N` is the file line the row starts on (`.jsonl`, `.json`, `.csv`, whose
  header is line 1, so a blank line before a row counts); `row N` is the N-th row of a
  `.parquet` file or a hub dataset, which have no lines. Both count from 1. A whole-file
  problem (empty, corrupt) has no line; a problem that is not in one field (a line that is
  not a JSON object, a CSV cell without a column) has no field.
- **What is checked**: the file reads (UTF-8, valid JSON / CSV / parquet, at least one
  row); every row is in a known format with the right types (texts non-empty, message lists
  of `{role, content}` with a role among system, user, assistant, tool); every row has the
  same fields, each holding one type (a tag column of strings and integers cannot be one
  column); `sample_id`s are unique integers. Nothing is skipped silently.
- **Per command**: `train` and `score` accept every TRL format and GSM8K/MATH rows; a
  conversation needs a turn that is not a system message, and a prompt may end with any
  turn (TRL trains a prompt ending with an assistant turn as a continuation). Rewriting
  (`cadft rewrite`, `cadft train --rewrite`) also needs prompt + completion rows whose
  conversational prompt ends with a user turn, the turn a rewrite answers again. `eval`
  reads GSM8K (`question` + `answer` with `#### x`) or MATH (`problem` + `answer` or
  `solution` with `\\boxed{}`) rows.
- **Row numbers elsewhere**: the trainer's warning about samples that truncation leaves
  without a trainable token names them as rows of the training data counted from 1 (the
  `row N` above; for a `.jsonl` without blank lines, its line) and by sample id (0-based
  by default).

The table below is generated by running each command on each file of the test corpus
(`tests/bad_input_corpus.py`; `tests/test_bad_input.py` checks the same outcomes) with a
model folder that does not exist: *accepted* means the data passed and the command went
on to the model. A dash: the command does not read that kind of data.
"""


def _cell(text: str) -> str:
    return text.replace("|", "\\|")


def table(workdir: Path) -> str:
    rows = ["| case | file | " + " | ".join(f"`{c}`" for c in COMMANDS) + " |",
            "|---|---|" + "---|" * len(COMMANDS)]
    for case in CASES:
        cells = []
        for command in COMMANDS:
            if command not in case.expect:
                cells.append("—")
                continue
            proc = run(case, command, workdir)
            said = message(proc, command)
            cells.append("*accepted*" if said == ACCEPTED else _cell(said))
        rows.append(f"| {case.name} | `{case.file}` | " + " | ".join(cells) + " |")
    return "\n".join(rows) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--table", required=True, help="Markdown file to write, e.g. docs/bad-input.md.")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        body = table(Path(tmp))
    stamp = f"Generated by `python tests/bad_input_corpus.py --table {args.table}` on {datetime.date.today()}.\n"
    Path(args.table).write_text(f"{INTRO}\n{stamp}\n{body}", encoding="utf-8")
    print(f"wrote {args.table}")


if __name__ == "__main__":
    main()
