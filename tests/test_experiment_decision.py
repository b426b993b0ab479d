"""The pre-registered decision rule (experiments/decision.py): an arm is recommended for a
mixture only when its paired interval against the default is above 0 in both runs; the
token-loss addendum's verdict on the paper's weights over a bare token loss."""

from __future__ import annotations

import pytest

from experiments.testbed.decision import recommend, weights_verdicts


def ci(lo, hi, n=5):
    return {"mean": (lo + hi) / 2, "lo": lo, "hi": hi, "sd": 0.1, "n": n}


def paired(**arms):
    return {"high": {f"{arm}-cadft": {"test_id_acc": c} for arm, c in arms.items()}}


def test_both_runs_above_zero_is_required_and_best_mean_goes_first():
    main = paired(cadft_b2=ci(0.01, 0.05), earlier=ci(0.02, 0.08), dft=ci(0.01, 0.03), sft=ci(-0.1, -0.05))
    repl = paired(cadft_b2=ci(0.005, 0.02), earlier=ci(0.01, 0.03), dft=ci(-0.01, 0.02), sft=ci(-0.1, -0.02))
    got = recommend(main, repl)["high"]
    assert [e["arm"] for e in got["recommended"]] == ["earlier", "cadft_b2"]
    assert [e["arm"] for e in got["not_replicated"]] == ["dft"]


def test_an_interval_touching_zero_or_a_single_seed_does_not_count():
    main = paired(earlier=ci(0.0, 0.1), cadft_b2=ci(0.01, 0.05, n=1))
    repl = paired(earlier=ci(0.01, 0.1), cadft_b2=ci(0.01, 0.05))
    got = recommend(main, repl)["high"]
    assert got["recommended"] == [] and {e["arm"] for e in got["not_replicated"]} == {"earlier", "cadft_b2"}


def weighted_pairs(**pairs):
    return {"high": {pair.replace("__", "-"): {"test_id_acc": c} for pair, c in pairs.items()}}


def test_the_addendum_reads_weights_over_the_bare_token_loss_in_both_runs():
    # experiments/decision_rule_token_losses.md, 2: help / hurt need both runs, one run is "not replicated"
    main = weighted_pairs(cadft__dft=ci(0.01, 0.05), asft_z__asft=ci(-0.06, -0.01), eaft_z__eaft=ci(0.01, 0.04))
    repl = weighted_pairs(cadft__dft=ci(0.02, 0.03), asft_z__asft=ci(-0.05, -0.02), eaft_z__eaft=ci(-0.01, 0.04))
    got = weights_verdicts(main, repl)["high"]
    assert {arm: v["verdict"] for arm, v in got.items()} == {"cadft": "help", "asft_z": "hurt",
                                                             "eaft_z": "not replicated"}
    assert got["asft_z"]["bare"] == "asft" and got["cadft"]["mean"] == pytest.approx(0.0275)
    quiet = weights_verdicts(weighted_pairs(eaft_z__eaft=ci(-0.01, 0.01)), weighted_pairs(eaft_z__eaft=ci(0.0, 0.02)))
    assert quiet["high"]["eaft_z"]["verdict"] == "no difference shown"
    # a run without a pair's arms has no verdict for it
    assert set(weights_verdicts(main, repl, arms=["cadft", "dft"])["high"]) == {"cadft"}
