"""Running a study: worker processes, jobs run once each (and reused across invocations),
JSON files, and where a result came from (command, machine, commit, date).

    with process_pool(2, init_worker) as pool:
        jobs = Jobs(pool, run_one)
        key = jobs.submit(cfg, "runs/test/cadft-s0.json", cfg, out_dir)   # run_one(cfg, out_dir, result_path)
        result = jobs.result(key)
    provenance(argv, "experiments.real")   # {"command": "python -m experiments.real ...", "machine": ..., ...}
"""

from __future__ import annotations

import datetime
import json
import multiprocessing
import os
import platform
import shlex
import subprocess
from concurrent.futures import Future, ProcessPoolExecutor
from pathlib import Path

__all__ = ["machine", "git_commit", "save_json", "load_json", "process_pool", "Jobs", "command_line", "provenance"]

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


def command_line(module: str, argv) -> str:
    """The command that runs `module` with `argv`: 'python -m experiments.real --parts b'."""
    return shlex.join(["python", "-m", module, *argv])


def provenance(argv, module: str) -> dict:
    """Where a result comes from: the command, the machine, the date and the commit."""
    return {"command": command_line(module, argv), "machine": machine(),
            "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
            "commit": git_commit()}


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


def process_pool(jobs: int, initializer) -> ProcessPoolExecutor:
    """`jobs` worker processes, each set up by `initializer`. Spawned, not forked: a forked
    child would inherit the parent's torch threads and locks."""
    context = multiprocessing.get_context("spawn")
    return ProcessPoolExecutor(max_workers=jobs, mp_context=context, initializer=initializer)


class Jobs:
    """Runs `run_one(*args, result_path)` on a pool once per key (a key asked for twice runs
    once), in the order submitted. A job whose result file an earlier invocation left with
    the same `config` is not run again: its result is read back (`reused` counts them)."""

    def __init__(self, pool, run_one):
        self.pool, self.run_one = pool, run_one
        self.futures: dict = {}
        self.reused = 0

    def submit(self, key, result_path: str, *args, config: dict | None = None) -> object:
        """Run the job `key` unless it is known; `config`: reuse a finished result recorded
        with this config (None: always run)."""
        if key in self.futures:
            return key
        done = self._finished(result_path, config)
        if done is not None:
            future = Future()
            future.set_result(done)
            self.futures[key] = future
            self.reused += 1
        else:
            self.futures[key] = self.pool.submit(self.run_one, *args, result_path)
        return key

    @staticmethod
    def _finished(path: str, config: dict | None) -> dict | None:
        if config is None or not os.path.exists(path):
            return None
        with open(path) as f:
            result = json.load(f)
        return result if result.get("config") == json.loads(json.dumps(config)) else None

    def done(self, key) -> bool:
        return self.futures[key].done()

    def result(self, key) -> dict:
        return self.futures[key].result()
