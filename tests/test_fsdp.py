"""CADFT under FSDP2 (accelerate's `fsdp2_prepare_model`, gloo, 2 CPU processes): two
steps with the parameters sharded give the update of one unsharded process with the same
global batch, for both normalisations (`batch` rescales the DTensor gradient shards).
See tests/fsdp_train.py for how FSDP is turned on for a CPU process group."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import torch

import fsdp_train
from helpers import torchrun

HERE = Path(__file__).parent
NORMALIZATIONS = ("ema", "batch")


def test_fsdp_two_processes_match_one(tmp_path):
    env = {**os.environ, "PYTHONPATH": f"{HERE}{os.pathsep}{os.environ.get('PYTHONPATH', '')}", "OMP_NUM_THREADS": "1"}
    out = str(tmp_path / "two-{normalization}.pt")
    cmd = [*torchrun(2), str(HERE / "fsdp_train.py"), out, "4", ",".join(NORMALIZATIONS)]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-4000:]
    assert "terminate called" not in proc.stderr
    fsdp_train.main(str(tmp_path / "one-{normalization}.pt"), 8, list(NORMALIZATIONS))  # the reference, unsharded
    for normalization in NORMALIZATIONS:
        one = torch.load(tmp_path / f"one-{normalization}.pt")
        two = torch.load(tmp_path / f"two-{normalization}.pt")
        assert (one["world"], one["fsdp"]) == (1, False)
        assert (two["world"], two["fsdp"]) == (2, True)
        assert two["sharded_params"] == len(two["delta"])  # every parameter was a DTensor shard
        assert abs(two["m"] - one["m"]) <= 1e-6 * abs(one["m"]), normalization
        moved = 0
        for k, d in one["delta"].items():
            where = f"{normalization} {k}"
            torch.testing.assert_close(two["delta"][k], d, rtol=1e-4, atol=1e-7, msg=lambda m, w=where: f"{w}: {m}")
            moved += int(d.abs().max() > 0)
        assert moved > 0
