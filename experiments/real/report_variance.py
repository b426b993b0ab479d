"""The variance-assumption part of docs/real-model.md (Part A's `variance` result), written
from the numbers: DFT gradient norms against z, per kind, and the moments of DFT and the
paper's estimator, at the base and at the middle of training. Used by report.py.
"""

from __future__ import annotations

import math
from pathlib import Path

from experiments.page import ci as _ci, num as _f, pyplot, save
from experiments.real import data

STAGES = (("base", "at the base model"), ("mid", "at the middle of training"))
MOMENT_KEYS = (("second_moment", "E‖g_b‖²"), ("second_moment_ratio", "ratio to DFT"),
               ("rel_variance", "tr Cov / ‖E g‖² (unbiased)"), ("cosine", "cos(E g, r)"))


def _pair(value: float, interval) -> str:
    lo, hi = interval
    return f"{_f(value)} [{_f(lo)}, {_f(hi)}]"


def _bin_label(b: dict) -> str:
    lo = "-inf" if b["lo_z"] is None or not math.isfinite(b["lo_z"]) else f"{b['lo_z']:g}"  # None: unbounded
    hi = "inf" if b["hi_z"] is None or not math.isfinite(b["hi_z"]) else f"{b['hi_z']:g}"
    return f"[{lo}, {hi})"


def relation(result: dict) -> str:
    """'larger' / 'smaller' / 'no detectable relation': the sign of the Spearman correlation of
    norm with z when its 95% interval excludes 0."""
    lo, hi = result["spearman"]["ci"]
    return "larger" if lo > 0 else "smaller" if hi < 0 else "no detectable relation"


def sentence(stage: dict, label: str) -> str:
    """The plain statement the issue asks for, at one stage."""
    summed, per_token = stage["norm_vs_z"], stage["per_token_norm_vs_z"]
    rel, rel_t = relation(summed), relation(per_token)
    s = summed["spearman"]
    head = (f"{label.capitalize()}, incompatible samples (higher z) have **{rel}** DFT gradient norms "
            if rel != "no detectable relation" else
            f"{label.capitalize()}, the DFT gradient norm shows **no detectable relation** with z ")
    return (head + f"(Spearman {_pair(s['r'], s['ci'])}, Pearson "
            f"{_pair(summed['pearson']['r'], summed['pearson']['ci'])}, n = {summed['n']}); per token, "
            f"‖G_i‖/T_i: {rel_t if rel_t != 'no detectable relation' else 'no detectable relation'} "
            f"(Spearman {_pair(per_token['spearman']['r'], per_token['spearman']['ci'])}).")


def plot(variance: dict, folder: Path) -> str:
    plt = pyplot()
    stages = [(k, label) for k, label in STAGES if k in variance]
    fig, axes = plt.subplots(1, len(stages), figsize=(5 * len(stages), 3.6), squeeze=False)
    for ax, (key, label) in zip(axes[0], stages):
        v = variance[key]
        for kind in data.KINDS:
            idx = [i for i, k in enumerate(v["kinds"]) if k == kind]
            if idx:
                ax.scatter([v["z"][i] for i in idx], [v["norms"][i] for i in idx], s=14, label=kind)
        ax.set_xlabel("mean z within batches of %d" % v["batch_size"])
        ax.set_ylabel("‖G_i‖, DFT's summed token loss")
        ax.set_title(label, fontsize=9)
    axes[0][0].legend(fontsize=7)
    title = "Part A: per-sample DFT gradient norm against z"
    return Path(save(fig, folder, "part_a_norm_vs_z.png", title=title, dpi=110)).name


def section(a: dict, folder: Path, rel: str) -> list[str]:
    variance = a.get("variance")
    if not variance:
        return []
    base = variance["base"]
    mid = variance.get("mid")
    lines = ["### The variance assumption, measured", "",
             "The paper's variance argument (E‖g̃‖² ≤ E‖g‖², with the largest cut where ‖g_i‖ is largest) needs "
             "incompatible samples (z_i > 0) to be the ones with large DFT gradients. G_i is the gradient of "
             "sample i's *summed* DFT token loss, sum_t -sg(p_it) log p_it (so that a batch's DFT gradient is "
             "sum_i G_i / N_b); z_i is the sample's z-score of u_i (length-normalised NLL) within its batch, "
             f"averaged over {base['batch_size']}-row batches of 50 random partitions of the pool "
             "(`variance.mean_batch_z`). "
             f"At the base: LoRA B matrices only ({base['params']:,} parameters"
             + (f", LoRA on the top {mid['top_layers']} layers" if mid and mid.get("top_layers") else "")
             + "; the A matrices have no gradient there)" + (f"; at the middle of training: an adapter trained for {mid['step']} of the {mid['of_steps']} "
                         f"steps of Part B's DFT run ({mid['train_rows']} mixture rows, batch {mid['batch']}, lr "
                         f"{mid['lr']:g}, cosine schedule of the full run), A and B matrices"
                         + (f" of the top {mid['top_layers']} layers" if mid.get("top_layers") else "")
                         + f" ({mid['params']:,} parameters)" if mid else "") + ". Intervals: 95% bootstrap over samples.", ""]
    for key, label in STAGES:
        if key in variance:
            lines.append("- " + sentence(variance[key], label))
    lines.append("")
    for key, label in STAGES:
        v = variance.get(key)
        if v is None:
            continue
        lines += [f"Norm against z, {label} (bins of the mean z):", "",
                  "| z bin | n | mean ‖G_i‖ [95% CI] | mean ‖G_i‖/T_i [95% CI] |", "|---|---|---|---|"]
        for b, bt in zip(v["norm_vs_z"]["bins"], v["per_token_norm_vs_z"]["bins"]):
            cell = (lambda e: _pair(e["mean"], e["ci"]) if e["n"] else "-")
            lines.append(f"| {_bin_label(b)} | {b['n']} | {cell(b)} | {cell(bt)} |")
        lines += ["", f"Per kind, {label} (95% t-intervals):", "",
                  "| kind | n | mean z | u | trainable tokens | ‖G_i‖ | ‖G_i‖/T_i |", "|---|---|---|---|---|---|---|"]
        for kind in data.KINDS:
            e = v["by_kind"].get(kind)
            if e:
                lines.append(f"| {kind} | {e['n']} | {_ci(e['z'], 2)} | {_ci(e['u'], 2)} | {_ci(e['tokens'], 0)} | "
                             f"{_ci(e['norm'], 4)} | {_ci(e['per_token_norm'], 5)} |")
        lines.append("")
    lines += [f"![norm against z]({rel}/{plot(variance, folder)})", ""]
    lines += moments_table(variance)
    return lines


def moments_rows(variance: dict) -> list[str]:
    """The moments table's Markdown rows (also printed by run.py)."""
    head = ("| stage | estimator | " + " | ".join(label for _, label in MOMENT_KEYS)
            + " | d rel. variance vs DFT | d cos vs DFT | cos(E g, r_nll) | d cos_nll vs DFT |")
    rows = [head, "|---|---|" + "---|" * (len(MOMENT_KEYS) + 4)]
    for key, label in STAGES:
        v = variance.get(key)
        if v is None:
            continue
        for beta, m in v["moments"]["dft"].items():
            nll = v["moments"]["nll"][beta]
            name = "DFT (beta 0)" if float(beta) == 0 else f"paper, beta {beta}"
            cells = [_ci(m[k]) for k, _ in MOMENT_KEYS]
            diffs = ["-", "-", _ci(nll["cosine"]), "-"] if float(beta) == 0 else [
                _ci(m["rel_variance"]["vs_DFT"]), _ci(m["cosine"]["vs_DFT"]), _ci(nll["cosine"]),
                _ci(nll["cosine"]["vs_DFT"])]
            rows.append(f"| {key} | {name} | " + " | ".join(cells + diffs) + " |")
    return rows


def moments_table(variance: dict) -> list[str]:
    base = variance["base"]
    lines = ["Moments of the batch gradient g_b = sum_i w_i G_i / N_b over "
             f"{base['n_batches']} random batches of {base['batch_size']} (`variance.moments`; the same batches for "
             "every beta; DFT is beta 0): second moment, relative variance tr Cov(g_b) / ‖E g_b‖² with the "
             "denominator unbiased (‖mean g‖² − tr Cov / n_batches, so no 1/B bias), and the cosine of the mean "
             "batch gradient with the clean reference r: r = the DFT-loss gradient of the clean held-out gold rows "
             "(columns 'cos(E g, r)'), and r_nll = their plain-NLL gradient. 95% intervals: point ± 1.96 sd over "
             f"{base['outer']} bootstrap resamples of the pool, differences paired on the same batches.", ""]
    lines += moments_rows(variance) + [""]
    lines += reading(variance)
    return lines


def _sign(entry: dict) -> int:
    lo, hi = entry.get("lo"), entry.get("hi")
    if lo is None or not (math.isfinite(lo) and math.isfinite(hi)):
        return 0
    return 1 if lo > 0 else -1 if hi < 0 else 0


def reading(variance: dict) -> list[str]:
    out = ["Reading:", "",
           "- The second moment falls for every beta > 0 by construction: w_i ≤ 1 and the token normaliser "
           "N_b stays DFT's, so every batch gradient is shrunk. The scale-free measures are the relative "
           "variance and the cosine."]
    for key, label in STAGES:
        v = variance.get(key)
        if v is None:
            continue
        parts = []
        for beta, m in v["moments"]["dft"].items():
            if float(beta) == 0:
                continue
            var = {1: "higher", -1: "lower", 0: "not distinguishable"}[_sign(m["rel_variance"]["vs_DFT"])]
            cos = {1: "higher", -1: "lower", 0: "not distinguishable"}[_sign(m["cosine"]["vs_DFT"])]
            parts.append(f"beta {beta}: relative variance {var} ({_ci(m['rel_variance']['vs_DFT'])}), cosine to the "
                         f"clean DFT gradient {cos} ({_ci(m['cosine']['vs_DFT'])})")
        out.append(f"- {label.capitalize()}, against DFT: " + "; ".join(parts) + ".")
    return out + [""]
