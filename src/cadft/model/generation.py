"""Batched generation with a Hugging Face causal LM (or a PEFT model around one).

    prompts = [[{"role": "user", "content": "What is 2 + 2?"}], "Q: What is 3 + 4?\\nA:"]
    outputs = generate(model, tokenizer, prompts, max_new_tokens=64)
    outputs[0][0]  # the new text of the first prompt's only sequence

Prompts are sorted by length so that each batch holds prompts of similar length, padded
on the LEFT (so every prompt ends in the same column and new tokens are appended right
after it), generated with the KV cache, and returned in the caller's order. Greedy
decoding when temperature == 0, otherwise pure temperature / top-p sampling (top-k is
off, as in vLLM). The model runs in eval mode without gradients (`torch.inference_mode()`,
`torch.no_grad()` under DeepSpeed ZeRO-3: `sharding.no_grad_mode`), and each
module's training flag is restored afterwards, so the trainer can call this mid-run.
"""

from __future__ import annotations

import copy

import torch
from tqdm.auto import tqdm

from .sharding import no_grad_mode

__all__ = ["encode_prompts", "generate"]


def encode_prompts(tokenizer, prompts) -> list[list[int]]:
    """Token ids of each prompt.

    A chat prompt (a list of `{"role", "content"}` messages) goes through the tokenizer's
    chat template with the generation prompt appended; a plain string is tokenized as
    it is (with the tokenizer's usual special tokens, e.g. BOS).
    """
    encoded = []
    for i, prompt in enumerate(prompts):
        if isinstance(prompt, str):
            encoded.append(tokenizer(prompt)["input_ids"])
        elif isinstance(prompt, list) and all(isinstance(m, dict) for m in prompt):
            if not getattr(tokenizer, "chat_template", None):
                raise ValueError(
                    f"prompt {i} is a list of chat messages but the tokenizer has no chat template; "
                    "pass plain-text prompts instead"
                )
            text = tokenizer.apply_chat_template(prompt, add_generation_prompt=True, tokenize=False)
            # The template already holds any BOS token: do not let the tokenizer add another
            encoded.append(tokenizer(text, add_special_tokens=False)["input_ids"])
        else:
            raise TypeError(f"prompt {i} must be a string or a list of message dicts, got {type(prompt).__name__}")
    return encoded


def _generation_config(model, tokenizer, pad_id, *, max_new_tokens, temperature, top_p, num_return_sequences):
    config = copy.deepcopy(model.generation_config)
    eos = config.eos_token_id
    eos = [] if eos is None else [eos] if isinstance(eos, int) else list(eos)
    if tokenizer.eos_token_id is not None and tokenizer.eos_token_id not in eos:
        eos.append(tokenizer.eos_token_id)  # chat models end a turn with the tokenizer's EOS
    sampling = temperature > 0
    config.update(
        max_new_tokens=max_new_tokens,
        do_sample=sampling,
        temperature=temperature if sampling else None,
        top_p=top_p if sampling else None,
        top_k=0 if sampling else None,  # transformers would otherwise default to top-k 50
        num_return_sequences=num_return_sequences,
        pad_token_id=pad_id,
        eos_token_id=eos or None,
        use_cache=True,
    )
    return config


def generate(
    model,
    tokenizer,
    prompts,
    *,
    max_new_tokens: int = 256,
    temperature: float = 0.0,
    top_p: float = 1.0,
    num_return_sequences: int = 1,
    batch_size: int = 8,
    progress: bool = True,
    synced_gpus: bool | None = None,
) -> list[list[str]]:
    """Generate `num_return_sequences` continuations of each prompt.

    Returns one list per prompt, in the order given, of the newly generated texts
    (prompt excluded, special tokens skipped). `synced_gpus=True`: every process calls
    this with the same number of prompts and keeps running forwards until all have
    finished each batch (the model's parameters are sharded: FSDP, ZeRO-3); None lets
    transformers decide.
    """
    if max_new_tokens < 1 or batch_size < 1 or num_return_sequences < 1:
        raise ValueError("max_new_tokens, batch_size and num_return_sequences must be >= 1")
    if temperature < 0 or not 0 < top_p <= 1:
        raise ValueError(f"need temperature >= 0 and 0 < top_p <= 1, got temperature={temperature}, top_p={top_p}")
    if temperature == 0 and num_return_sequences > 1:
        raise ValueError("greedy decoding (temperature=0) gives one sequence; use temperature > 0 for several")
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    if pad_id is None:
        raise ValueError("the tokenizer has neither a pad token nor an EOS token to pad with")

    encoded = encode_prompts(tokenizer, prompts)
    config = _generation_config(
        model,
        tokenizer,
        pad_id,
        max_new_tokens=max_new_tokens,
        temperature=temperature,
        top_p=top_p,
        num_return_sequences=num_return_sequences,
    )
    device = next(model.parameters()).device
    order = sorted(range(len(encoded)), key=lambda i: -len(encoded[i]))  # longest first: OOM shows up at once
    results: list[list[str] | None] = [None] * len(encoded)

    modes = {module: module.training for module in model.modules()}
    model.eval()
    try:
        with no_grad_mode(model), tqdm(total=len(encoded), desc="generate", disable=not progress) as bar:
            for start in range(0, len(order), batch_size):
                batch = order[start : start + batch_size]
                width = max(len(encoded[i]) for i in batch)
                input_ids = torch.full((len(batch), width), pad_id, dtype=torch.long)  # (B, T)
                attention_mask = torch.zeros((len(batch), width), dtype=torch.long)  # (B, T)
                for row, i in enumerate(batch):
                    ids = encoded[i]
                    input_ids[row, width - len(ids) :] = torch.tensor(ids)
                    attention_mask[row, width - len(ids) :] = 1
                output = model.generate(
                    input_ids=input_ids.to(device),
                    attention_mask=attention_mask.to(device),
                    generation_config=config,
                    synced_gpus=synced_gpus,
                )  # (B * num_return_sequences, T + new), sequences of one prompt adjacent
                texts = tokenizer.batch_decode(output[:, width:], skip_special_tokens=True)
                for row, i in enumerate(batch):
                    results[i] = texts[row * num_return_sequences : (row + 1) * num_return_sequences]
                bar.update(len(batch))
    finally:
        for module, training in modes.items():
            module.training = training
    return results
