"""Compatibility-guided rewriting of demonstrations.

`tracker` follows each sample's compatibility, `schedule` decides when a round runs and
which samples it takes, `round` generates, verifies and gain-gates candidates,
`store` keeps accepted rewrites and their provenance, and `manager.Rewriter` wires them
into `CADFTTrainer`. A round asks a generator (`generators`) for its own version of a
persistently incompatible demonstration, prompted with `prompt.rewrite_messages`.
"""

from .generators import (
    GENERATOR_SPECS,
    Candidate,
    GenerationSettings,
    LocalModelGenerator,
    OpenAIChatGenerator,
    PolicyGenerator,
    RewriteGenerator,
    VLLMGenerator,
    make_generator,
)
from .prompt import DEFAULT_REWRITE_TEMPLATE, check_template, rewrite_messages
from .round import REJECTION_REASONS, RewriteItem, RoundResult, run_round
from .schedule import budget_count, resolve_steps, round_due, select_samples
from .store import RewriteStore
from .tracker import CompatibilityTracker, SampleRecord

__all__ = [
    "REJECTION_REASONS",
    "CompatibilityTracker",
    "RewriteItem",
    "RewriteStore",
    "RoundResult",
    "SampleRecord",
    "budget_count",
    "resolve_steps",
    "round_due",
    "run_round",
    "select_samples",
    "DEFAULT_REWRITE_TEMPLATE",
    "GENERATOR_SPECS",
    "Candidate",
    "GenerationSettings",
    "LocalModelGenerator",
    "OpenAIChatGenerator",
    "PolicyGenerator",
    "RewriteGenerator",
    "VLLMGenerator",
    "check_template",
    "make_generator",
    "rewrite_messages",
]
