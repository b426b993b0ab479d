"""`cadft train`'s flags without torch: answer `--help`, reject a bad flag and check the
data file before the heavy imports (torch, transformers, TRL take seconds to load).

`cadft train` takes every CADFTConfig/TrainingArguments/ModelConfig field as a flag, and
only TRL's parser knows them. So a snapshot of that parser, its help text and its flags,
is generated from the live parser and shipped beside this module; `precheck` answers
from it, and the live parser then parses the arguments as before. After changing a flag,
a default or a help text, regenerate the snapshot:

    python -m cadft.cli.train_flags

tests/test_startup.py regenerates it in memory and fails when the file differs, so the
snapshot cannot go stale unnoticed.
"""

from __future__ import annotations

import argparse
import functools
import sys
from pathlib import Path

from .common import CommandParser, check_model_path

__all__ = ["light_parser", "precheck", "snapshot_text"]

SNAPSHOT = Path(__file__).with_name("train_flags_snapshot.py")
HELP_WIDTH = 100  # columns of the shipped help text, whatever the terminal that generated it
# bf16's default is whether a CUDA GPU is present: shown as the rule, not as the generating machine's value
BF16_DEFAULT = "True on a CUDA GPU, else False"
_TRUE, _FALSE = ("yes", "true", "t", "y", "1"), ("no", "false", "f", "n", "0")


# --------------------------------------------------------------------------- the snapshot


def _type_name(action: argparse.Action) -> str | None:
    if action.nargs == 0:
        return None
    name = getattr(action.type, "__name__", "")
    if action.type in (int, float):
        return name
    return "bool" if name == "string_to_bool" else "str"  # the live parser converts the rest


def _flag(action: argparse.Action) -> tuple:
    """(option strings, dest, nargs, type, choices, const) of one live action."""
    choices = tuple(str(c) for c in action.choices) if action.choices is not None else None
    const = action.const if isinstance(action.const, (bool, int, float, str, type(None))) else True
    return tuple(action.option_strings), action.dest, action.nargs, _type_name(action), choices, const


def snapshot_text() -> str:
    """The snapshot module's text, from the live parser (imports torch, transformers, TRL)."""
    from .train import make_parser

    parser = make_parser()
    parser.formatter_class = functools.partial(argparse.ArgumentDefaultsHelpFormatter, width=HELP_WIDTH)
    parser.set_defaults(bf16=BF16_DEFAULT)
    help_lines = parser.format_help().splitlines(keepends=True)
    flags = [_flag(a) for a in parser._actions if not isinstance(a, argparse._HelpAction)]
    return "".join([
        '"""`cadft train --help` and its flags, generated from the live parser by\n',
        "`python -m cadft.cli.train_flags`: do not edit (tests/test_startup.py checks it is current).\"\"\"\n",
        "# ruff: noqa: E501\n\n",
        "HELP = (\n",
        *(f"    {line!r}\n" for line in help_lines),
        ")\n\n",
        "# (option strings, dest, nargs, type, choices, const) of every flag\n",
        "FLAGS = (\n",
        *(f"    {flag!r},\n" for flag in flags),
        ")\n",
    ])


# --------------------------------------------------------------------------- the light parser


def _to_bool(value: str) -> bool:
    """transformers' string_to_bool, the type of boolean flags."""
    if isinstance(value, bool):
        return value
    if value.lower() in _TRUE:
        return True
    if value.lower() in _FALSE:
        return False
    raise argparse.ArgumentTypeError(
        f"Truthy value expected: got {value} but expected one of yes/no, true/false, t/f, y/n, 1/0 (case insensitive)."
    )


class _PrintHelp(argparse.Action):
    def __init__(self, option_strings, dest, text: str = "", **kwargs):
        kwargs.pop("default", None)  # the parser's argument_default
        super().__init__(option_strings, dest=argparse.SUPPRESS, default=argparse.SUPPRESS, nargs=0, **kwargs)
        self.text = text

    def __call__(self, parser, namespace, values, option_string=None):
        sys.stdout.write(self.text)
        parser.exit(0)


def light_parser() -> argparse.ArgumentParser:
    """A parser with the live parser's flags (names, arity, types, choices) and no defaults:
    it returns only the flags given."""
    from .train_flags_snapshot import FLAGS, HELP

    parser = CommandParser(prog="cadft train", add_help=False, argument_default=argparse.SUPPRESS)
    parser.add_argument("-h", "--help", action=_PrintHelp, text="".join(HELP))
    parser.add_argument("--config", help="YAML file of flag values; flags given override it.")
    types = {"int": int, "float": float, "bool": _to_bool, "str": str}
    for option_strings, dest, nargs, type_name, choices, const in FLAGS:
        if nargs == 0:
            parser.add_argument(*option_strings, dest=dest, action="store_const", const=const)
            continue
        kwargs = {"const": const} if nargs == "?" else {}
        parser.add_argument(*option_strings, dest=dest, nargs=nargs, type=types[type_name], choices=choices,
                            **kwargs)
    return parser


def _read_config(parser: argparse.ArgumentParser, path: str) -> dict:
    import yaml

    try:
        with open(path, encoding="utf-8") as f:
            config = yaml.safe_load(f)
    except OSError as e:
        parser.error(f"--config: cannot read {path}: {e.strerror}")
    except (yaml.YAMLError, UnicodeDecodeError) as e:
        parser.error(f"--config: {path} is not valid YAML: {' '.join(str(e).split())}")
    if not isinstance(config, dict):
        parser.error(f"--config: {path} must hold a YAML mapping of flag names to values")
    return config


def precheck(argv: list[str]) -> None:
    """Before any heavy import: print the help, or exit 2 on a bad flag or --config file,
    or raise DataError for a bad --dataset_path file and CommandError for a missing model
    folder (cadft.cli.main prints either as one line)."""
    parser = light_parser()
    given = vars(parser.parse_args(argv))
    config_path = given.pop("config", None)
    values = {**(_read_config(parser, config_path) if config_path else {}), **given}
    if values.get("dataset_path") and values.get("dataset_name"):
        parser.error("give --dataset_path or --dataset_name, not both")
    if values.get("dataset_path"):
        from ..data.loading import read_demonstrations

        limit = values.get("max_train_samples")
        rewriting = values.get("rewrite", False)
        read_demonstrations(
            str(values["dataset_path"]),
            limit=limit if isinstance(limit, int) and limit > 0 else None,
            rewriting=rewriting is True or str(rewriting).lower() in _TRUE,
        )
    check_model_path(str(values.get("model_name_or_path", "embedded")))


if __name__ == "__main__":
    SNAPSHOT.write_text(snapshot_text(), encoding="utf-8")
    print(f"wrote {SNAPSHOT}")
