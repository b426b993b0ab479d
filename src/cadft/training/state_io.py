"""Crash-safe reading and writing of the CADFT part of a checkpoint."""

from __future__ import annotations

import json
import os
import tempfile

__all__ = ["STATE_FILE", "write_json_atomic", "read_state"]

STATE_FILE = "cadft_state.json"


def write_json_atomic(path: str, obj) -> None:
    """Write JSON to `path` through a temporary file and a rename, so a crash leaves
    either the old file or the new one, never half of one."""
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", dir=directory)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump(obj, f, ensure_ascii=False)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def read_state(checkpoint_dir: str) -> dict | None:
    """The CADFT state saved in `checkpoint_dir`, or None when it has none."""
    path = os.path.join(checkpoint_dir, STATE_FILE)
    if not os.path.isfile(path):
        return None
    with open(path, encoding="utf-8") as f:
        return json.load(f)
