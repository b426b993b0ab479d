"""Run by tests/test_distributed.py under `torchrun`: two CADFT steps on 8 fixed samples,
then rank 0 saves the parameter update, the calibrated normaliser and the final one to the
path in argv[1]. argv: OUT_PATH PER_DEVICE_BATCH [CALIBRATION_SAMPLES (default 8)
[NORMALIZATION (default ema) [TOKEN_POWER (default 1) [ACCUMULATION (default 1) [LOSS_TYPE (default
cadft)]]]]]. The paper's estimator (NORMALIZATION zscore) has no normaliser: CALIBRATION_SAMPLES
is then unused; a LOSS_TYPE other than cadft has no token power: TOKEN_POWER is then unused (eaft
runs with eaft_k 500)."""

from __future__ import annotations

import sys

import torch
from transformers import TrainerCallback

from cadft import CADFTTrainer
from cadft.data import mixed_quality_demos
from cadft.model.tiny import tiny_llama, tiny_tokenizer
from cadft.training.teardown import exit_if_torchrun

from helpers import trainer_args


class CalibratedNormalizer(TrainerCallback):
    """Keeps log m as calibration left it: read at the first optimizer step, before the
    step's observations move it."""

    def __init__(self, trainer):
        self.trainer, self.log_m = trainer, None

    def on_pre_optimizer_step(self, args, state, control, **kwargs):
        if self.log_m is None and self.trainer.normalizer is not None:
            self.log_m = self.trainer.normalizer.log_value


def main(out_path: str, per_device: int, calibration_samples: int, normalization: str, token_power: float,
         accumulation: int, loss_type: str = "cadft") -> None:
    tok = tiny_tokenizer()
    model = tiny_llama(tok, seed=0)
    before = {k: v.detach().clone() for k, v in model.named_parameters()}
    earlier = {} if normalization == "zscore" else dict(cadft_w_max=1.5, cadft_calibration_samples=calibration_samples)
    token = dict(cadft_token_power=token_power) if loss_type == "cadft" else dict(loss_type=loss_type)
    if loss_type == "eaft":
        token["eaft_k"] = 500  # ln 500 above the tiny model's entropy: gates below 1, not all capped
    args = trainer_args(
        out_path + ".run", per_device_train_batch_size=per_device, gradient_accumulation_steps=accumulation,
        max_steps=2, optim="sgd", learning_rate=0.5, cadft_beta=2.0, ddp_backend="gloo",
        cadft_estimator=normalization, max_grad_norm=0.5, **token, **earlier,
    )
    trainer = CADFTTrainer(model, args=args, train_dataset=mixed_quality_demos(8, seed=0), processing_class=tok)
    calibrated = CalibratedNormalizer(trainer)
    trainer.add_callback(calibrated)
    trainer.train()
    if trainer.accelerator.is_main_process:
        after = dict(trainer.model.named_parameters())
        delta = {k: after[k].detach() - before[k] for k in before}
        logs = [h for h in trainer.state.log_history if "loss" in h]
        torch.save({"delta": delta, "m": trainer.normalizer.value if trainer.normalizer else None,
                    "calibrated_log_m": calibrated.log_m, "world": trainer.accelerator.num_processes,
                    "logs": logs}, out_path)
    trainer.accelerator.end_training()  # destroys the process group: gloo can abort at exit otherwise
    exit_if_torchrun(0)  # and even then, rarely: skip the interpreter's teardown (cadft.training.teardown)


if __name__ == "__main__":
    argv = sys.argv[1:] + ["8", "ema", "1", "1", "cadft"][len(sys.argv) - 3 :]
    main(argv[0], int(argv[1]), int(argv[2]), argv[3], float(argv[4]), int(argv[5]), argv[6])
