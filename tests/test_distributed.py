"""Invariant 2 across processes: 2 ranks x 4 samples (gloo) == 1 rank x 8 samples."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import torch

from helpers import torchrun

HERE = Path(__file__).parent


def launch(nproc: int, per_device: int, out: Path) -> dict:
    env = {**os.environ, "PYTHONPATH": f"{HERE}{os.pathsep}{os.environ.get('PYTHONPATH', '')}", "OMP_NUM_THREADS": "1"}
    cmd = [*torchrun(nproc), str(HERE / "dist_train.py"), str(out), str(per_device)]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-4000:]
    return torch.load(out)


def test_two_processes_match_one(tmp_path):
    one = launch(1, 8, tmp_path / "one.pt")
    two = launch(2, 4, tmp_path / "two.pt")
    assert one["world"] == 1 and two["world"] == 2
    assert abs(two["m"] - one["m"]) <= 1e-6 * abs(one["m"])  # the normaliser is synchronised
    moved = 0
    for k, d in one["delta"].items():
        torch.testing.assert_close(two["delta"][k], d, rtol=1e-4, atol=1e-7, msg=lambda m: f"{k}: {m}")
        moved += int(d.abs().max() > 0)
    assert moved > 0


def test_cli_train_under_torchrun(tmp_path):
    """`cadft train` on 2 processes (gloo) ends cleanly on both: the model and the start/end
    summary are written once, and no rank aborts at exit (each destroys its process group)."""
    from cadft.tiny import save_tiny

    model = save_tiny(tmp_path / "model")
    out = tmp_path / "run"
    env = {**os.environ, "OMP_NUM_THREADS": "1", "TOKENIZERS_PARALLELISM": "false"}
    cmd = [*torchrun(2), "-m", "cadft.cli.main", "train", "--model_name_or_path", str(model),
           "--output_dir", str(out), "--max_steps", "2", "--per_device_train_batch_size", "2",
           "--embedded_num_demos", "8", "--ddp_backend", "gloo", "--use_cpu", "true", "--bf16", "false",
           "--disable_tqdm", "true", "--report_to", "none"]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600, cwd=str(tmp_path))
    assert proc.returncode == 0, proc.stderr[-4000:]
    assert "terminate called" not in proc.stderr
    assert proc.stdout.count("per kind of demonstration") == 1  # the summary comes from rank 0 only
    assert (out / "adapter_model.safetensors").is_file()
    rows = (out / "sample_scores.jsonl").read_text().splitlines()
    assert len(rows) == 16  # 8 demonstrations, scored at the start and at the end
