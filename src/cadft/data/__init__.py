"""Training data: the embedded mixed-quality demonstrations and loaders for user data.

The embedded data (which imports `datasets`) loads on first use, so that reading and
checking a data file (`read_demonstrations`, `cadft.data.files`, `cadft.data.validate`)
stays light enough for a command to do it before importing torch.
"""

from importlib import import_module

from .loading import DataError, DataFormatError, final_answer, load_demonstrations, read_demonstrations, to_trl_format

_LAZY = {"DEMO_KINDS": "embedded", "mixed_quality_demos": "embedded"}

__all__ = [
    "DEMO_KINDS",
    "mixed_quality_demos",
    "DataError",
    "DataFormatError",
    "final_answer",
    "load_demonstrations",
    "read_demonstrations",
    "to_trl_format",
]


def __getattr__(name):
    if name in _LAZY:
        return getattr(import_module(f".{_LAZY[name]}", __name__), name)
    raise AttributeError(f"module 'cadft.data' has no attribute {name!r}")
