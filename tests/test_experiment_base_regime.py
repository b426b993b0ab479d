"""The testbed refuses a base policy outside the regime its questions need."""

from __future__ import annotations

import re

import pytest

from experiments.testbed.training import check_base


def test_a_base_in_the_regime_passes():
    check_base({"1": 0.97, "2": 0.98, "3": 0.58, "4": 0.06, "5": 0.04})


@pytest.mark.parametrize("acc, off", [
    ({"1": 0.76, "2": 0.56, "3": 0.13, "4": 0.06, "5": 0.04}, "['1', '2', '3']"),  # the fresh 3e-3 base
    ({"1": 1.0, "2": 1.0, "3": 0.95, "4": 0.9, "5": 0.8}, "['3']"),  # nothing left to learn
])
def test_a_base_outside_the_regime_is_refused_naming_the_operations(acc, off):
    with pytest.raises(RuntimeError, match=re.escape(f"off at {off} ops")):
        check_base(acc)
