"""CADFTConfig fields as flags of `cadft score` and `cadft rewrite`, named as in `cadft train`.

    add_config_flags(parser, {"cadft_beta": "--beta"})   # --cadft_beta; --beta still works, deprecated
    args = parser.parse_args(argv)
    flag = flag_names(args)                              # how this command line spells each field

Each flag takes its type, default, choices and help from the CADFTConfig field itself,
read from config.py's source: importing CADFTConfig imports TRL (seconds), and these
commands answer --help and a bad flag at once (tests/test_config_flags.py checks the
reading against the dataclass). The old short flag of a field still works, hidden from
--help, with a `cadft <command>: warning:` line naming the new flag; both with different
values is an error.
"""

from __future__ import annotations

import argparse
import ast
import sys
import textwrap
from functools import cache
from pathlib import Path

from cadft import defaults

__all__ = ["add_config_flags", "config_fields", "deprecation_epilog", "flag_names", "parse_bool"]

CONFIG_SOURCE = Path(__file__).resolve().parents[1] / "config.py"
_SPELLED = "_config_flag_spelling"  # namespace attribute: {field: (option string, value)}


def parse_bool(text: str) -> bool:
    value = text.strip().lower()
    if value not in ("true", "false", "1", "0", "yes", "no"):
        raise argparse.ArgumentTypeError(f"expected true or false, got {text!r}")
    return value in ("true", "1", "yes")


_TYPES = {"str": str, "int": int, "float": float, "bool": parse_bool}


@cache
def config_fields() -> dict[str, dict]:
    """{field: {"type", "default", "help", "choices"}} of CADFTConfig's own fields with a
    plain type (str, int, float, bool, each optionally `| None`), read from its source."""
    tree = ast.parse(CONFIG_SOURCE.read_text(encoding="utf-8"))
    config = next(node for node in tree.body if isinstance(node, ast.ClassDef) and node.name == "CADFTConfig")
    fields = {}
    for node in config.body:
        if not (isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name)
                and isinstance(node.value, ast.Call) and getattr(node.value.func, "id", None) == "field"):
            continue
        kind = ast.unparse(node.annotation).removesuffix(" | None")
        if kind not in _TYPES:
            continue
        keywords = {k.arg: k.value for k in node.value.keywords}
        metadata = keywords.get("metadata")
        metadata = dict(zip((k.value for k in metadata.keys), metadata.values)) if metadata else {}
        try:
            fields[node.target.id] = {"type": _TYPES[kind], "default": _value(keywords.get("default")),
                                      "help": _value(metadata.get("help")), "choices": _value(metadata.get("choices"))}
        except ValueError:  # a value computed otherwise (LOSS_TYPES): not a field these commands take
            continue
    return fields


def _value(node: ast.expr | None):
    """A literal, a constant of `cadft.defaults` or `list(defaults.X)`; ValueError otherwise."""
    if node is None:
        return None
    if isinstance(node, ast.Call) and getattr(node.func, "id", None) == "list" and len(node.args) == 1:
        return list(_value(node.args[0]))
    if isinstance(node, ast.Attribute) and getattr(node.value, "id", None) == "defaults":
        return getattr(defaults, node.attr)
    return ast.literal_eval(node)


class _ConfigFlag(argparse.Action):
    """Stores a field's value under its name; an old flag also warns, and the two spellings
    with different values are an error."""

    def __init__(self, *args, new: str, **kwargs):
        super().__init__(*args, **kwargs)
        self.new = new

    def __call__(self, parser, namespace, values, option_string=None):
        spelled = namespace.__dict__.setdefault(_SPELLED, {})
        earlier = spelled.get(self.dest)
        if earlier is not None and earlier[0] != option_string and earlier[1] != values:
            old = option_string if option_string != self.new else earlier[0]
            parser.error(f"{earlier[0]} {earlier[1]} and {option_string} {values} disagree ({old} is the deprecated "
                         f"name of {self.new}); give {self.new} alone")
        if option_string != self.new:
            print(f"{parser.prog}: warning: {option_string} is deprecated; use {self.new} (the CADFTConfig field, "
                  "as in cadft train)", file=sys.stderr)
        spelled[self.dest] = (option_string, values)
        setattr(namespace, self.dest, values)


def add_config_flags(parser: argparse.ArgumentParser, old_flags: dict[str, str | None],
                     notes: dict[str, str] | None = None) -> None:
    """`--<field>` for each field in `old_flags` (its CADFTConfig type, default, choices and
    help, plus `notes[field]` where the command reads it differently), and the field's old
    flag (when not None) and its old field name (`defaults.RENAMED`) as deprecated aliases
    hidden from --help."""
    fields = config_fields()
    notes = notes or {}
    for name, old in old_flags.items():
        spec = fields[name]
        new = f"--{name}"
        help_ = " ".join(text for text in (spec["help"], notes.get(name)) if text)
        parser.add_argument(new, dest=name, action=_ConfigFlag, new=new, type=spec["type"], default=spec["default"],
                            choices=spec["choices"], help=help_.replace("%", "%%"))
        renamed = [f"--{before}" for before, after in defaults.RENAMED.items() if after == name]  # old field names
        for alias in [old, *renamed] if old is not None else renamed:
            parser.add_argument(alias, dest=name, action=_ConfigFlag, new=new, type=spec["type"],
                                choices=spec["choices"], default=argparse.SUPPRESS, help=argparse.SUPPRESS)


def flag_names(args: argparse.Namespace, old_flags: dict[str, str | None]):
    """How this command line spells each field in messages: by its old flag when any old
    flag was given (the user's vocabulary), else as `--<field>`. A name not in `old_flags`
    is spelled `--<name>`."""
    spelled = getattr(args, _SPELLED, {})
    old = any(option != f"--{field}" for field, (option, _) in spelled.items())

    def flag(name: str) -> str:
        return old_flags[name] if old and old_flags.get(name) else f"--{name}"

    return flag


def deprecation_epilog(old_flags: dict[str, str | None]) -> str:
    """One line that lists the old flags, for the command's --help."""
    pairs = ", ".join(f"{old} (--{name})" for name, old in old_flags.items() if old)
    return textwrap.fill(f"Deprecated, still accepted with a warning: {pairs}.", width=88)
