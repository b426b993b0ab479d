"""`cadft train` under torchrun: rank 0 alone prints the closing block, its progress bars
and warnings; the other ranks stay quiet (tests/test_distributed.py covers the summary)."""

from __future__ import annotations

import os
import subprocess

from helpers import torchrun


def test_only_rank_zero_reports(tmp_path):
    from cadft.model.tiny import save_tiny

    model = save_tiny(tmp_path / "model")
    env = {**os.environ, "OMP_NUM_THREADS": "1", "TOKENIZERS_PARALLELISM": "false"}
    cmd = [*torchrun(2), "-m", "cadft.cli.main", "train", "--model_name_or_path", str(model),
           "--output_dir", str(tmp_path / "run"), "--max_steps", "1", "--per_device_train_batch_size", "2",
           "--embedded_num_demos", "4", "--ddp_backend", "gloo", "--use_cpu", "true", "--bf16", "false",
           "--disable_tqdm", "true", "--report_to", "none", "--summary", "false"]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600, cwd=str(tmp_path))
    assert proc.returncode == 0, proc.stderr[-4000:]
    assert proc.stdout.count("Saved to") == 1 and proc.stdout.count("Load it with") == 1
    # One progress bar per step of the run, not one per process; no warning from rank 1
    assert proc.stderr.count("Loading weights:   0%") == 1, proc.stderr[-4000:]
    assert proc.stderr.count("Tokenizing train dataset:   0%") == 1, proc.stderr[-4000:]
    assert "[rank1]" not in proc.stderr
