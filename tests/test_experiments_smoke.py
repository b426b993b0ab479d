"""The evidence experiment end to end at smoke size (about 2 minutes on 2 CPU cores).

Checks that every phase runs (base policy, search, main runs, sweeps, GRPO, report) and that
every metric is finite -- not what the metrics say.
"""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path

EXPERIMENTS = Path(__file__).resolve().parents[1] / "experiments"


def test_smoke_suite_runs_end_to_end_with_finite_metrics(tmp_path):
    sys.path.insert(0, str(EXPERIMENTS))
    try:
        import run
        from testbed import finite
    finally:
        sys.path.remove(str(EXPERIMENTS))

    out = tmp_path / "out"
    summary = run.main(["--smoke", "--out", str(out), "--cache-dir", str(tmp_path / "cache")])

    assert set(summary["main"]) == {"sft", "dft", "cadft", "cadft_rewrite"}
    for method, metrics in summary["main"].items():
        for key, ci in metrics.items():
            assert ci["n"] == 2, (method, key)
            assert math.isfinite(ci["mean"]) and math.isfinite(ci["lo"]), (method, key, ci)
    for pair, metrics in summary["paired"].items():
        assert all(math.isfinite(ci["mean"]) for ci in metrics.values()), pair
    assert summary["mixture"] and summary["beta"] and summary["search"]
    assert finite(summary["mixture"]) and finite(summary["beta"]) and finite(summary["search"])

    for path in (out / "runs").rglob("*.json"):
        run_result = json.loads(path.read_text())
        assert finite(run_result), path
        if "probes" in run_result:
            for probe in run_result["probes"]:
                assert probe["grad_noise"] >= 0 and 0 < probe["ess"] <= 1 + 1e-9
                assert all(0 <= v["mean"] <= 1 for v in probe["compat"].values())

    page = (out / "docs" / "results.md").read_text()
    assert "## Main results" in page and "Paired comparisons" in page
    for name in ("learning_curves", "grad_variance", "compat_by_kind", "rl_rewards"):
        assert (out / "docs" / "results" / f"{name}.png").stat().st_size > 0
