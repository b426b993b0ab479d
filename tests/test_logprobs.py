"""Invariant 3: compatibility from the fused LM head equals a naive full-softmax reference."""

from __future__ import annotations

import pytest
import torch
from peft import LoraConfig, get_peft_model

from cadft import compatibility
from cadft.model.scoring import ensure_fused_lm_head, score_rows, tokenize_demonstration
from cadft.model.tiny import tiny_llama

from helpers import naive_label_logprobs


def batch_from(tok, demos, n=6):
    rows = [tokenize_demonstration(tok, demos[i]) for i in range(n)]
    width = max(len(r["input_ids"]) for r in rows)
    ids = torch.full((n, width), tok.pad_token_id)
    labels = torch.full((n, width), -100)
    attn = torch.zeros((n, width), dtype=torch.long)
    for i, r in enumerate(rows):
        k = len(r["input_ids"])
        ids[i, :k], labels[i, :k], attn[i, :k] = torch.tensor(r["input_ids"]), torch.tensor(r["labels"]), 1
    labels[-1] = -100  # one fully masked row
    return rows, ids, attn, labels


@pytest.mark.parametrize("dtype,tol", [(torch.float32, 1e-5), (torch.bfloat16, 2e-2)])
@pytest.mark.parametrize("tied", [False, True])
@pytest.mark.parametrize("lora", [False, True])
def test_fused_compatibility_equals_full_softmax(tok, demos, dtype, tol, tied, lora):
    model = tiny_llama(tok, tie_word_embeddings=tied, seed=1).to(dtype)
    ensure_fused_lm_head(model)
    if lora:
        model = get_peft_model(model, LoraConfig(r=4, target_modules=["q_proj", "v_proj"], init_lora_weights=False))
    _, ids, attn, labels = batch_from(tok, demos)
    with torch.no_grad():
        out = model(input_ids=ids, attention_mask=attn, labels=labels, fused_lm_head=True)
        ref_logps, ref_mask = naive_label_logprobs(model, ids, attn, labels)
    assert torch.equal(out.label_mask, ref_mask)
    got = compatibility(out.log_probs, out.label_mask)
    ref = torch.exp(ref_logps.sum(-1) / ref_mask.sum(-1).clamp(min=1)) * ref_mask.any(-1)
    torch.testing.assert_close(got, ref, rtol=tol, atol=tol)
    assert got[-1] == 0 and not got.isnan().any()


def test_score_rows_matches_reference_and_keeps_input_order(tok, demos):
    model = tiny_llama(tok, seed=2)
    rows, ids, attn, labels = batch_from(tok, demos)
    rows[-1] = {"input_ids": rows[-1]["input_ids"], "labels": [-100] * len(rows[-1]["input_ids"])}
    scores = score_rows(model, rows, pad_token_id=tok.pad_token_id, batch_size=4, progress=False)
    with torch.no_grad():
        ref_logps, ref_mask = naive_label_logprobs(model, ids, attn, labels)
    for i, s in enumerate(scores):
        n = int(ref_mask[i].sum())
        assert s["num_tokens"] == n
        if n:
            assert s["compatibility"] == pytest.approx(float(torch.exp(ref_logps[i].sum() / n)), rel=1e-5)
        else:
            assert s["compatibility"] == 0.0
    assert model.training  # restored


def test_tokenize_demonstration_masks_the_prompt(tok, demos):
    row = tokenize_demonstration(tok, demos[0])
    completion = demos[0]["completion"][0]["content"]
    trained = tok.decode([t for t, lab in zip(row["input_ids"], row["labels"]) if lab != -100])
    assert trained.startswith(completion) and "<|im_end|>" in trained
    assert demos[0]["prompt"][0]["content"] not in trained


def test_sharegpt_conversations_tokenize_like_messages(tok):
    messages = [{"role": "user", "content": "2+2?"}, {"role": "assistant", "content": "4"}]
    sharegpt = [{"from": "human", "value": "2+2?"}, {"from": "gpt", "value": "4"}]
    assert tokenize_demonstration(tok, {"conversations": sharegpt}) == tokenize_demonstration(tok, {"messages": messages})


def test_fused_head_equals_full_softmax_at_a_128k_vocabulary():
    """A 131,072-token vocabulary spans four of the fused head's 32,768-wide vocabulary tiles:
    the label log-probs, the CADFT loss and its gradients equal those of a float32 log-softmax
    over the full logits (benchmarks/loss_memory.py measures the memory this saves)."""
    from transformers import LlamaConfig, LlamaForCausalLM

    from cadft import cadft_loss

    config = LlamaConfig(vocab_size=131_072, hidden_size=16, intermediate_size=32, num_hidden_layers=1,
                         num_attention_heads=2, num_key_value_heads=2, max_position_embeddings=64)
    torch.manual_seed(0)
    model = LlamaForCausalLM(config)
    ensure_fused_lm_head(model)
    ids = torch.randint(0, config.vocab_size, (2, 12))
    labels = ids.clone()
    labels[:, :4] = -100  # a prompt
    labels[1, -1] = config.vocab_size - 1  # the last id of the last tile
    params = [model.lm_head.weight, model.model.embed_tokens.weight]

    def loss_and_grads(logps, mask):
        loss, stats = cadft_loss(logps, mask, beta=1.0, normalizer=1e-5, w_min=0.1, w_max=3.0)
        return loss, stats["sample_weight"], torch.autograd.grad(loss, params)

    out = model(input_ids=ids, labels=labels, fused_lm_head=True)
    ref_logps, ref_mask = naive_label_logprobs(model, ids, None, labels)
    assert torch.equal(out.label_mask, ref_mask)
    torch.testing.assert_close(out.log_probs.float(), ref_logps, rtol=0, atol=1e-5)
    loss, weights, grads = loss_and_grads(out.log_probs, out.label_mask)
    ref_loss, ref_weights, ref_grads = loss_and_grads(ref_logps, ref_mask)
    torch.testing.assert_close(loss, ref_loss, rtol=1e-5, atol=0)
    torch.testing.assert_close(weights, ref_weights, rtol=1e-5, atol=0)
    for g, ref in zip(grads, ref_grads):
        torch.testing.assert_close(g, ref, rtol=1e-4, atol=1e-9)
