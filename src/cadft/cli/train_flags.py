"""`cadft train`'s checks before the heavy imports (torch, transformers and TRL take
seconds to load): a bad --config file, data file or model folder is answered at once.

`cadft train` takes every CADFTConfig/SFTConfig/TrainingArguments field and every TRL
ModelConfig field as a flag. Which fields exist, and their types and choices, depend on
the installed transformers and TRL, and only their parser knows them (TRL's
HfArgumentParser, built by `cadft.cli.train.make_parser`). So this check reads only the
flags cadft itself acts on before the imports, from the command line and the --config
file, and judges only what it checks:

- `--config FILE`: readable, and a YAML mapping;
- `--dataset_path FILE`: exists, and every row (up to `--max_train_samples`) is a
  demonstration (`--rewrite` also checks what a rewriting round needs);
- not both `--dataset_path` and `--dataset_name`;
- `--model_name_or_path`: a local path must exist.

Everything else (every other flag's value, the --config file's keys) is left to the live
parser, which answers for the installed versions once they load. `--help` and an unknown
flag are answered early from what a run of the live parser saved for these versions
(`cadft.cli.flag_cache`); the first run after an install or an upgrade leaves them to it.
tests/test_startup.py checks that the flags read here are the live parser's, read alike.
"""

from __future__ import annotations

import argparse
import sys

from . import flag_cache
from .common import CommandParser, check_model_path

__all__ = ["early_parser", "precheck"]

_TRUE = ("yes", "true", "t", "y", "1")  # transformers' string_to_bool: what the live parser reads as True
HELP = ("-h", "--help")


def _aliases(name: str) -> list[str]:
    """The option strings the live parser gives a field: `--a_b` and `--a-b`."""
    return [f"--{name}", f"--{name.replace('_', '-')}"] if "_" in name else [f"--{name}"]


def early_parser() -> argparse.ArgumentParser:
    """A parser of the flags read before the imports. It returns only the flags given, as
    strings (`--rewrite` alone: True), and leaves every other argument to the live parser."""
    parser = CommandParser(prog="cadft train", add_help=False, allow_abbrev=False,
                           argument_default=argparse.SUPPRESS)
    parser.add_argument("--config")
    for name in ("dataset_path", "dataset_name", "max_train_samples", "model_name_or_path"):
        parser.add_argument(*_aliases(name), dest=name)
    parser.add_argument(*_aliases("rewrite"), dest="rewrite", nargs="?", const=True)
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


def _limit(value) -> int | None:
    """--max_train_samples as the data check uses it; a value the live parser would
    refuse is left to it."""
    try:
        limit = int(value)
    except (TypeError, ValueError):
        return None
    return limit if limit > 0 else None


def _refuse_unknown(parser: argparse.ArgumentParser, options: list[str], flags: list[str]) -> None:
    """Exit 2 naming the `--flags` that are no flag of the live parser, nor the start of one
    (which it takes as an abbreviation)."""
    known = (*flags, "--config")
    unknown = [arg for arg in options if arg.startswith("--")
               and not any(flag.startswith(arg.split("=", 1)[0]) for flag in known)]
    if unknown:
        parser.error(f"unrecognized arguments: {' '.join(unknown)}")


def precheck(argv: list[str]) -> None:
    """Before any heavy import: exit 2 on a bad --config file or on both data flags, raise
    DataError for a bad --dataset_path file and CommandError for a missing model folder
    (cadft.cli.main prints either as one line). With flags saved for these versions: print
    the help, or exit 2 on an unknown flag."""
    options = argv[: argv.index("--")] if "--" in argv else argv
    saved = flag_cache.recall()
    parser = early_parser()
    if any(arg in HELP for arg in options):
        if saved is None:
            return  # the live parser prints it
        sys.stdout.write(saved["help"])
        parser.exit(0)
    if saved is not None:
        _refuse_unknown(parser, options, saved["flags"])
    given, _ = parser.parse_known_args(argv)
    given = vars(given)
    config_path = given.pop("config", None)
    values = {**(_read_config(parser, config_path) if config_path else {}), **given}
    if values.get("dataset_path") and values.get("dataset_name"):
        parser.error("give --dataset_path or --dataset_name, not both")
    if values.get("dataset_path"):
        from ..data.loading import read_demonstrations

        rewriting = values.get("rewrite", False)
        read_demonstrations(
            str(values["dataset_path"]),
            limit=_limit(values.get("max_train_samples")),
            rewriting=rewriting is True or str(rewriting).lower() in _TRUE,
        )
    check_model_path(str(values.get("model_name_or_path", "embedded")))
