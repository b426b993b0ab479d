"""The replacement draw: whether a selected target is replaced, decided per sample and round.

    replacement_draw(seed=0, round_index=2, sample_id=17, prob=0.5)
    # -> {"prob": 0.5, "value": 0.33..., "replace": True}

The paper replaces each selected target with probability 0.5. The draw is a pure
function of (seed, round, sample id): the same on every process, the same in a run
resumed from a checkpoint (no generator state to save), and independent of which other
samples a round selected. `value` is uniform in [0, 1); the target is replaced when
value < prob, so prob 0 never replaces and prob 1 always does. The draw is recorded in
the provenance of every selected sample.
"""

from __future__ import annotations

import random

__all__ = ["replacement_draw"]


def replacement_draw(*, seed: int, round_index: int, sample_id: int, prob: float) -> dict:
    if not 0 <= prob <= 1:
        raise ValueError(f"the replacement probability must be in [0, 1], got {prob}")
    # A string seed is hashed with SHA-512 by `random.Random`: stable across processes and
    # Python runs (unlike hash()), whatever PYTHONHASHSEED is
    value = random.Random(f"cadft-rewrite-draw:{seed}:{round_index}:{sample_id}").random()
    return {"prob": prob, "value": value, "replace": value < prob}
