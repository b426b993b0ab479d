"""The paper's estimator: the length-normalised NLL u_i, z-scored over the optimizer
step's global batch, as the weight w_i = exp(-beta * max(0, z_i)).

The statistics (mean and std of u) cover every row of the global batch: all micro-batches
of the accumulation window and all processes. With several micro-batches per step, a
no-grad pass over the step's micro-batches gives every u_i before the first backward
(`begin_step`; the paper's own compatibility pass); with one, the training forward's u
are all-gathered and no extra forward runs. Scope `micro_batch` skips the pre-pass and
z-scores each global micro-batch alone: cheaper, but the update then depends on how the
step is split. Evaluation z-scores each global evaluation batch.
"""

from __future__ import annotations

from types import SimpleNamespace

import torch

from ..collate import COMPAT_MASK, SAMPLE_ID
from ..losses import ZSCORE_EPS, batch_moments, sample_nll, weighted_loss, zscore_stats, zscore_weights, zscores
from ..scoring import label_logprobs
from ..vocab_tiles import cpu_vocab_tiles
from .base import Batch, Estimator, Rows

__all__ = ["ZScore", "STEP_U"]

# The batch key under which the pre-pass leaves each micro-batch's u_i (its own rows, (B,))
STEP_U = "cadft_step_u"
SCOPES = ("step", "micro_batch")


class ZScore(Estimator):
    name = "zscore"

    def __init__(self, *, beta: float, eps: float = ZSCORE_EPS, scope: str = "step", token_power: float = 1.0):
        if scope not in SCOPES:
            raise ValueError(f"scope={scope!r}; choose one of {', '.join(SCOPES)}")
        self.beta, self.eps, self.scope, self.token_power = beta, eps, scope, token_power
        self._moments: tuple[float, float, int] | None = None  # the step's (mean, std, count) from the pre-pass
        self._step_rows: list[Rows] = []

    # ---- the step's statistics ----------------------------------------------------------

    def begin_step(self, trainer, batches: list[dict]) -> None:
        """With several micro-batches and step scope: score them all without gradients and
        fix the step's mean and std of u before the first backward."""
        self._moments = None
        if self.scope != "step" or len(batches) <= 1:
            return
        local = [self._score(trainer, batch) for batch in batches]
        u = torch.cat([u for u, _ in local])
        valid = torch.cat([v for _, v in local])
        self._moments = batch_moments(trainer.gather_rows(u), trainer.gather_rows(valid))
        for batch, (u_b, _) in zip(batches, local):
            batch[STEP_U] = u_b

    @torch.no_grad()  # not inference_mode: FSDP2 updates its unsharded parameters in place in the forward
    def _score(self, trainer, batch: dict) -> tuple[torch.Tensor, torch.Tensor]:
        """u and validity of one micro-batch's rows, from a forward without gradients in the
        model's training mode, as the training forward sees it. Only the label log-probs are
        computed (`label_logprobs`: on a CPU the label positions' logits alone, not the fused
        head's entropy and top-1 over every position, which only the training forward logs)."""
        inputs = trainer.model_inputs(batch)
        compat_mask = inputs.pop(COMPAT_MASK, None)
        input_ids, attention_mask, labels = inputs.pop("input_ids"), inputs.pop("attention_mask", None), inputs.pop("labels")
        with trainer.compute_loss_context_manager(), cpu_vocab_tiles(trainer.args.device):
            logps, mask = label_logprobs(trainer.inference_model, input_ids, attention_mask, labels, **inputs)
        logps, mask, compat_mask = trainer.label_rows(SimpleNamespace(log_probs=logps, label_mask=mask), compat_mask,
                                                     inputs.get("position_ids"), batch.get(SAMPLE_ID))
        u, valid = sample_nll(logps, mask, compat_mask)
        return u.cpu(), valid.cpu()

    def _weights(self, trainer, u: torch.Tensor, valid: torch.Tensor, mode: str) -> torch.Tensor:
        if mode == "train" and self._moments is not None:
            mean, std, _ = self._moments
        else:  # one global micro-batch (training) or one global evaluation batch: all-gather its u
            mean, std, _ = batch_moments(trainer.gather_rows(u.cpu()), trainer.gather_rows(valid.cpu()))
        return zscore_weights(zscores(u, valid, mean=mean, std=std, eps=self.eps), beta=self.beta)

    # ---- the loss ---------------------------------------------------------------------

    def loss(self, trainer, batch: Batch, mode: str) -> tuple[torch.Tensor, Rows]:
        u, valid = batch.nll()
        if mode == "train" and batch.step_u is not None:
            u = batch.step_u.to(u.device)  # the values the step's statistics were computed from
        weights = self._weights(trainer, u, valid, mode).to(u.device)
        loss, stats = weighted_loss(batch.logps, batch.mask, weights, token_power=self.token_power,
                                    num_items_in_batch=batch.num_items_in_batch)
        return loss, Rows(u=u, valid=valid, weight=weights, raw_weight=weights, mass=stats["sample_mass"].detach())

    # ---- metrics ----------------------------------------------------------------------

    def observe(self, trainer, rows: Rows, mode: str) -> None:
        if mode == "train":
            self._step_rows.append(rows)
        else:  # per global evaluation batch: its own statistics
            _append(trainer._metrics["eval"], zscore_stats(rows.u, rows.weight, rows.valid, rows.mass))

    def end_step(self, trainer) -> None:
        rows, self._step_rows = self._step_rows, []
        self._moments = None
        if rows:
            rows = Rows.concat(rows)
            _append(trainer._metrics["train"], zscore_stats(rows.u, rows.weight, rows.valid, rows.mass))


def _append(metrics, stats: dict) -> None:
    if stats["num_samples"] > 0:
        for key, value in stats.items():
            if key != "num_samples":
                metrics[f"cadft/{key}"].append(float(value))
