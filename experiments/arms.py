"""The arms of the evidence experiment: the methods issue #20 compares, as RunConfig fields.

Every arm gets the same learning-rate grid per mixture (validation seeds) and then runs on
the test seeds at its tuned rate.

    spec = ARMS["cadft"]              # {"method": "cadft", "normalization": "zscore", ...}
    LABELS["earlier"]                 # "earlier default (ema, a=0.5, b=1, wmax=3)"
"""

from __future__ import annotations

__all__ = ["ARMS", "LABELS", "REFERENCE", "COMPARED_WITH", "REWRITING"]

_PAPER = dict(method="cadft", normalization="zscore", token_power=1.0)

ARMS = {
    "sft": dict(method="sft"),
    "dft": dict(method="dft"),
    "cadft": {**_PAPER, "beta": 1.0},  # the library default: METHOD.md's estimator
    "cadft_b0.5": {**_PAPER, "beta": 0.5},
    "cadft_b2": {**_PAPER, "beta": 2.0},
    # the project's default before 2026-12-01
    "earlier": dict(method="cadft", normalization="ema", token_power=0.5, beta=1.0, w_max=3.0),
    # the control: CADFT's token loss through the same trainer without weights (beta 0). The paper's
    # token loss is DFT's, so this arm must match DFT: a check of the instrument, not a new method
    "control": {**_PAPER, "beta": 0.0},
    "paper_rw": {**_PAPER, "beta": 1.0, "rewrite": "paper"},
    "verified_rw": {**_PAPER, "beta": 1.0, "rewrite": "verified"},
}

LABELS = {
    "sft": "SFT",
    "dft": "DFT",
    "cadft": "CADFT (paper, b=1: default)",
    "cadft_b0.5": "CADFT b=0.5",
    "cadft_b2": "CADFT b=2",
    "earlier": "earlier default (ema, a=0.5, b=1, wmax=3)",
    "control": "control (CADFT b=0)",
    "paper_rw": "CADFT + paper's rewriting",
    "verified_rw": "CADFT + verified rewriting",
}

REFERENCE = "cadft"  # the library default every other arm is measured against for the decision
COMPARED_WITH = ("dft", "sft", "control", "earlier")  # the paired comparisons of the default
REWRITING = ("paper_rw", "verified_rw")
