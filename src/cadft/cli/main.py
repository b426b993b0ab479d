"""`cadft` entry point: dispatches `cadft <command> ...` to `cadft.cli.<command>.main`.

Subcommand modules are imported only when used, and import torch and friends only once
their arguments and data are checked, so `cadft --help`, `cadft <command> --help` and
errors in flags or data answer at once.

A user error (bad data: `cadft.data.DataError`; a missing model folder: `CommandError`)
is printed here as one line, `cadft <command>: error: ...`, with exit status 2.
`cadft --debug <command> ...` (or CADFT_DEBUG=1) shows its traceback instead.
"""

from __future__ import annotations

import importlib
import sys
import warnings

COMMANDS = {
    "train": "Fine-tune a model with SFT, DFT or CADFT (defaults: embedded model, LoRA, embedded data).",
    "score": "Score each demonstration's compatibility under a model, before any training.",
    "eval": "Evaluate a model on math problems with math-verify: one file, or the papers' benchmarks (avg@16).",
    "report": "Build one self-contained HTML report from one or more run directories.",
    "rewrite": "Run one offline compatibility-guided rewriting round over a dataset.",
}


def _usage() -> str:
    width = max(map(len, COMMANDS))
    lines = [
        "usage: cadft <command> [options]",
        "",
        "Compatibility-Aware Dynamic Fine-Tuning on top of TRL.",
        "",
        "commands:",
        *(f"  {name:<{width}}  {text}" for name, text in COMMANDS.items()),
        "",
        "Run `cadft <command> --help` for a command's options;",
        "`cadft --debug <command> ...` shows the traceback of an error.",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    from .common import CommandError, debug_requested

    argv = sys.argv[1:] if argv is None else list(argv)
    debug = argv[:1] == ["--debug"] or debug_requested()  # before the command: `train` has its own --debug
    argv = argv[1:] if argv[:1] == ["--debug"] else argv
    if not argv or argv[0] in ("-h", "--help", "help"):
        print(_usage())
        return 0
    if argv[0] in ("-V", "--version"):
        from cadft import __version__

        print(f"cadft {__version__}")
        return 0
    command, rest = argv[0], argv[1:]
    if command not in COMMANDS:
        print(f"cadft: error: unknown command {command!r}; choose one of: {', '.join(COMMANDS)}. "
              "Run `cadft --help` for what each does.", file=sys.stderr)
        return 2
    from ..data.validate import DataError

    # peft (0.21.2, the latest) reads transformers' deprecated `is_gradient_checkpointing` when it
    # wraps a model, which warns on transformers >= 5.23: peft's call, nothing a user can change
    warnings.filterwarnings("ignore", message="`is_gradient_checkpointing` is deprecated", category=FutureWarning)
    module = importlib.import_module(f"cadft.cli.{command}")
    try:
        return int(module.main(rest) or 0)
    except (DataError, CommandError) as error:
        if debug:
            raise
        print(f"cadft {command}: error: {' '.join(str(error).split())}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
