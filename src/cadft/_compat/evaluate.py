"""Moved: the evaluation of one problems file lives in `cadft.evaluation.evaluate`, the vLLM
path in `cadft.evaluation.vllm`, the metrics in `cadft.evaluation.metrics`. This module keeps
the old import path `cadft.evaluate` working."""

from ..data.problems import MathProblem, math_problems
from ..evaluation.backends import BACKENDS
from ..evaluation.evaluate import evaluate_math, math_prompt
from ..evaluation.metrics import pass_at_k, wilson_interval
from ..evaluation.vllm import generate_vllm, load_vllm, vllm_available

__all__ = ["BACKENDS", "MathProblem", "evaluate_math", "generate_vllm", "load_vllm", "math_problems", "math_prompt",
           "pass_at_k", "vllm_available", "wilson_interval"]
