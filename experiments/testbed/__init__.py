"""The controlled testbed (issue #20): a tiny Llama pre-trained on synthetic arithmetic, then
fine-tuned by every arm of the method table on controlled mixtures of native, foreign and wrong
demonstrations. Writes docs/results.md (the replication: docs/replication/results.md).

    python -m experiments.testbed --smoke    # run.py's docstring has every command

    run.py       the phases: base policy, learning-rate grid, test runs, GRPO, the page
    training.py  one fine-tuning run, its probes, the base policy, GRPO
    task.py      the synthetic task and its demonstration kinds
    arms.py      the testbed's methods of experiments/methods.py as RunConfig fields
    instruments.py, records.py, decision.py, report.py, plots.py: measuring and the page
"""
