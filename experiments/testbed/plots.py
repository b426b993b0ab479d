"""The PNG plots of the results page, from the raw record and its summary (records.py).

    paths = write_plots(record, summary, "docs/results")
"""

from __future__ import annotations

import os
from collections import defaultdict

from experiments.page import pyplot as _plt, save as _save
from experiments.stats import mean_ci
from experiments.testbed.arms import ARMS, LABELS
from experiments.testbed.records import base_compat, train_logs

__all__ = ["write_plots"]

COLORS = dict(zip(ARMS, ("tab:red", "tab:blue", "tab:green", "tab:olive", "tab:cyan", "tab:orange", "tab:gray",
                         "tab:purple", "tab:brown", "tab:pink", "magenta", "gold", "black")))
KIND_ORDER = ("native", "mild", "medium", "strong", "wrong")


def _band(ax, xs, series, color, label, log=False):
    cis = [mean_ci(col) for col in zip(*series)]
    ax.plot(xs, [c["mean"] for c in cis], color=color, label=label)
    if len(series) > 1:
        ax.fill_between(xs, [c["lo"] for c in cis], [c["hi"] for c in cis], color=color, alpha=0.15)
    if log:
        ax.set_yscale("log")


def _compat(record, plots_dir) -> str | None:
    stats = base_compat(record)
    if not stats:
        return None
    plt = _plt()
    fig, ax = plt.subplots(figsize=(6, 4))
    kinds = [k for k in KIND_ORDER if k in stats]
    ax.bxp([{"label": k, "whislo": stats[k]["q10"], "q1": stats[k]["q25"], "med": stats[k]["q50"],
             "q3": stats[k]["q75"], "whishi": stats[k]["q90"], "fliers": []} for k in kinds], showfliers=False)
    ax.set_yscale("log")
    ax.set(ylabel="compatibility c at the base policy", title="Compatibility per kind (whiskers q10-q90)")
    return _save(fig, plots_dir, "compat_by_kind.png")


def _lr_grid(record, summary, plots_dir) -> str | None:
    if not summary["grid"]:
        return None
    plt = _plt()
    lrs, mixtures = record["args"]["lrs"], summary["mixtures"]
    fig, axes = plt.subplots(1, len(mixtures), figsize=(4.5 * len(mixtures), 3.8), sharey=True, squeeze=False)
    for ax, mix in zip(axes[0], mixtures):
        for arm in summary["arms"]:
            cells = [summary["grid"].get(f"{arm}|{mix}|{lr:g}") for lr in lrs]
            xs = [lr for lr, c in zip(lrs, cells) if c]
            ax.plot(xs, [c["mean"] for c in cells if c], marker="o", color=COLORS[arm], label=LABELS[arm])
        ax.set(xscale="log", xlabel="learning rate", title=f"{mix} mixture")
    axes[0][0].set_ylabel("validation (ID) accuracy, mean of seeds")
    axes[0][0].axhline(record["base"]["val_acc"], color="gray", ls="--", label="base policy")
    axes[0][0].legend(fontsize=6)
    return _save(fig, plots_dir, "lr_grid.png")


def _curves(record, plots_dir) -> str | None:
    by_arm = defaultdict(list)
    for run in record["tests"]:
        if run["config"]["mixture"] == "default":
            by_arm[run["config"]["arm"]].append(run)
    if not by_arm:
        return None
    plt = _plt()
    fig, axes = plt.subplots(1, 3, figsize=(15, 4))
    for arm, runs in by_arm.items():
        logs = [train_logs(r) for r in runs]
        n = min(len(lg) for lg in logs)
        steps = [h["step"] for h in logs[0][:n]]
        _band(axes[0], steps, [[h["grad_norm"] for h in lg[:n]] for lg in logs], COLORS[arm], LABELS[arm], log=True)
        _band(axes[1], steps, [[h.get("cadft/weight_mass", 1.0) for h in lg[:n]] for lg in logs], COLORS[arm],
              LABELS[arm])
        probe_steps = [p["step"] for p in runs[0]["probes"]]
        _band(axes[2], probe_steps, [[p["val_acc"] for p in r["probes"]] for r in runs], COLORS[arm], LABELS[arm])
    axes[0].set(xlabel="step", ylabel="pre-clipping gradient norm", title="Gradient norm (default mixture)")
    axes[1].set(xlabel="step", ylabel="sum w M / sum M", title="Per-step weight mass (step-size factor)")
    axes[2].set(xlabel="step", ylabel="validation accuracy", title="Validation accuracy at the probes")
    axes[0].legend(fontsize=6)
    return _save(fig, plots_dir, "training_curves.png")


def _variance(summary, plots_dir) -> str | None:
    entries = summary["variance"]
    if not entries:
        return None
    plt = _plt()
    fig, axes = plt.subplots(1, len(entries), figsize=(3.6 * len(entries), 3.4), sharey=False, squeeze=False)
    for ax, e in zip(axes[0], entries):
        bins = [b for b in e["norm_vs_z"]["bins"] if b["n"]]
        xs = list(range(len(bins)))
        means = [b["mean"] for b in bins]
        err = [[m - b["ci"][0] for m, b in zip(means, bins)], [b["ci"][1] - m for m, b in zip(means, bins)]]
        ax.errorbar(xs, means, yerr=err, marker="o", capsize=3)
        ax.set_xticks(xs, [("<" if b["lo_z"] is None else f"{b['lo_z']:g}") + ("+" if b["hi_z"] is None else "")
                           for b in bins])
        ax.set(xlabel="z bin (lower edge)", title=f"{e['mixture']}, step {e['step']}")
    axes[0][0].set_ylabel("DFT per-sample gradient norm")
    return _save(fig, plots_dir, "grad_norm_vs_z.png")


def _grpo(record, plots_dir) -> str | None:
    if not record.get("grpo"):
        return None
    plt = _plt()
    fig, ax = plt.subplots(figsize=(6, 4))
    by = defaultdict(list)
    for g in record["grpo"]:
        by[g["method"]].append(g["rewards"])
    for arm, series in by.items():
        n = min(len(s) for s in series)
        _band(ax, list(range(1, n + 1)), [s[:n] for s in series], COLORS[arm], LABELS[arm])
    ax.set(xlabel="GRPO step", ylabel="mean correctness reward", title="Cold-start RL (mean, 95% CI over seeds)")
    ax.legend()
    return _save(fig, plots_dir, "rl_rewards.png")


def write_plots(record: dict, summary: dict, plots_dir: str) -> list[str]:
    os.makedirs(plots_dir, exist_ok=True)
    paths = [_compat(record, plots_dir), _lr_grid(record, summary, plots_dir), _curves(record, plots_dir),
             _variance(summary, plots_dir), _grpo(record, plots_dir)]
    return [p for p in paths if p]
