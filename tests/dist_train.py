"""Run by tests/test_distributed.py under `torchrun`: two CADFT steps on 8 fixed samples,
then rank 0 saves the parameter update and the normaliser to the path in argv[1]."""

from __future__ import annotations

import sys

import torch

from cadft import CADFTTrainer
from cadft.data import mixed_quality_demos
from cadft.tiny import tiny_llama, tiny_tokenizer

from helpers import trainer_args


def main(out_path: str, per_device: int) -> None:
    tok = tiny_tokenizer()
    model = tiny_llama(tok, seed=0)
    before = {k: v.detach().clone() for k, v in model.named_parameters()}
    args = trainer_args(
        out_path + ".run", per_device_train_batch_size=per_device, max_steps=2, optim="sgd", learning_rate=0.5,
        cadft_beta=2.0, cadft_w_max=1.5, ddp_backend="gloo",
    )
    trainer = CADFTTrainer(model, args=args, train_dataset=mixed_quality_demos(8, seed=0), processing_class=tok)
    trainer.train()
    if trainer.accelerator.is_main_process:
        after = dict(trainer.model.named_parameters())
        delta = {k: after[k].detach() - before[k] for k in before}
        torch.save({"delta": delta, "m": trainer.normalizer.value, "world": trainer.accelerator.num_processes}, out_path)
    trainer.accelerator.end_training()  # destroys the process group: gloo can abort at exit otherwise


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]))
