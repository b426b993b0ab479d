"""The other processes wait out a long rewriting round on a group of their own, whose
timeout is `rewrite_round_timeout`, not the training group's `ddp_timeout` (2 processes,
DDP on gloo; the main process's generator takes longer than ddp_timeout). The training
group's timeout is 15 s, not less: under a loaded CI machine the ordinary collectives of
start-up and training can drift apart by a few seconds."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

from helpers import torchrun

HERE = Path(__file__).parent


def _run(tmp_path, *, ddp_timeout: int, sleep_s: float, round_timeout: float):
    """(the finished torchrun process, the file rank 0 writes the round's provenance to)"""
    env = {**os.environ, "PYTHONPATH": f"{HERE}{os.pathsep}{os.environ.get('PYTHONPATH', '')}",
           "OMP_NUM_THREADS": "1"}
    out = tmp_path / f"rows-{round_timeout:g}.jsonl"
    cmd = [*torchrun(2), str(HERE / "slow_round_train.py"), str(out), str(ddp_timeout), str(sleep_s),
           str(round_timeout)]
    return subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300), out


def test_a_round_longer_than_ddp_timeout_completes(tmp_path):
    proc, out = _run(tmp_path, ddp_timeout=15, sleep_s=30, round_timeout=180)
    assert proc.returncode == 0, proc.stderr[-4000:]
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(rows) == 2 and all(r["generator"] == "slow" for r in rows)


def test_the_round_timeout_is_the_limit(tmp_path):
    """The control: the same round with rewrite_round_timeout below the generation time fails."""
    proc, _ = _run(tmp_path, ddp_timeout=15, sleep_s=30, round_timeout=5)
    assert proc.returncode != 0
