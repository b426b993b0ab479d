"""One self-contained HTML report from one or more training run directories.

A run directory is a training `output_dir`. The report reads its `trainer_state.json`
(or, when that is missing, the newest `checkpoint-*/trainer_state.json`) and, when
present, `cadft_run.json` (metadata), `sample_scores.jsonl` (per-sample compatibility
and weight at the start and end of training) and `rewrites.jsonl` (rewrite attempts).
It draws the training curves with matplotlib's Agg renderer, one colour per run, and
embeds every figure as a base64 PNG data URI: the file loads nothing else and opens
offline. Any logged metric may be missing; its figure then says "no data".

    >>> runs = [load_run("out-cadft"), load_run("out-dft")]
    >>> html_text = render_report(runs, title="CADFT vs DFT")
    >>> write_report(["out-cadft", "out-dft"], "report.html")  # the same, to a file

From the shell: `cadft report out-cadft out-dft --output report.html` (docs/report.md).
"""

from __future__ import annotations

import base64
import html
import io
import json
import logging
import math
import re
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path
from typing import NamedTuple

from matplotlib.colors import to_hex
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch
from matplotlib.ticker import MaxNLocator

__all__ = ["ReportError", "Run", "load_run", "figures", "rewrite_rounds", "render_report", "write_report"]

logger = logging.getLogger(__name__)

STATE_FILE = "trainer_state.json"
RUN_FILE = "cadft_run.json"
SAMPLES_FILE = "sample_scores.jsonl"
REWRITES_FILE = "rewrites.jsonl"
_CHECKPOINT = re.compile(r"checkpoint-(\d+)")

# tab10: distinct and colour-blind tolerable for the few runs a report compares
_PALETTE = [to_hex(c) for c in ("tab:blue", "tab:orange", "tab:green", "tab:red", "tab:purple",
                                 "tab:brown", "tab:pink", "tab:gray", "tab:olive", "tab:cyan")]
_DPI = 110
_MARKERS_UP_TO = 30  # draw point markers on short series, so a one-point series still shows

# Logged per rewriting round (rewrite/<key>); label and bar colour of each outcome
REWRITE_KEYS = (
    "selected", "attempted", "accepted", "rejected_verifier", "rejected_no_gain", "rejected_error", "mean_gain"
)
_OUTCOMES = (
    ("accepted", "accepted", "#2ca02c"),
    ("rejected_verifier", "rejected: verifier", "#d62728"),
    ("rejected_no_gain", "rejected: no gain", "#ff7f0e"),
    ("rejected_error", "rejected: error", "#7f7f7f"),
    ("not_accepted", "not accepted", "#c7c7c7"),  # from rewrites.jsonl, which has no reason per sample
)


class ReportError(ValueError):
    """A run directory that cannot be reported on; the message names the path."""


# ---- reading run directories ----------------------------------------------------------


def _number(value) -> float | None:
    """`value` as a finite float, or None (missing, non-numeric, NaN or inf)."""
    if isinstance(value, bool) or value is None:
        return None
    try:
        x = float(value)
    except (TypeError, ValueError):
        return None
    return x if math.isfinite(x) else None


@dataclass
class Run:
    """Everything the report shows about one run directory."""

    path: Path
    label: str
    state_file: Path  # the trainer_state.json that was read
    state: dict
    meta: dict = field(default_factory=dict)  # cadft_run.json
    samples: list[dict] = field(default_factory=list)  # sample_scores.jsonl rows
    rewrites: list[dict] = field(default_factory=list)  # rewrites.jsonl rows

    @property
    def log_history(self) -> list[dict]:
        return self.state.get("log_history") or []

    def series(self, key: str) -> tuple[list[float], list[float]]:
        """(steps, values) of every finite logged value of `key`, in step order."""
        points = [(_number(e.get("step")), _number(e.get(key))) for e in self.log_history]
        points = sorted((s, v) for s, v in points if s is not None and v is not None)
        return [s for s, _ in points], [v for _, v in points]

    def last(self, key: str) -> float | None:
        """The last finite logged value of `key`, or None."""
        values = [v for v in (_number(e.get(key)) for e in self.log_history) if v is not None]
        return values[-1] if values else None


def _read_json(path: Path):
    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    except json.JSONDecodeError as e:
        raise ReportError(f"{path}: not valid JSON ({e.msg} at line {e.lineno})") from None


def _read_jsonl(path: Path) -> list[dict]:
    if not path.is_file():
        return []
    lines = path.read_text(encoding="utf-8").splitlines()
    last = max((i for i, line in enumerate(lines) if line.strip()), default=-1)
    rows = []
    for i, line in enumerate(lines):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as e:
            if i == last:  # a run killed mid-write leaves a cut last line; report the rest
                logger.warning("%s:%d: skipping the truncated last line (%s)", path, i + 1, e.msg)
                continue
            raise ReportError(f"{path}:{i + 1}: not valid JSON ({e.msg})") from None
        if not isinstance(row, dict):
            raise ReportError(f"{path}:{i + 1}: expected a JSON object per line, got {type(row).__name__}")
        rows.append(row)
    return rows


def _find_state(path: Path) -> Path:
    top = path / STATE_FILE
    if top.is_file():
        return top
    checkpoints = [
        (int(m.group(1)), p)
        for p in path.iterdir()
        if (m := _CHECKPOINT.fullmatch(p.name)) and (p / STATE_FILE).is_file()
    ]
    if not checkpoints:
        raise ReportError(
            f"{path}: no {STATE_FILE} in the run directory or in any checkpoint-*/ folder "
            "(a run directory is the output_dir of a training run)"
        )
    return max(checkpoints, key=lambda c: c[0])[1] / STATE_FILE


def load_run(path: str | Path) -> Run:
    """Read the run directory `path`; raises `ReportError` naming the path when it cannot."""
    path = Path(path)
    if not path.exists():
        raise ReportError(f"{path}: run directory not found")
    if not path.is_dir():
        raise ReportError(f"{path}: not a directory (give a training output_dir)")
    state_file = _find_state(path)
    state = _read_json(state_file)
    if not isinstance(state, dict) or not isinstance(state.get("log_history", []), list):
        raise ReportError(f"{state_file}: not a trainer state (expected an object with a log_history list)")
    meta = _read_json(path / RUN_FILE) if (path / RUN_FILE).is_file() else {}
    if not isinstance(meta, dict):
        raise ReportError(f"{path / RUN_FILE}: expected a JSON object, got {type(meta).__name__}")
    name = path.resolve().name
    label = f"{meta['loss_type']} ({name})" if meta.get("loss_type") else name
    samples, rewrites = _read_jsonl(path / SAMPLES_FILE), _read_jsonl(path / REWRITES_FILE)
    return Run(path, label, state_file, state, meta, samples, rewrites)


def _gain(rewrite: dict) -> float | None:
    """compat_after - compat_before of one rewrites.jsonl row, or None."""
    before, after = _number(rewrite.get("compat_before")), _number(rewrite.get("compat_after"))
    return None if before is None or after is None else after - before


def rewrite_rounds(run: Run) -> list[dict]:
    """One dict per rewriting round: `round`, `step` and the REWRITE_KEYS counts.

    From the `rewrite/*` metrics in the log history; when the run logged none, derived
    from `rewrites.jsonl` (attempted, accepted, `not_accepted` and mean_gain only).
    Missing values are None.
    """
    logged = [e for e in run.log_history if any(k.startswith("rewrite/") for k in e)]
    if logged:
        logged.sort(key=lambda e: _number(e.get("step")) or 0)
        return [
            {"round": i + 1, "step": e.get("step"), **{k: _number(e.get(f"rewrite/{k}")) for k in REWRITE_KEYS}}
            for i, e in enumerate(logged)
        ]
    by_round = defaultdict(list)
    for row in run.rewrites:
        by_round[row.get("round")].append(row)
    rounds = []
    for number in sorted(by_round, key=lambda r: (_number(r) is None, _number(r) or 0.0, str(r))):
        rows = by_round[number]
        accepted = [r for r in rows if r.get("accepted") is True]
        gains = [g for g in map(_gain, accepted) if g is not None]
        rounds.append(
            {
                "round": number,
                "step": rows[0].get("step"),
                **dict.fromkeys(REWRITE_KEYS),
                "attempted": len(rows),
                "accepted": len(accepted),
                "not_accepted": len(rows) - len(accepted),
                "mean_gain": sum(gains) / len(gains) if gains else None,
            }
        )
    return rounds


# ---- figures --------------------------------------------------------------------------

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
        _Panel("Effective sample size per batch", "ESS", (("cadft/weight_ess", "train"),)),
        _Panel("Fraction of weights clipped", "fraction", (("cadft/clip_frac", "train"),), from_zero=True),
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


def _colour(i: int) -> str:
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
    handles = [Line2D([], [], color=_colour(i), linewidth=2, label=runs[i].label) for i in drawn]
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
                    _plot(ax, xs, ys, color=_colour(i), linestyle=_STYLES[name])
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
        colour = _colour(i)
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
        for key, name, colour in _OUTCOMES:
            heights = [row.get(key) or 0.0 for row in rows]
            if any(heights):
                ax.bar(xs, heights, bottom=bottom, color=colour, width=0.6, label=name)
                bottom = [b + h for b, h in zip(bottom, heights)]
                used.add(key)
        _style_axes(ax, run.label, "samples")
        ax.set_xticks(xs, [f"r{_fmt(row['round'])}\nstep {_fmt(row['step'])}" for row in rows])
        ax.set_xlabel("round", fontsize=9)
        ax.title.set_color(_colour(i))
    _legend(fig, [], [Patch(color=c, label=n) for k, n, c in _OUTCOMES if k in used])
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
            points = [(s, r[key]) for r in rows if (s := _number(r["step"])) is not None and r[key] is not None]
            if points:
                _plot(ax, [p[0] for p in points], [p[1] for p in points], color=_colour(i))
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
        "optimisation": _line_figure(runs, _LINE_FIGURES["optimisation"]),
        "tokens": _line_figure(runs, _LINE_FIGURES["tokens"]),
        "rewrite_outcomes": _rewrite_outcome_figure(runs),
        "rewrite_progress": _rewrite_line_figure(runs),
    }


def _png_uri(fig: Figure) -> str:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=_DPI, bbox_inches="tight")
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


# ---- HTML -----------------------------------------------------------------------------


class _Html(str):
    """Markup built here from escaped parts; `_cell` inserts it as is."""


def _e(value) -> str:
    return html.escape(str(value), quote=True)


def _fmt(value) -> str:
    if value is None:
        return "—"
    if isinstance(value, float):
        return "—" if not math.isfinite(value) else f"{value:.4g}"
    return str(value)


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return "—"
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, secs = divmod(round(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min" if hours else f"{minutes} min {secs:02d} s"


def _cell(value) -> str:
    if isinstance(value, _Html):
        return f"<td>{value}</td>"
    numeric = isinstance(value, (int, float)) and not isinstance(value, bool)
    return f'<td class="num">{_e(_fmt(value))}</td>' if numeric else f"<td>{_e(_fmt(value))}</td>"


def _table(headers: list[str], rows: list[list], caption: str | None = None) -> str:
    head = "".join(f"<th>{_e(h)}</th>" for h in headers)
    body = "\n".join("<tr>" + "".join(_cell(v) for v in row) + "</tr>" for row in rows)
    cap = f"<caption>{_e(caption)}</caption>" if caption else ""
    return f"<table>{cap}<thead><tr>{head}</tr></thead>\n<tbody>\n{body}\n</tbody></table>"


def _text(value) -> _Html:
    """A long text (prompt, completion, rewrite) in a scrollable box."""
    if value is None:
        return _Html('<span class="muted">—</span>')
    if not isinstance(value, str):
        value = json.dumps(value, ensure_ascii=False)
    return _Html(f'<div class="text">{_e(value)}</div>')


def _swatch(i: int, label: str) -> _Html:
    return _Html(f'<span class="run"><span class="swatch" style="background:{_colour(i)}"></span>{_e(label)}</span>')


def _no_data(message: str) -> str:
    return f'<p class="nodata">No data: {_e(message)}</p>'


def _figure_html(fig: Figure | None, alt: str, missing: str) -> str:
    if fig is None:
        return _no_data(missing)
    return f'<figure><img src="{_png_uri(fig)}" alt="{_e(alt)}"></figure>'


def _summary(runs: list[Run]) -> str:
    eval_names = {"eval_loss": "eval loss", "eval_nll": "eval NLL", "eval_cadft/compat_mean": "eval mean compat"}
    eval_keys = [k for k in eval_names if any(r.last(k) is not None for r in runs)]
    rewrites = any(rewrite_rounds(r) for r in runs)
    headers = ["run", "loss type", "model", "steps", "final loss", "final NLL", "final mean compat",
               *(eval_names[k] for k in eval_keys),
               "train runtime"] + (["rewrites accepted"] if rewrites else [])
    rows = []
    for i, run in enumerate(runs):
        accepted = [r["accepted"] for r in rewrite_rounds(run) if r["accepted"] is not None]
        rows.append([
            _swatch(i, run.label), run.meta.get("loss_type"), run.meta.get("model"), run.state.get("global_step"),
            run.last("loss"), run.last("nll"), run.last("cadft/compat_mean"), *(run.last(k) for k in eval_keys),
            _duration(run.last("train_runtime")),
        ] + ([int(sum(accepted)) if accepted else None] if rewrites else []))
    return _table(headers, rows)


def _by_stage(samples: list[dict]) -> dict[str, dict]:
    stages = defaultdict(dict)
    for row in samples:
        stages[row.get("stage")][row.get("sample_id")] = row
    return stages


def _mean(values) -> float | None:
    values = [v for v in (_number(x) for x in values) if v is not None]
    return sum(values) / len(values) if values else None


def _sample_tables(run: Run, top_k: int) -> str:
    if not run.samples:
        return _no_data(f"{SAMPLES_FILE} is not in this run directory.")
    stages = _by_stage(run.samples)
    start, end = stages.get("start", {}), stages.get("end", {})
    stage = "end" if end else "start"
    ranked = sorted(
        (r for r in (end or start).values() if _number(r.get("weight")) is not None),
        key=lambda r: (_number(r["weight"]), _number(r.get("compatibility")) or 0.0),
    )
    has_kind = any("kind" in r for r in run.samples)
    headers = ["#", "sample", *(["kind"] if has_kind else []), "weight start", "weight end", "compat start",
               "compat end", "tokens", "prompt", "completion"]
    rows = []
    for rank, row in enumerate(ranked[:top_k], 1):
        sid = row.get("sample_id")
        s, t = start.get(sid, {}), end.get(sid, {})
        rows.append([rank, sid, *([row.get("kind")] if has_kind else []), _number(s.get("weight")),
                     _number(t.get("weight")), _number(s.get("compatibility")), _number(t.get("compatibility")),
                     row.get("num_tokens"), _text(row.get("prompt")), _text(row.get("completion"))])
    parts = [f"<h4>Most down-weighted demonstrations (lowest weight at stage {stage})</h4>"]
    if rows:
        parts.append(_table(headers, rows, f"{len(rows)} of {len(ranked)} samples"))
    else:
        parts.append(_no_data("no sample has a weight."))
    if has_kind:
        kinds = sorted({str(r["kind"]) for r in run.samples if "kind" in r})
        kind_rows = []
        for kind in kinds:
            s = [r for r in start.values() if str(r.get("kind")) == kind]
            t = [r for r in end.values() if str(r.get("kind")) == kind]
            kind_rows.append([kind, len({r.get("sample_id") for r in s + t}),
                              _mean(r.get("compatibility") for r in s), _mean(r.get("compatibility") for r in t),
                              _mean(r.get("weight") for r in s), _mean(r.get("weight") for r in t)])
        parts.append("<h4>By kind of demonstration</h4>")
        parts.append(_table(["kind", "samples", "mean compat start", "mean compat end", "mean weight start",
                             "mean weight end"], kind_rows))
    return "\n".join(parts)


def _rewrite_tables(run: Run, max_rewrites: int) -> str:
    rounds = rewrite_rounds(run)
    if not rounds:
        return _no_data(f"no rewriting rounds (no rewrite/* metrics logged and no {REWRITES_FILE}).")
    verdicts = defaultdict(Counter)  # step -> candidate verdict counts
    for row in run.rewrites:
        for cand in row.get("candidates") or []:
            if isinstance(cand, dict):
                verdicts[row.get("step")][str(cand.get("verdict"))] += 1
    columns = [k for k in ("selected", "attempted", "accepted", "rejected_verifier", "rejected_no_gain",
                           "rejected_error", "not_accepted", "mean_gain") if any(r.get(k) is not None for r in rounds)]
    headers = ["round", "step", *(k.replace("_", " ") for k in columns)]
    rows = [[r["round"], r["step"], *(r.get(k) for k in columns)] for r in rounds]
    if verdicts:
        headers.append("candidates by verdict")
        for row, r in zip(rows, rounds):
            row.append(", ".join(f"{v}: {n}" for v, n in sorted(verdicts[r["step"]].items())) or None)
    parts = ["<h4>Rewriting rounds</h4>", _table(headers, rows)]

    accepted = [r for r in run.rewrites if r.get("accepted") is True]
    accepted.sort(key=lambda r: (_number(r.get("step")) or 0, _number(r.get("sample_id")) or 0))
    parts.append("<h4>Accepted rewrites</h4>")
    if not run.rewrites:
        parts.append(_no_data(f"{REWRITES_FILE} is not in this run directory."))
    elif not accepted:
        parts.append(_no_data(f"none of the {len(run.rewrites)} rewrite attempts was accepted."))
    else:
        shown = accepted[:max_rewrites]
        rows = []
        for r in shown:
            rows.append([r.get("sample_id"), r.get("round"), r.get("step"), _number(r.get("compat_before")),
                         _number(r.get("compat_after")), _gain(r), r.get("generator"), _text(r.get("original")),
                         _text(r.get("rewrite"))])
        caption = f"{len(accepted)} of {len(run.rewrites)} attempts accepted"
        if len(shown) < len(accepted):
            caption += f"; the first {len(shown)} shown (raise --max-rewrites for more)"
        parts.append(_table(["sample", "round", "step", "compat before", "compat after", "gain", "generator",
                             "original", "rewrite"], rows, caption))
    return "\n".join(parts)


def _metadata(run: Run) -> str:
    rows = [[str(k), v if isinstance(v, (str, int, float)) and not isinstance(v, bool)
             else json.dumps(v, ensure_ascii=False)] for k, v in run.meta.items()]
    source = run.state_file.relative_to(run.path) if run.state_file.is_relative_to(run.path) else run.state_file
    meta = _table(["key", "value"], rows) if rows else _no_data(f"{RUN_FILE} is not in this run directory.")
    return (
        f'<p class="muted">Directory <code>{_e(run.path.resolve())}</code>; training state from '
        f"<code>{_e(source)}</code>.</p>\n"
        f"<details><summary>Run metadata ({_e(RUN_FILE)})</summary>\n{meta}\n</details>"
    )


_CSS = """
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;color:#222;margin:0;background:#fafafa}
main{max-width:1240px;margin:0 auto;padding:16px 24px 48px}
h1{font-size:24px;margin:8px 0 4px}h2{font-size:19px;margin:32px 0 8px;border-bottom:1px solid #ddd;padding-bottom:4px}
h3{font-size:16px;margin:20px 0 6px}h4{font-size:14px;margin:16px 0 6px}
nav a{margin-right:14px}.muted{color:#666}.nodata{color:#777;font-style:italic}
figure{margin:8px 0 16px;background:#fff;border:1px solid #e4e4e4;padding:6px;width:fit-content;max-width:100%;
box-sizing:border-box}figure img{max-width:100%;height:auto;display:block}
table{border-collapse:collapse;margin:6px 0 14px;background:#fff;font-size:13px}
caption{caption-side:bottom;text-align:left;color:#666;font-size:12px;padding-top:4px}
th,td{border:1px solid #ddd;padding:4px 8px;vertical-align:top;text-align:left}th{background:#f0f0f0}
td.num{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}
tbody tr:nth-child(even){background:#f8f8f8}
.text{white-space:pre-wrap;font:12px/1.35 ui-monospace,Menlo,Consolas,monospace;max-height:11em;overflow:auto;
min-width:16em;max-width:34em}
.run{white-space:nowrap}
.swatch{display:inline-block;width:11px;height:11px;border-radius:2px;margin-right:6px;vertical-align:-1px}
code{font-size:12px}details{margin:6px 0}
"""

# No script, no network: only inline styles and data: images may load
_CSP = "default-src 'none'; img-src data:; style-src 'unsafe-inline'"


def render_report(runs: list[Run], title: str | None = None, *, top_k: int = 20, max_rewrites: int = 500) -> str:
    """The report on `runs` as one self-contained HTML document.

    `top_k`: rows of each run's most down-weighted table; `max_rewrites`: rows of each
    run's accepted-rewrites table (the caption says how many were left out).
    """
    if not runs:
        raise ReportError("no run directories given")
    title = title or "CADFT report: " + ", ".join(r.label for r in runs)
    try:
        version = metadata.version("cadft")
    except metadata.PackageNotFoundError:
        version = "unknown"
    figs = figures(runs)
    run_list = "".join(f"<li>{_swatch(i, r.label)} <code>{_e(r.path)}</code></li>" for i, r in enumerate(runs))
    anchors = [("summary", "Summary"), ("curves", "Training curves"), ("rewriting", "Rewriting")]
    anchors += [(f"run-{i + 1}", r.label) for i, r in enumerate(runs)]
    nav = "".join(f'<a href="#{key}">{_e(name)}</a>' for key, name in anchors)
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f'<meta http-equiv="Content-Security-Policy" content="{_CSP}">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{_e(title)}</title><style>{_CSS}</style></head><body><main>",
        f"<h1>{_e(title)}</h1>",
        f'<p class="muted">Generated {datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC by cadft {_e(version)} '
        f"from {len(runs)} run{'s' if len(runs) > 1 else ''}.</p><ul>{run_list}</ul>",
        f"<nav>{nav}</nav>",
        '<section id="summary"><h2>Summary</h2>',
        _summary(runs),
        '<p class="muted">Final values are the last logged ones; "final mean compat" is over the last logged '
        "training batches.</p></section>",
        '<section id="curves"><h2>Training curves</h2>',
        "<h3>Loss</h3>",
        _figure_html(figs["loss"], "Weighted training loss and token NLL over steps", "no run logged loss or nll."),
        "<h3>Compatibility</h3>",
        _figure_html(figs["compatibility"], "Compatibility p10, median and mean over steps",
                     "no run logged cadft/compat_* metrics."),
        "<h3>Sample weights</h3>",
        _figure_html(figs["weights"], "Mean sample weight, effective sample size and clip fraction over steps",
                     "no run logged cadft/weight_* or cadft/clip_frac."),
        "<h3>Optimisation</h3>",
        _figure_html(figs["optimisation"], "Learning rate and gradient norm over steps",
                     "no run logged learning_rate or grad_norm."),
        "<h3>Token statistics</h3>",
        _figure_html(figs["tokens"], "Predictive entropy and token accuracy over steps",
                     "no run logged entropy or mean_token_accuracy."),
        "</section>",
        '<section id="rewriting"><h2>Rewriting</h2>',
        _figure_html(figs["rewrite_outcomes"], "Outcomes of each rewriting round",
                     "no run has rewriting rounds (rewrite/* metrics or rewrites.jsonl)."),
        _figure_html(figs["rewrite_progress"], "Accepted rewrites and mean compatibility gain per round", "")
        if figs["rewrite_progress"] is not None else "",
        "</section>",
    ]
    for i, run in enumerate(runs):
        parts += [
            f'<section id="run-{i + 1}"><h2>{_swatch(i, run.label)}</h2>',
            _metadata(run),
            "<h3>Demonstrations</h3>",
            _sample_tables(run, top_k),
            "<h3>Rewriting</h3>",
            _rewrite_tables(run, max_rewrites),
            "</section>",
        ]
    parts.append("</main></body></html>\n")
    return "\n".join(parts)


def write_report(run_dirs: list[str | Path], output: str | Path, title: str | None = None, **kwargs) -> Path:
    """Load `run_dirs`, render the report (kwargs go to `render_report`) and write it to `output`."""
    runs = [load_run(d) for d in run_dirs]
    labels = Counter(r.label for r in runs)
    for i, run in enumerate(runs):  # two dirs of the same name: tell them apart
        if labels[run.label] > 1:
            run.label = f"{run.label} #{i + 1}"
    text = render_report(runs, title, **kwargs)
    output = Path(output)
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(text, encoding="utf-8")
    return output
