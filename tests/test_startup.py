"""Fast start-up: help, bad config/data/model arguments and (once a run saved the live
parser's flags for the installed versions) `cadft train --help` and unknown flags are
answered without importing torch and friends; the early check reads its flags as the
live parser of the installed transformers/TRL does.

(Timings are in benchmarks/startup.py; here only what is imported is checked.)"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys

import pytest

from cadft.cli.main import main
from cadft.cli.train_flags import early_parser, precheck

pytestmark = pytest.mark.min_deps

HEAVY = ("torch", "transformers", "trl", "datasets", "peft", "accelerate")

# Runs `cadft ARGV` in a fresh interpreter, then prints which heavy modules it imported
PROBE = """
import json, sys
from cadft.cli.main import main
try:
    main(json.loads(sys.argv[1]))
except SystemExit:
    pass
print(json.dumps(sorted(m for m in json.loads(sys.argv[2]) if m in sys.modules)))
"""


@pytest.fixture(autouse=True)
def empty_flag_cache(tmp_path, monkeypatch):
    """No flags saved from an earlier run, unless a test saves them."""
    monkeypatch.setenv("CADFT_CACHE", str(tmp_path / "cache"))


def probe(argv: list[str], cwd) -> tuple[str, str, list[str]]:
    """stdout, stderr and the heavy modules imported by `cadft ARGV` in a fresh interpreter."""
    proc = subprocess.run([sys.executable, "-c", PROBE, json.dumps(argv), json.dumps(HEAVY)], capture_output=True,
                          text=True, timeout=300, cwd=cwd)
    assert proc.returncode == 0, proc.stderr
    out, _, imported = proc.stdout.rstrip("\n").rpartition("\n")
    return out, proc.stderr, json.loads(imported)


@pytest.fixture(scope="module")
def live_parser():
    from cadft.cli.train import make_parser

    return make_parser()


def test_early_flags_are_flags_of_the_live_parser(live_parser):
    live = {}
    for action in live_parser._actions:
        live.setdefault(action.dest, set()).update(action.option_strings)
    for action in early_parser()._actions:
        if action.dest != "config":  # TRL's parser reads --config itself
            assert set(action.option_strings) <= live.get(action.dest, set()), action.dest


def test_early_parser_reads_flags_as_the_live_parser_does(live_parser):
    argv = ["--dataset_path", "d.jsonl", "--max-train-samples", "5", "--rewrite", "--use_peft", "false",
            "--lora_target_modules", "q_proj", "v_proj", "--lr_scheduler_type", "cosine", "--no_summary",
            "--learning_rate", "1e-4", "--model_name_or_path", "m"]
    early, rest = early_parser().parse_known_args(argv)
    data_args, args, model_args = live_parser.parse_args_and_config(argv)
    live = {**vars(data_args), **args.to_dict(), **vars(model_args)}
    assert vars(early) == {"dataset_path": "d.jsonl", "max_train_samples": "5", "rewrite": True,
                           "model_name_or_path": "m"}
    for dest, value in vars(early).items():
        assert str(value) == str(live[dest]), dest
    assert "--learning_rate" in rest and "--lora_target_modules" in rest  # left to the live parser


def test_help_lists_every_flag_of_the_installed_versions(live_parser, capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["train", "--help"])
    assert exit_.value.code == 0
    printed = capsys.readouterr().out
    flags = [s for a in live_parser._actions if not isinstance(a, argparse._HelpAction) for s in a.option_strings]
    assert len(flags) > 200  # TrainingArguments, SFTConfig, CADFTConfig, ModelConfig, DataArguments
    assert [f for f in flags if f not in printed] == []
    with pytest.raises(SystemExit):
        main(["train", "--help"])  # now from the flags the first call saved
    assert capsys.readouterr().out == printed


def test_a_run_saves_the_flags_and_later_runs_answer_help_and_unknown_flags_without_torch(tmp_path):
    first_help, _, imported = probe(["train", "--help"], tmp_path)
    assert "torch" in imported and "--cadft_beta" in first_help  # the live parser answered
    help_, _, imported = probe(["train", "--help"], tmp_path)
    assert imported == [] and help_ == first_help
    _, err, imported = probe(["train", "--bogus_flag", "1", "--learning_rate", "1e-4"], tmp_path)
    assert imported == [] and "unrecognized arguments: --bogus_flag. Run `cadft train --help`" in err
    bad = tmp_path / "bad.jsonl"
    bad.write_text(json.dumps({"prompt": "a", "completion": ""}) + "\n")
    _, err, imported = probe(["train", "--learning_r", "1e-4", "--dataset_path", str(bad)], tmp_path)
    assert imported == [] and "bad.jsonl" in err  # an abbreviation, as the live parser takes it


@pytest.mark.parametrize("flag", ["--bogus_flag", "--cadft_bogus"])
def test_unknown_flag_is_refused_by_the_live_parser(flag, capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["train", flag, "1"])
    assert exit_.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith("usage: cadft train") and flag in err and "Run `cadft train --help`" in err


def test_flags_the_early_check_does_not_know_pass_it(tmp_path):
    data = tmp_path / "d.jsonl"
    data.write_text(json.dumps({"prompt": "1+1=", "completion": "2"}) + "\n")
    precheck(["--activation_checkpointing", "true", "--dataset_path", str(data), "--max_train_samples", "none",
              "--no_such_flag", "x"])  # the live parser judges them


@pytest.mark.parametrize(
    "argv",
    [
        ["--help"],
        ["score", "--help"],
        ["eval", "--help"],
        ["rewrite", "--help"],
        ["report", "--help"],
        ["train", "--dataset_path", "missing.jsonl"],
        ["train", "--dataset_path", "BAD"],
        ["train", "--dataset_path", "BAD", "--max_train_samples", "1", "--learning_rate", "1e-4"],
        ["train", "--config", "BAD_YAML"],
        ["train", "--config", "missing.yaml"],
        ["train", "--dataset_name", "x", "--dataset-path", "d.jsonl"],
        ["train", "--model_name_or_path", "./no/such/model"],
        ["score", "--dataset_path", "BAD", "--output", "s.jsonl"],
        ["eval", "--dataset_path", "BAD"],
        ["eval", "--benchmark", "amc23", "--benchmark_path", "BAD"],
        ["rewrite", "--dataset_path", "BAD", "--output_dir", "out"],
    ],
    ids=lambda argv: " ".join(argv),
)
def test_help_and_early_errors_import_no_heavy_module(argv, tmp_path):
    bad = tmp_path / "bad.jsonl"
    bad.write_text(json.dumps({"prompt": "a", "completion": ""}) + "\n")
    (tmp_path / "bad.yaml").write_text("- a list, not a mapping\n")
    argv = [{"BAD": str(bad), "BAD_YAML": str(tmp_path / "bad.yaml")}.get(a, a) for a in argv]
    _, err, imported = probe(argv, tmp_path)
    assert imported == []
    if argv[0] == "train":
        assert "error:" in err
