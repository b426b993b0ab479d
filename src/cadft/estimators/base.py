"""The interface between `CADFTTrainer` and a way of weighting samples (an estimator).

The trainer owns the model, the data and the logs; an estimator owns the sample weights
and whatever per-step state they need. The trainer calls, for each optimizer step:

    begin_step(trainer, batches)        before the step's first forward (all its micro-batches)
    loss(trainer, batch, mode)          each micro-batch, training and evaluation -> (loss, Rows)
    observe(trainer, rows, mode)        each micro-batch, with every process's rows
    before_optimizer_step(trainer)      gradients complete, before clipping (`batch` rescale)
    logged_loss(trainer, loss)          each training micro-batch, after its backward -> the loss to log
    end_step(trainer)                   after the optimizer step (step metrics, running state)

and `state_dict` / `load_state_dict` with every checkpoint.
"""

from __future__ import annotations

from dataclasses import dataclass, fields

import torch

from ..losses import sample_nll

__all__ = ["Batch", "Rows", "Estimator"]


@dataclass
class Batch:
    """One micro-batch as the loss sees it: the fused head's outputs and the extras the
    collator and the step's pre-pass attached."""

    logps: torch.Tensor  # (B, T) label log-probs, with their graph
    mask: torch.Tensor  # (B, T) bool, trainable tokens
    compat_mask: torch.Tensor | None  # (B, T) bool, the demonstration's tokens, or None (= mask)
    num_items_in_batch: object  # N of the optimizer step, or None
    step_u: torch.Tensor | None = None  # (B,) u from the step's no-grad pre-pass, where one ran

    def nll(self) -> tuple[torch.Tensor, torch.Tensor]:
        """(u, valid) of this micro-batch's rows from its own forward."""
        return sample_nll(self.logps, self.mask, self.compat_mask)


@dataclass
class Rows:
    """Per-sample values of one micro-batch (or of every process's, once gathered), (B,) each."""

    u: torch.Tensor  # length-normalised NLL
    valid: torch.Tensor  # bool: has a token to measure and a token to train
    weight: torch.Tensor  # the weight the loss used
    raw_weight: torch.Tensor  # the weight before clipping (the weight itself where nothing clips)
    mass: torch.Tensor  # M_i = sum_t sg(p)^alpha, the row's mass in the base loss

    @property
    def compat(self) -> torch.Tensor:
        """c = exp(-u), 0 on invalid rows."""
        return torch.where(self.valid, (-self.u.float()).exp(), torch.zeros_like(self.u.float()))

    def stacked(self) -> torch.Tensor:
        """(B, 5) float32, for one gather across processes instead of five."""
        return torch.stack([getattr(self, f.name).detach().float() for f in fields(self)], dim=1)

    @classmethod
    def unstacked(cls, block: torch.Tensor) -> Rows:
        columns = dict(zip((f.name for f in fields(cls)), block.unbind(1)))
        columns["valid"] = columns["valid"].bool()
        return cls(**columns)

    @classmethod
    def concat(cls, parts: list[Rows]) -> Rows:
        return cls(**{f.name: torch.cat([getattr(p, f.name) for p in parts]) for f in fields(cls)})


class Estimator:
    """Base class: no sample weights (the base token loss), no per-step state."""

    name = "token"
    token_power = 1.0

    def begin_step(self, trainer, batches: list[dict]) -> None:
        pass

    def loss(self, trainer, batch: Batch, mode: str) -> tuple[torch.Tensor, Rows]:
        raise NotImplementedError

    def observe(self, trainer, rows: Rows, mode: str) -> None:
        pass

    def before_optimizer_step(self, trainer) -> None:
        pass

    def logged_loss(self, trainer, loss: torch.Tensor) -> torch.Tensor:
        """The micro-batch's loss as the trainer adds it to the logged loss (after
        `before_optimizer_step` on the step's last micro-batch)."""
        return loss

    def end_step(self, trainer) -> None:
        pass

    def log_metrics(self, mode: str) -> dict[str, float]:
        """Values to add to the next log (beside those appended per step)."""
        return {}

    def state_dict(self) -> dict:
        return {}

    def load_state_dict(self, state: dict) -> None:
        pass
