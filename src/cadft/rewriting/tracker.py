"""Per-sample compatibility tracking for rewriting.

Every time a training sample is seen, its record gets the new compatibility c, an EMA
of c, the raw compatibility u = -log c (the length-normalised NLL) and its EMA (the
paper's moving average, which the `top_u` selection ranks by), the visit count, the
visits since its last rewrite attempt, and the number of consecutive visits on which it
was *flagged* (the `flagged` selection).
A visit is flagged when the sample's weight before clipping, c**beta / m, is below
`flag_threshold`, or (when `flag_quantile` is set) when c is in that bottom quantile of
the latest compatibilities of all tracked samples. The tracker is fed the gathered
values of every process, so it is identical everywhere; it is saved with checkpoints.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import torch

__all__ = ["SampleRecord", "CompatibilityTracker", "raw_compatibility"]

# c below this (u above ~690) is stored as this: u stays finite, and JSON-writable
_SMALLEST_COMPAT = 1e-300


def raw_compatibility(compat: float) -> float:
    """u = -log c, the length-normalised NLL that c = exp(-u) came from."""
    return -math.log(max(float(compat), _SMALLEST_COMPAT))


@dataclass
class SampleRecord:
    last: float = 0.0  # compatibility at the latest visit
    ema: float = 0.0  # EMA of compatibility over visits
    visits: int = 0
    flagged_streak: int = 0  # consecutive flagged visits, reset by an unflagged visit or an attempt
    u_last: float | None = None  # u = -log c at the latest visit
    u_ema: float | None = None  # EMA of u over visits (the paper's moving average)
    visits_since_attempt: int = 0  # reset by a rewrite attempt
    history: list[dict] = field(default_factory=list)  # one entry per rewrite attempt


class CompatibilityTracker:
    def __init__(self, *, ema_decay: float = 0.5, flag_threshold: float = 0.5, flag_quantile: float | None = None):
        if not 0 <= ema_decay < 1:
            raise ValueError(f"ema_decay must be in [0, 1), got {ema_decay}")
        if flag_quantile is not None and not 0 < flag_quantile < 1:
            raise ValueError(f"flag_quantile must be in (0, 1), got {flag_quantile}")
        self.ema_decay = ema_decay
        self.flag_threshold = flag_threshold
        self.flag_quantile = flag_quantile
        self.records: dict[int, SampleRecord] = {}

    def flagged(self, compat: torch.Tensor, raw_weights: torch.Tensor, sample_ids: list[int] = ()) -> torch.Tensor:
        """Which of these visits are flagged. (n,), (n,) -> (n,) bool. The quantile is over
        the latest compatibility of every tracked sample, this batch's values replacing
        its samples' older ones."""
        import torch  # here, not at the top: `cadft rewrite` answers bad input without importing torch

        flags = raw_weights < self.flag_threshold
        if self.flag_quantile is not None:
            current = {int(i) for i in sample_ids}
            others = [r.last for i, r in self.records.items() if i not in current]
            population = torch.tensor(others + compat.tolist())
            flags |= compat <= torch.quantile(population, self.flag_quantile)
        return flags

    def update(self, sample_ids: list[int], compat: torch.Tensor, raw_weights: torch.Tensor) -> None:
        """Record one visit of each sample (valid rows only)."""
        flags = self.flagged(compat, raw_weights, sample_ids).tolist()
        for sample_id, c, flag in zip(sample_ids, compat.tolist(), flags):
            record = self.records.setdefault(int(sample_id), SampleRecord())
            u = raw_compatibility(c)
            first = record.visits == 0
            record.ema = c if first else self.ema_decay * record.ema + (1 - self.ema_decay) * c
            record.u_ema = u if first else self.ema_decay * record.u_ema + (1 - self.ema_decay) * u
            record.last, record.u_last = c, u
            record.visits += 1
            record.visits_since_attempt += 1
            record.flagged_streak = record.flagged_streak + 1 if flag else 0

    def moving_u(self) -> dict[int, tuple[float, int]]:
        """sample id -> (moving-average u, visits since its last attempt), for `select_highest_u`."""
        return {i: (r.u_ema, r.visits_since_attempt) for i, r in self.records.items() if r.visits}

    def persistent(self, persistence: int) -> list[int]:
        """Ids flagged on at least `persistence` consecutive visits, least compatible first."""
        ids = [i for i, r in self.records.items() if r.flagged_streak >= persistence]
        return sorted(ids, key=lambda i: (self.records[i].ema, i))

    def note_attempt(self, sample_id: int, entry: dict) -> None:
        """Add a rewrite attempt to the sample's history; it must be flagged P times (or
        visited `min_visits` times) anew before it can be selected again."""
        record = self.records.setdefault(int(sample_id), SampleRecord())
        record.history.append(entry)
        record.flagged_streak = 0
        record.visits_since_attempt = 0

    def state_dict(self) -> dict:
        return {
            "ema_decay": self.ema_decay,
            "flag_threshold": self.flag_threshold,
            "flag_quantile": self.flag_quantile,
            "records": {str(i): asdict(r) for i, r in self.records.items()},
        }

    def load_state_dict(self, state: dict) -> None:
        self.ema_decay = state["ema_decay"]
        self.flag_threshold = state["flag_threshold"]
        self.flag_quantile = state["flag_quantile"]
        self.records = {int(i): _record_from_state(r) for i, r in state["records"].items()}


def _record_from_state(saved: dict) -> SampleRecord:
    """A record from a checkpoint; one saved before u was tracked gets u from its c (the
    EMA of u then starts from -log of the EMA of c) and its visits since the last attempt."""
    record = SampleRecord(**saved)
    if record.visits and record.u_ema is None:
        record.u_last, record.u_ema = raw_compatibility(record.last), raw_compatibility(record.ema)
        record.visits_since_attempt = record.flagged_streak if record.history else record.visits
    return record
