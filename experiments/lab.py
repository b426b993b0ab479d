"""Helpers both experiments share (the testbed, experiments/run.py, and the real model,
experiments/real/): where a page came from, JSON files, quantiles, the pool of worker processes.

    lab.machine()      # "AMD EPYC ... (2 logical CPUs); Python 3.11.7, torch 2.13.0+cpu, ..."
    lab.git_commit()   # "a80ca43"
"""

from __future__ import annotations

import json
import math
import multiprocessing
import os
import platform
import subprocess
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

__all__ = ["machine", "git_commit", "save_json", "load_json", "quantile", "process_pool"]

HERE = os.path.dirname(os.path.abspath(__file__))


def _cpu() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown CPU"


def machine() -> str:
    """One line: the GPU or CPU model, logical CPUs, torch threads, the library versions."""
    import torch
    import transformers
    import trl

    hw = f"GPU {torch.cuda.get_device_name(0)}" if torch.cuda.is_available() else _cpu()
    return (f"{hw} ({os.cpu_count()} logical CPUs, {torch.get_num_threads()} torch threads); Python "
            f"{platform.python_version()}, torch {torch.__version__}, transformers {transformers.__version__}, "
            f"trl {trl.__version__}")


def git_commit() -> str:
    """The short hash of HEAD, or "unknown" outside a git checkout."""
    try:
        return subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=HERE, capture_output=True, text=True,
                              check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def save_json(obj, path) -> None:
    """Write `obj` to `path` (parents created) through a temporary file: a crash never leaves half a file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(obj, indent=1, default=float))
    os.replace(tmp, path)


def load_json(path):
    """The object in `path`, or None when there is no such file."""
    path = Path(path)
    return json.loads(path.read_text()) if path.is_file() else None


def quantile(xs, q: float) -> float:
    """Linear-interpolation quantile of the values `xs` (numpy's default)."""
    xs = sorted(float(x) for x in xs)
    pos = q * (len(xs) - 1)
    lo, hi = math.floor(pos), math.ceil(pos)
    return xs[lo] + (xs[hi] - xs[lo]) * (pos - lo)


def process_pool(jobs: int, initializer) -> ProcessPoolExecutor:
    """`jobs` worker processes, each set up by `initializer`. Spawned, not forked: a forked
    child would inherit the parent's torch threads and locks."""
    context = multiprocessing.get_context("spawn")
    return ProcessPoolExecutor(max_workers=jobs, mp_context=context, initializer=initializer)
