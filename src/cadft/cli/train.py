"""`cadft train`: fine-tune with SFT, DFT or CADFT.

With no arguments it fine-tunes the embedded SmolLM2-135M-Instruct with LoRA on the
embedded mixed-quality arithmetic demonstrations with CADFT, then prints how
compatibility and weight moved for each kind of demonstration.

    cadft train                                   # the demo
    cadft train --loss_type dft --max_steps 20
    cadft train --model_name_or_path Qwen/Qwen2.5-0.5B-Instruct --dataset_path data.jsonl
    cadft train --config recipe.yaml --learning_rate 1e-4   # flags override the file

Every CADFTConfig (SFTConfig/TrainingArguments) field and every TRL ModelConfig field
(LoRA: --use_peft, --lora_r, ...) is a flag; `cadft train --help` lists them.
"""

from __future__ import annotations

import json
import os
import sys
from collections import defaultdict
from dataclasses import asdict, dataclass, field

# torch, transformers and TRL load inside the functions that use them: `main` first
# checks the --config file, the data file and the model folder (train_flags.py)

__all__ = ["DataArguments", "make_parser", "main"]

# Defaults of the demo run; the README documents them. A --config file or flag overrides each.
CLI_DEFAULTS = {
    "output_dir": "cadft-output",
    "model_name_or_path": "embedded",
    "use_peft": True,
    "lora_r": 16,
    "lora_alpha": 32,
    "learning_rate": 5e-4,
    "per_device_train_batch_size": 8,
    "num_train_epochs": 1.0,
    "max_length": 512,
    "logging_steps": 1,
    "save_steps": 4,
    "save_total_limit": 2,
    "report_to": "none",
    "log_level_replica": "error",  # under torchrun, rank 0 logs; the others would repeat it
    # No warmup_steps: any warmup makes transformers' linear schedule train step 1 at learning rate 0
}


@dataclass
class DataArguments:
    """Where the demonstrations come from. Without a path or a name: the embedded data."""

    dataset_path: str | None = field(
        default=None, metadata={"help": "Local .jsonl/.json/.parquet/.csv file in any TRL format or GSM8K/MATH format."}
    )
    dataset_name: str | None = field(default=None, metadata={"help": "Hub dataset name (when a hub is reachable)."})
    dataset_config: str | None = field(default=None, metadata={"help": "Hub dataset configuration name."})
    dataset_train_split: str = field(default="train", metadata={"help": "Split of a hub dataset to train on."})
    max_train_samples: int | None = field(default=None, metadata={"help": "Keep only the first N training rows."})
    tag_column: str = field(
        default="kind", metadata={"help": "Column that groups the closing summary (ignored if the data lacks it)."}
    )
    embedded_num_demos: int = field(default=48, metadata={"help": "Embedded data: number of demonstrations."})
    embedded_frac_foreign: float = field(default=0.25, metadata={"help": "Embedded data: fraction in a foreign style."})
    embedded_frac_wrong: float = field(default=0.25, metadata={"help": "Embedded data: fraction with a wrong answer."})
    embedded_seed: int = field(default=0, metadata={"help": "Embedded data: generator seed."})
    summary: bool = field(
        default=True, metadata={"help": "Score the training set before and after training and print the summary."}
    )


def make_parser():
    from trl import ModelConfig, TrlParser

    from ..config import CADFTConfig
    from .common import USAGE, ShortErrors

    class TrainParser(ShortErrors, TrlParser):
        """TRL's parser with a short usage line and short errors; a --config file's keys
        under the other transformers release's name for a field are renamed (`renamed_fields`)."""

        def set_defaults_with_config(self, **kwargs) -> list[str]:
            for old, new in renamed_fields().items():
                if old in kwargs and new not in kwargs:
                    kwargs[new] = kwargs.pop(old)
            return super().set_defaults_with_config(**kwargs)

    parser = TrainParser((DataArguments, CADFTConfig, ModelConfig), prog="cadft train", usage=USAGE)
    parser.description = __doc__.split("\n\n")[0]
    parser.epilog = "--config FILE.yaml takes flag values from a YAML file; flags given on the command line override it."
    parser.set_defaults(**CLI_DEFAULTS)  # bf16 unset: CADFTConfig turns it on where an accelerator supports it
    parser.set_defaults(**_checkpointing_off(CADFTConfig))
    return parser


def renamed_fields() -> dict[str, str]:
    """{name: the installed transformers' name} for the TrainingArguments fields renamed
    between the releases cadft supports: `activation_checkpointing` (transformers >= 5.23,
    the recipes' key) is `gradient_checkpointing` before. Read from the installed version,
    without importing transformers (the flag checks run before the heavy imports)."""
    from importlib.metadata import version

    from packaging.version import Version

    if Version(version("transformers")) >= Version("5.23"):
        return {}
    return {"activation_checkpointing": "gradient_checkpointing"}


def _renamed_flags(argv: list[str]) -> list[str]:
    """argv with each `--name` of `renamed_fields` under the installed release's name."""
    renamed = renamed_fields()
    out = []
    for arg in argv:
        flag, eq, value = arg.partition("=")
        out.append(f"--{renamed[flag[2:]]}{eq}{value}" if flag.startswith("--") and flag[2:] in renamed else arg)
    return out


def _checkpointing_off(config_class) -> dict:
    """Defaults that turn activation checkpointing off (TRL's default is on): on a 135M model
    the memory saving is not worth the recompute. transformers >= 5.23 names it
    `activation_checkpointing` and warns for the old name, `gradient_checkpointing`, whenever
    that one is set (TRL sets it): there both stay unset (None, which means off), so either
    flag decides when given."""
    if "activation_checkpointing" in config_class.__dataclass_fields__:
        return {"activation_checkpointing": None, "gradient_checkpointing": None}
    return {"gradient_checkpointing": False}


def _load_data(data_args: DataArguments, rewriting: bool = False):
    from ..data import load_demonstrations, mixed_quality_demos

    if data_args.dataset_path or data_args.dataset_name:
        return load_demonstrations(
            data_args.dataset_path or None,
            dataset_name=data_args.dataset_name or None,  # '' clears a --config file's hub name
            dataset_config=data_args.dataset_config,
            split=data_args.dataset_train_split,
            limit=data_args.max_train_samples,
            rewriting=rewriting,
        )
    dataset = mixed_quality_demos(
        data_args.embedded_num_demos,
        seed=data_args.embedded_seed,
        frac_foreign=data_args.embedded_frac_foreign,
        frac_wrong=data_args.embedded_frac_wrong,
    )
    return dataset if data_args.max_train_samples is None else dataset.select(range(data_args.max_train_samples))


def _scored_row(row: dict) -> dict:
    """input_ids and the labels compatibility is measured on: the trainable tokens, within
    the trainer's COMPAT_MASK (the assistant turns) where the dataset has one."""
    from ..data.collate import COMPAT_MASK

    labels = row["labels"]
    if row.get(COMPAT_MASK) is not None:
        labels = [label if keep else -100 for label, keep in zip(labels, row[COMPAT_MASK])]
    return {"input_ids": row["input_ids"], "labels": labels}


def _score(trainer, stage: str) -> list[dict]:
    """Every training row's score, in dataset order, on every process: a collective in
    which each process scores an equal share with the same number of forwards (the
    parameters may be sharded across processes, FSDP or ZeRO-3)."""
    from accelerate.utils import gather_object

    from ..model.scoring import score_rows_sharded

    accelerator = trainer.accelerator
    rows = trainer.training_samples()  # packed rows split back into their demonstrations
    return [
        {**score, "sample_id": sample_id, "stage": stage}
        for score, sample_id in zip(
            score_rows_sharded(
                trainer.inference_model,
                [_scored_row(row) for row in rows],
                world=accelerator.num_processes,
                rank=accelerator.process_index,
                gather=gather_object,
                pad_token_id=trainer.processing_class.pad_token_id,
                batch_size=trainer.args.per_device_eval_batch_size,
                progress=accelerator.is_main_process,
                desc=f"Scoring training set ({stage})",
            ),
            [row["sample_id"] for row in rows],
        )
    ]


def _add_weights(scores: list[dict], trainer) -> None:
    """Each scored row's weight as the trainer's estimator gives it to the whole training set
    taken as one batch (`Estimator.weights`; training weighs each optimizer step's batch): the
    paper's estimator z-scores u over the set, the earlier one divides by m, the calibration
    estimate over the set before training and the trained normaliser after. The estimator's
    per-row extras (z, the weight before clipping) go beside the weight."""
    import torch

    valid = torch.tensor([s["num_tokens"] > 0 for s in scores])
    s_mean = torch.tensor([s["mean_logprob"] if s["num_tokens"] > 0 else 0.0 for s in scores], dtype=torch.float32)
    weights, extras = trainer.estimator.weights(-s_mean, valid)
    for key, values in extras.items():
        if isinstance(values, torch.Tensor) and values.shape == weights.shape:
            for s, value in zip(scores, values.tolist()):
                s[key] = value
    for s, w in zip(scores, weights.tolist()):
        s["weight"] = w


def _summary_table(start: list[dict], end: list[dict], tags: dict[int, str]) -> str:
    groups = defaultdict(lambda: defaultdict(list))
    for stage, scores in (("start", start), ("end", end)):
        for s in scores:
            if s["num_tokens"] > 0:
                tag = tags.get(s["sample_id"], "all")
                groups[tag][f"c_{stage}"].append(s["compatibility"])
                groups[tag][f"w_{stage}"].append(s["weight"])
    mean = lambda xs: sum(xs) / len(xs) if xs else float("nan")  # noqa: E731
    lines = [f"{'kind':<10} {'n':>4}  {'compat start -> end':>20}  {'weight start -> end':>20}"]
    for tag in sorted(groups):
        g = groups[tag]
        lines.append(
            f"{tag:<10} {len(g['c_start']):>4}  {mean(g['c_start']):>9.3f} -> {mean(g['c_end']):<7.3f}"
            f"  {mean(g['w_start']):>9.3f} -> {mean(g['w_end']):<7.3f}"
        )
    return "\n".join(lines)


def run(data_args: DataArguments, args: CADFTConfig, model_args) -> dict:
    from trl import get_peft_config

    from ..data.collate import with_sample_ids
    from ..model.loading import resolve_model_path
    from ..training.trainer import CADFTTrainer

    dataset = _load_data(data_args, rewriting=args.rewrite)
    model_path = resolve_model_path(model_args.model_name_or_path)
    init_kwargs = dict(args.model_init_kwargs or {})
    if model_args.dtype not in (None, "auto"):
        init_kwargs.setdefault("dtype", model_args.dtype)
    args.model_init_kwargs = init_kwargs or None
    trainer = CADFTTrainer(model=model_path, args=args, train_dataset=dataset, peft_config=get_peft_config(model_args))
    main_process = trainer.accelerator.is_main_process

    tags = {}
    if data_args.tag_column in dataset.column_names:  # by the sample ids the trainer gave the rows
        tagged = with_sample_ids(dataset)
        tags = dict(zip(tagged["sample_id"], tagged[data_args.tag_column]))
    start = _score(trainer, "start") if data_args.summary else []  # on every process: sharded
    if start:
        _add_weights(start, trainer)
        if trainer.normalizer is not None and args.cadft_calibration_samples >= len(trainer.train_dataset):
            # The whole training set is the calibration sample: it need not be scored twice
            trainer.estimator.calibrate_from_scores(start)

    trainer.train(resume_from_checkpoint=args.resume_from_checkpoint)
    trainer.save_model(args.output_dir)
    trainer.save_state()

    end = _score(trainer, "end") if start else []
    result = {"output_dir": args.output_dir, "main_process": main_process}
    if main_process:
        result.update(_finish_on_main(trainer, args, data_args, model_args, model_path, start, end, tags))
    # Every process, once no collective is left: without this, gloo's worker threads can
    # abort the interpreter at exit ("terminate called without an active exception")
    trainer.accelerator.wait_for_everyone()
    trainer.accelerator.end_training()
    return result


def _finish_on_main(trainer, args: CADFTConfig, data_args: DataArguments, model_args, model_path: str,
                    start: list[dict], end: list[dict], tags: dict) -> dict:
    """Write cadft_run.json; with a summary, write sample_scores.jsonl and return the table."""
    run_info = {
        "loss_type": args.loss_type,
        "model": model_args.model_name_or_path,
        "model_path": model_path,
        "peft": bool(model_args.use_peft),
        "cadft_estimator": args.cadft_estimator,
        "cadft_beta": args.cadft_beta,
        "cadft_token_power": args.cadft_token_power,
        **{name: getattr(args, name) for name in ("asft_kl_coef", "eaft_alpha", "eaft_k", "eaft_entropy")},
        "cadft_w_min": args.cadft_w_min,
        "cadft_w_max": args.cadft_w_max,
        "cadft_normalizer": trainer.normalizer.value if trainer.normalizer is not None else None,
        "data": data_args.dataset_path or data_args.dataset_name or "embedded",
        "data_args": asdict(data_args),
        "train_samples": len(trainer.training_samples()),
        "global_step": trainer.state.global_step,
        "distributed": _engine(trainer),
    }
    with open(os.path.join(args.output_dir, "cadft_run.json"), "w") as f:
        json.dump(run_info, f, indent=2)
    if not start:
        return {}
    _add_weights(end, trainer)
    texts = {r["sample_id"]: r for r in trainer.training_samples()}
    decode = trainer.processing_class.decode
    with open(os.path.join(args.output_dir, "sample_scores.jsonl"), "w") as f:
        for s in start + end:
            row = texts[s["sample_id"]]
            extra = {"kind": tags[s["sample_id"]]} if tags else {}
            pairs = list(zip(row["input_ids"], row["labels"]))
            prompt = decode([t for t, lab in pairs if lab == -100])
            completion = decode([t for t, lab in pairs if lab != -100])
            f.write(json.dumps({**s, **extra, "prompt": prompt, "completion": completion}, ensure_ascii=False) + "\n")
    return {"table": _summary_table(start, end, tags)}


def _engine(trainer) -> dict:
    """How the run was spread over processes: accelerate's distributed type, the process
    count and, under DeepSpeed, the ZeRO stage."""
    accelerator = trainer.accelerator
    plugin = accelerator.state.deepspeed_plugin if trainer.is_deepspeed_enabled else None
    return {"type": str(accelerator.distributed_type.value), "num_processes": accelerator.num_processes,
            "zero_stage": plugin.zero_stage if plugin is not None else None}


def _load_hint(output_dir: str, peft: bool) -> str:
    if peft:
        return (
            "  from peft import AutoPeftModelForCausalLM\n"
            f"  model = AutoPeftModelForCausalLM.from_pretrained({output_dir!r})"
        )
    return f"  from transformers import AutoModelForCausalLM\n  model = AutoModelForCausalLM.from_pretrained({output_dir!r})"


def _quiet_unless_rank_zero() -> None:
    """Under torchrun every process runs `cadft train`: rank 0 alone shows progress bars,
    warnings and logs, which the other ranks would only repeat (errors still show). Set
    before torch and the Hugging Face libraries are imported, which read these at import."""
    if int(os.environ.get("RANK", "0")) == 0:
        return
    import logging
    import warnings

    os.environ["TORCH_CPP_LOG_LEVEL"] = "ERROR"  # c10's warnings, e.g. DDP's reducer
    os.environ["HF_DATASETS_DISABLE_PROGRESS_BARS"] = "1"
    os.environ["HF_HUB_DISABLE_PROGRESS_BARS"] = "1"  # transformers' progress bars follow huggingface_hub's
    os.environ["TRANSFORMERS_VERBOSITY"] = "error"  # until the Trainer applies log_level_replica
    warnings.simplefilter("ignore")
    logging.getLogger("cadft").setLevel(logging.ERROR)


def main(argv: list[str] | None = None) -> int:
    from . import flag_cache
    from .train_flags import precheck

    argv = _renamed_flags(sys.argv[1:] if argv is None else list(argv))
    precheck(argv)  # bad config/data/model, and (once saved) --help and unknown flags: before torch loads
    _quiet_unless_rank_zero()

    from ..training.checkpoint_folders import resume_argument
    from ..training.teardown import exit_if_torchrun

    parser = make_parser()
    flag_cache.remember(parser)  # later runs answer --help and unknown flags before the imports
    try:
        data_args, args, model_args, unknown_keys, unknown = parser.parse_args_and_config(
            argv, return_remaining_strings=True, separate_remaining_strings=True)
    except (ValueError, TypeError) as e:
        parser.error(str(e))
    if unknown:  # the message of the early check (train_flags.py), which answers once the flags are saved
        parser.error(f"unrecognized arguments: {' '.join(unknown)}")
    if unknown_keys:
        parser.error(f"--config: unknown keys: {', '.join(k[2:] for k in unknown_keys if k.startswith('--'))}")
    if data_args.dataset_path and data_args.dataset_name:
        parser.error("give --dataset_path or --dataset_name, not both")
    if data_args.dataset_path and not os.path.isfile(data_args.dataset_path):
        parser.error(f"--dataset_path: file not found: {data_args.dataset_path}")
    try:  # true/latest: the newest complete checkpoint in output_dir (TrainingArguments types it as a str)
        args.resume_from_checkpoint = resume_argument(args.resume_from_checkpoint, args.output_dir)
    except ValueError as e:
        parser.error(str(e))
    result = run(data_args, args, model_args)
    if result["main_process"]:  # under torchrun, rank 0 alone reports
        _report(result, data_args, args, model_args)
    exit_if_torchrun(0)  # everything is saved: leave before gloo's teardown can abort the process
    return 0


def _report(result: dict, data_args: DataArguments, args, model_args) -> None:
    if "table" in result:
        print(f"\nCompatibility c and sample weight w ({args.loss_type}) per kind of demonstration:")
        print(result["table"])
    if "table" in result or data_args.summary is False:
        print(f"\nSaved to {os.path.abspath(args.output_dir)}. Load it with:")
        print(_load_hint(args.output_dir, bool(model_args.use_peft)))
        print(f"Report: cadft report {args.output_dir}")
