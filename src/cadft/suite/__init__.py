"""Moved: the papers' evaluation suite lives in `cadft.evaluation` (`benchmarks`, `grading`,
`metrics`, `results`, `suite`, `vllm`). The modules here keep the old import paths
`cadft.suite.benchmarks`, `.grading`, `.metrics` and `.vllm_request` working."""
