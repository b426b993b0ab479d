"""The project's experiments: one framework and two studies on it. Run from the repository
root, as modules:

    python -m experiments.testbed --smoke    # the controlled testbed: docs/results.md
    python -m experiments.real --smoke       # the real-model study: docs/real-model.md

The framework (a study imports it; it imports no study):

    methods.py   the method table: every method a study trains, as CADFTConfig fields
    runner.py    worker processes, jobs run once and reused, JSON, where a result came from
    page.py      a page: Markdown tables, number and interval formats, figures
    stats.py     t-intervals, paired differences, spikes, quantiles
    variance.py  the variance assumption's measurements (both studies)

The studies: testbed/ and real/ (each: run.py, the runs, report.py, its page). The testbed's
data stays here: decision_rule.md, discussion.md, results/, replication/.
"""
