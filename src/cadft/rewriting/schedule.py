"""When rewriting runs and which samples it takes: pure functions of the training state.

Delayed: no round before `start_step`. Low-frequency: at most one round every
`interval` optimizer steps. Selection: samples flagged on at least `persistence`
consecutive visits, not already rewritten, least compatible first, at most `budget`.
"""

from __future__ import annotations

import math

__all__ = ["resolve_steps", "round_due", "budget_count", "select_samples"]


def resolve_steps(*, start_step: int | None, start_fraction: float | None, interval_steps: int | None,
                  steps_per_epoch: int, max_steps: int) -> tuple[int, int]:
    """(start step, interval) from the config: explicit steps win, then a fraction of
    training for the start; both default to one epoch."""
    if start_step is not None:
        start = start_step
    elif start_fraction is not None:
        start = math.ceil(start_fraction * max_steps)
    else:
        start = steps_per_epoch
    interval = interval_steps if interval_steps is not None else steps_per_epoch
    return max(start, 1), max(interval, 1)


def round_due(step: int, *, start: int, interval: int, last_round_step: int | None) -> bool:
    """Is a rewriting round due after optimizer step `step`?"""
    if step < start:
        return False
    return last_round_step is None or step - last_round_step >= interval


def budget_count(budget: float, dataset_size: int) -> int:
    """A budget below 1 is a fraction of the dataset (at least one sample); 1 or more is a count."""
    if budget <= 0:
        raise ValueError(f"rewrite budget must be > 0, got {budget}")
    return max(1, math.floor(budget * dataset_size)) if budget < 1 else int(budget)


def select_samples(persistent_ids: list[int], *, rewritten: set[int], budget: int) -> list[int]:
    """The first `budget` of the persistently incompatible ids (already ordered least
    compatible first) that have no accepted rewrite yet."""
    return [i for i in persistent_ids if i not in rewritten][:budget]
