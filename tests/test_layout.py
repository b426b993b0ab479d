"""The old module paths of the modules that moved into packages keep working
(`cadft/_compat`): each gives the new module's names, with a FutureWarning naming the new
path, so code written against an earlier cadft still runs."""

from __future__ import annotations

import importlib
import sys
import warnings

import pytest

from cadft._compat import MOVED, public_path

pytestmark = pytest.mark.min_deps


@pytest.mark.parametrize("old", sorted(MOVED))
def test_an_old_module_path_gives_the_new_names_with_a_warning(old):
    for name in [n for n in sys.modules if n == old or n.startswith(old + ".")]:
        del sys.modules[name]  # imported by an earlier test: import it afresh
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        module = importlib.import_module(old)
    assert any(issubclass(w.category, FutureWarning) and public_path(old) in str(w.message) for w in caught)
    new = importlib.import_module(MOVED[old])
    public = [n for n in dir(new) if not n.startswith("_")]
    assert public and all(getattr(module, n) is getattr(new, n) for n in public)


def test_from_import_of_an_old_path_reaches_the_code():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        from cadft.scoring import score_rows
        from cadft.trainer import CADFTTrainer
    from cadft import CADFTTrainer as current
    from cadft.model.scoring import score_rows as moved

    assert score_rows is moved and CADFTTrainer is current


def test_a_name_no_module_had_is_still_an_import_error():
    with pytest.raises(ImportError):
        importlib.import_module("cadft.no_such_module")
