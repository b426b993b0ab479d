"""Per-sample compatibility of demonstrations under a model, outside training.

Scoring runs the model once per batch under `torch.inference_mode()` through TRL's fused
LM head (no (B, T, V) logits), on rows sorted by length so that each batch holds rows of
similar length (length bucketing: little padding, so little wasted compute).

    rows = [tokenize_demonstration(tokenizer, example) for example in dataset]
    scores = score_rows(model, rows, pad_token_id=tokenizer.pad_token_id)
"""

from __future__ import annotations

import torch
from tqdm.auto import tqdm
from trl.trainer.utils import add_fused_lm_head

from .losses import compatibility

__all__ = ["ensure_fused_lm_head", "mark_fused_lm_head", "tokenize_demonstration", "score_rows"]

_MARK = "_cadft_fused_lm_head"


def _base(model):
    return model.get_base_model() if hasattr(model, "get_base_model") else model


def mark_fused_lm_head(model) -> None:
    """Record that `model` already has a fused LM head (e.g. the one `SFTTrainer` adds)."""
    setattr(_base(model), _MARK, True)


def ensure_fused_lm_head(model) -> None:
    """Install TRL's fused LM head on `model` (its base model under PEFT) unless present.

    Installing twice would replace the first head's extra outputs (entropy, top-1)."""
    base = _base(model)
    if not getattr(base, _MARK, False):
        add_fused_lm_head(base, outputs=("log_probs",))
        setattr(base, _MARK, True)


def _chat_ids(tokenizer, messages, **kwargs) -> list[int]:
    out = tokenizer.apply_chat_template(messages, tokenize=True, return_dict=True, **kwargs)
    return list(out["input_ids"])


def tokenize_demonstration(tokenizer, example: dict, *, max_length: int | None = None) -> dict:
    """input_ids and labels (-100 off the completion) of one demonstration, built the way
    TRL's SFTTrainer builds them (completion-only loss for prompt-completion data).

    Formats: prompt + completion (strings or message lists), messages (the last
    assistant message is the completion), text (every token counts).
    """
    if "prompt" in example and "completion" in example:
        prompt, completion = example["prompt"], example["completion"]
        if isinstance(prompt, list):
            prompt_ids = _chat_ids(tokenizer, prompt, add_generation_prompt=True)
            full_ids = _chat_ids(tokenizer, prompt + completion)
        else:
            eos = tokenizer.eos_token or ""
            completion = completion if completion.endswith(eos) else completion + eos
            prompt_ids = tokenizer(prompt)["input_ids"]
            full_ids = tokenizer(prompt + completion)["input_ids"]
        start = 0
        while start < min(len(prompt_ids), len(full_ids)) and prompt_ids[start] == full_ids[start]:
            start += 1
        labels = [-100] * start + full_ids[start:]
    elif "messages" in example:
        messages = example["messages"]
        if not messages or messages[-1].get("role") != "assistant":
            raise ValueError("a `messages` demonstration must end with an assistant message")
        return tokenize_demonstration(
            tokenizer, {"prompt": messages[:-1], "completion": messages[-1:]}, max_length=max_length
        )
    elif "text" in example:
        eos = tokenizer.eos_token or ""
        text = example["text"] if example["text"].endswith(eos) else example["text"] + eos
        full_ids = tokenizer(text)["input_ids"]
        labels = list(full_ids)
    else:
        raise ValueError(f"cannot score a row with columns {sorted(example)}")
    if max_length is not None:
        full_ids, labels = full_ids[:max_length], labels[:max_length]
    return {"input_ids": list(full_ids), "labels": labels}


@torch.inference_mode()
def score_rows(
    model,
    rows: list[dict],
    *,
    pad_token_id: int,
    batch_size: int = 16,
    progress: bool = True,
    desc: str = "Scoring",
) -> list[dict]:
    """Score tokenized rows ({"input_ids", "labels"}); returns, in input order, one dict
    per row: num_tokens, mean_logprob and compatibility (0 and 0.0 for a row with no
    trainable token)."""
    ensure_fused_lm_head(model)
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    order = sorted(range(len(rows)), key=lambda i: len(rows[i]["input_ids"]), reverse=True)
    results: list[dict | None] = [None] * len(rows)
    try:
        for start in tqdm(range(0, len(order), batch_size), desc=desc, disable=not progress):
            idx = order[start : start + batch_size]
            width = max(len(rows[i]["input_ids"]) for i in idx)
            input_ids = torch.full((len(idx), width), pad_token_id, dtype=torch.long)
            labels = torch.full((len(idx), width), -100, dtype=torch.long)
            attention_mask = torch.zeros((len(idx), width), dtype=torch.long)
            for b, i in enumerate(idx):
                n = len(rows[i]["input_ids"])
                input_ids[b, :n] = torch.tensor(rows[i]["input_ids"])
                labels[b, :n] = torch.tensor(rows[i]["labels"])
                attention_mask[b, :n] = 1
            out = model(
                input_ids=input_ids.to(device),
                attention_mask=attention_mask.to(device),
                labels=labels.to(device),
                fused_lm_head=True,
                use_cache=False,
            )
            mask = out.label_mask
            compat = compatibility(out.log_probs, mask).cpu()
            num_tokens = mask.sum(-1).cpu()
            mean_logp = (torch.where(mask, out.log_probs.float(), 0.0).sum(-1).cpu() / num_tokens.clamp(min=1))
            for b, i in enumerate(idx):
                results[i] = {
                    "num_tokens": int(num_tokens[b]),
                    "mean_logprob": float(mean_logp[b]),
                    "compatibility": float(compat[b]),
                }
    finally:
        model.train(was_training)
    return results
