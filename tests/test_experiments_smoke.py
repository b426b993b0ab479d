"""The evidence experiment end to end at smoke size (a few minutes on 2 CPU cores).

Checks that every phase runs (base policy, learning-rate grid, test runs with the variance
measurement and rewriting rounds, GRPO, report, and the replication with reused rates and the
decision rule), that every metric is finite and in its range, that the decision rule's hash
is recorded, and that the pages carry the sections a reader needs -- not what the metrics say.
"""

from __future__ import annotations

import json
import math

from experiments.testbed import run
from experiments.testbed.training import finite


def test_smoke_suite_and_replication_run_end_to_end_with_finite_metrics(tmp_path):
    out, cache = tmp_path / "out", str(tmp_path / "cache")
    summary = run.main(["--smoke", "--out", str(out), "--cache-dir", cache])

    assert summary["decision_rule_sha256"] == run.rule_sha256()
    assert summary["mixtures"] == ["clean", "default"]
    arms = set(run.SMOKE["arms"])
    assert set(summary["tests"]["default"]) == arms and set(summary["sanity"]) == arms
    for arm, metrics in summary["tests"]["default"].items():
        for key in ("test_id_acc", "test_ood_acc", "retention_acc", "grad_snr", "align", "weight_mass_mean"):
            assert metrics[key]["n"] == 2 and math.isfinite(metrics[key]["mean"]), (arm, key)
        assert (metrics["grpo_acc_gain"]["n"] == 1) == (arm in run.GRPO_ARMS), arm
    paired = summary["paired"]["default"]
    for pair in ("cadft-dft", "cadft-sft", "cadft-control", "cadft-earlier", "paper_rw-cadft", "verified_rw-cadft",
                 "asft-cadft", "eaft_z-cadft", "asft_z-asft", "eaft_z-eaft"):
        assert math.isfinite(paired[pair]["test_id_acc"]["mean"]), pair
    assert summary["decision_rule_token_losses_sha256"] == run.rule_sha256(run.TOKEN_LOSS_RULE_PATH)
    # the control is CADFT's trainer at beta 0, i.e. DFT: same rate, same seeds, same results
    assert summary["tests"]["default"]["control"]["test_id_acc"] == summary["tests"]["default"]["dft"]["test_id_acc"]
    mass = summary["tests"]["default"]["cadft"]["weight_mass_mean"]["mean"]
    assert 0 < mass < 1  # the paper's weights never boost: the mass is below DFT's 1
    for weighted, bare in (("asft_z", "asft"), ("eaft_z", "eaft")):  # on ASFT's and EAFT's token losses too
        assert 0 < summary["tests"]["default"][weighted]["weight_mass_mean"]["mean"] < 1
        assert summary["tests"]["default"][bare]["weight_mass_mean"]["mean"] == 1
    rounds = summary["rounds"]["paper_rw|default"]
    assert len(rounds) >= 2 and all(r["replaced"] <= r["selected"] and r["replaced_right"] <= r["replaced"]
                                    for r in rounds.values())
    (variance,) = [v for v in summary["variance"] if v["step"] == 0]
    assert variance["mixture"] == "default" and set(variance["moments"]) >= {"dft|0", "dft|1", "nll|2"}
    assert -1 <= variance["norm_vs_z"]["pearson"]["r"] <= 1
    assert sum(b["n"] for b in variance["norm_vs_z"]["bins"]) == variance["n"]

    for path in (out / "runs").rglob("*.json"):
        result = json.loads(path.read_text())
        # a data kind with one row in the variance sample has no interval (NaN bounds); the rest is finite
        assert finite({k: v for k, v in result.items() if k != "variance"}), path
        for v in result.get("variance", []):
            assert finite(v["moments"]) and finite(v["norm_vs_z"]["pearson"]), path
        for probe in (p for p in result.get("probes", []) if "align" in p):  # test runs carry the instruments
            assert -1 <= probe["align"] <= 1 and -1 <= probe["split_cos"] <= 1 and 0 < probe["ess"] <= 1 + 1e-9
            assert all(0 <= v["q10"] <= v["q50"] <= v["q90"] <= 1 for v in probe["compat"].values())

    page = (out / "docs" / "results.md").read_text()
    for section in ("## Sanity", "## Control check", "## When does CADFT help?", "## Every arm against the default",
                    "## The paper's weights on each token loss", "## Rewriting, measured",
                    "## The variance assumption", "## Learning rates", "## The decision",
                    summary["decision_rule_sha256"], summary["decision_rule_token_losses_sha256"]):
        assert section in page, section
    for name in ("compat_by_kind", "lr_grid", "training_curves", "grad_norm_vs_z", "rl_rewards"):
        assert (out / "docs" / "results" / f"{name}.png").stat().st_size > 0

    # the replication: fresh seeds at the main run's rates, then the decision rule over both runs
    repl = tmp_path / "repl"
    second = run.main(["--smoke", "--out", str(repl), "--cache-dir", cache, "--seeds", "5,6", "--mixtures", "default",
                       "--lr-from", str(out / "record.json"), "--compare-to", str(out / "summary.json"),
                       "--grpo-seeds", ""])
    assert second["seeds"] == [5, 6] and second["lr"] == summary["lr"] and not second["grid"]
    assert set(second["recommendations"]) == {"default"}
    assert set(second["weights_verdicts"]["default"]) == {"cadft", "asft_z", "eaft_z"}
    page = (repl / "docs" / "results.md").read_text()
    assert "# Replication" in page and "recommended over the default" in page
    assert "### The addendum: token losses" in page
