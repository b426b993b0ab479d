"""python -m experiments.real: the real-model study's run (run.py)."""

import os

from experiments.real.run import main

if __name__ == "__main__":
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    main()
