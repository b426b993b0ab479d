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

Modules: `runs` (reading run directories), `figures` (matplotlib), `document` (the HTML).
"""

from .document import render_report, write_report
from .figures import figures
from .runs import ReportError, Run, load_run, rewrite_rounds

__all__ = ["ReportError", "Run", "figures", "load_run", "render_report", "rewrite_rounds", "write_report"]
