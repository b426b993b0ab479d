"""The testbed's arms: its methods of the method table (experiments/methods.py) as
`RunConfig` fields, and the comparisons its page and decision rule make.

    ARMS["cadft"]       # {"method": "cadft", "normalization": "zscore", "token_power": 1.0, "beta": 1.0}
    LABELS["earlier"]   # "earlier default (ema, a=0.5, b=1, wmax=3)"
"""

from __future__ import annotations

from experiments.methods import Method, methods

__all__ = ["ARMS", "LABELS", "REFERENCE", "COMPARED_WITH", "REWRITING", "WEIGHTS_ON", "run_fields"]

# CADFTConfig field -> RunConfig field (the names a run's record carries)
_RUN_FIELDS = {"cadft_estimator": "normalization", "cadft_token_power": "token_power", "cadft_beta": "beta",
               "cadft_w_max": "w_max", "rewrite_preset": "rewrite"}


def run_fields(method: Method) -> dict:
    """The RunConfig fields of `method`: `method` (sft for TRL's nll, else the loss type) and
    its estimator and rewriting preset."""
    loss = method.fields["loss_type"]
    return {"method": "sft" if loss == "nll" else loss,
            **{_RUN_FIELDS[k]: v for k, v in method.fields.items() if k in _RUN_FIELDS}}


ARMS = {arm: run_fields(m) for arm, m in methods("testbed").items()}
LABELS = {arm: m.label for arm, m in methods("testbed").items()}

REFERENCE = "cadft"  # the library default every other arm is measured against for the decision
COMPARED_WITH = ("dft", "sft", "control", "earlier")  # the paired comparisons of the default
REWRITING = tuple(arm for arm, m in methods("testbed").items() if m.rewrites)
# The paper's weights on a token loss against the bare token loss (experiments/decision_rule_token_losses.md):
# weighted arm -> bare arm; on DFT's token loss that is the default against DFT
WEIGHTS_ON = {"cadft": "dft", "asft_z": "asft", "eaft_z": "eaft"}
