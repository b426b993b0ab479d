"""Which tokens of a conversation are the assistant's: the demonstration c measures.

A `messages` row trained on the whole conversation has trainable system and user tokens,
but the model is asked to produce only the assistant turns, so compatibility (and the
audit of `cadft score`) is measured over those. Turn k's tokens are found by rendering
the conversation up to turn k with and without it, the way TRL finds a completion: the
tokens between where `messages[:k]` + generation prompt and `messages[:k+1]` stop being
prefixes of the whole rendering.
"""

from __future__ import annotations

__all__ = ["chat_ids", "common_prefix_length", "assistant_token_mask"]


def chat_ids(tokenizer, messages: list[dict], **kwargs) -> list[int]:
    out = tokenizer.apply_chat_template(messages, tokenize=True, return_dict=True, **kwargs)
    return list(out["input_ids"])


def common_prefix_length(a: list[int], b: list[int]) -> int:
    n = 0
    for x, y in zip(a, b):
        if x != y:
            break
        n += 1
    return n


def assistant_token_mask(tokenizer, messages: list[dict], **template_kwargs) -> tuple[list[int], list[int]]:
    """(input_ids, mask) of the rendered conversation, mask 1 on assistant-turn tokens.

    Example: for [system, user, assistant] the mask covers the assistant's content and
    its end-of-turn tokens, not the system prompt, the user turn or the generation prompt.
    """
    full = chat_ids(tokenizer, messages, **template_kwargs)
    mask = [0] * len(full)
    for k, message in enumerate(messages):
        if message.get("role") != "assistant":
            continue
        start = common_prefix_length(chat_ids(tokenizer, messages[:k], add_generation_prompt=True, **template_kwargs)
                                     if k else [], full)
        end = common_prefix_length(chat_ids(tokenizer, messages[: k + 1], **template_kwargs), full)
        if k == len(messages) - 1:
            end = len(full)  # the template's closing tokens end the last turn
        for t in range(start, end):
            mask[t] = 1
    return full, mask
