"""The ablation's fractional design and the pre-registered decision rule (decision_rule.md).

The full factorial {ema, batch} x alpha {0, 0.5, 1} x beta {0.5, 1, 2} x w_max {1, 3} has 36
variants. The design runs 9 of them: the L9(3^4) orthogonal array with alpha and beta on two
three-level columns and the two-level factors on the other two by level collapsing (level 2
read as level 0). Every (alpha, beta) pair appears once, every alpha meets both
normalisations and both ceilings, and the main effects stay orthogonal; interactions are
not estimable. The paper-like estimator (ema, alpha 1, beta 1, w_max 3) is one of the nine.

    variants = ablation_design()                  # [Variant("ema", 0.0, 0.5, 3.0), ...]
    choice = decide(val_acc)                      # val_acc[(variant, mixture, seed)] -> accuracy
"""

from __future__ import annotations

from collections import defaultdict
from typing import NamedTuple

__all__ = ["Variant", "REFERENCE", "ablation_design", "mean_ranks", "decide"]

ALPHAS, BETAS = (0.0, 0.5, 1.0), (0.5, 1.0, 2.0)
NORMS, W_MAXES = ("ema", "batch", "ema"), (3.0, 1.0, 3.0)  # three-level columns collapsed to two
L9 = ((0, 0, 0, 0), (0, 1, 1, 1), (0, 2, 2, 2), (1, 0, 1, 2), (1, 1, 2, 0), (1, 2, 0, 1), (2, 0, 2, 1),
      (2, 1, 0, 2), (2, 2, 1, 0))
TIE_MARGIN = 0.5  # mean ranks this close to the best count as tied


class Variant(NamedTuple):
    normalization: str
    token_power: float
    beta: float
    w_max: float

    def label(self) -> str:
        return f"{self.normalization}, a={self.token_power:g}, b={self.beta:g}, wmax={self.w_max:g}"


REFERENCE = Variant("ema", 1.0, 1.0, 3.0)  # the paper-like estimator: DFT's token loss, EMA normaliser


def ablation_design() -> list[Variant]:
    """The nine CADFT variants of the ablation, in design order."""
    return [Variant(NORMS[c], ALPHAS[a], BETAS[b], W_MAXES[d]) for a, b, c, d in L9]


def _ranks(scores: dict) -> dict:
    """Rank 1 = highest score; equal scores share the mean of their ranks."""
    ordered = sorted(scores, key=lambda k: -scores[k])
    ranks, i = {}, 0
    while i < len(ordered):
        j = i
        while j + 1 < len(ordered) and scores[ordered[j + 1]] == scores[ordered[i]]:
            j += 1
        for k in ordered[i : j + 1]:
            ranks[k] = (i + j) / 2 + 1
        i = j + 1
    return ranks


def mean_ranks(val_acc: dict) -> dict:
    """Mean over the (mixture, seed) cells of each variant's rank; val_acc maps
    (variant, mixture, seed) -> validation accuracy. Only cells every variant has count."""
    cells = defaultdict(dict)
    for (variant, mixture, seed), acc in val_acc.items():
        cells[(mixture, seed)][variant] = acc
    variants = {v for v, _, _ in val_acc}
    full = [c for c in cells.values() if set(c) == variants]
    if not full:
        raise ValueError("no (mixture, seed) cell has a result for every variant")
    totals = defaultdict(float)
    for cell in full:
        for variant, rank in _ranks(cell).items():
            totals[variant] += rank
    return {v: totals[v] / len(full) for v in variants}


def _distance(v: Variant) -> int:
    return sum(a != b for a, b in zip(v, REFERENCE))


def decide(val_acc: dict, order: list[Variant] | None = None) -> dict:
    """The rule of decision_rule.md: lowest mean rank; ties (within TIE_MARGIN) go to the
    variant closest to REFERENCE, then the lower beta, then the design order."""
    ranks = mean_ranks(val_acc)
    order = order or ablation_design()
    best = min(ranks.values())
    tied = [v for v in ranks if ranks[v] <= best + TIE_MARGIN]
    chosen = min(tied, key=lambda v: (_distance(v), v.beta, order.index(v) if v in order else len(order)))
    return {"chosen": chosen, "mean_ranks": ranks, "tied": tied}
