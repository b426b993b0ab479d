"""The report's figures: matplotlib's Agg renderer, one colour per run, PNG data URIs.

Any logged metric may be missing: a panel without data says so, and a figure with no data
at all is None.
"""

from __future__ import annotations

import base64
import io
import math
from typing import NamedTuple

from matplotlib.colors import to_hex
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch
from matplotlib.ticker import MaxNLocator

from .runs import Run, rewrite_rounds, to_float

__all__ = ["OUTCOMES", "figures", "fmt", "png_uri", "run_colour"]

# tab10: distinct and colour-blind tolerable for the few runs a report compares
_PALETTE = [to_hex(c) for c in ("tab:blue", "tab:orange", "tab:green", "tab:red", "tab:purple",
                                 "tab:brown", "tab:pink", "tab:gray", "tab:olive", "tab:cyan")]
_DPI = 110
_MARKERS_UP_TO = 30  # draw point markers on short series, so a one-point series still shows


def fmt(value) -> str:
    """A table or tick label: 4 significant digits, a dash for None and non-finite values."""
    if value is None:
        return "—"
    if isinstance(value, float):
        return "—" if not math.isfinite(value) else f"{value:.4g}"
    return str(value)


# Label and bar colour of each rewriting outcome
OUTCOMES = (
    ("accepted", "accepted", "#2ca02c"),
    ("rejected_verifier", "rejected: verifier", "#d62728"),
    ("rejected_no_gain", "rejected: no gain", "#ff7f0e"),
    ("rejected_error", "rejected: error", "#7f7f7f"),
    ("not_accepted", "not accepted", "#c7c7c7"),  # from rewrites.jsonl, which has no reason per sample
)


class _Panel(NamedTuple):
    """One axes of a line figure: the logged keys it overlays, each as a named series."""

    title: str
    ylabel: str
    keys: tuple[tuple[str, str], ...]  # (logged key, "train" or "eval")
    from_zero: bool = False  # a fraction: draw its axis from 0 so that "all zero" reads as such


_TRAIN_EVAL = ("train", "eval")
_LINE_FIGURES = {
    "loss": [
        _Panel("Training loss (weighted)", "loss", (("loss", "train"), ("eval_loss", "eval"))),
        _Panel("Token NLL (unweighted)", "nats / token", (("nll", "train"), ("eval_nll", "eval"))),
    ],
    "weights": [
        _Panel("Mean sample weight", "weight", (("cadft/weight_mean", "train"),)),
        # The paper's estimator logs the minimum weight and the down-weighted fraction; the earlier
        # one the effective sample size and the clipped fraction (a run logs one of each pair)
        _Panel("Minimum sample weight", "weight", (("cadft/weight_min", "train"),)),
        _Panel("Effective sample size per batch", "ESS", (("cadft/weight_ess", "train"),)),
        _Panel("Fraction down-weighted (w < 1) or clipped", "fraction",
               (("cadft/downweighted_frac", "train"), ("cadft/clip_frac", "train")), from_zero=True),
    ],
    # The token losses' own metrics, each a mean over trainable tokens (cadft.losses.token_loss)
    "token_loss": [
        _Panel("ASFT: KL(reference || policy)", "nats / token", (("asft/kl", "train"), ("eval_asft/kl", "eval")),
               from_zero=True),
        _Panel("EAFT: entropy gate", "gate", (("eaft/gate", "train"), ("eval_eaft/gate", "eval")), from_zero=True),
        _Panel("EAFT: entropy of the gate", "nats / token",
               (("eaft/entropy", "train"), ("eval_eaft/entropy", "eval"))),
    ],
    "optimisation": [
        _Panel("Learning rate", "learning rate", (("learning_rate", "train"),)),
        _Panel("Gradient norm", "grad norm", (("grad_norm", "train"),)),
    ],
    "tokens": [
        _Panel("Predictive entropy", "nats / token", (("entropy", "train"), ("eval_entropy", "eval"))),
        _Panel("Top-1 token accuracy", "accuracy",
               (("mean_token_accuracy", "train"), ("eval_mean_token_accuracy", "eval"))),
    ],
}
_STYLES = {"train": "-", "eval": "--"}


def run_colour(i: int) -> str:
    return _PALETTE[i % len(_PALETTE)]


def _plot(ax, xs, ys, **kwargs) -> None:
    ax.plot(xs, ys, marker="o" if len(xs) <= _MARKERS_UP_TO else None, markersize=3, linewidth=1.6, **kwargs)


def _axes_no_data(ax) -> None:
    ax.text(0.5, 0.5, "no data", ha="center", va="center", color="#888888", transform=ax.transAxes)
    ax.set_xticks([])
    ax.set_yticks([])


def _style_axes(ax, title: str, ylabel: str) -> None:
    ax.set_title(title, fontsize=10)
    ax.set_xlabel("step", fontsize=9)
    ax.tick_params(labelsize=8)
    ax.grid(alpha=0.3)
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    values = [y for line in ax.get_lines() for y in line.get_ydata()]
    if values and min(values) > 0 and max(values) / min(values) > 30:
        # e.g. NLL (~nats) next to DFT/CADFT losses (~p * nats): both stay readable
        ax.set_yscale("log")
        ylabel += " (log scale)"
    else:
        ax.ticklabel_format(axis="y", useOffset=False)  # close values read as themselves, not as an offset
    ax.set_ylabel(ylabel, fontsize=9)


def _legend(fig: Figure, runs: list[Run], extra: list, drawn: list[int] | None = None) -> None:
    """Run colours (of the runs in `drawn`, default all; none for a single run) and `extra` handles."""
    drawn = range(len(runs)) if drawn is None else drawn
    handles = [Line2D([], [], color=run_colour(i), linewidth=2, label=runs[i].label) for i in drawn]
    handles = (handles if len(runs) > 1 else []) + extra
    if handles:
        fig.legend(handles=handles, loc="outside lower center", ncol=min(len(handles), 6), fontsize=8, frameon=False)


def _figure(panels: int, width: float = 11) -> tuple[Figure, list]:
    fig = Figure(figsize=(width, 3.3), layout="constrained")
    axes = fig.subplots(1, panels, squeeze=False)[0]
    return fig, list(axes)


def _line_figure(runs: list[Run], panels: list[_Panel]) -> Figure | None:
    if not any(run.series(key)[0] for panel in panels for key, _ in panel.keys for run in runs):
        return None
    fig, axes = _figure(len(panels))
    drawn_styles = set()
    for ax, panel in zip(axes, panels):
        drawn = False
        for i, run in enumerate(runs):
            for key, name in panel.keys:
                xs, ys = run.series(key)
                if xs:
                    _plot(ax, xs, ys, color=run_colour(i), linestyle=_STYLES[name])
                    drawn_styles.add(name)
                    drawn = True
        _style_axes(ax, panel.title, panel.ylabel)
        if not drawn:
            _axes_no_data(ax)
        elif panel.from_zero and ax.get_yscale() == "linear":
            ax.set_ylim(bottom=0)
    styles = [n for n in _TRAIN_EVAL if n in drawn_styles]
    extra = [Line2D([], [], color="#444444", linestyle=_STYLES[n], label=n) for n in styles] if len(styles) > 1 else []
    _legend(fig, runs, extra)
    return fig


def _compat_figure(runs: list[Run]) -> Figure | None:
    keys = ("cadft/compat_p10", "cadft/compat_p50", "cadft/compat_mean")
    if not any(run.series(k)[0] for k in keys for run in runs):
        return None
    fig, (ax,) = _figure(1)
    for i, run in enumerate(runs):
        colour = run_colour(i)
        p10, p50 = (dict(zip(*run.series(k))) for k in keys[:2])
        band = sorted(set(p10) & set(p50))
        if band:
            ax.fill_between(band, [p10[s] for s in band], [p50[s] for s in band], color=colour, alpha=0.18, linewidth=0)
        if p50:
            _plot(ax, *run.series(keys[1]), color=colour, linestyle="-")
        xs, ys = run.series(keys[2])
        if xs:
            _plot(ax, xs, ys, color=colour, linestyle="--")
    _style_axes(ax, "Compatibility of training batches (geometric-mean token probability)", "compatibility")
    _legend(fig, runs, [
        Patch(color="#444444", alpha=0.18, label="p10 to p50"),
        Line2D([], [], color="#444444", linestyle="-", label="median (p50)"),
        Line2D([], [], color="#444444", linestyle="--", label="mean"),
    ])
    return fig


def _rewrite_outcome_figure(runs: list[Run]) -> Figure | None:
    rounds = [(i, run, rewrite_rounds(run)) for i, run in enumerate(runs)]
    rounds = [r for r in rounds if r[2]]
    if not rounds:
        return None
    fig, axes = _figure(len(rounds), width=min(11, 4 + 3.5 * (len(rounds) - 1)))
    used = set()
    for ax, (i, run, rows) in zip(axes, rounds):
        xs = list(range(len(rows)))
        bottom = [0.0] * len(rows)
        for key, name, colour in OUTCOMES:
            heights = [row.get(key) or 0.0 for row in rows]
            if any(heights):
                ax.bar(xs, heights, bottom=bottom, color=colour, width=0.6, label=name)
                bottom = [b + h for b, h in zip(bottom, heights)]
                used.add(key)
        _style_axes(ax, run.label, "samples")
        ax.set_xticks(xs, [f"r{fmt(row['round'])}\nstep {fmt(row['step'])}" for row in rows])
        ax.set_xlabel("round", fontsize=9)
        ax.title.set_color(run_colour(i))
    _legend(fig, [], [Patch(color=c, label=n) for k, n, c in OUTCOMES if k in used])
    return fig


def _rewrite_line_figure(runs: list[Run]) -> Figure | None:
    panels = [("Rewrites accepted per round", "accepted", "accepted"),
              ("Mean compatibility gain of accepted rewrites", "gain", "mean_gain")]
    per_run = [rewrite_rounds(run) for run in runs]
    if not any(per_run):
        return None
    fig, axes = _figure(len(panels))
    for ax, (title, ylabel, key) in zip(axes, panels):
        drawn = False
        for i, rows in enumerate(per_run):
            points = [(s, r[key]) for r in rows if (s := to_float(r["step"])) is not None and r[key] is not None]
            if points:
                _plot(ax, [p[0] for p in points], [p[1] for p in points], color=run_colour(i))
                drawn = True
        _style_axes(ax, title, ylabel)
        if not drawn:
            _axes_no_data(ax)
    _legend(fig, runs, [], drawn=[i for i, rows in enumerate(per_run) if rows])
    return fig


def figures(runs: list[Run]) -> dict[str, Figure | None]:
    """Every figure of the report by name, None where no run has its data."""
    return {
        "loss": _line_figure(runs, _LINE_FIGURES["loss"]),
        "compatibility": _compat_figure(runs),
        "weights": _line_figure(runs, _LINE_FIGURES["weights"]),
        "token_loss": _line_figure(runs, _LINE_FIGURES["token_loss"]),
        "optimisation": _line_figure(runs, _LINE_FIGURES["optimisation"]),
        "tokens": _line_figure(runs, _LINE_FIGURES["tokens"]),
        "rewrite_outcomes": _rewrite_outcome_figure(runs),
        "rewrite_progress": _rewrite_line_figure(runs),
    }


def png_uri(fig: Figure) -> str:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=_DPI, bbox_inches="tight")
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")
