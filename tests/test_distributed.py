"""Invariant 2 across processes: 2 ranks x 4 samples (gloo) == 1 rank x 8 samples, with a
calibration sample the ranks do not divide (7) or smaller than the ranks (1); and `cadft
train` on 2 processes gives the summary of 1 process."""

from __future__ import annotations

import json
import math
import os
import subprocess
from pathlib import Path

import pytest
import torch

from helpers import torchrun

HERE = Path(__file__).parent


def launch(nproc: int, per_device: int, out: Path, *variant) -> dict:
    env = {**os.environ, "PYTHONPATH": f"{HERE}{os.pathsep}{os.environ.get('PYTHONPATH', '')}", "OMP_NUM_THREADS": "1"}
    cmd = [*torchrun(nproc), str(HERE / "dist_train.py"), str(out), str(per_device), *map(str, variant)]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-4000:]
    return torch.load(out)


# calibration samples 7: not divisible by 2 ranks; 1: fewer rows than ranks. Each case
# also runs one estimator variant (normalisation, token power), with gradient clipping on
@pytest.mark.parametrize("variant", [(7, "batch", 0.5), (1, "ema", 1.0)], ids=["7-batch-alpha0.5", "1-ema-alpha1"])
def test_two_processes_match_one(tmp_path, variant):
    one = launch(1, 8, tmp_path / "one.pt", *variant)
    two = launch(2, 4, tmp_path / "two.pt", *variant)
    assert one["world"] == 1 and two["world"] == 2
    # Calibration scores each of its samples once, however many ranks share them
    assert math.isclose(two["calibrated_log_m"], one["calibrated_log_m"], rel_tol=0, abs_tol=1e-6)
    assert abs(two["m"] - one["m"]) <= 1e-6 * abs(one["m"])  # the normaliser is synchronised
    moved = 0
    for k, d in one["delta"].items():
        torch.testing.assert_close(two["delta"][k], d, rtol=1e-4, atol=1e-7, msg=lambda m: f"{k}: {m}")
        moved += int(d.abs().max() > 0)
    assert moved > 0


def train_cli(nproc: int, per_device: int, model: str, out: Path) -> subprocess.CompletedProcess:
    """`cadft train` under torchrun: one step on 7 embedded demonstrations (2 ranks do not
    divide them), with the start/end summary."""
    env = {**os.environ, "OMP_NUM_THREADS": "1", "TOKENIZERS_PARALLELISM": "false"}
    cmd = [*torchrun(nproc), "-m", "cadft.cli.main", "train", "--model_name_or_path", model,
           "--output_dir", str(out), "--max_steps", "1", "--per_device_train_batch_size", str(per_device),
           "--embedded_num_demos", "7", "--ddp_backend", "gloo", "--use_cpu", "true", "--bf16", "false",
           "--disable_tqdm", "true", "--report_to", "none"]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600, cwd=str(out.parent))
    assert proc.returncode == 0, proc.stderr[-4000:]
    return proc


def summary_scores(out: Path) -> dict:
    rows = [json.loads(line) for line in (out / "sample_scores.jsonl").read_text().splitlines()]
    return {(r["stage"], r["sample_id"]): (r["compatibility"], r["weight"]) for r in rows}


def test_two_processes_match_one_paper_estimator(tmp_path):
    """The paper's estimator z-scores u over the whole global batch: 2 ranks x 2 micro-batches
    x 2 accumulation steps (the pre-pass gathers both ranks' u) == 1 rank x 8 samples x 1
    (the training forward's u alone), and the logged step statistics agree."""
    one = launch(1, 8, tmp_path / "one.pt", 8, "zscore", 1.0, 1)
    two = launch(2, 2, tmp_path / "two.pt", 8, "zscore", 1.0, 2)
    assert one["world"] == 1 and two["world"] == 2 and one["m"] is None
    for k, d in one["delta"].items():
        torch.testing.assert_close(two["delta"][k], d, rtol=1e-4, atol=1e-7, msg=lambda m: f"{k}: {m}")
    for key in ("loss", "grad_norm", "cadft/u_mean", "cadft/u_std", "cadft/weight_mean", "cadft/weight_min",
                "cadft/downweighted_frac"):
        assert [h[key] for h in two["logs"]] == pytest.approx([h[key] for h in one["logs"]], rel=1e-4), key
    assert all(0 < h["cadft/downweighted_frac"] < 1 for h in one["logs"])


@pytest.mark.parametrize("loss_type", ["asft", "eaft"])
def test_two_processes_match_one_token_losses(tmp_path, loss_type):
    """ASFT's and EAFT's token losses under the paper's weights: 2 ranks x 2 micro-batches x 2
    accumulation steps == 1 rank x 8 samples, updates and the losses' own logged metrics."""
    one = launch(1, 8, tmp_path / "one.pt", 8, "zscore", 1.0, 1, loss_type)
    two = launch(2, 2, tmp_path / "two.pt", 8, "zscore", 1.0, 2, loss_type)
    assert one["world"] == 1 and two["world"] == 2
    # EAFT's gated NLL moves the weights ~1/p times more than DFT: a larger absolute float noise
    atol = 1e-6 if loss_type == "eaft" else 2e-7
    for k, d in one["delta"].items():
        torch.testing.assert_close(two["delta"][k], d, rtol=1e-4, atol=atol, msg=lambda m: f"{k}: {m}")
    keys = ["loss", "cadft/weight_mean"] + (["asft/kl"] if loss_type == "asft" else ["eaft/entropy", "eaft/gate"])
    for key in keys:
        assert [h[key] for h in two["logs"]] == pytest.approx([h[key] for h in one["logs"]], rel=1e-4, abs=1e-7), key


def test_cli_train_under_torchrun(tmp_path):
    """`cadft train` on 2 processes (gloo) ends cleanly on both: the model and the start/end
    summary are written once, and no rank aborts at exit (each destroys its process group).
    Both ranks score equal shards of the summary, and it equals the one of 1 process."""
    from cadft.model.tiny import save_tiny

    model = save_tiny(tmp_path / "model")
    one = tmp_path / "one"
    train_cli(1, 4, model, one)
    proc = train_cli(2, 2, model, tmp_path / "two")
    assert "terminate called" not in proc.stderr
    assert proc.stdout.count("per kind of demonstration") == 1  # the summary comes from rank 0 only
    two = tmp_path / "two"
    assert (two / "adapter_model.safetensors").is_file()
    # The checkpoint was staged by both ranks and published whole (cadft.training.checkpoint_folders)
    [checkpoint] = two.glob("checkpoint-*")
    names = {p.name for p in checkpoint.iterdir()}
    assert {"rng_state_0.pth", "rng_state_1.pth", "cadft_state.json", "trainer_state.json"} <= names
    assert not list(two.glob(".staging-*"))
    expected, got = summary_scores(one), summary_scores(two)
    assert len(got) == 14 and got.keys() == expected.keys()  # 7 demonstrations, at the start and the end
    for key, (compat, weight) in expected.items():
        assert got[key][0] == pytest.approx(compat, rel=1e-4), key
        # w = exp(-max(0, z)) with z = (u - mean) / std: the tiny model's u differ by ~1e-2, so the
        # float noise of one DDP step in u (~1e-6 relative) is amplified ~100-fold in w
        assert got[key][1] == pytest.approx(weight, rel=2e-3), key
    runs = [json.loads((out / "cadft_run.json").read_text()) for out in (one, two)]
    assert [r["cadft_estimator"] for r in runs] == ["zscore", "zscore"]
    assert runs[0]["cadft_normalizer"] is None and runs[1]["cadft_normalizer"] is None
