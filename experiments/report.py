"""Turn the raw runs of `experiments/run.py` into summary.json, PNG plots and docs/results.md.

Every number on the results page is written here, from the runs; nothing is typed by hand.
The page's discussion is `experiments/discussion.md`, included as it is (it holds no numbers).

    write_report(record, out_dir="experiments/results", docs_dir="docs")
"""

from __future__ import annotations

import datetime
import json
import math
import os
import platform
import subprocess
from collections import defaultdict

from stats import mean_ci, paired_ci, spikes

__all__ = ["run_metrics", "write_report"]

HERE = os.path.dirname(os.path.abspath(__file__))
METHODS = ("sft", "dft", "cadft", "cadft_rewrite")
LABELS = {"sft": "SFT", "dft": "DFT", "cadft": "CADFT", "cadft_rewrite": "CADFT+rewrite"}
KINDS = ("compatible", "incompatible", "wrong")
PAIRS = (("cadft", "dft"), ("cadft", "sft"), ("cadft_rewrite", "cadft"))
MAIN_METRICS = (
    ("test_id_acc", "ID acc"),
    ("test_ood_acc", "OOD acc"),
    ("retention_acc", "retention acc"),
    ("grad_noise", "grad noise"),
    ("ess", "ESS"),
    ("grad_spikes", "grad-norm spikes"),
    ("loss_spikes", "loss spikes"),
    ("grad_norm_peak", "peak/median grad norm"),
    ("grpo_acc", "GRPO final acc"),
    ("grpo_reward_last", "GRPO reward (last 25%)"),
)


def _train_logs(run: dict) -> list[dict]:
    return [h for h in run["log"] if "loss" in h and "train_runtime" not in h and "rewrite/round" not in h]


def run_metrics(run: dict) -> dict:
    """The scalar metrics of one fine-tuning run (see the definitions on the results page)."""
    logs = _train_logs(run)
    late = [p for p in run["probes"] if p["step"] > 0] or run["probes"]
    grad_norms = [h["grad_norm"] for h in logs if "grad_norm" in h]
    sorted_norms = sorted(grad_norms)
    out = {
        "val_acc": run["val_acc"],
        "grad_noise": sum(p["grad_noise"] for p in late) / len(late),
        "ess": sum(p["ess"] for p in late) / len(late),
        "grad_spikes": float(spikes(grad_norms)),
        "loss_spikes": float(spikes([h["loss"] for h in logs])),
        "grad_norm_peak": max(grad_norms) / sorted_norms[len(sorted_norms) // 2] if grad_norms else math.nan,
        "final_nll": sum(h["nll"] for h in logs[-10:]) / max(1, len(logs[-10:])) if logs else math.nan,
    }
    for key in ("test_id_acc", "test_ood_acc", "retention_acc"):
        if key in run:
            out[key] = run[key]
    return out


def _fmt(ci: dict, digits: int = 3) -> str:
    if ci["n"] == 0 or not math.isfinite(ci["mean"]):
        return "n/a"
    mean = f"{ci['mean']:.{digits}f}"
    if not math.isfinite(ci["lo"]):
        return f"{mean} (n={ci['n']})"
    return f"{mean} [{ci['lo']:.{digits}f}, {ci['hi']:.{digits}f}]"


def _table(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


# --------------------------------------------------------------------------- summaries


def summarise(record: dict) -> dict:
    per = defaultdict(dict)  # method -> seed -> metrics
    for run in record["main"]:
        cfg = run["config"]
        per[cfg["method"]][cfg["seed"]] = run_metrics(run)
    for g in record["grpo"]:
        m = per[g["method"]].setdefault(g["seed"], {})
        m["grpo_acc"] = g["final_test_id_acc"]
        rewards = g["rewards"]
        tail = rewards[-max(1, len(rewards) // 4):]
        m["grpo_reward_last"] = sum(tail) / len(tail) if tail else math.nan
    methods = [m for m in METHODS if m in per]
    main = {m: {key: mean_ci([v[key] for v in per[m].values() if key in v]) for key, _ in MAIN_METRICS + (("val_acc", ""), ("final_nll", ""))}
            for m in methods}
    paired = {}
    for a, b in PAIRS:
        if a in per and b in per:
            paired[f"{a}-{b}"] = {
                key: paired_ci({s: v[key] for s, v in per[a].items() if key in v},
                               {s: v[key] for s, v in per[b].items() if key in v})
                for key, _ in MAIN_METRICS
            }
    search = [{"method": r["config"]["method"], "lr": r["config"]["lr"], "beta": r["config"]["beta"],
               "seed": r["config"]["seed"], "val_acc": r["val_acc"], "grad_noise": run_metrics(r)["grad_noise"]}
              for r in record["search"]]

    mixture, beta = defaultdict(lambda: defaultdict(dict)), defaultdict(dict)
    for run in record["sweeps"]:
        cfg, met = run["config"], run_metrics(run)
        if run["phase"] == "beta":
            beta[cfg["beta"]][cfg["seed"]] = met
        else:
            mixture[(cfg["frac_incompatible"], cfg["frac_wrong"])][cfg["method"]][cfg["seed"]] = met
    rewrites = defaultdict(list)
    for run in record["main"]:
        if "rewrites_accepted" in run:
            for kind, count in run["rewrites_accepted"].items():
                rewrites[f"accepted ({kind})"].append(count)
            rounds = [h for h in run["log"] if "rewrite/round" in h]
            for key in ("selected", "accepted", "rejected_verifier", "rejected_no_gain", "rejected_error"):
                rewrites[f"{key} (all rounds)"].append(sum(h.get(f"rewrite/{key}", 0.0) for h in rounds))
    return {
        "per_seed": {m: per[m] for m in methods},
        "main": main,
        "paired": paired,
        "search": search,
        "chosen": record["chosen"],
        "mixture": {f"{fi},{fw}": {m: dict(s) for m, s in d.items()} for (fi, fw), d in mixture.items()},
        "beta": {str(b): dict(s) for b, s in beta.items()},
        "rewrites_accepted": {k: mean_ci(v) for k, v in rewrites.items()},
        "base": record["base"],
        "wall_seconds": record["wall_seconds"],
    }


# --------------------------------------------------------------------------- plots


def _curves(record: dict, plots_dir: str) -> list[str]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    os.makedirs(plots_dir, exist_ok=True)
    colors = {"sft": "tab:red", "dft": "tab:blue", "cadft": "tab:green", "cadft_rewrite": "tab:purple"}
    by_method = defaultdict(list)
    for run in record["main"]:
        by_method[run["config"]["method"]].append(run)
    written = []

    def band(ax, xs, series, color, label, log=False):
        cis = [mean_ci(col) for col in zip(*series)]
        means = [c["mean"] for c in cis]
        ax.plot(xs, means, color=color, label=label)
        if len(series) > 1:
            ax.fill_between(xs, [c["lo"] for c in cis], [c["hi"] for c in cis], color=color, alpha=0.2)
        if log:
            ax.set_yscale("log")

    # learning curves: training NLL per step, validation accuracy at the probes
    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    for method, runs in by_method.items():
        logs = [_train_logs(r) for r in runs]
        n = min(len(lg) for lg in logs)
        band(axes[0], [lg["step"] for lg in logs[0][:n]], [[h["nll"] for h in lg[:n]] for lg in logs],
             colors[method], LABELS[method])
        steps = [p["step"] for p in runs[0]["probes"]]
        band(axes[1], steps, [[p["val_acc"] for p in r["probes"]] for r in runs], colors[method], LABELS[method])
    axes[0].set(xlabel="step", ylabel="training-batch token NLL", title="Learning curve (mean, 95% CI over seeds)")
    axes[1].set(xlabel="step", ylabel="validation accuracy", title="Validation accuracy at the probes")
    axes[0].legend()
    fig.tight_layout()
    written.append(_save(fig, plots_dir, "learning_curves.png"))

    # gradient variance and ESS at the probes
    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    for method, runs in by_method.items():
        steps = [p["step"] for p in runs[0]["probes"]]
        band(axes[0], steps, [[p["grad_noise"] for p in r["probes"]] for r in runs], colors[method], LABELS[method], log=True)
        band(axes[1], steps, [[p["ess"] for p in r["probes"]] for r in runs], colors[method], LABELS[method])
    axes[0].set(xlabel="step", ylabel="tr Cov(h) / ||mean h||^2", title="Gradient variance on the probe batch")
    axes[1].set(xlabel="step", ylabel="ESS / B", title="Effective sample size of the weights")
    axes[0].legend()
    fig.tight_layout()
    written.append(_save(fig, plots_dir, "grad_variance.png"))

    # compatibility per demonstration kind over training
    methods = [m for m in METHODS if m in by_method]
    fig, axes = plt.subplots(1, len(methods), figsize=(4 * len(methods), 3.6), sharey=True, squeeze=False)
    kind_colors = {"compatible": "tab:green", "incompatible": "tab:orange", "wrong": "tab:red"}
    for ax, method in zip(axes[0], methods):
        runs = by_method[method]
        steps = [p["step"] for p in runs[0]["probes"]]
        for kind in KINDS:
            if kind in runs[0]["probes"][0]["compat"]:
                band(ax, steps, [[p["compat"][kind]["mean"] for p in r["probes"]] for r in runs], kind_colors[kind], kind)
        ax.set(title=LABELS[method], xlabel="step")
    axes[0][0].set_ylabel("mean compatibility c of the training rows")
    axes[0][0].legend()
    fig.tight_layout()
    written.append(_save(fig, plots_dir, "compat_by_kind.png"))

    # cold-start RL reward curves
    if record["grpo"]:
        fig, ax = plt.subplots(figsize=(6, 4))
        grpo_by = defaultdict(list)
        for g in record["grpo"]:
            grpo_by[g["method"]].append(g["rewards"])
        for method in METHODS:
            if method in grpo_by:
                series = grpo_by[method]
                n = min(len(s) for s in series)
                band(ax, list(range(1, n + 1)), [s[:n] for s in series], colors[method], LABELS[method])
        ax.set(xlabel="GRPO step", ylabel="mean correctness reward", title="Cold-start RL (mean, 95% CI over seeds)")
        ax.legend()
        fig.tight_layout()
        written.append(_save(fig, plots_dir, "rl_rewards.png"))
    return written


def _save(fig, plots_dir, name) -> str:
    import matplotlib.pyplot as plt

    path = os.path.join(plots_dir, name)
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path


# --------------------------------------------------------------------------- the page


def _machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            names = [line.split(":", 1)[1].strip() for line in f if line.startswith("model name")]
        cpu = names[0] if names else cpu
    except OSError:
        pass
    import torch
    import transformers
    import trl

    return (f"{cpu}, {os.cpu_count()} logical CPUs, {platform.system()} {platform.release()}; Python "
            f"{platform.python_version()}, torch {torch.__version__}, transformers {transformers.__version__}, "
            f"trl {trl.__version__}")


def _commit() -> str:
    try:
        return subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=HERE, capture_output=True, text=True,
                              check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def _command(record: dict) -> str:
    argv = record["argv"]
    return "python experiments/run.py" + ("" if not argv else " " + " ".join(argv))


def _definitions(args: dict) -> str:
    return f"""## What is measured

- **Accuracy** (ID, OOD, retention, validation): greedy generation (at most 72 new tokens) from the chat
  prompt `a+b-c...=?`, final answer = the last `#### x`, else the last number, compared with the true
  answer. ID: {args['n_test']} new problems with {args['ft_ops'][0]}-{args['ft_ops'][1]} operations (the fine-tuning distribution);
  OOD: {args['n_test']} longer problems with {args['ood_ops'][0]}-{args['ood_ops'][1]} operations; retention: {args['n_test']} easy problems with
  {args['base_ops'][0]}-{args['base_ops'][1]} operations (the pre-training skill; forgetting = base accuracy minus this);
  validation: {args['n_val']} ID-distribution problems used for the hyper-parameter search. The problem sets are fixed
  (the same for every method and seed).
- **Gradient variance** (`grad noise`): at steps 0 and k*steps/{args['n_checkpoints']}, on a fixed probe batch (the first
  {args['probe_size']} rows of the run's own shuffled training set, identical across methods for a seed), the per-sample
  gradients h_i of the method's loss with its weights (SFT: sum_t -l_it; DFT: sum_t -sg(p_it) l_it;
  CADFT: w_i sum_t -sg(p_it) l_it with the trainer's current normaliser m), and
  tr Cov(h) / ||mean h||^2 (unbiased covariance). It is the squared coefficient of variation of the
  estimator: the batch size needed for a given signal-to-noise ratio scales with it. The table shows its
  mean over the probes after step 0.
- **ESS**: the effective sample size of the weights on the probe batch, (sum w)^2 / (B sum w^2), in (0, 1];
  1 for SFT and DFT. Mean over the probes after step 0.
- **Stability**: the Trainer logs the loss and the pre-clipping gradient norm every step. A *spike* is a step
  whose value is more than 2x the median of the previous 10 steps; `peak/median grad norm` is the largest
  gradient norm over the run's median. The spread across seeds is the sd column of the seed table and the
  width of every CI.
- **Compatibility per kind**: every training row's c = exp(mean token log-prob of the demonstration)
  under the current policy, averaged per demonstration kind (compatible / incompatible / wrong) at the probes.
- **Cold-start RL**: TRL `GRPOTrainer` from each fine-tuned model, a 0/1 correctness reward (same answer
  check), {args['grpo_steps']} steps of {args['grpo_prompts']} prompts x {args['grpo_generations']} completions, learning rate {args['grpo_lr']:g}, the same for every
  method (not tuned). Reported: the reward curve, the mean reward over the last quarter of the steps and the
  greedy ID accuracy after GRPO.
- **Statistics**: each main cell is the mean over seeds with a 95% Student-t interval; paired comparisons
  are the mean of the per-seed differences (methods share each seed's fine-tuning set, order and probe
  batch) with their 95% t interval. An interval that contains 0 is no evidence either way.
"""


# higher is better for these; lower is better for the rest of MAIN_METRICS
_HIGHER_BETTER = {"test_id_acc", "test_ood_acc", "retention_acc", "grpo_acc", "grpo_reward_last"}


def _findings(summary: dict) -> str:
    """One sentence per paired comparison and metric, derived from the intervals alone."""
    lines = ["## Findings, read off the paired intervals (generated)\n"]
    for a, b in PAIRS:
        key = f"{a}-{b}"
        if key not in summary["paired"]:
            continue
        wins, losses, ties = [], [], []
        for metric, label in MAIN_METRICS:
            if metric == "ess":  # neither better nor worse: a lower ESS is what down-weighting means
                continue
            ci = summary["paired"][key][metric]
            if ci["n"] < 2 or not math.isfinite(ci["lo"]) or (ci["lo"] == 0 == ci["hi"]):
                ties.append(label)
            elif ci["lo"] > 0 or ci["hi"] < 0:
                better = (ci["lo"] > 0) == (metric in _HIGHER_BETTER)
                (wins if better else losses).append(f"{label} ({ci['mean']:+.3g})")
            else:
                ties.append(label)
        lines.append(f"- **{LABELS[a]} vs {LABELS[b]}**: better on {', '.join(wins) or 'nothing'}; "
                     f"worse on {', '.join(losses) or 'nothing'}; no detectable difference on {', '.join(ties) or 'nothing'}.")
    lines.append("\nLower is better for gradient variance, spikes and peak/median grad norm; higher for accuracies "
                 "and reward. ESS is left out: a lower ESS is what down-weighting means, not a loss.\n")
    return "\n".join(lines)


def write_report(record: dict, *, out_dir: str, docs_dir: str) -> dict:
    os.makedirs(out_dir, exist_ok=True)
    summary = summarise(record)
    with open(os.path.join(out_dir, "summary.json"), "w") as f:
        json.dump(summary, f, indent=1, default=str)
    plots_dir = os.path.join(docs_dir, "results")
    plots = _curves(record, plots_dir)
    args = record["args"]
    args["base_ops"] = record["base"]["config"]["ops"]
    base = record["base"]
    page = []
    page.append("# Evidence: SFT vs DFT vs CADFT vs CADFT+rewriting on a controlled testbed\n")
    page.append("This page is written by `experiments/run.py` (every number, table and plot); do not edit it by hand.\n")
    page.append(f"- **Command**: `{_command(record)}` (and `python experiments/run.py --report-only` rewrites this page "
                "from `experiments/results/record.json` without rerunning)")
    page.append(f"- **Wall time**: {record['wall_seconds'] / 60:.1f} min with {args['jobs']} worker processes "
                f"(1 thread each). Training the base policy takes {base['seconds'] / 60:.1f} min; "
                f"{'this run found it in the cache, so the wall time excludes it' if base['cached'] else 'this run trained it (included)'}.")
    page.append(f"- **Machine**: {_machine()}")
    finished = record.get("finished", datetime.datetime.now().strftime("%Y-%m-%d %H:%M"))
    page.append(f"- **Date**: run finished {finished} (page written at commit {_commit()})\n")

    page.append("## The testbed\n")
    page.append(
        f"A tiny Llama (hidden {base['config']['hidden_size']}, {base['config']['num_layers']} layers, character tokenizer, "
        f"`cadft.tiny`) is pre-trained from scratch for {base['config']['steps']} steps on easy problems "
        f"({base['config']['ops'][0]}-{base['config']['ops'][1]} operations) in the native style; {base['config']['hint_frac']:.0%} of its "
        "rows also teach it to restate a reference solution in its own style (the skill rewriting with "
        f"`rewrite_generator=\"policy\"` needs). Base policy: accuracy {base['acc_easy']:.3f} on easy problems, "
        f"{base['acc_ft_ops']:.3f} on 3-4-operation problems (greedy, 200 problems each).\n")
    page.append(
        f"Fine-tuning set: {args['n_train']} problems with {args['ft_ops'][0]}-{args['ft_ops'][1]} operations; "
        f"{args['frac_incompatible']:.0%} correct but in a foreign style (result first, operands swapped, one line, "
        f"`ans:`), {args['frac_wrong']:.0%} native but wrong (noise kind `{args['noise_kind']}`), the rest native and correct. "
        f"Every method trains {args['steps']} steps of batch {args['batch_size']} through `cadft.CADFTTrainer` "
        f"(loss_type nll / dft / cadft; rewriting: `rewrite=True`, the policy as generator, exact-answer verifier "
        f"on the `answer` column, budget {args['rewrite_budget']:g} per round, default schedule), AdamW with a cosine schedule, "
        f"seeds {', '.join(map(str, args['seeds']))}. See `experiments/task.py` for examples of each style.\n")

    page.append(_definitions(args))

    # main table
    page.append("## Main results\n")
    main = summary["main"]
    header = ["method", "lr", "beta"] + [label for _, label in MAIN_METRICS]
    rows = []
    for m in main:
        ch = record["chosen"][m]
        beta = f"{ch['beta']:g}" if m.startswith("cadft") else "-"
        rows.append([LABELS[m], f"{ch['lr']:g}", beta] + [_fmt(main[m][key]) for key, _ in MAIN_METRICS])
    page.append("Mean [95% CI] over seeds.\n")
    page.append(_table(header, rows) + "\n")
    page.append(f"Base policy before fine-tuning (for forgetting): retention accuracy {base['acc_easy']:.3f}, "
                f"ID accuracy {base['acc_ft_ops']:.3f}.\n")

    page.append("### Paired comparisons (difference of per-seed values, mean [95% CI])\n")
    header = ["comparison"] + [label for _, label in MAIN_METRICS]
    rows = [[f"{LABELS[a]} - {LABELS[b]}"] + [_fmt(summary["paired"][f"{a}-{b}"][key]) for key, _ in MAIN_METRICS]
            for a, b in PAIRS if f"{a}-{b}" in summary["paired"]]
    page.append(_table(header, rows) + "\n")

    page.append("### Spread across seeds (sd of the per-seed values)\n")
    keys = ("test_id_acc", "test_ood_acc", "retention_acc", "final_nll")
    rows = [[LABELS[m]] + [f"{main[m][k]['sd']:.4f}" if main[m][k]["n"] > 1 else "n/a" for k in keys] for m in main]
    page.append(_table(["method", "sd ID acc", "sd OOD acc", "sd retention", "sd final train NLL"], rows) + "\n")

    if summary["rewrites_accepted"]:
        page.append("### Rewriting: rounds, candidates' fate and accepted rewrites per demonstration kind "
                    "(per run, mean [95% CI])\n")
        rows = [[k, _fmt(v, 1)] for k, v in summary["rewrites_accepted"].items()]
        page.append(_table(["count", "per run"], rows) + "\n")

    # compatibility per kind, first and last probe
    page.append("### Compatibility per demonstration kind (mean c over the training rows; first -> last probe)\n")
    by_method = defaultdict(list)
    for run in record["main"]:
        by_method[run["config"]["method"]].append(run)
    rows = []
    for m in main:
        cells = []
        for kind in KINDS:
            first = [r["probes"][0]["compat"].get(kind, {}).get("mean") for r in by_method[m]]
            last = [r["probes"][-1]["compat"].get(kind, {}).get("mean") for r in by_method[m]]
            wlast = [r["probes"][-1]["compat"].get(kind, {}).get("weight_mean") for r in by_method[m]]
            cells.append(f"{_fmt(mean_ci(first))} -> {_fmt(mean_ci(last))}")
            cells.append(_fmt(mean_ci(wlast)) if m.startswith("cadft") else "1")
        rows.append([LABELS[m]] + cells)
    hdr = ["method"] + [x for kind in KINDS for x in (f"c {kind}", f"w {kind} (last)")]
    page.append(_table(hdr, rows) + "\n")

    page.append("## Plots\n")
    for path in plots:
        name = os.path.basename(path)
        page.append(f"![{name}](results/{name})\n")

    # sweeps
    if summary["mixture"]:
        page.append("## Sensitivity: the mixture\n")
        page.append(f"ID accuracy (mean over seeds {', '.join(map(str, args['sweep_seeds']))}), each method at its "
                    "selected hyper-parameters; the last column is the paired CADFT - DFT difference.\n")
        sweep_methods = args["sweep_methods"].split(",")
        rows = []
        for key in sorted(summary["mixture"], key=lambda k: tuple(map(float, k.split(",")))):
            fi, fw = key.split(",")
            d = summary["mixture"][key]
            cells = [_fmt(mean_ci([v["test_id_acc"] for v in d.get(m, {}).values()])) for m in sweep_methods]
            ood = [_fmt(mean_ci([v["test_ood_acc"] for v in d.get(m, {}).values()])) for m in sweep_methods]
            diff = "n/a"
            if "cadft" in d and "dft" in d:
                diff = _fmt(paired_ci({s: v["test_id_acc"] for s, v in d["cadft"].items()},
                                      {s: v["test_id_acc"] for s, v in d["dft"].items()}))
            rows.append([fi, fw] + cells + ood + [diff])
        hdr = (["frac incompatible", "frac wrong"] + [f"ID {LABELS[m]}" for m in sweep_methods]
               + [f"OOD {LABELS[m]}" for m in sweep_methods] + ["ID CADFT - DFT"])
        page.append(_table(hdr, rows) + "\n")
    if summary["beta"]:
        page.append("## Sensitivity: beta\n")
        page.append(f"CADFT at the default mixture and its selected learning rate, seeds "
                    f"{', '.join(map(str, args['sweep_seeds']))}; beta = 0 is DFT exactly.\n")
        rows = []
        for b in sorted(summary["beta"], key=float):
            d = summary["beta"][b].values()
            rows.append([b] + [_fmt(mean_ci([v[k] for v in d])) for k in ("test_id_acc", "test_ood_acc", "retention_acc", "grad_noise", "ess")])
        page.append(_table(["beta", "ID acc", "OOD acc", "retention", "grad noise", "ESS"], rows) + "\n")

    page.append("## Hyper-parameter search (validation split, seeds "
                f"{', '.join(map(str, args['search_seeds']))}; the test sets are never evaluated here)\n")
    grouped = defaultdict(list)
    for s in summary["search"]:
        grouped[(s["method"], s["lr"], s["beta"])].append(s)
    rows = [[LABELS[m], f"{lr:g}", f"{b:g}" if m == "cadft" else "-",
             _fmt(mean_ci([s["val_acc"] for s in runs])), ", ".join(f"{s['val_acc']:.3f}" for s in runs),
             f"{sum(s['grad_noise'] for s in runs) / len(runs):.3g}"] for (m, lr, b), runs in grouped.items()]
    page.append(_table(["method", "lr", "beta", "val acc (mean [CI])", "val acc per seed", "grad noise (final)"], rows) + "\n")
    page.append("Selected (highest mean validation accuracy; ties go to the first in search order): "
                + "; ".join(f"{LABELS[m]} lr={c['lr']:g}" + (f", beta={c['beta']:g}" if m.startswith("cadft") else "")
                            for m, c in record["chosen"].items())
                + ". CADFT+rewriting reuses CADFT's values.\n")

    page.append(_findings(summary))
    discussion = os.path.join(HERE, "discussion.md")
    if os.path.exists(discussion):
        page.append(open(discussion).read())
    os.makedirs(docs_dir, exist_ok=True)
    with open(os.path.join(docs_dir, "results.md"), "w") as f:
        f.write("\n".join(page))
    return summary
