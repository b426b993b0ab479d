"""The embedded model: the converted cache gives the same logits as the GGUF itself."""

from __future__ import annotations

import torch

from cadft.model.loading import EMBEDDED_MODEL, embedded_model_path, load_embedded_from_gguf, load_model_and_tokenizer


def test_cached_embedded_model_equals_direct_gguf_load():
    gguf_model, gguf_tok = load_embedded_from_gguf()
    model, tok = load_model_and_tokenizer(EMBEDDED_MODEL)
    assert model.config.tie_word_embeddings
    assert model.lm_head.weight.data_ptr() == model.model.embed_tokens.weight.data_ptr()  # still tied
    messages = [{"role": "user", "content": "Tom has 3 apples and buys 4 more. How many now?"}]
    ids = tok.apply_chat_template(messages, add_generation_prompt=True, return_tensors="pt", return_dict=True)
    gguf_ids = gguf_tok.apply_chat_template(messages, add_generation_prompt=True, return_tensors="pt", return_dict=True)
    assert torch.equal(ids["input_ids"], gguf_ids["input_ids"])
    with torch.inference_mode():
        ours = model(**ids).logits
        ref = gguf_model(**gguf_ids).logits
    torch.testing.assert_close(ours, ref, rtol=0, atol=1e-5)
    assert tok.pad_token is not None and tok.eos_token == "<|im_end|>"


def test_embedded_path_is_reused():
    assert embedded_model_path() == embedded_model_path()
