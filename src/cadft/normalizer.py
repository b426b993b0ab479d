"""The running normaliser m of the CADFT sample weights.

m is an exponential moving average, over optimizer steps, of the mean of c**beta over
the *global* batch (all micro-batches of the accumulation window, all processes):

    m <- decay * m + (1 - decay) * mean_global(c**beta)

It is initialised before the first step from a calibration sample scored in inference
mode, and only changes between optimizer steps, so a sample's weight does not depend on
how the global batch is split into micro-batches or processes.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

__all__ = ["RunningNormalizer"]


class RunningNormalizer:
    """EMA of mean(c**beta) over optimizer steps.

    Usage, per optimizer step:
        w = sample_weights(c, beta=beta, normalizer=norm.value, ...)   # every micro-batch
        norm.observe(c[valid] ** beta)                                 # every micro-batch
        norm.step(all_reduce_sum)                                      # once, after optimizer.step()
    """

    def __init__(self, decay: float = 0.9):
        if not 0.0 <= decay < 1.0:
            raise ValueError(f"decay must be in [0, 1), got {decay}")
        self.decay = decay
        self.value: float | None = None  # m; None until calibrated or restored
        self.num_updates = 0
        self._sum = 0.0
        self._count = 0.0

    @property
    def ready(self) -> bool:
        return self.value is not None

    def calibrate(self, tempered_sum: float, count: float) -> None:
        """Set m to a calibration mean (sums already reduced over processes)."""
        if count <= 0:
            raise ValueError("calibration saw no sample with a trainable token")
        self.value = max(float(tempered_sum) / float(count), torch.finfo(torch.float32).tiny)

    def observe(self, tempered_compat: torch.Tensor) -> None:
        """Add this micro-batch's valid c**beta values, shape (n,), to the pending step."""
        self._sum += float(tempered_compat.detach().float().sum())
        self._count += float(tempered_compat.numel())

    def step(self, all_reduce_sum: Callable[[torch.Tensor], torch.Tensor] | None = None) -> None:
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
        batch_mean = total / count
        self.value = batch_mean if self.value is None else self.decay * self.value + (1 - self.decay) * batch_mean
        self.value = max(self.value, torch.finfo(torch.float32).tiny)
        self.num_updates += 1

    def state_dict(self) -> dict:
        return {"decay": self.decay, "value": self.value, "num_updates": self.num_updates}

    def load_state_dict(self, state: dict) -> None:
        self.decay = float(state["decay"])
        self.value = None if state["value"] is None else float(state["value"])
        self.num_updates = int(state["num_updates"])
        self._sum, self._count = 0.0, 0.0
