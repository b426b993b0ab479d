"""The decision rule of experiments/decision_rule.md (and of its token-loss addendum,
experiments/decision_rule_token_losses.md) as a function of the two runs' paired intervals.

    rec = recommend(main["paired"], replication["paired"])
    rec["default"]   # [{"arm": "cadft_b2", "main": ci, "replication": ci, "mean": 0.02}, ...] ('' if none)
    weights_verdicts(main["paired"], replication["paired"])["high"]["asft_z"]   # {"verdict": "help", ...}
"""

from __future__ import annotations

import math

from experiments.testbed.arms import ARMS, REFERENCE, WEIGHTS_ON

__all__ = ["METRIC", "pair_key", "recommend", "weights_verdicts"]

METRIC = "test_id_acc"


def pair_key(arm: str, other: str = REFERENCE) -> str:
    return f"{arm}-{other}"


def _above_zero(ci: dict | None) -> bool:
    return ci is not None and ci.get("n", 0) >= 2 and math.isfinite(ci["lo"]) and ci["lo"] > 0


def _below_zero(ci: dict | None) -> bool:
    return ci is not None and ci.get("n", 0) >= 2 and math.isfinite(ci["hi"]) and ci["hi"] < 0


def recommend(main: dict, replication: dict, arms=None) -> dict:
    """mixture -> the arms whose paired ID-accuracy difference against the default has a 95%
    interval above 0 in both runs (best mean first), with both intervals; also the arms above
    0 in one run only (`not_replicated`). `main` and `replication` map mixture -> pair -> metric -> ci."""
    arms = [a for a in (arms or ARMS) if a != REFERENCE]
    out = {}
    for mix in sorted(set(main) & set(replication)):
        winners, single = [], []
        for arm in arms:
            a = main[mix].get(pair_key(arm), {}).get(METRIC)
            b = replication[mix].get(pair_key(arm), {}).get(METRIC)
            entry = {"arm": arm, "main": a, "replication": b}
            if _above_zero(a) and _above_zero(b):
                winners.append({**entry, "mean": (a["mean"] + b["mean"]) / 2})
            elif _above_zero(a) or _above_zero(b):
                single.append(entry)
        out[mix] = {"recommended": sorted(winners, key=lambda e: -e["mean"]), "not_replicated": single}
    return out


def weights_verdicts(main: dict, replication: dict, arms=None) -> dict:
    """mixture -> weighted arm -> the addendum's verdict on the paper's weights over its bare token
    loss (`WEIGHTS_ON`), paired ID accuracy weighted - bare: "help" (interval above 0 in both runs),
    "hurt" (below 0 in both), "not replicated" (above or below 0 in one run only) or "no difference
    shown"; with both intervals. Only the pairs both runs have."""
    out = {}
    for mix in sorted(set(main) & set(replication)):
        out[mix] = {}
        for arm, bare in WEIGHTS_ON.items():
            if arms is not None and not (arm in arms and bare in arms):
                continue
            a = main[mix].get(pair_key(arm, bare), {}).get(METRIC)
            b = replication[mix].get(pair_key(arm, bare), {}).get(METRIC)
            if a is None or b is None:
                continue
            if _above_zero(a) and _above_zero(b):
                verdict = "help"
            elif _below_zero(a) and _below_zero(b):
                verdict = "hurt"
            elif _above_zero(a) or _above_zero(b) or _below_zero(a) or _below_zero(b):
                verdict = "not replicated"
            else:
                verdict = "no difference shown"
            out[mix][arm] = {"bare": bare, "verdict": verdict, "main": a, "replication": b,
                             "mean": (a["mean"] + b["mean"]) / 2}
    return out
