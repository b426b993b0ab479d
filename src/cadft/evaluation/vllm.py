"""The one vLLM path: loading a model into vLLM and asking it for completions.

    llm, tokenizer = load_vllm("runs/cadft", seed=0)
    texts = generate_vllm(llm, tokenizer, chat_prompts, Sampling(num_samples=4), seeds)  # per prompt, 4 texts

`cadft eval` (with and without `--benchmark`) and the rewriting's `vllm:` generator
generate through `generate_vllm`. What vLLM is asked is built by `vllm_request` without
importing vLLM (so it is tested on any machine): the prompts are the token ids the
transformers backend generates from (the same chat template, no second BOS), and each
prompt gets the sampling parameters and, when `seeds` are given, a seed of its own, so
that a resumed benchmark run asks vLLM for exactly what the interrupted one asked.
Without seeds the engine's own seed (`load_vllm(seed=...)`) decides. top-k is left at
vLLM's default, off, as on the transformers path.
"""

from __future__ import annotations

import logging

__all__ = ["generate_vllm", "load_vllm", "sampling_kwargs", "vllm_available", "vllm_request"]

logger = logging.getLogger(__name__)


def vllm_available() -> bool:
    """True when vLLM imports and a CUDA GPU is present (vLLM's GPU path)."""
    try:
        import torch
        import vllm  # noqa: F401
    except ImportError:
        return False
    return torch.cuda.is_available()


def load_vllm(name_or_path: str, *, seed: int = 0, **llm_kwargs):
    """(vllm.LLM, tokenizer) for `embedded`, a model folder or a hub name. A PEFT
    adapter folder is merged into its base model, in a temporary folder, first.
    `llm_kwargs` go to `vllm.LLM` (e.g. gpu_memory_utilization beside a training model)."""
    import tempfile
    from pathlib import Path

    from transformers import AutoTokenizer
    from vllm import LLM

    from ..model.loading import load_model_and_tokenizer, resolve_model_path

    path = resolve_model_path(name_or_path)
    if (Path(path) / "adapter_config.json").is_file():
        model, tokenizer = load_model_and_tokenizer(path)
        path = tempfile.mkdtemp(prefix="cadft-merged-")
        logger.warning("Merging the LoRA adapter into its base model in %s for vLLM.", path)
        model.merge_and_unload().save_pretrained(path)
        tokenizer.save_pretrained(path)
        del model
    tokenizer = AutoTokenizer.from_pretrained(path)
    return LLM(model=path, seed=seed, **llm_kwargs), tokenizer


def sampling_kwargs(sampling, seed: int | None = None) -> dict:
    """The `vllm.SamplingParams` keyword arguments of one prompt (`sampling`: a `Sampling`)."""
    kwargs = {
        "n": sampling.num_samples,
        "temperature": sampling.temperature,
        "top_p": sampling.top_p,
        "max_tokens": sampling.max_new_tokens,
    }
    return kwargs if seed is None else {**kwargs, "seed": seed}


def vllm_request(tokenizer, prompts: list, sampling, seeds: list[int] | None = None) -> tuple[list[dict], list[dict]]:
    """([{"prompt_token_ids": ids}, ...], [SamplingParams kwargs, ...]), one of each per prompt."""
    from ..model.generation import encode_prompts

    if seeds is not None and len(seeds) != len(prompts):
        raise ValueError(f"need one seed per prompt, got {len(seeds)} seeds for {len(prompts)} prompts")
    token_prompts = [{"prompt_token_ids": ids} for ids in encode_prompts(tokenizer, prompts)]
    return token_prompts, [sampling_kwargs(sampling, seed) for seed in (seeds or [None] * len(prompts))]


def generate_vllm(llm, tokenizer, prompts: list, sampling, seeds: list[int] | None = None, *,
                  progress: bool = False) -> list[list[str]]:
    """Per prompt, its `sampling.num_samples` generated texts; `progress` shows vLLM's bar."""
    from vllm import SamplingParams

    token_prompts, params = vllm_request(tokenizer, prompts, sampling, seeds)
    outputs = llm.generate(token_prompts, [SamplingParams(**p) for p in params], use_tqdm=progress)
    return [[choice.text for choice in output.outputs] for output in outputs]
