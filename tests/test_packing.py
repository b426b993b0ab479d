"""Packed and padding-free batches with per-sample weights (`cadft.data.packing`): the same
demonstrations packed (TRL's `bfd`, padding-free) and padded give the same update, for the
paper's estimator and the earlier one, and for ASFT's and EAFT's token losses; every segment keeps its demonstration's sample id;
strategies that cut a demonstration are refused."""

from __future__ import annotations

import pytest
import torch

from cadft import CADFTTrainer
from cadft.data.collate import SAMPLE_ID, TOKEN_SAMPLE_IDS, split_packed
from cadft.data.packing import segment_of_labels, unpack_rows
from cadft.model.tiny import tiny_llama

from helpers import trainer_args
from test_trainer import assert_same_update, params

pytestmark = pytest.mark.min_deps  # also run on the lowest supported versions (.ci/run)

def test_unpack_rows_lays_each_segment_out_as_a_row():
    position_ids = torch.tensor([[0, 1, 2, 0, 1, 0, 1, 2, 3, 0, 0]])  # three demonstrations, then two pads
    assert segment_of_labels(position_ids).tolist() == [0, 0, 1, 1, 2, 2, 2, 2, 3, 4]
    values = torch.arange(1.0, 11.0).reshape(1, 10).requires_grad_()
    mask = torch.tensor([[1, 1, 0, 1, 0, 1, 1, 1, 0, 0]], dtype=torch.bool)
    rows, row_mask = unpack_rows(position_ids, 3, values, mask)
    assert rows.tolist() == [[1, 2, 0, 0], [3, 4, 0, 0], [5, 6, 7, 8]]
    assert row_mask.tolist() == [[True, True, False, False], [False, True, False, False], [False, True, True, True]]
    rows.sum().backward()  # the gradient reaches the packed tensor, once per position kept
    assert values.grad.tolist() == [[1.0] * 8 + [0.0] * 2]
    with pytest.raises(ValueError, match="beyond the batch's demonstrations"):
        unpack_rows(position_ids, 2, values, mask)


def test_split_packed_refuses_a_cut_demonstration():
    row = {"input_ids": [1, 2, 3, 4], "labels": [1, 2, 3, 4], "seq_lengths": [2, 2], TOKEN_SAMPLE_IDS: [7, 7, 9, 9]}
    assert [p[SAMPLE_ID] for p in split_packed(row)] == [7, 9]
    with pytest.raises(ValueError, match="cuts a demonstration"):
        split_packed({**row, TOKEN_SAMPLE_IDS: [7, 9, 9, 9]})


def _train(tok, data, out, **overrides):
    model = tiny_llama(tok, seed=0)
    before = params(model)
    trainer = CADFTTrainer(model, args=trainer_args(out, **overrides), train_dataset=data, processing_class=tok)
    trainer.train()
    return {k: v - before[k] for k, v in params(trainer.model).items()}, trainer


ESTIMATORS = {"paper": dict(cadft_beta=2.0), "earlier": dict(cadft_beta=2.0, cadft_estimator="ema",
                                                               cadft_token_power=0.5, cadft_calibration_samples=8),
              # The token losses of ASFT and EAFT, bare and weighted; two steps, since ASFT's KL and its
              # gradient are 0 at the first (the policy is the reference)
              "asft-paper": dict(loss_type="asft", asft_kl_coef=0.5, cadft_estimator="zscore", cadft_beta=2.0,
                                 max_steps=2),
              "eaft": dict(loss_type="eaft", eaft_k=500),
              "eaft-topk-paper": dict(loss_type="eaft", eaft_entropy="topk", eaft_k=5, cadft_estimator="zscore",
                                      cadft_beta=2.0)}


@pytest.mark.parametrize("estimator", list(ESTIMATORS))
@pytest.mark.parametrize("accumulate", [False, True], ids=["one-micro-batch", "accumulated"])
def test_packed_equals_padded(tok, demos, tmp_path, estimator, accumulate):
    """One optimizer step over the same 8 demonstrations: padded (8 rows), or packed by `bfd`
    into fewer padding-free rows (all in one micro-batch, or one packed row per micro-batch:
    the paper's pre-pass then runs over packed rows). The same update to float tolerance."""
    data = demos.select(range(8))
    common = dict(max_steps=1, optim="sgd", learning_rate=0.5, max_grad_norm=0.0, lr_scheduler_type="constant",
                  max_length=512)
    common.update(ESTIMATORS[estimator])
    padded, _ = _train(tok, data, tmp_path / "padded", per_device_train_batch_size=8, **common)
    probe = CADFTTrainer(tiny_llama(tok), args=trainer_args(tmp_path / "probe", packing=True, **common),
                         train_dataset=data, processing_class=tok)
    rows = len(probe.train_dataset)
    assert 1 < rows < 8  # bfd packed the 8 demonstrations into a few rows
    assert sorted(s[SAMPLE_ID] for s in probe.training_samples()) == list(range(8))
    split = dict(per_device_train_batch_size=1, gradient_accumulation_steps=rows) if accumulate else dict(
        per_device_train_batch_size=rows)
    packed, trainer = _train(tok, data, tmp_path / "packed", packing=True, **split, **common)
    assert trainer.padding_free
    assert_same_update(packed, padded, rtol=1e-4, atol=1e-7)
    assert any(v.abs().max() > 0 for v in packed.values())


def test_padding_free_without_packing_equals_padded(tok, demos, tmp_path):
    data = demos.select(range(8))
    common = dict(max_steps=2, optim="sgd", learning_rate=0.5, max_grad_norm=0.0, per_device_train_batch_size=4,
                  cadft_beta=2.0, max_length=None)  # TRL enforces no max_length without packing
    padded, _ = _train(tok, data, tmp_path / "padded", **common)
    flat, trainer = _train(tok, data, tmp_path / "flat", padding_free=True, **common)
    assert trainer.padding_free
    assert_same_update(flat, padded, rtol=1e-4, atol=1e-7)


def test_every_segment_reaches_the_loss_with_its_id(tok, demos, tmp_path):
    seen = []

    class Spy(CADFTTrainer):
        def _record(self, mode, rows, outputs, sample_ids, **kwargs):
            seen.append((sample_ids.tolist(), rows.valid.tolist()))
            return super()._record(mode, rows, outputs, sample_ids, **kwargs)

    data = demos.select(range(12))
    trainer = Spy(tiny_llama(tok), args=trainer_args(tmp_path, packing=True, max_length=512, max_steps=1,
                                                     per_device_train_batch_size=64),
                  train_dataset=data, processing_class=tok)
    trainer.train()
    [(ids, valid)] = seen
    assert sorted(ids) == list(range(12)) and all(valid)


@pytest.mark.parametrize("strategy", ["wrapped", "bfd_split"])
def test_strategies_that_cut_demonstrations_are_refused(tmp_path, strategy):
    with pytest.raises(ValueError, match=f"packing_strategy='{strategy}' cuts demonstrations"):
        trainer_args(tmp_path, packing=True, packing_strategy=strategy)


def test_cadft_train_packs_and_summarises_every_demonstration(tmp_path):
    """`cadft train --packing true`: the closing summary scores each demonstration of the
    packed rows under its own sample id and kind."""
    import json

    from cadft.cli.main import main
    from cadft.model.tiny import save_tiny

    out = tmp_path / "run"
    assert main(["train", "--model_name_or_path", save_tiny(tmp_path / "model"), "--output_dir", str(out),
                 "--max_steps", "1", "--per_device_train_batch_size", "2", "--embedded_num_demos", "8",
                 "--packing", "true", "--max_length", "512", "--disable_tqdm", "true"]) == 0
    scores = [json.loads(line) for line in (out / "sample_scores.jsonl").read_text().splitlines()]
    for stage in ("start", "end"):
        rows = [s for s in scores if s["stage"] == stage]
        assert sorted(s["sample_id"] for s in rows) == list(range(8))
        assert all(s["kind"] in ("plain", "foreign", "wrong") and s["num_tokens"] > 0 for s in rows)
    assert json.loads((out / "cadft_run.json").read_text())["train_samples"] == 8


def test_a_rewriting_round_on_packed_data_replaces_the_right_demonstration(tok, tmp_path):
    """The paper's rewriting on packed rows: the round selects and replaces demonstrations by
    their sample ids, and every later packed batch trains each replaced demonstration on its
    rewrite, in the segment that carries its id; the others keep their own tokens."""
    from cadft.data import mixed_quality_demos
    from cadft.rewriting.manager import _sample_tokens
    from cadft.rewriting.store import PROVENANCE_FILE

    data = mixed_quality_demos(16, seed=3)
    args = trainer_args(tmp_path, max_steps=8, packing=True, max_length=512, per_device_train_batch_size=2,
                        rewrite=True, rewrite_start_step=2, rewrite_interval_steps=10, rewrite_min_visits=1,
                        rewrite_budget=3, rewrite_replace_prob=1.0, rewrite_max_new_tokens=16,
                        rewrite_answer_column="answer")
    batches = []

    class Spy(CADFTTrainer):
        def compute_loss(self, model, inputs, *a, **k):
            if self.model.training:
                batches.append((self.state.global_step, inputs["sample_id"].tolist(),
                                _sample_tokens({k: v.cpu() for k, v in inputs.items() if hasattr(v, "cpu")})))
            return super().compute_loss(model, inputs, *a, **k)

    trainer = Spy(tiny_llama(tok, seed=0), args=args, train_dataset=data, processing_class=tok)
    assert trainer.padding_free
    trainer.train()
    records = [__import__("json").loads(line) for line in (tmp_path / PROVENANCE_FILE).read_text().splitlines()]
    replaced = {r["sample_id"] for r in records if r["accepted"]}
    assert len(records) == 3 and replaced, records
    targets = trainer.data_collator.targets
    assert set(targets) == replaced
    originals = {s["sample_id"]: s["input_ids"] for s in trainer.training_samples()}
    later = [(ids, tokens) for step, ids, tokens in batches if step >= 2]
    assert any(i in replaced for ids, _ in later for i in ids)
    for ids, tokens in later:
        for sample_id, seen in zip(ids, tokens):
            expected = targets[sample_id]["input_ids"] if sample_id in replaced else originals[sample_id]
            assert seen == expected, sample_id
