"""`cadft score` and `cadft rewrite` flags named as CADFTConfig's fields: read from the
dataclass's source as the dataclass defines them, equal in effect to the old short flags,
which warn naming the new flag; an old and a new flag that disagree are an error."""

from __future__ import annotations

import dataclasses
import json
import typing

import pytest

from cadft import CADFTConfig
from cadft.cli import rewrite, score
from cadft.cli.config_flags import config_fields, parse_bool
from cadft.cli.main import main
from cadft.data import mixed_quality_demos
from cadft.model.tiny import save_tiny

COMMANDS = {"score": (score, ["--dataset_path", "d.jsonl", "--output", "s.jsonl"]),
            "rewrite": (rewrite, ["--dataset_path", "d.jsonl", "--output_dir", "o"])}
PAIRS = [(command, field, old) for command, (module, _) in COMMANDS.items()
         for field, old in module._OLD_FLAGS.items()]
_SAMPLES = {str: ("x", "y"), int: ("3", "7"), float: ("0.25", "0.5"), parse_bool: ("true", "false")}


def _values(field: str) -> tuple[str, str]:
    """Two different values the flag of `field` accepts."""
    spec = config_fields()[field]
    return (spec["choices"][-1], spec["choices"][0]) if spec["choices"] else _SAMPLES[spec["type"]]


def _parse(command: str, extra: list[str]):
    module, required = COMMANDS[command]
    return vars(module.build_parser().parse_args([*required, *extra]))


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    root = tmp_path_factory.mktemp("flags")
    data = root / "demos.jsonl"
    mixed_quality_demos(6, seed=0).to_json(str(data))
    return save_tiny(root / "model"), data


def test_each_flag_is_the_config_field_as_the_dataclass_defines_it():
    dataclass_fields = {f.name: f for f in dataclasses.fields(CADFTConfig)}
    # The resolved annotations: a field's `type` is the annotation's text, until transformers'
    # argument parser, built by an earlier test, replaces it with the type itself
    hints = typing.get_type_hints(CADFTConfig)
    for field in {field for _, field, _ in PAIRS}:
        read, real = config_fields()[field], dataclass_fields[field]
        assert read["default"] == real.default, field
        assert read["help"] == real.metadata["help"], field
        assert read["choices"] == real.metadata.get("choices"), field
        types = set(typing.get_args(hints[field])) - {type(None)} or {hints[field]}
        assert read["type"] in types or read["type"].__name__ == "parse_bool", field


@pytest.mark.parametrize("command, field, old", PAIRS, ids=lambda x: str(x))
def test_old_flag_sets_the_field_as_the_new_one_and_warns_naming_it(command, field, old, capsys):
    value, other = _values(field)
    new = _parse(command, [f"--{field}", value])
    assert capsys.readouterr().err == ""
    assert _parse(command, [old, value])[field] == new[field]
    err = capsys.readouterr().err
    assert f"cadft {command}: warning: {old} is deprecated; use --{field} (the CADFTConfig field" in err
    # Both, agreeing: the value, with the warning; disagreeing: an error that names both
    assert _parse(command, [f"--{field}", value, old, value])[field] == new[field]
    capsys.readouterr()
    with pytest.raises(SystemExit) as exit_:
        _parse(command, [old, other, f"--{field}", value])
    err = capsys.readouterr().err
    assert exit_.value.code == 2 and old in err and f"--{field}" in err and "disagree" in err


@pytest.mark.parametrize("command", COMMANDS)
def test_help_lists_the_field_flags_and_names_the_old_ones_as_deprecated(command, capsys):
    with pytest.raises(SystemExit):
        main([command, "--help"])
    printed = capsys.readouterr().out
    options, _, epilog = printed.partition("Deprecated, still accepted with a warning:")
    for old_flag in COMMANDS[command][0]._OLD_FLAGS.values():
        assert f"\n  {old_flag} " not in options and old_flag in epilog
    for field in COMMANDS[command][0]._OLD_FLAGS:
        assert f"--{field}" in options


@pytest.mark.parametrize(
    "extra, message",
    [
        (["--cadft_beta", "-1"], "--cadft_beta must be >= 0"),
        (["--cadft_w_max", "3"], "--cadft_w_max: no meaning for --cadft_estimator zscore"),
        (["--cadft_estimator", "ema", "--cadft_w_min", "2", "--cadft_w_max", "1"],
         "need 0 <= --cadft_w_min <= --cadft_w_max"),
    ],
)
def test_score_messages_name_the_flags_given(extra, message, capsys):
    with pytest.raises(SystemExit) as exit_:
        score.main(["--dataset_path", "d.jsonl", "--output", "s.jsonl", *extra])
    assert exit_.value.code == 2 and message in capsys.readouterr().err


def test_score_old_and_new_flags_write_the_same_scores(setup, tmp_path, capsys):
    model, data = setup
    runs = {}
    for name, flags in {"old": ["--normalization", "ema", "--beta", "2", "--w_min", "0.2", "--w_max", "2"],
                        "new": ["--cadft_estimator", "ema", "--cadft_beta", "2", "--cadft_w_min", "0.2",
                                "--cadft_w_max", "2"]}.items():
        out = tmp_path / f"{name}.jsonl"
        assert main(["score", "--model_name_or_path", model, "--dataset_path", str(data), "--output", str(out),
                     "--top_k", "0", *flags]) == 0
        runs[name] = [json.loads(line) for line in out.read_text().splitlines()]
        printed = capsys.readouterr().out.split("\nwrote ")[0].splitlines()
        runs[name + " printed"] = [line for line in printed if not line.startswith("scored ")]  # its timing differs
    assert runs["old"] == runs["new"] and runs["old printed"] == runs["new printed"]
    assert len(runs["new"]) == 6 and "w_min=0.2, w_max=2" in "\n".join(runs["new printed"])


def test_rewrite_old_and_new_flags_write_the_same_round(setup, tmp_path, capsys):
    model, data = setup
    runs = {}
    for name, flags in {"old": ["--preset", "verified", "--selection", "flagged", "--budget", "2",
                                "--flag_threshold", "10", "--max_new_tokens", "4", "--verifier", "exact"],
                        "new": ["--rewrite_preset", "verified", "--rewrite_selection", "flagged", "--rewrite_budget",
                                "2", "--rewrite_flag_threshold", "10", "--rewrite_max_new_tokens", "4",
                                "--rewrite_verifier", "exact"]}.items():
        out = tmp_path / name
        assert main(["rewrite", "--model_name_or_path", model, "--dataset_path", str(data), "--output_dir", str(out),
                     "--batch_size", "4", *flags]) == 0
        runs[name] = (out / "rewrites.jsonl").read_text()
        runs[name + " err"] = capsys.readouterr().err
    assert runs["old"] == runs["new"] and len(runs["new"].splitlines()) == 2
    assert "--preset is deprecated; use --rewrite_preset" in runs["old err"] and "deprecated" not in runs["new err"]


def test_rewrite_template_message_names_the_new_flags(setup, tmp_path, capsys):
    model, data = setup
    template = tmp_path / "t.txt"
    template.write_text("{question} {reference}")
    with pytest.raises(SystemExit) as exit_:
        main(["rewrite", "--model_name_or_path", model, "--dataset_path", str(data), "--output_dir",
              str(tmp_path / "o"), "--template_file", str(template), "--rewrite_budget", "1"])
    err = capsys.readouterr().err
    assert exit_.value.code == 2 and "--rewrite_reference_in_prompt true (or --rewrite_preset verified)" in err


# ---- cadft_normalization, renamed cadft_estimator (it chooses the estimator) --------------

def test_the_old_field_name_sets_the_estimator_with_a_warning(tmp_path):
    from cadft import defaults
    from cadft.estimators import RunningNormalized, make_estimator

    assert defaults.RENAMED == {"cadft_normalization": "cadft_estimator"}
    with pytest.warns(FutureWarning, match="cadft_normalization is renamed cadft_estimator"):
        args = CADFTConfig(str(tmp_path), use_cpu=True, cadft_normalization="ema")
    assert args.cadft_estimator == "ema" and args.cadft_normalization is None and args.cadft_w_max == 3.0
    with pytest.warns(FutureWarning):  # the same value twice is fine
        assert CADFTConfig(str(tmp_path), use_cpu=True, cadft_normalization="ema",
                           cadft_estimator="ema").cadft_estimator == "ema"
    with pytest.raises(ValueError, match="disagree"), pytest.warns(FutureWarning):
        CADFTConfig(str(tmp_path), use_cpu=True, cadft_normalization="ema", cadft_estimator="zscore")
    with pytest.warns(FutureWarning):  # an options dict (the experiments build estimators so)
        assert isinstance(make_estimator({"cadft_normalization": "ema", "cadft_beta": 1.0}), RunningNormalized)


@pytest.mark.parametrize("command", [c for c, (m, _) in COMMANDS.items() if "cadft_estimator" in m._OLD_FLAGS])
def test_the_old_field_name_is_a_deprecated_flag(command, capsys):
    assert _parse(command, ["--cadft_normalization", "ema"])["cadft_estimator"] == "ema"
    assert "--cadft_normalization is deprecated; use --cadft_estimator" in capsys.readouterr().err


def test_cadft_train_takes_the_old_field_name_as_a_flag():
    from cadft.cli.train import make_parser

    with pytest.warns(FutureWarning, match="cadft_normalization is renamed cadft_estimator"):
        args = make_parser().parse_args_and_config(["--cadft_normalization", "ema"])[1]
    assert args.cadft_estimator == "ema"
