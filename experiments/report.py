"""Turn the raw runs of `experiments/run.py` into summary.json, PNG plots and docs/results.md.

Every number on the results page is written here, from the runs; nothing is typed by hand.
The page's discussion is `experiments/discussion.md`, included as it is (it points at the
tables and holds no numbers of its own). The ablation and decision tables are also put in
the summary (`ablation_table`) so that run.py can print them.

    write_report(record, out_dir="experiments/results", docs_dir="docs")
"""

from __future__ import annotations

import math
import os
import shlex
from collections import defaultdict

from plots import LABELS, write_plots
from lab import git_commit, machine
from stats import mean_ci, paired_ci, spikes

__all__ = ["run_metrics", "summarise", "write_report"]

HERE = os.path.dirname(os.path.abspath(__file__))
METHODS = ("sft", "dft", "cadft", "cadft_rewrite", "cadft_unweighted")
PAIRS = (("cadft", "dft"), ("cadft", "sft"), ("cadft", "cadft_unweighted"), ("cadft_rewrite", "dft"),
         ("cadft_rewrite", "sft"), ("cadft_rewrite", "cadft"), ("cadft_unweighted", "dft"))
MAIN_METRICS = (
    ("test_id_acc", "ID acc"),
    ("test_ood_acc", "OOD acc"),
    ("retention_acc", "retention acc"),
    ("grad_snr", "grad SNR"),
    ("split_cos", "split-half cos"),
    ("align", "align w/ clean"),
    ("ess", "ESS"),
    ("grad_spikes", "grad-norm spikes"),
    ("grad_norm_peak", "peak/median grad norm"),
    ("weight_mass_min", "weight mass min"),
    ("weight_mass_max", "weight mass max"),
)
GRPO_METRICS = (
    ("grpo_acc_start", "ID acc start"),
    ("grpo_acc_gain", "ID acc gain"),
    ("grpo_reward_start", "reward start"),
    ("grpo_reward_gain", "reward gain"),
)
HIGHER_BETTER = {"test_id_acc", "test_ood_acc", "retention_acc", "grad_snr", "split_cos", "align",
                 "grpo_acc_gain", "grpo_reward_gain"}
NEUTRAL = {"ess", "weight_mass_min", "weight_mass_max", "grpo_acc_start", "grpo_reward_start"}


# --------------------------------------------------------------------------- per run


def train_logs(run: dict) -> list[dict]:
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
        **{k: sum(p[k] for p in late) / len(late) for k in ("grad_snr", "split_cos", "align", "ess") if k in late[0]},
        "grad_spikes": float(spikes(norms)),
        "grad_norm_peak": max(norms) / sorted(norms)[len(norms) // 2] if norms else math.nan,
        "final_nll": final_nll,
        "finite": float(math.isfinite(final_nll)),
        "weight_mass_min": min(mass),
        "weight_mass_max": max(mass),
    }
    for key in ("test_id_acc", "test_ood_acc", "retention_acc"):
        if key in run:
            out[key] = run[key]
    return out


def _variant_key(cfg: dict) -> str:
    if cfg["method"] in ("sft", "dft", "cadft_unweighted"):
        return cfg["method"]
    if cfg["beta"] == 0:
        return f"alpha={cfg['token_power']:g}"
    return f"{cfg['normalization']}, a={cfg['token_power']:g}, b={cfg['beta']:g}, wmax={cfg['w_max']:g}"


# --------------------------------------------------------------------------- summaries


def _collapsed(metrics: dict, base: dict) -> bool:
    """A run that blew up (non-finite loss) or kept less than half of the base policy's
    validation accuracy: training destroyed the skill instead of improving it."""
    return not metrics["finite"] or metrics["val_acc"] < 0.5 * base["val_acc"]


def _by(runs, key_fn) -> dict:
    """key -> seed -> metrics."""
    out = defaultdict(dict)
    for run in runs:
        out[key_fn(run["config"])][run["config"]["seed"]] = run_metrics(run)
    return out


def _ci_table(per_seed: dict, keys) -> dict:
    return {k: mean_ci([m[k] for m in per_seed.values() if k in m]) for k in keys}


def _paired(a: dict, b: dict, keys) -> dict:
    return {k: paired_ci({s: m[k] for s, m in a.items() if k in m}, {s: m[k] for s, m in b.items() if k in m})
            for k in keys}


def _grpo_metrics(record: dict, tests: dict) -> None:
    """Adds GRPO start / gain metrics to the default-mixture test runs' per-seed metrics."""
    for g in record["grpo"]:
        m = tests.get((g["method"], "default"), {}).get(g["seed"])
        if m is None:
            continue
        rewards = g["rewards"]
        k = max(1, len(rewards) // 4)
        m["grpo_acc_start"] = m["test_id_acc"]
        m["grpo_acc_gain"] = g["final_test_id_acc"] - m["test_id_acc"]
        m["grpo_reward_start"] = sum(rewards[:k]) / k
        m["grpo_reward_gain"] = sum(rewards[-k:]) / k - m["grpo_reward_start"]


def summarise(record: dict) -> dict:
    keys = [k for k, _ in MAIN_METRICS + GRPO_METRICS] + ["val_acc", "final_nll"]
    tests = _by(record["tests"], lambda c: (c["method"], c["mixture"]))
    _grpo_metrics(record, tests)
    mixtures = [m for m in ("clean", "default", "high") if any(k[1] == m for k in tests)]
    per_mixture = {mix: {m: _ci_table(tests[(m, mix)], keys) for m in METHODS if (m, mix) in tests}
                   for mix in mixtures}
    paired = {mix: {f"{a}-{b}": _paired(tests[(a, mix)], tests[(b, mix)], keys) for a, b in PAIRS
                    if (a, mix) in tests and (b, mix) in tests} for mix in mixtures}
    ablation = _by(record["ablation"], lambda c: (_variant_key(c), c["mixture"]))
    grid = defaultdict(list)
    for run in record["grids"]:
        cfg = run["config"]
        grid[(_variant_key(cfg), cfg["mixture"], cfg["lr"])].append(run_metrics(run))
    base = record["base"]
    sanity = {}
    if "clean" in mixtures:
        for m in METHODS:
            if (m, "clean") in tests:
                acc = [v["test_id_acc"] for v in tests[(m, "clean")].values()]
                sanity[m] = {"acc": mean_ci(acc), "gain": mean_ci([a - base["test_id_acc"] for a in acc])}
    return {
        "started": record.get("started"),
        "decision_rule_sha256": record.get("decision_rule_sha256"),
        "wall_seconds": record["wall_seconds"],
        "base": base,
        "lr": record["lr"],
        "chosen": record["chosen"],
        "mean_ranks": record["mean_ranks"],
        "tied": record["tied"],
        "mixtures": mixtures,
        "tests": per_mixture,
        "paired": paired,
        "sanity": sanity,
        "ablation": {f"{v}|{mix}": seeds for (v, mix), seeds in ablation.items()},
        "grid": {f"{v}|{mix}|{lr:g}": {"val_acc": mean_ci([r["val_acc"] for r in runs]),
                                        "collapsed": sum(_collapsed(r, base) for r in runs), "n": len(runs),
                                        "grad_spikes": mean_ci([r["grad_spikes"] for r in runs])}
                 for (v, mix, lr), runs in grid.items()},
    }


# --------------------------------------------------------------------------- formatting


def fmt(ci: dict, digits: int = 3) -> str:
    if ci["n"] == 0 or not math.isfinite(ci["mean"]):
        return "n/a"
    mean = f"{ci['mean']:.{digits}f}"
    if not math.isfinite(ci["lo"]):
        return f"{mean} (n={ci['n']})"
    return f"{mean} [{ci['lo']:.{digits}f}, {ci['hi']:.{digits}f}]"


def table(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


def _verdict(ci: dict, higher_better: bool = True) -> str:
    """'better', 'worse' or 'no detectable difference' from a paired interval."""
    if ci["n"] < 2 or not math.isfinite(ci["lo"]) or not (ci["lo"] > 0 or ci["hi"] < 0):
        return "no detectable difference"
    return "better" if (ci["lo"] > 0) == higher_better else "worse"


def _chosen_label(chosen: dict) -> str:
    return (f"{chosen['normalization']}, a={chosen['token_power']:g}, b={chosen['beta']:g}, "
            f"wmax={chosen['w_max']:g}")


# --------------------------------------------------------------------------- sections


def ablation_table(summary: dict) -> str:
    """Validation accuracy of every ablation variant and of SFT/DFT, per mixture, with the
    paired differences against DFT and SFT, and each variant's mean rank (the rule's score)."""
    mixtures = summary["mixtures"]
    ranks = {_chosen_label(r["variant"]): r["mean_rank"] for r in summary["mean_ranks"]}
    abl = summary["ablation"]
    variants = ["sft", "dft"] + sorted(ranks, key=lambda v: ranks[v])
    rows = []
    for v in variants:
        row = [v.upper() if v in ("sft", "dft") else v, f"{ranks[v]:.2f}" if v in ranks else "-"]
        for mix in mixtures:
            seeds = abl.get(f"{v}|{mix}", {})
            row.append(fmt(mean_ci([m["val_acc"] for m in seeds.values()])))
            for ref in ("dft", "sft"):
                ref_seeds = abl.get(f"{ref}|{mix}", {})
                row.append("-" if v == ref else fmt(paired_ci({s: m["val_acc"] for s, m in seeds.items()},
                                                              {s: m["val_acc"] for s, m in ref_seeds.items()})))
        rows.append(row)
    header = ["variant (normalisation, alpha, beta, w_max)", "mean rank"]
    for mix in mixtures:
        header += [f"{mix}: val acc", f"{mix}: - DFT", f"{mix}: - SFT"]
    return table(header, rows)


def sanity_section(summary: dict) -> str:
    base = summary["base"]
    lines = ["## Sanity: does every method learn on clean data?\n",
             "Test ID accuracy after fine-tuning on the clean mixture (native, correct demonstrations only), "
             "mean [95% CI] over the clean-mixture test seeds, and the gain over the base policy (a fixed "
             "model: its interval is the runs' interval shifted).\n"]
    rows = [["base policy", f"{base['test_id_acc']:.3f}", "-"]]
    for m, v in summary["sanity"].items():
        rows.append([LABELS[m], fmt(v["acc"]), fmt(v["gain"])])
    lines.append(table(["model", "ID acc", "gain over base"], rows) + "\n")
    for m, v in summary["sanity"].items():
        if _verdict(v["gain"]) != "better":
            lines.append(f"**{LABELS[m]} does not improve over the base policy on clean data** "
                         f"(gain {fmt(v['gain'])}).\n")
    return "\n".join(lines)


MIXTURE_PAIRS = (("cadft-dft", "CADFT - DFT"), ("cadft-sft", "CADFT - SFT"),
                 ("cadft-cadft_unweighted", "CADFT - b=0"), ("cadft_unweighted-dft", "b=0 - DFT"),
                 ("cadft_rewrite-dft", "CADFT+rw - DFT"), ("cadft_rewrite-sft", "CADFT+rw - SFT"))


def _mixture_table(summary: dict) -> str:
    rows = []
    for mix in summary["mixtures"]:
        t, p = summary["tests"][mix], summary["paired"][mix]
        for key, label in (("test_id_acc", "ID"), ("test_ood_acc", "OOD"), ("retention_acc", "retention")):
            row = [mix, label] + [fmt(t[m][key]) if m in t else "n/a" for m in METHODS]
            row += [fmt(p[pair][key]) if pair in p else "n/a" for pair, _ in MIXTURE_PAIRS]
            rows.append(row)
    header = ["mixture", "acc"] + [LABELS[m] for m in METHODS] + [label for _, label in MIXTURE_PAIRS]
    return table(header, rows)


def when_cadft_helps(summary: dict) -> str:
    """The "When does CADFT help?" section, read off the paired test intervals."""
    lines = ["## When does CADFT help?\n",
             f"Measured on this project's synthetic testbed (a tiny model, chained arithmetic; "
             f"`docs/results.md`), with CADFT at the default the pre-registered rule chose "
             f"({_chosen_label(summary['chosen'])}), every method's learning rate tuned per mixture on "
             "validation seeds with the same grid. Paired differences over test seeds, mean [95% CI]; "
             "`CADFT - b=0` compares CADFT with its own token loss without the sample weights (the control, "
             "tuned the same way), so it isolates what the compatibility weights do:\n"]
    helps = []
    rows = []
    for mix in summary["mixtures"]:
        p = summary["paired"][mix]
        for key, label in (("test_id_acc", "ID acc"), ("test_ood_acc", "OOD acc"), ("retention_acc", "retention")):
            cells = [fmt(p[pair][key]) if pair in p else "n/a" for pair in ("cadft-dft", "cadft-sft",
                                                                             "cadft-cadft_unweighted")]
            rows.append([mix, label] + cells)
            if key == "test_id_acc" and all(pair in p and _verdict(p[pair][key]) == "better"
                                            for pair in ("cadft-dft", "cadft-sft")):
                helps.append(mix)
    lines.append(table(["mixture", "metric", "CADFT - DFT", "CADFT - SFT", "CADFT - b=0"], rows) + "\n")
    if helps:
        lines.append(f"CADFT beats both DFT and SFT on ID accuracy (95% intervals above 0) in: "
                     f"{', '.join(helps)}. Elsewhere it does not, and the rows above say where it loses.\n")
        for mix in helps:
            ci = summary["paired"][mix].get("cadft-cadft_unweighted", {}).get("test_id_acc")
            if ci is not None:
                verdict = _verdict(ci)
                lines.append(f"In {mix}, CADFT against its own token loss without weights (b=0): {fmt(ci)}, "
                             + ("so the compatibility weights add to the gain.\n" if verdict == "better" else
                                f"{verdict}, so this run cannot tell how much of the gain the weights make.\n"))
    else:
        lines.append("**CADFT does not beat both DFT and SFT on ID accuracy in any mixture here** (no mixture "
                     "has both paired intervals above 0); the rows above say where it ties and where it loses.\n")
    return "\n".join(lines)


def _main_section(summary: dict) -> str:
    t, p = summary["tests"].get("default"), summary["paired"].get("default")
    if t is None:
        return ""
    lines = ["## Main results (default mixture)\n", "Mean [95% CI] over the default-mixture test seeds.\n"]
    rows = [[LABELS[m]] + [fmt(t[m][k]) for k, _ in MAIN_METRICS] for m in METHODS if m in t]
    lines.append(table(["method"] + [label for _, label in MAIN_METRICS], rows) + "\n")
    lines.append("### Paired comparisons (per-seed differences, mean [95% CI])\n")
    rows = [[f"{LABELS[a]} - {LABELS[b]}"] + [fmt(p[f"{a}-{b}"][k]) for k, _ in MAIN_METRICS]
            for a, b in PAIRS if f"{a}-{b}" in p]
    lines.append(table(["comparison"] + [label for _, label in MAIN_METRICS], rows) + "\n")
    lines.append("### Cold-start RL: what GRPO gains from each model (same budget for all)\n")
    has_grpo = {m for m in t if t[m]["grpo_acc_gain"]["n"]}  # the control gets no GRPO run
    rows = [[LABELS[m]] + [fmt(t[m][k]) for k, _ in GRPO_METRICS] for m in METHODS if m in has_grpo]
    lines.append(table(["method"] + [label for _, label in GRPO_METRICS], rows) + "\n")
    rows = [[f"{LABELS[a]} - {LABELS[b]}"] + [fmt(p[f"{a}-{b}"][k]) for k, _ in GRPO_METRICS]
            for a, b in PAIRS if f"{a}-{b}" in p and {a, b} <= has_grpo]
    lines.append(table(["comparison"] + [label for _, label in GRPO_METRICS], rows) + "\n")
    return "\n".join(lines)


def _grid_section(summary: dict, lrs: list[float]) -> str:
    lines = ["## Stability: the learning-rate grid (validation seeds)\n",
             "Validation accuracy (mean [95% CI]) per learning rate; `collapsed` counts the runs whose loss was "
             "not finite or whose validation accuracy fell below half the base policy's (training destroyed the "
             "skill), `spk` is the mean number of gradient-norm spikes. The grid is the tuning budget: every method gets the same rates and seeds, per mixture "
             "(CADFT: the chosen variant).\n"]
    grid = summary["grid"]
    families = sorted({k.split("|")[0] for k in grid}, key=lambda v: (v not in ("sft", "dft"), v))
    rows = []
    for mix in summary["mixtures"]:
        for fam in families:
            cells = []
            for lr in lrs:
                g = grid.get(f"{fam}|{mix}|{lr:g}")
                cells.append("n/a" if g is None else
                             f"{fmt(g['val_acc'])} collapsed {g['collapsed']}/{g['n']} spk {g['grad_spikes']['mean']:.1f}")
            ok = [lr for lr in lrs if (g := grid.get(f"{fam}|{mix}|{lr:g}")) and g["collapsed"] == 0]
            span = ", ".join(f"{lr:g}" for lr in ok) or "none"
            rows.append([mix, LABELS.get(fam, fam)] + cells + [span])
    lines.append(table(["mixture", "method"] + [f"lr {lr:g}" for lr in lrs] + ["rates that did not collapse"], rows)
                 + "\n")
    names = {"0.0": "SFT", "1.0": "DFT", "0.5": "alpha=0.5 variants (derived)", "cadft": "CADFT",
             "unweighted": "CADFT b=0 (control)"}
    tuned = {f"{names[k.split('|')[0]]} in {k.split('|')[1]}": v for k, v in summary["lr"].items()}
    edge = [k for k, v in tuned.items() if v in (min(lrs), max(lrs)) and "derived" not in k]
    lines.append("Chosen rates: " + "; ".join(f"{k}: {v:g}" for k, v in tuned.items()) + ".\n")
    if edge:
        lines.append(f"**At the edge of the grid** (the optimum may lie outside it): {', '.join(edge)}.\n")
    return "\n".join(lines)


def _compat_section(summary: dict, record: dict) -> str:
    stats = base_compat(record)
    if not stats:
        return ""
    lines = ["## Graded incompatibility: compatibility per kind at the base policy\n",
             "c = exp(mean token log-prob of the demonstration) under the base policy, over the rows of the "
             "default mixture's first test seed (quantiles; 10% of the rows are of each foreign kind, 20% wrong).\n"]
    rows = [[k, f"{v['q10']:.2e}", f"{v['q25']:.2e}", f"{v['q50']:.2e}", f"{v['q75']:.2e}", f"{v['q90']:.2e}"]
            for k, v in stats.items()]
    lines.append(table(["kind", "q10", "q25", "median", "q75", "q90"], rows) + "\n")
    return "\n".join(lines)


def base_compat(record: dict) -> dict:
    """Per-kind compatibility quantiles at step 0 of the first test run with every kind."""
    for mix in ("default", "high"):
        for run in record["tests"]:
            if run["config"]["mixture"] == mix:
                return run["probes"][0]["compat"]
    return {}


def _definitions(args: dict, sets: dict) -> str:
    return f"""## What is measured

- **Accuracy** (greedy generation, at most 72 new tokens, final answer = the last `#### x`, else the last
  number, against the true answer). ID: {args['n_test']} problems with {sets['finetune']['text']} (the fine-tuning
  distribution); OOD: {args['n_test']} problems with {sets['ood']['text']} (starts no fine-tuning problem has);
  retention: {args['n_test']} problems with {sets['retention']['text']} (disjoint from fine-tuning; forgetting =
  base minus this); validation: {args['n_val']} ID problems, used for tuning and for the decision rule only. Fixed
  sets.
- **Gradient instruments**, at step 0 and the probes, on a fixed probe batch (the first {args['probe_size']} rows of
  the run's own training set, identical across methods for a seed), from the per-sample gradients h_i of the
  method's loss with its weights: `grad SNR` = (||mean h||^2 - tr Cov/B) / tr Cov, the per-sample
  signal-to-noise ratio with the 1/B bias removed (tests/test_experiment_instruments.py recovers known ratios
  within 10%); `split-half cos`, the cosine between the two half-batch means; `align w/ clean`, the cosine of
  the batch gradient with the plain-NLL gradient of {args['probe_size']} clean held-out demonstrations (native,
  correct). Higher is better for all three. Means over the probes after step 0.
- **ESS**: (sum w)^2 / (B sum w^2) of the weights on the probe batch; 1 for SFT and DFT.
- **Stability**: a *spike* is a step whose pre-clipping gradient norm exceeds 2x the median of the previous 10;
  `peak/median grad norm`; `weight mass` = sum_i w_i M_i / sum_i M_i per optimizer step (`cadft/weight_mass`),
  the factor by which the weights scale the step (1 for SFT and DFT; always 1 under `batch`): its min and max
  over the run. Robustness: the learning-rate grid below.
- **Cold-start RL**: TRL `GRPOTrainer` from each default-mixture model of seeds {', '.join(map(str, args['grpo_seeds']))},
  0/1 correctness reward, {args['grpo_steps']} steps of {args['grpo_prompts']} prompts x {args['grpo_generations']} completions, learning rate
  {args['grpo_lr']:g}, the same for every method. Start = the fine-tuned model (greedy ID accuracy; mean reward of
  the first quarter of the steps); gain = after minus start (greedy ID accuracy after GRPO; reward of the last
  quarter).
- **Statistics**: 95% Student-t intervals over seeds; paired comparisons use the per-seed differences (methods
  share each seed's data, order and probe batch). An interval that contains 0 is no evidence either way.
"""


def _header(record: dict, summary: dict) -> list[str]:
    args, base = record["args"], record["base"]
    return [
        "# Evidence: SFT vs DFT vs CADFT variants vs CADFT+rewriting on a controlled testbed\n",
        "This page is written by `experiments/run.py` (every number, table and plot); do not edit it by hand.\n",
        f"- **Command**: `{shlex.join(['python', 'experiments/run.py', *record['argv']])}` (`--report-only` with the "
        f"same `--out` rewrites this page from `{_relative(args['out'] or os.path.join(HERE, 'results'))}/record.json`)",
        f"- **Wall time**: {record['wall_seconds'] / 60:.1f} min with {args['jobs']} worker processes (1 thread each), "
        f"{'base policy from the cache' if base['cached'] else 'including training the base policy'} "
        f"({base['seconds'] / 60:.1f} min); the plan estimated {record['plan']['est_minutes']:.0f} min plus the base.",
        f"- **Machine**: {machine()}",
        f"- **Date**: started {record['started']}, finished {record['finished']} (page written at commit {git_commit()})",
        f"- **Decision rule**: `experiments/decision_rule.md`, sha256 `{record['decision_rule_sha256']}` "
        "(recorded at the start of the run; its text is reproduced below)\n",
    ]


def _relative(path: str) -> str:
    """`path` relative to the repository when it lies inside it."""
    repo = os.path.dirname(HERE)
    path = os.path.abspath(path)
    return os.path.relpath(path, repo) if path.startswith(repo + os.sep) else path


def _testbed(record: dict) -> str:
    base, args = record["base"], record["args"]
    acc = ", ".join(f"{k} ops {v:.2f}" for k, v in base["acc_by_ops"].items())
    weights = ", ".join(f"{k} ops {w:.1%}" for k, w in base["config"]["op_weights"])
    return f"""## The testbed

A tiny Llama (hidden {base['config']['hidden_size']}, {base['config']['num_layers']} layers, character tokenizer, `cadft.tiny`) is
pre-trained from scratch for {base['config']['steps']} steps on native-style problems whose number of operations is drawn
as {weights}: long problems are rare, so the fine-tuning skill exists but is unreliable (DFT assumes a model
that has the skill in some form). {base['config']['hint_frac']:.0%} of its rows also teach it to restate a reference solution in its own
style (what rewriting with the policy as generator needs). Base policy, greedy accuracy on 100 problems each (starts 10-99): {acc};
on the fixed sets: ID {base['test_id_acc']:.3f}, OOD {base['test_ood_acc']:.3f}, retention {base['retention_acc']:.3f}.

Fine-tuning sets: {args['n_train']} problems with {base['sets']['finetune']['text']}, in three mixtures of demonstration kinds
(`experiments/task.py` shows each style): **clean** (all native and correct); **default** (10% mild, 10% medium,
10% strong style distance, 20% wrong); **high** (20% mild, 20% medium, 20% strong, 10% wrong). Styles: *mild* changes
the answer marker (`= 34` for `#### 34`), *medium* also spaces every step (`37 + 5 = 42`), *strong* is a foreign
format (`42=5+37, 34=42-8, ans: 34`); *wrong* is native with a corrupted number. Every run trains {args['steps']} steps of
batch {args['batch_size']} through `cadft.CADFTTrainer`, AdamW, cosine schedule; rewriting: `rewrite=True`, the policy as
generator, exact-answer verifier, budget {args['rewrite_budget']:g} per round, a round after the first epoch that
rewrites rows flagged on one visit (`rewrite_persistence=1`: with two epochs the default of 2 would rewrite only at the
end).
"""


def _decision_section(summary: dict) -> str:
    with open(os.path.join(HERE, "decision_rule.md")) as f:
        rule = f.read().split("\n", 1)[1]
    tied = ", ".join(_chosen_label(v) for v in summary["tied"])
    return (f"## The decision\n\nThe rule, as recorded (sha256 `{summary['decision_rule_sha256']}`):\n\n"
            + "\n".join("> " + line for line in rule.strip().splitlines())
            + f"\n\n**Chosen default**: `cadft_normalization={summary['chosen']['normalization']!r}`, "
            f"`cadft_token_power={summary['chosen']['token_power']:g}`, `cadft_beta={summary['chosen']['beta']:g}`, "
            f"`cadft_w_max={summary['chosen']['w_max']:g}` (tied within the margin: {tied}).\n")


def write_report(record: dict, *, out_dir: str, docs_dir: str, discussion: str | None = None) -> dict:
    """Write <out_dir>/summary.json, the page <docs_dir>/results.md and its plots; the page ends
    with the hand-written `discussion` file (None: experiments/discussion.md; "": none)."""
    import json

    os.makedirs(out_dir, exist_ok=True)
    summary = summarise(record)
    summary["ablation_table"] = ablation_table(summary)
    summary["when_cadft_helps"] = when_cadft_helps(summary)
    with open(os.path.join(out_dir, "summary.json"), "w") as f:
        json.dump(summary, f, indent=1, default=str)
    plots = write_plots(record, summary, os.path.join(docs_dir, "results"))
    page = _header(record, summary)
    page.append(_testbed(record))
    page.append(sanity_section(summary))
    page.append(when_cadft_helps(summary))
    page.append(_definitions(record["args"], record["base"]["sets"]))
    page.append(_main_section(summary))
    page.append("## The mixtures (test seeds; every method re-tuned per mixture)\n")
    page.append(_mixture_table(summary) + "\n")
    page.append("## Ablation of the CADFT estimator (validation seeds)\n")
    page.append("Each variant runs at the learning rate tuned for the base loss with its token power in that "
                "mixture (SFT's for alpha 0, DFT's for alpha 1, for 0.5 the grid rate nearest their geometric mean); "
                "the design is the "
                "L9 fraction of `experiments/design.py`. Validation accuracy, mean [95% CI] over the ablation "
                "seeds, paired differences against DFT and SFT at their tuned rates, and the mean rank the rule "
                "uses (lower is better). The SFT and DFT rows were tuned on these same seeds, which favours them.\n")
    page.append(summary["ablation_table"] + "\n")
    page.append(_decision_section(summary))
    page.append(_grid_section(summary, record["args"]["lrs"]))
    page.append(_compat_section(summary, record))
    page.append("## Plots\n")
    page += [f"![{os.path.basename(p)}](results/{os.path.basename(p)})\n" for p in plots]
    discussion = os.path.join(HERE, "discussion.md") if discussion is None else discussion
    if discussion:
        with open(discussion) as f:
            page.append(f.read())
    os.makedirs(docs_dir, exist_ok=True)
    with open(os.path.join(docs_dir, "results.md"), "w") as f:
        f.write("\n".join(page))
    return summary
