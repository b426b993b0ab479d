"""`cadft` entry point: dispatches `cadft <command> ...` to `cadft.cli.<command>.main`.

Subcommand modules are imported only when used, so `cadft --help` is instant.
"""

from __future__ import annotations

import importlib
import sys

COMMANDS = {
    "train": "Fine-tune a model with SFT, DFT or CADFT (defaults: embedded model, LoRA, embedded data).",
    "score": "Score each demonstration's compatibility under a model, before any training.",
    "eval": "Evaluate a model on math word problems (GSM8K / MATH-500 formats) with math-verify.",
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
        "Run `cadft <command> --help` for a command's options.",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    if not argv or argv[0] in ("-h", "--help", "help"):
        print(_usage())
        return 0
    if argv[0] in ("-V", "--version"):
        from cadft import __version__

        print(f"cadft {__version__}")
        return 0
    command, rest = argv[0], argv[1:]
    if command not in COMMANDS:
        print(f"cadft: unknown command {command!r}; choose one of: {', '.join(COMMANDS)}\n", file=sys.stderr)
        print(_usage(), file=sys.stderr)
        return 2
    module = importlib.import_module(f"cadft.cli.{command}")
    return int(module.main(rest) or 0)


if __name__ == "__main__":
    sys.exit(main())
