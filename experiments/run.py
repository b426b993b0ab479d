"""The testbed's old command, `python experiments/run.py ...`, kept working: it runs
`python -m experiments.testbed ...` (from the repository root, as before)."""

import os
import sys

if __name__ == "__main__":
    os.execv(sys.executable, [sys.executable, "-m", "experiments.testbed", *sys.argv[1:]])
