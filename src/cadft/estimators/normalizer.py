"""The running normaliser m of the CADFT sample weights, kept in log space.

m is an exponential moving average, over optimizer steps, of the mean of c**beta over
the *global* batch (all micro-batches of the accumulation window, all processes):

    m <- decay * m + (1 - decay) * mean_global(c**beta)

It is initialised before the first step from a calibration sample scored in inference
mode, and only changes between optimizer steps, so a sample's weight does not depend on
how the global batch is split into micro-batches or processes.

c**beta underflows float32 (and, for long incompatible rows, float64), so everything is
held as logs: the trainer passes beta * s_i, and sums are taken as exp(x - shift) with a
shift every process agrees on (log m of the previous step, or a global maximum).
"""

from __future__ import annotations

import math
import sys
from collections.abc import Callable

import torch

__all__ = ["RunningNormalizer", "log_mean_exp"]

Reduce = Callable[[torch.Tensor], torch.Tensor]


def log_mean_exp(values: torch.Tensor, reduce_max: Reduce | None = None, reduce_sum: Reduce | None = None):
    """(log mean exp(values), count) over every process's (n,) values, in float64.

    `reduce_max` / `reduce_sum` all-reduce a float64 tensor across processes (None on one
    process). Returns (None, 0) when no process has a value."""
    x = values.detach().double().cpu()
    local_max = x.max() if x.numel() else torch.tensor(-math.inf, dtype=torch.float64)
    shift = reduce_max(local_max.reshape(1))[0] if reduce_max else local_max
    sums = torch.stack([(x - shift).exp().sum() if x.numel() else x.new_zeros(()), x.new_tensor(float(x.numel()))])
    total, count = (reduce_sum(sums) if reduce_sum else sums).tolist()
    if count <= 0:
        return None, 0
    return float(shift) + math.log(total / count), int(count)


class RunningNormalizer:
    """EMA of mean(c**beta) over optimizer steps, stored as log m.

    Usage, per optimizer step:
        w = sample_weights(c, beta=beta, log_normalizer=norm.log_value, ...)  # every micro-batch
        norm.observe(beta * s[valid])                                         # every micro-batch
        norm.step(all_reduce_sum)                                             # once, after optimizer.step()
    """

    def __init__(self, decay: float = 0.9):
        if not 0.0 <= decay < 1.0:
            raise ValueError(f"decay must be in [0, 1), got {decay}")
        self.decay = decay
        self.log_value: float | None = None  # log m; None until calibrated or restored
        self.num_updates = 0
        self._sum = 0.0  # sum of exp(x - log m) over the pending step's observations
        self._count = 0.0

    @property
    def ready(self) -> bool:
        return self.log_value is not None

    @property
    def value(self) -> float | None:
        """m itself (0.0 where it is below float64's range; use `log_value` for maths)."""
        return None if self.log_value is None else math.exp(self.log_value)

    def calibrate(self, log_mean: float, count: float) -> None:
        """Set log m to a calibration log-mean of c**beta (already reduced over processes)."""
        if count <= 0 or log_mean is None:
            raise ValueError("calibration saw no sample with a trainable token")
        self.log_value = float(log_mean)

    def observe(self, log_tempered: torch.Tensor) -> None:
        """Add this micro-batch's valid beta * s_i values, shape (n,), to the pending step."""
        if not self.ready:
            raise RuntimeError("observe() before the normaliser was calibrated")
        x = log_tempered.detach().double().cpu() - self.log_value  # log of the raw weights, near 0
        self._sum += float(x.exp().sum())
        self._count += float(x.numel())

    def step(self, all_reduce_sum: Reduce | None = None) -> None:
        """Fold the pending observations of one optimizer step into m.

        `all_reduce_sum` sums a float64 tensor over processes; every process must call
        `step` at the same point so they all keep the same m.
        """
        pending = torch.tensor([self._sum, self._count], dtype=torch.float64)
        if all_reduce_sum is not None:
            pending = all_reduce_sum(pending)
        self._sum, self._count = 0.0, 0.0
        total, count = pending.tolist()
        if count <= 0:
            return
        # m' = decay * m + (1 - decay) * m * mean(exp(x - log m)), all relative to m
        ratio = self.decay + (1 - self.decay) * total / count
        self.log_value += math.log(max(ratio, sys.float_info.min))  # 0 only if every raw weight underflowed
        self.num_updates += 1

    def state_dict(self) -> dict:
        return {"decay": self.decay, "log_value": self.log_value, "value": self.value, "num_updates": self.num_updates}

    def load_state_dict(self, state: dict) -> None:
        self.decay = float(state["decay"])
        if state.get("log_value") is not None:
            self.log_value = float(state["log_value"])
        elif state.get("value") is not None:  # checkpoints written before log space
            self.log_value = math.log(float(state["value"]))
        else:
            self.log_value = None
        self.num_updates = int(state["num_updates"])
        self._sum, self._count = 0.0, 0.0
