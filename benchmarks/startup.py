"""Start-up time of the `cadft` command line: help, bad flags, bad data.

    python benchmarks/startup.py --repeats 3
    python benchmarks/startup.py --src /tmp/old/src     # another checkout's code, same venv

Each command runs in a fresh interpreter (`python -m cadft.cli.main ...`, what the
`cadft` script runs), `--repeats` times, interleaved; the table gives the median wall
time and the median CPU time of the child (user + system), the steadier of the two on a
machine shared with other jobs. The help of the light commands and the bad data files are
answered from argparse and the data checks, without importing torch; `cadft train --help`
and an unknown `cadft train` flag come from the live parser of the installed TRL and
transformers, which imports them (the early check knows only the flags cadft reads).
Results go in benchmarks/README.md.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

COMMANDS = [
    ["--help"],
    ["train", "--help"],
    ["score", "--help"],
    ["eval", "--help"],
    ["rewrite", "--help"],
    ["report", "--help"],
    ["train", "--bogus_flag"],
    ["train", "--dataset_path", "missing.jsonl"],
    ["train", "--dataset_path", "bad.jsonl"],
    ["score", "--dataset_path", "bad.jsonl", "--output", "s.jsonl"],
]


def time_once(argv: list[str], cwd: str, env: dict) -> tuple[float, float]:
    """(wall, child CPU) seconds of one `cadft ARGV` in a fresh interpreter."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    subprocess.run([sys.executable, "-m", "cadft.cli.main", *argv], cwd=cwd, env=env, stdout=subprocess.DEVNULL,
                   stderr=subprocess.DEVNULL, check=False)
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=3, help="Runs per command (the table gives medians).")
    parser.add_argument("--src", default=None, help="Time the package in this source folder instead (PYTHONPATH).")
    args = parser.parse_args()

    env = dict(os.environ)
    if args.src:
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(Path(args.src).resolve()), env.get("PYTHONPATH")]))
    with tempfile.TemporaryDirectory() as cwd:
        Path(cwd, "bad.jsonl").write_text(json.dumps({"prompt": "What is 2 + 3?", "completion": ""}) + "\n")
        times = {i: [] for i in range(len(COMMANDS))}
        for _ in range(args.repeats):
            for i, argv in enumerate(COMMANDS):
                times[i].append(time_once(argv, cwd, env))

    print(f"{date.today()}, {platform.machine()} {os.cpu_count()} cores, Python {platform.python_version()}, "
          f"{args.repeats} runs each, medians" + (f", code from {args.src}" if args.src else ""))
    print("\n| command | wall s | cpu s |\n|---|---|---|")
    for i, argv in enumerate(COMMANDS):
        wall = statistics.median(t[0] for t in times[i])
        cpu = statistics.median(t[1] for t in times[i])
        print(f"| `cadft {' '.join(argv)}` | {wall:.2f} | {cpu:.2f} |")


if __name__ == "__main__":
    main()
