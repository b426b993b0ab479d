"""Defaults a first run relies on: CADFTConfig on a CPU-only machine, and `cadft train`'s
first optimizer step (which must not run at learning rate 0)."""

from __future__ import annotations

import json

import torch
from safetensors.torch import load_file

from cadft import CADFTConfig
from cadft.cli.main import main
from cadft.model.tiny import save_tiny


def test_config_defaults_to_float32_without_a_bf16_accelerator(tmp_path):
    assert not torch.cuda.is_available()  # this test describes the CPU-only machine
    args = CADFTConfig(str(tmp_path))
    assert args.bf16 is False and args.fp16 is False and args.report_to == []
    # An explicit choice is kept: bf16 on the CPU is valid with use_cpu
    assert CADFTConfig(str(tmp_path), bf16=True, use_cpu=True).bf16 is True


def test_one_step_of_cadft_train_changes_the_weights(tmp_path):
    model = save_tiny(tmp_path / "model")
    out = tmp_path / "run"
    code = main(["train", "--model_name_or_path", model, "--output_dir", str(out), "--max_steps", "1",
                 "--use_peft", "false", "--embedded_num_demos", "8", "--summary", "false", "--disable_tqdm", "true"])
    assert code == 0
    logged = [entry for entry in json.loads((out / "trainer_state.json").read_text())["log_history"] if "loss" in entry]
    assert logged[0]["step"] == 1 and logged[0]["learning_rate"] > 0
    before, after = load_file(f"{model}/model.safetensors"), load_file(str(out / "model.safetensors"))
    moved = [name for name in before if not torch.equal(before[name], after[name])]
    assert moved, "step 1 left every weight unchanged"
