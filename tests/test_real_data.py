"""The data kinds of the real-model experiment (experiments/real/data.py) have the
properties they promise: on small rows written here and on every eligible GSM8K row."""

from __future__ import annotations

import random
from collections import Counter

import pytest

from experiments.real import data

NATALIA = ("Natalia sold 48/2 = <<48/2=24>>24 clips in May.\n"
           "Natalia sold 48+24 = <<48+24=72>>72 clips altogether in April and May.\n#### 72")
WENG = ("Weng earns 12/60 = $<<12/60=0.2>>0.2 per minute.\n"
        "Working 50 minutes, she earned 0.2 x 50 = $<<0.2*50=10>>10.\n#### 10")
BETTY = ("In the beginning, Betty has only 100 / 2 = $<<100/2=50>>50.\n"
         "Betty's grandparents gave her 15 * 2 = $<<15*2=30>>30.\n"
         "This means, Betty needs 100 - 50 - 30 - 15 = $<<100-50-30-15=5>>5 more.\n#### 5")
SOLUTIONS = [NATALIA, WENG, BETTY]


def as_numbers(text: str) -> Counter:
    return Counter(float(x.replace(",", "")) for x in data.numbers(text))


def test_gold_strips_the_notes_and_keeps_the_text():
    assert data.gold(NATALIA) == ("Natalia sold 48/2 = 24 clips in May.\n"
                                  "Natalia sold 48+24 = 72 clips altogether in April and May.\n#### 72")
    assert all("<<" not in data.gold(s) for s in SOLUTIONS)


def test_mild_keeps_the_notes_and_strong_is_result_first_equations():
    assert data.mild(NATALIA) == NATALIA
    assert data.strong(NATALIA) == "#### 72\n24 = 48/2\n72 = 48+24"
    assert data.strong(BETTY).splitlines()[0] == "#### 5" and "Betty" not in data.strong(BETTY)


def test_truncated_is_the_first_line_then_the_answer():
    assert data.truncated(BETTY) == "In the beginning, Betty has only 100 / 2 = $50.\n#### 5"


@pytest.mark.parametrize("seed", range(5))
def test_wording_keeps_every_number_in_order_and_changes_words(seed):
    for s in SOLUTIONS:
        text = data.wording(s, random.Random(seed))
        assert data.numbers(text) == data.numbers(data.gold(s))
        assert text != data.gold(s) and "<<" not in text
        assert data.final_answer(text) == data.final_answer(s)
    # seeded: the same seed, the same text
    assert data.wording(BETTY, random.Random(seed)) == data.wording(BETTY, random.Random(seed))


def test_wrong_carried_recomputes_the_later_steps():
    # Find a seed that perturbs an intermediate result of Betty's 3 steps
    for seed in range(50):
        text, how = data.wrong(BETTY, random.Random(seed))
        if how == "carried":
            break
    else:
        pytest.fail("no seed took the carried-forward path")
    lines = text.splitlines()
    assert "<<" not in text and data.final_answer(text) != "5"
    # The last line's arithmetic is consistent with the perturbed operands: 100 - a - b - 15 = answer
    shown = lines[2].split("needs ", 1)[1].split(" = ")[0]
    assert eval(shown) == float(data.final_answer(text))  # noqa: S307  (our own arithmetic)


@pytest.mark.parametrize("seed", range(10))
def test_wrong_always_changes_the_final_answer(seed):
    for s in SOLUTIONS:
        text, how = data.wrong(s, random.Random(seed))
        assert how in ("carried", "final") and "<<" not in text
        assert float(data.final_answer(text)) != float(data.final_answer(s))


def test_make_kind_rejects_an_unknown_kind():
    with pytest.raises(ValueError, match="unknown kind 'typo'"):
        data.make_kind("typo", NATALIA, random.Random(0))


def test_read_gsm8k_names_the_file_line_and_field(tmp_path):
    path = tmp_path / "bad.jsonl"
    path.write_text('{"question": "q", "answer": "1\\n#### 1"}\n{"question": "q"}\n')
    with pytest.raises(ValueError, match=r"bad.jsonl:2: field 'answer'"):
        data.read_gsm8k(path)


def test_mixture_has_the_gold_fraction_and_every_other_kind():
    kinds = data.mixture_kinds(96, 0.5, random.Random(0))
    counts = Counter(kinds)
    assert counts["gold"] == 48 and set(counts) == set(data.KINDS)
    assert all(counts[k] in (9, 10) for k in data.KINDS if k != "gold")


def test_real_gsm8k_every_eligible_row_has_the_promised_properties(shared_data):
    rows = data.read_gsm8k(shared_data / "gsm8k" / "train.jsonl")
    eligible = [r for r in rows if data.eligible(r)]
    assert len(eligible) > 4000
    for i, row in enumerate(eligible):
        s, rng = row["answer"], random.Random(i)
        gold = data.gold(s)
        assert "<<" not in gold and data.final_answer(gold) == data.final_answer(s)
        assert as_numbers(data.wording(s, rng)) == as_numbers(gold)
        assert float(data.final_answer(data.wrong(s, rng)[0]).replace(",", "")) != float(
            data.final_answer(s).replace(",", ""))
        assert data.strong(s).startswith("#### ") and "<<" not in data.strong(s)


def test_real_gsm8k_splits_are_disjoint_seeded_and_paired(shared_data):
    rows = data.read_gsm8k(shared_data / "gsm8k" / "train.jsonl")
    a = data.build_splits(rows, seed=0, per_kind=5, pool=24, reference=8, train=16, validation=4)
    b = data.build_splits(rows, seed=0, per_kind=5, pool=24, reference=8, train=16, validation=4)
    assert a == b
    problems = {name: {r["source_line"] for r in a[name]} for name in ("kinds", "pool", "reference", "train_mixed",
                                                                        "validation")}
    names = list(problems)
    for i, x in enumerate(names):
        for y in names[i + 1 :]:
            assert not problems[x] & problems[y], (x, y)
    # every kind holds the same problems; the clean training set is the mixture's problems in gold
    assert all(Counter(r["kind"] for r in a["kinds"])[k] == 5 for k in data.KINDS)
    assert [r["source_line"] for r in a["train_clean"]] == [r["source_line"] for r in a["train_mixed"]]
    assert {r["kind"] for r in a["train_clean"]} == {"gold"}
    # the answer column is the true answer, also for wrong rows (the rewriting verifier checks against it)
    for r in a["pool"]:
        assert r["answer"] == data.final_answer(rows[r["source_line"] - 1]["answer"]).replace(",", "")
