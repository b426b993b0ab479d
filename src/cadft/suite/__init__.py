"""The papers' evaluation suite: Math500, Minerva, OlympiadBench, AIME24 and AMC23 with
avg@k sampling (`cadft eval --benchmark paper`, docs/eval.md).

Modules: `benchmarks` (files, reference answers, prompts), `grading` (math-verify),
`metrics` (avg@k, its interval, pass@k, the suite average), `results` (the resumable
per-problem results file), `run` (generation and the summary), `vllm_request` (what the
vLLM backend is asked). Importing this package loads neither torch nor math-verify.
"""
