"""Compatibility of each data kind at a model: which kinds it separates from gold.

The same problems are written in every kind (`data.build_splits(...)["kinds"]`), so the
comparison with gold is paired: for each problem, the gap in mean token log-likelihood
s = log c between the gold row and the row of the kind, and how often gold scores higher
(the paired AUC; 0.5 means the model cannot tell the kind from gold).
"""

from __future__ import annotations

import math

from cadft.model.scoring import score_rows
from experiments.real.common import tokenize
from experiments.stats import mean_ci, quantile


def score_demonstrations(model, tok, rows: list[dict], *, max_length: int, progress: bool = False) -> list[float]:
    """Compatibility c of each row (0 for a row with no trainable token)."""
    scores = score_rows(model, tokenize(tok, rows, max_length), pad_token_id=tok.pad_token_id, progress=progress,
                        batch_size=8)
    return [s["compatibility"] for s in scores]


def summarise(rows: list[dict], compat: list[float]) -> dict:
    """Per kind: mean c with its 95% t-interval, quartiles, and against gold (same problems):
    the paired log-c gap (gold minus kind) with its interval and the paired AUC."""
    by_kind: dict[str, dict[int, float]] = {}
    for row, c in zip(rows, compat):
        by_kind.setdefault(row["kind"], {})[row["source_line"]] = c
    gold = by_kind.get("gold", {})
    table = {}
    for kind, values in by_kind.items():
        cs = list(values.values())
        entry = {"n": len(cs), "c": mean_ci(cs), "q25": quantile(cs, 0.25), "median": quantile(cs, 0.5),
                 "q75": quantile(cs, 0.75)}
        shared = [p for p in values if p in gold and values[p] > 0 and gold[p] > 0]
        if kind != "gold" and shared:
            entry["log_gap"] = mean_ci([math.log(gold[p]) - math.log(values[p]) for p in shared])
            wins = sum(1.0 if gold[p] > values[p] else 0.5 if gold[p] == values[p] else 0.0 for p in shared)
            entry["auc"] = wins / len(shared)
        table[kind] = entry
    return table
