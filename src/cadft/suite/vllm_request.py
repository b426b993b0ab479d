"""What the vLLM backend asks for, built without importing vLLM (so it is tested on any machine).

    prompts, params = vllm_request(tokenizer, chat_prompts, sampling, seeds)
    llm.generate(prompts, [SamplingParams(**p) for p in params])

The prompts are the token ids the transformers backend generates from (the same chat
template, no second BOS), and each problem gets the run's sampling parameters and a seed
of its own, so that a resumed run asks vLLM for exactly what the interrupted one asked.
top-k is left at vLLM's default, off, as on the transformers path.
"""

from __future__ import annotations

__all__ = ["generate_vllm", "sampling_kwargs", "vllm_request"]


def sampling_kwargs(sampling, seed: int) -> dict:
    """The `vllm.SamplingParams` keyword arguments of one problem."""
    return {
        "n": sampling.num_samples,
        "temperature": sampling.temperature,
        "top_p": sampling.top_p,
        "max_tokens": sampling.max_new_tokens,
        "seed": seed,
    }


def vllm_request(tokenizer, prompts: list, sampling, seeds: list[int]) -> tuple[list[dict], list[dict]]:
    """([{"prompt_token_ids": ids}, ...], [SamplingParams kwargs, ...]), one of each per prompt."""
    from ..generation import encode_prompts

    if len(seeds) != len(prompts):
        raise ValueError(f"need one seed per prompt, got {len(seeds)} seeds for {len(prompts)} prompts")
    token_prompts = [{"prompt_token_ids": ids} for ids in encode_prompts(tokenizer, prompts)]
    return token_prompts, [sampling_kwargs(sampling, seed) for seed in seeds]


def generate_vllm(llm, tokenizer, prompts: list, sampling, seeds: list[int]) -> list[list[str]]:
    """Per prompt, its `num_samples` generated texts."""
    from vllm import SamplingParams

    token_prompts, params = vllm_request(tokenizer, prompts, sampling, seeds)
    outputs = llm.generate(token_prompts, [SamplingParams(**p) for p in params], use_tqdm=False)
    return [[choice.text for choice in output.outputs] for output in outputs]
