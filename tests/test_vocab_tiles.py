"""Narrow vocabulary tiles for TRL's fused LM head on a CPU (cadft.model.vocab_tiles): the same
log-probs and gradients, the setting restored afterwards, and CADFTTrainer's loss path
never allocating a tile as wide as TRL's default (benchmarks/loss_memory.py measures it)."""

from __future__ import annotations

import pytest
import torch
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_leaves
from transformers import LlamaConfig, LlamaForCausalLM
from trl.trainer import utils as trl_utils

from cadft import CADFTTrainer
from cadft.data import mixed_quality_demos
from cadft.model.vocab_tiles import CPU_VOCAB_TILE, cpu_vocab_tiles

from helpers import trainer_args

VOCAB = 131_072  # four of TRL's 32,768-wide tiles, sixteen of cadft's


class WidestOutput(TorchDispatchMode):
    """The largest last dimension of any 2-D (or wider) tensor an op returns."""

    def __init__(self):
        super().__init__()
        self.widest = 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        for t in tree_leaves(out):
            if isinstance(t, torch.Tensor) and t.dim() >= 2:
                self.widest = max(self.widest, t.shape[-1])
        return out


def big_vocab_model(tok=None):
    config = LlamaConfig(vocab_size=VOCAB, hidden_size=16, intermediate_size=32, num_hidden_layers=1,
                         num_attention_heads=2, num_key_value_heads=2, max_position_embeddings=512,
                         pad_token_id=tok.pad_token_id if tok else 0, eos_token_id=tok.eos_token_id if tok else 1)
    torch.manual_seed(0)
    return LlamaForCausalLM(config)


def fused(model, ids, labels, narrow: bool):
    model.zero_grad(set_to_none=True)
    if narrow:
        with cpu_vocab_tiles(ids.device):
            out = model(input_ids=ids, labels=labels, fused_lm_head=True)
    else:
        out = model(input_ids=ids, labels=labels, fused_lm_head=True)
    (out.log_probs.sum() + out.entropy.sum()).backward()
    return out.log_probs.detach(), out.entropy.detach(), model.lm_head.weight.grad.clone()


def test_narrow_tiles_give_the_same_values_and_gradients():
    model = big_vocab_model()
    from trl.trainer.utils import add_fused_lm_head

    add_fused_lm_head(model, outputs=("log_probs", "entropy"))
    ids = torch.randint(0, VOCAB, (2, 10), generator=torch.Generator().manual_seed(0))
    labels = ids.clone()
    labels[:, :3] = -100
    default = trl_utils._CHUNKED_LOGPROB_CHUNK_SIZE
    wide = fused(model, ids, labels, narrow=False)
    narrow = fused(model, ids, labels, narrow=True)
    assert trl_utils._CHUNKED_LOGPROB_CHUNK_SIZE == default  # restored
    for a, b in zip(narrow, wide):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)


def test_setting_is_restored_after_an_error():
    default = trl_utils._CHUNKED_LOGPROB_CHUNK_SIZE
    with pytest.raises(RuntimeError), cpu_vocab_tiles(torch.device("cpu")):
        assert trl_utils._CHUNKED_LOGPROB_CHUNK_SIZE == min(default, CPU_VOCAB_TILE)
        raise RuntimeError("boom")
    assert trl_utils._CHUNKED_LOGPROB_CHUNK_SIZE == default


def test_trainer_loss_path_uses_narrow_tiles_on_cpu(tmp_path, tok):
    """A whole training step (calibration, forward, backward, optimizer) of CADFTTrainer."""
    args = trainer_args(tmp_path, per_device_train_batch_size=2, max_steps=1, cadft_estimator="ema",
                        cadft_calibration_samples=2)
    trainer = CADFTTrainer(big_vocab_model(tok), args=args, train_dataset=mixed_quality_demos(4, seed=0),
                           processing_class=tok)
    counter = WidestOutput()
    with counter:
        trainer.train()
    assert trainer.state.global_step == 1
    assert trl_utils._CHUNKED_LOGPROB_CHUNK_SIZE > CPU_VOCAB_TILE  # TRL's own default, untouched
    assert counter.widest == CPU_VOCAB_TILE  # TRL's own tiles would be 32,768 wide
