"""Fast start-up: help, bad flags and bad data are answered without importing torch and
friends, from a snapshot of `cadft train`'s parser that must match the live parser.

(Timings are in benchmarks/startup.py; here only what is imported is checked.)"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from cadft.cli.train_flags import SNAPSHOT, light_parser, snapshot_text

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


def test_train_flag_snapshot_matches_the_live_parser():
    assert SNAPSHOT.read_text(encoding="utf-8") == snapshot_text(), (
        "src/cadft/cli/train_flags_snapshot.py is stale: run `python -m cadft.cli.train_flags`"
    )


def test_light_parser_reads_flags_as_the_live_parser_does():
    from cadft.cli.train import make_parser

    argv = ["--dataset_path", "d.jsonl", "--max_train_samples", "5", "--rewrite", "--use_peft", "false",
            "--lora_target_modules", "q_proj", "v_proj", "--lr_scheduler_type", "cosine", "--no_summary",
            "--learning_rate", "1e-4", "--model_name_or_path", "m"]
    light = vars(light_parser().parse_args(argv))
    data_args, args, model_args = make_parser().parse_args_and_config(argv)
    live = {**vars(data_args), **args.to_dict(), **vars(model_args)}
    assert set(light) == {"dataset_path", "max_train_samples", "rewrite", "use_peft", "lora_target_modules",
                          "lr_scheduler_type", "summary", "learning_rate", "model_name_or_path"}
    for dest, value in light.items():
        assert str(value) == str(live[dest]) or value == live[dest], dest


@pytest.mark.parametrize(
    "argv",
    [
        ["--help"],
        ["train", "--help"],
        ["score", "--help"],
        ["eval", "--help"],
        ["rewrite", "--help"],
        ["report", "--help"],
        ["train", "--bogus_flag"],
        ["train", "--dataset_path", "missing.jsonl"],
        ["train", "--dataset_path", "BAD"],
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
    argv = [str(bad) if a == "BAD" else a for a in argv]
    proc = subprocess.run([sys.executable, "-c", PROBE, json.dumps(argv), json.dumps(HEAVY)], capture_output=True,
                          text=True, timeout=120, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout.splitlines()[-1]) == []
