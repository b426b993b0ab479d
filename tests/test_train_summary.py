"""`cadft train`'s closing summary does not change training: with it on or off, the
trainer calibrates m on its own `--cadft_calibration_samples` rows (the summary's start
scores stand in for them only when they are the whole training set)."""

from __future__ import annotations

import json
import math

import pytest

from cadft.cli.main import main
from cadft.tiny import save_tiny


@pytest.fixture(scope="module")
def tiny_dir(tmp_path_factory):
    return save_tiny(tmp_path_factory.mktemp("tiny") / "model")


def _train(tiny_dir, out, calibration_samples: int, summary: bool) -> float:
    code = main(["train", "--model_name_or_path", tiny_dir, "--output_dir", str(out), "--max_steps", "1",
                 "--per_device_train_batch_size", "4", "--embedded_num_demos", "8", "--disable_tqdm", "true",
                 "--cadft_calibration_samples", str(calibration_samples), "--summary", str(summary).lower()])
    assert code == 0
    return json.loads((out / "cadft_run.json").read_text())["cadft_normalizer"]


@pytest.mark.parametrize("calibration_samples", [3, 64])  # 3 of 8 rows; 64: the whole set
def test_summary_leaves_the_normaliser_as_without_it(tiny_dir, tmp_path, calibration_samples):
    with_summary = _train(tiny_dir, tmp_path / "on", calibration_samples, summary=True)
    without = _train(tiny_dir, tmp_path / "off", calibration_samples, summary=False)
    assert math.isclose(with_summary, without, rel_tol=1e-5)
    scores = (tmp_path / "on" / "sample_scores.jsonl").read_text().splitlines()
    assert len(scores) == 16  # 8 rows, scored at the start and at the end


def test_calibration_samples_change_the_normaliser(tiny_dir, tmp_path):
    assert not math.isclose(_train(tiny_dir, tmp_path / "a", 1, True), _train(tiny_dir, tmp_path / "b", 8, True),
                            rel_tol=1e-3)
