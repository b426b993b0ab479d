"""Leaving a multi-process (torchrun) run without gloo's exit-time abort.

Even after `accelerator.end_training()` destroys the process group, a gloo process can
still die at interpreter exit with "terminate called without an active exception"
(SIGABRT): a C++ worker thread is destroyed while joinable during static destruction.
It is rare and comes after every file is written, but it turns a finished run into a
failed one for torchrun and for any pipeline watching the exit status. Once a run's
work is done and saved, a torchrun worker leaves with `os._exit`, which skips that
teardown; logs and standard streams are flushed first.

    trainer.accelerator.end_training()
    exit_if_torchrun(0)        # returns at once outside torchrun
"""

from __future__ import annotations

import logging
import os
import sys

__all__ = ["under_torchrun", "exit_if_torchrun"]


def under_torchrun() -> bool:
    """Whether this process is a worker started by torchrun (or `accelerate launch`)."""
    return "TORCHELASTIC_RUN_ID" in os.environ


def exit_if_torchrun(code: int = 0) -> None:
    """Under torchrun: flush logs and streams, then end the process with `code` at once."""
    if not under_torchrun():
        return
    logging.shutdown()
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):  # closed or broken pipe: nothing left to flush
            pass
    os._exit(code)
