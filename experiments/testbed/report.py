"""The testbed's page: docs/results.md (or docs/replication/results.md) and summary.json,
from the raw record (records.py) and its plots (plots.py).

    summary = write_report(record, out_dir="experiments/results", docs_dir="docs")
"""

from __future__ import annotations

import json
import math
import os
import shlex

from experiments.page import fmt, table, write
from experiments.runner import git_commit, machine
from experiments.testbed.arms import ARMS, COMPARED_WITH, LABELS, REFERENCE, REWRITING, WEIGHTS_ON
from experiments.testbed.decision import recommend, weights_verdicts
from experiments.testbed.plots import write_plots
from experiments.testbed.records import base_compat, summarise
from experiments.testbed.training import regime

__all__ = ["write_report"]

EXPERIMENTS = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))  # the study's data: results, rule
ACC = (("test_id_acc", "ID acc"), ("test_ood_acc", "OOD acc"), ("retention_acc", "retention"))
ARM_METRICS = ACC + (("grad_spikes", "grad-norm spikes"), ("weight_mass_mean", "weight mass, mean"),
                     ("weight_mass_min", "weight mass, min"), ("grad_snr", "grad SNR"), ("align", "align w/ clean"))
PAIR_METRICS = ACC + (("grad_spikes", "spikes"), ("weight_mass_mean", "weight mass"))
HIGHER_BETTER = {"test_id_acc", "test_ood_acc", "retention_acc", "grad_snr", "align"}


# --------------------------------------------------------------------------- formatting


def _token_losses(arms) -> bool:
    """Whether the run trains an arm of the token-loss addendum (ASFT or EAFT): its page then
    carries the addendum's section and decision."""
    return any(ARMS[a]["method"] in ("asft", "eaft") for a in arms)


def _verdict(ci: dict | None, higher_better: bool = True) -> str:
    if ci is None or ci["n"] < 2 or not math.isfinite(ci["lo"]) or not (ci["lo"] > 0 or ci["hi"] < 0):
        return "tie"
    return "better" if (ci["lo"] > 0) == higher_better else "worse"


def _relative(path: str) -> str:
    repo = os.path.dirname(EXPERIMENTS)
    path = os.path.abspath(path)
    return os.path.relpath(path, repo) if path.startswith(repo + os.sep) else path


# --------------------------------------------------------------------------- sections


def _header(record: dict, replication: bool) -> list[str]:
    args, base = record["args"], record["base"]
    title = "Replication" if replication else "Evidence"
    what = ("ASFT and EAFT, bare and with the paper's weights, against DFT and the default CADFT"
            if _token_losses(args["arms"]) else "SFT, DFT and the paper's CADFT (estimator and rewriting)")
    return [
        f"# {title}: {what} on a controlled testbed\n",
        "This page is written by `python -m experiments.testbed` (every number, table and plot); do not edit it by "
        "hand.\n",
        # records before the experiments became modules carry no command: they ran experiments/run.py
        f"- **Command**: `{record.get('command') or shlex.join(['python', 'experiments/run.py', *record['argv']])}` "
        f"(`--report-only` with the same `--out` rewrites this page from "
        f"`{_relative(args['out'] or os.path.join(EXPERIMENTS, 'results'))}/record.json`)",
        f"- **Wall time**: {record['wall_seconds'] / 60:.1f} min with {args['jobs']} worker processes (1 thread each), "
        f"{'base policy from the cache' if base['cached'] else 'including training the base policy'} "
        f"({base['seconds'] / 60:.1f} min when it was trained); the plan estimated {record['plan']['est_minutes']:.0f} min"
        + (f"; {record['reused_runs']} runs reused from an earlier invocation (their time is not included)."
           if record.get("reused_runs") else "."),
        # as the run recorded it (records before 2026-12-02 07:00 UTC: this process's, its thread count included)
        f"- **Machine**: {record.get('machine') or machine()}; a shared VM (other jobs ran beside this one)",
        f"- **Date**: started {record['started']}, finished {record['finished']} (page written at commit {git_commit()})",
        f"- **Decision rule**: `experiments/decision_rule.md`, sha256 `{record['decision_rule_sha256']}` "
        "(recorded at the start of the run; its text is at the end of the page)"
        + (f"\n- **Addendum** (token losses): `experiments/decision_rule_token_losses.md`, sha256 "
           f"`{record.get('decision_rule_token_losses_sha256')}`, committed before this run (its text is at the end of "
           "the page)\n" if _token_losses(record["args"]["arms"]) else "\n"),
    ]


def _testbed(record: dict, summary: dict) -> str:
    base, args = record["base"], record["args"]
    acc = ", ".join(f"{k} ops {v:.2f}" for k, v in base["acc_by_ops"].items())
    weights = ", ".join(f"{k} ops {w:.1%}" for k, w in base["config"]["op_weights"])
    arms = "\n".join(f"- **{LABELS[a]}** (`{a}`): `{json.dumps(ARMS[a])}`" for a in summary["arms"])
    tuned = (f"reused from `{summary['lr_from']}` (the main run's grid)" if summary["lr_from"] else
             f"tuned per arm and mixture on the grid {', '.join(f'{x:g}' for x in args['lrs'])} over validation "
             f"seeds {', '.join(map(str, args['val_seeds']))} (best mean validation accuracy; ties to the smaller rate)")
    return f"""## The testbed

A tiny Llama (hidden {base['config']['hidden_size']}, {base['config']['num_layers']} layers, character tokenizer, `cadft.model.tiny`) is
pre-trained from scratch for {base['config']['steps']} steps (AdamW, learning rate {base['config']['lr']:g}, batch {base['config']['batch_size']}) on native-style problems whose number of operations is drawn
as {weights}: long problems are rare, so the fine-tuning skill exists but is unreliable. {base['config']['hint_frac']:.0%} of its
rows also teach it to restate a reference solution in its own style (what the verified rewriting's prompt asks of it).
Base policy, greedy accuracy on 100 problems each (starts 10-99): {acc}; on the fixed sets: ID {base['test_id_acc']:.3f},
OOD {base['test_ood_acc']:.3f}, retention {base['retention_acc']:.3f}. Every run checks this regime (`testbed.check_base`:
{regime()}) and stops outside it: at learning rate 3e-3 the same code
and seed gave a base of 0.99 / 0.98 / 0.66 on 1 / 2 / 3 operations in the environment of the first runs and
0.76 / 0.56 / 0.13 in a fresh one; 1e-3 gave 0.97 / 0.98 / 0.58 (seed 0) and 0.92 / 0.88 / 0.40 (seed 1) there.

Fine-tuning sets: {args['n_train']} problems with {base['sets']['finetune']['text']}, in four mixtures of demonstration kinds
(`experiments/testbed/task.py` shows each style): **clean** (all native and correct); **default** (10% mild, 10% medium,
10% strong style distance, 20% wrong); **high** (20% mild, 20% medium, 20% strong, 10% wrong); **extreme** (10% mild,
10% medium, 50% strong, 10% wrong). *mild* changes the answer marker (`= 34` for `#### 34`), *medium* also spaces
every step (`37 + 5 = 42`), *strong* is a foreign format (`42=5+37, 34=42-8, ans: 34`); *wrong* is native with a
corrupted number. Every run trains {args['steps']} steps of batch {args['batch_size']} (two epochs) through
`cadft.CADFTTrainer`, AdamW, cosine schedule; test seeds {', '.join(map(str, summary['seeds']))} (each seed: its own
fine-tuning set, order and initialisation, shared by every arm). Learning rates: {tuned}.

The arms (`experiments/methods.py`; fields of `experiments.testbed.training.RunConfig`):

{arms}

Rewriting, scaled to 64 steps: the paper's warm-up of 3000 and interval of 1000 steps (3:1) become a first round
after step {args['rewrite_start']} and one every {args['rewrite_interval']} steps after it (rounds at steps
{', '.join(str(s) for s in range(args['rewrite_start'], args['steps'], args['rewrite_interval']))}); each round selects
{args['rewrite_budget']:g} of the set ({max(1, round(args['rewrite_budget'] * args['n_train']))} rows; the paper's 0.005 would
be 2-3 rows here), the highest moving-average u among rows seen at least once (`rewrite_min_visits=1`: two epochs), and
the policy generates. **paper**: the library's `rewrite=True` defaults otherwise (the prompt alone, top_p 0.9,
temperature 0.7, replace with probability 0.5, no verifier, no gain gate). **verified**: `rewrite_preset="verified"`
(the reference in the prompt, 2 candidates, exact-answer verifier against the true answer, gain gate, replace always).
"""


def _definitions(args: dict) -> str:
    return f"""## What is measured

- **Accuracy**: greedy generation (at most 72 new tokens), final answer = the last `#### x`, else the last number,
  against the true answer. ID: {args['n_test']} problems of the fine-tuning distribution; OOD: {args['n_test']}
  problems with starts no fine-tuning problem has; retention: {args['n_test']} problems with 1-2 operations
  (forgetting = base minus this); validation: {args['n_val']} ID problems, for tuning only. Fixed sets.
- **Stability**: a *spike* is a step whose pre-clipping gradient norm exceeds 2x the median of the previous 10.
  *Weight mass* = sum_i w_i M_i / sum_i M_i per optimizer step (`cadft/weight_mass`), the factor by which the weights
  scale the step (1 for SFT, DFT and the control): its mean and minimum over the run.
- **Gradient instruments** (at the probes, on the first {args['probe_size']} rows of the run's own set): `grad SNR`,
  the per-sample signal-to-noise ratio with the 1/B bias removed; `align w/ clean`, the cosine of the batch gradient
  with the plain-NLL gradient of {args['probe_size']} clean held-out demonstrations.
- **Statistics**: 95% Student-t intervals over seeds; paired comparisons use the per-seed differences. An interval
  that contains 0 is no evidence either way.
"""


def _sanity(summary: dict) -> str:
    base = summary["base"]
    rows = [["base policy", f"{base['test_id_acc']:.3f}", "-"]]
    rows += [[LABELS[a], fmt(v["acc"]), fmt(v["gain"])] for a, v in summary["sanity"].items()]
    failed = [LABELS[a] for a, v in summary["sanity"].items() if _verdict(v["gain"]) != "better"]
    verdict = (f"**Not every arm learns on clean data**: {', '.join(failed)} do not improve over the base policy."
               if failed else "Every arm improves over the base policy on clean data (every gain's interval is above 0).")
    return ("## Sanity: does every arm learn on clean data?\n\nTest ID accuracy after fine-tuning on the clean "
            "mixture, mean [95% CI] over the test seeds, and the gain over the base policy.\n\n"
            + table(["arm", "ID acc", "gain over base"], rows) + f"\n\n{verdict}\n")


def _control_check(summary: dict) -> str:
    """The control runs CADFT's trainer at beta 0: its results must equal DFT's at the same rate."""
    rows, same = [], True
    for mix in summary["mixtures"]:
        t = summary["tests"][mix]
        if "control" in t and "dft" in t:
            lr_c, lr_d = summary["lr"][f"control|{mix}"], summary["lr"][f"dft|{mix}"]
            d = summary["paired"][mix].get("control-dft", {}).get("test_id_acc")
            rows.append([mix, f"{lr_c:g}", f"{lr_d:g}", fmt(d)])
            if lr_c == lr_d and d is not None and d["n"] and abs(d["mean"]) > 1e-9:
                same = False
    if not rows:
        return ""
    note = ("Where the two tuned rates agree the difference is exactly 0: the instrument adds nothing of its own."
            if same else "**The control differs from DFT at the same rate: the trainer path changes the result.**")
    return ("## Control check: CADFT at beta 0 is DFT\n\nThe control trains through `CADFTTrainer` with the paper's "
            "estimator at beta 0 (every weight 1), which METHOD.md and tests/test_paper_estimator.py say is DFT's loss. "
            "Paired test ID accuracy, control - DFT:\n\n"
            + table(["mixture", "control lr", "DFT lr", "control - DFT"], rows) + f"\n\n{note}\n")


def when_cadft_helps(summary: dict) -> str:
    """The default (the paper's estimator) against DFT, SFT, the control and the earlier default
    (those of them the run trains)."""
    compared = [b for b in COMPARED_WITH if b in summary["arms"]]
    rows = []
    for mix in summary["mixtures"]:
        p = summary["paired"][mix]
        for key, label in PAIR_METRICS:
            rows.append([mix, label] + [fmt(p.get(f"{REFERENCE}-{b}", {}).get(key)) for b in compared])
    baselines = [b for b in ("dft", "sft") if b in compared]
    helps = [mix for mix in summary["mixtures"] if baselines
             and all(_verdict(summary["paired"][mix].get(f"{REFERENCE}-{b}", {}).get("test_id_acc")) == "better"
                     for b in baselines)]
    loses = [f"{mix} (vs {LABELS[b]})" for mix in summary["mixtures"] for b in compared
             if _verdict(summary["paired"][mix].get(f"{REFERENCE}-{b}", {}).get("test_id_acc")) == "worse"]
    names = " and ".join(LABELS[b] for b in baselines)
    text = [f"## When does CADFT help?\n\nThe library default, {LABELS[REFERENCE]}, against "
            f"{', '.join(LABELS[b] for b in compared)}: paired differences over the test seeds, mean [95% CI] (spikes "
            "and weight mass: lower spikes are better; weight mass is a step-size factor, neither better nor worse).\n",
            table(["mixture", "metric"] + [f"CADFT - {LABELS[b]}" for b in compared], rows) + "\n"]
    text.append(f"The default beats {names} on ID accuracy (every interval above 0) in: {', '.join(helps)}.\n"
                if helps else f"**The default does not beat {names} on ID accuracy in any mixture.**\n")
    text.append(f"It loses on ID accuracy (interval below 0) in: {', '.join(loses)}.\n" if loses else
                "It loses on ID accuracy (interval below 0) to none of them in any mixture.\n")
    return "\n".join(text)


def main_table(summary: dict) -> str:
    rows = []
    for mix in summary["mixtures"]:
        for a, m in summary["tests"][mix].items():
            rows.append([mix, LABELS[a], f"{summary['lr'][f'{a}|{mix}']:g}"] + [fmt(m[k]) for k, _ in ARM_METRICS])
    return table(["mixture", "arm", "lr"] + [label for _, label in ARM_METRICS], rows)


def _against_default(summary: dict) -> str:
    rows = []
    for mix in summary["mixtures"]:
        p = summary["paired"][mix]
        for a in summary["arms"]:
            if a != REFERENCE and f"{a}-{REFERENCE}" in p:
                rows.append([mix, LABELS[a]] + [fmt(p[f"{a}-{REFERENCE}"][k]) for k, _ in PAIR_METRICS])
    return ("## Every arm against the default\n\nPaired differences arm - default over the test seeds, mean "
            "[95% CI]; the decision rule reads the ID column.\n\n"
            + table(["mixture", "arm - default"] + [label for _, label in PAIR_METRICS], rows) + "\n")


def _weights_on_token_losses(summary: dict) -> str:
    """The paper's weights on each token loss against the bare token loss (the addendum's 2)."""
    if not _token_losses(summary["arms"]):
        return ""
    rows = []
    for mix in summary["mixtures"]:
        p = summary["paired"][mix]
        for arm, bare in WEIGHTS_ON.items():
            if f"{arm}-{bare}" in p:
                rows.append([mix, f"{LABELS[arm]} - {LABELS[bare]}"] + [fmt(p[f"{arm}-{bare}"][k]) for k, _ in PAIR_METRICS]
                            + [_verdict(p[f"{arm}-{bare}"]["test_id_acc"])])
    return ("## The paper's weights on each token loss\n\nPaired differences (token loss + the paper's weights, beta 1) "
            "- (the bare token loss) over the test seeds, mean [95% CI]; on DFT's token loss that is the default - "
            "DFT. `ID` says whether this run's ID interval lies above 0 (better), below 0 (worse) or neither (tie); "
            "the addendum's decision needs both runs.\n\n"
            + table(["mixture", "weighted - bare"] + [label for _, label in PAIR_METRICS] + ["ID"], rows) + "\n")


def _rewriting(summary: dict) -> str:
    rows = []
    for key, rounds in sorted(summary["rounds"].items()):
        arm, mix = key.split("|")
        for index, r in sorted(rounds.items(), key=lambda kv: int(kv[0])):
            kinds = ", ".join(f"{k} {int(r.get(f'replaced_{k}', 0))}" for k in ("native", "mild", "medium", "strong",
                                                                                  "wrong") if r.get(f"replaced_{k}"))
            rows.append([mix, LABELS[arm], str(index), str(int(r["step"])), str(int(r["runs"])), f"{r['selected']:.0f}",
                         f"{r['replaced']:.0f}", f"{r['replaced_right']:.0f}", f"{r['replaced'] - r['replaced_right']:.0f}",
                         kinds or "-"])
    if not rows:
        return ""
    effect = []
    for mix in summary["mixtures"]:
        p = summary["paired"][mix]
        for a in REWRITING:
            if f"{a}-{REFERENCE}" in p:
                effect.append([mix, LABELS[a], fmt(summary["tests"][mix][a]["rewrites"], 1),
                               fmt(summary["tests"][mix][a]["rewrites_right"], 1),
                               fmt(p[f"{a}-{REFERENCE}"]["test_id_acc"]), fmt(p[f"{a}-dft"]["test_id_acc"])])
    return ("## Rewriting, measured\n\nPer round, summed over the test seeds (`runs`): targets selected, replaced, "
            "replacements with the right final answer (the testbed knows every answer) and with a wrong one, and the "
            "kind of each replaced original.\n\n"
            + table(["mixture", "arm", "round", "step", "runs", "selected", "replaced", "right", "wrong",
                     "replaced originals by kind"], rows)
            + "\n\nPer run (mean [95% CI] over the seeds) and the effect on test ID accuracy, paired:\n\n"
            + table(["mixture", "arm", "replaced per run", "right per run", "ID acc - CADFT (no rewriting)",
                     "ID acc - DFT"], effect) + "\n")


def _variance_section(summary: dict) -> str:
    entries = summary["variance"]
    if not entries:
        return ""
    lines = ["## The variance assumption, measured\n",
             "The paper's variance argument assumes incompatible samples carry larger gradients. On the DFT run of "
             "the first test seed, at step 0 (the base policy) and mid-run, on the first rows of its training set: "
             "the norm of each row's gradient of DFT's summed token loss against its z (its mean z over 50 random "
             "partitions into batches of the training size); percentile-bootstrap 95% intervals (1000 resamples of "
             "the rows).\n"]
    rows, kinds_rows, mom_rows, sentences = [], [], [], []
    for e in entries:
        nz = e["norm_vs_z"]
        pr, sp = nz["pearson"], nz["spearman"]
        bins = "; ".join(f"{_zbin(b)}: {b['mean']:.3g} [{b['ci'][0]:.3g}, {b['ci'][1]:.3g}] (n={b['n']})"
                         for b in nz["bins"] if b["n"])
        rows.append([e["mixture"], str(e["step"]), str(e["n"]), f"{pr['r']:.3f} [{pr['ci'][0]:.3f}, {pr['ci'][1]:.3f}]",
                     f"{sp['r']:.3f} [{sp['ci'][0]:.3f}, {sp['ci'][1]:.3f}]", bins])
        for kind, k in e["by_kind"].items():
            kinds_rows.append([e["mixture"], str(e["step"]), kind, str(k["norm"]["n"]), fmt(k["z"], 2), fmt(k["norm"], 3),
                               fmt(k["per_token_norm"], 3)])
        for key, m in e["moments"].items():
            ref, beta = key.split("|")
            dft = e["moments"][f"{ref}|0"]
            label = "DFT" if beta == "0" else f"paper's, b={beta}"
            rel = "n/a" if m["rel_variance"] is None else f"{m['rel_variance']:.3g}"
            rows_ratio = m["second_moment"] / dft["second_moment"] if dft["second_moment"] else math.nan
            if ref == "dft":
                mom_rows.append([e["mixture"], str(e["step"]), label, f"{m['second_moment']:.4g}", f"{rows_ratio:.3f}",
                                 rel, f"{m['cosine']:.4f}", f"{e['moments'][f'nll|{beta}']['cosine']:.4f}"])
        sign = "larger" if pr["ci"][0] > 0 else "smaller" if pr["ci"][1] < 0 else "neither larger nor smaller"
        sentences.append(f"- {e['mixture']}, step {e['step']}: rows with higher z (less compatible) have **{sign}** DFT "
                         f"gradient norms (Pearson {pr['r']:.2f} [{pr['ci'][0]:.2f}, {pr['ci'][1]:.2f}]).")
    lines.append(table(["mixture", "step", "rows", "Pearson r(z, norm)", "Spearman", "mean norm per z bin [95% CI]"],
                       rows) + "\n")
    lines.append("\n".join(sentences) + "\n")
    lines.append("Per data kind (mean [95% CI] over the kind's rows): z, the gradient norm, and the norm per trainable "
                 "token.\n")
    lines.append(table(["mixture", "step", "kind", "rows", "z", "DFT grad norm", "norm per token"], kinds_rows) + "\n")
    lines.append("The batch gradient of DFT and of the paper's estimator on 400 random batches of the training size "
                 "(the same batches for every beta): second moment E‖g‖² and its ratio to DFT's, relative variance "
                 "tr Cov(g) / ||E g||^2 with the 1/B bias removed from the denominator, and the cosine of the mean "
                 "gradient with the clean-data gradient (DFT's loss, and the plain NLL, on clean held-out rows).\n")
    lines.append(table(["mixture", "step", "estimator", "E‖g‖²", "/ DFT", "rel. variance", "cos (clean, DFT loss)",
                        "cos (clean, NLL)"], mom_rows) + "\n")
    return "\n".join(lines)


def _zbin(b: dict) -> str:
    lo, hi = b["lo_z"], b["hi_z"]
    return f"z < {hi:g}" if lo is None else f"z >= {lo:g}" if hi is None else f"{lo:g} <= z < {hi:g}"


def _grid(summary: dict, lrs: list[float]) -> str:
    if not summary["grid"]:
        return (f"## Learning rates\n\nReused from the main run (`{summary['lr_from']}`): "
                + "; ".join(f"{k}: {v:g}" for k, v in summary["lr"].items()) + ".\n")
    rows, edge = [], []
    for mix in summary["mixtures"]:
        for a in summary["arms"]:
            cells = [fmt(summary["grid"].get(f"{a}|{mix}|{lr:g}"), 3) for lr in lrs]
            chosen = summary["lr"][f"{a}|{mix}"]
            rows.append([mix, LABELS[a], f"{chosen:g}"] + cells)
            if chosen in (min(lrs), max(lrs)):
                edge.append(f"{LABELS[a]} in {mix}")
    note = (f"**At the edge of the grid** (the optimum may lie outside it): {', '.join(edge)}." if edge else
            "No chosen rate is at an edge of the grid.")
    return ("## Learning rates: the grid (validation seeds)\n\nValidation accuracy, mean [95% CI] over the "
            "validation seeds, per rate; every arm has the same grid and seeds.\n\n"
            + table(["mixture", "arm", "chosen"] + [f"lr {lr:g}" for lr in lrs], rows) + f"\n\n{note}\n")


def _grpo(summary: dict) -> str:
    t = summary["tests"].get("default", {})
    rows = [[LABELS[a]] + [fmt(t[a][k]) for k in ("grpo_acc_start", "grpo_acc_gain", "grpo_reward_start",
                                                    "grpo_reward_gain")] for a in t if t[a]["grpo_acc_gain"]["n"]]
    if not rows:
        return ""
    return ("## Cold-start RL (default mixture)\n\nTRL `GRPOTrainer` from each fine-tuned model, 0/1 correctness "
            "reward, the same budget for all; start = the fine-tuned model, gain = after GRPO minus start.\n\n"
            + table(["arm", "ID acc start", "ID acc gain", "reward start", "reward gain"], rows) + "\n")


def _compat(record: dict) -> str:
    stats = base_compat(record)
    if not stats:
        return ""
    rows = [[k, f"{v['q10']:.2e}", f"{v['q50']:.2e}", f"{v['q90']:.2e}", f"{v['weight_rel']:.3f}"]
            for k, v in stats.items()]
    return ("## Compatibility per kind at the base policy\n\nc = exp(-u) of each row of the default mixture's first "
            "test seed under the base policy (quantiles), and the kind's mean weight relative to the mean over all "
            "rows (the default estimator, z over all rows at once).\n\n"
            + table(["kind", "c q10", "c median", "c q90", "relative weight"], rows) + "\n")


def decision_section(summary: dict, main: dict | None) -> str:
    with open(os.path.join(EXPERIMENTS, "decision_rule.md")) as f:
        rule = f.read().split("\n", 1)[1]
    text = [f"## The decision\n\nThe rule, as recorded (sha256 `{summary['decision_rule_sha256']}`):\n",
            "\n".join("> " + line if line else ">" for line in rule.strip().splitlines()) + "\n"]
    if main is None:
        text.append("The rule needs the replication as well; its page (docs/replication/results.md) applies it.\n")
        return "\n".join(text)
    if main.get("decision_rule_sha256") != summary["decision_rule_sha256"]:
        text.append("**The main run recorded a different rule hash: the rule changed between the runs.**\n")
    rec = recommend(main["paired"], summary["paired"], summary["arms"])
    rows = []
    for mix, r in rec.items():
        names = ", ".join(f"{LABELS[e['arm']]} (+{e['mean']:.3f})" for e in r["recommended"]) or "none: the default stays"
        single = ", ".join(LABELS[e["arm"]] for e in r["not_replicated"]) or "-"
        rows.append([mix, names, single])
    text.append(table(["mixture", "recommended over the default (both runs above 0)", "above 0 in one run only"], rows)
                + "\n")
    summary["recommendations"] = rec
    if _token_losses(summary["arms"]):
        text.append(_addendum_decision(summary, main))
    return "\n".join(text)


def _addendum_decision(summary: dict, main: dict) -> str:
    """The token-loss addendum's text and its verdicts on the weights per token loss and mixture."""
    with open(os.path.join(EXPERIMENTS, "decision_rule_token_losses.md")) as f:
        rule = f.read().split("\n", 1)[1]
    text = [f"### The addendum: token losses\n\nThe addendum, as recorded (sha256 "
            f"`{summary['decision_rule_token_losses_sha256']}`; committed before the main run started):\n",
            "\n".join("> " + line if line else ">" for line in rule.strip().splitlines()) + "\n"]
    if main.get("decision_rule_token_losses_sha256") != summary["decision_rule_token_losses_sha256"]:
        text.append("**The main run recorded a different addendum hash: the addendum changed between the runs.**\n")
    verdicts = weights_verdicts(main["paired"], summary["paired"], summary["arms"])
    rows = [[mix, f"{LABELS[arm]} - {LABELS[v['bare']]}", fmt(v["main"]), fmt(v["replication"]), v["verdict"]]
            for mix, per in verdicts.items() for arm, v in per.items()]
    text.append(table(["mixture", "weighted - bare", "main run (ID)", "replication (ID)", "the weights"], rows) + "\n")
    summary["weights_verdicts"] = verdicts
    return "\n".join(text)


def write_report(record: dict, *, out_dir: str, docs_dir: str, discussion: str | None = None) -> dict:
    """Write <out_dir>/summary.json, the page <docs_dir>/results.md and its plots; the page ends
    with the hand-written `discussion` file (None: experiments/discussion.md; "": none)."""
    os.makedirs(out_dir, exist_ok=True)
    summary = summarise(record)
    compare = record["args"].get("compare_to")
    main = None
    if compare:
        with open(compare) as f:
            main = json.load(f)
    summary["main_table"] = main_table(summary)
    summary["when_cadft_helps"] = when_cadft_helps(summary)
    decision = decision_section(summary, main)
    plots = write_plots(record, summary, os.path.join(docs_dir, "results"))
    page = _header(record, replication=bool(summary["lr_from"]))
    page += [_testbed(record, summary), _sanity(summary), _control_check(summary), summary["when_cadft_helps"],
             "## Every arm in every mixture\n\nMean [95% CI] over the test seeds; `lr` is the tuned rate.\n\n"
             + summary["main_table"] + "\n", _against_default(summary), _weights_on_token_losses(summary),
             _rewriting(summary), _variance_section(summary),
             _grid(summary, record["args"]["lrs"]), _grpo(summary), _compat(record), _definitions(record["args"]),
             decision, "## Plots\n"]
    page += [f"![{os.path.basename(p)}](results/{os.path.basename(p)})\n" for p in plots]
    discussion = os.path.join(EXPERIMENTS, "discussion.md") if discussion is None else discussion
    if discussion and os.path.exists(discussion):
        with open(discussion) as f:
            page.append(f.read())
    with open(os.path.join(out_dir, "summary.json"), "w") as f:
        json.dump(summary, f, indent=1, default=str)
    write(os.path.join(docs_dir, "results.md"), page)
    return summary
