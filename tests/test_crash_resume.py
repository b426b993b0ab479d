"""Crash safety: SIGKILL a real run mid-step, mid-checkpoint-save and mid-rewriting-round,
resume, and get the uninterrupted run back; incomplete checkpoints are skipped on resume.

    pytest tests/test_crash_resume.py -q

The killed runs are tests/crash_train.py in a subprocess, which kills itself at an exact
moment chosen by an environment variable; the resumed runs and the uninterrupted
reference run in this process. The policy model and the rewriting server are those of
tests/test_rewriting_e2e.py.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from transformers import TrainerCallback

from cadft import CADFTTrainer
from cadft.cli.main import main as cadft_main
from cadft.model.tiny import save_tiny, tiny_llama
from cadft.rewriting.store import ORPHANED_FILE, PROVENANCE_FILE
from cadft.training.state_io import read_state

from crash_train import CRASH_ENV, crash_trainer
from helpers import trainer_args
from rewrite_train import rewriting_state
from test_rewriting_e2e import (  # noqa: F401  (fixtures are found by name)
    RUN_TIMEOUT_S,
    assert_close,
    assert_dataset_keeps_every_row,
    assert_rounds_not_duplicated,
    chat_server,
    plain_model,
    read_jsonl,
    server,
)

HERE = Path(__file__).parent


def logged_losses(trainer) -> dict[int, float]:
    return {h["step"]: h["loss"] for h in trainer.state.log_history if "loss" in h}


def spy_on_step_losses(trainer) -> dict[int, float]:
    """The training loss of every optimizer step this trainer runs, logged or not (a
    rewriting round's log at a step takes the place of that step's training log)."""
    losses = {}
    training_step = trainer.training_step

    def spy(*args, **kwargs):
        loss = training_step(*args, **kwargs)
        losses[trainer.state.global_step + 1] = loss.item()  # one micro-batch per step here
        return loss

    trainer.training_step = spy
    return losses


def checkpoint_dirs(out: Path) -> list[str]:
    return sorted(p.name for p in out.iterdir() if p.name.startswith("checkpoint-"))


class _StartStep(TrainerCallback):
    """Records the global step training (re)starts from."""

    def __init__(self):
        self.step = None

    def on_train_begin(self, args, state, control, **kwargs):
        self.step = state.global_step


@pytest.fixture(scope="module")
def references(plain_model, chat_server, tmp_path_factory):  # noqa: F811
    """mode -> the crash tests' run in that rewriting mode, uninterrupted, in this process
    (each run once, when a test first asks for it)."""
    runs = {}

    def reference(mode: str) -> dict:
        if mode not in runs:
            chat_server.reset()
            out = tmp_path_factory.mktemp(f"reference-{mode}")
            trainer = crash_trainer(plain_model, out, chat_server.base_url, mode)
            losses = spy_on_step_losses(trainer)
            trainer.train()
            runs[mode] = {"state": json.loads(json.dumps(rewriting_state(trainer))), "losses": losses,
                          "logged": logged_losses(trainer), "records": read_jsonl(out / PROVENANCE_FILE)}
        return runs[mode]

    return reference


def run_until_killed(tmp_path: Path, crash_at: str, config: dict) -> None:
    """Run tests/crash_train.py until it SIGKILLs itself at `crash_at`."""
    (tmp_path / "run.json").write_text(json.dumps(config))
    env = {**os.environ, CRASH_ENV: crash_at, "OMP_NUM_THREADS": "1", "TOKENIZERS_PARALLELISM": "false"}
    log = tmp_path / "killed.log"
    with open(log, "w") as f:
        proc = subprocess.Popen([sys.executable, str(HERE / "crash_train.py"), str(tmp_path / "run.json")], env=env,
                                stdout=f, stderr=subprocess.STDOUT, cwd=str(tmp_path))
    try:
        code = proc.wait(timeout=RUN_TIMEOUT_S)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert code == -signal.SIGKILL, f"exit {code}, not killed at {crash_at}:\n{log.read_text()[-4000:]}"


# Where each crash hits the run (rounds after steps 3, 5, 7; checkpoints every 2 steps, the
# newest kept), the checkpoint the resume must start from, the rounds logged by then, and
# the rewriting mode (the project's verified rewriting, or the paper's procedure)
CRASHES = {
    "mid-step": ("step:7", 6, [1, 2], "verified"),
    "mid-checkpoint-save": ("save:4", 2, [1], "verified"),
    "mid-rewriting-round": ("round:5", 4, [1], "verified"),
    "mid-rewriting-round-paper": ("round:5", 4, [1], "paper"),
}


@pytest.mark.parametrize("moment", list(CRASHES))
def test_sigkill_then_resume_matches_the_uninterrupted_run(
    plain_model, server, references, tmp_path, moment  # noqa: F811
):
    crash_at, resume_step, logged_rounds, mode = CRASHES[moment]
    reference = references(mode)
    out = tmp_path / "run"
    run_until_killed(tmp_path, crash_at,
                     dict(model=plain_model, output_dir=str(out), base_url=server.base_url, mode=mode))

    # The kill left the previous complete checkpoint, and nothing else named checkpoint-*
    assert checkpoint_dirs(out) == [f"checkpoint-{resume_step}"]
    if moment == "mid-checkpoint-save":
        staged = out / ".staging-checkpoint-4" / "checkpoint-4"
        assert (staged / "model.safetensors").is_file() and not (staged / "trainer_state.json").exists()
    logged = read_jsonl(out / PROVENANCE_FILE)
    assert sorted({r["round"] for r in logged}) == logged_rounds
    saved_rounds = read_state(str(out / f"checkpoint-{resume_step}"))["rewriting"]["store"]["rounds_done"]
    orphans = [r for r in logged if r["round"] > saved_rounds]

    trainer = crash_trainer(plain_model, out, server.base_url, mode)
    start = _StartStep()
    trainer.add_callback(start)
    losses = spy_on_step_losses(trainer)
    trainer.train(resume_from_checkpoint=True)

    assert start.step == resume_step
    # The step after the checkpoint, and every later one, has the uninterrupted run's loss
    assert sorted(losses) == list(range(resume_step + 1, 9))
    for step, loss in losses.items():
        assert loss == pytest.approx(reference["losses"][step], rel=1e-6, abs=1e-8), f"step {step}"
    logged = logged_losses(trainer)  # the checkpoint's log history, then the resumed run's
    assert logged.keys() == reference["logged"].keys()
    for step, loss in reference["logged"].items():
        assert logged[step] == pytest.approx(loss, rel=1e-6, abs=1e-8), f"logged at step {step}"
    # m, tracker, accepted rewrites, collator targets, global step
    state = rewriting_state(trainer)
    if reference["state"]["normalizer"] is None:  # the paper's estimator keeps no normaliser
        assert state["normalizer"] is None
    else:
        assert state["normalizer"] == pytest.approx(reference["state"]["normalizer"], rel=1e-6)
    assert_close(json.loads(json.dumps(state)), reference["state"])

    # Every demonstration kept; rewrites.jsonl as if never interrupted; redone rounds moved aside
    records = read_jsonl(out / PROVENANCE_FILE)
    assert assert_rounds_not_duplicated(records) == [1, 2, 3]
    assert_close(records, reference["records"])
    orphaned = out / ORPHANED_FILE
    assert (read_jsonl(orphaned) if orphaned.exists() else []) == orphans
    accepted = {int(k): v for k, v in state["store"]["accepted"].items()}
    assert_dataset_keeps_every_row(out, accepted)
    # The last checkpoint holds the same rewriting state; no staging folder is left
    assert checkpoint_dirs(out) == ["checkpoint-8"]
    assert not list(out.glob(".staging-*"))
    assert_close(read_state(str(out / "checkpoint-8"))["rewriting"]["store"], state["store"])
    if mode == "paper":  # the draws, the same after the resume, replaced some targets and kept others
        assert {r["rejection"] for r in records} >= {None, "lost_draw"}
        assert all(r["verifier"] == "none" and r["draw"]["prob"] == 0.5 for r in records)


# ------------------------------------------------------------------------------ incomplete checkpoints


@pytest.fixture(scope="module")
def saved_run(tok, demos, tmp_path_factory):
    """Three CADFT steps with a checkpoint after each; the step-3 loss."""
    out = tmp_path_factory.mktemp("saved") / "run"
    trainer = CADFTTrainer(tiny_llama(tok), args=saved_args(out), train_dataset=demos, processing_class=tok)
    trainer.train()
    return out, logged_losses(trainer)[3]


def saved_args(out: Path):
    return trainer_args(out, max_steps=3, save_strategy="steps", save_steps=1)


def keep_only(folder: Path, names: set[str]) -> None:
    for path in folder.iterdir():
        if path.name not in names:
            shutil.rmtree(path) if path.is_dir() else path.unlink()


# How a crash (of an older version, or of another tool) can leave the newest checkpoint
INCOMPLETE = {
    "empty": lambda ckpt: keep_only(ckpt, set()),
    "cadft_state_only": lambda ckpt: keep_only(ckpt, {"cadft_state.json"}),
    "model_without_trainer_state": lambda ckpt: (ckpt / "trainer_state.json").unlink(),
    "truncated_trainer_state": lambda ckpt: (ckpt / "trainer_state.json").write_text('{"global_step": 3, "log_hi'),
}


@pytest.mark.parametrize("shape", list(INCOMPLETE))
def test_resume_skips_an_incomplete_checkpoint(tok, demos, saved_run, tmp_path, caplog, shape):
    source, step3_loss = saved_run
    out = tmp_path / "run"
    shutil.copytree(source, out)
    INCOMPLETE[shape](out / "checkpoint-3")
    assert (out / "checkpoint-3" / "model.safetensors").exists() == (shape in ("model_without_trainer_state",
                                                                             "truncated_trainer_state"))

    trainer = CADFTTrainer(tiny_llama(tok, seed=7), args=saved_args(out), train_dataset=demos, processing_class=tok)
    start = _StartStep()
    trainer.add_callback(start)
    with caplog.at_level(logging.WARNING, logger="cadft.training.trainer"):
        trainer.train(resume_from_checkpoint=True)

    assert start.step == 2
    assert f"Skipping incomplete checkpoints (a crash during a save?) {out / 'checkpoint-3'}" in caplog.text
    assert f"resuming from {out / 'checkpoint-2'}" in caplog.text
    assert logged_losses(trainer)[3] == pytest.approx(step3_loss, rel=1e-6)
    assert (out / "incomplete-checkpoint-3").is_dir()  # set aside, not deleted
    assert json.loads((out / "checkpoint-3" / "trainer_state.json").read_text())["global_step"] == 3


def test_resume_without_a_complete_checkpoint_says_so(tok, demos, saved_run, tmp_path):
    out = tmp_path / "run"
    shutil.copytree(saved_run[0], out)
    for step in (1, 2, 3):
        (out / f"checkpoint-{step}" / "trainer_state.json").unlink()
    trainer = CADFTTrainer(tiny_llama(tok), args=saved_args(out), train_dataset=demos, processing_class=tok)
    with pytest.raises(ValueError, match=r"^resume_from_checkpoint=True: no complete checkpoint in .*run "
                                         r"\(incomplete, skipped: .*checkpoint-1, .*checkpoint-2, .*checkpoint-3\)$"):
        trainer.train(resume_from_checkpoint=True)
    with pytest.raises(ValueError, match=r"checkpoint-2 is not a complete checkpoint: no trainer_state.json$"):
        trainer.train(resume_from_checkpoint=str(out / "checkpoint-2"))
    (out / "checkpoint-3" / "trainer_state.json").write_text("{}")
    (out / "checkpoint-3" / "cadft_state.json").write_text('{"normalizer": {"va')
    with pytest.raises(ValueError, match=r"checkpoint-3 is not a complete checkpoint: cadft_state.json is unreadable "
                                         r"\(JSONDecodeError: .*\)$"):
        trainer.train(resume_from_checkpoint=str(out / "checkpoint-3"))


@pytest.mark.min_deps  # the rotation is `rotate_checkpoints` from transformers 5.2, the Trainer's method before
def test_rotation_keeps_the_newest_published_checkpoints(tok, demos, tmp_path):
    """save_total_limit counts the published checkpoint-N folders: once a new one is
    published, the oldest beyond the limit is removed."""
    out = tmp_path / "run"
    args = trainer_args(out, max_steps=3, save_strategy="steps", save_steps=1, save_total_limit=2)
    CADFTTrainer(tiny_llama(tok), args=args, train_dataset=demos, processing_class=tok).train()
    assert checkpoint_dirs(out) == ["checkpoint-2", "checkpoint-3"]
    assert not list(out.glob(".staging-*"))


@pytest.mark.min_deps
def test_best_checkpoint_is_recorded_under_its_published_name(tok, demos, tmp_path):
    """load_best_model_at_end: the best checkpoint is named checkpoint-N, never its staging folder."""
    out = tmp_path / "run"
    args = trainer_args(out, max_steps=2, save_strategy="steps", save_steps=1, eval_strategy="steps", eval_steps=1,
                        load_best_model_at_end=True, metric_for_best_model="loss", greater_is_better=False)
    trainer = CADFTTrainer(tiny_llama(tok), args=args, train_dataset=demos, eval_dataset=demos.select(range(4)),
                           processing_class=tok)
    trainer.train()
    best = trainer.state.best_model_checkpoint
    assert best in (str(out / "checkpoint-1"), str(out / "checkpoint-2"))
    for step in (1, 2):
        saved = json.loads((out / f"checkpoint-{step}" / "trainer_state.json").read_text())
        assert saved["best_model_checkpoint"] in (str(out / "checkpoint-1"), str(out / "checkpoint-2"))
    assert not list(out.glob(".staging-*"))


# ------------------------------------------------------------------------------ cadft train --resume_from_checkpoint


CLI_FAST = ["--use_cpu", "true", "--bf16", "false", "--per_device_train_batch_size", "4", "--embedded_num_demos", "8",
            "--logging_steps", "1", "--disable_tqdm", "true", "--report_to", "none", "--summary", "false",
            "--save_steps", "1"]


def test_cli_resumes_from_latest(tmp_path, capsys):
    model = save_tiny(tmp_path / "model")
    out = tmp_path / "run"
    common = ["train", "--model_name_or_path", model, "--output_dir", str(out), *CLI_FAST]
    assert cadft_main([*common, "--max_steps", "2"]) == 0
    keep_only(out / "checkpoint-2", {"cadft_state.json"})  # as a crash in an older version's save left it
    assert cadft_main([*common, "--max_steps", "3", "--resume_from_checkpoint", "Latest"]) == 0
    state = json.loads((out / "checkpoint-3" / "trainer_state.json").read_text())
    assert state["global_step"] == 3 and [h["step"] for h in state["log_history"] if "loss" in h] == [1, 2, 3]
    assert (out / "incomplete-checkpoint-2").is_dir()


@pytest.mark.parametrize(
    "value,message",
    [
        ("true", "--resume_from_checkpoint true: no complete checkpoint in {out}"),
        ("LATEST", "--resume_from_checkpoint LATEST: no complete checkpoint in {out}"),
        ("{out}/checkpoint-9",
         "--resume_from_checkpoint {out}/checkpoint-9: checkpoint folder not found: {out}/checkpoint-9"),
    ],
)
def test_cli_resume_errors_in_one_line(tmp_path, capsys, value, message):
    out = tmp_path / "run"
    with pytest.raises(SystemExit) as exit_info:
        cadft_main(["train", "--output_dir", str(out), "--resume_from_checkpoint", value.format(out=out)])
    assert exit_info.value.code == 2
    error = capsys.readouterr().err.strip().splitlines()[-1]  # after the short usage line
    assert error.startswith(f"cadft train: error: {message.format(out=out)}")
