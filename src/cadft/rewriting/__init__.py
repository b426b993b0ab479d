"""Compatibility-guided rewriting of demonstrations.

`tracker` follows each sample's compatibility c and u = -log c, `schedule` decides when a
round runs and which samples it takes, `draw` whether each selected target is replaced,
`round` generates candidates and screens them (and, as options, verifies and gain-gates
them), `store` keeps accepted rewrites and their provenance, and `presets` holds the two
configurations (the paper's procedure, the project's verified rewriting).
`round.RewriteRound` is the round a config sets (selection, items, gates): training runs
it through `manager.Rewriter`, which wires it into `CADFTTrainer`, and `cadft rewrite`
runs it once over a dataset. A round asks a generator (`generators`) for its own answer
to a persistently incompatible demonstration's prompt: the prompt alone
(`prompt.prompt_alone`) or with the original as a reference (`prompt.rewrite_messages`).
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
from .draw import replacement_draw
from .presets import PRESETS, resolve_gates
from .prompt import DEFAULT_REWRITE_TEMPLATE, check_template, prompt_alone, rewrite_messages
from .round import REJECTION_REASONS, RewriteItem, RewriteRound, RoundResult, run_round
from .schedule import budget_count, planned_rounds, resolve_steps, round_due, select_highest_u, select_samples
from .store import RewriteStore
from .tracker import CompatibilityTracker, SampleRecord

__all__ = [
    "PRESETS",
    "REJECTION_REASONS",
    "CompatibilityTracker",
    "RewriteItem",
    "RewriteRound",
    "RewriteStore",
    "RoundResult",
    "SampleRecord",
    "budget_count",
    "planned_rounds",
    "replacement_draw",
    "resolve_gates",
    "resolve_steps",
    "round_due",
    "run_round",
    "select_highest_u",
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
    "prompt_alone",
    "rewrite_messages",
]
