"""The `cadft` command line: `cadft train` on a tiny model, flags, config files, errors."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from cadft.cli.main import main
from cadft.model.tiny import save_tiny

pytestmark = pytest.mark.min_deps


@pytest.fixture(scope="module")
def tiny_dir(tmp_path_factory):
    return save_tiny(tmp_path_factory.mktemp("tiny") / "model")


FAST = ["--use_cpu", "true", "--bf16", "false", "--per_device_train_batch_size", "4", "--embedded_num_demos", "16",
        "--logging_steps", "1", "--disable_tqdm", "true", "--report_to", "none"]


def test_help_lists_commands(capsys):
    assert main(["--help"]) == 0
    out = capsys.readouterr().out
    for command in ("train", "score", "eval", "report", "rewrite"):
        assert command in out


def test_console_script_train_help():
    proc = subprocess.run([sys.executable, "-m", "cadft.cli.main", "train", "--help"], capture_output=True, text=True)
    assert proc.returncode == 0
    assert "--loss_type" in proc.stdout and "--cadft_beta" in proc.stdout and "--dataset_path" in proc.stdout


def test_unknown_command(capsys):
    assert main(["trian"]) == 2
    assert "unknown command 'trian'" in capsys.readouterr().err


@pytest.mark.parametrize("loss_type", ["cadft", "dft"])
def test_train_two_steps_with_summary(tiny_dir, tmp_path, capsys, loss_type):
    out = tmp_path / "run"
    code = main(["train", "--model_name_or_path", tiny_dir, "--output_dir", str(out), "--max_steps", "2",
                 "--loss_type", loss_type, *FAST])
    assert code == 0
    printed = capsys.readouterr().out
    assert "per kind of demonstration" in printed and "foreign" in printed and "AutoPeftModelForCausalLM" in printed
    assert (out / "adapter_model.safetensors").is_file()
    state = json.loads((out / "trainer_state.json").read_text())
    assert state["global_step"] == 2
    assert json.loads((out / "cadft_run.json").read_text())["loss_type"] == loss_type
    rows = [json.loads(line) for line in (out / "sample_scores.jsonl").read_text().splitlines()]
    assert {r["stage"] for r in rows} == {"start", "end"} and len(rows) == 32
    assert all(0 < r["compatibility"] <= 1 and "kind" in r for r in rows)


@pytest.mark.parametrize("flags,metrics", [
    (["--loss_type", "asft", "--asft_kl_coef", "0.2"], ["asft/kl"]),
    (["--loss_type", "eaft", "--eaft_entropy", "topk", "--cadft_estimator", "zscore"],
     ["eaft/gate", "eaft/entropy", "cadft/weight_mean"]),
], ids=["asft", "eaft-topk-zscore"])
def test_train_asft_and_eaft_with_their_flags(tiny_dir, tmp_path, capsys, flags, metrics):
    """`cadft train --loss_type asft|eaft`: the token losses' options are the config's field
    names, their metrics reach the logs, and cadft_run.json records them (LoRA: ASFT's
    reference is the adapter disabled)."""
    out = tmp_path / "run"
    assert main(["train", "--model_name_or_path", tiny_dir, "--output_dir", str(out), "--max_steps", "2",
                 *flags, *FAST]) == 0
    logs = [h for h in json.loads((out / "trainer_state.json").read_text())["log_history"] if "loss" in h]
    assert len(logs) == 2 and all(key in h for key in metrics for h in logs)
    run = json.loads((out / "cadft_run.json").read_text())
    assert run["loss_type"] == flags[1]
    if flags[1] == "asft":
        assert run["asft_kl_coef"] == 0.2 and run["cadft_estimator"] == "none" and logs[-1]["asft/kl"] > 0
    else:
        assert (run["eaft_entropy"], run["eaft_k"], run["cadft_estimator"]) == ("topk", 20, "zscore")


def test_train_full_finetune_on_a_file_with_yaml_config(tiny_dir, tmp_path, capsys):
    data = tmp_path / "d.jsonl"
    data.write_text("".join(json.dumps({"prompt": f"{i}+1=", "completion": str(i + 1)}) + "\n" for i in range(8)))
    config = tmp_path / "c.yaml"
    config.write_text(f"model_name_or_path: {tiny_dir}\nmax_steps: 5\nlearning_rate: 0.01\nuse_peft: false\n")
    out = tmp_path / "run"
    code = main(["train", "--config", str(config), "--max_steps", "1", "--dataset_path", str(data),
                 "--output_dir", str(out), *FAST])
    assert code == 0
    assert json.loads((out / "trainer_state.json").read_text())["global_step"] == 1  # the flag beat the file
    assert (out / "model.safetensors").is_file()


@pytest.mark.parametrize(
    "argv,message",
    [
        (["--loss_type", "sft"], "invalid choice: 'sft'"),
        (["--cadft_beta", "-1"], "cadft_beta must be >= 0"),
        (["--cadft_w_min", "2", "--cadft_w_max", "1"], "cadft_w_min"),
        (["--dataset_path", "/nonexistent/d.jsonl"], "file not found"),
        (["--max_stepz", "3"], "max_stepz"),
    ],
)
def test_bad_flags_give_clear_errors(argv, message, capsys):
    try:  # argparse exits on a bad flag; the entry point returns 2 for a bad data file
        code = main(["train", *argv])
    except SystemExit as exc:
        code = exc.code
    assert code == 2
    assert message in capsys.readouterr().err


def test_activation_checkpointing_is_off_by_default_without_a_deprecation_warning():
    """TRL turns it on; `cadft train` turns it off under whichever name the installed
    transformers has, without its FutureWarning for the old name, and either name given
    as a flag turns it on."""
    import warnings

    from cadft.cli.train import make_parser

    def parse(*argv):
        return make_parser().parse_args_and_config(list(argv))[1]

    with warnings.catch_warnings():
        warnings.simplefilter("error", FutureWarning)
        args = parse()
    assert args.gradient_checkpointing is False and getattr(args, "activation_checkpointing", False) is False
    assert parse("--gradient_checkpointing", "true").gradient_checkpointing is True
    if hasattr(args, "activation_checkpointing"):  # transformers >= 5.23
        args = parse("--activation_checkpointing")
        assert args.activation_checkpointing is True and args.gradient_checkpointing is True


def test_the_recipes_checkpointing_key_works_on_every_supported_transformers(tmp_path):
    """The recipes write `activation_checkpointing` (transformers >= 5.23); before 5.23 the
    field is `gradient_checkpointing`, and `cadft train --config recipe.yaml` stopped with
    "unknown keys" there (seen on transformers 5.17, benchmarks/gpu.sh). The key and the flag
    are taken under the installed release's name (the lowest-versions job runs this on 4.56)."""
    from cadft.cli.train import _renamed_flags, make_parser

    def checkpointing(args):
        return getattr(args, "activation_checkpointing", None) or args.gradient_checkpointing

    config = tmp_path / "recipe.yaml"
    for value in (True, False):
        config.write_text(f"activation_checkpointing: {str(value).lower()}\n")
        parsed = make_parser().parse_args_and_config(["--config", str(config)], return_remaining_strings=True)
        args, unknown_keys = parsed[1], parsed[3]
        assert not unknown_keys and checkpointing(args) is value
        argv = _renamed_flags(["--activation_checkpointing", str(value).lower()])
        assert checkpointing(make_parser().parse_args_and_config(argv)[1]) is value


def test_no_pinned_memory_without_an_accelerator(tmp_path):
    """torch warns at every epoch when a DataLoader pins memory with no accelerator to copy to."""
    import torch

    from cadft import CADFTConfig

    assert not torch.cuda.is_available()  # this test describes the CPU-only machine
    assert CADFTConfig(str(tmp_path)).dataloader_pin_memory is False
    assert CADFTConfig(str(tmp_path), use_cpu=True, dataloader_pin_memory=True).dataloader_pin_memory is False


def test_unknown_flags_and_config_keys_are_named(tmp_path, monkeypatch, capsys):
    """By the live parser (no flags saved yet) with the early check's wording."""
    monkeypatch.setenv("CADFT_CACHE", str(tmp_path / "cache"))
    config = tmp_path / "c.yaml"
    config.write_text("max_stepz: 3\nlearning_rate: 0.1\n")
    for argv, message in [(["--bogus_flag"], "unrecognized arguments: --bogus_flag."),
                          (["--config", str(config)], "--config: unknown keys: max_stepz.")]:
        with pytest.raises(SystemExit) as exit_:
            main(["train", *argv])
        assert exit_.value.code == 2 and message in capsys.readouterr().err
