"""The paper's rewriting procedure (rewrite=True's default) and its gates as options.

    pytest tests/test_rewriting_paper.py -q

Pure parts first (schedule, top-u selection on a hand-built tracker, the replacement
draw, the prompt the generator receives, the round's log), then real runs: a tiny Llama
in a real CADFTTrainer whose own samples replace its targets (the policy generator), the
start-up warning of a run too short for any round, and one run on the embedded
SmolLM2-135M in each configuration (paper, verified).
"""

from __future__ import annotations

import json
import logging

import pytest
import torch
from datasets import Dataset

from cadft import CADFTConfig, CADFTTrainer
from cadft.data import mixed_quality_demos
from cadft.evaluation.verifiers import get_verifier
from cadft.model.tiny import tiny_llama, tiny_tokenizer
from cadft.rewriting import Candidate, GenerationSettings, rewrite_messages
from cadft.rewriting.draw import replacement_draw
from cadft.rewriting.presets import PRESETS, resolve_gates
from cadft.rewriting.round import LOST_DRAW, UNVERIFIED, RewriteItem, run_round
from cadft.rewriting.schedule import resolve_steps, round_due, select_highest_u
from cadft.rewriting.store import PROVENANCE_FILE
from cadft.rewriting.tracker import CompatibilityTracker, raw_compatibility

from helpers import trainer_args

# ------------------------------------------------------------------------------ schedule


def rounds_over(max_steps: int, **fields) -> list[int]:
    """The steps after which the Rewriter's schedule runs a round (the trainer's loop; none
    at the last step, as `Rewriter.after_step`)."""
    start, interval = resolve_steps(max_steps=max_steps, **fields)
    done, last = [], None
    for step in range(1, max_steps):
        if round_due(step, start=start, interval=interval, last_round_step=last):
            done.append(step)
            last = step
    return done


def test_no_round_before_the_warm_up_then_one_every_interval():
    unset = dict(start_step=None, start_fraction=None, interval_steps=None)
    assert rounds_over(2999, **unset) == []  # T_warm = 3000
    assert rounds_over(5001, **unset) == [3000, 4000, 5000]
    assert rounds_over(20, **dict(unset, start_step=3, interval_steps=4)) == [3, 7, 11, 15, 19]
    assert rounds_over(20, **dict(unset, start_fraction=0.25, interval_fraction=0.25)) == [5, 10, 15]


# ------------------------------------------------------------------------------ selection


def visit(tracker, compat: dict[int, float]) -> None:
    ids = list(compat)
    values = torch.tensor([compat[i] for i in ids], dtype=torch.float64)
    tracker.update(ids, values, values)


def test_top_u_selects_the_budget_of_highest_moving_average_u_among_eligible():
    tracker = CompatibilityTracker(ema_decay=0.5)
    # u = -log c; the moving average weighs the latest visit by 1/2
    visit(tracker, {0: 0.9, 1: 0.1, 2: 0.5, 3: 0.2, 4: 0.3, 5: 0.05})
    visit(tracker, {0: 0.9, 1: 0.6, 2: 0.05, 3: 0.2, 4: 0.3})  # 5 is seen once only
    expected_u = {i: 0.5 * raw_compatibility(a) + 0.5 * raw_compatibility(b)
                  for i, (a, b) in {0: (0.9, 0.9), 1: (0.1, 0.6), 2: (0.5, 0.05), 3: (0.2, 0.2),
                                    4: (0.3, 0.3)}.items()}
    tracked = tracker.moving_u()
    for i, u in expected_u.items():
        assert tracked[i] == (pytest.approx(u), 2)
    assert tracked[5] == (pytest.approx(raw_compatibility(0.05)), 1)

    ranked = sorted(expected_u, key=lambda i: -expected_u[i])  # the eligible ones, highest u first
    assert ranked == [2, 3, 1, 4, 0]
    for budget in (1, 2, 3, 5, 9):
        chosen = select_highest_u(tracked, min_visits=2, rewritten=set(), budget=budget)
        assert chosen == ranked[:budget]  # exactly min(budget, eligible) of them, highest first
    # 5 has the highest u of all but one visit; with min_visits 1 it comes first
    assert select_highest_u(tracked, min_visits=1, rewritten=set(), budget=2) == [5, 2]
    # Samples with an accepted rewrite are never selected again
    assert select_highest_u(tracked, min_visits=2, rewritten={2, 1}, budget=2) == [3, 4]
    # After an attempt a sample needs min_visits visits anew
    tracker.note_attempt(3, {"round": 1})
    assert select_highest_u(tracker.moving_u(), min_visits=2, rewritten=set(), budget=2) == [2, 1]
    visit(tracker, {3: 0.2})
    visit(tracker, {3: 0.2})
    assert select_highest_u(tracker.moving_u(), min_visits=2, rewritten=set(), budget=2) == [2, 3]
    # Ties: the lower id first
    assert select_highest_u({7: (1.0, 3), 4: (1.0, 3), 9: (2.0, 3)}, min_visits=1, rewritten=set(),
                            budget=2) == [9, 4]


def test_tracker_state_with_u_round_trips_and_old_checkpoints_load():
    tracker = CompatibilityTracker()
    visit(tracker, {1: 0.2, 2: 0.7})
    restored = CompatibilityTracker()
    restored.load_state_dict(json.loads(json.dumps(tracker.state_dict())))
    assert restored.records == tracker.records
    # A checkpoint written before u was tracked: u comes from c
    old = tracker.state_dict()
    for record in old["records"].values():
        for key in ("u_last", "u_ema", "visits_since_attempt"):
            del record[key]
    restored.load_state_dict(old)
    assert restored.moving_u()[1] == (pytest.approx(raw_compatibility(0.2)), 1)


# ------------------------------------------------------------------------------ the replacement draw


def test_the_draw_at_probability_0_half_and_1():
    ids = range(2000)
    never = [replacement_draw(seed=0, round_index=1, sample_id=i, prob=0.0)["replace"] for i in ids]
    always = [replacement_draw(seed=0, round_index=1, sample_id=i, prob=1.0)["replace"] for i in ids]
    assert not any(never) and all(always)
    half = [replacement_draw(seed=0, round_index=1, sample_id=i, prob=0.5) for i in ids]
    share = sum(d["replace"] for d in half) / len(half)
    assert 0.46 < share < 0.54  # 2000 fair coins: 4.5 standard deviations either side
    assert all(d["replace"] == (d["value"] < 0.5) and 0 <= d["value"] < 1 for d in half)
    # Seeded: the same (seed, round, sample) gives the same draw, in any order, in any process
    again = [replacement_draw(seed=0, round_index=1, sample_id=i, prob=0.5) for i in reversed(ids)][::-1]
    assert again == half
    other_seed = [replacement_draw(seed=1, round_index=1, sample_id=i, prob=0.5)["value"] for i in ids]
    other_round = [replacement_draw(seed=0, round_index=2, sample_id=i, prob=0.5)["value"] for i in ids]
    values = [d["value"] for d in half]
    assert other_seed != values and other_round != values
    with pytest.raises(ValueError, match="probability"):
        replacement_draw(seed=0, round_index=1, sample_id=0, prob=1.5)


# ------------------------------------------------------------------------------ one round


class Recorder:
    """A generator that answers every prompt with `answer(prompt)` and records the prompts."""

    name = "recorder"

    def __init__(self, answer):
        self.answer = answer
        self.asked: list = []

    def generate(self, conversations, settings):
        self.asked.extend(conversations)
        return [[Candidate(self.answer(c)) for _ in range(settings.num_candidates)] for c in conversations]


def score_from(table: dict[str, float]):
    return lambda pairs: [table[text] for _, text in pairs]


PAPER_ROUND = dict(verifier=None, needs_reference=False, reference_in_prompt=False, gain_gate=False)
ONE = GenerationSettings(max_new_tokens=64, temperature=0.7, top_p=0.9, num_candidates=1)


def items_of(n: int, prompt=lambda i: [{"role": "user", "content": f"Q{i}: what is {i} + 1?"}]):
    return [RewriteItem(sample_id=i, prompt=prompt(i), original=f"orig {i} #### {i + 1}", reference=str(i + 1),
                        u_tracked=2.0 + i) for i in range(n)]


def test_generation_gets_the_prompt_alone_unless_the_reference_option_is_on():
    conversational = items_of(2)
    plain = items_of(1, prompt=lambda i: f"Q{i}: what is {i} + 1?\nA:")
    table = {f"orig {i} #### {i + 1}": 0.1 for i in range(2)} | {"mine #### 1": 0.2}
    for items in (conversational, plain):
        generator = Recorder(lambda prompt: "mine #### 1")
        run_round(items, generator=generator, score=score_from(table), settings=ONE, min_gain=0.0, round_index=1,
                  step=5, **PAPER_ROUND)
        assert generator.asked == [item.prompt for item in items]  # exactly the training prompt, nothing added
        assert all("orig" not in json.dumps(prompt) for prompt in generator.asked)
    generator = Recorder(lambda prompt: "mine #### 1")
    run_round(conversational, generator=generator, score=score_from(table), settings=ONE, min_gain=0.0,
              round_index=1, step=5, **dict(PAPER_ROUND, reference_in_prompt=True))
    assert generator.asked == [rewrite_messages(item.prompt, item.original) for item in conversational]
    assert "orig 0 #### 1" in generator.asked[0][-1]["content"]


def test_paper_round_replaces_unverified_without_gain_and_records_the_draw():
    items = items_of(40)
    # Every candidate is LESS compatible than its original and has a wrong answer for odd ids:
    # the paper's round replaces whatever the draw picks
    answer = lambda prompt: f"mine {prompt[-1]['content'][1:].split(':')[0]} #### 1"  # noqa: E731
    table = {f"orig {i} #### {i + 1}": 0.5 for i in range(40)} | {f"mine {i} #### 1": 0.25 for i in range(40)}
    generator = Recorder(answer)
    result = run_round(items, generator=generator, score=score_from(table), settings=ONE, min_gain=0.0,
                       round_index=2, step=30, replace_prob=0.5, draw_seed=7, **PAPER_ROUND)
    draws = {i: replacement_draw(seed=7, round_index=2, sample_id=i, prob=0.5) for i in range(40)}
    won = {i for i, d in draws.items() if d["replace"]}
    assert 0 < len(won) < 40
    assert set(result.accepted) == won and len(generator.asked) == len(won)  # losers are not generated
    for r in result.records:
        assert r["draw"] == draws[r["sample_id"]]
        if r["sample_id"] in won:
            assert r["accepted"] and r["rejection"] is None and r["rewrite"] == f"mine {r['sample_id']} #### 1"
            assert r["candidates"][0]["verdict"] == UNVERIFIED and r["candidates"][0]["reason"] == "accepted"
            assert (r["compat_before"], r["compat_after"]) == (0.5, 0.25)
            assert r["u_before"] == pytest.approx(raw_compatibility(0.5))
            assert r["u_after"] == pytest.approx(raw_compatibility(0.25))
            assert r["answer_correct"] == (r["sample_id"] == 0)  # only "what is 0 + 1" has answer 1
        else:
            assert not r["accepted"] and r["rejection"] == LOST_DRAW and r["num_candidates"] == 0
            assert r["compat_before"] is None and r["answer_correct"] is None
        assert r["u_tracked"] == 2.0 + r["sample_id"]
    m = result.metrics
    assert (m["rewrite/selected"], m["rewrite/generated"], m["rewrite/replaced"], m["rewrite/kept"]) == (
        40, len(won), len(won), 40 - len(won))
    assert m["rewrite/mean_u_selected"] == pytest.approx(sum(2.0 + i for i in range(40)) / 40)
    assert m["rewrite/mean_u_before"] == pytest.approx(raw_compatibility(0.5))
    assert m["rewrite/mean_u_after"] == pytest.approx(raw_compatibility(0.25))
    assert m["rewrite/replaced_with_reference"] == len(won)
    assert m["rewrite/replaced_correct"] == pytest.approx((0 in won) / len(won))
    assert all(m[f"rewrite/rejected_{k}"] == 0 for k in ("verifier", "no_gain", "too_long", "no_reference"))
    json.dumps(result.records)


def test_draw_probability_0_and_1_in_a_round():
    items = items_of(6)
    table = {f"orig {i} #### {i + 1}": 0.5 for i in range(6)} | {"x": 0.1}
    kept = run_round(items, generator=Recorder(lambda p: "x"), score=score_from(table), settings=ONE, min_gain=0.0,
                     round_index=1, step=1, replace_prob=0.0, **PAPER_ROUND)
    assert kept.accepted == {} and kept.metrics["rewrite/kept"] == 6 and kept.metrics["rewrite/attempted"] == 0
    assert "rewrite/mean_u_after" not in kept.metrics and "rewrite/replaced_correct" not in kept.metrics
    every = run_round(items, generator=Recorder(lambda p: "x"), score=score_from(table), settings=ONE, min_gain=0.0,
                      round_index=1, step=1, replace_prob=1.0, **PAPER_ROUND)
    assert set(every.accepted) == set(range(6)) and every.metrics["rewrite/kept"] == 0
    assert every.metrics["rewrite/replaced_correct"] == 0.0  # "x" states no right answer


def test_the_gates_are_orthogonal_options():
    """Each gate on its own, with the prompt alone: a wrong answer fails the verifier; a
    less compatible candidate fails the gain gate; a long one is too long either way."""
    items = items_of(1)
    table = {"orig 0 #### 1": 0.5, "wrong #### 7": 0.9, "right #### 1": 0.3}
    verified = run_round(items, generator=Recorder(lambda p: "wrong #### 7"), score=score_from(table), settings=ONE,
                         min_gain=0.0, round_index=1, step=1,
                         **dict(PAPER_ROUND, verifier=get_verifier("math"), needs_reference=True))
    assert verified.records[0]["rejection"] == "verifier"
    gained = run_round(items, generator=Recorder(lambda p: "right #### 1"), score=score_from(table), settings=ONE,
                       min_gain=0.0, round_index=1, step=1, **dict(PAPER_ROUND, gain_gate=True))
    assert gained.records[0]["rejection"] == "no_gain"
    long = run_round(items, generator=Recorder(lambda p: "right #### 1"), score=score_from(table), settings=ONE,
                     min_gain=0.0, round_index=1, step=1, length=lambda prompt, text: 100, max_length=99,
                     **PAPER_ROUND)
    assert long.records[0]["rejection"] == "too_long" and long.accepted == {}


def test_presets_fill_only_the_gates_left_unset():
    assert resolve_gates("paper") == PRESETS["paper"] == {
        "reference_in_prompt": False, "verifier": "none", "gain_gate": False, "replace_prob": 0.5,
        "num_candidates": 1}
    assert resolve_gates("verified") == {"reference_in_prompt": True, "verifier": "math", "gain_gate": True,
                                         "replace_prob": 1.0, "num_candidates": 2}
    assert resolve_gates("paper", verifier="exact", gain_gate=True)["verifier"] == "exact"
    assert resolve_gates("verified", replace_prob=0.0)["replace_prob"] == 0.0  # 0 is a value, not "unset"


def test_config_defaults_are_the_papers_and_bad_values_name_their_field(tmp_path):
    args = CADFTConfig(str(tmp_path), rewrite=True, use_cpu=True, report_to="none")
    assert (args.rewrite_preset, args.rewrite_selection, args.rewrite_budget, args.rewrite_top_p,
            args.rewrite_temperature) == ("paper", "top_u", 0.005, 0.9, 0.7)
    assert (args.rewrite_reference_in_prompt, args.rewrite_verifier, args.rewrite_gain_gate,
            args.rewrite_replace_prob, args.rewrite_num_candidates) == (False, "none", False, 0.5, 1)
    assert resolve_steps(start_step=args.rewrite_start_step, start_fraction=args.rewrite_start_fraction,
                         interval_steps=args.rewrite_interval_steps, interval_fraction=args.rewrite_interval_fraction,
                         max_steps=10_000) == (3000, 1000)
    verified = CADFTConfig(str(tmp_path), rewrite=True, rewrite_preset="verified", rewrite_verifier="exact",
                           use_cpu=True, report_to="none")
    assert (verified.rewrite_reference_in_prompt, verified.rewrite_verifier, verified.rewrite_gain_gate,
            verified.rewrite_replace_prob) == (True, "exact", True, 1.0)
    for bad, field in [(dict(rewrite_preset="strict"), "rewrite_preset"),
                       (dict(rewrite_replace_prob=1.5), "rewrite_replace_prob"),
                       (dict(rewrite_selection="lowest"), "rewrite_selection"),
                       (dict(rewrite_min_visits=0), "rewrite_min_visits"),
                       (dict(rewrite_interval_fraction=0.0), "rewrite_interval_fraction"),
                       (dict(rewrite_template="{question} {reference}"), "rewrite_template")]:
        with pytest.raises(ValueError, match=field):
            CADFTConfig(str(tmp_path), rewrite=True, use_cpu=True, report_to="none", **bad)


# ------------------------------------------------------------------------------ real runs, tiny model


def spy_on_generator(trainer) -> list[tuple]:
    """(prompt, [texts]) of every prompt the rewrite generator gets, and what it returns."""
    seen = []
    generator = trainer.rewriter.generator
    generate = generator.generate

    def spy(conversations, settings, **kwargs):
        out = generate(conversations, settings, **kwargs)
        seen.extend((c, [cand.text for cand in cands]) for c, cands in zip(conversations, out))
        return out

    generator.generate = spy
    return seen


def spy_on_selection(trainer) -> list[tuple[dict, list[int]]]:
    """(the tracker's moving-average u and visits, the ids selected) at every round."""
    calls = []
    select = trainer.rewriter.select

    def spy():
        snapshot = dict(trainer.rewriter.tracker.moving_u())
        chosen = select()
        calls.append((snapshot, chosen))
        return chosen

    trainer.rewriter.select = spy
    return calls


def read_jsonl(path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def round_logs(trainer) -> list[dict]:
    return [h for h in trainer.state.log_history if "rewrite/round" in h]


PAPER_SCALED_DOWN = dict(rewrite=True, rewrite_start_step=2, rewrite_interval_steps=2, rewrite_min_visits=1,
                         rewrite_budget=0.25, rewrite_max_new_tokens=24, rewrite_answer_column="answer")


def test_paper_defaults_scaled_down_replace_targets_with_the_policys_own_samples(tmp_path):
    tok = tiny_tokenizer()
    data = mixed_quality_demos(16, seed=3)
    args = trainer_args(tmp_path, max_steps=7, **PAPER_SCALED_DOWN)
    trainer = CADFTTrainer(tiny_llama(tok, seed=0), args=args, train_dataset=data, processing_class=tok)
    seen = spy_on_generator(trainer)
    selections = spy_on_selection(trainer)
    trainer.train()

    logs = round_logs(trainer)
    assert [(h["step"], h["rewrite/round"], h["rewrite/selected"]) for h in logs] == [(2, 1, 4), (4, 2, 4), (6, 3, 4)]
    records = read_jsonl(tmp_path / PROVENANCE_FILE)
    assert len(records) == 12
    prompts = {i: row["prompt"] for i, row in enumerate(data)}
    asked = {json.dumps(prompt): texts for prompt, texts in seen}
    replaced = [r for r in records if r["accepted"]]
    assert replaced and any(r["rejection"] == LOST_DRAW for r in records)
    for r in records:
        assert r["draw"] == replacement_draw(seed=0, round_index=r["round"], sample_id=r["sample_id"], prob=0.5)
        assert r["generator"] == "policy" and r["verifier"] == "none"
        assert r["u_tracked"] is not None
        if r["draw"]["replace"]:
            # the generator got the training prompt alone, and its sample is the new target
            assert json.dumps(prompts[r["sample_id"]]) in asked
            [text] = asked[json.dumps(prompts[r["sample_id"]])]
            if r["accepted"]:
                assert r["rewrite"] == text and r["candidates"][0]["verdict"] == UNVERIFIED
            else:  # the one screen the paper's round keeps: a row that does not fit max_length
                assert r["rejection"] in ("too_long", "reply_too_large", "generation_error"), r["rejection"]
    assert len(seen) == sum(r["draw"]["replace"] for r in records)  # losers of the draw are never generated
    # Selection: in each round, exactly the budget's count of the highest tracked u among the
    # samples not yet rewritten and visited since their last attempt (rewrite_min_visits=1)
    rewritten: set[int] = set()
    for (tracked, selected), h in zip(selections, logs):
        eligible = sorted((i for i, (_, visits) in tracked.items() if visits >= 1 and i not in rewritten),
                          key=lambda i: (-tracked[i][0], i))
        assert selected == eligible[:4]
        assert [r["sample_id"] for r in records if r["round"] == h["rewrite/round"]] == selected
        rewritten |= {r["sample_id"] for r in replaced if r["round"] == h["rewrite/round"]}
    for h in logs:
        assert h["rewrite/kept"] + h["rewrite/attempted"] == h["rewrite/selected"]
        assert h["rewrite/replaced"] == h["rewrite/accepted"]
    accepted = trainer.rewriter.store.accepted
    assert set(accepted) == {r["sample_id"] for r in replaced}
    assert set(trainer.data_collator.targets) == set(accepted)
    for sample_id, entry in accepted.items():
        target = trainer.data_collator.targets[sample_id]
        completion = [t for t, label in zip(target["input_ids"], target["labels"]) if label != -100]
        assert tok.decode(completion).startswith(entry["text"])


def test_a_run_too_short_for_any_round_says_so_once_at_start(tmp_path, caplog):
    tok = tiny_tokenizer()
    args = trainer_args(tmp_path, max_steps=2, rewrite=True)  # the paper's T_warm, 3000 steps
    trainer = CADFTTrainer(tiny_llama(tok, seed=0), args=args, train_dataset=mixed_quality_demos(8, seed=0),
                           processing_class=tok)
    with caplog.at_level(logging.WARNING, logger="cadft.rewriting.manager"):
        trainer.train()
    warnings = [r.getMessage() for r in caplog.records if "no rewriting round will run" in r.getMessage()]
    assert len(warnings) == 1
    assert "warm-up is 3000 optimizer steps and training has 2" in warnings[0]
    assert "rewrite_start_step" in warnings[0] and "rewrite_start_fraction" in warnings[0]
    assert round_logs(trainer) == []
    ok = trainer_args(tmp_path / "ok", max_steps=2, rewrite=True, rewrite_start_fraction=0.5)
    caplog.clear()
    trainer = CADFTTrainer(tiny_llama(tok, seed=0), args=ok, train_dataset=mixed_quality_demos(8, seed=0),
                           processing_class=tok)
    with caplog.at_level(logging.WARNING, logger="cadft.rewriting.manager"):
        trainer.train()
    assert "no rewriting round will run" not in caplog.text
    assert [h["step"] for h in round_logs(trainer)] == [1]


def test_prompt_alone_of_string_data_is_the_string(tmp_path):
    """Plain-text prompt-completion data: the policy continues the prompt as training formats it."""
    tok = tiny_tokenizer()
    rows = [{"prompt": f"Q{i}: what is {i} plus 2?\nA:", "completion": f" It is {i + 2}.", "answer": str(i + 2)}
            for i in range(8)]
    args = trainer_args(tmp_path, max_steps=2, per_device_train_batch_size=8, rewrite=True, rewrite_start_step=1,
                        rewrite_min_visits=1, rewrite_budget=8, rewrite_replace_prob=1.0, rewrite_max_new_tokens=8,
                        rewrite_answer_column="answer")
    trainer = CADFTTrainer(tiny_llama(tok, seed=0), args=args, train_dataset=Dataset.from_list(rows),
                           processing_class=tok)
    seen = spy_on_generator(trainer)
    trainer.train()
    assert sorted(prompt for prompt, _ in seen) == sorted(row["prompt"] for row in rows)


def test_cadft_rewrite_defaults_are_the_trainings(tmp_path):
    from cadft.cli import rewrite

    config = CADFTConfig(str(tmp_path), rewrite=True, use_cpu=True, report_to="none")
    r = rewrite.build_parser().parse_args(["--dataset_path", "x.jsonl", "--output_dir", "o"])
    assert (r.rewrite_preset, r.rewrite_selection, r.rewrite_budget, r.rewrite_top_p, r.rewrite_temperature,
            r.rewrite_min_gain, r.rewrite_max_new_tokens) == (
        config.rewrite_preset, config.rewrite_selection, config.rewrite_budget, config.rewrite_top_p,
        config.rewrite_temperature, config.rewrite_min_gain, config.rewrite_max_new_tokens)


# ------------------------------------------------------------------------------ the embedded model


def test_paper_defaults_scaled_down_on_the_embedded_model(tmp_path):
    """SmolLM2-135M-Instruct with LoRA on the embedded demonstrations: after step 2 of 3,
    the 2 samples with the highest moving-average u are selected and the draws that win
    replace their targets with the model's own answers to the prompt alone; step 3
    trains on them."""
    from peft import LoraConfig

    from cadft.model.loading import resolve_model_path

    data = mixed_quality_demos(8, seed=0)
    args = trainer_args(tmp_path, max_steps=3, per_device_train_batch_size=4, learning_rate=5e-4, max_length=512,
                        rewrite=True, rewrite_start_step=2, rewrite_interval_steps=2, rewrite_min_visits=1,
                        rewrite_budget=2, rewrite_max_new_tokens=48, rewrite_answer_column="answer", rewrite_seed=3)
    trainer = CADFTTrainer(resolve_model_path("embedded"), args=args, train_dataset=data,
                           peft_config=LoraConfig(r=8, lora_alpha=16, target_modules="all-linear", task_type="CAUSAL_LM"))
    seen = spy_on_generator(trainer)
    selections = spy_on_selection(trainer)
    trainer.train()

    [log] = round_logs(trainer)
    assert (log["step"], log["rewrite/selected"]) == (2, 2)
    records = read_jsonl(tmp_path / PROVENANCE_FILE)
    # the 2 highest moving-average u of the 8 samples, each seen once in steps 1 and 2
    [(tracked, selected)] = selections
    assert sorted(tracked) == list(range(8))
    assert selected == sorted(tracked, key=lambda i: -tracked[i][0])[:2]
    assert [r["sample_id"] for r in records] == selected
    assert [r["u_tracked"] for r in records] == [tracked[i][0] for i in selected]
    replaced = [r for r in records if r["accepted"]]
    assert replaced, [r["draw"] for r in records]
    for r in replaced:
        prompt = data[r["sample_id"]]["prompt"]
        [(asked, texts)] = [(p, t) for p, t in seen if p == prompt]
        assert r["rewrite"] == texts[0] and r["rewrite"] != r["original"]  # the model's own sample, for the prompt alone
        assert r["candidates"][0]["verdict"] == UNVERIFIED and r["answer_correct"] in (True, False)
    assert log["rewrite/replaced"] == len(replaced) and log["rewrite/kept"] == 2 - len(replaced)
    assert set(trainer.data_collator.targets) == {r["sample_id"] for r in replaced}


def test_an_openai_generator_sends_a_plain_text_prompt_as_one_user_turn():
    from cadft.rewriting import OpenAIChatGenerator

    from test_generators import ChatServer

    server = ChatServer()
    try:
        generator = OpenAIChatGenerator(server.base_url, "test-model", api_key_env=None, max_retries=0)
        [[candidate]] = generator.generate(["Q: what is 2 plus 2?\nA:"], ONE)
        [request] = [r for r in server.requests if r["body"]]
        assert request["body"]["messages"] == [{"role": "user", "content": "Q: what is 2 plus 2?\nA:"}]
        assert candidate.text == "re:Q: what is 2 plus 2?\nA:#0"
    finally:
        server.close()
