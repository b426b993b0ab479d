"""The real-model study (issues #9 and #20): CADFT on SmolLM2-135M-Instruct (or any causal LM)
with heterogeneous GSM8K-derived demonstrations. Writes docs/real-model.md.

    python -m experiments.real --smoke    # run.py's docstring has every command

    run.py       the parts (kinds, a, b) and the page
    data.py      the data kinds, built without a model (python -m experiments.real.data --out DIR)
    kinds.py     compatibility of each kind at the base model
    part_a.py    the estimator at the base and mid-training: per-sample LoRA gradients
    part_b.py    short LoRA training of the study's methods of experiments/methods.py
    report.py, report_variance.py: the page; common.py, prompts.py: model loading, general prompts
"""
