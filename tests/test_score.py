"""`cadft score` and the bucketed scorer behind it, on a tiny model and GSM8K-format rows
(real GSM8K rows for the embedded model, skipped where the real data is absent)."""

from __future__ import annotations

import json
import math
import subprocess
import sys

import pytest
import torch
from datasets import load_dataset

from cadft import CADFTConfig
from cadft.cli import rewrite as rewrite_cli
from cadft.cli.main import main as cli_main
from cadft.cli.score import build_parser, main
from cadft.data import load_demonstrations, mixed_quality_demos
from cadft.losses import sample_weights
from cadft.model.loading import load_model_and_tokenizer
from cadft.model.scoring import MAX_PADDING, _length_batches, score_rows, tokenize_demonstration
from cadft.model.tiny import save_tiny, tiny_llama, tiny_tokenizer

from helpers import naive_label_logprobs
from math_rows import gsm8k_rows, write_jsonl


@pytest.fixture(scope="module")
def tiny_dir(tmp_path_factory):
    # Character-level tokens: a GSM8K demonstration is several hundred of them
    return save_tiny(tmp_path_factory.mktemp("tiny"), max_position_embeddings=2048)


@pytest.fixture(scope="module")
def gsm8k(tmp_path_factory):
    """Twelve GSM8K-format rows written for the test."""
    return write_jsonl(tmp_path_factory.mktemp("gsm8k") / "train.jsonl", gsm8k_rows(12))


@pytest.fixture(scope="session")
def real_gsm8k(shared_data):
    return shared_data / "gsm8k" / "train.jsonl"


@pytest.fixture(scope="module")
def demos_file(tmp_path_factory):
    """Embedded mixed-quality demos (tags `kind`, `answer`) as a .jsonl file."""
    path = tmp_path_factory.mktemp("data") / "demos.jsonl"
    mixed_quality_demos(12, seed=0).to_json(str(path), lines=True)
    return path


def _write_jsonl(path, rows):
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    return path


def _read(path):
    return load_dataset(path.suffix[1:].replace("jsonl", "json"), data_files=str(path), split="train")


def _naive_compat(model, row) -> float:
    """exp(mean label log-prob) from full logits and a float32 log-softmax, one row at a time."""
    ids = torch.tensor([row["input_ids"]])
    with torch.no_grad():
        logps, mask = naive_label_logprobs(model, ids, torch.ones_like(ids), torch.tensor([row["labels"]]))
    return math.exp(float(logps.sum() / mask.sum()))


# --------------------------------------------------------------------------- outputs


def test_score_and_rewrite_defaults_are_the_trainers(tmp_path):
    """`cadft score` and `cadft rewrite` weigh rows as CADFTTrainer would at its defaults."""
    config = CADFTConfig(output_dir=str(tmp_path))
    score = build_parser().parse_args(["--dataset_path", "d.jsonl", "--output", "s.jsonl"])
    assert (score.cadft_estimator, score.cadft_beta) == (config.cadft_estimator, config.cadft_beta)
    rewrite = rewrite_cli.build_parser().parse_args(["--dataset_path", "d.jsonl", "--output_dir", "r"])
    assert rewrite.cadft_beta == config.cadft_beta


def test_gsm8k_scores_match_naive_reference_and_weights(tiny_dir, gsm8k, tmp_path, capsys):
    out = tmp_path / "scores.jsonl"
    assert main(["--model_name_or_path", tiny_dir, "--dataset_path", str(gsm8k), "--limit", "12",
                 "--output", str(out), "--batch_size", "4", "--top_k", "3"]) == 0  # fmt: skip
    printed = capsys.readouterr().out
    scores = _read(out)
    assert scores["sample_id"] == list(range(12))  # complete and in input order
    score_columns = {"num_tokens", "mean_logprob", "u", "compatibility", "z", "weight"}
    assert score_columns <= set(scores.column_names)

    # Tags carried through: GSM8K rows become prompt/completion plus `final_answer`
    demos = load_demonstrations(str(gsm8k), limit=12)
    assert scores["final_answer"] == demos["final_answer"]
    assert not {"prompt", "completion"} & set(scores.column_names)

    # Invariant 3 through the CLI: equal to a naive full-softmax reference, row by row
    model, tok = load_model_and_tokenizer(tiny_dir)
    rows = [tokenize_demonstration(tok, ex, max_length=1024) for ex in demos]
    for row, got in zip(rows, scores):
        assert got["num_tokens"] == sum(label != -100 for label in row["labels"][1:])
        assert got["compatibility"] == pytest.approx(_naive_compat(model, row), abs=1e-4)
        assert got["mean_logprob"] == pytest.approx(math.log(got["compatibility"]), abs=1e-5)

    # Weights are the paper's estimator's at CADFTConfig's defaults, z relative to the whole file,
    # checked against loops over the rows
    config = CADFTConfig(output_dir=str(tmp_path / "unused"))
    beta, eps = config.cadft_beta, config.cadft_eps
    u = [-x for x in scores["mean_logprob"]]
    mu = sum(u) / len(u)
    sigma = math.sqrt(sum((x - mu) ** 2 for x in u) / len(u))
    z = [(x - mu) / (sigma + eps) for x in u]
    assert scores["u"] == pytest.approx(u, abs=1e-6)
    assert scores["z"] == pytest.approx(z, abs=1e-4)
    assert scores["weight"] == pytest.approx([math.exp(-beta * max(0.0, x)) for x in z], abs=1e-5)
    assert "raw_weight" not in scores.column_names and "clipped" not in scores.column_names
    compat = torch.tensor(scores["compatibility"])

    # Summary and histogram
    assert "scored 12 demonstrations" in printed and f"mean {mu:.4f}  std {sigma:.4f}" in printed
    assert "relative to the whole file" in printed
    for q in ("p0 ", "p10 ", "p25 ", "p50 ", "p75 ", "p90 ", "p100 "):
        assert q in printed
    assert "3 least compatible" in printed and "#" in printed
    worst = int(torch.argmin(compat))
    assert f"\n  {worst:>9}  {compat[worst]:.4f}" in printed
    png = out.with_suffix(".png")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_parquet_output_tags_and_explicit_weight_options(tiny_dir, demos_file, tmp_path, capsys):
    out = tmp_path / "nested" / "scores.parquet"
    assert main(["--model_name_or_path", tiny_dir, "--dataset_path", str(demos_file), "--output", str(out),
                 "--normalization", "ema", "--beta", "2", "--normalizer", "0.05", "--w_min", "0.2", "--w_max", "2"]) == 0  # fmt: skip
    printed = capsys.readouterr().out
    scores = _read(out)
    demos = mixed_quality_demos(12, seed=0)
    assert scores["sample_id"] == list(range(12))
    assert scores["kind"] == demos["kind"] and scores["answer"] == demos["answer"]
    compat = torch.tensor(scores["compatibility"])
    expected = sample_weights(compat, beta=2.0, normalizer=0.05, w_min=0.2, w_max=2.0)
    torch.testing.assert_close(torch.tensor(scores["weight"]), expected)
    assert "m=0.05 (log m -2.9957, given)" in printed
    # Per-tag means over the default tag column `kind`
    assert "by kind" in printed
    for kind in set(demos["kind"]):
        idx = [i for i, k in enumerate(demos["kind"]) if k == kind]
        mean_c = sum(scores["compatibility"][i] for i in idx) / len(idx)
        assert f"  {len(idx):>5}  {mean_c:>7.4f}" in printed
    assert out.with_suffix(".png").is_file()


def test_dataset_sample_ids_and_rows_without_trainable_tokens(tiny_dir, tmp_path, capsys):
    rows = [
        {"prompt": "Q: 2+2?\nA:", "completion": " 4", "sample_id": 70, "source": "a"},
        {"prompt": "x" * 200, "completion": " cut off by --max_length", "sample_id": 11, "source": "b"},
        {"prompt": "Q: 3+3?\nA:", "completion": " 6, since 3+3 is 6", "sample_id": 5, "source": "a"},
    ]
    data = _write_jsonl(tmp_path / "ids.jsonl", rows)
    out = tmp_path / "ids.jsonl.scores.jsonl"
    assert main(["--model_name_or_path", tiny_dir, "--dataset_path", str(data), "--output", str(out),
                 "--max_length", "100", "--tag_column", "source"]) == 0  # fmt: skip
    printed = capsys.readouterr().out
    scores = [json.loads(line) for line in out.read_text().splitlines()]
    assert [s["sample_id"] for s in scores] == [70, 11, 5]
    assert [s["source"] for s in scores] == ["a", "b", "a"]
    empty = scores[1]
    assert empty["num_tokens"] == 0
    assert empty["compatibility"] is None and empty["weight"] is None
    # Left out of the statistics: the mean of u is over the two scored rows
    mean_u = (scores[0]["u"] + scores[2]["u"]) / 2
    assert f"mean {mean_u:.4f}" in printed and "1 with no trainable token" in printed
    assert empty["u"] is None and empty["z"] is None
    assert "by source" in printed and "\n  b " not in printed


# --------------------------------------------------------------------------- errors


def _exit(argv, capsys) -> tuple[int, str]:
    """Exit status and stderr of `cadft score ARGV`: argparse exits on a bad flag, the entry
    point prints a data or model-path error as one line and returns 2."""
    try:
        code = cli_main(["score", *argv])
    except SystemExit as info:
        code = info.code
    return code, capsys.readouterr().err


@pytest.mark.parametrize(
    "extra, message",
    [
        (["--beta", "-1"], "--beta must be >= 0"),
        (["--normalization", "ema", "--w_min", "2", "--w_max", "1"], "need 0 <= --w_min <= --w_max"),
        (["--normalization", "ema", "--normalizer", "0"], "--normalizer must be > 0"),
        (["--w_max", "3"], "--w_max: no meaning for --normalization zscore"),
        (["--normalization", "ema", "--eps", "0.1"], "--eps: no meaning for --normalization ema"),
        (["--eps", "0"], "--eps must be > 0"),
        (["--batch_size", "0"], "--batch_size must be >= 1"),
        (["--top_k", "-1"], "--top_k must be >= 0"),
        (["--output", "scores.csv"], "--output must end in one of .jsonl, .parquet"),
    ],
)
def test_bad_arguments_exit_2_with_the_reason(demos_file, extra, message, capsys):
    code, err = _exit(["--dataset_path", str(demos_file), "--output", "s.jsonl", *extra], capsys)
    assert code == 2 and message in err


def test_missing_files_bad_rows_and_unknown_tag_column(tiny_dir, demos_file, tmp_path, capsys):
    out = str(tmp_path / "s.jsonl")
    code, err = _exit(["--dataset_path", str(tmp_path / "nope.jsonl"), "--output", out], capsys)
    assert code == 2 and "nope.jsonl: file not found" in err

    code, err = _exit(["--model_name_or_path", str(tmp_path / "no-model"), "--dataset_path", str(demos_file),
                       "--output", out], capsys)  # fmt: skip
    assert code != 0 and "model folder not found" in err

    bad_rows = [{"question": "q", "answer": "so\n#### 1"}, {"question": "q2", "answer": ""}]
    bad = _write_jsonl(tmp_path / "bad.jsonl", bad_rows)
    code, err = _exit(["--model_name_or_path", tiny_dir, "--dataset_path", str(bad), "--output", out], capsys)
    assert code == 2 and "bad.jsonl: line 2: field 'answer': is empty" in err

    code, err = _exit(["--model_name_or_path", tiny_dir, "--dataset_path", str(demos_file), "--output", out,
                       "--tag_column", "level"], capsys)  # fmt: skip
    assert code != 0 and "--tag_column 'level'" in err and "kind" in err
    assert not (tmp_path / "s.jsonl").exists()


def test_console_script_reports_bad_arguments(demos_file):
    proc = subprocess.run(
        [sys.executable, "-m", "cadft.cli.main", "score", "--dataset_path", str(demos_file), "--output", "s.txt"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 2 and "--output must end in one of" in proc.stderr


# --------------------------------------------------------------------------- the scorer


def test_length_batches_bound_padding_and_cover_every_row():
    lengths = [50, 7, 300, 290, 280, 100, 95, 100, 12, 13, 270, 301, 1]
    batches = _length_batches(lengths, batch_size=3)
    assert sorted(i for batch in batches for i in batch) == list(range(len(lengths)))
    for batch in batches:
        width = lengths[batch[0]]
        assert len(batch) <= 3 and width == max(lengths[i] for i in batch)
        assert all(lengths[i] >= (1 - MAX_PADDING) * width for i in batch)
    assert [len(b) for b in batches][:2] == [3, 2]  # 301 300 290 | 280 270 | ...


def test_cpu_head_equals_trl_fused_head(monkeypatch, demos):
    """score_rows' CPU head (the model's own, on label positions) against TRL's fused head."""
    import cadft.model.scoring

    tok = tiny_tokenizer()
    rows = [tokenize_demonstration(tok, demos[i]) for i in range(10)]
    rows.append({"input_ids": rows[0]["input_ids"], "labels": [-100] * len(rows[0]["labels"])})
    model = tiny_llama(tok, seed=3, tie_word_embeddings=True)
    own = score_rows(model, rows, pad_token_id=tok.pad_token_id, batch_size=4, progress=False)
    monkeypatch.setattr(cadft.model.scoring, "_COMPACT_FUSED_HEAD_DEVICES", ("cpu",))
    fused = score_rows(model, rows, pad_token_id=tok.pad_token_id, batch_size=4, progress=False)
    for a, b in zip(own, fused):
        assert a["num_tokens"] == b["num_tokens"]
        assert a["compatibility"] == pytest.approx(b["compatibility"], abs=1e-5)
        assert a["mean_logprob"] == pytest.approx(b["mean_logprob"], abs=1e-4)
    assert own[-1] == {"num_tokens": 0, "mean_logprob": 0.0, "compatibility": 0.0}


# --------------------------------------------------------------------------- the embedded model


def test_embedded_model_on_eight_gsm8k_rows(real_gsm8k, tmp_path, capsys):
    out = tmp_path / "embedded.jsonl"
    assert main(["--dataset_path", str(real_gsm8k), "--limit", "8", "--output", str(out), "--top_k", "2"]) == 0
    scores = _read(out)
    assert scores["sample_id"] == list(range(8))
    # A 135M instruct model finds GSM8K solutions plausible but far from its own style
    assert all(0.05 < c < 0.95 for c in scores["compatibility"])
    assert min(scores["num_tokens"]) > 20
    model, tok = load_model_and_tokenizer("embedded")
    demos = load_demonstrations(str(real_gsm8k), limit=8)
    shortest = min(range(8), key=lambda i: scores["num_tokens"][i])
    row = tokenize_demonstration(tok, demos[shortest], max_length=1024)
    assert scores["compatibility"][shortest] == pytest.approx(_naive_compat(model, row), abs=1e-4)
    assert "2 least compatible" in capsys.readouterr().out


def test_weight_defaults_are_the_library_defaults():
    """`cadft score` and `cadft rewrite` keep their own flag defaults (no trl import at
    start-up); they must be CADFTConfig's."""
    from cadft import CADFTConfig
    from cadft.cli import rewrite, score

    config = CADFTConfig("unused", report_to="none")
    s = score.build_parser().parse_args(["--dataset_path", "x.jsonl", "--output", "s.jsonl"])
    assert (s.cadft_estimator, s.cadft_beta) == (config.cadft_estimator, config.cadft_beta)
    score._check_args(score.build_parser(), s)
    assert s.cadft_eps == config.cadft_eps
    earlier = CADFTConfig("unused", report_to="none", cadft_estimator="ema")
    e = score.build_parser().parse_args(["--dataset_path", "x.jsonl", "--output", "s.jsonl", "--normalization", "ema"])
    score._check_args(score.build_parser(), e)
    assert (e.cadft_w_min, e.cadft_w_max) == (earlier.cadft_w_min, earlier.cadft_w_max)
    r = rewrite.build_parser().parse_args(["--dataset_path", "x.jsonl", "--output_dir", "o"])
    assert r.cadft_beta == config.cadft_beta


@pytest.mark.parametrize("normalization", ["ema", "zscore"])
def test_weights_do_not_underflow_float32(normalization):
    """A row whose c**beta is below float32's range (mean log-prob about -30 at beta 4: c**beta
    about e^-120): the weights are computed in log space, so the other rows keep their weights
    instead of every one collapsing to w_min around a floored m."""
    from argparse import Namespace

    from cadft.cli.score import _weights
    from cadft.losses import clipped_weights

    scores = [{"num_tokens": 5, "mean_logprob": s, "compatibility": math.exp(s)} for s in (-30.0, -30.2, -29.8)]
    args = Namespace(cadft_estimator=normalization, cadft_beta=4.0, cadft_eps=1e-6, normalizer=None,
                     cadft_w_min=0.1, cadft_w_max=3.0)
    audit = _weights(scores, args)
    w = audit.weights.tolist()
    assert all(math.isfinite(x) and x > 0 for x in w)
    if normalization == "ema":
        log_m = math.log(sum(math.exp(4 * (s + 30)) for s in (-30.0, -30.2, -29.8)) / 3) - 120  # by hand
        assert audit.log_normalizer == pytest.approx(log_m, abs=1e-5)  # float32 mean log-probs
        expected = [min(max(math.exp(4 * s - log_m), 0.1), 3.0) for s in (-30.0, -30.2, -29.8)]
        assert w == pytest.approx(expected, rel=1e-5)
        assert w[2] > 1 > w[0] > w[1] > 0.1  # not all at w_min
        torch.testing.assert_close(audit.weights, clipped_weights(torch.tensor([-30.0, -30.2, -29.8]), beta=4.0,
                                                                   log_normalizer=log_m, w_min=0.1, w_max=3.0)[0])
    else:
        assert w[0] == w[2] == 1.0 and 0 < w[1] < 1  # u = 30.2 is the one above the mean 30
