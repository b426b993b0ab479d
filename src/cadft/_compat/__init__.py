"""The old import paths of modules that moved, kept working: `import cadft.scoring` gives a
module whose names are those of `cadft.model.scoring`, with a FutureWarning naming the new
path. One table (`MOVED`) and one import hook (installed by `cadft/__init__.py`); nothing
here is imported by cadft itself.

The old module is a view, not the moved module: reading a name works (`from cadft.scoring
import score_rows`), but setting one on it (a test's monkeypatch) does not reach the code,
which reads the new module. Patch the new path.
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.util
import sys
import warnings

MOVED = {
    # the trainer and its parts
    "cadft.trainer": "cadft.training.trainer",
    "cadft.trainer_data": "cadft.training.data",
    "cadft.trainer_rewriting": "cadft.training.rewriting",
    "cadft.trainer_checkpoints": "cadft.training.checkpoints",
    "cadft.checkpoints": "cadft.training.checkpoint_folders",
    "cadft.state_io": "cadft.training.state_io",
    "cadft.teardown": "cadft.training.teardown",
    "cadft.token_inputs": "cadft.training.token_inputs",
    # the model: loading, the scoring pass, generation
    "cadft.models": "cadft.model.loading",
    "cadft.tiny": "cadft.model.tiny",
    "cadft.scoring": "cadft.model.scoring",
    "cadft.generation": "cadft.model.generation",
    "cadft.vocab_tiles": "cadft.model.vocab_tiles",
    "cadft.sharding": "cadft.model.sharding",
    # data, losses, estimators, evaluation
    "cadft.collate": "cadft.data.collate",
    "cadft.packing": "cadft.data.packing",
    "cadft.conversation": "cadft.data.conversation",
    "cadft.token_losses": "cadft.losses.token_loss",
    "cadft.normalizer": "cadft.estimators.normalizer",
    "cadft.verifiers": "cadft.evaluation.verifiers",
    # modules that were already re-exports of cadft.evaluation (their own names kept)
    "cadft.evaluate": "cadft._compat.evaluate",
    "cadft.suite": "cadft.evaluation",
    "cadft.suite.benchmarks": "cadft._compat.suite_benchmarks",
    "cadft.suite.grading": "cadft._compat.suite_grading",
    "cadft.suite.metrics": "cadft._compat.suite_metrics",
    "cadft.suite.vllm_request": "cadft._compat.suite_vllm_request",
}
_PACKAGES = {name.rsplit(".", 1)[0] for name in MOVED}


def public_path(name: str) -> str:
    """Where an old module's names live now, as a user should import them."""
    target = MOVED[name]
    return "cadft.evaluation" if target.startswith("cadft._compat.") else target


class OldPaths(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """Finds the old names of MOVED (only those: the files are gone, so nothing else would)."""

    def find_spec(self, fullname, path=None, target=None):
        if fullname not in MOVED:
            return None
        return importlib.util.spec_from_loader(fullname, self, is_package=fullname in _PACKAGES)

    def create_module(self, spec):
        return None  # a plain module, filled by exec_module

    def exec_module(self, module) -> None:
        name = module.__name__
        warnings.warn(f"{name} moved: import from {public_path(name)} (the old path will be removed)",
                      FutureWarning, stacklevel=2)
        new = importlib.import_module(MOVED[name])
        module.__getattr__ = lambda attr: getattr(new, attr)
        module.__dir__ = lambda: dir(new)
        module.__doc__ = f"Moved to {public_path(name)}."
        if name in _PACKAGES:
            module.__path__ = []


def install() -> None:
    if not any(isinstance(finder, OldPaths) for finder in sys.meta_path):
        sys.meta_path.append(OldPaths())
