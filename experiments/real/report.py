"""docs/real-model.md, written from the parts' JSON results (run.py).

Every number on the page comes from <out>/{kinds,a,b}.json; a part that has not run is
marked so, with the command that runs it. The figures go beside the page, in a folder of
the page's name.
"""

from __future__ import annotations

import math
from pathlib import Path

from experiments import page
from experiments.page import ci as _ci, num as _f, pyplot, save
from experiments.real import data, report_variance

PART_B_COMMAND = "python -m experiments.real --parts b"


def _meta(result: dict) -> str:
    m = result["meta"]
    cpu = ""
    if "cpu_s" in m:
        jobs = m.get("args", {}).get("jobs", 1)
        workers = f"; its {jobs} worker processes not counted" if jobs > 1 else ""
        cpu = f" ({m['cpu_s'] / 60:.1f} min of this process's CPU time, over all its threads{workers})"
    return (f"Command: `{m['command']}`  \nModel: `{m['model']}`; machine: {m['machine']}; date: {m['date']}; "
            f"commit `{m['commit']}`; wall time {m['wall_s'] / 60:.1f} min{cpu}.")


def _seed0(run: dict) -> dict:
    """Seed 0 of a Part B run (the seeds' keys are strings once read back from JSON)."""
    return run["seeds"].get("0", run["seeds"].get(0))


# --------------------------------------------------------------------------- figures


def plot_kinds(kinds: dict, folder: Path) -> str:
    plt = pyplot()
    names = [k for k in data.KINDS if k in kinds["table"]]
    values = [[c for c, k in zip(kinds["compat"], kinds["kinds"]) if k == name] for name in names]
    fig, ax = plt.subplots(figsize=(6.5, 3.2))
    ax.boxplot(values, showmeans=True)
    ax.set_xticks(range(1, len(names) + 1), names)
    ax.set_ylabel("compatibility c = exp(mean log p)")
    ax.set_title("Compatibility per data kind at the base model")
    return Path(save(fig, folder, "compat_by_kind.png", dpi=110)).name


def plot_part_a(a: dict, folder: Path) -> str:
    plt = pyplot()
    names = list(a["table"])
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.6))
    for ax, key, label in ((axes[0], "rel_var", "tr Cov(G) / ||E G||^2  (lower: less noise)"),
                           (axes[1], "cos_own", "cos(G_b, r_own)  (higher: better aligned)")):
        vals = [a["table"][n][key] for n in names]
        mid = [v["value"] for v in vals]
        err = [[max(0.0, m - v["lo"]) for m, v in zip(mid, vals)], [max(0.0, v["hi"] - m) for m, v in zip(mid, vals)]]
        ax.barh(range(len(names)), mid, xerr=err, color="#7a9cc6")
        ax.set_yticks(range(len(names)), names, fontsize=8)
        ax.invert_yaxis()
        ax.set_xlabel(label, fontsize=8)
    title = "Part A: batch gradients of 16 at the base (95% bootstrap intervals)"
    return Path(save(fig, folder, "part_a.png", title=title, dpi=110)).name


def plot_part_b(b: dict, folder: Path) -> str:
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(7, 3.4))
    for method, run in b["runs"]["mixed"].items():
        ax.plot(_seed0(run)["grad_norms"], label=method)
    ax.set_xlabel("optimizer step")
    ax.set_ylabel("gradient norm (seed 0)")
    ax.set_title("Part B, mixture: gradient-norm trace")
    ax.legend(fontsize=7)
    return Path(save(fig, folder, "part_b_grad_norms.png", dpi=110)).name


# --------------------------------------------------------------------------- sections


def section_kinds(splits: dict, kinds: dict | None, folder: Path, rel: str) -> list[str]:
    lines = ["## The data kinds", "",
             "Built by `experiments/real/data.py` without any model, seeded, from GSM8K training problems whose "
             "reference solution has 1 to 3 calculator steps (`<<48/2=24>>` notes). The prompt is the question plus "
             "the instruction `cadft eval` uses (end with `#### <answer>`). One problem in every kind:", ""]
    example = {r["kind"]: r for r in splits["kinds"] if r["source_line"] == splits["kinds"][0]["source_line"]}
    lines += [f"Question: {splits['kinds'][0]['question']}", ""]
    for kind in data.KINDS:
        if kind in example:
            lines += [f"**{kind}**", "", "```", example[kind]["completion"][0]["content"], "```", ""]
    lines += ["- gold: the reference solution with the notes stripped; mild: notes kept; strong: equations only, "
              "result first; truncated: the first line, then the answer; wording: a seeded word-level substitution "
              "(a fixed table of alternatives for common words) that keeps every number; wrong: gold style with the "
              "final answer shifted, or one intermediate result perturbed and carried forward.", ""]
    lines += ["## Compatibility per kind at the base model", ""]
    if kinds is None:
        return lines + ["Not run yet: `python -m experiments.real --parts kinds`.", ""]
    lines += [_meta(kinds), "",
              "The same problems in every kind, so the comparison with gold is paired: the gap is "
              "mean(log c_gold - log c_kind) per problem, and the AUC the fraction of problems where gold scores "
              "higher (0.5: the model cannot tell the kind from gold). 95% t-intervals. The scores are "
              "`cadft.model.scoring.score_rows`, what `cadft score` runs; from the command line: "
              "`python -m experiments.real.data --out DIR` then `cadft score --dataset_path DIR/kinds.jsonl "
              "--output scores.jsonl` (its per-tag table groups by `kind`).", "",
              "| kind | n | mean c [95% CI] | median | IQR | log-c gap to gold [95% CI] | paired AUC |",
              "|---|---|---|---|---|---|---|"]
    for kind in data.KINDS:
        e = kinds["table"].get(kind)
        if e is None:
            continue
        gap = _ci(e["log_gap"]) if "log_gap" in e else "-"
        auc = _f(e["auc"], 2) if "auc" in e else "-"
        lines.append(f"| {kind} | {e['n']} | {_ci(e['c'])} | {_f(e['median'])} | {_f(e['q25'])}-{_f(e['q75'])} | "
                     f"{gap} | {auc} |")
    lines += ["", f"![compatibility per kind]({rel}/{plot_kinds(kinds, folder)})", ""]
    lines += reading_kinds(kinds["table"])
    return lines


# A log-c gap of 0.5 is a compatibility ratio of 1.65: the size at which CADFT's weight
# c**beta (beta = 1) moves a row by more than a third; smaller gaps barely change weights
LARGE_GAP = 0.5


def _lower(gap: float) -> str:
    return f"{100 * (1 - math.exp(-gap)):.0f}% lower c"


def reading_kinds(table: dict) -> list[str]:
    rows = {k: e for k, e in table.items() if "auc" in e}
    ranked = [k for k, e in rows.items() if e["auc"] >= 0.75 and e["log_gap"]["lo"] > 0]
    strong = [k for k in ranked if rows[k]["log_gap"]["mean"] >= LARGE_GAP]
    slight = [k for k in ranked if rows[k]["log_gap"]["mean"] < LARGE_GAP]
    weak = [k for k, e in rows.items() if k not in strong + slight and e["auc"] >= 0.6]
    none = [k for k in rows if k not in strong + slight + weak]
    higher = [k for k, e in rows.items() if e["log_gap"]["hi"] < 0]

    def listed(kinds):
        shown = [f"{k} ({_lower(rows[k]['log_gap']['mean'])}, AUC {rows[k]['auc']:.2f})" for k in kinds]
        return ", ".join(shown) or "none"

    out = ["Reading:", "",
           f"- Separated, by a margin that moves a CADFT weight (log-c gap >= {LARGE_GAP}, AUC >= 0.75): "
           f"{listed(strong)}.",
           f"- Ranked below gold on most problems but by a small margin (gap interval above 0, gap < {LARGE_GAP}): "
           f"{listed(slight)}. The model notices them, but CADFT's weight c**beta moves by that factor to the power "
           "beta: compatibility barely down-weights them.",
           f"- Weakly separated (0.6 <= AUC, not above): {listed(weak)}.",
           f"- Not separated (AUC < 0.6): {listed(none)}."]
    if higher:
        out.append(f"- Scored *more* compatible than gold: {', '.join(higher)}.")
    if "wrong" in rows:
        e = rows["wrong"]
        out.append(f"- wrong: {_lower(e['log_gap']['mean'])} than gold on average (paired AUC {e['auc']:.2f}). "
                   "Compatibility is a likelihood under the model, not a correctness check: a wrong answer in the "
                   "native style differs from gold in a few digits, so it stays nearly as compatible as gold "
                   "(presumably the model's arithmetic notices some perturbed results, hence the ranking), and "
                   "CADFT's weight cannot filter "
                   "it; the verifier of the rewriting step (or the data) has to.")
    return out + [""]


PART_A_KEYS = (("trace_cov", "tr Cov(G)"), ("rel_var", "tr Cov / ||E G||^2"), ("ess", "rows per batch (ESS)"),
               ("cos_own", "cos(G_b, r_own)"), ("cos_mean_own", "cos(E G, r_own)"), ("cos_nll", "cos(G_b, r_nll)"),
               ("cos_mean_nll", "cos(E G, r_nll)"))
PART_A_DIFFS = ("rel_var", "ess", "cos_own", "cos_mean_own", "cos_nll")


def _estimator(settings: dict) -> str:
    """The `cadft_estimator` of `common.defaults()` settings (results written before its rename
    hold it as `normalization`)."""
    return settings.get("estimator", settings.get("normalization"))


def section_part_a(a: dict | None, folder: Path, rel: str) -> list[str]:
    lines = ["## Part A: the estimator at the base model and in the middle of training", ""]
    if a is None:
        return lines + ["Not run yet: `python -m experiments.real --parts a`.", ""]
    d, s, lora = a["defaults"], a["sizes"], a["lora"]
    paper, earlier = d["paper"], d["earlier"]
    top = f"top {lora['top_layers']} layers" if lora["top_layers"] else "all layers"
    labels = dict(PART_A_KEYS)
    lines += [_meta(a), "",
              "CADFT is the paper's estimator at the library's defaults, read from `CADFTConfig()` at run time "
              f"(`{_estimator(paper)}`: u = length-normalised NLL, z over the batch, w = exp(-beta max(0, z)), "
              f"beta = {paper['beta']:g}, DFT token loss alpha = {paper['alpha']:g}, eps = {paper['eps']:g}); "
              "CADFT (earlier) is the project's earlier estimator at its defaults, `CADFTConfig(cadft_estimator="
              f"\"{_estimator(earlier)}\", cadft_token_power={earlier['alpha']:g})`: beta = {earlier['beta']:g}, "
              f"alpha = {earlier['alpha']:g}, "
              f"w_min = {earlier['w_min']:g}, w_max = {earlier['w_max']:g}. "
              f"Per-sample LoRA gradients (r = {lora['r']}, `{lora['targets']}`, {top}) of {s['pool']} "
              f"demonstrations of a mixture ({', '.join(f'{k} {n}' for k, n in a['pool_kinds'].items())}); "
              f"the per-sample gradients at the base took {a['gradient_wall_s'] / 60:.1f} min of wall time when "
              "computed" + (" (this run read them from the cache, `--grad_cache`)" if a.get("gradients_cached") else "")
              + ".", ""]
    lines += report_variance.section(a, folder, rel)
    lines += ["### Every estimator at the base", "",
              f"{a['num_params']:,} parameters in the B matrices. {s['batches']} bootstrap batches of "
              f"{s['batch_size']} (the same batches for every method); {s['outer']} outer bootstrap replicates (the "
              "pool resampled) for the 95% intervals (point +- 1.96 bootstrap sd). Each method's weights on a batch "
              "are its estimator's (`cadft.estimators.make_estimator(...).weights`, as the trainer weighs a global "
              "batch): the paper's come from each batch's own z, the earlier estimator's from c**beta / m with m "
              "calibrated on the pool.", "",
              "Columns. tr Cov(G): the trace of the covariance of the batch gradient G over bootstrap batches (the "
              "unbiased sample trace of G itself, not a per-sample covariance divided by B); its scale differs "
              "between methods (SFT's token loss has no p factor; weights rescale), so the scale-free tr Cov / "
              "||E G||^2 (noise relative to signal; here the denominator is the plain squared mean, unlike the "
              "unbiased one above) is the comparable one. ESS: rows per batch that effectively count, (sum a)^2 / "
              "sum a^2 of the rows' coefficients. Two references, both from "
              f"{s['reference']} clean held-out gold demonstrations: r_nll, their plain-NLL gradient (the direction "
              "of a clean SFT step), and r_own, the gradient of the method's own token loss on them, without sample "
              "weights (DFT's for the DFT family, alpha 0.5's for the earlier estimator). cos(G_b, r): mean over "
              "batches; cos(E G, r): the mean gradient's direction, without batch noise.", "",
              "| method | " + " | ".join(label for _, label in PART_A_KEYS) + " |",
              "|---|" + "---|" * len(PART_A_KEYS)]
    for name, row in a["table"].items():
        lines.append(f"| {name} | " + " | ".join(_ci(row[k]) for k, _ in PART_A_KEYS) + " |")
    lines += ["", "Paired differences to DFT (the same bootstrap batches; 95% intervals):", "",
              "| method | " + " | ".join(f"d {labels[k]}" for k in PART_A_DIFFS) + " |",
              "|---|" + "---|" * len(PART_A_DIFFS)]
    for name, row in a["table"].items():
        if name != "DFT":
            lines.append(f"| {name} - DFT | " + " | ".join(_ci(row[k]["vs_DFT"]) for k in PART_A_DIFFS) + " |")
    norms = a.get("grad_norm_by_kind", {})
    lines += ["", "Per kind in the pool, at the base: mean compatibility, per-token gradient norm ||h_i|| / T_i "
              "under each token loss (alpha), and the mean CADFT weight (the paper's: averaged over the rows' "
              "occurrences in random batches):", "",
              "| kind | c | " + " | ".join(f"grad norm {k}" for k in norms) + " | "
              + " | ".join(f"w {n}" for n in a["weights_by_kind"]) + " |",
              "|---|---|" + "---|" * (len(norms) + len(a["weights_by_kind"]))]
    for kind in a["compat_by_kind"]:
        lines.append(f"| {kind} | {_f(a['compat_by_kind'][kind])} | "
                     + "".join(f"{_f(v[kind], 4)} | " for v in norms.values())
                     + " | ".join(_f(w[kind], 2) for w in a["weights_by_kind"].values()) + " |")
    lines += ["", f"![Part A]({rel}/{plot_part_a(a, folder)})", ""]
    return lines + reading_part_a(a)


def _sign(ci: dict) -> int:
    """+1 / -1 when the interval excludes 0 on that side, else 0."""
    return 1 if ci["lo"] > 0 else -1 if ci["hi"] < 0 else 0


# A difference whose interval excludes 0 but that is smaller than this (relative to DFT's
# value for variances and sizes, absolute for cosines) moves no conclusion: "about equal"
TOLERANCE = {"rel_var": 0.05, "trace_cov": 0.05, "ess": 0.05}
COSINE_TOLERANCE = 0.01


def _direction(table: dict, row: dict, key: str, base: str = "DFT") -> int:
    """+1 / -1: materially higher / lower than `base`; 0: not distinguishable; 2: about equal."""
    diff = row[key]["vs_" + base]
    sign = _sign(diff)
    tolerance = TOLERANCE[key] * abs(table[base][key]["value"]) if key in TOLERANCE else COSINE_TOLERANCE
    return 2 if sign and abs(diff["value"]) < tolerance else sign


WORDS = {1: "higher than", -1: "lower than", 0: "not distinguishable from", 2: "about equal to"}


def _versus(table: dict, row: dict, key: str, base: str = "DFT") -> str:
    return f"{WORDS[_direction(table, row, key, base)]} {base}'s (difference {_ci(row[key]['vs_' + base])})"


def reading_part_a(a: dict) -> list[str]:
    t = a["table"]
    cadft, oracle = t["CADFT (defaults)"], t["DFT + oracle filter"]
    var, cos = _direction(t, cadft, "rel_var"), _direction(t, cadft, "cos_own")
    out = ["Reading (differences within 5% of DFT's variance or 0.01 of a cosine count as about equal):", "",
           f"- CADFT (the paper's estimator, defaults): relative variance {_versus(t, cadft, 'rel_var')}; "
           f"batch-gradient cosine to the clean same-loss gradient {_versus(t, cadft, 'cos_own')}; cosine of its "
           f"mean gradient {_versus(t, cadft, 'cos_mean_own')}; to the clean NLL gradient "
           f"{_versus(t, cadft, 'cos_nll')}.",
           f"- The oracle filter (every non-gold row dropped): relative variance {_versus(t, oracle, 'rel_var')}; "
           f"cosine {_versus(t, oracle, 'cos_own')}; mean-gradient cosine {_versus(t, oracle, 'cos_mean_own')}."]
    for name, row in t.items():
        if name.startswith("CADFT") and name != "CADFT (defaults)":
            out.append(f"- {name}: relative variance {_versus(t, row, 'rel_var')}; cosine "
                       f"{_versus(t, row, 'cos_own')}.")
    if var == -1 and cos == 1:
        out.append("- The variance-controlled-estimator claim is supported at the base: CADFT lowers the noise and "
                   "raises the alignment with the clean direction relative to DFT.")
    elif var == 1 or cos == -1:
        out.append("- At the base, the claim is contradicted on at least one of the two measures: CADFT's batch "
                   "gradient is noisier relative to its signal, or less aligned with the clean direction, than DFT's.")
    else:
        out.append("- At the base, the claim is neither supported nor contradicted: on at least one measure the "
                   "difference to DFT is within its interval or too small to matter.")
    ess_d, ess_o, ess_c = t["DFT"]["ess"]["value"], oracle["ess"]["value"], cadft["ess"]["value"]
    out.append(f"- Rows that effectively count per batch: ESS {_f(ess_d, 1)} for DFT, {_f(ess_c, 1)} for CADFT, "
               f"{_f(ess_o, 1)} for the oracle filter. Relative noise grows like 1/ESS when the rows point the same "
               "way on average; suppressing a row lowers variance only if that row's gradient is large or points "
               "elsewhere.")
    by_kind = a.get("grad_norm_by_kind", {})
    if "gold" in by_kind.get("alpha=1", {}) and "gold" in by_kind.get("alpha=0", {}):
        def ratios(norms):
            return ", ".join(f"{k} {norms[k] / norms['gold']:.2f}" for k in norms if k != "gold")

        out.append("- Per-token gradient norm relative to gold's, under DFT's token loss: "
                   f"{ratios(by_kind['alpha=1'])}; under SFT's: {ratios(by_kind['alpha=0'])}.")
    gain, oracle_gain = cadft["cos_own"]["vs_DFT"]["value"], oracle["cos_own"]["vs_DFT"]["value"]
    if oracle_gain > 0:
        out.append(f"- CADFT recovers {100 * gain / oracle_gain:.0f}% of the oracle filter's cosine gain over DFT.")
    else:
        out.append("- The oracle filter does not raise the cosine over DFT either: at this batch size the non-gold "
                   "rows add at least as much signal along the clean direction as noise.")
    out.append("- This table is the estimator at the base model only; the variance probe above also measures the "
               "middle of a short DFT run, and Part B measures training.")
    return out + [""]


PART_B_KEYS = (("test_nll", "test NLL"), ("answer_nll", "answer-span NLL"), ("accuracy", "accuracy (1-step)"),
               ("forgetting", "forgetting (d NLL)"), ("grad_norm_max", "max grad norm"), ("grad_spikes", "spikes"))


REWRITING = "CADFT + paper rewriting"


def _kinds(counts: dict) -> str:
    return ", ".join(f"{k} {n}" for k, n in sorted(counts.items()) if n) or "-"


def rewriting_totals(b: dict) -> dict:
    """Replaced, right and wrong replacements summed over the rewriting arm's rounds and seeds."""
    seeds = b["runs"].get("mixed", {}).get(REWRITING, {}).get("seeds", {})
    rounds = [r for seed in seeds.values() for r in seed.get("rewrite_per_round", [])]
    return {key: sum(r[key] for r in rounds) for key in ("selected", "lost_draw", "replaced", "right", "wrong",
                                                          "unchecked")} | {"rounds": len(rounds)}


def rewriting_rounds(b: dict) -> list[str]:
    """Per seed and round of the paper's rewriting: targets selected (their kinds), lost to the
    draw, replaced, and how many replacements state the right final answer."""
    seeds = b["runs"].get("mixed", {}).get(REWRITING, {}).get("seeds", {})
    if not seeds:
        return []
    sch = b.get("rewrite_schedule", {})
    lines = [f"The paper's rewriting ({REWRITING}): `rewrite=True` with the library's default `rewrite_preset="
             "\"paper\"` (top-u selection, each selected target replaced with probability 0.5 by the policy's own "
             "sample for the prompt alone, temperature 0.7, top_p 0.9, no verifier, no gain gate), scaled to the run: "
             f"warm-up `rewrite_start_step={sch.get('rewrite_start_step')}`, interval "
             f"`rewrite_interval_steps={sch.get('rewrite_interval_steps')}` (the paper's 3000 and 1000), "
             f"`rewrite_budget={sch.get('rewrite_budget'):g}` targets a round (the paper's 0.5% of "
             f"{b['sizes']['train']} rows would be under one) and `rewrite_min_visits={sch.get('rewrite_min_visits')}` "
             f"(the paper's 'persistently' is our reading; {b['sizes']['train']} rows in {b['sizes']['steps']} "
             f"steps of {b['sizes']['batch']} are seen "
             f"{b['sizes']['steps'] * b['sizes']['batch'] / b['sizes']['train']:g} times "
             "each). Whether each "
             "replacement's final answer is right is measured with math-verify against the true GSM8K answer "
             "(`rewrite_answer_column=\"answer\"`); it gates nothing. Per seed (the final runs) and round:", "",
             "| seed | round | after step | selected (kinds) | lost the draw | replaced (kinds) | right answer | "
             "wrong answer (kinds) |", "|---|---|---|---|---|---|---|---|"]
    for seed, run in sorted(seeds.items(), key=lambda kv: int(kv[0])):
        for r in run.get("rewrite_per_round", []):
            lines.append(f"| {seed} | {r['round']} | {r['step']} | {r['selected']} ({_kinds(r['selected_kinds'])}) | "
                         f"{r['lost_draw']} | {r['replaced']} ({_kinds(r['replaced_kinds'])}) | {r['right']} | "
                         f"{r['wrong']} ({_kinds(r['wrong_kinds'])}) |")
    t = rewriting_totals(b)
    lines += ["", f"In all: {t['rounds']} rounds, {t['selected']} targets selected, {t['lost_draw']} kept by the draw, "
              f"{t['replaced']} replaced; of the replacements {t['right']} state the right final answer and "
              f"{t['wrong']} a wrong one" + (f" ({t['unchecked']} unchecked)" if t["unchecked"] else "") + ".", ""]
    return lines


# What the page says when Part B ran with `--accuracy 0` (to fit the CPU budget)
NO_ACCURACY = ("accuracy is not measured in this run (`--accuracy 0`, to fit the CPU budget: measuring "
               "the base with its greedy generations took 10.5 min): the base scored 0 of 32 held-out 1-step test "
               "problems, the easiest GSM8K subset, in the Part B of commit d3a0dc1 and again at the start of a "
               "later one (2026-12-02), so accuracy after training would sit at the "
               "floor, and the NLLs are the metrics (accuracy n/a below);")


def section_part_b(b: dict | None, folder: Path, rel: str) -> list[str]:
    lines = ["## Part B: short LoRA training", ""]
    if b is None:
        return lines + [
            "**Not run yet.** At its defaults Part B trains SFT, DFT, CADFT (the paper's estimator), the earlier "
            "estimator, CADFT with the paper's rewriting and the oracle filter on the mixture (16 demonstrations, "
            "half gold), and SFT, DFT and CADFT on the clean set, with LoRA: 8 optimizer steps of 4 (2 epochs), a "
            "search over 2 learning rates (seed 0) and 1 more seed at the chosen one; then each final run's test "
            "NLL (100 solutions), forgetting (50 general prompts) and compatibility per kind. About 80 minutes on "
            "one CPU core, a few minutes on one GPU. The command:", "", f"    {PART_B_COMMAND}", "",
            "and on a GPU with a bigger model, more data and steps:", "",
            f"    {PART_B_COMMAND} --model_name_or_path HuggingFaceTB/SmolLM2-1.7B-Instruct --train 512 --steps 128 "
            "--seeds 5 --lrs 1e-4,3e-4,1e-3 --out experiments/real/results-gpu "
            "--page docs/real-model-gpu.md", "",
            "It writes experiments/real/results/b.json and rebuilds this page with the Part B tables (the other "
            "parts are read from their JSON files, not rerun).", ""]
    s, base = b["sizes"], b["base"]
    if any(b.get("reused", {}).values()):
        listed = "; ".join(f"{name}: {', '.join(methods)}" for name, methods in b["reused"].items() if methods)
        lines += [f"Runs reused from an earlier invocation with the same arguments ({listed}); wall time of all "
                  f"invocations together: {b['wall_s_total'] / 60:.1f} min.", ""]
    lines += [_meta(b), "",
              f"{s['train']} training demonstrations (half gold), {s['steps']} optimizer steps of {s['batch']}, seeds "
              f"{s['seeds']}, learning-rate grid {s['lrs']} searched on {s['validation']} gold validation rows (the "
              f"same budget for every method). Test NLL on {s['test_nll']} clean held-out GSM8K test solutions; "
              + (NO_ACCURACY + " " if s["accuracy"] == 0 else
               f"accuracy on {s['accuracy']} held-out 1-step test problems (base: {_f(base['accuracy'])}); "
               if s.get("accuracy_after", True) else
               f"greedy accuracy on {s['accuracy']} held-out 1-step test problems, the easiest GSM8K subset, is "
               f"{_f(base['accuracy'])} at the base: at the floor, so no subset of GSM8K is off the floor at this "
               "size and accuracy is not measured after training (n/a below); ") +
              f"forgetting on {s['general']} general prompts (base NLL of its own answers {_f(base['general_nll'])}). "
              f"Base: test NLL {_f(base['test_nll'])}, answer-span NLL {_f(base['answer_nll'])}.", ""]
    for name, table in b["table"].items():
        if not table["methods"]:
            continue
        lines += [f"### {name} data", "", "| method | lr | " + " | ".join(l for _, l in PART_B_KEYS) + " |",
                  "|---|---|" + "---|" * len(PART_B_KEYS)]
        for method, row in table["methods"].items():
            lr = b["runs"][name][method]["lr"]
            lines.append(f"| {method} | {lr:g} | " + " | ".join(_ci(row[k]) for k, _ in PART_B_KEYS) + " |")
        lines += ["", "Paired differences (per seed, 95% t-intervals; negative is better except for accuracy):", "",
                  "| pair | " + " | ".join(l for _, l in PART_B_KEYS) + " |", "|---|" + "---|" * len(PART_B_KEYS)]
        for pair, row in table["paired"].items():
            lines.append(f"| {pair} | " + " | ".join(_ci(row[k]) for k, _ in PART_B_KEYS) + " |")
        lines.append("")
    lines += ["Compatibility per kind before (base) and after training (mixture, seed 0):", "",
              "| kind | base | " + " | ".join(b["runs"]["mixed"]) + " |",
              "|---|---|" + "---|" * len(b["runs"]["mixed"])]
    for kind in base["compat_by_kind"]:
        after = [_seed0(r)["compat_by_kind"].get(kind) for r in b["runs"]["mixed"].values()]
        lines.append(f"| {kind} | {_f(base['compat_by_kind'][kind])} | " + " | ".join(_f(x) for x in after) + " |")
    lines += [""] + rewriting_rounds(b)
    lines += ["", f"![gradient norms]({rel}/{plot_part_b(b, folder)})", ""]
    return lines + reading_part_b(b)


# Lower is better for these metrics; higher for accuracy
_LOWER_IS_BETTER = {"test_nll": True, "answer_nll": True, "accuracy": False, "forgetting": True,
                    "grad_norm_max": True, "grad_spikes": True}


def _verdict(entry: dict, key: str) -> str:
    """'better' / 'worse' when the paired interval excludes 0, else 'no detectable difference'."""
    if entry.get("n", 0) < 2 or not math.isfinite(entry.get("lo", math.nan)):
        return "not measurable"
    sign = _sign(entry)
    if sign == 0:
        return "no detectable difference"
    better = (sign < 0) == _LOWER_IS_BETTER[key]
    return "better" if better else "worse"


def reading_part_b(b: dict) -> list[str]:
    """What Part B's paired intervals say, metric by metric, written from the numbers."""
    wall = b.get("wall_s_total", b["meta"]["wall_s"]) / 60
    out = ["Reading (a difference counts only when its 95% paired interval excludes 0; with "
           f"{b['sizes']['seeds']} seeds, small differences cannot be told apart):", ""]
    for name in b["table"]:
        paired = b["table"][name]["paired"]
        for pair in paired:
            if not pair.endswith(" - DFT") and not pair.startswith("CADFT"):
                continue
            phrases = []
            for key, label in PART_B_KEYS:
                entry = paired[pair][key]
                verdict = _verdict(entry, key)
                if verdict in ("better", "worse"):
                    phrases.append(f"{verdict} {label} ({_ci(entry)})")
            method, base = pair.rsplit(" - ", 1)
            summary = "; ".join(phrases) if phrases else "no metric differs detectably"
            out.append(f"- {name} data, {method} against {base}: {summary}.")
    if b["runs"].get("mixed", {}).get(REWRITING):
        t = rewriting_totals(b)
        share = f"{100 * t['wrong'] / t['replaced']:.0f}%" if t["replaced"] else "n/a"
        most = ("none of the policy's own answers, trained on unverified, is right" if t["right"] == 0 else
                "most of the policy's own answers, trained on unverified, are wrong targets"
                if t["wrong"] > t["right"] else "the policy's own answers are right at least as often as wrong")
        out.append(f"- The paper's rewriting replaced {t['replaced']} targets over {t['rounds']} rounds; "
                   f"{t['wrong']} of them ({share}) state a wrong final answer ({most}; base 1-step accuracy "
                   f"{'0/32, see above' if b['sizes']['accuracy'] == 0 else _f(b['base']['accuracy'])}). Its effect "
                   f"on training is the '{REWRITING} - CADFT' row (paired by "
                   "seed).")
    lrs = sorted(b["sizes"]["lrs"])
    edge = [f"{name} {m} ({r['lr']:g})" for name, methods in b["runs"].items() for m, r in methods.items()
            if len(lrs) > 1 and r["lr"] in (lrs[0], lrs[-1])]
    if len(lrs) == 1:
        out.append(f"- The learning-rate grid is one value, {lrs[0]:g}: the rate every mixed-data method chose in the "
                   "previous two-value search [3e-4, 1e-3] (commit d3a0dc1), kept alone to fit the one-core budget. "
                   "No method searched here, so a method whose best rate differs from it is at a disadvantage.")
    if edge:
        out.append(f"- The learning rate chosen is at an edge of the grid {lrs} for: {'; '.join(edge)}. A wider grid "
                   "could move those methods, and with them the comparison.")
    if "CADFT (earlier) - DFT" in b["table"].get("mixed", {}).get("paired", {}):
        out.append("- The earlier estimator's token loss is -sg(p)**0.5 log p, halfway between DFT's and SFT's; SFT's "
                   "test NLL is the lowest here, so part of its difference to DFT may be the token power rather than "
                   "the sample weights (Part A's 'CADFT (earlier)' row, against its own alpha-0.5 reference).")
    out.append("- Gradient norms are comparable within a loss family only: SFT's token loss has no p factor, so its "
               "norms are larger by construction.")
    mixed = b["table"].get("mixed", {}).get("paired", {}).get("CADFT - DFT")
    if mixed:
        test = _verdict(mixed["test_nll"], "test_nll")
        claim = {"better": "supports", "worse": "contradicts"}.get(test, "neither supports nor contradicts")
        gain = b["base"]["test_nll"] - b["table"]["mixed"]["methods"]["DFT"]["test_nll"]["mean"]
        earlier = b["table"]["mixed"]["paired"].get("CADFT (earlier) - DFT")
        out += ["", f"On the heterogeneous mixture, CADFT's test NLL against DFT's {claim} the claim that "
                "down-weighting incompatible demonstrations helps a real model generalise to clean solutions, "
                f"at this size and budget: the difference is {_ci(mixed['test_nll'])} nats per token, against DFT's "
                f"own gain of {_f(gain)} over the base"
                + (f" and the earlier estimator's {_ci(earlier['test_nll'])}" if earlier else "")
                + f"; with {b['sizes']['seeds']} seeds the interval is wide in principle and narrow here only "
                "because the seeds happen to agree."]
    budget = "within" if wall <= 90 else "over"
    out += ["", f"Wall time {wall:.1f} min in all, {budget} the 90-minute budget of the issue.", ""]
    return out


def section_reading(a, b) -> list[str]:
    floor = ("Part B's accuracy uses 1-step problems only, and says the base accuracy on them." if b is None else
             "Part B measures no accuracy (`--accuracy 0`): the base is at the floor on 1-step problems too."
             if b["sizes"]["accuracy"] == 0 else
             f"Even on 1-step problems, the easiest subset, the base scores {_f(b['base']['accuracy'])} "
             f"({b['sizes']['accuracy']} problems), so Part B reports no accuracy after training."
             if not b["sizes"].get("accuracy_after", True) else
             f"Part B's accuracy uses 1-step problems only (base {_f(b['base']['accuracy'])}).")
    span = "a few dozen steps" if b is None else f"{b['sizes']['steps']} optimizer steps of {b['sizes']['batch']}"
    return [
        "## What this size can and cannot show", "",
        "- A 135M-parameter instruct model is at the floor on full GSM8K (0/50 greedy), so accuracy cannot be the "
        "main metric; the NLL of clean held-out solutions and of their final answers is. " + floor,
        "- Compatibility measures style as much as substance. The kinds show which foreign formats a real prior "
        "penalises; correctness in the native style is invisible to it (the `wrong` kind).",
        "- Part A is a statement about the gradient estimator at two points (the base and the middle of a short DFT "
        "run), with LoRA gradients; it does not show that training follows. Part B does, over " + span + " only: "
        "no claim about long training, full fine-tuning or cold-start RL is made here.",
        "",
        "## What a GPU run would add", "",
        "The same script runs unchanged on a GPU with a bigger model (`--model_name_or_path "
        "HuggingFaceTB/SmolLM2-1.7B-Instruct` or any causal LM): a model that is off the floor on GSM8K (accuracy "
        "becomes a real metric, and the paper's rewriting presumably gets more right answers from the policy), "
        "per-sample gradients of every layer and larger pools in Part A (narrower intervals), Part B with more "
        "seeds, longer training and a finer learning-rate grid. Cold-start RL after the fine-tune is not part of "
        "this script.", ""]


def write(path, results: dict, splits: dict, *, smoke: bool = False) -> None:
    folder = page.figures_dir(path)
    rel = folder.name
    lines = ["# CADFT on a real pretrained model and real data", "",
             "Written by `python -m experiments.real` (issues #9 and #20)" + (" -- SMOKE RUN: tiny random model, numbers "
                                                                    "meaningless" if smoke else "") + ". The model is "
             "SmolLM2-135M-Instruct (`embedded`) unless the command says otherwise; the data is GSM8K "
             "(`../shared/data/gsm8k`).", ""]
    lines += section_kinds(splits, results.get("kinds"), folder, rel)
    lines += section_part_a(results.get("a"), folder, rel)
    lines += section_part_b(results.get("b"), folder, rel)
    lines += section_reading(results.get("a"), results.get("b"))
    page.write(path, ["\n".join(lines)])
