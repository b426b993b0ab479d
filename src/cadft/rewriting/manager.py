"""`Rewriter`: connects the tracker, the schedule, the round (`round.RewriteRound`, built
from the trainer's config) and the store to a trainer.

The trainer calls `observe` with every training batch's gathered per-sample values and
`after_step` after every optimizer step; at the start of training the Rewriter checks
(through a callback of its own) that the run is long enough for a round, and warns once
if it is not. A round runs on the main process (verification,
the gain gate; generation by an external generator); scoring under the current policy and
generation by the policy run on every process as collectives (see `collective.py`: with
FSDP or ZeRO-3 a forward needs every process). The round's result reaches every process,
so each applies the same accepted rewrites to its collator and the same history to its
tracker, and trains on identical data afterwards.
"""

from __future__ import annotations

import logging
import os

import torch
from accelerate.utils import gather_object
from transformers import TrainerCallback

from ..data.collate import SAMPLE_ID
from ..model.scoring import score_rows_sharded, tokenize_demonstration
from ..model.sharding import rank_shard
from .collective import RoundService
from .generators import GenerationSettings, PolicyGenerator
from .round import RewriteRound
from .schedule import planned_rounds, resolve_steps, round_due
from .store import PROVENANCE_FILE, RewriteStore
from .tracker import CompatibilityTracker

__all__ = ["Rewriter", "score_pairs", "target_length", "tokenize_target", "truncate_row"]

logger = logging.getLogger(__name__)


def truncate_row(row: dict, max_length: int | None, truncation_mode: str = "keep_start") -> dict:
    """A tokenized row ({"input_ids", "labels"}) cut to `max_length` tokens the way TRL's
    SFTTrainer cuts training rows: `keep_start` keeps the first tokens, `keep_end` the last."""
    if max_length is None or len(row["input_ids"]) <= max_length:
        return row
    if truncation_mode == "keep_start":
        kept = slice(None, max_length)
    elif truncation_mode == "keep_end":
        kept = slice(-max_length, None)
    else:
        raise ValueError(f"truncation_mode={truncation_mode!r}; valid: keep_start, keep_end")
    return {key: values[kept] for key, values in row.items()}


def tokenize_target(
    tokenizer, prompt, completion_like, text: str, *, max_length: int | None, truncation_mode: str = "keep_start"
) -> dict:
    """Tokens of `text` as the completion of `prompt`, in the format of `completion_like`
    (a message list keeps its role; a string stays a string), built and truncated as TRL
    builds and truncates a training row."""
    completion = [{**completion_like[-1], "content": text}] if isinstance(completion_like, list) else text
    row = tokenize_demonstration(tokenizer, {"prompt": prompt, "completion": completion})
    return truncate_row(row, max_length, truncation_mode)


def target_length(tokenizer, prompt, completion_like, text: str) -> int:
    """Tokens of the whole training row of `text` as the completion of `prompt` (prompt,
    completion and end of turn), untruncated: it fits when this is at most max_length."""
    return len(tokenize_target(tokenizer, prompt, completion_like, text, max_length=None)["input_ids"])


def score_pairs(
    model, tokenizer, pairs: list[tuple], *, like, max_length: int | None, batch_size: int,
    truncation_mode: str = "keep_start", world: int = 1, rank: int = 0, gather=None, progress: bool = True,
) -> list[float]:
    """Compatibility under `model` of (prompt, completion text) pairs: the prompt alone,
    without any reference, each row truncated as training truncates it. With `world` > 1
    a collective: every process passes the same pairs (see `score_rows_sharded`)."""
    rows = [
        tokenize_target(tokenizer, prompt, like, text, max_length=max_length, truncation_mode=truncation_mode)
        for prompt, text in pairs
    ]
    scores = score_rows_sharded(
        model, rows, world=world, rank=rank, gather=gather, pad_token_id=tokenizer.pad_token_id,
        batch_size=batch_size, progress=progress, desc="Scoring rewrites",
    )
    return [s["compatibility"] for s in scores]


def _sample_tokens(batch: dict) -> list[list[int]]:
    """The token ids of each demonstration of a collated batch, in order: its row of a padded
    batch, or its segment of a padding-free one (position ids restart at 0 at each)."""
    ids = batch["input_ids"]
    if "attention_mask" in batch:
        return [ids[row, :length].tolist() for row, length in enumerate(batch["attention_mask"].sum(-1).tolist())]
    starts = (batch["position_ids"][0] == 0).nonzero().flatten().tolist() + [ids.shape[1]]
    return [ids[0, start:end].tolist() for start, end in zip(starts, starts[1:])]


class Rewriter:
    def __init__(self, trainer, dataset):
        args = trainer.args
        if not {"prompt", "completion"} <= set(dataset.column_names):
            raise ValueError(
                f"rewriting needs prompt-completion data; the training set has columns {dataset.column_names}"
            )
        if args.rewrite_answer_column and args.rewrite_answer_column not in dataset.column_names:
            raise ValueError(
                f"rewrite_answer_column={args.rewrite_answer_column!r} is not a column of the training set "
                f"(columns: {', '.join(dataset.column_names)})"
            )
        self.trainer = trainer
        self.dataset = dataset
        self.rows = {row["sample_id"]: row for row in dataset}
        self.round = RewriteRound(args)
        self.tracker = CompatibilityTracker(
            ema_decay=args.rewrite_tracker_decay,
            flag_threshold=args.rewrite_flag_threshold,
            flag_quantile=args.rewrite_flag_quantile,
        )
        self.store = RewriteStore()
        accelerator = trainer.accelerator
        self.service = RoundService(
            world=accelerator.num_processes, rank=accelerator.process_index, timeout_s=args.rewrite_round_timeout
        )
        self._generator = None
        self._schedule_checked = False
        trainer.add_callback(_ScheduleCheck(self))
        if trainer.accelerator.is_main_process:
            # Fail at start-up, not at the first round, when a server is unreachable or a model will not load
            check = getattr(self.generator, "check", None)
            if check is not None:
                check()

    @property
    def generator(self):
        if self._generator is None:
            self._generator = self.round.make_generator(self.trainer.model, self.trainer.processing_class)
        return self._generator

    # ---- called by the trainer ----------------------------------------------------------

    def observe(self, sample_ids: torch.Tensor, compat: torch.Tensor, raw_weights: torch.Tensor, valid: torch.Tensor):
        """One training batch (gathered over processes): (B,) each."""
        keep = valid & (sample_ids >= 0)
        self.tracker.update(sample_ids[keep].tolist(), compat[keep].float().cpu(), raw_weights[keep].float().cpu())

    def schedule(self, max_steps: int) -> tuple[int, int]:
        """(warm-up, interval) in optimizer steps for a run of `max_steps` steps."""
        args = self.trainer.args
        return resolve_steps(
            start_step=args.rewrite_start_step,
            start_fraction=args.rewrite_start_fraction,
            interval_steps=args.rewrite_interval_steps,
            interval_fraction=args.rewrite_interval_fraction,
            max_steps=max_steps,
        )

    def check_schedule(self, max_steps: int) -> list[int]:
        """The steps after which rounds will run; warns (once, main process) when there are none."""
        start, interval = self.schedule(max_steps)
        rounds = planned_rounds(start=start, interval=interval, max_steps=max_steps)
        if not rounds and not self._schedule_checked and self.trainer.accelerator.is_main_process:
            logger.warning(
                "rewrite=True, but no rewriting round will run: the warm-up is %d optimizer steps and training has "
                "%d (a round runs after step T_warm, T_warm + K, ..., never after the last step). Set "
                "rewrite_start_step (or rewrite_start_fraction) below %d, and rewrite_interval_steps (or "
                "rewrite_interval_fraction) for later rounds.", start, max_steps, max_steps,
            )
        self._schedule_checked = True
        return rounds

    def select(self) -> list[int]:
        """The samples of the next round: `rewrite_selection`, without those already rewritten."""
        return self.round.select(self.tracker, rewritten=set(self.store.accepted), dataset_size=len(self.rows))

    def after_step(self, step: int, max_steps: int) -> None:
        if step >= max_steps:  # rewrites made now would never be trained on
            return
        start, interval = self.schedule(max_steps)
        if not round_due(step, start=start, interval=interval, last_round_step=self.store.last_round_step):
            return
        selected = self.select()
        result = self.service.run(lambda call: self._run(selected, step, call), handlers=self._handlers)
        self.apply(result, step)
        self.trainer.log_round(result.metrics)

    # ---- a round --------------------------------------------------------------------------

    def tokenize(self, prompt, completion_like, text: str) -> dict:
        t = self.trainer
        return tokenize_target(
            t.processing_class, prompt, completion_like, text, max_length=t.args.max_length,
            truncation_mode=t.args.truncation_mode,
        )

    @property
    def _like(self):
        return next(iter(self.rows.values()))["completion"]

    def length(self, prompt, text: str) -> int:
        """Tokens of the training row of `text` as the completion of `prompt`, untruncated."""
        return target_length(self.trainer.processing_class, prompt, self._like, text)

    def score(self, pairs: list[tuple]) -> list[float]:
        """Compatibility under the current policy of (prompt, completion text) pairs; on
        several processes a collective (each scores an equal share)."""
        t = self.trainer
        return score_pairs(
            t.inference_model, t.processing_class, pairs, like=self._like, max_length=t.args.max_length,
            batch_size=t.args.per_device_eval_batch_size, truncation_mode=t.args.truncation_mode,
            world=t.accelerator.num_processes, rank=t.accelerator.process_index, gather=gather_object,
            progress=self._progress,
        )

    @property
    def _progress(self) -> bool:
        """Progress bars on the main process, unless the trainer's are off (`disable_tqdm`)."""
        t = self.trainer
        return t.accelerator.is_main_process and not t.args.disable_tqdm

    @property
    def _handlers(self) -> dict:
        """The round's steps that run on every process (`RoundService.run`)."""
        return {"score": self.score, "generate": self._generate_policy}

    def _generate_policy(self, conversations: list, settings: GenerationSettings) -> list:
        """The policy's candidates for every conversation, on every process: each process
        generates an equal share (in step with the others when the parameters are sharded)
        and the shares are gathered in order."""
        t = self.trainer
        world, rank = t.accelerator.num_processes, t.accelerator.process_index
        if world == 1:
            return self.generator.generate(conversations, settings, progress=self._progress)
        shard, real = rank_shard(conversations, world, rank)
        mine = self.generator.generate(shard, settings, synced=t.parameters_are_sharded, progress=self._progress)
        return gather_object([candidates for candidates, is_real in zip(mine, real) if is_real])

    def _run(self, selected: list[int], step: int, call):
        """The round over `selected` (main process). `call(name, *args)` runs "score" and
        "generate" (policy) on every process (`RoundService.run`; one process: here)."""
        generator = self.generator
        if isinstance(generator, PolicyGenerator):
            generator = _Collective(generator, call)
        tracked = self.tracker.records
        items = [self.round.item(self.rows[i], u_tracked=tracked[i].u_ema if i in tracked else None) for i in selected]
        return self.round.run(items, generator=generator, score=lambda pairs: call("score", pairs), length=self.length,
                              round_index=self.store.rounds_done + 1, step=step)

    def apply(self, result, step: int) -> None:
        """Apply a round's result on this process: store, tracker history, collator targets,
        and (main process) the provenance file and the rewritten dataset."""
        self.store.add_round(result.records, step)
        for r in result.records:
            self.tracker.note_attempt(
                r["sample_id"],
                {"round": r["round"], "step": r["step"], "accepted": r["accepted"], "rejection": r["rejection"],
                 "compat_before": r["compat_before"], "compat_after": r["compat_after"],
                 "u_tracked": r["u_tracked"], "draw": r["draw"]["value"]},
            )
        self._sync_targets()
        t = self.trainer
        if t.accelerator.is_main_process:
            self.store.append_provenance(t.args.output_dir, result.records)
            if result.accepted:
                self.save_dataset()
        logger.info("rewriting round %d at step %d: %s", self.store.rounds_done, step, result.metrics)

    def _sync_targets(self) -> None:
        targets = self.trainer.data_collator.targets
        for sample_id, entry in self.store.accepted.items():
            if sample_id not in targets:
                row = self.rows[sample_id]
                targets[sample_id] = self.tokenize(row["prompt"], row["completion"], entry["text"])

    def refresh_batch(self, batch: dict) -> dict:
        """`batch`, collated again if one of its samples lacks its accepted rewrite.

        The data loader collates one batch ahead, so the first batch after a round may
        predate it: without this, that batch would train on originals in an uninterrupted
        run but on rewrites in a run resumed from the round's checkpoint."""
        targets = self.trainer.data_collator.targets
        if not targets or SAMPLE_ID not in batch:
            return batch
        ids = batch[SAMPLE_ID].tolist()
        stale = any(i in targets and tokens != targets[i]["input_ids"] for i, tokens in zip(ids, _sample_tokens(batch)))
        if not stale:
            return batch
        fresh = self.trainer.data_collator([self.trainer.training_sample(i) for i in ids])
        device = batch["input_ids"].device
        return {k: v.to(device) if isinstance(v, torch.Tensor) else v for k, v in fresh.items()}

    def save_dataset(self) -> str:
        return self.store.save_dataset(self.rows.values(), self.trainer.args.output_dir)

    # ---- checkpoints ------------------------------------------------------------------------

    def state_dict(self) -> dict:
        return {"tracker": self.tracker.state_dict(), "store": self.store.state_dict()}

    def load_state_dict(self, state: dict) -> None:
        self.tracker.load_state_dict(state["tracker"])
        self.store.load_state_dict(state["store"])
        self.trainer.data_collator.targets.clear()
        self._sync_targets()
        if self.trainer.accelerator.is_main_process:
            self.save_dataset()  # the file may list rewrites of rounds after the checkpoint
            moved = self.store.reconcile_provenance(self.trainer.args.output_dir)
            if moved:
                logger.warning(
                    "%d rows of %s came from rounds after the checkpoint; moved to rewrites.orphaned.jsonl",
                    moved, os.path.join(self.trainer.args.output_dir, PROVENANCE_FILE),
                )


class _Collective:
    """A policy generator whose `generate` runs on every process (through the round's `call`)."""

    def __init__(self, generator: PolicyGenerator, call):
        self.generator, self.call = generator, call
        self.name = generator.name

    def generate(self, conversations: list, settings: GenerationSettings) -> list:
        return self.call("generate", conversations, settings)


class _ScheduleCheck(TrainerCallback):
    """At the start of training (max_steps is known then): warn if no round will run."""

    def __init__(self, rewriter: Rewriter):
        self.rewriter = rewriter

    def on_train_begin(self, args, state, control, **kwargs):
        self.rewriter.check_schedule(state.max_steps)
