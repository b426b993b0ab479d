"""`cadft rewrite`: one offline round on a tiny model, its files and its errors."""

from __future__ import annotations

import json

import pytest
from datasets import load_dataset

from cadft.cli.main import main
from cadft.data import mixed_quality_demos
from cadft.model.tiny import save_tiny


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    root = tmp_path_factory.mktemp("rw")
    data = root / "demos.jsonl"
    mixed_quality_demos(12, seed=0).to_json(str(data))
    return save_tiny(root / "model"), data


def test_offline_round_writes_provenance_and_keeps_every_row(setup, tmp_path, capsys):
    """The verified configuration with the earlier (flagged) selection."""
    model, data = setup
    out = tmp_path / "out"
    code = main(["rewrite", "--model_name_or_path", model, "--dataset_path", str(data), "--output_dir", str(out),
                 "--preset", "verified", "--selection", "flagged",
                 "--answer_column", "answer", "--budget", "4", "--flag_threshold", "10", "--max_new_tokens", "8",
                 "--verifier", "exact", "--batch_size", "4"])
    assert code == 0
    printed = capsys.readouterr().out
    assert "selected=4" in printed and "attempted=4" in printed
    records = [json.loads(line) for line in (out / "rewrites.jsonl").read_text().splitlines()]
    assert len(records) == 4
    for r in records:
        assert {"sample_id", "round", "step", "original", "rewrite", "compat_before", "compat_after",
                "num_candidates", "candidates", "generator"} <= set(r)
        assert r["num_candidates"] == 2 and r["generator"] == "policy"
        # a random tiny model cannot state the right answer: the verifier rejects every candidate
        assert not r["accepted"] and r["rejection"] == "verifier"
    rows = load_dataset("json", data_files=str(out / "rewritten_dataset.jsonl"), split="train")
    assert len(rows) == 12 and rows["sample_id"] == list(range(12))
    assert all(x is None for x in rows["rewritten_completion"])
    assert rows["completion"] == load_dataset("json", data_files=str(data), split="train")["completion"]


def test_offline_round_in_the_papers_configuration(setup, tmp_path, capsys):
    """The defaults: the highest u = -log c, the draw, the prompt alone, unverified."""
    model, data = setup
    out = tmp_path / "out"
    code = main(["rewrite", "--model_name_or_path", model, "--dataset_path", str(data), "--output_dir", str(out),
                 "--answer_column", "answer", "--budget", "6", "--max_new_tokens", "8", "--batch_size", "4",
                 "--seed", "1"])
    assert code == 0
    assert "selected the 6 with the highest u" in capsys.readouterr().out
    records = [json.loads(line) for line in (out / "rewrites.jsonl").read_text().splitlines()]
    assert len(records) == 6
    assert [r["u_tracked"] for r in records] == sorted((r["u_tracked"] for r in records), reverse=True)
    assert all(r["draw"]["prob"] == 0.5 and r["verifier"] == "none" for r in records)
    won = [r for r in records if r["draw"]["replace"]]
    assert 0 < len(won) < 6  # seed 1: some replaced, some kept
    for r in records:
        if r["draw"]["replace"]:
            assert r["accepted"] and r["num_candidates"] == 1 and r["candidates"][0]["verdict"] == "unverified"
            assert r["answer_correct"] in (True, False)  # checked against the answer column, gated or not
        else:
            assert not r["accepted"] and r["rejection"] == "lost_draw" and r["num_candidates"] == 0
    rows = load_dataset("json", data_files=str(out / "rewritten_dataset.jsonl"), split="train")
    assert sum(x is not None for x in rows["rewritten_completion"]) == len(won)


def test_template_needs_the_reference_in_the_prompt(setup, tmp_path, capsys):
    model, data = setup
    template = tmp_path / "t.txt"
    template.write_text("{question} {reference}")
    with pytest.raises(SystemExit) as exc:
        main(["rewrite", "--model_name_or_path", model, "--dataset_path", str(data), "--output_dir", str(tmp_path / "o"),
              "--template_file", str(template)])
    assert exc.value.code == 2 and "--reference_in_prompt true" in capsys.readouterr().err


@pytest.mark.parametrize(
    "extra,message",
    [
        (["--answer_column", "nope"], "--answer_column 'nope' is not a column"),
        (["--verifier", "nosuchmodule:fn"], "cannot import module"),
        (["--num_candidates", "0"], "--num_candidates must be >= 1"),
        (["--generator", "magic"], None),
    ],
)
def test_bad_arguments(setup, tmp_path, capsys, extra, message):
    model, data = setup
    argv = ["rewrite", "--model_name_or_path", model, "--dataset_path", str(data), "--output_dir", str(tmp_path / "o"), *extra]
    if message is None:
        with pytest.raises(ValueError, match="policy"):
            main(argv + ["--flag_threshold", "10", "--budget", "1", "--max_new_tokens", "4"])
        return
    with pytest.raises(SystemExit) as exc:
        main(argv)
    assert exc.value.code == 2 and message in capsys.readouterr().err


def test_missing_file(tmp_path, capsys):
    assert main(["rewrite", "--dataset_path", str(tmp_path / "none.jsonl"), "--output_dir", str(tmp_path)]) == 2
    assert "none.jsonl: file not found" in capsys.readouterr().err


@pytest.mark.parametrize("preset", ["paper", "verified"])
def test_the_command_runs_the_round_training_runs(tmp_path, preset):
    """The same CADFTConfig fields give the same `RewriteRound`, from `cadft rewrite`'s
    flags or from `cadft train --rewrite`'s config (the draw: --seed there, seed here)."""
    from cadft.cli.rewrite import _config, build_parser
    from cadft.config import CADFTConfig
    from cadft.rewriting.round import RewriteRound

    fields = {"rewrite_preset": preset, "rewrite_min_gain": 0.1, "rewrite_budget": 3, "rewrite_top_p": 0.8,
              "rewrite_selection": "flagged", "rewrite_flag_threshold": 0.7, "max_length": 512, "seed": 3}
    parser = build_parser()
    argv = ["--dataset_path", "d.jsonl", "--output_dir", str(tmp_path / "o")]
    args = parser.parse_args(argv + [f"--{name}={value}" for name, value in fields.items()])
    offline = RewriteRound(_config(parser, args))
    training = RewriteRound(CADFTConfig(str(tmp_path / "t"), rewrite=True, use_cpu=True, report_to="none", **fields))
    read = ("settings", "template", "verifier_name", "reference_in_prompt", "gain_gate", "min_gain", "replace_prob",
            "draw_seed", "max_length", "answer_column", "generator_spec", "generator_kwargs", "selection", "budget",
            "flag_threshold", "beta")
    assert {name: getattr(offline, name) for name in read} == {name: getattr(training, name) for name in read}
    assert (offline.verifier is None) == (training.verifier is None) == (preset == "paper")
