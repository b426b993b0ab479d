"""When rewriting runs and which samples it takes: pure functions of the training state.

Delayed: no round before the warm-up, `start` optimizer steps (the paper's T_warm, 3000
by default). Low-frequency: then a round every `interval` steps (the paper's K, 1000),
so rounds after steps T_warm, T_warm + K, T_warm + 2K, ... and never after the last step
(its rewrites would never be trained on). Either may be given as a fraction of training.

Selection, of the samples with no accepted rewrite yet, at most `budget` of them (the
paper: 0.5% of the training set per round):
- `top_u` (the paper's): the highest moving-average raw compatibility u (the
  length-normalised NLL) among the samples seen on at least `min_visits` visits since
  their last attempt;
- `flagged` (the project's earlier rule): samples whose weight was below a threshold on
  `persistence` consecutive visits, least compatible first (see `tracker.py`).
"""

from __future__ import annotations

import math

__all__ = [
    "PAPER_INTERVAL_STEPS",
    "PAPER_WARMUP_STEPS",
    "SELECTIONS",
    "budget_count",
    "planned_rounds",
    "resolve_steps",
    "round_due",
    "select_highest_u",
    "select_samples",
]

PAPER_WARMUP_STEPS = 3000  # T_warm
PAPER_INTERVAL_STEPS = 1000  # K
SELECTIONS = ("top_u", "flagged")


def _in_steps(steps: int | None, fraction: float | None, max_steps: int, default: int) -> int:
    if steps is not None:
        return steps
    if fraction is not None:
        return math.ceil(fraction * max_steps)
    return default


def resolve_steps(*, start_step: int | None, start_fraction: float | None, interval_steps: int | None,
                  interval_fraction: float | None = None, max_steps: int) -> tuple[int, int]:
    """(warm-up, interval) in optimizer steps: an explicit step count wins over a fraction
    of `max_steps` (rounded up); unset, the paper's 3000 and 1000."""
    start = _in_steps(start_step, start_fraction, max_steps, PAPER_WARMUP_STEPS)
    interval = _in_steps(interval_steps, interval_fraction, max_steps, PAPER_INTERVAL_STEPS)
    return max(start, 1), max(interval, 1)


def round_due(step: int, *, start: int, interval: int, last_round_step: int | None) -> bool:
    """Is a rewriting round due after optimizer step `step`?"""
    if step < start:
        return False
    return last_round_step is None or step - last_round_step >= interval


def planned_rounds(*, start: int, interval: int, max_steps: int) -> list[int]:
    """The steps after which rounds run in a run of `max_steps` steps (none after the last)."""
    return list(range(start, max_steps, interval))


def budget_count(budget: float, dataset_size: int) -> int:
    """A budget below 1 is a fraction of the dataset (at least one sample when it is not
    empty); 1 or more is a count."""
    if budget <= 0:
        raise ValueError(f"rewrite budget must be > 0, got {budget}")
    if budget >= 1:
        return int(budget)
    return max(1, math.floor(budget * dataset_size)) if dataset_size > 0 else 0


def select_samples(persistent_ids: list[int], *, rewritten: set[int], budget: int) -> list[int]:
    """`flagged` selection: the first `budget` of the persistently incompatible ids
    (already ordered least compatible first) that have no accepted rewrite yet."""
    return [i for i in persistent_ids if i not in rewritten][:budget]


def select_highest_u(tracked: dict[int, tuple[float, int]], *, min_visits: int, rewritten: set[int],
                     budget: int) -> list[int]:
    """`top_u` selection: of `tracked` (sample id -> (moving-average u, visits since its
    last attempt)), the `budget` ids with the highest u among those with at least
    `min_visits` visits and no accepted rewrite, highest first (ties: lower id first)."""
    eligible = [(u, i) for i, (u, visits) in tracked.items() if visits >= min_visits and i not in rewritten]
    eligible.sort(key=lambda entry: (-entry[0], entry[1]))
    return [i for _, i in eligible[:budget]]
