"""The pre-registered decision rule (experiments/decision.py): an arm is recommended for a
mixture only when its paired interval against the default is above 0 in both runs."""

from __future__ import annotations

from experiments.testbed.decision import recommend


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
