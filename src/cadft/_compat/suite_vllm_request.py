"""Moved to `cadft.evaluation.vllm` (the one vLLM path); this module keeps the old import path working."""

from ..evaluation.vllm import generate_vllm, sampling_kwargs, vllm_request

__all__ = ["generate_vllm", "sampling_kwargs", "vllm_request"]
