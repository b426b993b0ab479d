"""python -m experiments.testbed: the testbed's run (run.py)."""

from experiments.testbed.run import main

if __name__ == "__main__":
    main()
