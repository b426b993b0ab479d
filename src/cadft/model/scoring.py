"""Per-sample compatibility of demonstrations under a model, outside training.

Scoring runs the model once per batch without gradients (`sharding.no_grad_mode`) and projects onto the
vocabulary only the positions that predict a completion token, never a (B, T, V) tensor of
logits. Rows are sorted by length and a batch takes only rows of similar length (length
bucketing), so padding, which costs as much compute as real tokens, stays under 10%.

    rows = [tokenize_demonstration(tokenizer, example) for example in dataset]
    scores = score_rows(model, rows, pad_token_id=tokenizer.pad_token_id)

The LM head differs by device. On CUDA/XPU it is TRL's fused head, which scores only the
label positions (a Triton kernel). Elsewhere (CPU) TRL's head scores every position, the
prompt and the padding included, in passes over (4096, 32768) float32 tiles; there the
model's own forward with a boolean `logits_to_keep` mask computes the logits of the label
positions only, (N, V), and a float32 log-softmax turns them into log-probabilities. Both
give the same values to float tolerance (tests/test_score.py checks it); see
benchmarks/README.md for the speed.
"""

from __future__ import annotations

import sys

import torch
from tqdm.auto import tqdm
from trl.trainer.utils import add_fused_lm_head

from ..data.conversation import assistant_token_mask, chat_ids
from ..losses import compatibility, mean_logprob
from .sharding import no_grad_mode, zero3_partitioned

__all__ = ["ensure_fused_lm_head", "mark_fused_lm_head", "tokenize_demonstration", "label_logprobs", "score_rows",
           "score_rows_sharded"]

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


def tokenize_demonstration(tokenizer, example: dict, *, max_length: int | None = None) -> dict:
    """input_ids and labels (-100 off the completion) of one demonstration, built the way
    TRL's SFTTrainer builds them (completion-only loss for prompt-completion data).

    Formats: prompt + completion (strings or message lists), messages (the last
    assistant message is the completion), text (every token counts).
    """
    if "prompt" in example and "completion" in example:
        prompt, completion = example["prompt"], example["completion"]
        if isinstance(prompt, list):
            prompt_ids = chat_ids(tokenizer, prompt, add_generation_prompt=True)
            full_ids = chat_ids(tokenizer, prompt + completion)
        else:
            eos = tokenizer.eos_token or ""
            completion = completion if completion.endswith(eos) else completion + eos
            prompt_ids = tokenizer(prompt)["input_ids"]
            full_ids = tokenizer(prompt + completion)["input_ids"]
        start = 0
        while start < min(len(prompt_ids), len(full_ids)) and prompt_ids[start] == full_ids[start]:
            start += 1
        labels = [-100] * start + full_ids[start:]
    elif "conversations" in example:  # ShareGPT: from/value turns
        roles = {"human": "user", "user": "user", "gpt": "assistant", "assistant": "assistant", "system": "system"}
        messages = [{"role": roles.get(t["from"], t["from"]), "content": t["value"]} for t in example["conversations"]]
        return tokenize_demonstration(tokenizer, {"messages": messages}, max_length=max_length)
    elif "messages" in example:
        # The assistant turns, as the trainer measures c on a conversation (cadft.data.conversation)
        messages = example["messages"]
        if not messages or messages[-1].get("role") != "assistant":
            raise ValueError("a `messages` demonstration must end with an assistant message")
        full_ids, mask = assistant_token_mask(tokenizer, messages)
        labels = [t if m else -100 for t, m in zip(full_ids, mask)]
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


# A batch closes before a row that would be padded by more than this fraction of the batch's
# width: padded positions cost the backbone as much as real ones, and on a CPU batching
# itself saves nothing (the per-token cost of the matrix products does not fall with batch
# size), while on a GPU rows sorted by length rarely hit the limit.
MAX_PADDING = 0.1

# TRL's fused head scores only the label positions on these device types (Triton kernels)
_COMPACT_FUSED_HEAD_DEVICES = ("cuda", "xpu")

# Positions per float32 log-softmax on the other devices: 1024 x a 50k vocabulary is 200 MB
_LOG_SOFTMAX_CHUNK = 1024


def _length_batches(lengths: list[int], batch_size: int) -> list[list[int]]:
    """Row indices grouped into batches of similar length, longest first: at most
    `batch_size` rows each, none padded by more than MAX_PADDING of its batch's width."""
    order = sorted(range(len(lengths)), key=lambda i: lengths[i], reverse=True)
    batches: list[list[int]] = []
    for i in order:
        current = batches[-1] if batches else None
        if current and len(current) < batch_size and lengths[i] >= (1 - MAX_PADDING) * lengths[current[0]]:
            current.append(i)
        else:
            batches.append([i])
    return batches


def _fixed_batches(lengths: list[int], batch_size: int) -> list[list[int]]:
    """Row indices sorted longest first, in batches of exactly `batch_size` (the last one
    smaller): ceil(n / batch_size) batches for n rows, whatever their lengths."""
    order = sorted(range(len(lengths)), key=lambda i: lengths[i], reverse=True)
    return [order[start : start + batch_size] for start in range(0, len(order), batch_size)]


def _takes_position_mask(model) -> bool:
    """Whether `model(..., logits_to_keep=mask)` with a boolean (B, T) mask returns the logits
    of exactly those positions, (N, V). transformers' decoder LMs slice their hidden states
    with `slice_logits_to_keep`, which does so in recent versions."""
    slicer = getattr(sys.modules.get(type(_base(model)).__module__), "slice_logits_to_keep", None)
    if slicer is None:
        return False
    try:
        return tuple(slicer(torch.zeros(1, 2, 1), torch.tensor([[True, False]])).shape) == (1, 1)
    except (IndexError, RuntimeError, TypeError):
        return False


def label_logprobs(model, input_ids, attention_mask, labels, *, tiled: bool = False,
                   **model_kwargs) -> tuple[torch.Tensor, torch.Tensor]:
    """Log-probabilities of the next-token labels and their mask, both (B, T-1), without
    gradients' need for the whole vocabulary at every position: TRL's fused head on CUDA/XPU
    (label positions only), elsewhere the logits of the label positions alone (a boolean
    `logits_to_keep`) and a chunked float32 log-softmax. The log-probs are float and 0 off
    the mask. `model_kwargs` (e.g. a padding-free batch's `position_ids`) go to the model.

    `tiled=True` takes TRL's fused head on every device: its vocabulary tiles bound the
    memory (`cadft.model.vocab_tiles`), where the `logits_to_keep` path holds the logits of every
    label position at once, (N, V), but on a CPU the head also scores every position. The
    earlier estimator's calibration, a one-time pass, takes it; the per-step pre-pass
    takes the faster path.

    Under DeepSpeed ZeRO-3 it is always TRL's fused head, the training forward's own path.
    ZeRO-3 records the order in which a forward runs the submodules (its trace) and
    prefetches and releases parameters by it. The `logits_to_keep` path runs `lm_head` as a
    module, the fused head reads `lm_head.weight` inside a gather of its own; a no-grad pass
    by the former before a training step left the head's weight released (size 0) in that
    step's backward (tests/test_deepspeed.py)."""
    device = input_ids.device
    fused = tiled or device.type in _COMPACT_FUSED_HEAD_DEVICES or zero3_partitioned(model)
    if fused or not _takes_position_mask(model):
        out = model(
            input_ids=input_ids, attention_mask=attention_mask, labels=labels, fused_lm_head=True, use_cache=False,
            **model_kwargs,
        )
        return out.log_probs, out.label_mask
    target = labels[:, 1:]  # (B, T-1)
    mask = target != -100  # (B, T-1)
    logps = torch.zeros(mask.shape, dtype=torch.float32, device=device)
    if not mask.any():
        return logps, mask
    keep = torch.nn.functional.pad(mask, (0, 1))  # (B, T): positions whose next token is a label
    logits = model(input_ids=input_ids, attention_mask=attention_mask, logits_to_keep=keep, use_cache=False,
                   **model_kwargs).logits
    picked = target[mask]  # (N,)
    if logits.shape[:-1] != picked.shape:
        raise RuntimeError(f"{type(_base(model)).__name__} ignored logits_to_keep: logits {tuple(logits.shape)}")
    values = torch.empty(picked.shape, dtype=torch.float32, device=device)  # (N,)
    for start in range(0, len(picked), _LOG_SOFTMAX_CHUNK):  # a float32 copy of one chunk, not of all N x V
        end = start + _LOG_SOFTMAX_CHUNK
        chunk = torch.log_softmax(logits[start:end].float(), dim=-1)  # (n, V)
        values[start:end] = chunk.gather(-1, picked[start:end, None]).squeeze(-1)
    logps[mask] = values
    return logps, mask


def score_rows(
    model,
    rows: list[dict],
    *,
    pad_token_id: int,
    batch_size: int = 16,
    progress: bool = True,
    desc: str = "Scoring",
    fixed_batches: bool = False,
) -> list[dict]:
    """Score tokenized rows ({"input_ids", "labels"}); returns, in input order, one dict
    per row: num_tokens, mean_logprob and compatibility (0 and 0.0 for a row with no
    trainable token).

    `fixed_batches=True` runs exactly ceil(len(rows) / batch_size) forwards, whatever the
    lengths (rows still sorted by length), instead of closing a batch early to limit
    padding: the same count on every process, which a sharded model needs."""
    ensure_fused_lm_head(model)
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    lengths = [len(row["input_ids"]) for row in rows]
    batches = _fixed_batches(lengths, batch_size) if fixed_batches else _length_batches(lengths, batch_size)
    results: list[dict | None] = [None] * len(rows)
    try:
        with no_grad_mode(model), tqdm(total=len(rows), desc=desc, unit="row", disable=not progress) as bar:
            for idx in batches:
                width = len(rows[idx[0]]["input_ids"])  # the longest row comes first
                input_ids = torch.full((len(idx), width), pad_token_id, dtype=torch.long)
                labels = torch.full((len(idx), width), -100, dtype=torch.long)
                attention_mask = torch.zeros((len(idx), width), dtype=torch.long)
                for b, i in enumerate(idx):
                    n = len(rows[i]["input_ids"])
                    input_ids[b, :n] = torch.tensor(rows[i]["input_ids"])
                    labels[b, :n] = torch.tensor(rows[i]["labels"])
                    attention_mask[b, :n] = 1
                # Without padding, no mask: attention takes its causal fast path
                padded = bool((attention_mask == 0).any())
                logps, mask = label_logprobs(
                    model,
                    input_ids.to(device),
                    attention_mask.to(device) if padded else None,
                    labels.to(device),
                )
                compat = compatibility(logps, mask).cpu()
                num_tokens = mask.sum(-1).cpu()
                mean_logp = mean_logprob(logps, mask)[0].cpu()  # floored like the loss's: never -inf
                for b, i in enumerate(idx):
                    results[i] = {
                        "num_tokens": int(num_tokens[b]),
                        "mean_logprob": float(mean_logp[b]),
                        "compatibility": float(compat[b]),
                    }
                bar.update(len(idx))
    finally:
        model.train(was_training)
    return results


def score_rows_sharded(
    model, rows: list[dict], *, world: int, rank: int, gather, pad_token_id: int, batch_size: int = 16,
    progress: bool = True, desc: str = "Scoring",
) -> list[dict]:
    """`score_rows` as a collective: every process passes the same `rows` and gets every
    row's score back, in input order; each scores an equal share.

    Rows are sorted by length before they are shared out (a process's share holds rows of
    similar length), every share has the same size (`rank_shard` pads with a repeated row,
    scored and dropped) and is scored in fixed batches, so every process runs the same
    number of forwards: under FSDP or DeepSpeed ZeRO-3 each forward gathers the parameters
    from every process. `gather(list) -> list` concatenates the processes' lists in rank
    order (`accelerate.utils.gather_object`)."""
    if world == 1:
        return score_rows(model, rows, pad_token_id=pad_token_id, batch_size=batch_size, progress=progress, desc=desc)
    from .sharding import rank_shard

    order = sorted(range(len(rows)), key=lambda i: len(rows[i]["input_ids"]), reverse=True)
    shard, real = rank_shard(order, world, rank)
    scores = score_rows(
        model, [rows[i] for i in shard], pad_token_id=pad_token_id, batch_size=batch_size,
        progress=progress, desc=desc, fixed_batches=True,
    )
    gathered = gather([(i, score) for i, score, is_real in zip(shard, scores, real) if is_real])
    results: list[dict | None] = [None] * len(rows)
    for i, score in gathered:
        results[i] = score
    if any(score is None for score in results):
        raise RuntimeError("score_rows_sharded: a row was scored by no process (the processes passed different rows?)")
    return results
