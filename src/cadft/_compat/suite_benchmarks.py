"""Moved to `cadft.evaluation.benchmarks`; this module keeps the old import path working."""

from ..evaluation.benchmarks import (
                                     BENCHMARKS,
                                     FOLDERS,
                                     HUB,
                                     PAPER,
                                     Problem,
                                     load_problems,
                                     locate,
                                     prompt_text,
                                     reference_of,
                                     shared_data_dir,
)

__all__ = ["BENCHMARKS", "FOLDERS", "HUB", "PAPER", "Problem", "load_problems", "locate", "prompt_text",
           "reference_of", "shared_data_dir"]
