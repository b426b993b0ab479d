"""Rewriting components on their own: tracker, schedule, one round, the store.

    pytest tests/test_rewriting.py -q

The round runs with the real `math` verifier and a scripted generator whose outputs are
known; compatibilities come from a table, so each acceptance rule is checked exactly.
The end-to-end runs (training, HTTP server, kill -9, torchrun) are in
test_rewriting_e2e.py.
"""

from __future__ import annotations

import json

import pytest
import torch
from datasets import load_dataset

from cadft.evaluation.verifiers import get_verifier
from cadft.rewriting import Candidate, GenerationSettings, rewrite_messages
from cadft.rewriting.manager import target_length
from cadft.rewriting.round import REJECTION_REASONS, STORED_REPLY_CHARS, RewriteItem, run_round
from cadft.rewriting.schedule import budget_count, planned_rounds, resolve_steps, round_due, select_samples
from cadft.rewriting.store import DATASET_FILE, ORPHANED_FILE, PROVENANCE_FILE, RewriteStore
from cadft.rewriting.tracker import CompatibilityTracker

# ------------------------------------------------------------------------------ schedule


def rounds_over(steps: int, **schedule) -> list[int]:
    """The optimizer steps after which a round runs, simulating the trainer's loop."""
    start, interval = resolve_steps(**schedule)
    done, last = [], None
    for step in range(1, steps + 1):
        if round_due(step, start=start, interval=interval, last_round_step=last):
            done.append(step)
            last = step
    return done


def test_default_warm_up_and_interval_are_the_papers():
    schedule = dict(start_step=None, start_fraction=None, interval_steps=None, max_steps=6000)
    assert resolve_steps(**schedule) == (3000, 1000)
    assert rounds_over(6000, **schedule) == [3000, 4000, 5000, 6000]  # none before T_warm
    assert planned_rounds(start=3000, interval=1000, max_steps=6000) == [3000, 4000, 5000]  # none at the last step
    assert planned_rounds(start=3000, interval=1000, max_steps=3000) == []


def test_explicit_delay_and_interval():
    schedule = dict(start_step=7, start_fraction=0.9, interval_steps=3, max_steps=20)
    assert resolve_steps(**schedule) == (7, 3)  # an explicit step wins over the fraction
    assert rounds_over(20, **schedule) == [7, 10, 13, 16, 19]
    fraction = dict(schedule, start_step=None, start_fraction=0.3)
    assert resolve_steps(**fraction) == (6, 3)  # ceil(0.3 * 20)
    assert rounds_over(20, **fraction)[0] == 6
    # Degenerate values still give a schedule (no round before step 1, at most one per step)
    assert resolve_steps(start_step=0, start_fraction=None, interval_steps=0, max_steps=20) == (1, 1)
    # The interval as a fraction of training too; an explicit step count wins
    assert resolve_steps(start_step=None, start_fraction=0.5, interval_steps=None, interval_fraction=0.25,
                         max_steps=20) == (10, 5)
    assert resolve_steps(start_step=None, start_fraction=None, interval_steps=4, interval_fraction=0.25,
                         max_steps=20) == (3000, 4)


def test_round_due_counts_from_the_last_round():
    assert not round_due(4, start=5, interval=2, last_round_step=None)
    assert round_due(5, start=5, interval=2, last_round_step=None)
    assert not round_due(6, start=5, interval=2, last_round_step=5)
    assert round_due(7, start=5, interval=2, last_round_step=5)
    assert round_due(9, start=5, interval=2, last_round_step=6)  # late rounds do not shift the next one back


def test_budget_is_a_count_or_a_fraction():
    assert budget_count(0.1, 50) == 5
    assert budget_count(0.01, 50) == 1  # a fraction gives at least one sample
    assert budget_count(0.999, 10) == 9
    assert budget_count(1, 50) == 1 and budget_count(3, 50) == 3 and budget_count(3.7, 50) == 3
    assert budget_count(0.005, 100_000) == 500 and budget_count(0.005, 10) == 1  # the paper's 0.5%
    assert budget_count(0.005, 0) == 0  # an empty set: nothing to take
    for bad in (0, -1):
        with pytest.raises(ValueError, match="budget"):
            budget_count(bad, 50)


def test_select_samples_skips_rewritten_keeps_order_and_budget():
    ordered = [9, 4, 7, 1, 3]  # least compatible first
    assert select_samples(ordered, rewritten=set(), budget=3) == [9, 4, 7]
    assert select_samples(ordered, rewritten={4, 1}, budget=3) == [9, 7, 3]
    assert select_samples(ordered, rewritten={9, 4, 7, 1, 3}, budget=3) == []
    assert select_samples([], rewritten=set(), budget=3) == []


# ------------------------------------------------------------------------------ tracker


def visit(tracker, compat: dict[int, float], raw: dict[int, float] | None = None):
    """One training batch: sample id -> compatibility (and weight before clipping; the
    compatibility itself unless given)."""
    ids = list(compat)
    raw = raw or compat
    tracker.update(ids, torch.tensor([compat[i] for i in ids]), torch.tensor([raw[i] for i in ids]))


def test_tracker_last_ema_and_visits():
    tracker = CompatibilityTracker(ema_decay=0.5, flag_threshold=0.0)
    visit(tracker, {3: 0.2})
    visit(tracker, {3: 0.4, 5: 0.9})
    visit(tracker, {3: 0.1})
    r = tracker.records[3]
    assert (r.last, r.visits) == (pytest.approx(0.1), 3)
    assert r.ema == pytest.approx(0.5 * (0.5 * 0.2 + 0.5 * 0.4) + 0.5 * 0.1)  # the first visit sets the EMA
    assert tracker.records[5].ema == pytest.approx(0.9) and tracker.records[5].visits == 1
    assert all(r.flagged_streak == 0 for r in tracker.records.values())  # threshold 0 flags nothing


def test_persistence_needs_consecutive_flagged_visits():
    tracker = CompatibilityTracker(flag_threshold=0.5)
    # weights before clipping: sample 1 always low, 2 low-high-low-low, 3 always high
    visit(tracker, {1: 0.1, 2: 0.2, 3: 0.9})
    assert tracker.persistent(2) == []
    assert tracker.persistent(1) == [1, 2]  # least compatible first
    visit(tracker, {1: 0.1, 2: 0.8, 3: 0.9})  # an unflagged visit resets the streak
    assert [tracker.records[i].flagged_streak for i in (1, 2, 3)] == [2, 0, 0]
    assert tracker.persistent(2) == [1]
    visit(tracker, {1: 0.1, 2: 0.2, 3: 0.9})
    assert tracker.persistent(2) == [1]
    visit(tracker, {2: 0.3})  # samples are visited separately
    assert tracker.persistent(2) == [1, 2] and tracker.persistent(3) == [1]


def test_flagging_uses_the_weight_before_clipping():
    tracker = CompatibilityTracker(flag_threshold=0.5)
    visit(tracker, {1: 0.05, 2: 0.05}, raw={1: 0.4, 2: 0.6})  # same compatibility, different weights
    assert tracker.records[1].flagged_streak == 1 and tracker.records[2].flagged_streak == 0


def test_persistent_orders_by_ema_then_id():
    tracker = CompatibilityTracker(flag_threshold=1.0)
    visit(tracker, {4: 0.3, 2: 0.1, 8: 0.3, 6: 0.2})
    assert tracker.persistent(1) == [2, 6, 4, 8]


def test_quantile_flagging():
    tracker = CompatibilityTracker(flag_threshold=0.0, flag_quantile=0.25)
    values = {i: 0.1 * (i + 1) for i in range(8)}  # 0.1 ... 0.8
    visit(tracker, values)
    assert tracker.persistent(1) == [0, 1]  # the bottom quarter of the 8 compatibilities
    # Later visits are ranked against the latest values of every tracked sample
    visit(tracker, {7: 0.05})
    assert 7 in tracker.persistent(1)
    visit(tracker, {0: 0.75})
    assert 0 not in tracker.persistent(1)
    # Threshold and quantile flags add up
    both = CompatibilityTracker(flag_threshold=0.5, flag_quantile=0.25)
    visit(both, values, raw={i: 0.4 if i == 5 else 1.0 for i in values})
    assert sorted(both.persistent(1)) == [0, 1, 5]


def test_note_attempt_records_history_and_restarts_the_streak():
    tracker = CompatibilityTracker(flag_threshold=0.5)
    visit(tracker, {1: 0.1})
    visit(tracker, {1: 0.1})
    tracker.note_attempt(1, {"round": 1, "accepted": False, "rejection": "verifier"})
    assert tracker.records[1].flagged_streak == 0 and tracker.persistent(1) == []
    assert tracker.records[1].history == [{"round": 1, "accepted": False, "rejection": "verifier"}]
    visit(tracker, {1: 0.1})
    assert tracker.persistent(1) == [1] and tracker.persistent(2) == []  # P flagged visits anew


def test_tracker_state_round_trips_through_json():
    tracker = CompatibilityTracker(ema_decay=0.3, flag_threshold=0.6, flag_quantile=0.2)
    visit(tracker, {i: 0.07 * (i + 1) for i in range(6)})
    visit(tracker, {2: 0.33, 4: 0.01})
    tracker.note_attempt(4, {"round": 1, "step": 8, "accepted": True, "compat_before": 0.01, "compat_after": 0.4})
    restored = CompatibilityTracker()
    restored.load_state_dict(json.loads(json.dumps(tracker.state_dict())))
    assert restored.records == tracker.records
    assert (restored.ema_decay, restored.flag_threshold, restored.flag_quantile) == (0.3, 0.6, 0.2)
    # ... and it carries on exactly as the original does
    for t in (tracker, restored):
        visit(t, {0: 0.2, 5: 0.9, 9: 0.1})
    assert restored.records == tracker.records
    assert restored.persistent(1) == tracker.persistent(1)


def test_tracker_rejects_bad_settings():
    with pytest.raises(ValueError, match="ema_decay"):
        CompatibilityTracker(ema_decay=1.0)
    with pytest.raises(ValueError, match="flag_quantile"):
        CompatibilityTracker(flag_quantile=1.0)


# ------------------------------------------------------------------------------ one round


class ScriptedGenerator:
    """A rewrite generator with known outputs: question -> list of texts, where an entry
    `("error", why)` is a failed candidate. Records what it was asked."""

    name = "scripted"

    def __init__(self, replies: dict[str, list]):
        self.replies = replies
        self.asked: list[list[dict]] = []

    def generate(self, conversations, settings):
        self.asked.extend(conversations)
        out = []
        for conversation in conversations:
            question = next(q for q in self.replies if f"Problem:\n{q}\n" in conversation[-1]["content"])
            texts = self.replies[question][: settings.num_candidates]
            out.append([Candidate(None, error=t[1]) if isinstance(t, tuple) else Candidate(t) for t in texts])
        return out


class TableScore:
    """Compatibility of a (prompt, completion text) pair from a table; records the calls."""

    def __init__(self, table: dict[str, float]):
        self.table = table
        self.scored: list[tuple] = []

    def __call__(self, pairs):
        self.scored.extend(pairs)
        return [self.table[text] for _, text in pairs]


def item(sample_id, question, original, reference="5"):
    prompt = [{"role": "user", "content": question}]
    return RewriteItem(sample_id=sample_id, prompt=prompt, original=original, reference=reference)


SETTINGS = GenerationSettings(max_new_tokens=64, temperature=1.0, num_candidates=3)
MATH = get_verifier("math")


def round_of(items, replies, table, *, min_gain=0.05, num_candidates=3):
    generator = ScriptedGenerator(replies)
    score = TableScore(table)
    settings = GenerationSettings(max_new_tokens=64, temperature=1.0, num_candidates=num_candidates)
    result = run_round(items, generator=generator, verifier=MATH, score=score, settings=settings,
                       min_gain=min_gain, round_index=3, step=40, verifier_name="math")
    return result, generator, score


def by_id(result):
    return {r["sample_id"]: r for r in result.records}


def test_verifier_rejects_a_wrong_answer_however_compatible():
    items = [item(1, "Q1: 2 + 3?", "ORIG1 #### 5")]
    replies = {"Q1: 2 + 3?": ["2 + 3 = 6.\nThe answer is 6.", "2 plus 3 makes 4. #### 4"]}
    result, _, score = round_of(items, replies, {"ORIG1 #### 5": 0.1}, num_candidates=2)
    r = by_id(result)[1]
    assert not r["accepted"] and r["rejection"] == "verifier" and r["rewrite"] is None and r["compat_after"] is None
    assert [c["verdict"] for c in r["candidates"]] == [False, False]
    assert all(c["reason"].startswith("verifier: ") and c["compat"] is None for c in r["candidates"])
    assert "'6'" in r["candidates"][0]["reason"]
    assert [text for _, text in score.scored] == ["ORIG1 #### 5"]  # rejected candidates are not even scored
    assert result.accepted == {} and result.metrics["rewrite/rejected_verifier"] == 1


def test_verified_candidate_needs_the_gain_margin():
    items = [item(1, "Q1", "ORIG1"), item(2, "Q2", "ORIG2")]
    replies = {"Q1": ["a #### 5"], "Q2": ["b #### 5"]}
    table = {"ORIG1": 0.50, "ORIG2": 0.50, "a #### 5": 0.54, "b #### 5": 0.56}
    result, _, _ = round_of(items, replies, table, min_gain=0.05, num_candidates=1)
    r1, r2 = by_id(result)[1], by_id(result)[2]
    assert not r1["accepted"] and r1["rejection"] == "no_gain"
    assert r1["candidates"][0]["verdict"] is True
    assert r1["candidates"][0]["reason"].startswith("no_gain: 0.5400 < 0.5000")
    assert r1["candidates"][0]["compat"] == pytest.approx(0.54)
    assert r2["accepted"] and r2["rejection"] is None and r2["rewrite"] == "b #### 5"
    assert (r2["compat_before"], r2["compat_after"]) == (pytest.approx(0.50), pytest.approx(0.56))
    assert result.metrics["rewrite/rejected_no_gain"] == 1 and result.metrics["rewrite/accepted"] == 1
    assert result.metrics["rewrite/mean_gain"] == pytest.approx(0.06)
    # A lower compatibility than the original is never accepted, even with no margin
    lower, _, _ = round_of([item(1, "Q1", "ORIG1")], {"Q1": ["a #### 5"]}, {"ORIG1": 0.6, "a #### 5": 0.59},
                           min_gain=0.0, num_candidates=1)
    assert lower.records[0]["rejection"] == "no_gain"
    equal, _, _ = round_of([item(1, "Q1", "ORIG1")], {"Q1": ["a #### 5"]}, {"ORIG1": 0.6, "a #### 5": 0.6},
                           min_gain=0.0, num_candidates=1)
    assert equal.records[0]["accepted"]  # c >= c_original + margin, margin 0


def test_best_accepted_candidate_of_k_wins():
    items = [item(7, "Q7", "ORIG7 #### 5")]
    replies = {"Q7": ["first #### 5", "wrong but fluent #### 9", "second, better #### 5.0", "third #### 5"]}
    table = {"ORIG7 #### 5": 0.2, "first #### 5": 0.5, "second, better #### 5.0": 0.7, "third #### 5": 0.6,
             "wrong but fluent #### 9": 0.99}
    result, generator, _ = round_of(items, replies, table, num_candidates=3)
    r = result.records[0]
    assert r["accepted"] and r["rewrite"] == "second, better #### 5.0" and r["compat_after"] == pytest.approx(0.7)
    assert r["num_candidates"] == 3 and len(generator.asked) == 1
    assert [c["reason"].split(":")[0] for c in r["candidates"]] == ["accepted", "verifier", "accepted"]
    assert [c["verdict"] for c in r["candidates"]] == [True, False, True]
    assert result.accepted == {7: "second, better #### 5.0"}
    assert result.metrics["rewrite/mean_gain"] == pytest.approx(0.5)


def test_generation_errors_are_counted_and_do_not_hide_a_good_candidate():
    items = [item(1, "Q1", "O1"), item(2, "Q2", "O2")]
    replies = {"Q1": [("error", "HTTP 500 (after 2 attempts)"), ("error", "timeout")],
               "Q2": [("error", "malformed response: not JSON"), "fine #### 5"]}
    result, _, _ = round_of(items, replies, {"O1": 0.1, "O2": 0.1, "fine #### 5": 0.3}, num_candidates=2)
    r1, r2 = by_id(result)[1], by_id(result)[2]
    assert not r1["accepted"] and r1["rejection"] == "generation_error"
    assert [c["reason"] for c in r1["candidates"]] == [
        "generation_error: HTTP 500 (after 2 attempts)", "generation_error: timeout"
    ]
    assert all(c["text"] is None and c["verdict"] is None for c in r1["candidates"])
    assert r2["accepted"] and r2["rewrite"] == "fine #### 5"
    assert r2["candidates"][0]["reason"].startswith("generation_error: malformed")
    assert result.metrics["rewrite/rejected_error"] == 1 and result.metrics["rewrite/accepted"] == 1


def test_samples_without_reference_are_not_attempted():
    items = [item(1, "Q1", "O1", reference=None), item(2, "Q2", "O2")]
    result, generator, score = round_of(items, {"Q2": ["x #### 5"]}, {"O2": 0.2, "x #### 5": 0.4}, num_candidates=1)
    r1 = by_id(result)[1]
    assert r1["rejection"] == "no_reference" and r1["num_candidates"] == 0 and r1["compat_before"] is None
    assert len(generator.asked) == 1 and "O1" not in {text for _, text in score.scored}
    assert result.metrics["rewrite/selected"] == 2 and result.metrics["rewrite/attempted"] == 1
    assert result.metrics["rewrite/rejected_no_reference"] == 1 and result.metrics["rewrite/accepted"] == 1
    # All without reference: nothing is generated or scored
    none, generator, score = round_of([item(1, "Q1", "O1", reference=None)], {}, {}, num_candidates=1)
    assert generator.asked == [] and score.scored == [] and none.metrics["rewrite/attempted"] == 0


def test_round_prompts_with_the_reference_and_scores_without_it():
    prompt = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Q1: 2 + 3?"}]
    items = [RewriteItem(sample_id=4, prompt=prompt, original="ORIG #### 5", reference="5")]
    table = {"ORIG #### 5": 0.1, "mine #### 5": 0.3}
    result, generator, score = round_of(items, {"Q1: 2 + 3?": ["mine #### 5"]}, table, num_candidates=1)
    assert generator.asked == [rewrite_messages(prompt, "ORIG #### 5")]
    assert score.scored == [(prompt, "ORIG #### 5"), (prompt, "mine #### 5")]  # the original prompt alone
    r = result.records[0]
    expected = {"sample_id": 4, "round": 3, "step": 40, "original": "ORIG #### 5", "reference": "5",
                "rewrite": "mine #### 5", "accepted": True, "rejection": None, "num_candidates": 1,
                "generator": "scripted", "verifier": "math"}
    assert {k: r[k] for k in expected} == expected
    json.dumps(result.records)  # provenance rows are JSON
    assert set(result.metrics) >= {"rewrite/selected", "rewrite/attempted", "rewrite/accepted", "rewrite/mean_gain",
                                   *(f"rewrite/rejected_{k}" for k in ("verifier", "no_gain", "error", "no_reference",
                                                                       "too_long", "reply_too_large", "bad_prompt"))}
    assert REJECTION_REASONS == ("verifier", "no_gain", "generation_error", "no_reference", "too_long",
                                 "reply_too_large", "bad_prompt")


class CountingVerifier:
    """The real `math` verifier, counting its calls."""

    def __init__(self):
        self.checked: list[str] = []

    def __call__(self, candidate, reference):
        self.checked.append(candidate)
        return MATH(candidate, reference)


def test_oversized_replies_are_rejected_unverified_and_stored_cut():
    settings = GenerationSettings(max_new_tokens=4, temperature=1.0, num_candidates=2)
    assert settings.reply_char_limit == 32 * 4  # the default: REPLY_CHARS_PER_TOKEN per token
    at_limit = "x" * (128 - len(" #### 5")) + " #### 5"
    flood = "#### 5 " + "blah " * 1_000_000  # 5 MB
    verifier = CountingVerifier()
    result = run_round([item(1, "Q1", "O1")], generator=ScriptedGenerator({"Q1": [flood, at_limit]}),
                       verifier=verifier, score=TableScore({"O1": 0.1, at_limit: 0.2}), settings=settings,
                       min_gain=0.0, round_index=1, step=1)
    r = result.records[0]
    assert r["accepted"] and r["rewrite"] == at_limit  # exactly at the limit is allowed
    big = r["candidates"][0]
    assert big["reason"] == f"reply_too_large: {len(flood)} characters > 128" and big["verdict"] is None
    assert big["text"].startswith(flood[:STORED_REPLY_CHARS]) and len(big["text"]) < STORED_REPLY_CHARS + 50
    assert verifier.checked == [at_limit]  # the flood never reached the verifier
    # An explicit limit; all candidates too large: the item's reason
    tight = GenerationSettings(max_new_tokens=4, temperature=1.0, num_candidates=2, max_reply_chars=10)
    result = run_round([item(1, "Q1", "O1")], generator=ScriptedGenerator({"Q1": [flood, at_limit]}),
                       verifier=verifier, score=TableScore({"O1": 0.1}), settings=tight, min_gain=0.0,
                       round_index=1, step=1)
    assert result.records[0]["rejection"] == "reply_too_large"
    assert result.metrics["rewrite/rejected_reply_too_large"] == 1
    with pytest.raises(ValueError, match="max_reply_chars"):
        GenerationSettings(max_reply_chars=0)


def test_a_rewrite_whose_training_row_exceeds_max_length_is_rejected(tok):
    """The length is the whole training row's (prompt, rewrite, end of turn), as TRL
    tokenizes it: one token per character with the tiny tokenizer."""
    prompt = [{"role": "user", "content": "Q1"}]
    like = [{"role": "assistant", "content": "O1"}]
    short, long = "2 + 3 = 5. #### 5", "2 + 3 = 5, " * 20 + "#### 5"
    length = lambda p, text: target_length(tok, p, like, text)
    max_length = length(prompt, short)  # the short one fits exactly, end of turn included
    assert length(prompt, short + "!") == max_length + 1
    verifier = CountingVerifier()
    result = run_round([item(1, "Q1", "O1")], generator=ScriptedGenerator({"Q1": [long, short]}), verifier=verifier,
                       score=TableScore({"O1": 0.1, short: 0.2}), settings=SETTINGS, min_gain=0.0, round_index=1,
                       step=1, length=length, max_length=max_length)
    r = result.records[0]
    assert r["accepted"] and r["rewrite"] == short
    reason = f"too_long: {length(prompt, long)} tokens with the prompt > max_length {max_length}"
    assert r["candidates"][0]["reason"] == reason and r["candidates"][0]["verdict"] is None
    assert verifier.checked == [short]
    only_long = run_round([item(1, "Q1", "O1")], generator=ScriptedGenerator({"Q1": [long]}), verifier=verifier,
                          score=TableScore({"O1": 0.1}), settings=SETTINGS, min_gain=0.0, round_index=1, step=1,
                          length=length, max_length=max_length)
    assert only_long.records[0]["rejection"] == "too_long" and only_long.metrics["rewrite/rejected_too_long"] == 1


def test_without_a_needed_reference_the_gain_alone_gates():
    items = [item(1, "Q1", "O1", reference=None), item(2, "Q2", "O2", reference=None)]
    replies = {"Q1": ["anything at all"], "Q2": ["less compatible"]}
    table = {"O1": 0.1, "O2": 0.5, "anything at all": 0.3, "less compatible": 0.4}
    with pytest.warns(UserWarning, match="without any check"):
        accept_all = get_verifier("none")
    result = run_round(items, generator=ScriptedGenerator(replies), verifier=accept_all, score=TableScore(table),
                       settings=GenerationSettings(max_new_tokens=64, num_candidates=1, temperature=1.0), min_gain=0.0,
                       round_index=1, step=1, needs_reference=False)
    r1, r2 = by_id(result)[1], by_id(result)[2]
    assert r1["accepted"] and r1["reference"] is None and r1["rewrite"] == "anything at all"
    assert r2["rejection"] == "no_gain"
    assert result.metrics["rewrite/rejected_no_reference"] == 0 and result.metrics["rewrite/attempted"] == 2


def test_a_prompt_that_cannot_be_rewritten_is_rejected_not_raised():
    bad = [
        RewriteItem(1, [{"role": "user", "content": "Q1"}, {"role": "assistant", "content": "hm"}], "O1", "5"),
        RewriteItem(2, [{"role": "system", "content": "Be brief."}], "O2", "5"),
        RewriteItem(3, 42, "O3", "5"),
    ]
    result, generator, score = round_of([*bad, item(4, "Q4", "O4")], {"Q4": ["fine #### 5"]},
                                        {"O4": 0.1, "fine #### 5": 0.2}, num_candidates=1)
    records = by_id(result)
    assert [records[i]["rejection"] for i in (1, 2, 3, 4)] == ["bad_prompt", "bad_prompt", "bad_prompt", None]
    assert "must end with a user turn" in records[1]["rejection_detail"]
    assert "no user turn" in records[2]["rejection_detail"]
    assert records[4]["accepted"] and records[4]["rejection_detail"] is None
    assert len(generator.asked) == 1 and [text for _, text in score.scored] == ["O4", "fine #### 5"]
    assert [r["sample_id"] for r in result.records] == [1, 2, 3, 4]  # in the order selected
    assert result.metrics["rewrite/rejected_bad_prompt"] == 3 and result.metrics["rewrite/attempted"] == 1


def test_empty_round():
    result, generator, score = round_of([], {}, {})
    assert result.records == [] and result.accepted == {} and generator.asked == [] and score.scored == []
    assert result.metrics["rewrite/selected"] == 0 and result.metrics["rewrite/mean_gain"] == 0.0


# ------------------------------------------------------------------------------ store


def provenance(sample_id, round_index, accepted, text=None):
    return {"sample_id": sample_id, "round": round_index, "step": 10 * round_index,
            "rewrite": text if accepted else None, "compat_before": 0.1, "compat_after": 0.4 if accepted else None,
            "accepted": accepted, "generator": "g", "verifier": "math"}


def rows(conversational=True):
    out = []
    for i in range(4):
        completion = [{"role": "assistant", "content": f"orig {i}"}] if conversational else f"orig {i}"
        prompt = [{"role": "user", "content": f"q {i}"}] if conversational else f"q {i}"
        out.append({"prompt": prompt, "completion": completion, "answer": str(i), "sample_id": i})
    return out


def test_store_keeps_only_accepted_and_every_row(tmp_path):
    store = RewriteStore()
    store.add_round([provenance(1, 1, True, "new 1"), provenance(2, 1, False)], step=10)
    store.add_round([provenance(3, 2, True, "new 3")], step=20)
    assert set(store.accepted) == {1, 3} and store.rounds_done == 2 and store.last_round_step == 20
    assert store.accepted[1] == {"text": "new 1", "round": 1, "step": 10, "compat_before": 0.1, "compat_after": 0.4,
                                 "generator": "g", "verifier": "math"}

    for conversational in (True, False):
        original = rows(conversational)
        out = store.rewritten_rows(original)
        assert [r["sample_id"] for r in out] == [0, 1, 2, 3]
        assert all({k: r[k] for k in original[i]} == original[i] for i, r in enumerate(out))  # originals untouched
        assert [r["rewrite_round"] for r in out] == [None, 1, None, 2]
        expected = [{"role": "assistant", "content": "new 1"}] if conversational else "new 1"
        assert out[1]["rewritten_completion"] == expected
        assert out[0]["rewritten_completion"] is None and out[2]["rewritten_completion"] is None

    path = store.save_dataset(rows(), str(tmp_path))
    assert path == str(tmp_path / DATASET_FILE)
    loaded = load_dataset("json", data_files=path, split="train")
    assert loaded["sample_id"] == [0, 1, 2, 3] and loaded["completion"] == [r["completion"] for r in rows()]
    assert [r and r[0]["content"] for r in loaded["rewritten_completion"]] == [None, "new 1", None, "new 3"]


def test_store_state_round_trips_through_json():
    store = RewriteStore()
    store.add_round([provenance(5, 1, True, "five")], step=12)
    restored = RewriteStore()
    restored.load_state_dict(json.loads(json.dumps(store.state_dict())))
    assert restored.accepted == store.accepted and set(restored.accepted) == {5}
    assert (restored.rounds_done, restored.last_round_step) == (1, 12)


def test_reconcile_moves_later_rounds_aside_and_never_deletes(tmp_path):
    lines = [provenance(1, 1, True, "a"), provenance(2, 1, False), provenance(3, 2, True, "c"), provenance(4, 3, False)]
    RewriteStore.append_provenance(str(tmp_path), lines[:2])
    RewriteStore.append_provenance(str(tmp_path), lines[2:])
    with open(tmp_path / PROVENANCE_FILE, "a") as f:
        f.write('{"sample_id": 9, "round": 4, "ste')  # a line cut by a crash
    (tmp_path / ORPHANED_FILE).write_text(json.dumps({"from": "an earlier resume"}) + "\n")
    before = (tmp_path / PROVENANCE_FILE).read_text().splitlines()

    store = RewriteStore()
    store.rounds_done = 1  # the checkpoint saw round 1 only
    assert store.reconcile_provenance(str(tmp_path)) == 3
    kept = [json.loads(line) for line in (tmp_path / PROVENANCE_FILE).read_text().splitlines()]
    orphaned = (tmp_path / ORPHANED_FILE).read_text().splitlines()
    assert kept == lines[:2]
    assert orphaned == [json.dumps({"from": "an earlier resume"}), *before[2:]]  # appended, cut line included
    assert len(kept) + len(orphaned) - 1 == len(before)  # every line is somewhere
    assert store.reconcile_provenance(str(tmp_path)) == 0  # idempotent
    assert RewriteStore().reconcile_provenance(str(tmp_path / "nothing-here")) == 0


def test_default_template_has_no_number_to_copy():
    """A small model copied the example answer of the template ('#### 42') into 6 of 14
    candidates (docs/rewriting.md): the examples of the answer form hold no digit."""
    import re

    from cadft.rewriting.prompt import DEFAULT_REWRITE_TEMPLATE

    assert not re.search(r"\d", DEFAULT_REWRITE_TEMPLATE)
    assert "#### <answer>" in DEFAULT_REWRITE_TEMPLATE.format(question="q", reference="r")
