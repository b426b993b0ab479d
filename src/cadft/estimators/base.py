"""The interface between `CADFTTrainer` and a way of weighting samples (an estimator).

The trainer owns the model, the data and the logs; an estimator owns the sample weights
and whatever per-step state they need. An estimator sees the run only through a
`StepContext` that the trainer builds once (collectives, the no-grad scoring pass, metric
records, the few settings calibration reads), never the trainer itself. For each
optimizer step the trainer calls:

    begin_step(ctx, batches)            before the step's first forward (all its micro-batches)
    loss(ctx, batch, mode)              each micro-batch, training and evaluation -> (loss, Rows)
    observe(ctx, rows, mode)            each micro-batch, with every process's rows
    before_optimizer_step(ctx)          gradients complete, before clipping (`batch` rescale)
    logged_loss(ctx, loss)              each training micro-batch, after its backward -> the loss to log
    end_step(ctx)                       after the optimizer step (step metrics, running state)

and `state_dict` / `load_state_dict` with every checkpoint. `weights(u, valid)` is the one
place an estimator turns u into weights: its training loss uses it, and so do the closing
summary of `cadft train`, `cadft score`, `cadft rewrite` and the experiments, for a whole
set of rows at once. `weighted(batch, weights)` is the one place those weights meet the
run's token loss (`cadft.losses.token_loss`: SFT, DFT, the token power, ASFT or EAFT).
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields

import torch

from ..losses import sample_nll, weighted_token_loss
from ..losses.token_loss import PowerLoss, TokenLoss

__all__ = ["Batch", "Rows", "Estimator", "StepContext"]


@dataclass
class Batch:
    """One micro-batch as the loss sees it: the fused head's outputs and the extras the
    collator and the step's pre-pass attached."""

    logps: torch.Tensor  # (B, T) label log-probs, with their graph
    mask: torch.Tensor  # (B, T) bool, trainable tokens
    compat_mask: torch.Tensor | None  # (B, T) bool, the demonstration's tokens, or None (= mask)
    num_items_in_batch: object  # N of the optimizer step, or None
    step_u: torch.Tensor | None = None  # (B,) u from the step's no-grad pre-pass, where one ran
    # (B, T) per-token inputs of the token loss beyond the log-probs (`TokenLoss.needs`), aligned with them
    token_inputs: dict[str, torch.Tensor] = field(default_factory=dict)
    # The token loss's per-token metrics of this micro-batch, once `Estimator.weighted` has run
    token_metrics: dict[str, torch.Tensor] = field(default_factory=dict)

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


class StepContext:
    """What an estimator may use of a training run. The trainer builds one (`CADFTTrainer`'s
    `_TrainerContext`); a test may build its own. Per-sample tensors are (B,)."""

    num_processes: int = 1
    process_index: int = 0
    seed: int = 0  # the run's seed (the calibration sample)
    eval_batch_size: int = 8  # rows per forward of a no-grad pass outside a step (calibration)

    def gather_rows(self, tensor: torch.Tensor) -> torch.Tensor:
        """Every process's (B,) tensor, concatenated in rank order, on the host (padded with
        zeros, which a validity mask reads as invalid)."""
        raise NotImplementedError

    def all_reduce_sum(self, tensor: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def all_reduce_max(self, tensor: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def score(self, batch: dict, *, training: bool = True, tiled: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
        """(u, valid) of a collated batch's demonstrations, on the host, from the no-grad
        scoring pass (`cadft.model.scoring.label_logprobs`), in the model's training mode (as the
        training forward sees it) or, `training=False`, in eval mode; `tiled=True`: through
        the fused head's vocabulary tiles, bounded memory. A collective where a forward is
        one (FSDP, ZeRO-3): every process must call it as often."""
        raise NotImplementedError

    def record(self, mode: str, key: str, value: float) -> None:
        """Append a value to metric `key` of `mode` ("train" or "eval"), averaged into the next log."""
        raise NotImplementedError

    def scale_gradients(self, factor: torch.Tensor) -> None:
        """Multiply every accumulated gradient by `factor` (0-dim)."""
        raise NotImplementedError

    @property
    def train_dataset(self):
        """The training `Dataset` as the trainer holds it (prepared rows)."""
        raise NotImplementedError

    def collate(self, examples: list[dict]) -> dict:
        """Rows of `train_dataset` as one batch, by the trainer's collator."""
        raise NotImplementedError


class Estimator:
    """Base class: no sample weights (the bare token loss), no per-step state. Every
    estimator holds the run's token loss (`cadft.losses.token_loss`, DFT's by default) and meets
    it in `weighted`."""

    name = "token"
    weighs_samples = True  # False only for the bare token loss (`Unweighted`)
    rescales_gradients = False  # whether `before_optimizer_step` changes the accumulated gradients
    token_loss: TokenLoss = PowerLoss(1.0)

    def weighted(self, batch: Batch, weights: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor]:
        """The one place a token loss meets the sample weights: (L, M) with
        L = (1/N) sum_i w_i sum_t l~_it over the micro-batch's rows (`weighted_token_loss`) and
        M_i = sum_t g_it, each row's mass (the sum of the token loss's gates), (B,) detached.
        `weights` (B,) detached, None: all 1. Leaves the token loss's per-token metrics on
        `batch.token_metrics`."""
        terms = self.token_loss(batch)
        batch.token_metrics = terms.metrics
        loss = weighted_token_loss(terms.loss, batch.mask, weights, num_items_in_batch=batch.num_items_in_batch)
        return loss, terms.gate.sum(-1).detach()

    def weights(self, u: torch.Tensor, valid: torch.Tensor) -> tuple[torch.Tensor, dict]:
        """(weights, extras) of a set of rows taken as one batch, from their u and validity,
        (B,) each, and the estimator's own state: the weight of each row, and the
        estimator's own per-row or per-set values (e.g. z, the weight before clipping)."""
        return torch.ones_like(u, dtype=torch.float32), {}

    def begin_step(self, ctx: StepContext, batches: list[dict]) -> None:
        pass

    def loss(self, ctx: StepContext, batch: Batch, mode: str) -> tuple[torch.Tensor, Rows]:
        raise NotImplementedError

    def observe(self, ctx: StepContext, rows: Rows, mode: str) -> None:
        pass

    def before_optimizer_step(self, ctx: StepContext) -> None:
        pass

    def logged_loss(self, ctx: StepContext, loss: torch.Tensor) -> torch.Tensor:
        """The micro-batch's loss as the trainer adds it to the logged loss (after
        `before_optimizer_step` on the step's last micro-batch)."""
        return loss

    def end_step(self, ctx: StepContext) -> None:
        pass

    def set_stats(self, u: torch.Tensor, valid: torch.Tensor, weights: torch.Tensor, extras: dict) -> dict:
        """Statistics of `weights(u, valid)` over a set's valid rows, as floats (`cadft score`)."""
        return {}

    def log_metrics(self, mode: str) -> dict[str, float]:
        """Values to add to the next log (beside those appended per step)."""
        return {}

    def state_dict(self) -> dict:
        return {}

    def load_state_dict(self, state: dict) -> None:
        pass
