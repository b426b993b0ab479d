"""Bad data files: every command reports each as one line naming the file, the line (or
row) and the field, with exit status 2 and no traceback, before it touches a model.

The corpus and the expected outcomes are in tests/bad_input_corpus.py (which also writes
docs/bad-input.md). The commands run as real subprocesses on a model folder that does not
exist, so a file that got past the data checks would fail on the model instead."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from cadft.cli.main import main as cli_main
from cadft.data.files import read_table
from cadft.data.loading import read_demonstrations
from cadft.data.validate import DataError

from bad_input_corpus import ACCEPTED, CASES, message, run

PAIRS = [(case, command) for case in CASES for command in case.commands()]


@pytest.mark.parametrize("case, command", PAIRS, ids=[f"{case.file}-{command}" for case, command in PAIRS])
def test_each_command_reports_bad_data_as_one_line(case, command, tmp_path):
    proc = run(case, command, tmp_path)
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith(f"cadft {command}: error: ")
    said = message(proc, command)
    if case.expect[command] is None:  # the command accepts this file: it went on to the model
        assert said == ACCEPTED
        return
    where, field = case.expect[command]
    assert said.startswith(f"{case.file}: "), said  # about the data, not the model
    if where is not None:
        assert f": {where}: " in said, said
    if field is not None:
        assert f"field {field!r}" in said, said


def test_debug_shows_the_traceback(tmp_path):
    case = next(c for c in CASES if c.file == "empty_completion.jsonl")
    proc = run(case, "train", tmp_path, debug=True)
    assert proc.returncode == 1 and "Traceback" in proc.stderr and "DataError" in proc.stderr
    assert "empty_completion.jsonl: line 3: field 'completion'" in proc.stderr


def test_cadft_debug_env_lets_the_error_through(tmp_path, monkeypatch):
    bad = tmp_path / "bad.jsonl"
    bad.write_text("\n")
    monkeypatch.setenv("CADFT_DEBUG", "1")
    with pytest.raises(DataError, match=r"bad\.jsonl: has no rows"):
        cli_main(["score", "--dataset_path", str(bad), "--output", str(tmp_path / "s.jsonl")])
    monkeypatch.setenv("CADFT_DEBUG", "0")
    assert cli_main(["score", "--dataset_path", str(bad), "--output", str(tmp_path / "s.jsonl")]) == 2


def test_bad_flag_is_a_short_usage_line_and_the_reason():
    proc = subprocess.run([sys.executable, "-m", "cadft.cli.main", "train", "--bogus_flag"], capture_output=True,
                          text=True, timeout=120)
    assert proc.returncode == 2
    assert proc.stderr.splitlines() == [
        "usage: cadft train [options]",
        "cadft train: error: unrecognized arguments: --bogus_flag. Run `cadft train --help` for the options.",
    ]


# --------------------------------------------------------------------------- the reader, in process


def test_json_array_elements_know_their_lines(tmp_path):
    path = tmp_path / "d.json"
    path.write_text('[\n  {"prompt": "a", "completion": "b"},\n\n  {"prompt": "c",\n   "completion": "d"}\n]\n')
    assert read_table(path).numbers == [2, 4]
    path.write_text('[{"prompt": "a", "completion": "b"},\n {"prompt": "c", "completion": "d"},\n]')
    with pytest.raises(DataError, match=r"d\.json: line 3: invalid JSON: a comma before '\]'"):
        read_table(path)


def test_jsonl_lines_split_only_at_newlines(tmp_path):
    # U+2028 inside a string is not a line break (str.splitlines would split there); a BOM is allowed
    path = tmp_path / "d.jsonl"
    row = {"prompt": "a\u2028b", "completion": "c"}
    path.write_bytes(b"\xef\xbb\xbf" + (json.dumps(row, ensure_ascii=False) + "\n\n" + json.dumps(row)).encode())
    table = read_table(path)
    assert table.rows == [row, row] and table.numbers == [1, 3]


def test_csv_rows_start_lines_and_numeric_tag_columns(tmp_path):
    path = tmp_path / "d.csv"
    path.write_text('prompt,completion,level,kind\n"two\nlines",2,3,x\n\nc,d,,y\n')
    table = read_table(path)
    assert table.numbers == [2, 5]
    # demonstration fields stay text ("2" is a completion), a numbers-only column becomes numbers
    assert table.rows == [{"prompt": "two\nlines", "completion": "2", "level": 3, "kind": "x"},
                          {"prompt": "c", "completion": "d", "level": None, "kind": "y"}]


def test_limit_checks_the_rows_used_but_reads_the_whole_file(tmp_path):
    path = tmp_path / "d.jsonl"
    path.write_text('{"prompt": "a", "completion": "b"}\n{"prompt": "a", "completion": ""}\n')
    assert len(read_demonstrations(path, limit=1).rows) == 1
    path.write_text('{"prompt": "a", "completion": "b"}\n{"prompt": oops}\n')
    with pytest.raises(DataError, match="line 2"):
        read_demonstrations(path, limit=1)


def test_rewriting_needs_a_prompt_ending_with_a_user_turn(tmp_path):
    path = tmp_path / "d.jsonl"
    user, assistant = {"role": "user", "content": "q"}, {"role": "assistant", "content": "a"}
    path.write_text(json.dumps({"prompt": [user, assistant, {"role": "tool", "content": "5"}], "completion": [assistant]}))
    assert read_demonstrations(path).rows  # training continues after a tool turn
    with pytest.raises(DataError, match=r"line 1: field 'prompt': must end with a user turn .*roles: user, assistant, tool"):
        read_demonstrations(path, rewriting=True)
