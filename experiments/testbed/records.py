"""From the raw record of the testbed's run (run.py) to the numbers of the page: per-run metrics and
their summaries per (arm, mixture), paired differences, rewriting rounds and the variance
measurement. No formatting here (report.py) and no plotting (plots.py): both import this.

    summary = summarise(record)
    summary["tests"]["high"]["cadft"]["test_id_acc"]       # mean_ci over the test seeds
    summary["paired"]["high"]["cadft-dft"]["test_id_acc"]   # paired_ci of the per-seed differences
"""

from __future__ import annotations

import math
from collections import defaultdict

from experiments.stats import mean_ci, paired_ci, spikes
from experiments.testbed.arms import ARMS, COMPARED_WITH, REFERENCE, REWRITING, WEIGHTS_ON

__all__ = ["METRICS", "train_logs", "run_metrics", "base_compat", "summarise", "pairs"]

METRICS = ("test_id_acc", "test_ood_acc", "retention_acc", "grad_spikes", "grad_norm_peak", "weight_mass_mean",
           "weight_mass_min", "grad_snr", "align", "ess", "val_acc", "final_nll", "rewrites", "rewrites_right",
           "grpo_acc_start", "grpo_acc_gain", "grpo_reward_start", "grpo_reward_gain")


def train_logs(run: dict) -> list[dict]:
    """The per-step training log lines (no summary line, no rewriting round)."""
    return [h for h in run["log"] if "loss" in h and "train_runtime" not in h and "rewrite/round" not in h]


def run_metrics(run: dict) -> dict:
    """The scalar metrics of one fine-tuning run (definitions on the results page)."""
    logs = train_logs(run)
    late = [p for p in run["probes"] if p["step"] > 0]
    norms = [h["grad_norm"] for h in logs if "grad_norm" in h]
    nll = [h["nll"] for h in logs if "nll" in h]
    mass = [h["cadft/weight_mass"] for h in logs if "cadft/weight_mass" in h] or [1.0]
    final_nll = sum(nll[-10:]) / max(1, len(nll[-10:])) if nll else math.nan
    out = {
        "val_acc": run["val_acc"],
        **{k: sum(p[k] for p in late) / len(late) for k in ("grad_snr", "align", "ess") if late and k in late[0]},
        "grad_spikes": float(spikes(norms)),
        "grad_norm_peak": max(norms) / sorted(norms)[len(norms) // 2] if norms else math.nan,
        "final_nll": final_nll,
        "finite": float(math.isfinite(final_nll)),
        "weight_mass_mean": sum(mass) / len(mass),
        "weight_mass_min": min(mass),
    }
    for key in ("test_id_acc", "test_ood_acc", "retention_acc"):
        if key in run:
            out[key] = run[key]
    if "rewrite_rounds" in run:
        out["rewrites"] = float(sum(r["replaced"] for r in run["rewrite_rounds"]))
        out["rewrites_right"] = float(sum(r["replaced_right"] for r in run["rewrite_rounds"]))
    return out


def base_compat(record: dict) -> dict:
    """Per-kind compatibility quantiles at step 0 of the first default-mixture test run."""
    for run in record["tests"]:
        if run["config"]["mixture"] == "default" and run["probes"][0]["step"] == 0 and "compat" in run["probes"][0]:
            return run["probes"][0]["compat"]
    return {}


def pairs(arms) -> list[tuple[str, str]]:
    """The paired comparisons: the default against DFT, SFT, the control and the earlier
    default; every other arm against the default (the decision rule's); each token loss with
    the paper's weights against the bare token loss (the token-loss addendum's)."""
    out = [(REFERENCE, b) for b in COMPARED_WITH if b in arms]
    out += [(a, REFERENCE) for a in arms if a != REFERENCE]
    out += [(a, "dft") for a in REWRITING if a in arms] + [("control", "dft")] * ("control" in arms)
    out += [(a, b) for a, b in WEIGHTS_ON.items() if a in arms and b in arms and (a, b) not in out]
    return out


def _by(runs) -> dict:
    """(arm, mixture) -> seed -> metrics."""
    out = defaultdict(dict)
    for run in runs:
        cfg = run["config"]
        out[(cfg["arm"], cfg["mixture"])][cfg["seed"]] = run_metrics(run)
    return out


def _grpo(record: dict, tests: dict) -> None:
    """Adds GRPO start / gain metrics to the default-mixture test runs' per-seed metrics."""
    for g in record.get("grpo", []):
        m = tests.get((g["method"], "default"), {}).get(g["seed"])
        if m is None:
            continue
        rewards = g["rewards"]
        k = max(1, len(rewards) // 4)
        m["grpo_acc_start"] = m["test_id_acc"]
        m["grpo_acc_gain"] = g["final_test_id_acc"] - m["test_id_acc"]
        m["grpo_reward_start"] = sum(rewards[:k]) / k
        m["grpo_reward_gain"] = sum(rewards[-k:]) / k - m["grpo_reward_start"]


def _rounds(record: dict) -> dict:
    """arm|mixture -> per round index: summed counts over the test seeds."""
    out = defaultdict(lambda: defaultdict(lambda: defaultdict(float)))
    for run in record["tests"]:
        for r in run.get("rewrite_rounds", []):
            cell = out[f"{run['config']['arm']}|{run['config']['mixture']}"][int(r["round"])]
            cell["step"] = r["step"]
            cell["runs"] += 1
            for key in ("selected", "replaced", "kept", "rejected_verifier", "replaced_right"):
                cell[key] += r.get(key, 0.0)
            for kind, n in r["replaced_by_kind"].items():
                cell[f"replaced_{kind}"] += n
    return {k: {i: dict(v) for i, v in rounds.items()} for k, rounds in out.items()}


def _variance(record: dict) -> list[dict]:
    return [{"mixture": run["config"]["mixture"], "seed": run["config"]["seed"], **v}
            for run in record["tests"] for v in run.get("variance", [])]


def summarise(record: dict) -> dict:
    tests = _by(record["tests"])
    _grpo(record, tests)
    arms = [a for a in ARMS if any(k[0] == a for k in tests)]
    mixtures = [m for m in record["args"]["mixtures"] if any(k[1] == m for k in tests)]
    per = {mix: {a: {k: mean_ci([m[k] for m in tests[(a, mix)].values() if k in m]) for k in METRICS}
                 for a in arms if (a, mix) in tests} for mix in mixtures}

    def paired(a, b, mix):
        x, y = tests[(a, mix)], tests[(b, mix)]
        return {k: paired_ci({s: m[k] for s, m in x.items() if k in m}, {s: m[k] for s, m in y.items() if k in m})
                for k in METRICS}

    paired_all = {mix: {f"{a}-{b}": paired(a, b, mix) for a, b in pairs(arms) if (a, mix) in tests and (b, mix) in tests}
                  for mix in mixtures}
    grid = defaultdict(list)
    for run in record.get("grids", []):
        cfg = run["config"]
        grid[f"{cfg['arm']}|{cfg['mixture']}|{cfg['lr']:g}"].append(run["val_acc"])
    base = record["base"]
    sanity = {}
    if "clean" in mixtures:
        for a in arms:
            acc = [v["test_id_acc"] for v in tests.get((a, "clean"), {}).values()]
            if acc:
                sanity[a] = {"acc": mean_ci(acc), "gain": mean_ci([x - base["test_id_acc"] for x in acc])}
    return {
        "started": record.get("started"),
        "decision_rule_sha256": record.get("decision_rule_sha256"),
        "decision_rule_token_losses_sha256": record.get("decision_rule_token_losses_sha256"),
        "wall_seconds": record["wall_seconds"],
        "base": base,
        "lr": record["lr"],
        "lr_from": record["args"].get("lr_from"),
        "arms": arms,
        "mixtures": mixtures,
        "seeds": record["args"]["seeds"],
        "tests": per,
        "paired": paired_all,
        "sanity": sanity,
        "grid": {k: mean_ci(v) for k, v in grid.items()},
        "rounds": _rounds(record),
        "variance": _variance(record),
    }
