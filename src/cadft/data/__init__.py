"""Training data: the embedded mixed-quality demonstrations and loaders for user data."""

from .embedded import DEMO_KINDS, mixed_quality_demos
from .loading import DataFormatError, final_answer, load_demonstrations, to_trl_format

__all__ = [
    "DEMO_KINDS",
    "mixed_quality_demos",
    "DataFormatError",
    "final_answer",
    "load_demonstrations",
    "to_trl_format",
]
