"""The report as one self-contained HTML document: inline CSS, figures as data URIs, a
Content-Security-Policy that lets nothing else load, so the file opens offline."""

from __future__ import annotations

import html
import json
from collections import Counter, defaultdict
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path

from matplotlib.figure import Figure

from .figures import figures, fmt, png_uri, run_colour
from .runs import (REWRITES_FILE, RUN_FILE, SAMPLES_FILE, SUITE_FILE, ReportError, Run, gain, load_run, rewrite_rounds,
                   to_float)

__all__ = ["render_report", "write_report"]


class _Html(str):
    """Markup built here from escaped parts; `_cell` inserts it as is."""


def _e(value) -> str:
    return html.escape(str(value), quote=True)


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
    return f'<td class="num">{_e(fmt(value))}</td>' if numeric else f"<td>{_e(fmt(value))}</td>"


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
    return _Html(f'<span class="run"><span class="swatch" style="background:{run_colour(i)}"></span>{_e(label)}</span>')


def _no_data(message: str) -> str:
    return f'<p class="nodata">No data: {_e(message)}</p>'


def _figure_html(fig: Figure | None, alt: str, missing: str) -> str:
    if fig is None:
        return _no_data(missing)
    return f'<figure><img src="{png_uri(fig)}" alt="{_e(alt)}"></figure>'


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


def _percent(value) -> str:
    return "—" if to_float(value) is None else f"{100 * value:.1f}%"


def _benchmarks(runs: list[Run]) -> str:
    """One row per run and benchmark of `cadft eval --benchmark` results, then each run's suite average."""
    rows = []
    for i, run in enumerate(runs):
        if run.suite is None:
            continue
        k = run.suite.get("k")
        for name, b in run.suite["benchmarks"].items():
            low, high = (b.get("avg_at_k_ci95") or [None, None])[:2]
            rows.append([_swatch(i, run.label), name, b.get("num_problems"), k, _percent(b.get("avg_at_k")),
                         f"[{_percent(low)}, {_percent(high)}]", _percent((b.get("pass_at_k") or {}).get(str(k))),
                         f"{b.get('num_unparsable')}/{b.get('num_answers')}"])
        if run.suite.get("suite_average") is not None:
            rows.append([_swatch(i, run.label), "paper average", None, k, _percent(run.suite["suite_average"]),
                         "", "", ""])
    if not rows:
        return _no_data(f"no run directory holds a {SUITE_FILE} (written by cadft eval --benchmark).")
    return _table(["run", "benchmark", "problems", "k", "avg@k", "95% CI", "pass@k", "unparsable answers"], rows,
                  "avg@k: share of correct answers, k per problem; pass@k: unbiased estimate (Chen et al. 2021); "
                  "paper average: the mean of the five benchmarks' avg@k.")


def _by_stage(samples: list[dict]) -> dict[str, dict]:
    stages = defaultdict(dict)
    for row in samples:
        stages[row.get("stage")][row.get("sample_id")] = row
    return stages


def _mean(values) -> float | None:
    values = [v for v in (to_float(x) for x in values) if v is not None]
    return sum(values) / len(values) if values else None


def _sample_tables(run: Run, top_k: int) -> str:
    if not run.samples:
        return _no_data(f"{SAMPLES_FILE} is not in this run directory.")
    stages = _by_stage(run.samples)
    start, end = stages.get("start", {}), stages.get("end", {})
    stage = "end" if end else "start"
    ranked = sorted(
        (r for r in (end or start).values() if to_float(r.get("weight")) is not None),
        key=lambda r: (to_float(r["weight"]), to_float(r.get("compatibility")) or 0.0),
    )
    has_kind = any("kind" in r for r in run.samples)
    headers = ["#", "sample", *(["kind"] if has_kind else []), "weight start", "weight end", "compat start",
               "compat end", "tokens", "prompt", "completion"]
    rows = []
    for rank, row in enumerate(ranked[:top_k], 1):
        sid = row.get("sample_id")
        s, t = start.get(sid, {}), end.get(sid, {})
        rows.append([rank, sid, *([row.get("kind")] if has_kind else []), to_float(s.get("weight")),
                     to_float(t.get("weight")), to_float(s.get("compatibility")), to_float(t.get("compatibility")),
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
    accepted.sort(key=lambda r: (to_float(r.get("step")) or 0, to_float(r.get("sample_id")) or 0))
    parts.append("<h4>Accepted rewrites</h4>")
    if not run.rewrites:
        parts.append(_no_data(f"{REWRITES_FILE} is not in this run directory."))
    elif not accepted:
        parts.append(_no_data(f"none of the {len(run.rewrites)} rewrite attempts was accepted."))
    else:
        shown = accepted[:max_rewrites]
        rows = []
        for r in shown:
            rows.append([r.get("sample_id"), r.get("round"), r.get("step"), to_float(r.get("compat_before")),
                         to_float(r.get("compat_after")), gain(r), r.get("generator"), _text(r.get("original")),
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
    state = (f"training state from <code>{_e(source)}</code>" if run.state_file.name != SUITE_FILE
             else f"no training state: an evaluation ({_e(SUITE_FILE)}) only")
    return (
        f'<p class="muted">Directory <code>{_e(run.path.resolve())}</code>; {state}.</p>\n'
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
    anchors = [("summary", "Summary"), ("benchmarks", "Benchmarks"), ("curves", "Training curves"),
               ("rewriting", "Rewriting")]
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
        '<section id="benchmarks"><h2>Benchmarks</h2>',
        _benchmarks(runs),
        "</section>",
        '<section id="curves"><h2>Training curves</h2>',
        "<h3>Loss</h3>",
        _figure_html(figs["loss"], "Weighted training loss and token NLL over steps", "no run logged loss or nll."),
        "<h3>Compatibility</h3>",
        _figure_html(figs["compatibility"], "Compatibility p10, median and mean over steps",
                     "no run logged cadft/compat_* metrics."),
        "<h3>Sample weights</h3>",
        _figure_html(figs["weights"], "Mean and minimum sample weight, effective sample size, and the fraction of "
                     "rows down-weighted or clipped over steps",
                     "no run logged cadft/weight_*, cadft/downweighted_frac or cadft/clip_frac."),
        "<h3>Token loss</h3>",
        _figure_html(figs["token_loss"], "ASFT's KL to the reference model, EAFT's entropy gate and entropy over steps",
                     "no run logged asft/kl or eaft/* (loss_type 'asft' and 'eaft' log them)."),
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
