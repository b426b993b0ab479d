"""Shared fixtures: tiny random models, a naive full-softmax reference, trainer configs."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

from cadft.data import mixed_quality_demos
from cadft.model.tiny import tiny_llama, tiny_tokenizer

# The project's real data lives beside the checkout (../shared/data), never inside it
SHARED_DATA = Path(os.environ.get("CADFT_SHARED_DATA", Path(__file__).resolve().parents[2] / "shared" / "data"))


@pytest.fixture(scope="session")
def tok():
    return tiny_tokenizer()


@pytest.fixture
def tiny_model(tok):
    return tiny_llama(tok, seed=0)


@pytest.fixture(scope="session")
def demos():
    return mixed_quality_demos(32, seed=0)


# CI sets this (.ci/run) so that missing real data fails the run instead of skipping tests
REQUIRE_SHARED_DATA = os.environ.get("CADFT_REQUIRE_SHARED_DATA", "") not in ("", "0")


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The real GSM8K/MATH-500 files. A fresh clone has none beside it: the tests that need
    them skip with the reason (shown by -ra), unless CADFT_REQUIRE_SHARED_DATA=1."""
    if not SHARED_DATA.is_dir():
        reason = f"real data not found at {SHARED_DATA} (set CADFT_SHARED_DATA to its folder)"
        if REQUIRE_SHARED_DATA:
            pytest.fail(f"{reason}; CADFT_REQUIRE_SHARED_DATA=1 makes this a failure", pytrace=False)
        pytest.skip(reason)
    return SHARED_DATA


os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
# Tiny models gain nothing from a second thread, and on a shared 2-core machine two
# threads per process oversubscribe the cores and run far slower
torch.set_num_threads(1)
