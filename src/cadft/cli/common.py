"""What several `cadft` subcommands share: short argument errors, one-line user errors,
the model argument.

A bad flag prints the short usage line and one line of error, not the full option list:

    usage: cadft train [options]
    cadft train: error: unrecognized arguments: --bogus_flag. Run `cadft train --help` for the options.

A user error found later (bad data, a missing model folder) is a `CommandError` or a
`cadft.data.DataError`; `cadft.cli.main` prints either as one line and exits with 2.
"""

from __future__ import annotations

import argparse
import os
import sys

MODEL_HELP = "'embedded' (SmolLM2-135M-Instruct), a model folder, a LoRA adapter folder, or a hub name."
USAGE = "%(prog)s [options]"


class CommandError(Exception):
    """A user error (not a bug) that the command line reports as one line, exit status 2."""


class ShortErrors:
    """argparse mixin: an error prints the short usage line, the message and where to find
    the options, instead of argparse's usage line that lists every option."""

    def error(self, message: str):
        message = message.rstrip(".")
        self.print_usage(sys.stderr)
        self.exit(2, f"{self.prog}: error: {message}. Run `{self.prog} --help` for the options.\n")


class CommandParser(ShortErrors, argparse.ArgumentParser):
    """An ArgumentParser with a short usage line and short errors."""

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("usage", USAGE)
        super().__init__(*args, **kwargs)


def add_model_argument(parser: argparse.ArgumentParser) -> None:
    """`--model_name_or_path`, defaulting to the embedded model."""
    parser.add_argument("--model_name_or_path", default="embedded", help=MODEL_HELP)


def check_model_path(name: str) -> None:
    """A CommandError when `name` is written as a local path that does not exist (a hub
    name or 'embedded' is checked when the model loads)."""
    if name != "embedded" and not os.path.exists(name) and name.startswith((".", "/", "~")):
        raise CommandError(f"model folder not found: {name}")


def debug_requested() -> bool:
    """CADFT_DEBUG=1: show tracebacks of user errors (as `cadft --debug <command> ...` does)."""
    return os.environ.get("CADFT_DEBUG", "") not in ("", "0")
