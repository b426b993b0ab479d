"""The method table: every method the studies train, as the CADFTConfig fields that make it.

A method is its loss, its CADFT estimator and its rewriting, written as `CADFTConfig` fields;
a study adds its own training arguments (rate, steps, batch) and rewriting schedule. Each
entry names the studies that train it, in the order they train it:

    methods("testbed")                    # {"sft": Method("SFT", ...), "dft": ..., "cadft": ...}
    config = cadft_config(METHODS["cadft_b2"], output_dir="out", learning_rate=1e-3, max_steps=64)
    METHODS["earlier"].label              # "earlier default (ema, a=0.5, b=1, wmax=3)"

Adding a method (a testbed arm, say) is one entry here: its label, its fields and its studies.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["Method", "METHODS", "PAPER_ESTIMATOR", "EARLIER_ESTIMATOR", "methods", "by_label", "cadft_config"]

STUDIES = ("testbed", "real")


@dataclass(frozen=True)
class Method:
    label: str  # what a page prints (the real-model study also keys its results by it)
    fields: dict  # CADFTConfig fields: loss_type, the estimator (cadft_*), the rewriting (rewrite*)
    studies: tuple[str, ...] = ("testbed",)
    gold_only: bool = False  # the oracle filter: trains on the gold rows of a mixture only

    @property
    def rewrites(self) -> bool:
        return bool(self.fields.get("rewrite"))


# The paper's estimator (METHOD.md; the library default) and the project's earlier one (its
# default before 2026-12-01): z-scored u with DFT's token loss, and c**beta / m after an EMA
PAPER_ESTIMATOR = {"cadft_estimator": "zscore", "cadft_token_power": 1.0}
EARLIER_ESTIMATOR = {"cadft_estimator": "ema", "cadft_token_power": 0.5}

_PAPER = {"loss_type": "cadft", **PAPER_ESTIMATOR}
_PAPER_REWRITING = {"rewrite": True, "rewrite_preset": "paper"}  # the library's default procedure

METHODS = {
    "sft": Method("SFT", {"loss_type": "nll"}, studies=STUDIES),
    "dft": Method("DFT", {"loss_type": "dft"}, studies=STUDIES),
    # The testbed's arms pin every estimator field (its page prints them); METHOD.md's estimator
    "cadft": Method("CADFT (paper, b=1: default)", {**_PAPER, "cadft_beta": 1.0}),
    "cadft_b0.5": Method("CADFT b=0.5", {**_PAPER, "cadft_beta": 0.5}),
    "cadft_b2": Method("CADFT b=2", {**_PAPER, "cadft_beta": 2.0}),
    "earlier": Method("earlier default (ema, a=0.5, b=1, wmax=3)",
                      {"loss_type": "cadft", **EARLIER_ESTIMATOR, "cadft_beta": 1.0, "cadft_w_max": 3.0}),
    # the control: CADFT's token loss through the same trainer without weights (beta 0). The paper's
    # token loss is DFT's, so this arm must match DFT: a check of the instrument, not a new method
    "control": Method("control (CADFT b=0)", {**_PAPER, "cadft_beta": 0.0}),
    "paper_rw": Method("CADFT + paper's rewriting", {**_PAPER, "cadft_beta": 1.0, **_PAPER_REWRITING}),
    "verified_rw": Method("CADFT + verified rewriting", {**_PAPER, "cadft_beta": 1.0, "rewrite": True,
                                                         "rewrite_preset": "verified", "rewrite_verifier": "exact"}),
    # Issue #28: the token losses of ASFT and EAFT (the library's defaults: KL 0.1; full entropy, K 20,
    # alpha 1), bare and with the paper's weights (decision_rule_token_losses.md reads them)
    "asft": Method("ASFT", {"loss_type": "asft", "cadft_estimator": "none"}),
    "asft_z": Method("ASFT + paper's weights (b=1)", {"loss_type": "asft", "cadft_estimator": "zscore",
                                                       "cadft_beta": 1.0}),
    "eaft": Method("EAFT", {"loss_type": "eaft", "cadft_estimator": "none"}),
    "eaft_z": Method("EAFT + paper's weights (b=1)", {"loss_type": "eaft", "cadft_estimator": "zscore",
                                                       "cadft_beta": 1.0}),
    # The real-model study's: the library's defaults as they are at run time (nothing pinned)
    "cadft_defaults": Method("CADFT", {"loss_type": "cadft"}, studies=("real",)),
    "earlier_defaults": Method("CADFT (earlier)", {"loss_type": "cadft", **EARLIER_ESTIMATOR}, studies=("real",)),
    "paper_rw_defaults": Method("CADFT + paper rewriting", {"loss_type": "cadft", **_PAPER_REWRITING},
                                studies=("real",)),
    "oracle": Method("DFT + oracle filter", {"loss_type": "dft"}, studies=("real",), gold_only=True),
}


def methods(study: str) -> dict[str, Method]:
    """The methods `study` trains, in the table's order."""
    if study not in STUDIES:
        raise ValueError(f"study={study!r}; valid: {', '.join(STUDIES)}")
    return {key: m for key, m in METHODS.items() if study in m.studies}


def by_label(label: str) -> Method:
    """The method a page (and the real-model study's results) call `label`."""
    found = [m for m in METHODS.values() if m.label == label]
    if len(found) != 1:
        raise KeyError(f"no single method labelled {label!r}")
    return found[0]


def cadft_config(method: Method, **args):
    """`CADFTConfig` of `method` with the study's own arguments `args` (training, schedule)."""
    from cadft import CADFTConfig

    return CADFTConfig(**method.fields, **args)
