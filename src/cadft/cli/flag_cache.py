"""`cadft train`'s help text and flag names, kept from the live parser for the installed
versions, so that later runs answer `--help` and an unknown flag without importing torch.

The live parser (TRL's, over the transformers/TRL fields) is the only authority; a run
that builds it saves what it printed as help and the flags it took (`remember`), in
`$CADFT_CACHE` (default `~/.cache/cadft`, where the embedded model is converted too). The
file's name is a digest of what decides those flags: the installed transformers and TRL
versions and cadft's own files that define flags. Another install, or an edit to those
files, looks for another file; until a run has saved one, the live parser answers.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from importlib.metadata import version
from pathlib import Path

__all__ = ["recall", "remember"]

PACKAGE = Path(__file__).resolve().parents[1]
SOURCES = ("config.py", "defaults.py", "cli/train.py")  # DataArguments, CADFTConfig and the CLI defaults
LIBRARIES = ("transformers", "trl")  # TrainingArguments, SFTConfig, ModelConfig and the parser


def cache_file() -> Path:
    digest = hashlib.sha256()
    for name in LIBRARIES:
        digest.update(f"{name}=={version(name)}\n".encode())
    for source in SOURCES:
        digest.update((PACKAGE / source).read_bytes())
    root = Path(os.environ.get("CADFT_CACHE", Path.home() / ".cache" / "cadft"))
    return root / f"train-flags-{digest.hexdigest()[:16]}.json"


def recall() -> dict | None:
    """{"help": text, "flags": option strings} saved for these versions, or None."""
    try:
        saved = json.loads(cache_file().read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    ok = isinstance(saved, dict) and isinstance(saved.get("help"), str) and isinstance(saved.get("flags"), list)
    return saved if ok else None


def remember(parser) -> None:
    """Save the live parser's help and flags for later runs, once (best effort: a cache
    that cannot be written leaves the answers to the live parser)."""
    try:
        target = cache_file()
        if target.is_file():
            return
        flags = sorted({s for action in parser._actions for s in action.option_strings})
        text = json.dumps({"help": parser.format_help(), "flags": flags})
        target.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile("w", encoding="utf-8", dir=target.parent, delete=False,
                                         suffix=".tmp") as f:
            f.write(text)
        os.replace(f.name, target)  # whole or not at all, also when several processes start at once
    except OSError:
        pass
