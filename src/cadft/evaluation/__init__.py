"""Evaluating a model on math problems: `cadft eval`, with and without `--benchmark` (docs/eval.md).

Modules, bottom up:

- `grading`: the one grader, `grade(candidate, reference)`, math-verify with timeouts;
  also the rewriting's `math` verifier (`cadft.evaluation.verifiers`).
- `metrics`: accuracy and avg@k with their intervals, pass@k, the suite average (pure).
- `sampling`: `Sampling`, the generation protocol (samples, temperature, top_p, tokens, seed).
- `vllm`: the one vLLM path (`load_vllm`, `generate_vllm`, and `vllm_request`, what vLLM is asked).
- `backends`: choosing transformers or vLLM, and loading the model for it.
- `evaluate`: one file of GSM8K or MATH problems (`evaluate_math`, `cadft eval --dataset_path`).
- `benchmarks`, `results`, `suite`: the papers' five benchmarks, the resumable results
  file, and generating, grading and summarising a benchmark run (`cadft eval --benchmark`).

Importing this package loads nothing (no torch, no math-verify); each module loads what it
needs. The command-line layer is `cadft.cli.eval` and `cadft.cli.eval_suite`.
"""
