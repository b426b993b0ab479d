"""Embedded demonstrations and the loaders, on generated files and the real GSM8K/MATH-500 files
(the latter skip where the real data is absent)."""

from __future__ import annotations

import json

import pytest
from datasets import Dataset

from cadft.data import DEMO_KINDS, DataFormatError, final_answer, load_demonstrations, mixed_quality_demos

from math_rows import MATH_ROWS, gsm8k_answer, gsm8k_rows


def test_embedded_demos_are_seeded_and_mixed():
    a, b = mixed_quality_demos(40, seed=3), mixed_quality_demos(40, seed=3)
    assert a.to_list() == b.to_list()
    assert mixed_quality_demos(40, seed=4).to_list() != a.to_list()
    kinds = a["kind"]
    assert kinds.count("foreign") == 10 and kinds.count("wrong") == 10 and kinds.count("plain") == 20
    assert set(kinds) <= set(DEMO_KINDS)


def test_embedded_answers_are_true_except_for_wrong_demos():
    ds = mixed_quality_demos(60, seed=1)
    for row in ds:
        text = row["completion"][0]["content"]
        stated = text.rstrip().split()[-1].rstrip(".")
        assert (stated == row["answer"]) == (row["kind"] != "wrong"), (row["kind"], text)


def test_embedded_rejects_bad_fractions():
    with pytest.raises(ValueError, match="fractions"):
        mixed_quality_demos(10, frac_foreign=0.7, frac_wrong=0.5)


def write_jsonl(path, rows):
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


@pytest.mark.parametrize("suffix", [".jsonl", ".json", ".parquet", ".csv"])
def test_local_file_formats(tmp_path, suffix):
    rows = [{"prompt": f"p{i}", "completion": f"c{i}", "tag": "x"} for i in range(5)]
    path = tmp_path / f"data{suffix}"
    if suffix == ".jsonl":
        write_jsonl(path, rows)
    elif suffix == ".json":
        path.write_text(json.dumps(rows))
    else:
        getattr(Dataset.from_list(rows), "to_parquet" if suffix == ".parquet" else "to_csv")(str(path))
    ds = load_demonstrations(str(path))
    assert ds.to_list() == rows


def test_gsm8k_rows_become_conversational_with_final_answer(tmp_path):
    ds = load_demonstrations(str(write_jsonl(tmp_path / "gsm8k.jsonl", gsm8k_rows(6))), limit=5)
    assert len(ds) == 5
    first = ds[0]
    assert first["prompt"][0]["role"] == "user" and first["prompt"][0]["content"].startswith("Ravi picks")
    assert first["completion"][0]["role"] == "assistant" and "####" in first["completion"][0]["content"]
    assert ds["final_answer"] == [gsm8k_answer(i) for i in range(5)]


def test_math500_rows_keep_their_answer(tmp_path):
    ds = load_demonstrations(str(write_jsonl(tmp_path / "math500.jsonl", MATH_ROWS)))
    row = ds[0]
    assert row["answer"] and row["level"] == 2 and row["unique_id"] == "test/precalculus/1.json"
    assert final_answer(row["completion"][0]["content"]) is not None


def test_real_gsm8k_and_math500_files_load(shared_data):
    gsm8k = load_demonstrations(str(shared_data / "gsm8k" / "train.jsonl"), limit=50)
    assert len(gsm8k) == 50 and all(gsm8k["final_answer"])
    math500 = load_demonstrations(str(shared_data / "math500" / "test.jsonl"), limit=50)
    assert len(math500) == 50 and all(math500["answer"])
    for ds in (gsm8k, math500):
        assert all(final_answer(r["completion"][0]["content"]) is not None for r in ds)


def test_bad_json_names_file_and_row(tmp_path):
    path = tmp_path / "bad.jsonl"
    path.write_text('{"prompt": "a", "completion": "b"}\n{"prompt": "a", "completion": "b"}\n{"prompt": oops}\n')
    with pytest.raises(DataFormatError, match=r"bad\.jsonl: line 3: field 'prompt': invalid JSON"):
        load_demonstrations(str(path))


@pytest.mark.parametrize(
    "row,field",
    [
        ({"prompt": "a", "completion": ""}, "completion"),
        ({"question": "q", "answer": 3}, "answer"),
        ({"messages": [{"role": "user"}]}, "messages"),
        ({"prompt": "a", "completion": None}, "completion"),
    ],
)
def test_bad_field_names_row_and_field(tmp_path, row, field):
    path = write_jsonl(tmp_path / "d.jsonl", [{"prompt": "ok", "completion": "ok"}, row])
    with pytest.raises(DataFormatError, match=rf"d\.jsonl: line 2: field '{field}'"):
        load_demonstrations(str(path))


def test_unrecognised_columns_and_missing_file(tmp_path):
    path = write_jsonl(tmp_path / "d.jsonl", [{"input": "a", "output": "b"}])
    with pytest.raises(DataFormatError, match=r"line 1: no demonstration in fields \['input', 'output'\]"):
        load_demonstrations(str(path))
    with pytest.raises(DataFormatError, match=r"nope\.jsonl: file not found"):
        load_demonstrations(str(tmp_path / "nope.jsonl"))


def test_inconsistent_columns_are_an_error(tmp_path):
    path = write_jsonl(tmp_path / "d.jsonl", [{"prompt": "a", "completion": "b"}, {"text": "t"}])
    with pytest.raises(DataFormatError, match="line 2: field 'prompt': missing, but line 1 has it"):
        load_demonstrations(str(path))
