"""The shipped recipes (recipes/*.yaml training configs, recipes/accelerate/*.yaml launch
configs) parse and validate against the classes that will read them: `cadft train`'s own
parser (DataArguments, CADFTConfig, TRL's ModelConfig), accelerate's ClusterConfig, launch
command and FSDP/DeepSpeed plugins. Each file's header holds its launch command; the files
it names exist, and each pairing is one the trainer accepts (no `batch` under DeepSpeed).
Every recipe runs end to end through its own header command, on a tiny model, on the CPU: the
one-GPU recipe in one process, the others on 2 processes over gloo, each on the engine it names."""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from helpers import require_deepspeed

ROOT = Path(__file__).resolve().parents[1]
RECIPES = ROOT / "recipes"
TRAINING = sorted(RECIPES.glob("*.yaml"))
LAUNCH = sorted((RECIPES / "accelerate").glob("*.yaml"))
SETUPS = {"1gpu", "ddp", "zero2", "zero3", "fsdp"}  # the five: one GPU, DDP, ZeRO-2, ZeRO-3, FSDP

ACCELERATE_CMD = re.compile(r"accelerate launch --config_file (\S+) -m cadft\.cli\.main train --config (\S+)")
CADFT_CMD = re.compile(r"cadft train --config (\S+)")


def header(path: Path) -> list[str]:
    """The comment lines before the first YAML key."""
    lines = []
    for line in path.read_text().splitlines():
        if not line.startswith("#"):
            break
        lines.append(line.lstrip("# ").rstrip())
    return lines


def launch_commands(path: Path) -> list[tuple[str, str]]:
    """(accelerate config, training config) of every `accelerate launch` line in the header."""
    return [m.groups() for line in header(path) for m in [ACCELERATE_CMD.search(line)] if m]


def parse_training(path: Path, *flags: str):
    from cadft.cli.train import make_parser

    return make_parser().parse_args_and_config(["--config", str(path), *flags])


def launch_args(accelerate_config: str, training_config: str):
    """accelerate launch's own parsing and validation of a header command (no process starts)."""
    from accelerate.commands.launch import _validate_launch_command, launch_command_parser

    argv = ["--config_file", accelerate_config, "-m", "cadft.cli.main", "train", "--config", training_config]
    args = launch_command_parser().parse_args(argv)
    _validate_launch_command(args)
    return args


def test_every_setup_is_shipped():
    assert {p.stem.removeprefix("math-1.5b-") for p in TRAINING} == SETUPS
    assert {p.stem for p in LAUNCH} == SETUPS


@pytest.mark.parametrize("path", TRAINING + LAUNCH, ids=lambda p: str(p.relative_to(RECIPES)))
def test_header_has_a_launch_command_naming_existing_files(path):
    assert path.read_text().startswith("#"), f"{path}: the first line must be a comment"
    assert isinstance(yaml.safe_load(path.read_text()), dict)
    commands = launch_commands(path)
    assert commands, f"{path}: no `accelerate launch ... -m cadft.cli.main train --config ...` line in the header"
    named = [f for pair in commands for f in pair]
    named += [m.group(1) for line in header(path) for m in [CADFT_CMD.search(line)] if m]
    for name in named:
        assert (ROOT / name).is_file(), f"{path}: the launch command names {name}, which does not exist"
    assert path.relative_to(ROOT).as_posix() in named  # the file's own command uses the file


@pytest.mark.parametrize("path", TRAINING, ids=lambda p: p.name)
def test_training_config_validates(path):
    data_args, args, model_args = parse_training(path)  # unknown keys and bad values raise here
    assert args.loss_type == "cadft" and not model_args.use_peft
    assert model_args.model_name_or_path and data_args.dataset_name and not data_args.dataset_path
    global_batch = args.per_device_train_batch_size * args.gradient_accumulation_steps
    (accelerate_config, _), = launch_commands(path)
    cluster = yaml.safe_load((ROOT / accelerate_config).read_text())
    assert global_batch * cluster["num_processes"] == 256, path.name  # the same global batch in every setup
    # The header's local-data variant: '' clears the hub name
    data_args, _, _ = parse_training(path, "--dataset_name", "", "--dataset_path", "numina.jsonl")
    assert not data_args.dataset_name and data_args.dataset_path == "numina.jsonl"


@pytest.mark.parametrize("path", LAUNCH, ids=lambda p: p.name)
def test_accelerate_config_validates(path, monkeypatch):
    from accelerate.commands.config.config_args import ClusterConfig
    from accelerate.utils import DeepSpeedPlugin, DistributedType, FullyShardedDataParallelPlugin

    cluster = ClusterConfig.from_yaml_file(str(path))  # raises on a key accelerate does not know
    own = path.relative_to(ROOT).as_posix()
    (accelerate_config, training_config), = [c for c in launch_commands(path) if c[0] == own]
    args = launch_args(accelerate_config, training_config)
    for key in cluster.fsdp_config:  # launch copies them onto its arguments, unknown or not
        assert hasattr(args, key if key.startswith("fsdp") else f"fsdp_{key}"), f"{path}: unknown fsdp_config key {key}"
    for key in cluster.deepspeed_config:
        assert hasattr(args, key), f"{path}: unknown deepspeed_config key {key}"
    _, train_args, _ = parse_training(ROOT / training_config)

    if cluster.distributed_type == DistributedType.FSDP:
        from accelerate.utils.launch import prepare_multi_gpu_env

        assert args.use_fsdp
        for key, value in prepare_multi_gpu_env(args).items():
            if key.startswith(("FSDP_", "ACCELERATE_")):
                monkeypatch.setenv(key, value)
        plugin = FullyShardedDataParallelPlugin()  # reads and checks the launcher's FSDP_* settings
        assert plugin.fsdp_version == 2
        # transformers refuses FSDP's activation checkpointing together with the training argument
        assert not (plugin.activation_checkpointing and train_args.activation_checkpointing)
    elif cluster.distributed_type == DistributedType.DEEPSPEED:
        from accelerate.utils.launch import prepare_deepspeed_cmd_env

        assert args.use_deepspeed
        # CADFTTrainer raises for `batch` under DeepSpeed: its engine keeps the gradients
        assert train_args.cadft_estimator != "batch", f"{training_config}: DeepSpeed cannot run 'batch'"
        args.deepspeed_fields_from_accelerate_config = list(cluster.deepspeed_config)  # as launch_command sets it
        _, env = prepare_deepspeed_cmd_env(args)
        for key, value in env.items():
            if key.startswith("ACCELERATE_"):
                monkeypatch.setenv(key, value)
        ds = DeepSpeedPlugin().deepspeed_config
        assert ds["zero_optimization"]["stage"] == cluster.deepspeed_config["zero_stage"]
        # Left to the training config, so that they cannot disagree with it
        assert ds["gradient_accumulation_steps"] == "auto" and ds["gradient_clipping"] == "auto"
    else:
        assert cluster.distributed_type in (DistributedType.NO, DistributedType.MULTI_GPU)


def test_one_gpu_recipe_runs_through_its_header_command(tmp_path):
    """The header's `accelerate launch ... -m cadft.cli.main train --config ...`, with --cpu and
    flags that swap in a tiny model and 8 local rows: the YAML drives a real run."""
    from cadft.data import mixed_quality_demos
    from cadft.model.tiny import save_tiny

    model = save_tiny(tmp_path / "model")
    data = tmp_path / "demos.jsonl"
    mixed_quality_demos(8, seed=0).to_json(str(data))
    (accelerate_config, training_config), = launch_commands(RECIPES / "math-1.5b-1gpu.yaml")
    accelerate = [sys.executable, "-m", "accelerate.commands.launch"]
    cmd = [*accelerate, "--config_file", accelerate_config, "--cpu", "--mixed_precision", "no",
           "-m", "cadft.cli.main", "train", "--config", training_config,
           "--model_name_or_path", model, "--dataset_name", "", "--dataset_path", str(data),
           "--max_steps", "1", "--per_device_train_batch_size", "2", "--gradient_accumulation_steps", "2",
           "--max_length", "256", "--activation_checkpointing", "false",
           "--output_dir", str(tmp_path / "run"), "--save_strategy", "no", "--use_cpu", "true",
           "--disable_tqdm", "true"]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "TOKENIZERS_PARALLELISM": "false"}
    proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, f"{shlex.join(cmd)}\n{proc.stderr[-4000:]}"
    run = (tmp_path / "run" / "cadft_run.json").read_text()
    assert '"loss_type": "cadft"' in run and '"global_step": 1' in run
    assert '"cadft_estimator": "zscore"' in run  # the recipes train the paper's estimator


# What a 2-process CPU run changes in a shipped multi-GPU recipe, besides the model, the data,
# the step count and the output folder; each with its reason
CPU_LAUNCH_FLAGS = [
    "--num_processes", "2",  # the configs name 8 GPUs
    "--mixed_precision", "no",  # bf16 is the GPUs'; DeepSpeed refuses a bf16 config beside float32 training arguments
]
CPU_TRAINING_FLAGS = [
    "--use_cpu", "true",  # without a GPU, accelerate keeps no backend and each process counts itself alone
]
CPU_ENV = {
    "DS_ACCELERATOR": "cpu",  # DeepSpeed's CPU accelerator (gloo where oneCCL is absent)
    # accelerate ignores FSDP on a gloo process group; this relabels it (tests/cpu_fsdp/sitecustomize.py)
    "PYTHONPATH": str(ROOT / "tests" / "cpu_fsdp"),
}
# What each recipe runs on, as `cadft train` records it (cadft_run.json)
ENGINES = {"ddp": ("MULTI_CPU", None), "zero2": ("DEEPSPEED", 2), "zero3": ("DEEPSPEED", 3), "fsdp": ("FSDP", None)}


@pytest.mark.parametrize("setup", list(ENGINES))
def test_multi_process_recipe_runs_through_its_header_command(tmp_path, setup):
    """The recipe's own launch command on 2 CPU processes (gloo), its accelerate config and its
    training config as written, but for the model, the data and the step count: a tiny local
    model and 2 optimizer steps of the recipe's own global batch (4 x 8 x 2 processes = 64
    rows). It trains on the engine the recipe names and saves a checkpoint."""
    if setup.startswith("zero"):
        require_deepspeed()
    from cadft.data import mixed_quality_demos
    from cadft.model.tiny import save_tiny

    model = save_tiny(tmp_path / "model")
    data = tmp_path / "demos.jsonl"
    mixed_quality_demos(128, seed=0).to_json(str(data))
    path = RECIPES / f"math-1.5b-{setup}.yaml"
    (accelerate_config, training_config), = launch_commands(path)
    _, train_args, _ = parse_training(path)
    assert train_args.per_device_train_batch_size * train_args.gradient_accumulation_steps * 2 * 2 == 128
    run = tmp_path / "run"
    cmd = [sys.executable, "-m", "accelerate.commands.launch", "--config_file", accelerate_config, *CPU_LAUNCH_FLAGS,
           "-m", "cadft.cli.main", "train", "--config", training_config, *CPU_TRAINING_FLAGS,
           "--model_name_or_path", model, "--dataset_name", "", "--dataset_path", str(data), "--max_steps", "2",
           "--output_dir", str(run)]
    env = {**os.environ, **CPU_ENV, "OMP_NUM_THREADS": "1", "TOKENIZERS_PARALLELISM": "false"}
    proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, f"{shlex.join(cmd)}\n{proc.stderr[-4000:]}"
    assert "terminate called" not in proc.stderr
    record = json.loads((run / "cadft_run.json").read_text())
    kind, stage = ENGINES[setup]
    assert record["distributed"] == {"type": kind, "num_processes": 2, "zero_stage": stage}
    assert record["global_step"] == 2 and record["cadft_estimator"] == "zscore"
    checkpoint = run / "checkpoint-2"  # the Trainer saves at the last step; published whole (cadft.training.checkpoint_folders)
    assert {"trainer_state.json", "cadft_state.json", "rng_state_1.pth"} <= {p.name for p in checkpoint.iterdir()}
    if stage is not None:
        assert (checkpoint / "global_step2").is_dir()  # DeepSpeed's own checkpoint, every rank's shard
    [summary] = [line.strip() for line in proc.stdout.splitlines() if "'train_loss'" in line]
    print(f"{setup}: {summary}")  # the run's closing log line (logging_steps 5: no step of 2 logs)


@pytest.mark.min_deps
def test_hub_data_with_a_limit_reads_only_the_first_rows(tmp_path, monkeypatch):
    """The recipes' `dataset_name` + `max_train_samples: 100000` streams the first rows
    instead of preparing the whole split (for NuminaMath-CoT, 860k rows) in datasets'
    cache. Here the hub dataset is a local folder, which `datasets.load_dataset` reads the
    same way; its cache is a fresh folder, to see what a load writes there."""
    import datasets

    from cadft.cli.train import DataArguments, _load_data

    folder = tmp_path / "numina"
    folder.mkdir()
    rows = [{"messages": [{"role": "user", "content": f"{i}+1?"}, {"role": "assistant", "content": f"{i + 1}"}]}
            for i in range(6)]
    (folder / "train.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    cache = tmp_path / "cache"
    monkeypatch.setattr(datasets.config, "HF_DATASETS_CACHE", cache)
    prepared = lambda: sorted(p.name for p in cache.rglob("*.arrow"))  # noqa: E731

    dataset = _load_data(DataArguments(dataset_name=str(folder), max_train_samples=4))
    assert dataset["messages"] == [r["messages"] for r in rows[:4]]
    assert prepared() == []  # streamed: no split was prepared
    dataset = _load_data(DataArguments(dataset_name=str(folder)))  # no limit: the whole split, prepared
    assert len(dataset) == 6 and prepared()
