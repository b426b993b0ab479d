"""The PNG plots of docs/results.md, from the raw record and its summary.

    paths = write_plots(record, summary, "docs/results")
"""

from __future__ import annotations

import os
from collections import defaultdict

from stats import mean_ci

__all__ = ["write_plots"]

COLORS = {"sft": "tab:red", "dft": "tab:blue", "cadft": "tab:green", "cadft_rewrite": "tab:purple",
          "cadft_unweighted": "tab:orange", "alpha=0.5": "tab:orange"}
# cadft_unweighted: the chosen variant's token loss with beta = 0, the control that isolates the weights
LABELS = {"sft": "SFT", "dft": "DFT", "cadft": "CADFT", "cadft_rewrite": "CADFT+rewrite",
          "cadft_unweighted": "CADFT b=0 (no weights)"}
KIND_ORDER = ("native", "mild", "medium", "strong", "wrong")


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save(fig, plots_dir: str, name: str) -> str:
    path = os.path.join(plots_dir, name)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    _plt().close(fig)
    return path


def _band(ax, xs, series, color, label, log=False):
    cis = [mean_ci(col) for col in zip(*series)]
    ax.plot(xs, [c["mean"] for c in cis], color=color, label=label)
    if len(series) > 1:
        ax.fill_between(xs, [c["lo"] for c in cis], [c["hi"] for c in cis], color=color, alpha=0.2)
    if log:
        ax.set_yscale("log")


def _compat(record, plots_dir) -> str | None:
    from report import base_compat

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


def _lr_grid(record, summary, plots_dir) -> str:
    plt = _plt()
    lrs = record["args"]["lrs"]
    mixtures = summary["mixtures"]
    fig, axes = plt.subplots(1, len(mixtures), figsize=(4.5 * len(mixtures), 3.8), sharey=True, squeeze=False)
    families = sorted({k.split("|")[0] for k in summary["grid"]})
    for ax, mix in zip(axes[0], mixtures):
        for fam in families:
            cells = [summary["grid"].get(f"{fam}|{mix}|{lr:g}") for lr in lrs]
            xs = [lr for lr, c in zip(lrs, cells) if c]
            means = [c["val_acc"]["mean"] for c in cells if c]
            label = LABELS.get(fam, "CADFT " + fam if fam != "alpha=0.5" else fam)
            ax.plot(xs, means, marker="o", color=COLORS.get(fam, "tab:green"), label=label)
        ax.set(xscale="log", xlabel="learning rate", title=f"{mix} mixture")
    axes[0][0].set_ylabel("validation (ID) accuracy, mean of seeds")
    axes[0][0].axhline(record["base"]["val_acc"], color="gray", ls="--", label="base policy")
    axes[0][0].legend(fontsize=7)
    return _save(fig, plots_dir, "lr_grid.png")


def _curves(record, plots_dir) -> list[str]:
    from report import train_logs

    plt = _plt()
    by_method = defaultdict(list)
    for run in record["tests"]:
        if run["config"]["mixture"] == "default":
            by_method[run["config"]["method"]].append(run)
    if not by_method:
        return []
    fig, axes = plt.subplots(1, 3, figsize=(15, 4))
    for method, runs in by_method.items():
        logs = [train_logs(r) for r in runs]
        n = min(len(lg) for lg in logs)
        steps = [h["step"] for h in logs[0][:n]]
        _band(axes[0], steps, [[h["grad_norm"] for h in lg[:n]] for lg in logs], COLORS[method], LABELS[method],
              log=True)
        mass = [[h.get("cadft/weight_mass", 1.0) for h in lg[:n]] for lg in logs]
        _band(axes[1], steps, mass, COLORS[method], LABELS[method])
        probe_steps = [p["step"] for p in runs[0]["probes"]]
        _band(axes[2], probe_steps, [[p["val_acc"] for p in r["probes"]] for r in runs], COLORS[method],
              LABELS[method])
    axes[0].set(xlabel="step", ylabel="pre-clipping gradient norm", title="Gradient norm (default mixture)")
    axes[1].set(xlabel="step", ylabel="sum w M / sum M", title="Per-step weight mass (step-size factor)")
    axes[2].set(xlabel="step", ylabel="validation accuracy", title="Validation accuracy at the probes")
    axes[0].legend()
    return [_save(fig, plots_dir, "training_curves.png")]


def _grpo(record, plots_dir) -> list[str]:
    if not record["grpo"]:
        return []
    plt = _plt()
    fig, ax = plt.subplots(figsize=(6, 4))
    by = defaultdict(list)
    for g in record["grpo"]:
        by[g["method"]].append(g["rewards"])
    for method, series in by.items():
        n = min(len(s) for s in series)
        _band(ax, list(range(1, n + 1)), [s[:n] for s in series], COLORS[method], LABELS[method])
    ax.set(xlabel="GRPO step", ylabel="mean correctness reward", title="Cold-start RL (mean, 95% CI over seeds)")
    ax.legend()
    return [_save(fig, plots_dir, "rl_rewards.png")]


def write_plots(record: dict, summary: dict, plots_dir: str) -> list[str]:
    os.makedirs(plots_dir, exist_ok=True)
    paths = [_compat(record, plots_dir), _lr_grid(record, summary, plots_dir)]
    paths += _curves(record, plots_dir) + _grpo(record, plots_dir)
    return [p for p in paths if p]
