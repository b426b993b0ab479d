"""`cadft train`'s closing summary does not change training: with it on or off, the
earlier estimator's trainer calibrates m on its own `--cadft_calibration_samples` rows (the
summary's start scores stand in for them only when they are the whole training set). Its
weights come from the library's functions in log space, for either estimator."""

from __future__ import annotations

import json
import math

import pytest

from cadft.cli.main import main
from cadft.model.tiny import save_tiny


@pytest.fixture(scope="module")
def tiny_dir(tmp_path_factory):
    return save_tiny(tmp_path_factory.mktemp("tiny") / "model")


def _train(tiny_dir, out, calibration_samples: int, summary: bool) -> float:
    code = main(["train", "--model_name_or_path", tiny_dir, "--output_dir", str(out), "--max_steps", "1",
                 "--per_device_train_batch_size", "4", "--embedded_num_demos", "8", "--disable_tqdm", "true",
                 "--cadft_estimator", "ema", "--cadft_calibration_samples", str(calibration_samples),
                 "--summary", str(summary).lower()])
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


def _scores(out) -> list[dict]:
    return [json.loads(line) for line in (out / "sample_scores.jsonl").read_text().splitlines()]


def test_summary_weights_survive_float32_underflow(tiny_dir, tmp_path):
    """beta 40 on a near-uniform tiny model: c**beta is about e^-180, far below float32's range.
    The summary's weights are computed in log space: finite, and spread over [w_min, w_max]
    instead of a crash ("normalizer must be > 0") or every row at w_min."""
    out = tmp_path / "underflow"
    assert main(["train", "--model_name_or_path", tiny_dir, "--output_dir", str(out), "--max_steps", "1",
                 "--per_device_train_batch_size", "4", "--embedded_num_demos", "8", "--disable_tqdm", "true",
                 "--cadft_estimator", "ema", "--cadft_beta", "40"]) == 0
    run = json.loads((out / "cadft_run.json").read_text())
    assert run["cadft_normalizer"] == 0.0 or run["cadft_normalizer"] < 1e-38  # m itself is below float32's range
    for stage in ("start", "end"):
        weights = [s["weight"] for s in _scores(out) if s["stage"] == stage]
        assert all(math.isfinite(w) and 0.1 <= w <= 3.0 for w in weights)
        assert max(weights) > 0.1 + 1e-6, stage  # not every row floored


def test_summary_of_the_paper_estimator(tiny_dir, tmp_path):
    """Default estimator: each row's z relative to the whole training set, w = exp(-beta max(0, z))."""
    out = tmp_path / "paper"
    assert main(["train", "--model_name_or_path", tiny_dir, "--output_dir", str(out), "--max_steps", "1",
                 "--per_device_train_batch_size", "4", "--embedded_num_demos", "8", "--disable_tqdm", "true"]) == 0
    start = [s for s in _scores(out) if s["stage"] == "start"]
    u = [-s["mean_logprob"] for s in start]
    mu = sum(u) / len(u)
    sigma = math.sqrt(sum((x - mu) ** 2 for x in u) / len(u))
    for s, x in zip(start, u):
        z = (x - mu) / (sigma + 1e-6)
        assert s["z"] == pytest.approx(z, abs=1e-4)
        assert s["weight"] == pytest.approx(math.exp(-max(0.0, z)), abs=1e-5)
    assert json.loads((out / "cadft_run.json").read_text())["cadft_estimator"] == "zscore"
