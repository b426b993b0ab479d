"""Crash-safe checkpoint folders: staged, published by a rename, found complete on resume.

A checkpoint of step N is first written, by every process, into a staging folder beside
the run's checkpoints, `.staging-checkpoint-N/checkpoint-N`. Only once every file is in it
(model, optimizer, scheduler, each process's RNG state, trainer_state.json and, last,
cadft_state.json) is it renamed to `checkpoint-N`: a rename is atomic on POSIX, so a
crash at any moment leaves either no `checkpoint-N` or a complete one. The staging name
does not match `checkpoint-*`, so neither transformers' rotation nor its resume sees it.

Folders named `checkpoint-N` that are incomplete anyway (written by an older version, by
another tool, or copied by hand) are skipped on resume and set aside as
`incomplete-checkpoint-N`, so that checkpoint rotation can never keep one of them in
place of a complete checkpoint.
"""

from __future__ import annotations

import json
import os
import re
import shutil

from transformers.trainer_utils import PREFIX_CHECKPOINT_DIR

from .state_io import STATE_FILE

__all__ = [
    "TRAINER_STATE_FILE",
    "checkpoint_step",
    "staged_checkpoint",
    "remove_staging",
    "publish_checkpoint",
    "incomplete_reason",
    "is_complete",
    "find_checkpoints",
    "latest_complete",
    "check_resumable",
    "set_aside",
    "resume_argument",
]

TRAINER_STATE_FILE = "trainer_state.json"  # transformers' TRAINER_STATE_NAME
STAGING_PREFIX = ".staging-"
INCOMPLETE_PREFIX = "incomplete-"
_CHECKPOINT = re.compile(rf"^{PREFIX_CHECKPOINT_DIR}-(\d+)$")


def checkpoint_step(name: str) -> int | None:
    """N for a folder named `checkpoint-N`, else None."""
    match = _CHECKPOINT.match(name)
    return int(match.group(1)) if match else None


def staged_checkpoint(run_dir: str, step: int) -> str:
    """Where the checkpoint of `step` is written before it is published."""
    name = f"{PREFIX_CHECKPOINT_DIR}-{step}"
    return os.path.join(run_dir, STAGING_PREFIX + name, name)


def remove_staging(run_dir: str) -> None:
    """Delete the staging folders a crashed save left behind (never a published checkpoint)."""
    if not os.path.isdir(run_dir):
        return
    for name in os.listdir(run_dir):
        if name.startswith(STAGING_PREFIX + PREFIX_CHECKPOINT_DIR):
            shutil.rmtree(os.path.join(run_dir, name), ignore_errors=True)


def _fsync(path: str) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _fsync_tree(folder: str) -> None:
    """Flush every file and folder under `folder` to disk, so the rename publishes data
    that survives a power cut, not only a killed process."""
    for root, _, files in os.walk(folder):
        for name in files:
            _fsync(os.path.join(root, name))
        _fsync(root)


def publish_checkpoint(staged: str, final: str) -> None:
    """Rename the complete `staged` folder to `final`, replacing an older `final`."""
    _fsync_tree(staged)
    staging_root = os.path.dirname(staged)
    replaced = os.path.join(staging_root, "replaced")
    if os.path.lexists(final):  # this step was saved before (a resume from an older checkpoint)
        os.replace(final, replaced)
    os.replace(staged, final)
    _fsync(os.path.dirname(final))
    shutil.rmtree(staging_root, ignore_errors=True)


def _json_problem(path: str) -> str | None:
    """Why the JSON file at `path` cannot be read, or None when it can."""
    name = os.path.basename(path)
    try:
        with open(path, encoding="utf-8") as f:
            json.load(f)
    except FileNotFoundError:
        return f"no {name}"
    except (OSError, ValueError) as e:
        return f"{name} is unreadable ({type(e).__name__}: {e})"
    return None


def incomplete_reason(folder: str) -> str | None:
    """Why `folder` is not a checkpoint a run can resume from, or None when it is one:
    trainer_state.json (the last file transformers writes) must be there and whole, and
    so must cadft_state.json if it is there."""
    if not os.path.isdir(folder):
        return "no such folder"
    problem = _json_problem(os.path.join(folder, TRAINER_STATE_FILE))
    if problem is None and os.path.lexists(os.path.join(folder, STATE_FILE)):
        problem = _json_problem(os.path.join(folder, STATE_FILE))
    return problem


def is_complete(folder: str) -> bool:
    return incomplete_reason(folder) is None


def find_checkpoints(output_dir: str) -> tuple[list[str], list[str]]:
    """(complete, incomplete) `checkpoint-N` folders of `output_dir`, each by ascending N."""
    if not os.path.isdir(output_dir):
        return [], []
    found = sorted(
        (step, os.path.join(output_dir, name))
        for name in os.listdir(output_dir)
        if (step := checkpoint_step(name)) is not None and os.path.isdir(os.path.join(output_dir, name))
    )
    complete, incomplete = [], []
    for _, path in found:
        (complete if is_complete(path) else incomplete).append(path)
    return complete, incomplete


def latest_complete(output_dir: str) -> tuple[str, list[str]]:
    """(the newest complete checkpoint of `output_dir`, every incomplete one). Raises
    ValueError when no checkpoint is complete."""
    complete, incomplete = find_checkpoints(output_dir)
    if not complete:
        skipped = f" (incomplete, skipped: {', '.join(incomplete)})" if incomplete else ""
        raise ValueError(f"no complete checkpoint in {output_dir}{skipped}")
    return complete[-1], incomplete


def check_resumable(folder: str) -> None:
    """Raise ValueError, in one line, unless `folder` is a complete checkpoint."""
    if not os.path.isdir(folder):
        raise ValueError(f"checkpoint folder not found: {folder}")
    reason = incomplete_reason(folder)
    if reason is not None:
        raise ValueError(f"{folder} is not a complete checkpoint: {reason}")


def set_aside(folder: str) -> str:
    """Rename an incomplete `checkpoint-N` to `incomplete-checkpoint-N` (a free name);
    returns the new path. Kept, not deleted: it may hold the only copy of something."""
    parent, name = os.path.split(folder)
    target, count = os.path.join(parent, INCOMPLETE_PREFIX + name), 1
    while os.path.lexists(target):
        count += 1
        target = os.path.join(parent, f"{INCOMPLETE_PREFIX}{name}.{count}")
    os.replace(folder, target)
    return target


def resume_argument(value: str | bool | None, output_dir: str) -> str | bool | None:
    """The `--resume_from_checkpoint` flag as `trainer.train` takes it: true or latest
    (any case) -> True, which resumes from the newest complete checkpoint of
    `output_dir`; false or empty -> None; anything else is a checkpoint folder. Raises
    ValueError, in one line, when there is nothing to resume from."""
    if value is None or isinstance(value, bool):
        return value or None
    word = value.strip().lower()
    if word in ("", "false", "no", "none"):
        return None
    try:
        if word in ("true", "latest", "yes"):
            latest_complete(output_dir)
            return True
        check_resumable(value)
    except ValueError as e:
        raise ValueError(f"--resume_from_checkpoint {value}: {e}") from None
    return value
