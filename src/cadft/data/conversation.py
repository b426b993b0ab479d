"""Which tokens of a conversation are the assistant's: the demonstration c measures.

A `messages` row trained on the whole conversation has trainable system and user tokens,
but the model is asked to produce only the assistant turns, so compatibility (and the
audit of `cadft score`) is measured over those. Turn k's tokens are found by rendering
the conversation up to turn k with and without it, the way TRL finds a completion: the
tokens between where `messages[:k]` + generation prompt and `messages[:k+1]` stop being
prefixes of the whole rendering, up to the end-of-turn token; or, where the template marks
them, the template's own assistant mask (what TRL's `assistant_only_loss` trains).
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

    A turn is what the model generates: its content and its end-of-turn token, not the
    system prompt, the user turns, the generation prompt or the template's text after the
    end-of-turn token (ChatML's newline). Where the chat template marks the assistant turns
    with `{% generation %}`, its own mask is used, the one TRL trains on with
    `assistant_only_loss`; elsewhere each turn is found by prefix rendering and ends at the
    tokenizer's EOS (the end-of-turn token) where one closes it.
    """
    from trl.chat_template_utils import has_generation_markers

    if tokenizer.chat_template and has_generation_markers(tokenizer.chat_template):
        out = tokenizer.apply_chat_template(messages, tokenize=True, return_dict=True,
                                            return_assistant_tokens_mask=True, **template_kwargs)
        if any(out["assistant_masks"]):
            return list(out["input_ids"]), list(out["assistant_masks"])
    full = chat_ids(tokenizer, messages, **template_kwargs)
    mask = [0] * len(full)
    eos = tokenizer.eos_token_id
    for k, message in enumerate(messages):
        if message.get("role") != "assistant":
            continue
        start = common_prefix_length(chat_ids(tokenizer, messages[:k], add_generation_prompt=True, **template_kwargs)
                                     if k else [], full)
        end = common_prefix_length(chat_ids(tokenizer, messages[: k + 1], **template_kwargs), full)
        if k == len(messages) - 1:
            end = len(full)  # the template's closing tokens end the last turn
        closing = [t for t in range(start, end) if full[t] == eos]
        if closing:
            end = closing[0] + 1  # the end-of-turn token is the last one the model generates
        for t in range(start, end):
            mask[t] = 1
    return full, mask
